//! The typed event catalogue: every fact a service publishes, with its record `version`.
//!
//! Wire form: `{"id","type","occurredAt","correlationId","data"}`; the AMQP routing key
//! is the `type` (e.g. `stuff.updated`). Records carry `version`, incremented on each
//! change, and every event carries its record's full state, so a consumer applies any
//! version newer than the one it holds and drops the others (see [`VersionCheck`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user's role, decided by ms-user at sign-up.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum Role {
    /// Everyone.
    User,
    /// Granted by `ms-user admin grant EMAIL` (or `ADMIN_EMAILS` in development): may
    /// manage coupons.
    Admin,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// The public part of an account, as replicated to others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// Opaque id.
    pub id: String,
    /// Normalised e-mail.
    pub email: String,
    /// Role (at sign-up, then as `ms-user admin grant|revoke` sets it).
    pub role: Role,
    /// The name others see (sellers' listings, reviews, sales): the user's choice, else
    /// the e-mail's local part ([`crate::contract::default_display_name`]).
    pub display_name: String,
    /// Record version (1 at creation, +1 per change).
    pub version: u64,
}

/// Where a stuff is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum StuffStatus {
    /// Can be bought.
    Available,
    /// Held by an active order ("being checked out").
    Reserved,
    /// Paid for.
    Sold,
    /// Taken down by its seller: out of the catalogue and not buyable (its buyers keep
    /// their deliveries).
    Withdrawn,
}

impl StuffStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            StuffStatus::Available => "available",
            StuffStatus::Reserved => "reserved",
            StuffStatus::Sold => "sold",
            StuffStatus::Withdrawn => "withdrawn",
        }
    }
    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "available" => Some(Self::Available),
            "reserved" => Some(Self::Reserved),
            "sold" => Some(Self::Sold),
            "withdrawn" => Some(Self::Withdrawn),
            _ => None,
        }
    }
}

// Also a row of ms-stuff's SQLite table, column for field (`FromRow`).
/// The contract's `Stuff` shape, also the payload of `stuff.*` events.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow,
)]
#[serde(rename_all = "camelCase")]
pub struct StuffRecord {
    /// Opaque id.
    pub id: String,
    /// Trimmed title.
    pub title: String,
    /// Free text (may be empty).
    pub description: String,
    /// Price in cents.
    pub price_cents: i64,
    /// The seller's user id.
    pub seller_id: String,
    /// Current status.
    pub status: StuffStatus,
    /// The order holding it while reserved (internal; not in the contract shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Record version.
    #[sqlx(try_from = "i64")]
    pub version: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// What a buyer downloads, in upload order (at most `limits::FILES_MAX`).
    #[serde(default)]
    #[sqlx(json)]
    pub files: Vec<StoredFile>,
    /// True when the seller left a private note for buyers (the note itself never leaves
    /// ms-stuff except in `delivery:get`).
    #[serde(default)]
    pub has_secret_note: bool,
    /// The course it is for (upper-case, e.g. `CS 101`), if the seller named one.
    #[serde(default)]
    pub course: Option<String>,
    /// The object holding the cover thumbnail ([`crate::files::cover_key`]), if the seller
    /// gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub cover: Option<String>,
    /// The seller's display name as ms-stuff's replica of accounts knew it when the
    /// record was read (`None` for a seller it has not heard of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub seller_name: Option<String>,
    /// How many reviews rated it (ms-stuff counts `review.created`; 0 on records from
    /// before reviews existed).
    #[serde(default)]
    #[sqlx(default)]
    pub rating_count: i64,
    /// The sum of those ratings (1–5 each), so the average needs no other read.
    #[serde(default)]
    #[sqlx(default)]
    pub rating_sum: i64,
    /// What `stuff:list {sort: "rating"}` orders by: [`rating_rank`] of the count and sum.
    #[serde(default)]
    #[sqlx(default)]
    pub rating_rank: i64,
}

impl StuffRecord {
    /// True when a buyer would get something: a file or a note.
    pub fn deliverable(&self) -> bool {
        !self.files.is_empty() || self.has_secret_note
    }
}

