//! The order store: orders and the replica of stuff, SQLite or MongoDB behind one trait.
//!
//! "At most one order that holds or bought a stuff" (status `created` or `complete`) is a
//! partial unique index: of any number of simultaneous buyers exactly one insert succeeds,
//! and a late payment cannot complete a cancelled order once another order took the stuff.
//! A `refunded` order (like a `cancelled` one) is outside the index: it frees the stuff.
//!
//! Reviews live here too (ms-order knows who bought what): "one review per order" is a
//! unique index on the order id, and a review, its order's `reviewed` flag and its
//! `review.created` event are written in one transaction. Buyers' names are read from the
//! replica of accounts when reviews are read, so a rename shows.

pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use ms_common::events::{
    OrderRecord, OrderStatus, ReviewRecord, SaleRecord, StuffStatus, UserRecord, VersionCheck,
};
use ms_common::storage::OutboxStore;
use std::sync::Arc;

/// What ms-order knows about a stuff, replicated from `stuff.*` events (serde reads it from
/// a MongoDB `stuff_replica` document).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StuffReplica {
    /// Stuff id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Who sells it (cannot buy it).
    pub seller_id: String,
    /// Its title, copied into new orders (replicas written before it was kept have none).
    #[serde(default)]
    pub title: String,
    /// Current price, copied into new orders.
    pub price_cents: i64,
    /// Status as ms-stuff last announced it.
    pub status: StuffStatus,
    /// The replicated record version.
    #[serde(with = "ms_common::storage::version")]
    pub version: u64,
    /// True when it has a file or a note to deliver (it cannot be ordered otherwise);
    /// replicas written before delivery existed have none.
    #[serde(default)]
    pub deliverable: bool,
}

/// Why an order could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Another active order holds the stuff (the unique index said so).
    #[error("stuff is held by another order")]
    Held,
    /// A complete order exists for the stuff.
    #[error("stuff is sold")]
    Sold,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What the payment that completes an order brings to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paid {
    /// Charged, after coupons.
    pub cents: i64,
    /// The marketplace's share of it, at the fee in force when it was paid.
    pub fee_cents: i64,
}

/// A seller's sales, newest first, and everything they earned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesPage {
    /// The newest sales.
    pub sales: Vec<SaleRecord>,
    /// `earnedCents` summed over every sale.
    pub total_earned_cents: i64,
}

/// The sale a complete order is to its seller (`buyer_name`: from the replica of
/// accounts, if it knows the buyer).
pub fn sale_of(
    order: &OrderRecord,
    seller_id: String,
    fee_cents: i64,
    paid_at: chrono::DateTime<chrono::Utc>,
    buyer_name: Option<String>,
) -> SaleRecord {
    let paid = order.paid_cents.unwrap_or(0);
    SaleRecord {
        seller_id,
        order_id: order.id.clone(),
        stuff_id: order.stuff_id.clone(),
        stuff_title: order.stuff_title.clone(),
        buyer_display_name: buyer_name
            .unwrap_or_else(|| ms_common::contract::UNKNOWN_BUYER_NAME.to_owned()),
        paid_cents: paid,
        fee_cents,
        earned_cents: paid - fee_cents,
        paid_at,
    }
}

/// Why a review could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The order already has a review (the unique index on the order id said so).
    #[error("order already reviewed")]
    AlreadyReviewed,
    /// The order is not (or no longer) a complete order of the reviewer's.
    #[error("order is not complete")]
    NotComplete,
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A review as read back: the record and its buyer's name as the replica of accounts
/// holds it now (`None` for an account not heard of).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedReview {
    /// The review.
    pub review: ReviewRecord,
    /// The buyer's display name, if known.
    pub buyer_name: Option<String>,
}

