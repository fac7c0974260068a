//! The catalogue store: a repository trait with SQLite and MongoDB backends.
//!
//! Both pass one conformance suite (`tests/store_conformance.rs`). Races are decided by the
//! database: an edit is a compare-and-set on `(id, seller, status, version)` in one
//! statement, and order events are applied under a per-order version check (newer than
//! recorded) in the same transaction as their effect. Every change writes its `stuff.*` event to the outbox in
//! that transaction too.
//!
//! The order rules themselves ([`order_effect`]) are plain functions shared by both
//! backends, so the backends only read, write and compare.
//!
//! Ratings: `review.created` adds one rating to its stuff's `rating_count` and
//! `rating_sum` and recomputes `rating_rank` ([`rated`]) in the same transaction that
//! records the review id as applied (`reviews_applied`), so a redelivered review counts
//! once. It is not a change of the stuff: no version bump, no `stuff.*` event.

pub mod cached;
pub mod mongo;
pub mod sqlite;

use crate::domain::{Cursor, StuffPatch};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::contract::limits::FILES_MAX;
use ms_common::contract::{CourseCount, StuffSort};
use ms_common::events::{
    DeliveryChange, Event, EventEnvelope, OrderRecord, OrderStatus, ReservationRefusal,
    ReviewRecord, StoredFile, StuffRecord, StuffStatus, UserRecord, rating_rank,
};
use ms_common::storage::OutboxStore;
use std::sync::Arc;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No stuff with that id.
    #[error("stuff not found")]
    NotFound,
    /// The editor is not the seller.
    #[error("not the seller")]
    NotOwner,
    /// The stuff is held by an order and cannot be edited.
    #[error("stuff is reserved")]
    Reserved,
    /// The stuff is sold and cannot be edited.
    #[error("stuff is sold")]
    Sold,
    /// The seller withdrew the stuff: it cannot be edited or bought.
    #[error("stuff is withdrawn")]
    Withdrawn,
    /// The stored version is not the one the editor read.
    #[error("version conflict")]
    VersionConflict,
    /// The stuff already has `FILES_MAX` files.
    #[error("too many files")]
    TooManyFiles,
    /// The stuff has no file with that id.
    #[error("file not found")]
    FileNotFound,
    /// Anything else (logged, shown as 500; event handlers retry).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

ms_common::database_errors!(StoreError);

/// A seller's edit, as the store applies it.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    /// Which stuff.
    pub id: &'a str,
    /// Who edits (must be the seller).
    pub editor_id: &'a str,
    /// The version the editor read, when they sent one (compare-and-set).
    pub expected_version: Option<u64>,
    /// What changes.
    pub patch: &'a StuffPatch,
    /// The new `updatedAt`.
    pub now: DateTime<Utc>,
    /// Correlation id for the `stuff.updated` event.
    pub correlation_id: Option<&'a str>,
}

/// What a seller does to a stuff's files.
#[derive(Debug, Clone, Copy)]
pub enum FileOp<'a> {
    /// Attach a new file (available stuff only, at most `FILES_MAX`).
    Add(&'a StoredFile),
    /// A new version of the file with the same id (also on sold stuff; not while reserved).
    Replace(&'a StoredFile),
    /// Take the file with this id off (available stuff only).
    Remove(&'a str),
}

/// A seller's file change, as the store applies it.
#[derive(Debug, Clone)]
pub struct FileEdit<'a> {
    /// Which stuff.
    pub stuff_id: &'a str,
    /// Who edits (must be the seller).
    pub editor_id: &'a str,
    /// What changes.
    pub op: FileOp<'a>,
    /// The new `updatedAt`.
    pub now: DateTime<Utc>,
    /// Correlation id for the events.
    pub correlation_id: Option<&'a str>,
}

/// What a file change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdited {
    /// The stuff after the change.
    pub stuff: StuffRecord,
    /// The object no file points at any more (a removed or replaced version), for the
    /// caller to delete.
    pub unreferenced: Option<String>,
}