/// The sort key of a stuff rated `count` times with ratings summing to `sum`: the lower
/// bound of the Wilson score interval at 95 % for the share of positive ratings (a 1–5
/// rating counts as (rating − 1) / 4 positive), times 1,000,000, as an integer. Few
/// ratings give a wide interval and a low bound, so one 5-star review does not outrank
/// many reviews that are nearly as good; 0 without ratings.
pub fn rating_rank(count: i64, sum: i64) -> i64 {
    if count <= 0 {
        return 0;
    }
    // z for a two-sided 95 % interval.
    const Z: f64 = 1.959_963_984_540_054;
    #[allow(clippy::cast_precision_loss)]
    let (n, positive) = (count as f64, (sum - count) as f64 / 4.0);
    let p = (positive / n).clamp(0.0, 1.0);
    let z2 = Z * Z;
    let centre = p + z2 / (2.0 * n);
    let margin = Z * ((p * (1.0 - p) + z2 / (4.0 * n)) / n).sqrt();
    let lower = ((centre - margin) / (1.0 + z2 / n)).clamp(0.0, 1.0);
    #[allow(clippy::cast_possible_truncation)]
    let rank = (lower * 1_000_000.0).round() as i64;
    rank
}

/// The contract's `FileMeta`: what anyone may know about a file a stuff delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    /// Opaque id, stable across new versions of the file.
    pub id: String,
    /// The name the seller uploaded it under (no directories).
    #[schemars(length(min = 1, max = crate::contract::limits::FILE_NAME_MAX))]
    pub name: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Media type, e.g. `application/pdf`.
    pub content_type: String,
    /// SHA-256 of the bytes, lower-case hex.
    #[schemars(length(min = 64, max = 64))]
    pub sha256: String,
    /// A PDF's page count, so a buyer knows how much they get; null for other files or
    /// when it could not be read (records older than previews lack it).
    #[serde(default)]
    pub pages: Option<u32>,
    /// Public images of a PDF's first pages, so a visitor can judge the notes before
    /// buying (the file itself stays theirs only after paying); empty for other files.
    #[serde(default)]
    #[schemars(length(max = crate::contract::limits::PREVIEW_PAGES))]
    pub preview_urls: Vec<String>,
}

/// A file as ms-stuff keeps it: the public metadata plus the object holding the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile {
    /// What clients see.
    #[serde(flatten)]
    pub meta: FileMeta,
    /// Object store key of this version's bytes (internal).
    pub object: String,
}

/// A sold stuff's files changed: the buyer's library should show the new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryChange {
    /// The order that bought the stuff.
    pub order_id: String,
    /// The buyer (whose sockets get `delivery:updated`).
    pub user_id: String,
    /// The stuff whose files changed.
    pub stuff_id: String,
}

/// Where an order is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
    sqlx::Type,
)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum OrderStatus {
    /// Holding the stuff, waiting for payment.
    Created,
    /// Expired, cancelled by its owner, or declined.
    Cancelled,
    /// Paid.
    Complete,
    /// Paid, then the money went back (an admin's refund, or a payment that landed after
    /// the stuff went to someone else): no delivery, and the stuff is free again.
    Refunded,
}

impl OrderStatus {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Complete => "complete",
            OrderStatus::Refunded => "refunded",
        }
    }
    /// Parses the storage name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(Self::Created),
            "cancelled" => Some(Self::Cancelled),
            "complete" => Some(Self::Complete),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }
}

// Also a row of ms-order's SQLite table, column for field (`FromRow`).
/// The contract's `Order` shape, also the payload of `order.*` events.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, sqlx::FromRow,
)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    /// Opaque id.
    pub id: String,
    /// The stuff it holds.
    pub stuff_id: String,
    /// The buyer.
    pub user_id: String,
    /// Current status.
    pub status: OrderStatus,
    /// When the hold ends.
    pub expires_at: DateTime<Utc>,
    /// Price at the time of ordering.
    pub price_cents: i64,
    /// The stuff's title when it was ordered, so "My orders" names what was bought (empty
    /// on orders made before it was recorded).
    #[serde(default)]
    pub stuff_title: String,
    /// What was charged after coupons; `None` until paid.
    #[serde(default)]
    pub paid_cents: Option<i64>,
    /// True once its buyer reviewed it (set with the review; not a change of the order:
    /// its version stays and no order event announces it). False on older events.
    #[serde(default)]
    #[sqlx(default)]
    pub reviewed: bool,
    /// The stuff's seller (whose sale it becomes; ms-payment pays them). Absent on events
    /// written before it was carried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub seller_id: Option<String>,
    /// The stuff version the price was taken from (ms-order's replica when the order was
    /// created): ms-stuff lets the order take the stuff only at that version, so the buyer
    /// pays for what they saw. Absent on orders made before it was recorded (unchecked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stuff_version: Option<u64>,
    /// Record version.
    #[sqlx(try_from = "i64")]
    pub version: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// The contract's `Payment` shape plus the buyer, payload of `payment.created` and
