//! ms-payment's RPC actions (`payment:create`, `coupon:create`, `coupon:list`); inputs
//! are parsed in [`crate::domain`], the order replica is kept by [`crate::events`].
//!
//! `payment:create`: find the order (waiting briefly for its event) → owner, state and
//! coupon checks → redeem the coupon in the database → charge (skipped when nothing is
//! left to pay) → store the payment with `payment.created` in one transaction. A decline
//! stores `payment.failed` and gives the redemption back in one transaction; any other
//! failure after the redemption gives it back too.
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
    ALREADY_PAID, CANCELLED, COUPON_EXHAUSTED, COUPON_EXPIRED, COUPON_INVALID, CouponCode,
    DECLINED, NOT_PAID, NOT_YOUR_ORDER, NewCoupon, ORDER_NOT_FOUND, PAYMENT_METHOD_REQUIRED,
    PayRequest, RefundRequest, amount_after, generate_code,
};
use crate::gateway::{ChargeOutcome, ChargeRequest, PaymentGateway};
use crate::store::{
    CouponRow, FailureRow, OrderReplica, PaymentRow, PaymentStore, Redemption, StoreError,
};
use async_trait::async_trait;
use chrono::Utc;
use ms_common::ApiError;
use ms_common::auth::AuthUser;
use ms_common::contract::{self, PaymentAction};
use ms_common::events::{Event, EventEnvelope, OrderStatus, PaymentFailure, PaymentRecord};
use ms_common::messaging::{RpcContext, RpcHandler};
use ms_common::storage::ReplyLog;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often the store is re-read while waiting for an order's event.
const ORDER_POLL: Duration = Duration::from_millis(25);

