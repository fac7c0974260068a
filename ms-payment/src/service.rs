//! ms-payment's RPC actions (`payment:create`, `payment:intent`, `coupon:check`, `coupon:create`,
//! `coupon:list`, `payment:refund`, the router's `payment:webhook`); inputs are parsed in
//! [`crate::domain`] and [`crate::webhook`], the order replica is kept by
//! [`crate::events`]. docs/payments.md draws the whole flow.
//!
//! `payment:create`: find the order (waiting briefly for its event) → owner, state and
//! coupon checks → redeem the coupon in the database → note a pending charge → charge
//! (skipped when nothing is left to pay) → store the payment with `payment.created` in one
//! transaction. A decline stores `payment.failed` and gives the redemption back in one
//! transaction; a charge refused before anything moved gives it back; a charge whose end
//! is unknown (no answer, processing, not stored) keeps it with the pending charge, which
//! Stripe's webhook or [`reconcile`] settles.
//!
//! [`reconcile`]: PaymentService::reconcile
//!
//! `payment:refund` (admins), and `order.refunded` for an order ms-order refunded on its
//! own (a payment that landed after the stuff went to someone else), share [`refund`]:
//!
//! ```text
//! payment of the order ── none ──▶ 404
//!        │ refundedAt set ──▶ answer it again (no second gateway call)
//!        ▼
//! gateway.refund (skipped for 0 charged) ──▶ refundedAt + payment.refunded, one transaction
//!                                              └─▶ ms-order: complete/cancelled → refunded
//! ```
//!
//! [`refund`]: PaymentService::refund

use crate::domain::{
    ALREADY_PAID, CANCELLED, COUPON_EXHAUSTED, COUPON_EXPIRED, COUPON_INVALID, CouponCheckRequest,
    CouponCode, DECLINED, FREE_NO_CARD, IN_PROGRESS, IntentOpenRequest, NOT_PAID, NOT_YOUR_ORDER,
    NewCoupon, ORDER_NOT_FOUND, PAYMENT_METHOD_REQUIRED, PROCESSING, PayRequest, RefundRequest,
    amount_after, coupon_amount, generate_code,
};
use crate::gateway::{
    ChargeOutcome, ChargeRequest, Destination, GatewayError, IntentRequest, IntentState,
    PaymentGateway,
};
use crate::store::{
    CouponRow, FailureRow, LedgerStore, OrderReplica, PaymentRow, PaymentStore, Payout,
    PendingCharge, Redemption, StoreError,
};
use crate::webhook::{self, IntentFacts, WebhookAction, WebhookEvent, WebhookSecret};
use async_trait::async_trait;
use chrono::Utc;
use ms_common::ApiError;
use ms_common::auth::AuthUser;
use ms_common::contract::{self, PaymentAction};
use ms_common::events::{Event, EventEnvelope, OrderStatus, PaymentFailure, PaymentRecord};
use ms_common::messaging::{RpcContext, RpcHandler};
use ms_common::money::{Currency, FeePercent};
use ms_common::storage::ReplyLog;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Most pending charges one reconciliation pass settles (the next pass takes the rest).
const RECONCILE_BATCH: u32 = 100;

/// How often the store is re-read while waiting for an order's event.
const ORDER_POLL: Duration = Duration::from_millis(25);

/// How [`PaymentService::charge_and_record`] ended, which decides what happens to the
/// coupon redemption `payment:create` made before charging.
enum ChargeEnd {
    /// Paid and stored: the `Payment` to answer.
    Paid(Value),
    /// Declined and stored with the redemption given back in the same transaction.
    Declined(ApiError),
    /// The charge's end is unknown (processing, no answer, not stored): the redemption
    /// stays with the pending charge until the webhook or reconciliation settles it.
    Pending(ApiError),
    /// Nothing was charged, or a concurrent request's charge was stored: give the
    /// redemption back.
    Failed(ApiError),
}

/// Whether a refund still has to ask the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundBy {
    /// Send the money back through the gateway, then record it.
    Gateway,
    /// The gateway already did (Stripe's `charge.refunded`): only record it.
    AlreadyRefunded,
}

/// The payment service's state and actions.
pub struct PaymentService {
    pub(crate) store: Arc<dyn PaymentStore>,
    /// The store's ledger (sellers' accounts and earnings).
    pub(crate) ledger: Arc<dyn LedgerStore>,
    pub(crate) gateway: Arc<dyn PaymentGateway>,
    pub(crate) currency: Currency,
    /// `PLATFORM_FEE_PERCENT`: pinned on each payment (and sent as Stripe's
    /// `application_fee_amount` on destination charges).
    pub(crate) fee: FeePercent,
    /// `PUBLIC_URL`: where Stripe sends a seller back after onboarding.
    pub(crate) public_url: String,
    order_wait: Duration,
    /// `STRIPE_WEBHOOK_SECRET`: without it every webhook request is refused.
    webhook_secret: Option<WebhookSecret>,
    /// `STRIPE_PUBLISHABLE_KEY`, handed to the browser with each intent (`None`: the
    /// built-in gateway's test methods confirm it).
    publishable_key: Option<String>,
    /// Woken when the order replica changes (`payment:create` may wait for an order).
    pub(crate) replica_changed: Notify,
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal_from(e)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal_from)
}

fn coupon_refused(r: &Redemption) -> ApiError {
    let message = match r {
        Redemption::Expired => COUPON_EXPIRED,
        Redemption::Exhausted => COUPON_EXHAUSTED,
        Redemption::Unknown | Redemption::Redeemed(_) => COUPON_INVALID,
    };
    ApiError::field("couponCode", message)
}