/// `payment.refunded`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    /// Opaque id.
    pub id: String,
    /// The order paid for.
    pub order_id: String,
    /// Who paid.
    pub user_id: String,
    /// What was charged.
    pub amount_cents: i64,
    /// Coupon used, if any.
    pub coupon_code: Option<String>,
    /// Gateway reference (Stripe PaymentIntent id, or a coupon marker).
    pub provider_id: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When the money went back; `None` while it is kept.
    #[serde(default)]
    pub refunded_at: Option<DateTime<Utc>>,
    /// The ISO code the amount is in (empty on events written before it was recorded).
    #[serde(default)]
    pub currency: String,
    /// The marketplace's share of the amount (`PLATFORM_FEE_PERCENT`, pinned by ms-payment
    /// when it charged); `None` on events written before it was recorded.
    #[serde(default)]
    pub fee_cents: Option<i64>,
}

/// A declined or failed payment, so the order can be released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFailure {
    /// The order that was not paid.
    pub order_id: String,
    /// Who tried.
    pub user_id: String,
    /// Why, for logs.
    pub reason: String,
}

/// A paid order, as its seller sees it: published by ms-order with `order.completed` (in
/// the same transaction) so the router can tell the seller's sockets (`sale:completed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SaleRecord {
    /// Whose sale it is (the push goes to their room).
    pub seller_id: String,
    /// The order that was paid.
    pub order_id: String,
    /// What was sold.
    pub stuff_id: String,
    /// Its title when ordered.
    pub stuff_title: String,
    /// The buyer's display name (ms-order's replica of accounts).
    pub buyer_display_name: String,
    /// What the buyer was charged, after coupons.
    pub paid_cents: i64,
    /// The marketplace's share (`PLATFORM_FEE_PERCENT` of `paidCents`, rounded).
    pub fee_cents: i64,
    /// What the seller earns: `paidCents − feeCents`.
    pub earned_cents: i64,
    /// When the payment completed the order.
    pub paid_at: DateTime<Utc>,
}

/// ms-stuff would not let an order take a stuff: the stuff is no longer at the version the
/// order was priced at (the seller changed it before the reservation reached ms-stuff).
/// ms-order cancels the order (or refunds it, if it was paid meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationRefusal {
    /// The order that was refused.
    pub order_id: String,
    /// Its buyer.
    pub user_id: String,
    /// The stuff it wanted.
    pub stuff_id: String,
    /// The version the order was priced at.
    pub priced_version: u64,
    /// The version the stuff is at.
    pub stuff_version: u64,
    /// Why, for logs.
    pub reason: String,
}

