//! The payment store: a repository trait with SQLite and MongoDB backends.
//!
//! Both pass the same conformance suite (`tests/store_conformance.rs`). The races that
//! matter are decided by the database: one payment per order (unique order id), and a
//! coupon's last redemption (a conditional increment that only one writer can win).

pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::events::{EventEnvelope, OrderRecord, OrderStatus, PaymentRecord, VersionCheck};
use ms_common::storage::OutboxStore;
use std::sync::Arc;

/// ms-payment's copy of an order, fed by `order.*` events (serde gives the layout of a
/// MongoDB `orders` document).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReplica {
    /// The order id.
    #[serde(rename = "_id")]
    pub id: String,
    /// The stuff it holds.
    pub stuff_id: String,
    /// The buyer: only they may pay.
    pub user_id: String,
    /// Status as of `version`.
    pub status: OrderStatus,
    /// After this the hold is over and the order cannot be paid.
    #[serde(with = "ms_common::time::db")]
    pub expires_at: DateTime<Utc>,
    /// What the order costs before any coupon.
    pub price_cents: i64,
    /// Whose sale it is (who gets paid); `None` on orders from before it was carried.
    #[serde(default)]
    #[sqlx(default)]
    pub seller_id: Option<String>,
    /// Record version from ms-order (1 at creation).
    #[sqlx(try_from = "i64")]
    #[serde(with = "ms_common::storage::version")]
    pub version: u64,
}

impl From<&OrderRecord> for OrderReplica {
    fn from(o: &OrderRecord) -> Self {
        Self {
            id: o.id.clone(),
            stuff_id: o.stuff_id.clone(),
            user_id: o.user_id.clone(),
            status: o.status,
            expires_at: o.expires_at,
            price_cents: o.price_cents,
            seller_id: o.seller_id.clone(),
            version: o.version,
        }
    }
}

/// Where a payment's earnings (amount less fee) stand for its seller: the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payout {
    /// Kept by the marketplace until the seller finishes onboarding (and payments from
    /// before the ledger).
    #[default]
    Held,
    /// A destination charge: Stripe paid the seller's account at once.
    Direct,
    /// Claimed for a transfer to the seller's account (sent once `transfer_id` is set).
    Transferred,
    /// Transferred, then taken back from the seller after a refund.
    Reversed,
}

impl Payout {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Payout::Held => "held",
            Payout::Direct => "direct",
            Payout::Transferred => "transferred",
            Payout::Reversed => "reversed",
        }
    }
}

impl TryFrom<String> for Payout {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "held" => Ok(Payout::Held),
            "direct" => Ok(Payout::Direct),
            "transferred" => Ok(Payout::Transferred),
            "reversed" => Ok(Payout::Reversed),
            other => Err(format!("unknown payout state {other:?}")),
        }
    }
}

/// A seller's Stripe connected account; serde gives the layout of a MongoDB
/// `payout_accounts` document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayoutAccount {
    /// The seller (one account each).
    #[serde(rename = "_id")]
    pub seller_id: String,
    /// The gateway's account id (`acct_…`).
    pub account_id: String,
    /// True once payouts are enabled: new sales become destination charges.
    pub onboarded: bool,
    /// When onboarding began.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
}

/// What the ledger holds for a seller and what went to them (refunds excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayoutTotals {
    /// Earnings kept until onboarding ends.
    pub held_cents: i64,
    /// Earnings paid to the seller's account.
    pub paid_out_cents: i64,
}

/// A stored payment (at most one per order); serde gives the layout of a MongoDB `payments`
/// document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    /// Opaque id.
    #[serde(rename = "_id")]
    pub id: String,
    /// The order paid for (unique).
    pub order_id: String,
    /// Who paid.
    pub user_id: String,
    /// What was charged, after the coupon.
    pub amount_cents: i64,
    /// The coupon redeemed, if any.
    pub coupon_code: Option<String>,
    /// Gateway reference (PaymentIntent id, or `coupon:<code>` when nothing was charged).
    pub provider_id: String,
    /// When it was made.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
    /// When the money went back; `None` while it is kept (set once, never cleared).
    #[serde(default, with = "ms_common::time::db_opt")]
    pub refunded_at: Option<DateTime<Utc>>,
    /// The ISO code the amount was charged in.
    #[serde(default)]
    #[sqlx(default)]
    pub currency: String,
    /// The marketplace's share, pinned when charged; the seller earns the rest.
    #[serde(default)]
    #[sqlx(default)]
    pub fee_cents: i64,
    /// Who earns it (`None` for payments from before sellers were known: never paid out).
    #[serde(default)]
    #[sqlx(default)]
    pub seller_id: Option<String>,
    /// Where the earnings stand.
    #[serde(default)]
    #[sqlx(try_from = "String")]
    pub payout: Payout,
    /// The transfer claimed with (the idempotency key of) a ledger payout.
    #[serde(default)]
    #[sqlx(default)]
    pub transfer_key: Option<String>,
    /// The gateway's id of that transfer, once sent.
    #[serde(default)]
    #[sqlx(default)]
    pub transfer_id: Option<String>,
}