/// May `editor` change `stuff`'s files this way? The rule both backends and
/// `stuff:file-check` share; `replaces` is the file a new version replaces.
pub fn file_refusal(
    stuff: &StuffRecord,
    editor: &str,
    replaces: Option<&str>,
    removing: bool,
) -> Option<StoreError> {
    if stuff.seller_id != editor {
        return Some(StoreError::NotOwner);
    }
    match stuff.status {
        StuffStatus::Reserved => return Some(StoreError::Reserved),
        StuffStatus::Withdrawn => return Some(StoreError::Withdrawn),
        StuffStatus::Available | StuffStatus::Sold => {}
    }
    match replaces {
        // A new version is the one change allowed after a sale: past buyers get it.
        Some(id) if !stuff.files.iter().any(|f| f.meta.id == id) => Some(StoreError::FileNotFound),
        Some(_) => None,
        None if stuff.status == StuffStatus::Sold => Some(StoreError::Sold),
        None if !removing && stuff.files.len() >= FILES_MAX => Some(StoreError::TooManyFiles),
        None => None,
    }
}

/// The files after `op`, and the object it leaves unreferenced; or why it is refused.
pub fn file_effect(
    stuff: &StuffRecord,
    editor: &str,
    op: FileOp<'_>,
) -> Result<(Vec<StoredFile>, Option<String>), StoreError> {
    let (replaces, removing) = match op {
        FileOp::Add(_) => (None, false),
        FileOp::Replace(f) => (Some(f.meta.id.as_str()), false),
        FileOp::Remove(_) => (None, true),
    };
    if let Some(refused) = file_refusal(stuff, editor, replaces, removing) {
        return Err(refused);
    }
    let mut files = stuff.files.clone();
    let unreferenced = match op {
        FileOp::Add(f) => {
            files.push(f.clone());
            None
        }
        FileOp::Replace(f) => files
            .iter_mut()
            .find(|old| old.meta.id == f.meta.id)
            .map(|old| std::mem::replace(old, f.clone()).object),
        FileOp::Remove(id) => {
            let at = files
                .iter()
                .position(|f| f.meta.id == id)
                .ok_or(StoreError::FileNotFound)?;
            Some(files.remove(at).object)
        }
    };
    let unreferenced = unreferenced.filter(|o| !files_use(&files, o));
    Ok((files, unreferenced))
}

fn files_use(files: &[StoredFile], object: &str) -> bool {
    files.iter().any(|f| f.object == object)
}

/// The `delivery.updated` event when a new version reaches a sold stuff's buyer.
pub fn delivery_event(
    stuff: &StuffRecord,
    op: FileOp<'_>,
    buyer: Option<&str>,
    correlation_id: Option<&str>,
) -> Option<EventEnvelope> {
    if !matches!(op, FileOp::Replace(_)) || stuff.status != StuffStatus::Sold {
        return None;
    }
    Some(EventEnvelope::new(
        Event::DeliveryUpdated(DeliveryChange {
            order_id: stuff.order_id.clone()?,
            user_id: buyer?.to_owned(),
            stuff_id: stuff.id.clone(),
        }),
        correlation_id.map(str::to_owned),
    ))
}

/// Where a search's words must all match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchScope {
    /// In the title, description or course.
    Anywhere,
    /// In the title (the best matches).
    Title,
    /// Anywhere, but not all in the title (the rest of the matches).
    NotTitle,
}

/// A full-text filter: every word matches a word of the text or the start of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// Lower-case words of letters and digits ([`crate::domain::SearchWords`]).
    pub words: Vec<String>,
    /// Where they must match.
    pub scope: SearchScope,
}

/// One page request of the catalogue (withdrawn stuff is never listed).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<StuffStatus>,
    /// Only this course (normalized).
    pub course: Option<String>,
    /// Only this seller's.
    pub seller_id: Option<String>,
    /// Only what matches this search.
    pub search: Option<Search>,
    /// The order: newest (`createdAt`, `id` descending), by price (`priceCents` then
    /// `id`, ascending or descending), or best rated (`ratingRank`, then newest).
    pub sort: StuffSort,
    /// Strictly after this item, in `sort` order.
    pub after: Option<Cursor>,
    /// At most this many items.
    pub limit: u32,
}