impl PaymentService {
    /// A service over `store`, charging through `gateway` in `currency`; `payment:create`
    /// waits up to `order_wait` for an order's event; Stripe's webhook is checked with
    /// `webhook_secret`.
    pub fn new(
        store: Arc<dyn PaymentStore>,
        gateway: Arc<dyn PaymentGateway>,
        currency: Currency,
        order_wait: Duration,
        webhook_secret: Option<WebhookSecret>,
    ) -> Self {
        Self {
            ledger: store.ledger(),
            store,
            gateway,
            currency,
            order_wait,
            webhook_secret,
            publishable_key: None,
            fee: FeePercent::default(),
            public_url: crate::DEFAULT_PUBLIC_URL.to_owned(),
            replica_changed: Notify::new(),
        }
    }

    /// The service taking `fee` of each sale and sending onboarded sellers back to
    /// `public_url`.
    pub fn with_payouts(mut self, fee: FeePercent, public_url: String) -> Self {
        self.fee = fee;
        self.public_url = public_url.trim_end_matches('/').to_owned();
        self
    }

    /// The fee on a charge of `amount` for `order`, and the seller's connected account
    /// when they are onboarded (a destination charge); otherwise the ledger holds the
    /// earnings.
    async fn terms(
        &self,
        order: &OrderReplica,
        amount: i64,
    ) -> Result<(i64, Option<Destination>), ApiError> {
        let fee_cents = self.fee.of(amount);
        let Some(seller) = &order.seller_id else {
            return Ok((fee_cents, None));
        };
        let account = self
            .ledger
            .payout_account(seller)
            .await
            .map_err(store_err)?;
        Ok((
            fee_cents,
            account.filter(|a| a.onboarded).map(|a| Destination {
                account_id: a.account_id,
                fee_cents,
            }),
        ))
    }

    /// A payment of `amount` for `order_id`, with the fee and the seller's payout as its
    /// charge was made (`charge`: the pending charge that made it, if known).
    fn new_payment(
        &self,
        order: &OrderReplica,
        amount: i64,
        coupon_code: Option<String>,
        provider_id: String,
        charge: Option<&PendingCharge>,
    ) -> PaymentRow {
        let (fee_cents, payout) = match charge {
            Some(c) if c.amount_cents == amount => (
                c.fee_cents,
                if c.destination.is_some() {
                    Payout::Direct
                } else {
                    Payout::Held
                },
            ),
            _ => (self.fee.of(amount), Payout::Held),
        };
        PaymentRow {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            amount_cents: amount,
            coupon_code,
            provider_id,
            created_at: ms_common::time::now(),
            refunded_at: None,
            currency: self.currency.to_string(),
            fee_cents,
            seller_id: order.seller_id.clone(),
            payout,
            transfer_key: None,
            transfer_id: None,
        }
    }

    /// The service handing `key` (Stripe's publishable key) to browsers with each intent.
    pub fn with_publishable_key(mut self, key: Option<String>) -> Self {
        self.publishable_key = key;
        self
    }