impl PaymentRow {
    /// What the seller earns from it.
    pub fn earned_cents(&self) -> i64 {
        (self.amount_cents - self.fee_cents).max(0)
    }
}

impl From<&PaymentRow> for PaymentRecord {
    fn from(p: &PaymentRow) -> Self {
        Self {
            id: p.id.clone(),
            order_id: p.order_id.clone(),
            user_id: p.user_id.clone(),
            amount_cents: p.amount_cents,
            coupon_code: p.coupon_code.clone(),
            provider_id: p.provider_id.clone(),
            created_at: p.created_at,
            refunded_at: p.refunded_at,
            currency: p.currency.clone(),
            fee_cents: Some(p.fee_cents),
        }
    }
}

/// A declined payment: ms-order cancels the order on its event, so it is never charged again.
/// Serde gives the layout of a MongoDB `payment_failures` document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureRow {
    /// The order whose payment was declined (one row per order).
    #[serde(rename = "_id")]
    pub order_id: String,
    /// Who tried.
    pub user_id: String,
    /// The decline code, for logs.
    pub reason: String,
    /// When it was declined.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
}

/// A charge sent to the gateway whose end is not recorded yet: written before the gateway
/// is asked, removed once a payment or a failure is stored (or the gateway knows no such
/// charge). Reconciliation asks the gateway about the ones left behind. Serde gives the
/// layout of a MongoDB `pending_charges` document.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingCharge {
    /// The order charged (one pending charge per order).
    #[serde(rename = "_id")]
    pub order_id: String,
    /// Who pays.
    pub user_id: String,
    /// What is charged, after the coupon.
    pub amount_cents: i64,
    /// The coupon redeemed for it (given back if no charge happened).
    pub coupon_code: Option<String>,
    /// When the gateway was asked.
    #[serde(with = "ms_common::time::db")]
    pub started_at: DateTime<Utc>,
    /// The idempotency key of the PaymentIntent opened for the browser (`payment:intent`);
    /// `None` for a charge confirmed by the server alone. A new amount gets a new key.
    #[serde(default)]
    pub intent_key: Option<String>,
    /// That PaymentIntent's id, once the gateway answered; `None` while the answer is
    /// outstanding (sending the same key again gives the same intent).
    #[serde(default)]
    pub intent_id: Option<String>,
    /// The marketplace's share of the amount, as sent to the gateway.
    #[serde(default)]
    pub fee_cents: i64,
    /// The seller's connected account when it is a destination charge (Stripe pays the
    /// seller at once); `None`: the earnings are held in the ledger.
    #[serde(default)]
    pub destination: Option<String>,
}

impl PendingCharge {
    /// True when a browser holds this charge's intent: it is waiting for the buyer, not
    /// an answer lost in flight, so it is settled by asking about that intent.
    pub fn is_intent(&self) -> bool {
        self.intent_key.is_some()
    }
}

/// A stored coupon; serde gives the layout of a MongoDB `coupons` document (`null` for no
/// limit and no expiry, which the redemption filter matches).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponRow {
    /// Random, unguessable code (unique).
    #[serde(rename = "_id")]
    pub code: String,
    /// 1–100.
    pub percent_off: i64,
    /// How many payments may use it; `None` = unlimited.
    pub max_redemptions: Option<i64>,
    /// How many payments have used it.
    pub redemptions: i64,
    /// Not valid from this time on; `None` = never expires.
    #[serde(default, with = "ms_common::time::db_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The admin who created it.
    pub created_by: String,
    /// For newest-first listing.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
}

impl CouponRow {
    /// True when the coupon is past its expiry at `now`.
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
    /// True when every allowed redemption is used.
    pub fn exhausted(&self) -> bool {
        self.max_redemptions.is_some_and(|m| self.redemptions >= m)
    }
}