/// What applying a `review.created` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// The rating was added; the stuff as it is now.
    Applied(Box<StuffRecord>),
    /// This review was applied before: nothing changed.
    Duplicate,
    /// The review names a stuff this service has never listed: nothing changed.
    UnknownStuff,
}

/// A stuff's rating fields after one more review of `rating` stars: `(count, sum, rank)`.
pub fn rated(stuff: &StuffRecord, rating: i64) -> (i64, i64, i64) {
    let count = stuff.rating_count + 1;
    let sum = stuff.rating_sum + rating;
    (count, sum, rating_rank(count, sum))
}

/// Which order event is being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderChange {
    /// `order.created`: the order holds the stuff.
    Created,
    /// `order.cancelled`: the hold ended without a sale.
    Cancelled,
    /// `order.completed`: the order was paid.
    Completed,
    /// `order.refunded`: the order's money went back.
    Refunded,
}

impl OrderChange {
    /// The order status this change leaves the order in.
    pub fn status(self) -> OrderStatus {
        match self {
            OrderChange::Created => OrderStatus::Created,
            OrderChange::Cancelled => OrderStatus::Cancelled,
            OrderChange::Completed => OrderStatus::Complete,
            OrderChange::Refunded => OrderStatus::Refunded,
        }
    }
}

/// What applying an order event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderOutcome {
    /// The order version was recorded; the stuff changed to this record (with an event in
    /// the outbox), or was left as it was (`None`).
    Applied(Option<StuffRecord>),
    /// Already applied (duplicate or older version): nothing changed.
    Stale,
    /// The order was priced at another version of the stuff: it does not take it. The
    /// order is recorded as cancelled and `reservation.refused` is in the outbox.
    Refused(ReservationRefusal),
    /// The order names a stuff this service has never listed: nothing changed.
    UnknownStuff,
}

/// Why `order` may not reserve `stuff`: the seller withdrew it, or it is available but at
/// another version than the one the order was priced at (the seller changed it after
/// ms-order's replica saw it), so the buyer would pay for something they did not see.
/// `None`: it may.
///
/// Only a reservation of an available (or withdrawn) stuff is checked. An order recorded while another
/// held the stuff takes it over unchecked (edits are refused while reserved, so what it
/// was priced at is still what is offered); an order made before orders recorded their
/// version carries none and is not checked.
pub fn reservation_refusal(
    change: OrderChange,
    order: &OrderRecord,
    stuff: &StuffRecord,
) -> Option<ReservationRefusal> {
    if change != OrderChange::Created {
        return None;
    }
    let priced = order.stuff_version;
    let reason = match stuff.status {
        StuffStatus::Withdrawn => "the seller withdrew the stuff".to_owned(),
        StuffStatus::Available if priced.is_some_and(|p| p != stuff.version) => format!(
            "order priced at version {}, stuff is at version {}",
            priced.unwrap_or_default(),
            stuff.version
        ),
        _ => return None,
    };
    Some(ReservationRefusal {
        order_id: order.id.clone(),
        user_id: order.user_id.clone(),
        stuff_id: stuff.id.clone(),
        // An order made before orders recorded their version was priced at an unknown one.
        priced_version: priced.unwrap_or_default(),
        stuff_version: stuff.version,
        reason,
    })
}

/// The `reservation.refused` event of a refusal.
pub fn refused_event(refusal: &ReservationRefusal, correlation_id: Option<&str>) -> EventEnvelope {
    EventEnvelope::new(
        Event::ReservationRefused(refusal.clone()),
        correlation_id.map(str::to_owned),
    )
}

/// Who holds a stuff after an order change: its new status and holding order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    /// New status.
    pub status: StuffStatus,
    /// The order holding (reserved) or having bought (sold) it.
    pub order_id: Option<String>,
}