/// A buyer's review of what they bought, payload of `review.created` (ms-stuff keeps the
/// stuff's rating from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRecord {
    /// Opaque id (one review per order: its id also makes applying it idempotent).
    pub id: String,
    /// The complete order it reviews.
    pub order_id: String,
    /// The stuff it rates.
    pub stuff_id: String,
    /// The buyer who wrote it.
    pub user_id: String,
    /// Whole stars, 1–5.
    #[schemars(range(min = crate::contract::limits::RATING_MIN, max = crate::contract::limits::RATING_MAX))]
    pub rating: i64,
    /// Trimmed text, at most 1000 characters (may be empty).
    #[schemars(length(max = crate::contract::limits::REVIEW_COMMENT_MAX))]
    pub comment: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Every fact published on the events exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// An account was created.
    #[serde(rename = "user.created")]
    UserCreated(UserRecord),
    /// An account changed (its role, by `ms-user admin grant|revoke`).
    #[serde(rename = "user.updated")]
    UserUpdated(UserRecord),
    /// A stuff was listed.
    #[serde(rename = "stuff.created")]
    StuffCreated(StuffRecord),
    /// A stuff changed (edit, reserved, released, sold).
    #[serde(rename = "stuff.updated")]
    StuffUpdated(StuffRecord),
    /// An order started holding a stuff.
    #[serde(rename = "order.created")]
    OrderCreated(OrderRecord),
    /// An order was cancelled or expired.
    #[serde(rename = "order.cancelled")]
    OrderCancelled(OrderRecord),
    /// An order was paid.
    #[serde(rename = "order.completed")]
    OrderCompleted(OrderRecord),
    /// A paid order's money went back: no delivery, the stuff is free again.
    #[serde(rename = "order.refunded")]
    OrderRefunded(OrderRecord),
    /// A payment succeeded.
    #[serde(rename = "payment.created")]
    PaymentCreated(PaymentRecord),
    /// A payment was declined.
    #[serde(rename = "payment.failed")]
    PaymentFailed(PaymentFailure),
    /// A payment was refunded (`refundedAt` set).
    #[serde(rename = "payment.refunded")]
    PaymentRefunded(PaymentRecord),
    /// A sold stuff's deliverables changed (a new version of a file).
    #[serde(rename = "delivery.updated")]
    DeliveryUpdated(DeliveryChange),
    /// ms-stuff refused an order the stuff: it changed since the order was priced.
    #[serde(rename = "reservation.refused")]
    ReservationRefused(ReservationRefusal),
    /// One of a seller's stuff was paid for (with `order.completed`).
    #[serde(rename = "sale.completed")]
    SaleCompleted(SaleRecord),
    /// A buyer reviewed a complete order.
    #[serde(rename = "review.created")]
    ReviewCreated(ReviewRecord),
}

impl Event {
    /// Which kind of fact this is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::UserCreated(_) => EventKind::UserCreated,
            Event::UserUpdated(_) => EventKind::UserUpdated,
            Event::StuffCreated(_) => EventKind::StuffCreated,
            Event::StuffUpdated(_) => EventKind::StuffUpdated,
            Event::OrderCreated(_) => EventKind::OrderCreated,
            Event::OrderCancelled(_) => EventKind::OrderCancelled,
            Event::OrderCompleted(_) => EventKind::OrderCompleted,
            Event::OrderRefunded(_) => EventKind::OrderRefunded,
            Event::PaymentCreated(_) => EventKind::PaymentCreated,
            Event::PaymentFailed(_) => EventKind::PaymentFailed,
            Event::PaymentRefunded(_) => EventKind::PaymentRefunded,
            Event::DeliveryUpdated(_) => EventKind::DeliveryUpdated,
            Event::ReservationRefused(_) => EventKind::ReservationRefused,
            Event::SaleCompleted(_) => EventKind::SaleCompleted,
            Event::ReviewCreated(_) => EventKind::ReviewCreated,
        }
    }

    /// The routing key (and `type` field) of this event.
    pub fn routing_key(&self) -> &'static str {
        self.kind().routing_key()
    }
}

/// The kinds of [`Event`], without their data: what a queue is bound to. Who consumes
/// which kinds is declared once, in `contract::subscriptions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `user.created`.
    UserCreated,
    /// `user.updated`.
    UserUpdated,
    /// `stuff.created`.
    StuffCreated,
    /// `stuff.updated`.
    StuffUpdated,
    /// `order.created`.
    OrderCreated,
    /// `order.cancelled`.
    OrderCancelled,
    /// `order.completed`.
    OrderCompleted,
    /// `order.refunded`.
    OrderRefunded,
    /// `payment.created`.
    PaymentCreated,
    /// `payment.failed`.
    PaymentFailed,
    /// `payment.refunded`.
    PaymentRefunded,
    /// `delivery.updated`.
    DeliveryUpdated,
    /// `reservation.refused`.
    ReservationRefused,
    /// `sale.completed`.
    SaleCompleted,
    /// `review.created`.
    ReviewCreated,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 15] = [
        EventKind::UserCreated,
        EventKind::UserUpdated,
        EventKind::StuffCreated,
        EventKind::StuffUpdated,
        EventKind::OrderCreated,
        EventKind::OrderCancelled,
        EventKind::OrderCompleted,
        EventKind::OrderRefunded,
        EventKind::PaymentCreated,
        EventKind::PaymentFailed,
        EventKind::PaymentRefunded,
        EventKind::DeliveryUpdated,
        EventKind::ReservationRefused,
        EventKind::SaleCompleted,
        EventKind::ReviewCreated,
    ];

    /// The routing key on the events exchange.
    pub const fn routing_key(self) -> &'static str {
        match self {
            EventKind::UserCreated => "user.created",
            EventKind::UserUpdated => "user.updated",
            EventKind::StuffCreated => "stuff.created",
            EventKind::StuffUpdated => "stuff.updated",
            EventKind::OrderCreated => "order.created",
            EventKind::OrderCancelled => "order.cancelled",
            EventKind::OrderCompleted => "order.completed",
            EventKind::OrderRefunded => "order.refunded",
            EventKind::PaymentCreated => "payment.created",
            EventKind::PaymentFailed => "payment.failed",
            EventKind::PaymentRefunded => "payment.refunded",
            EventKind::DeliveryUpdated => "delivery.updated",
            EventKind::ReservationRefused => "reservation.refused",
            EventKind::SaleCompleted => "sale.completed",
            EventKind::ReviewCreated => "review.created",
        }
    }
}