    /// The order from the replica, waiting up to `order_wait` for it to arrive (right after
    /// `order:create` its event may still be on its way).
    async fn wait_for_order(&self, id: &str) -> Result<Option<OrderReplica>, ApiError> {
        let deadline = Instant::now() + self.order_wait;
        loop {
            let changed = self.replica_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(o) = self.store.order(id).await.map_err(store_err)? {
                return Ok(Some(o));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = (deadline - now).min(ORDER_POLL);
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Gives a redemption back after a failure; a failure to do so is logged.
    async fn release(&self, coupon: Option<&CouponCode>) {
        if let Some(code) = coupon
            && let Err(e) = self.store.release_coupon(code.as_str()).await
        {
            tracing::error!(coupon = code.as_str(), error = %e, "could not release a coupon redemption");
        }
    }

    /// The caller's order, still open for payment: not paid, declined, cancelled or past
    /// its hold (waiting briefly for a just-created order's event).
    async fn payable_order(
        &self,
        user: &AuthUser,
        order_id: &str,
        now: chrono::DateTime<Utc>,
    ) -> Result<OrderReplica, ApiError> {
        let order = self
            .wait_for_order(order_id)
            .await?
            .ok_or_else(|| ApiError::not_found(ORDER_NOT_FOUND))?;
        if order.user_id != user.id {
            return Err(ApiError::forbidden(NOT_YOUR_ORDER));
        }
        let paid = self
            .store
            .payment_for_order(&order.id)
            .await
            .map_err(store_err)?;
        if paid.is_some() || order.status == OrderStatus::Complete {
            return Err(ApiError::conflict(ALREADY_PAID));
        }
        let declined = self
            .store
            .failure_for_order(&order.id)
            .await
            .map_err(store_err)?;
        if order.status != OrderStatus::Created || declined.is_some() || order.expires_at <= now {
            return Err(ApiError::conflict(CANCELLED));
        }
        Ok(order)
    }

    /// What `order` costs with `coupon` as the coupon stands now (looked at, not
    /// redeemed): clear messages on `couponCode` for a coupon that cannot be used.
    async fn quote(
        &self,
        order: &OrderReplica,
        coupon: Option<&CouponCode>,
        now: chrono::DateTime<Utc>,
    ) -> Result<i64, ApiError> {
        let Some(code) = coupon else {
            return Ok(order.price_cents);
        };
        match self.store.coupon(code.as_str()).await.map_err(store_err)? {
            Some(c) if !c.expired_at(now) && !c.exhausted() => {
                coupon_amount(order.price_cents, c.percent_off)
            }
            other => Err(coupon_refused(&Redemption::why_not(other, now))),
        }
    }

    /// What `order` costs with `coupon`, looked at before redeeming it; when `carried`, a
    /// pending charge of the order already holds the coupon's redemption, so a coupon used
    /// up (by that very redemption) or expired since still counts.
    async fn amount_for(
        &self,
        order: &OrderReplica,
        coupon: Option<&CouponCode>,
        carried: bool,
        now: chrono::DateTime<Utc>,
    ) -> Result<i64, ApiError> {
        match coupon {
            Some(code) if carried => {
                match self.store.coupon(code.as_str()).await.map_err(store_err)? {
                    Some(c) => Ok(amount_after(order.price_cents, c.percent_off)),
                    None => Err(coupon_refused(&Redemption::Unknown)),
                }
            }
            _ => self.quote(order, coupon, now).await,
        }
    }

    /// Redeems `coupon` for `order` (unless `carried`), and what is left to charge.
    async fn redeem(
        &self,
        order: &OrderReplica,
        coupon: Option<&CouponCode>,
        carried: bool,
        amount: i64,
        now: chrono::DateTime<Utc>,
    ) -> Result<i64, ApiError> {
        let Some(code) = coupon.filter(|_| !carried) else {
            return Ok(amount);
        };
        match self
            .store
            .redeem_coupon(code.as_str(), now)
            .await
            .map_err(store_err)?
        {
            Redemption::Redeemed(c) => Ok(amount_after(order.price_cents, c.percent_off)),
            refused => Err(coupon_refused(&refused)),
        }
    }

    /// `coupon:check`: what the order would cost with the code, and the discount.
    async fn check_coupon(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let req = CouponCheckRequest::parse(&payload)?;
        let order = self.payable_order(user, &req.order_id, Utc::now()).await?;
        let amount = self
            .quote(&order, Some(&req.coupon_code), Utc::now())
            .await?;
        to_value(&contract::CouponCheck {
            amount_cents: amount,
            discount_cents: order.price_cents - amount,
        })
    }

    /// `payment:create`.
    #[tracing::instrument(skip_all, fields(order_id = tracing::field::Empty))]
    async fn pay(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let req = PayRequest::parse(&payload)?;
        tracing::Span::current().record("order_id", req.order_id.as_str());
        let now = Utc::now();
        let order = self.payable_order(user, &req.order_id, now).await?;

        // A charge whose end is unknown (its answer was lost), or the intent opened for the
        // browser, keeps its redemption: a retry with the same coupon does not redeem
        // again; with another the lost charge must be settled first, while an intent
        // still waiting for its buyer is cancelled.
        let mut pending = self
            .store
            .pending_charge(&order.id)
            .await
            .map_err(store_err)?;
        let coupon = req.coupon_code.as_ref().map(CouponCode::as_str);
        let carried = match &pending {
            None => false,
            Some(p) if p.coupon_code.as_deref() == coupon => true,
            // The browser's intent for another coupon gives way (unless it was paid).
            Some(p) if p.is_intent() => {
                self.retire_intent(p).await?;
                pending = None;
                false
            }
            Some(_) => return Err(ApiError::conflict(IN_PROGRESS)),
        };
        // Coupon: look first (clear messages, and no redemption for a request that is
        // invalid anyway), then redeem atomically (which may still lose a race).
        let amount = self
            .amount_for(&order, req.coupon_code.as_ref(), carried, now)
            .await?;
        if amount > 0 && req.payment_method.is_none() {
            return Err(ApiError::field("paymentMethod", PAYMENT_METHOD_REQUIRED));
        }
        let amount = self
            .redeem(&order, req.coupon_code.as_ref(), carried, amount, now)
            .await?;
        let intent = pending.filter(PendingCharge::is_intent);
        let end = self
            .charge_and_record(ctx, user, &order, &req, amount, intent)
            .await;
        match end {
            ChargeEnd::Paid(v) => Ok(v),
            // The decline gave the redemption back in its own transaction; a processing
            // charge keeps it (the webhook records the payment with it, or fails it and
            // gives it back).
            ChargeEnd::Declined(e) | ChargeEnd::Pending(e) => Err(e),
            ChargeEnd::Failed(e) => {
                self.release(req.coupon_code.as_ref()).await;
                Err(e)
            }
        }
    }

    async fn charge_and_record(
        &self,
        ctx: &RpcContext,
        user: &AuthUser,
        order: &OrderReplica,
        req: &PayRequest,
        amount: i64,
        intent: Option<PendingCharge>,
    ) -> ChargeEnd {
        let coupon = req.coupon_code.as_ref().map(|c| c.as_str().to_owned());
        // Nothing to charge (a 100 % coupon) needs no method; `pay` checked one is given
        // otherwise.
        let payment_method = req.payment_method.clone().filter(|_| amount > 0);
        let mut made_by = None;
        let provider_id = match payment_method {
            None => format!("coupon:{}", coupon.as_deref().unwrap_or("-")),
            Some(pm) => {
                let for_intent = intent.is_some();
                // An intent keeps the terms it was opened with (Stripe has them).
                let (fee_cents, destination) = match &intent {
                    Some(i) => (
                        i.fee_cents,
                        i.destination.clone().map(|account_id| Destination {
                            account_id,
                            fee_cents: i.fee_cents,
                        }),
                    ),
                    None => match self.terms(order, amount).await {
                        Ok(t) => t,
                        Err(e) => return ChargeEnd::Failed(e),
                    },
                };
                let (intent_key, intent_id) =
                    intent.map_or((None, None), |i| (i.intent_key, i.intent_id));
                let pending = PendingCharge {
                    order_id: order.id.clone(),
                    user_id: user.id.clone(),
                    amount_cents: amount,
                    coupon_code: coupon.clone(),
                    started_at: ms_common::time::now(),
                    intent_key,
                    intent_id: intent_id.clone(),
                    fee_cents,
                    destination: destination.as_ref().map(|d| d.account_id.clone()),
                };
                if let Err(e) = self.store.begin_charge(&pending).await {
                    return ChargeEnd::Failed(store_err(e));
                }
                let charge = ChargeRequest {
                    order_id: order.id.clone(),
                    user_id: user.id.clone(),
                    amount_cents: amount,
                    currency: self.currency.to_string(),
                    payment_method: pm,
                    coupon_code: coupon.clone(),
                    intent_id,
                    destination,
                };
                made_by = Some(pending);
                match self.gateway.charge(&charge).await {
                    Ok(ChargeOutcome::Succeeded { provider_id }) => provider_id,
                    Ok(ChargeOutcome::Declined { reason }) => {
                        let cid = ctx.correlation_id.clone();
                        return match self
                            .record_declined(&order.id, &user.id, coupon.as_deref(), reason, cid)
                            .await
                        {
                            Ok(()) => {
                                self.end_charge(&order.id).await;
                                ChargeEnd::Declined(ApiError::payment_required(DECLINED))
                            }
                            // Nothing was written: reconciliation finds the decline.
                            Err(e) => ChargeEnd::Pending(store_err(e)),
                        };
                    }
                    Ok(ChargeOutcome::Processing { provider_id }) => {
                        tracing::info!(%provider_id, "payment processing; the webhook settles it");
                        return ChargeEnd::Pending(ApiError::conflict(PROCESSING));
                    }
                    // Refused before anything was charged. An intent stays open for the
                    // browser with its redemption (its hold's end cancels it).
                    Err(
                        e @ (GatewayError::UnknownPaymentMethod | GatewayError::AmountTooSmall),
                    ) => {
                        if for_intent {
                            return ChargeEnd::Pending(e.to_api());
                        }
                        self.end_charge(&order.id).await;
                        return ChargeEnd::Failed(e.to_api());
                    }
                    // No answer: Stripe may have charged. Reconciliation (or the webhook)
                    // records how it ended; the redemption waits for that.
                    Err(e) => return ChargeEnd::Pending(e.to_api()),
                }
            }
        };
        let payment = self.new_payment(order, amount, coupon, provider_id, made_by.as_ref());
        let order_id = payment.order_id.clone();
        match self.record_paid(payment, ctx.correlation_id.clone()).await {
            Ok(stored) => {
                self.end_charge(&order_id).await;
                match to_value(&contract::Payment::from(&stored)) {
                    Ok(v) => ChargeEnd::Paid(v),
                    Err(e) => ChargeEnd::Pending(e),
                }
            }
            // A concurrent request for the same order won; with the order id as the
            // idempotency key both saw the same single charge. Each redeemed the coupon:
            // this one gives its redemption back.
            Err(StoreError::AlreadyPaid) => ChargeEnd::Failed(ApiError::conflict(ALREADY_PAID)),
            // Charged but not stored: reconciliation records it with its redemption.
            Err(e) => ChargeEnd::Pending(store_err(e)),
        }
    }

    /// Forgets a pending charge whose end is recorded; a failure only leaves work for
    /// reconciliation, which finds the end recorded and forgets it then.
    async fn end_charge(&self, order_id: &str) {
        if let Err(e) = self.store.end_charge(order_id).await {
            tracing::warn!(order_id, error = %e, "could not forget a settled charge");
        }
    }

    /// Settles the charges sent before `now - grace` whose end is not recorded (an answer
    /// lost to a timeout, a store failure after the charge, a charge still processing):
    /// the gateway says how each ended, and it is recorded as `payment:create` would have.
    /// Returns how many were settled. Run at start and every `RECONCILE_SECONDS`.
    pub async fn reconcile(&self, grace: Duration) -> usize {
        let before = Utc::now() - chrono::Duration::from_std(grace).unwrap_or_default();
        let pending = match self.store.pending_charges(before, RECONCILE_BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation: could not list pending charges");
                return 0;
            }
        };
        let mut settled = 0;
        for charge in pending {
            match self.settle(&charge).await {
                Ok(true) => settled += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(order_id = %charge.order_id, error = ?e, "reconciliation: not settled yet")
                }
            }
        }
        if settled > 0 {
            tracing::info!(settled, "reconciliation settled charges");
        }
        settled
    }

    /// Settles one pending charge; `false` while it is still processing (or, for an
    /// intent, while its buyer may still pay it).
    async fn settle(&self, charge: &PendingCharge) -> Result<bool, ApiError> {
        let order_id = charge.order_id.as_str();
        let recorded = self
            .store
            .payment_for_order(order_id)
            .await
            .map_err(store_err)?
            .is_some()
            || self
                .store
                .failure_for_order(order_id)
                .await
                .map_err(store_err)?
                .is_some();
        if recorded {
            self.store.end_charge(order_id).await.map_err(store_err)?;
            return Ok(true);
        }
        if charge.is_intent() {
            return self.settle_intent(charge).await;
        }
        let found = self
            .gateway
            .find_charge(order_id)
            .await
            .map_err(|e| e.to_api())?;
        // The request never reached the gateway: nothing was charged, the redemption goes
        // back and the order may be paid again while it holds.
        let (provider_id, state) =
            found_state(found).unwrap_or_else(|| (String::new(), IntentState::Canceled));
        self.conclude(charge, provider_id, state).await
    }

    /// Records the payment the gateway made for a pending charge (found by reconciliation),
    /// with its coupon; a payment already stored for it is fine.
    async fn record_found(
        &self,
        charge: &PendingCharge,
        provider_id: String,
    ) -> Result<(), ApiError> {
        let order = match self
            .store
            .order(&charge.order_id)
            .await
            .map_err(store_err)?
        {
            Some(o) => o,
            // Its replica is gone (never, orders are kept): the charge alone names it.
            None => OrderReplica {
                id: charge.order_id.clone(),
                stuff_id: String::new(),
                user_id: charge.user_id.clone(),
                status: OrderStatus::Created,
                expires_at: charge.started_at,
                price_cents: charge.amount_cents,
                seller_id: None,
                version: 0,
            },
        };
        let payment = self.new_payment(
            &order,
            charge.amount_cents,
            charge.coupon_code.clone(),
            provider_id,
            Some(charge),
        );
        match self.record_paid(payment, None).await {
            Ok(_) | Err(StoreError::AlreadyPaid) => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Settles a pending charge whose intent a browser holds: a paid or declined intent
    /// is recorded; one still waiting for its buyer is left while the order may be paid,
    /// and cancelled once it may not (the hold ended), giving the redemption back. `false`
    /// while it waits or processes.
    async fn settle_intent(&self, charge: &PendingCharge) -> Result<bool, ApiError> {
        let order_id = charge.order_id.as_str();
        let payable = self
            .store
            .order(order_id)
            .await
            .map_err(store_err)?
            .is_some_and(|o| o.status == OrderStatus::Created && o.expires_at > Utc::now());
        let (intent_id, state) = match &charge.intent_id {
            Some(id) => {
                let known = self.gateway.intent(id).await.map_err(|e| e.to_api())?;
                let state = match known.map(|v| v.state) {
                    Some(IntentState::AwaitingBuyer) if !payable => self
                        .gateway
                        .cancel_intent(id)
                        .await
                        .map_err(|e| e.to_api())?,
                    Some(state) => state,
                    None => IntentState::Canceled,
                };
                (id.clone(), state)
            }
            // Opening it got no answer: Stripe may hold an intent under its key.
            None => {
                let found = self
                    .gateway
                    .find_charge(order_id)
                    .await
                    .map_err(|e| e.to_api())?;
                found_state(found).unwrap_or_else(|| {
                    let state = if payable {
                        IntentState::AwaitingBuyer
                    } else {
                        IntentState::Canceled
                    };
                    (String::new(), state)
                })
            }
        };
        self.conclude(charge, intent_id, state).await
    }

    /// Ends a pending charge as the gateway's `state` says: paid (recorded as
    /// `provider_id`), declined, or never charged (the redemption goes back with the
    /// pending charge, in one transaction). `false` while it waits or processes.
    async fn conclude(
        &self,
        charge: &PendingCharge,
        provider_id: String,
        state: IntentState,
    ) -> Result<bool, ApiError> {
        let order_id = charge.order_id.as_str();
        match state {
            IntentState::AwaitingBuyer | IntentState::Processing => return Ok(false),
            IntentState::Succeeded => self.record_found(charge, provider_id).await?,
            IntentState::Declined { reason } => self
                .record_declined(
                    order_id,
                    &charge.user_id,
                    charge.coupon_code.as_deref(),
                    reason,
                    None,
                )
                .await
                .map_err(store_err)?,
            IntentState::Canceled => {
                tracing::info!(order_id, "no charge was made: its redemption goes back");
                self.store
                    .abandon_charge(order_id)
                    .await
                    .map_err(store_err)?;
                return Ok(true);
            }
        }
        self.store.end_charge(order_id).await.map_err(store_err)?;
        Ok(true)
    }

    /// The hold of `order_id` ended (expired, cancelled): its open intent, if a browser
    /// holds one, is cancelled now so it can never be paid; a payment that raced the
    /// cancel is recorded (ms-order completes or refunds it). A failure is left to
    /// reconciliation.
    pub async fn hold_ended(&self, order_id: &str) {
        let pending = match self.store.pending_charge(order_id).await {
            Ok(Some(p)) if p.is_intent() => p,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(order_id, error = %e, "could not read the pending charge of an ended hold");
                return;
            }
        };
        if let Err(e) = self.settle_intent(&pending).await {
            tracing::warn!(order_id, error = ?e, "could not cancel the intent of an ended hold; reconciliation will");
        }
    }

    /// `payment:intent`: opens (or hands out again) the PaymentIntent of one of the
    /// caller's open orders, for Stripe's Payment Element. The coupon is redeemed now and
    /// kept with the intent; a new coupon cancels the earlier intent and gives its
    /// redemption back, and gets an intent (and idempotency key) of its own.
    #[tracing::instrument(skip_all, fields(order_id = tracing::field::Empty))]
    async fn open_intent(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let req = IntentOpenRequest::parse(&payload)?;
        tracing::Span::current().record("order_id", req.order_id.as_str());
        let now = Utc::now();
        let order = self.payable_order(user, &req.order_id, now).await?;
        let coupon = req.coupon_code.as_ref().map(|c| c.as_str().to_owned());
        let pending = self
            .store
            .pending_charge(&order.id)
            .await
            .map_err(store_err)?;
        // The earlier intent's redemption carries over to one with the same coupon.
        let mut carried = false;
        let mut reuse_key = None;
        if let Some(p) = &pending {
            if !p.is_intent() {
                // A charge confirmed by the server has no known end yet.
                return Err(ApiError::conflict(IN_PROGRESS));
            }
            if p.coupon_code != coupon {
                // Another coupon, another amount: that intent must never be paid.
                self.retire_intent(p).await?;
            } else {
                carried = true;
                match &p.intent_id {
                    Some(id) => {
                        match self.gateway.intent(id).await.map_err(|e| e.to_api())? {
                            Some(view) if view.state == IntentState::AwaitingBuyer => {
                                return self.intent_reply(view.client_secret, p.amount_cents);
                            }
                            Some(view) if view.state != IntentState::Canceled => {
                                return Err(self.intent_ended(p, view.state).await);
                            }
                            // Cancelled (or forgotten by the gateway): a new intent.
                            _ => {}
                        }
                    }
                    // Opening it got no answer: the same key gives the same intent.
                    None => reuse_key = p.intent_key.clone(),
                }
            }
        }
        let amount = self
            .amount_for(&order, req.coupon_code.as_ref(), carried, now)
            .await?;
        if amount == 0 {
            return Err(ApiError::field("couponCode", FREE_NO_CARD));
        }
        let amount = self
            .redeem(&order, req.coupon_code.as_ref(), carried, amount, now)
            .await?;
        let key = reuse_key
            .unwrap_or_else(|| format!("intent-{}-{}", order.id, uuid::Uuid::new_v4().simple()));
        let (fee_cents, destination) = match self.terms(&order, amount).await {
            Ok(t) => t,
            Err(e) => {
                if !carried {
                    self.release(req.coupon_code.as_ref()).await;
                }
                return Err(e);
            }
        };
        let charge = PendingCharge {
            order_id: order.id.clone(),
            user_id: user.id.clone(),
            amount_cents: amount,
            coupon_code: coupon.clone(),
            started_at: ms_common::time::now(),
            intent_key: Some(key.clone()),
            intent_id: None,
            fee_cents,
            destination: destination.as_ref().map(|d| d.account_id.clone()),
        };
        // Replaces the earlier intent's row, giving its other coupon back.
        if let Err(e) = self.store.begin_charge(&charge).await {
            if !carried {
                self.release(req.coupon_code.as_ref()).await;
            }
            return Err(store_err(e));
        }
        let opened = self
            .gateway
            .open_intent(&IntentRequest {
                order_id: order.id.clone(),
                user_id: user.id.clone(),
                amount_cents: amount,
                currency: self.currency.to_string(),
                coupon_code: coupon,
                idempotency_key: key.clone(),
                destination,
            })
            .await;
        match opened {
            Ok(intent) => {
                if let Err(e) = self
                    .store
                    .set_charge_intent(&order.id, &key, &intent.id)
                    .await
                {
                    // Reconciliation finds it by the order id; a retry by its key.
                    tracing::warn!(intent = %intent.id, error = %e, "could not note the intent's id");
                }
                tracing::info!(intent = %intent.id, amount, "intent opened");
                self.intent_reply(intent.client_secret, amount)
            }
            // No answer: a retry sends the same key and gets the same intent.
            Err(e @ (GatewayError::Unavailable(_) | GatewayError::InProgress(_))) => {
                Err(e.to_api())
            }
            // Refused: no intent exists, the redemption goes back.
            Err(e) => {
                if let Err(err) = self.store.abandon_charge(&order.id).await {
                    tracing::error!(order_id = %order.id, error = %err, "could not forget a refused intent");
                }
                Err(e.to_api())
            }
        }
    }

    /// Makes way for paying with another coupon than the open intent `p`'s: the intent is
    /// cancelled and its redemption given back with its pending charge. An intent the
    /// browser paid (or that is processing, or was declined) meanwhile is settled, and the
    /// new payment refused.
    async fn retire_intent(&self, p: &PendingCharge) -> Result<(), ApiError> {
        let state = match &p.intent_id {
            Some(id) => match self.gateway.intent(id).await.map_err(|e| e.to_api())? {
                Some(view) if view.state == IntentState::AwaitingBuyer => self
                    .gateway
                    .cancel_intent(id)
                    .await
                    .map_err(|e| e.to_api())?,
                Some(view) => view.state,
                None => IntentState::Canceled,
            },
            // Opening it got no answer: nobody holds its client secret, so it cannot be
            // paid (reconciliation finds it if it was).
            None => IntentState::Canceled,
        };
        if state != IntentState::Canceled {
            return Err(self.intent_ended(p, state).await);
        }
        self.store
            .abandon_charge(&p.order_id)
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// The refusal for a request about an intent that got `state` first (paid, processing,
    /// declined, or still open after a cancel), after recording a paid or declined one.
    async fn intent_ended(&self, p: &PendingCharge, state: IntentState) -> ApiError {
        let refusal = match &state {
            IntentState::Succeeded => ApiError::conflict(ALREADY_PAID),
            IntentState::Processing => return ApiError::conflict(PROCESSING),
            IntentState::Declined { .. } => ApiError::payment_required(DECLINED),
            IntentState::AwaitingBuyer | IntentState::Canceled => {
                return ApiError::conflict(IN_PROGRESS);
            }
        };
        if let Err(e) = self.settle_intent(p).await {
            return e;
        }
        refusal
    }

    /// The `payment:intent` ack.
    fn intent_reply(&self, client_secret: String, amount_cents: i64) -> Result<Value, ApiError> {
        to_value(&contract::PaymentIntent {
            client_secret,
            amount_cents,
            currency: self.currency.to_string(),
            publishable_key: self.publishable_key.clone(),
        })
    }

    /// Stores a payment the gateway made, with `payment.created`. When the order's payment
    /// is stored already by the same charge (Stripe's webhook came first), that one is
    /// the answer; another charge's payment is `AlreadyPaid`.
    async fn record_paid(
        &self,
        payment: PaymentRow,
        correlation_id: Option<String>,
    ) -> Result<PaymentRow, StoreError> {
        let event = EventEnvelope::new(
            Event::PaymentCreated(PaymentRecord::from(&payment)),
            correlation_id,
        );
        match self.store.record_payment(&payment, &event).await {
            Ok(()) => {
                tracing::info!(payment_id = %payment.id, amount = payment.amount_cents, "paid");
                Ok(payment)
            }
            Err(StoreError::AlreadyPaid) => {
                match self.store.payment_for_order(&payment.order_id).await? {
                    Some(stored) if stored.provider_id == payment.provider_id => Ok(stored),
                    _ => Err(StoreError::AlreadyPaid),
                }
            }
            Err(e) => {
                tracing::error!(provider_id = %payment.provider_id, amount = payment.amount_cents, error = %e, "charged but not stored; Stripe's webhook or a retry records it");
                Err(e)
            }
        }
    }

    /// A decline: `payment.failed` (ms-order cancels the order) and the coupon redemption
    /// back, in one transaction (once per order, however often it is told).
    async fn record_declined(
        &self,
        order_id: &str,
        user_id: &str,
        coupon: Option<&str>,
        reason: String,
        correlation_id: Option<String>,
    ) -> Result<(), StoreError> {
        tracing::info!(%reason, order_id, "payment declined");
        let failure = FailureRow {
            order_id: order_id.to_owned(),
            user_id: user_id.to_owned(),
            reason: reason.clone(),
            created_at: ms_common::time::now(),
        };
        let event = EventEnvelope::new(
            Event::PaymentFailed(PaymentFailure {
                order_id: order_id.to_owned(),
                user_id: user_id.to_owned(),
                reason,
            }),
            correlation_id,
        );
        self.store.record_failure(&failure, coupon, &event).await
    }

    /// `payment:webhook`: one Stripe event, verified with `STRIPE_WEBHOOK_SECRET` and acted
    /// on once. An error that may pass (the order's event not here yet, a store failure)
    /// is a 5xx, so Stripe delivers the event again later.
    #[tracing::instrument(skip_all, fields(event_id = tracing::field::Empty))]
    async fn webhook(&self, payload: Value) -> Result<Value, ApiError> {
        let req: contract::StripeWebhookRequest = serde_json::from_value(payload)
            .map_err(|_| ApiError::bad_request(webhook::INVALID_SIGNATURE))?;
        let Some(secret) = &self.webhook_secret else {
            tracing::warn!("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set");
            return Err(ApiError::bad_request(webhook::INVALID_SIGNATURE));
        };
        secret.verify(
            req.payload.as_bytes(),
            &req.signature,
            Utc::now().timestamp(),
        )?;
        let event = WebhookEvent::parse(req.payload.as_bytes())?;
        tracing::Span::current().record("event_id", event.id.as_str());
        let received = || to_value(&contract::WebhookReceived { received: true });
        if self
            .store
            .webhook_handled(&event.id)
            .await
            .map_err(store_err)?
        {
            return received();
        }
        match event.action {
            WebhookAction::Succeeded(f) => self.intent_succeeded(f).await?,
            WebhookAction::Failed(f) => self.intent_failed(f).await?,
            WebhookAction::Processing(f) => {
                tracing::info!(order_id = %f.order_id, intent = %f.intent_id, "payment processing")
            }
            WebhookAction::Refunded { intent_id, fully } => {
                self.charge_refunded(&intent_id, fully).await?
            }
            WebhookAction::AccountUpdated { account_id, ready } => {
                self.account_updated(&account_id, ready).await?
            }
            WebhookAction::Ignored => tracing::debug!(kind = %event.kind, "webhook ignored"),
        }
        self.store
            .record_webhook(&event.id, &event.kind, Utc::now())
            .await
            .map_err(store_err)?;
        received()
    }

    /// `payment_intent.succeeded`: the payment is recorded unless it is (by the answer to
    /// `payment:create`, or an earlier delivery). A payment for an order that was
    /// cancelled meanwhile is recorded too: ms-order then completes or refunds it.
    async fn intent_succeeded(&self, f: IntentFacts) -> Result<(), ApiError> {
        let order = self
            .wait_for_order(&f.order_id)
            .await?
            .ok_or_else(ApiError::unavailable)?;
        // The intent's pending charge says how it was made (destination, fee).
        let charge = self
            .store
            .pending_charge(&order.id)
            .await
            .map_err(store_err)?
            .filter(|c| c.intent_id.as_deref() == Some(f.intent_id.as_str()));
        let payment = self.new_payment(
            &order,
            f.amount_cents,
            f.coupon_code,
            f.intent_id,
            charge.as_ref(),
        );
        let order_id = order.id.clone();
        match self.record_paid(payment, None).await {
            Ok(_) => {
                self.end_charge(&order_id).await;
                Ok(())
            }
            Err(StoreError::AlreadyPaid) => {
                tracing::error!(order_id = %order.id, "a second charge succeeded for a paid order; refund it in Stripe's dashboard");
                Ok(())
            }
            Err(e) => Err(store_err(e)),
        }
    }

    /// `payment_intent.payment_failed`: the order is cancelled and its coupon given back,
    /// unless it was paid after all.
    async fn intent_failed(&self, f: IntentFacts) -> Result<(), ApiError> {
        let order = self
            .wait_for_order(&f.order_id)
            .await?
            .ok_or_else(ApiError::unavailable)?;
        if self
            .store
            .payment_for_order(&order.id)
            .await
            .map_err(store_err)?
            .is_some()
        {
            return Ok(());
        }
        let reason = f.reason.unwrap_or_else(|| "payment_failed".into());
        self.record_declined(
            &order.id,
            &order.user_id,
            f.coupon_code.as_deref(),
            reason,
            None,
        )
        .await
        .map_err(store_err)
    }

    /// `charge.refunded`: money that went back in Stripe (its dashboard, or our own refund)
    /// is recorded like `payment:refund`, without asking Stripe again.
    async fn charge_refunded(&self, intent_id: &str, fully: bool) -> Result<(), ApiError> {
        let Some(payment) = self
            .store
            .payment_by_provider(intent_id)
            .await
            .map_err(store_err)?
        else {
            tracing::warn!(intent_id, "refund of a charge with no payment stored");
            return Ok(());
        };
        if !fully {
            tracing::warn!(order_id = %payment.order_id, "partial refund in Stripe: not recorded (StuffMart refunds whole payments)");
            return Ok(());
        }
        self.refund(&payment.order_id, None, RefundBy::AlreadyRefunded)
            .await
            .map(|_| ())
    }

    /// `payment:refund` (admins): the order's payment, refunded.
    #[tracing::instrument(skip_all, fields(order_id = tracing::field::Empty))]
    async fn refund_action(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let admin = ctx.require_user()?;
        admin.require_admin()?;
        let req = RefundRequest::parse(&payload)?;
        tracing::Span::current().record("order_id", req.order_id.as_str());
        let payment = self
            .refund(&req.order_id, ctx.correlation_id.clone(), RefundBy::Gateway)
            .await?;
        tracing::info!(admin = %admin.id, payment_id = %payment.id, "refund asked by an admin");
        to_value(&contract::Payment::from(&payment))
    }

    /// Gives the money of an order's payment back through the gateway and records it with
    /// `payment.refunded` in one transaction. Idempotent: a refunded payment is answered as
    /// it is, without calling the gateway again; 404 when the order has no payment.
    pub async fn refund(
        &self,
        order_id: &str,
        correlation_id: Option<String>,
        by: RefundBy,
    ) -> Result<PaymentRow, ApiError> {
        let Some(payment) = self
            .store
            .payment_for_order(order_id)
            .await
            .map_err(store_err)?
        else {
            let known = self.store.order(order_id).await.map_err(store_err)?;
            return Err(ApiError::not_found(if known.is_some() {
                NOT_PAID
            } else {
                ORDER_NOT_FOUND
            }));
        };
        if payment.refunded_at.is_some() {
            return Ok(payment);
        }
        // Nothing was charged with a 100 % coupon: nothing to send back.
        if payment.amount_cents > 0 && by == RefundBy::Gateway {
            self.gateway
                .refund(
                    &payment.provider_id,
                    order_id,
                    payment.payout == Payout::Direct,
                )
                .await
                .map_err(|e| e.to_api())?;
        }
        let refunded_at = ms_common::time::now();
        let refunded = PaymentRow {
            refunded_at: Some(refunded_at),
            ..payment
        };
        let event = EventEnvelope::new(
            Event::PaymentRefunded(PaymentRecord::from(&refunded)),
            correlation_id,
        );
        match self
            .store
            .record_refund(order_id, refunded_at, &event)
            .await
            .map_err(store_err)?
        {
            Some(stored) => {
                tracing::info!(payment_id = %stored.id, amount = stored.amount_cents, "refunded");
                // Earnings already transferred to the seller are taken back (or by the
                // next reconciliation, if the gateway cannot be reached now).
                self.reverse_earnings(&stored).await;
                Ok(stored)
            }
            // A concurrent refund recorded it first (the gateway's idempotency key made
            // both calls one refund): answer what is stored.
            None => self
                .store
                .payment_for_order(order_id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| ApiError::not_found(NOT_PAID)),
        }
    }

    /// `coupon:create` (admins).
    async fn create_coupon(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        user.require_admin()?;
        let input = NewCoupon::parse(&payload, Utc::now())?;
        // 59 random bits make a clash practically impossible; the unique index decides.
        for _ in 0..3 {
            let coupon = CouponRow {
                code: generate_code(),
                percent_off: input.percent_off,
                max_redemptions: input.max_redemptions,
                redemptions: 0,
                expires_at: input.expires_at,
                created_by: user.id.clone(),
                created_at: ms_common::time::now(),
            };
            match self.store.create_coupon(&coupon).await {
                Ok(()) => {
                    tracing::info!(percent_off = coupon.percent_off, admin = %user.id, "coupon created");
                    return to_value(&contract::Coupon::from(&coupon));
                }
                Err(StoreError::CodeTaken) => continue,
                Err(e) => return Err(store_err(e)),
            }
        }
        Err(ApiError::internal_from(
            "three coupon code clashes in a row",
        ))
    }

    /// `coupon:list` (admins), newest first.
    async fn list_coupons(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        ctx.require_user()?.require_admin()?;
        let coupons = self.store.coupons().await.map_err(store_err)?;
        to_value(
            &coupons
                .iter()
                .map(contract::Coupon::from)
                .collect::<Vec<_>>(),
        )
    }
}

#[async_trait]
impl RpcHandler for PaymentService {
    type Action = PaymentAction;

    async fn handle(
        &self,
        ctx: RpcContext,
        action: PaymentAction,
        payload: Value,
    ) -> Result<Value, ApiError> {
        match action {
            PaymentAction::PaymentCreate => self.pay(&ctx, payload).await,
            PaymentAction::Intent => self.open_intent(&ctx, payload).await,
            PaymentAction::CouponCreate => self.create_coupon(&ctx, payload).await,
            PaymentAction::CouponList => self.list_coupons(&ctx).await,
            PaymentAction::Refund => self.refund_action(&ctx, payload).await,
            PaymentAction::CouponCheck => self.check_coupon(&ctx, payload).await,
            PaymentAction::Webhook => self.webhook(payload).await,
            PaymentAction::PayoutOnboard => self.payout_onboard(&ctx).await,
            PaymentAction::PayoutStatus => self.payout_status(&ctx).await,
        }
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}

/// What the gateway's answer about an order's charge means for its pending charge: the
/// provider id and the state; `None` when the gateway knows no such charge.
fn found_state(found: Option<ChargeOutcome>) -> Option<(String, IntentState)> {
    Some(match found? {
        ChargeOutcome::Succeeded { provider_id } => (provider_id, IntentState::Succeeded),
        ChargeOutcome::Processing { provider_id } => (provider_id, IntentState::Processing),
        ChargeOutcome::Declined { reason } => (String::new(), IntentState::Declined { reason }),
    })
}