/// The rule for order events, shared by every backend; `None` means the stuff stays as is.
///
/// - created: an available stuff becomes reserved by the order. If another order holds it,
///   the new order is only recorded as active; it takes over when the holder is cancelled.
/// - cancelled: a stuff reserved by that order is released, or passed on to `next_active`
///   (another order recorded as active for the stuff), so the result does not depend on
///   the order in which events of different orders arrive.
/// - completed: the stuff is sold to the order unless it is already sold. ms-order lets one
///   order at a time hold a stuff, so a paid order wins over a hold we still believe in.
/// - refunded: a stuff sold to (or still reserved by) that order is released like a
///   cancelled hold; a refund of an order that no longer holds the stuff (a late payment
///   refunded because someone else took it) changes nothing.
pub fn order_effect(
    change: OrderChange,
    order_id: &str,
    stuff: &StuffRecord,
    next_active: Option<&str>,
) -> Option<Holding> {
    let held_by_this = stuff.order_id.as_deref() == Some(order_id);
    match (change, stuff.status) {
        (OrderChange::Created, StuffStatus::Available) => Some(Holding {
            status: StuffStatus::Reserved,
            order_id: Some(order_id.to_owned()),
        }),
        (OrderChange::Cancelled | OrderChange::Refunded, StuffStatus::Reserved)
        | (OrderChange::Refunded, StuffStatus::Sold)
            if held_by_this =>
        {
            Some(match next_active {
                Some(next) => Holding {
                    status: StuffStatus::Reserved,
                    order_id: Some(next.to_owned()),
                },
                None => Holding {
                    status: StuffStatus::Available,
                    order_id: None,
                },
            })
        }
        (OrderChange::Completed, StuffStatus::Available | StuffStatus::Reserved) => Some(Holding {
            status: StuffStatus::Sold,
            order_id: Some(order_id.to_owned()),
        }),
        (OrderChange::Completed, StuffStatus::Sold) if !held_by_this => {
            tracing::error!(
                stuff_id = %stuff.id,
                order_id,
                sold_to = stuff.order_id.as_deref().unwrap_or("-"),
                "order completed for a stuff already sold to another order"
            );
            None
        }
        _ => None,
    }
}

/// The record as clients and other services see it: without the holding order.
pub fn public(rec: &StuffRecord) -> StuffRecord {
    StuffRecord {
        order_id: None,
        ..rec.clone()
    }
}

/// The `stuff.created` event for a new record.
pub fn created_event(rec: &StuffRecord, correlation_id: Option<&str>) -> EventEnvelope {
    EventEnvelope::new(
        Event::StuffCreated(public(rec)),
        correlation_id.map(str::to_owned),
    )
}

/// The `stuff.updated` event for a changed record.
pub fn updated_event(rec: &StuffRecord, correlation_id: Option<&str>) -> EventEnvelope {
    EventEnvelope::new(
        Event::StuffUpdated(public(rec)),
        correlation_id.map(str::to_owned),
    )
}

/// Why an edit matched no row, decided from the current record (`None` = gone).
pub fn edit_refusal(current: Option<&StuffRecord>, edit: &Edit<'_>) -> StoreError {
    match current {
        None => StoreError::NotFound,
        Some(s) if s.seller_id != edit.editor_id => StoreError::NotOwner,
        Some(s) if s.status == StuffStatus::Reserved => StoreError::Reserved,
        Some(s) if s.status == StuffStatus::Sold => StoreError::Sold,
        Some(s) if s.status == StuffStatus::Withdrawn => StoreError::Withdrawn,
        // Owner, available: only the version can have failed the compare-and-set.
        Some(_) => StoreError::VersionConflict,
    }
}