/// An event with its identity and tracing context, as stored in the outbox and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Unique per event; consumers may use it to spot duplicates.
    pub id: String,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// The request that caused it, for logs across services.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// The fact itself (`type` + `data`).
    #[serde(flatten)]
    pub event: Event,
}

impl EventEnvelope {
    /// Wraps an event with a fresh id and the current time.
    pub fn new(event: Event, correlation_id: Option<String>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: Utc::now(),
            correlation_id,
            event,
        }
    }
}

/// How an incoming record version relates to the version a replica holds.
///
/// Events carry the record's full state, so a newer version is applied even when versions
/// in between never arrived (one dead-lettered `stuff.updated` must not leave a replica
/// waiting for it forever); the next event simply carries the sum of the changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionCheck {
    /// Newer than what is held (the next one, or later after a gap): apply it.
    Apply,
    /// Already applied (duplicate or stale): ack and drop.
    Stale,
    /// Another writer changed the replica between this one's read and write: nothing was
    /// written; read again (retry).
    Raced,
}

impl VersionCheck {
    /// Compares an incoming version with the one held (`None` = nothing held yet).
    pub fn of(held: Option<u64>, incoming: u64) -> Self {
        if incoming > held.unwrap_or(0) {
            VersionCheck::Apply
        } else {
            VersionCheck::Stale
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_wire_form() {
        let env = EventEnvelope::new(
            Event::UserCreated(UserRecord {
                id: "u1".into(),
                email: "a@b.c".into(),
                role: Role::Admin,
                display_name: "a".into(),
                version: 1,
            }),
            Some("c1".into()),
        );
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["type"], "user.created");
        assert_eq!(v["data"]["role"], "admin");
        assert_eq!(v["correlationId"], "c1");
        let back: EventEnvelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.event.routing_key(), "user.created");
    }

    #[test]
    fn one_five_star_review_does_not_outrank_forty_averaging_four_point_eight() {
        let one_five = rating_rank(1, 5);
        // 40 reviews summing to 192: an average of 4.8.
        let forty = rating_rank(40, 192);
        assert!(forty > one_five, "{forty} <= {one_five}");
        assert_eq!(one_five, 206_549);
        assert_eq!(forty, 834_961);
        assert_eq!(rating_rank(0, 0), 0);
        // All one-star: no positive share at all.
        assert_eq!(rating_rank(3, 3), 0);
        // More of the same evidence ranks higher; better ratings rank higher.
        assert!(rating_rank(10, 50) > rating_rank(2, 10));
        assert!(rating_rank(10, 45) > rating_rank(10, 40));
    }

    #[test]
    fn version_rules() {
        assert_eq!(VersionCheck::of(None, 1), VersionCheck::Apply);
        assert_eq!(VersionCheck::of(Some(2), 2), VersionCheck::Stale);
        assert_eq!(VersionCheck::of(Some(2), 1), VersionCheck::Stale);
        assert_eq!(VersionCheck::of(Some(2), 3), VersionCheck::Apply);
        // A gap heals: full state is applied over a missing version, never waited for.
        assert_eq!(VersionCheck::of(None, 2), VersionCheck::Apply);
        assert_eq!(VersionCheck::of(Some(2), 7), VersionCheck::Apply);
    }
}