/// The payment service's state and actions.
pub struct PaymentService {
    pub(crate) store: Arc<dyn PaymentStore>,
    gateway: Arc<dyn PaymentGateway>,
    currency: String,
    order_wait: Duration,
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
    /// waits up to `order_wait` for an order's event.
    pub fn new(
        store: Arc<dyn PaymentStore>,
        gateway: Arc<dyn PaymentGateway>,
        currency: String,
        order_wait: Duration,
    ) -> Self {
        Self {
            store,
            gateway,
            currency,
            order_wait,
            replica_changed: Notify::new(),
        }
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

    /// `payment:create`.
    #[tracing::instrument(skip_all, fields(order_id = tracing::field::Empty))]
    async fn pay(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let req = PayRequest::parse(&payload)?;
        tracing::Span::current().record("order_id", req.order_id.as_str());
        let order = self
            .wait_for_order(&req.order_id)
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
        let now = Utc::now();
        if order.status == OrderStatus::Cancelled || declined.is_some() || order.expires_at <= now {
            return Err(ApiError::conflict(CANCELLED));
        }

        // Coupon: look first (clear messages, and no redemption for a request that is
        // invalid anyway), then redeem atomically (which may still lose a race).
        let mut amount = order.price_cents;
        if let Some(code) = &req.coupon_code {
            let coupon = self.store.coupon(code.as_str()).await.map_err(store_err)?;
            match coupon {
                Some(c) if !c.expired_at(now) && !c.exhausted() => {
                    amount = amount_after(order.price_cents, c.percent_off);
                }
                other => return Err(coupon_refused(&Redemption::why_not(other, now))),
            }
        }
        let payment_method = match (&req.payment_method, amount) {
            (_, 0) => None,
            (Some(pm), _) => Some(pm.clone()),
            (None, _) => return Err(ApiError::field("paymentMethod", PAYMENT_METHOD_REQUIRED)),
        };
        if let Some(code) = &req.coupon_code {
            match self
                .store
                .redeem_coupon(code.as_str(), now)
                .await
                .map_err(store_err)?
            {
                Redemption::Redeemed(c) => amount = amount_after(order.price_cents, c.percent_off),
                refused => return Err(coupon_refused(&refused)),
            }
        }
        let result = self
            .charge_and_record(ctx, user, &order, &req, amount, payment_method)
            .await;
        if let Err(e) = &result
            && e.status != 402
        {
            // The decline path gave the redemption back in its own transaction.
            self.release(req.coupon_code.as_ref()).await;
        }
        result
    }

    async fn charge_and_record(
        &self,
        ctx: &RpcContext,
        user: &AuthUser,
        order: &OrderReplica,
        req: &PayRequest,
        amount: i64,
        payment_method: Option<String>,
    ) -> Result<Value, ApiError> {
        let coupon = req.coupon_code.as_ref().map(|c| c.as_str().to_owned());
        let provider_id = match payment_method {
            None => format!("coupon:{}", coupon.as_deref().unwrap_or("-")),
            Some(pm) => {
                let charge = ChargeRequest {
                    order_id: order.id.clone(),
                    user_id: user.id.clone(),
                    amount_cents: amount,
                    currency: self.currency.clone(),
                    payment_method: pm,
                };
                match self.gateway.charge(&charge).await {
                    Ok(ChargeOutcome::Succeeded { provider_id }) => provider_id,
                    Ok(ChargeOutcome::Declined { reason }) => {
                        return Err(self.declined(ctx, user, order, coupon, reason).await);
                    }
                    Err(e) => return Err(e.to_api()),
                }
            }
        };
        let payment = PaymentRow {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order.id.clone(),
            user_id: user.id.clone(),
            amount_cents: amount,
            coupon_code: coupon,
            provider_id,
            created_at: ms_common::time::now(),
            refunded_at: None,
        };
        let event = EventEnvelope::new(
            Event::PaymentCreated(PaymentRecord::from(&payment)),
            ctx.correlation_id.clone(),
        );
        match self.store.record_payment(&payment, &event).await {
            Ok(()) => {}
            // A concurrent request for the same order won; with the order id as the
            // idempotency key both saw the same single charge.
            Err(StoreError::AlreadyPaid) => return Err(ApiError::conflict(ALREADY_PAID)),
            Err(e) => {
                tracing::error!(provider_id = %payment.provider_id, amount, "charged but not stored; a retry finds the same charge by idempotency key");
                return Err(store_err(e));
            }
        }
        tracing::info!(payment_id = %payment.id, amount, "paid");
        to_value(&contract::Payment::from(&payment))
    }

    /// A decline: `payment.failed` (ms-order cancels the order) and the coupon redemption
    /// back, in one transaction; the answer is 402.
    async fn declined(
        &self,
        ctx: &RpcContext,
        user: &AuthUser,
        order: &OrderReplica,
        coupon: Option<String>,
        reason: String,
    ) -> ApiError {
        tracing::info!(%reason, "payment declined");
        let failure = FailureRow {
            order_id: order.id.clone(),
            user_id: user.id.clone(),
            reason: reason.clone(),
            created_at: ms_common::time::now(),
        };
        let event = EventEnvelope::new(
            Event::PaymentFailed(PaymentFailure {
                order_id: order.id.clone(),
                user_id: user.id.clone(),
                reason,
            }),
            ctx.correlation_id.clone(),
        );
        match self
            .store
            .record_failure(&failure, coupon.as_deref(), &event)
            .await
        {
            Ok(()) => ApiError::payment_required(DECLINED),
            Err(e) => {
                // Nothing was written: release the redemption separately (status != 402).
                store_err(e)
            }
        }
    }

    /// `payment:refund` (admins): the order's payment, refunded.
    #[tracing::instrument(skip_all, fields(order_id = tracing::field::Empty))]
    async fn refund_action(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let admin = ctx.require_user()?;
        admin.require_admin()?;
        let req = RefundRequest::parse(&payload)?;
        tracing::Span::current().record("order_id", req.order_id.as_str());
        let payment = self
            .refund(&req.order_id, ctx.correlation_id.clone())
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
        if payment.amount_cents > 0 {
            self.gateway
                .refund(&payment.provider_id, order_id)
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
            PaymentAction::CouponCreate => self.create_coupon(&ctx, payload).await,
            PaymentAction::CouponList => self.list_coupons(&ctx).await,
            PaymentAction::Refund => self.refund_action(&ctx, payload).await,
        }
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}