/// What ms-stuff needs from storage.
#[async_trait]
pub trait StuffStore: Send + Sync + 'static {
    /// Inserts a new stuff and its `stuff.created` event atomically, with the seller's
    /// name from the replica of accounts (`stuff.seller_name` is recorded as the name of a
    /// seller the replica has not heard of); returns the stuff as stored.
    async fn create(
        &self,
        stuff: &StuffRecord,
        secret_note: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<StuffRecord, StoreError>;
    /// Applies `user.created` / `user.updated` to the replica of accounts when newer than
    /// held, and a new name to every stuff of that seller, in one transaction (no version
    /// bump: the stuff did not change); true when the name changed.
    async fn apply_user(&self, user: &UserRecord) -> Result<bool, StoreError>;
    /// Finds by id.
    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError>;
    /// One page in the query's order and filters, after the cursor, at most `limit`;
    /// never a withdrawn stuff.
    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError>;
    /// A seller's stuff in every status, newest first, at most `limit`.
    async fn by_seller(&self, seller_id: &str, limit: u32) -> Result<Vec<StuffRecord>, StoreError>;
    /// The courses named by stuff in the catalogue (not withdrawn) with their counts, the
    /// most listed first (ties by course), at most `limit`.
    async fn courses(&self, limit: u32) -> Result<Vec<CourseCount>, StoreError>;
    /// Applies a seller's edit as one compare-and-set on seller, status `available` and
    /// (when given) version, incrementing the version and writing `stuff.updated` in the
    /// same transaction. A refused edit says why ([`edit_refusal`]).
    async fn edit(&self, edit: &Edit<'_>) -> Result<StuffRecord, StoreError>;
    /// Applies a file change per [`file_effect`] as a compare-and-set on the version read,
    /// with `stuff.updated` (and `delivery.updated` for a new version of sold stuff) in the
    /// same transaction.
    async fn edit_files(&self, edit: &FileEdit<'_>) -> Result<FileEdited, StoreError>;
    /// The stuff with the seller's private note for buyers, in one read (what
    /// `delivery:get` hands out must come from one version of the stuff).
    async fn get_with_note(
        &self,
        id: &str,
    ) -> Result<Option<(StuffRecord, Option<String>)>, StoreError>;
    /// Applies an order event if its version is newer than the one recorded for that order
    /// (a gap heals: the event is the whole order), refusing a reservation priced at
    /// another version of the stuff ([`reservation_refusal`]), recording the version, changing the stuff per [`order_effect`] and writing `stuff.updated`, all in
    /// one transaction.
    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        correlation_id: Option<&str>,
    ) -> Result<OrderOutcome, StoreError>;
    /// Adds a review's rating to its stuff per [`rated`], once per review id (the id is
    /// recorded in the same transaction); the stuff's version stays.
    async fn apply_review(&self, review: &ReviewRecord) -> Result<ReviewOutcome, StoreError>;
    /// The outbox of this store, for the relay.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
}

/// Opens the store the configuration selects.
pub async fn open(
    storage: &ms_common::config::StorageConfig,
) -> anyhow::Result<Arc<dyn StuffStore>> {
    ms_common::storage::open_store(
        storage,
        async |url, database| {
            Ok(Arc::new(mongo::MongoStuffStore::open(url, database).await?) as Arc<dyn StuffStore>)
        },
        async |path| {
            // This process is the SQLite file's only writer: reads by id may be served
            // from memory (cached.rs).
            let store = Arc::new(sqlite::SqliteStuffStore::open(path).await?);
            Ok(Arc::new(cached::CachedStore::new(store)) as Arc<dyn StuffStore>)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(status: StuffStatus, order: Option<&str>) -> StuffRecord {
        StuffRecord {
            id: "s".into(),
            title: "t".into(),
            description: String::new(),
            price_cents: 1,
            seller_id: "u".into(),
            status,
            order_id: order.map(str::to_owned),
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            files: vec![],
            has_secret_note: false,
            course: None,
            seller_name: None,
            rating_count: 0,
            rating_sum: 0,
            rating_rank: 0,
            cover: None,
        }
    }

    fn file(id: &str, object: &str) -> StoredFile {
        StoredFile {
            meta: ms_common::events::FileMeta {
                id: id.into(),
                name: format!("{id}.pdf"),
                size_bytes: 1,
                content_type: "application/pdf".into(),
                sha256: "0".repeat(64),
                pages: None,
                preview_urls: Vec::new(),
            },
            object: object.into(),
        }
    }

    #[test]
    fn file_rules() {
        let mut s = stuff(StuffStatus::Available, None);
        let a = file("a", "files/s/1");
        let (files, gone) = file_effect(&s, "u", FileOp::Add(&a)).unwrap();
        assert_eq!((files.len(), gone), (1, None));
        assert!(matches!(
            file_effect(&s, "x", FileOp::Add(&a)),
            Err(StoreError::NotOwner)
        ));
        s.files = files;
        let a2 = file("a", "files/s/2");
        let (files, gone) = file_effect(&s, "u", FileOp::Replace(&a2)).unwrap();
        assert_eq!(files[0].object, "files/s/2");
        assert_eq!(gone.as_deref(), Some("files/s/1"));
        assert!(matches!(
            file_effect(&s, "u", FileOp::Replace(&file("b", "files/s/3"))),
            Err(StoreError::FileNotFound)
        ));
        // Sold: only a new version; reserved: nothing.
        s.status = StuffStatus::Sold;
        assert!(file_effect(&s, "u", FileOp::Replace(&a2)).is_ok());
        assert!(matches!(
            file_effect(&s, "u", FileOp::Add(&a2)),
            Err(StoreError::Sold)
        ));
        assert!(matches!(
            file_effect(&s, "u", FileOp::Remove("a")),
            Err(StoreError::Sold)
        ));
        s.status = StuffStatus::Reserved;
        assert!(matches!(
            file_effect(&s, "u", FileOp::Replace(&a2)),
            Err(StoreError::Reserved)
        ));
        s.status = StuffStatus::Available;
        let (files, gone) = file_effect(&s, "u", FileOp::Remove("a")).unwrap();
        assert_eq!((files.len(), gone.as_deref()), (0, Some("files/s/1")));
        s.files = (0..FILES_MAX).map(|i| file(&i.to_string(), "o")).collect();
        assert!(matches!(
            file_effect(&s, "u", FileOp::Add(&a)),
            Err(StoreError::TooManyFiles)
        ));
        assert!(file_effect(&s, "u", FileOp::Remove("0")).is_ok());
    }

    fn holding(status: StuffStatus, order: Option<&str>) -> Option<Holding> {
        Some(Holding {
            status,
            order_id: order.map(str::to_owned),
        })
    }

    #[test]
    fn order_rules() {
        use OrderChange::*;
        use StuffStatus::*;
        let avail = stuff(Available, None);
        let by_a = stuff(Reserved, Some("a"));
        let sold_a = stuff(Sold, Some("a"));
        assert_eq!(
            order_effect(Created, "a", &avail, None),
            holding(Reserved, Some("a"))
        );
        assert_eq!(order_effect(Created, "b", &by_a, None), None);
        assert_eq!(order_effect(Created, "b", &sold_a, None), None);
        assert_eq!(
            order_effect(Cancelled, "a", &by_a, None),
            holding(Available, None)
        );
        assert_eq!(
            order_effect(Cancelled, "a", &by_a, Some("b")),
            holding(Reserved, Some("b"))
        );
        assert_eq!(order_effect(Cancelled, "b", &by_a, None), None);
        assert_eq!(order_effect(Cancelled, "a", &avail, None), None);
        assert_eq!(order_effect(Cancelled, "a", &sold_a, None), None);
        assert_eq!(
            order_effect(Completed, "a", &by_a, None),
            holding(Sold, Some("a"))
        );
        assert_eq!(
            order_effect(Completed, "a", &avail, None),
            holding(Sold, Some("a"))
        );
        assert_eq!(
            order_effect(Completed, "b", &by_a, None),
            holding(Sold, Some("b"))
        );
        assert_eq!(order_effect(Completed, "a", &sold_a, None), None);
        assert_eq!(order_effect(Completed, "b", &sold_a, None), None);
    }

    #[test]
    fn events_never_carry_the_holding_order() {
        let ev = updated_event(&stuff(StuffStatus::Reserved, Some("a")), Some("c"));
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], "stuff.updated");
        assert!(v["data"].get("orderId").is_none());
        assert_eq!(v["correlationId"], "c");
    }
}