/// What ms-order needs from storage.
#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    /// Applies a stuff record if it is newer than the replica's (gaps heal: it is the full
    /// record); says what it did.
    async fn apply_stuff(&self, s: &StuffReplica) -> anyhow::Result<VersionCheck>;
    /// The replica of one stuff.
    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>>;
    /// Applies `user.created` / `user.updated` to the replica of account names (buyers in
    /// reviews and sales) when newer than held; true when the name changed.
    async fn apply_user(&self, user: &UserRecord) -> anyhow::Result<bool>;
    /// Inserts an active order and its `order.created` event atomically, recording the
    /// stuff's seller from the replica (whose sale it becomes).
    async fn create_order(
        &self,
        order: &OrderRecord,
        correlation_id: Option<String>,
    ) -> Result<(), CreateError>;
    /// One order.
    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>>;
    /// A user's orders, newest first.
    async fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<OrderRecord>>;
    /// Moves an order from `from` to `to` (compare-and-set on status), bumping its version,
    /// recording `paid` when given (the payment that moves it) and, when it becomes
    /// `complete`, when it was paid; writes the matching event, and `sale.completed` for a
    /// completion, in the same transaction. `None` if it was not in `from`.
    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<Paid>,
        correlation_id: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>>;
    /// A seller's complete orders, newest paid first, at most `limit`, and the earnings of
    /// all of them.
    async fn sales_of(&self, seller_id: &str, limit: u32) -> anyhow::Result<SalesPage>;
    /// Ids of `created` orders whose hold ended before `before`, the longest overdue first,
    /// at most `limit` (the sweeper cancels them, in case their TTL expiry was lost).
    async fn overdue_holds(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<String>>;
    /// Whether another order (not `except`) for the stuff is active or complete.
    async fn stuff_taken(&self, stuff_id: &str, except: &str) -> anyhow::Result<bool>;
    /// Stores a review of a complete order of `review.user_id`'s, marks the order
    /// `reviewed` (no version bump, no order event) and writes `review.created`, in one
    /// transaction; records `fallback_name` as the buyer's name when the replica of
    /// accounts has none yet. Returns the review with the buyer's name.
    async fn create_review(
        &self,
        review: &ReviewRecord,
        fallback_name: &str,
        correlation_id: Option<String>,
    ) -> Result<NamedReview, ReviewError>;
    /// A stuff's reviews, newest first, at most `limit`, with their buyers' current names.
    async fn reviews_of(&self, stuff_id: &str, limit: u32) -> anyhow::Result<Vec<NamedReview>>;
    /// How many active orders hold a stuff (tests check the invariant).
    async fn active_count(&self, stuff_id: &str) -> anyhow::Result<u64>;
    /// The outbox, for the relay.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
}

/// The event that announces an order in `status`.
pub fn event_for(
    order: &OrderRecord,
    correlation_id: Option<String>,
) -> ms_common::events::EventEnvelope {
    use ms_common::events::{Event, EventEnvelope};
    let ev = match order.status {
        OrderStatus::Created => Event::OrderCreated(order.clone()),
        OrderStatus::Cancelled => Event::OrderCancelled(order.clone()),
        OrderStatus::Complete => Event::OrderCompleted(order.clone()),
        OrderStatus::Refunded => Event::OrderRefunded(order.clone()),
    };
    EventEnvelope::new(ev, correlation_id)
}

/// The `review.created` event of a review.
pub fn review_event(
    review: &ReviewRecord,
    correlation_id: Option<String>,
) -> ms_common::events::EventEnvelope {
    use ms_common::events::{Event, EventEnvelope};
    EventEnvelope::new(Event::ReviewCreated(review.clone()), correlation_id)
}

/// Opens the store the configuration selects.
pub async fn open(
    storage: &ms_common::config::StorageConfig,
) -> anyhow::Result<Arc<dyn OrderStore>> {
    ms_common::storage::open_store(
        storage,
        async |url, database| {
            Ok(Arc::new(mongo::MongoOrderStore::open(url, database).await?) as Arc<dyn OrderStore>)
        },
        async |path| {
            Ok(Arc::new(sqlite::SqliteOrderStore::open(path).await?) as Arc<dyn OrderStore>)
        },
    )
    .await
}