/// What an attempt to redeem a coupon came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Counted; the coupon with this redemption included.
    Redeemed(CouponRow),
    /// No coupon with that code.
    Unknown,
    /// Every redemption is taken.
    Exhausted,
    /// Past its expiry.
    Expired,
}

impl Redemption {
    /// Explains why a coupon that could not be redeemed was refused (`None` = unknown).
    pub fn why_not(coupon: Option<CouponRow>, now: DateTime<Utc>) -> Self {
        match coupon {
            None => Redemption::Unknown,
            Some(c) if c.expired_at(now) => Redemption::Expired,
            Some(_) => Redemption::Exhausted,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A payment for this order already exists (unique order id).
    #[error("order already paid")]
    AlreadyPaid,
    /// A coupon with this code exists (unique code).
    #[error("coupon code taken")]
    CodeTaken,
    /// Anything else (logged, shown as 500).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

ms_common::database_errors!(StoreError);

/// What ms-payment needs from storage.
#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    /// Applies an order event by version: any version newer than the one held (`Apply`;
    /// a gap heals, the event is the full order), duplicates and older versions are
    /// `Stale`, a concurrent write in between is `Raced` and changes nothing.
    async fn apply_order(&self, order: &OrderReplica) -> Result<VersionCheck, StoreError>;
    /// The replica of one order.
    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError>;
    /// The payment of an order, if it was paid.
    async fn payment_for_order(&self, order_id: &str) -> Result<Option<PaymentRow>, StoreError>;
    /// Stores a payment and its `payment.created` event atomically; `AlreadyPaid` when the
    /// order has a payment (nothing is written then).
    async fn record_payment(
        &self,
        payment: &PaymentRow,
        event: &EventEnvelope,
    ) -> Result<(), StoreError>;
    /// Marks the order's payment refunded at `refunded_at` and writes its
    /// `payment.refunded` event, in one transaction, if it is not refunded yet
    /// (compare-and-set on `refundedAt IS NULL`). The payment as now stored, or `None`
    /// when there is no payment or it was already refunded (nothing is written then).
    async fn record_refund(
        &self,
        order_id: &str,
        refunded_at: DateTime<Utc>,
        event: &EventEnvelope,
    ) -> Result<Option<PaymentRow>, StoreError>;
    /// Stores a declined payment with its `payment.failed` event and, in the same
    /// transaction, gives back the redemption of `coupon` (the charge that used it did not
    /// happen). Idempotent: when the order already has a failure nothing is written.
    async fn record_failure(
        &self,
        failure: &FailureRow,
        coupon: Option<&str>,
        event: &EventEnvelope,
    ) -> Result<(), StoreError>;
    /// The declined payment of an order, if there was one.
    async fn failure_for_order(&self, order_id: &str) -> Result<Option<FailureRow>, StoreError>;
    /// Inserts a coupon; `CodeTaken` when the code exists.
    async fn create_coupon(&self, coupon: &CouponRow) -> Result<(), StoreError>;
    /// One coupon by code.
    async fn coupon(&self, code: &str) -> Result<Option<CouponRow>, StoreError>;
    /// Every coupon, newest first.
    async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError>;
    /// Counts one redemption if the coupon exists, is not expired at `now` and has one
    /// left, in one conditional update (of racing redeemers only as many win as are left).
    async fn redeem_coupon(&self, code: &str, now: DateTime<Utc>)
    -> Result<Redemption, StoreError>;
    /// The payment made by a gateway charge (`pi_…`), to match Stripe's events to it.
    async fn payment_by_provider(
        &self,
        provider_id: &str,
    ) -> Result<Option<PaymentRow>, StoreError>;
    /// True when the Stripe event `id` was handled (each is acted on once).
    async fn webhook_handled(&self, id: &str) -> Result<bool, StoreError>;
    /// Notes the Stripe event `id` of type `kind` as handled at `at` (idempotent).
    async fn record_webhook(
        &self,
        id: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Notes a charge about to be sent, replacing an earlier one of the order. The caller
    /// redeemed `charge`'s coupon, or carries the earlier charge's redemption when the
    /// coupon is the same: an earlier charge's different coupon is given back in the same
    /// transaction.
    async fn begin_charge(&self, charge: &PendingCharge) -> Result<(), StoreError>;
    /// Records the id the gateway gave the intent opened with `intent_key`, if the
    /// order's pending charge still has that key (a replaced one is left alone).
    async fn set_charge_intent(
        &self,
        order_id: &str,
        intent_key: &str,
        intent_id: &str,
    ) -> Result<(), StoreError>;
    /// Forgets the order's pending charge and gives its redemption back, in one
    /// transaction (nothing was charged); `false` when there was none (nothing changes,
    /// so a second call never releases twice).
    async fn abandon_charge(&self, order_id: &str) -> Result<bool, StoreError>;
    /// The pending charge of an order (a retry of `payment:create` keeps its redemption).
    async fn pending_charge(&self, order_id: &str) -> Result<Option<PendingCharge>, StoreError>;
    /// Pending charges started before `before`, oldest first, at most `limit`.
    async fn pending_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCharge>, StoreError>;
    /// Forgets the pending charge of an order (its end is recorded).
    async fn end_charge(&self, order_id: &str) -> Result<(), StoreError>;
    /// Gives one redemption back (the payment that used it failed); never below zero.
    async fn release_coupon(&self, code: &str) -> Result<(), StoreError>;
    /// The sellers' side of the payments (accounts, ledger, transfers), on the same
    /// database.
    fn ledger(&self) -> Arc<dyn LedgerStore>;
    /// The outbox of this store, for the relay.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
}

/// What paying sellers needs from storage: their connected accounts and where each
/// payment's earnings stand (columns of `payments`, written with the payment itself).
#[async_trait]
pub trait LedgerStore: Send + Sync + 'static {
    /// The seller's connected account, if onboarding began.
    async fn payout_account(&self, seller_id: &str) -> Result<Option<PayoutAccount>, StoreError>;
    /// Keeps `account` unless the seller has one already (two racing onboardings keep
    /// the first); the account now stored.
    async fn add_payout_account(
        &self,
        account: &PayoutAccount,
    ) -> Result<PayoutAccount, StoreError>;
    /// Marks the account `account_id` onboarded; its seller, or `None` for an unknown one.
    async fn set_onboarded(&self, account_id: &str) -> Result<Option<String>, StoreError>;
    /// Claims the seller's held, unrefunded earnings for one transfer keyed `key` (a
    /// conditional update: a payment is claimed once); how many were claimed.
    async fn claim_held(&self, seller_id: &str, key: &str) -> Result<u64, StoreError>;
    /// The seller's claimed transfers not sent yet: each key with its payments.
    async fn unsent_transfers(
        &self,
        seller_id: &str,
    ) -> Result<Vec<(String, Vec<PaymentRow>)>, StoreError>;
    /// Records the gateway's id of the transfer keyed `key`.
    async fn set_transfer_id(&self, key: &str, transfer_id: &str) -> Result<(), StoreError>;
    /// Onboarded sellers with held earnings or unsent transfers (reconciliation's work).
    async fn payout_sellers(&self, limit: u32) -> Result<Vec<String>, StoreError>;
    /// Refunded payments whose earnings were transferred and not yet taken back.
    async fn reversals_due(&self, limit: u32) -> Result<Vec<PaymentRow>, StoreError>;
    /// Marks a transferred payment's earnings taken back.
    async fn set_reversed(&self, order_id: &str) -> Result<(), StoreError>;
    /// The seller's held and paid-out earnings, refunds excluded.
    async fn payout_totals(&self, seller_id: &str) -> Result<PayoutTotals, StoreError>;
}

/// Payments claimed for transfers, grouped by transfer key (rows come sorted by key).
pub fn group_by_transfer(rows: Vec<PaymentRow>) -> Vec<(String, Vec<PaymentRow>)> {
    let mut groups: Vec<(String, Vec<PaymentRow>)> = Vec::new();
    for row in rows {
        let Some(key) = row.transfer_key.clone() else {
            continue;
        };
        match groups.last_mut() {
            Some((k, list)) if *k == key => list.push(row),
            _ => groups.push((key, vec![row])),
        }
    }
    groups
}

/// Opens the store the configuration selects.
pub async fn open(
    storage: &ms_common::config::StorageConfig,
) -> anyhow::Result<Arc<dyn PaymentStore>> {
    ms_common::storage::open_store(
        storage,
        async |url, database| {
            Ok(
                Arc::new(mongo::MongoPaymentStore::open(url, database).await?)
                    as Arc<dyn PaymentStore>,
            )
        },
        async |path| {
            Ok(Arc::new(sqlite::SqlitePaymentStore::open(path).await?) as Arc<dyn PaymentStore>)
        },
    )
    .await
}
