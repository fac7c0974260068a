//! MongoDB backend of [`StuffStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transactions that write a change and its event together).
//!
//! Collections: `stuff` (one document per stuff, `_id` = id; `orderEvents` counts the
//! order events applied to it, written only so they conflict), `order_versions` (`_id` =
//! order id: last applied version, status and stuff of every order heard of),
//! `reviews_applied` (`_id` = review id: every review counted in a rating), `outbox`.
//! Transactions that hit a write conflict (`TransientTransactionError`) are run again.

use super::{
    Edit, FileEdit, FileEdited, ListQuery, OrderChange, OrderOutcome, ReviewOutcome, Search,
    SearchScope, StoreError, StuffStore, created_event, delivery_event, edit_refusal, file_effect,
    order_effect, rated, refused_event, reservation_refusal, updated_event,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc, from_document, to_document};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection, IndexModel};
use ms_common::contract::UNKNOWN_SELLER_NAME;
use ms_common::contract::{CourseCount, StuffSort};
use ms_common::events::{
    OrderRecord, OrderStatus, ReviewRecord, StoredFile, StuffRecord, StuffStatus, UserRecord,
    VersionCheck,
};
use ms_common::storage::mongo::{Db, apply_user_name, enqueue, is_duplicate_key, user_name_or};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::to_db;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The catalogue in a MongoDB database.
#[derive(Clone)]
pub struct MongoStuffStore {
    db: Db,
}

impl MongoStuffStore {
    /// Connects and ensures the indexes (which also creates the collections, so the first
    /// transaction never has to).
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let db = ms_common::storage::mongo::connect(url, database).await?;
        let stuff = db.collection::<Document>("stuff");
        stuff
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"createdAt": -1, "_id": -1})
                    .build(),
            )
            .await?;
        stuff
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"status": 1, "createdAt": -1, "_id": -1})
                    .build(),
            )
            .await?;
        // stuff:mine and stuff:list {sellerId}, newest first; stuff:list {course} newest
        // first or by price; by price over everything.
        for keys in [
            doc! {"sellerId": 1, "createdAt": -1, "_id": -1},
            doc! {"course": 1, "createdAt": -1, "_id": -1},
            doc! {"course": 1, "priceCents": 1, "_id": 1},
            doc! {"priceCents": 1, "_id": 1},
            // stuff:list {sort: rating}: best rated first, ties newest first.
            doc! {"ratingRank": -1, "createdAt": -1, "_id": -1},
        ] {
            stuff
                .create_index(IndexModel::builder().keys(keys).build())
                .await?;
        }
        // Stuff listed before ratings existed has no rating fields: give them theirs, so the
        // rating order's range filters (which skip a missing field) see every stuff.
        stuff
            .update_many(
                doc! {"ratingRank": {"$exists": false}},
                doc! {"$set": {"ratingCount": 0_i64, "ratingSum": 0_i64, "ratingRank": 0_i64}},
            )
            .await?;
        db.collection::<Document>("order_versions")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"stuffId": 1, "status": 1, "_id": 1})
                    .build(),
            )
            .await?;
        db.collection::<Document>("outbox")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"sentAt": 1, "_id": 1})
                    .build(),
            )
            .await?;
        Ok(Self { db })
    }

    fn stuff(&self) -> Collection<Document> {
        self.db.collection("stuff")
    }
    fn orders(&self) -> Collection<Document> {
        self.db.collection("order_versions")
    }

    async fn edit_in(
        &self,
        session: &mut ClientSession,
        e: &Edit<'_>,
    ) -> Result<StuffRecord, StoreError> {
        // The compare-and-set: every condition is in the filter of one atomic update.
        let mut filter =
            doc! {"_id": e.id, "sellerId": e.editor_id, "status": StuffStatus::Available.as_str()};
        if let Some(v) = e.expected_version {
            filter.insert("version", db_version(v));
        }
        let mut set = doc! {"updatedAt": to_db(&e.now)};
        if let Some(t) = &e.patch.title {
            set.insert("title", t.as_str());
        }
        if let Some(p) = e.patch.price {
            set.insert("priceCents", p.cents());
        }
        if let Some(d) = &e.patch.description {
            set.insert("description", d.as_str());
        }
        if let Some(note) = &e.patch.secret_note {
            set.insert("secretNote", note.as_ref().map(|n| n.as_str()));
            set.insert("hasSecretNote", note.is_some());
        }
        if e.patch.withdraw {
            set.insert("status", StuffStatus::Withdrawn.as_str());
        }
        if let Some(course) = &e.patch.course {
            set.insert("course", course.as_ref().map(|c| c.as_str()));
        }
        if let Some(cover) = &e.patch.cover {
            set.insert("cover", cover.as_str());
        }
        let update = doc! {"$set": set, "$inc": {"version": 1_i64}};
        let updated = self
            .update_announced(session, filter, update, e.correlation_id)
            .await?;
        let Some(updated) = updated else {
            let current = self
                .stuff()
                .find_one(doc! {"_id": e.id})
                .session(&mut *session)
                .await?;
            let current = current.map(stuff_from).transpose()?;
            return Err(edit_refusal(current.as_ref(), e));
        };
        Ok(updated)
    }

    /// One stuff's compare-and-set (`filter`, `update`) and its `stuff.updated`, in the
    /// session's transaction; `None` when the filter matched nothing.
    async fn update_announced(
        &self,
        session: &mut ClientSession,
        filter: Document,
        update: Document,
        cid: Option<&str>,
    ) -> Result<Option<StuffRecord>, StoreError> {
        let Some(doc) = self
            .stuff()
            .find_one_and_update(filter, update)
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?
        else {
            return Ok(None);
        };
        let updated = stuff_from(doc)?;
        enqueue(&self.db, session, &updated_event(&updated, cid)).await?;
        Ok(Some(updated))
    }

    async fn edit_files_in(
        &self,
        session: &mut ClientSession,
        e: &FileEdit<'_>,
    ) -> Result<FileEdited, StoreError> {
        let Some(current) = self
            .stuff()
            .find_one(doc! {"_id": e.stuff_id})
            .session(&mut *session)
            .await?
        else {
            return Err(StoreError::NotFound);
        };
        let stuff = stuff_from(current)?;
        let (files, unreferenced) = file_effect(&stuff, e.editor_id, e.op)?;
        let files = mongodb::bson::to_bson(&files).map_err(|e| StoreError::Other(e.into()))?;
        // Compare-and-set on the version read: a concurrent change makes this write
        // conflict, and the driver runs the transaction again.
        let updated = self
            .update_announced(
                session,
                doc! {"_id": &stuff.id, "version": db_version(stuff.version)},
                doc! {
                    "$set": {"files": files, "updatedAt": to_db(&e.now)},
                    "$inc": {"version": 1_i64},
                },
                e.correlation_id,
            )
            .await?
            .ok_or(StoreError::VersionConflict)?;
        let buyer = match &updated.order_id {
            Some(order) => self
                .orders()
                .find_one(doc! {"_id": order})
                .session(&mut *session)
                .await?
                .and_then(|d| d.get_str("userId").ok().map(str::to_owned)),
            None => None,
        };
        if let Some(ev) = delivery_event(&updated, e.op, buyer.as_deref(), e.correlation_id) {
            enqueue(&self.db, session, &ev).await?;
        }
        Ok(FileEdited {
            stuff: updated,
            unreferenced,
        })
    }

    async fn apply_order_in(
        &self,
        session: &mut ClientSession,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        cid: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        let held = self
            .orders()
            .find_one(doc! {"_id": &order.id})
            .session(&mut *session)
            .await?
            .map(|d| d.get_i64("version").map(|v| u64::try_from(v).unwrap_or(0)))
            .transpose()
            .map_err(|e| StoreError::Other(e.into()))?;
        // Any newer version applies: the event is the whole order, so a lost one in
        // between heals instead of holding every later one back.
        if VersionCheck::of(held, order.version) != VersionCheck::Apply {
            return Ok(OrderOutcome::Stale);
        }
        let Some(stuff) = self
            .stuff()
            .find_one(doc! {"_id": &order.stuff_id})
            .session(&mut *session)
            .await?
        else {
            return Ok(OrderOutcome::UnknownStuff);
        };
        let stuff = stuff_from(stuff)?;
        // Claim the stuff document in this transaction whatever the outcome (a hidden
        // counter; neither the record nor its version changes). Two order events for one
        // stuff then always write the same document, so they conflict and one runs again
        // after the other: under snapshot isolation a release that did not see a new
        // order recorded as active (which wrote only its order) would otherwise commit
        // too and leave the stuff available while that order holds it (write skew).
        self.stuff()
            .update_one(
                doc! {"_id": &stuff.id, "version": db_version(stuff.version)},
                doc! {"$inc": {"orderEvents": 1_i64}},
            )
            .session(&mut *session)
            .await?;
        let refusal = reservation_refusal(change, order, &stuff);
        // A refused order never holds the stuff: recorded as cancelled, it is not passed
        // the hold when another order lets go.
        let recorded = match refusal {
            Some(_) => OrderStatus::Cancelled,
            None => change.status(),
        };
        self.orders()
            .update_one(
                doc! {"_id": &order.id},
                doc! {"$set": {
                    "stuffId": &order.stuff_id,
                    "userId": &order.user_id,
                    "status": recorded.as_str(),
                    "version": db_version(order.version),
                }},
            )
            .upsert(true)
            .session(&mut *session)
            .await?;
        if let Some(refusal) = refusal {
            enqueue(&self.db, session, &refused_event(&refusal, cid)).await?;
            return Ok(OrderOutcome::Refused(refusal));
        }
        let next_active = self
            .orders()
            .find_one(doc! {
                "stuffId": &order.stuff_id,
                "status": "created",
                "_id": {"$ne": &order.id},
            })
            .sort(doc! {"_id": 1})
            .session(&mut *session)
            .await?
            .and_then(|d| d.get_str("_id").ok().map(str::to_owned));
        let Some(holding) = order_effect(change, &order.id, &stuff, next_active.as_deref()) else {
            return Ok(OrderOutcome::Applied(None));
        };
        let updated = self
            .update_announced(
                session,
                doc! {"_id": &stuff.id, "version": db_version(stuff.version)},
                doc! {
                    "$set": {
                        "status": holding.status.as_str(),
                        "orderId": holding.order_id.as_deref(),
                        "updatedAt": to_db(&now),
                    },
                    "$inc": {"version": 1_i64},
                },
                cid,
            )
            .await?
            .ok_or_else(|| anyhow::anyhow!("stuff {} changed inside a transaction", stuff.id))?;
        Ok(OrderOutcome::Applied(Some(updated)))
    }
}

/// The layout of a `stuff` document: [`StuffRecord`]'s fields under serde attributes of
/// their own (`_id`, times as `to_db` text, `orderId` always present, `null` when free), so
/// the record's JSON form for events is left alone.
#[derive(Serialize, Deserialize)]
#[serde(remote = "StuffRecord", rename_all = "camelCase")]
struct StuffDoc {
    #[serde(rename = "_id")]
    id: String,
    title: String,
    description: String,
    price_cents: i64,
    seller_id: String,
    status: StuffStatus,
    order_id: Option<String>,
    #[serde(with = "ms_common::storage::version")]
    version: u64,
    #[serde(with = "ms_common::time::db")]
    created_at: DateTime<Utc>,
    #[serde(with = "ms_common::time::db")]
    updated_at: DateTime<Utc>,
    #[serde(default)]
    files: Vec<StoredFile>,
    #[serde(default)]
    has_secret_note: bool,
    #[serde(default)]
    course: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cover: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seller_name: Option<String>,
    // Absent from documents written before ratings existed (backfilled by `open`).
    #[serde(default)]
    rating_count: i64,
    #[serde(default)]
    rating_sum: i64,
    #[serde(default)]
    rating_rank: i64,
}

/// A stuff to write, in [`StuffDoc`]'s layout.
#[derive(Serialize)]
#[serde(transparent)]
struct StuffOut<'a>(#[serde(serialize_with = "StuffDoc::serialize")] &'a StuffRecord);

/// A stuff read back, in [`StuffDoc`]'s layout.
#[derive(Deserialize)]
#[serde(transparent)]
struct StuffIn(#[serde(with = "StuffDoc")] StuffRecord);

fn stuff_doc(s: &StuffRecord) -> Result<Document, StoreError> {
    Ok(to_document(&StuffOut(s))?)
}

fn stuff_from(d: Document) -> Result<StuffRecord, StoreError> {
    Ok(from_document::<StuffIn>(d)?.0)
}

/// Every word at the start of a word of `field`, case-insensitive. (The words are letters
/// and digits only; a MongoDB text index matches whole words only, so search reads the
/// fields with an unanchored regular expression: a scan, unlike SQLite's FTS5 index.)
fn words_in(field: &str, words: &[String]) -> Vec<Bson> {
    words
        .iter()
        .map(|w| {
            Bson::Document(
                doc! {field: {"$regex": format!("(^|[^\\p{{L}}\\p{{N}}]){w}"), "$options": "i"}},
            )
        })
        .collect()
}

/// The filter of a [`Search`]: every word in the title, description or course, as the
/// scope says.
fn search_filter(search: &Search) -> Document {
    let anywhere: Vec<Bson> = search
        .words
        .iter()
        .map(|w| {
            let one = std::slice::from_ref(w);
            let fields: Vec<Bson> = ["title", "description", "course"]
                .into_iter()
                .flat_map(|f| words_in(f, one))
                .collect();
            Bson::Document(doc! {"$or": fields})
        })
        .collect();
    let in_title = words_in("title", &search.words);
    match search.scope {
        SearchScope::Anywhere => doc! {"$and": anywhere},
        SearchScope::Title => doc! {"$and": in_title},
        SearchScope::NotTitle => doc! {"$and": anywhere, "$nor": [{"$and": in_title}]},
    }
}

/// A store result as a transaction body returns it: driver errors stay driver errors (so
/// the driver can retry a transient one), everything else is an outcome or a refusal.
fn in_transaction<T>(r: Result<T, StoreError>) -> mongodb::error::Result<Result<T, StoreError>> {
    match r {
        Err(StoreError::Other(e)) => match e.downcast::<mongodb::error::Error>() {
            Ok(driver) => Err(driver),
            Err(other) => Ok(Err(StoreError::Other(other))),
        },
        other => Ok(other),
    }
}

#[async_trait]
impl StuffStore for MongoStuffStore {
    async fn create(
        &self,
        s: &StuffRecord,
        note: Option<&str>,
        cid: Option<&str>,
    ) -> Result<StuffRecord, StoreError> {
        self.db
            .transaction((self, s, note, cid), |session, ctx| {
                let (store, s, note, cid) = *ctx;
                async move {
                    let fallback = s.seller_name.as_deref().unwrap_or(UNKNOWN_SELLER_NAME);
                    let name = user_name_or(&store.db, session, &s.seller_id, fallback).await?;
                    let stuff = StuffRecord {
                        seller_name: Some(name),
                        ..s.clone()
                    };
                    let mut doc = match stuff_doc(&stuff) {
                        Ok(d) => d,
                        Err(e) => return Ok(Err(e)),
                    };
                    doc.insert("secretNote", note);
                    store.stuff().insert_one(doc).session(&mut *session).await?;
                    enqueue(&store.db, session, &created_event(&stuff, cid)).await?;
                    Ok(Ok(stuff))
                }
                .boxed()
            })
            .await?
    }

    async fn apply_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let changed = self
            .db
            .transaction((self, user), |session, ctx| {
                let (store, user) = *ctx;
                async move {
                    if !apply_user_name(&store.db, session, user).await? {
                        return Ok(Ok::<bool, StoreError>(false));
                    }
                    store
                        .stuff()
                        .update_many(
                            doc! {"sellerId": &user.id},
                            doc! {"$set": {"sellerName": &user.display_name}},
                        )
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(true))
                }
                .boxed()
            })
            .await??;
        Ok(changed)
    }

    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError> {
        self.stuff()
            .find_one(doc! {"_id": id})
            .await?
            .map(stuff_from)
            .transpose()
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError> {
        let mut filter = Document::new();
        match q.status {
            // The catalogue never lists withdrawn stuff.
            Some(StuffStatus::Withdrawn) => return Ok(Vec::new()),
            Some(s) => filter.insert("status", s.as_str()),
            None => filter.insert("status", doc! {"$ne": StuffStatus::Withdrawn.as_str()}),
        };
        if let Some(course) = &q.course {
            filter.insert("course", course);
        }
        if let Some(seller) = &q.seller_id {
            filter.insert("sellerId", seller);
        }
        if let Some(search) = &q.search {
            filter.extend(search_filter(search));
        }
        // Keyset pagination: strictly after the cursor's item in the list's order
        // (`createdAt` is `to_db` text: string order is time order).
        if q.sort == StuffSort::Rating {
            // Best rated first, ties newest first: three keys, all descending.
            if let Some(c) = &q.after {
                let at = to_db(&c.created_at);
                filter.insert(
                    "$or",
                    vec![
                        Bson::Document(doc! {"ratingRank": {"$lt": c.key}}),
                        Bson::Document(doc! {"ratingRank": c.key, "createdAt": {"$lt": &at}}),
                        Bson::Document(
                            doc! {"ratingRank": c.key, "createdAt": &at, "_id": {"$lt": &c.id}},
                        ),
                    ],
                );
            }
            let docs: Vec<Document> = self
                .stuff()
                .find(filter)
                .sort(doc! {"ratingRank": -1, "createdAt": -1, "_id": -1})
                .limit(i64::from(q.limit))
                .await?
                .try_collect()
                .await?;
            return docs.into_iter().map(stuff_from).collect();
        }
        let (key, dir) = match q.sort {
            StuffSort::Newest | StuffSort::Rating => ("createdAt", -1),
            StuffSort::PriceAsc => ("priceCents", 1),
            StuffSort::PriceDesc => ("priceCents", -1),
        };
        if let Some(c) = &q.after {
            let beyond = if dir < 0 { "$lt" } else { "$gt" };
            let at: Bson = if key == "createdAt" {
                to_db(&c.created_at).into()
            } else {
                c.key.into()
            };
            filter.insert(
                "$or",
                vec![
                    Bson::Document(doc! {key: {beyond: at.clone()}}),
                    Bson::Document(doc! {key: at, "_id": {beyond: &c.id}}),
                ],
            );
        }
        let docs: Vec<Document> = self
            .stuff()
            .find(filter)
            .sort(doc! {key: dir, "_id": dir})
            .limit(i64::from(q.limit))
            .await?
            .try_collect()
            .await?;
        docs.into_iter().map(stuff_from).collect()
    }

    async fn by_seller(&self, seller_id: &str, limit: u32) -> Result<Vec<StuffRecord>, StoreError> {
        let docs: Vec<Document> = self
            .stuff()
            .find(doc! {"sellerId": seller_id})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        docs.into_iter().map(stuff_from).collect()
    }

    async fn courses(&self, limit: u32) -> Result<Vec<CourseCount>, StoreError> {
        let pipeline = [
            doc! {"$match": {"course": {"$type": "string"}, "status": {"$ne": "withdrawn"}}},
            doc! {"$group": {"_id": "$course", "n": {"$sum": 1}}},
            doc! {"$sort": {"n": -1, "_id": 1}},
            doc! {"$limit": i64::from(limit)},
        ];
        let docs: Vec<Document> = self
            .stuff()
            .aggregate(pipeline)
            .await?
            .try_collect()
            .await?;
        docs.iter()
            .map(|d| {
                let course = d.get_str("_id").map_err(|e| StoreError::Other(e.into()))?;
                let n = d
                    .get_i32("n")
                    .map(i64::from)
                    .or_else(|_| d.get_i64("n"))
                    .map_err(|e| StoreError::Other(e.into()))?;
                Ok(CourseCount {
                    course: course.to_owned(),
                    count: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn edit(&self, e: &Edit<'_>) -> Result<StuffRecord, StoreError> {
        self.db
            .transaction((self, e), |session, ctx| {
                let (store, e) = *ctx;
                async move { in_transaction(store.edit_in(session, e).await) }.boxed()
            })
            .await?
    }

    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        cid: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        self.db
            .transaction((self, order, cid), |session, ctx| {
                let (store, order, cid) = *ctx;
                async move {
                    in_transaction(store.apply_order_in(session, change, order, now, cid).await)
                }
                .boxed()
            })
            .await?
    }

    async fn edit_files(&self, e: &FileEdit<'_>) -> Result<FileEdited, StoreError> {
        self.db
            .transaction((self, e), |session, ctx| {
                let (store, e) = *ctx;
                async move { in_transaction(store.edit_files_in(session, e).await) }.boxed()
            })
            .await?
    }

    async fn get_with_note(
        &self,
        id: &str,
    ) -> Result<Option<(StuffRecord, Option<String>)>, StoreError> {
        let Some(d) = self.stuff().find_one(doc! {"_id": id}).await? else {
            return Ok(None);
        };
        let note = d.get_str("secretNote").ok().map(str::to_owned);
        Ok(Some((stuff_from(d)?, note)))
    }

    async fn apply_review(&self, review: &ReviewRecord) -> Result<ReviewOutcome, StoreError> {
        self.db
            .transaction((self, review), |session, ctx| {
                let (store, review) = *ctx;
                async move {
                    let applied = store
                        .db
                        .collection::<Document>("reviews_applied")
                        .insert_one(doc! {"_id": &review.id, "stuffId": &review.stuff_id, "rating": review.rating})
                        .session(&mut *session)
                        .await;
                    match applied {
                        // Aborting writes nothing: the review was counted before.
                        Err(e) if is_duplicate_key(&e) => {
                            return Ok(Err(Ok(ReviewOutcome::Duplicate)));
                        }
                        other => other?,
                    };
                    let Some(current) = store
                        .stuff()
                        .find_one(doc! {"_id": &review.stuff_id})
                        .session(&mut *session)
                        .await?
                    else {
                        return Ok(Err(Ok(ReviewOutcome::UnknownStuff)));
                    };
                    let stuff = match stuff_from(current) {
                        Ok(s) => s,
                        Err(e) => return Ok(Err(Err(e))),
                    };
                    let (count, sum, rank) = rated(&stuff, review.rating);
                    // Not a change of the stuff: its version and `updatedAt` stay. A
                    // concurrent writer of this document makes the transaction run again.
                    let updated = store
                        .stuff()
                        .find_one_and_update(
                            doc! {"_id": &stuff.id},
                            doc! {"$set": {"ratingCount": count, "ratingSum": sum, "ratingRank": rank}},
                        )
                        .return_document(ReturnDocument::After)
                        .session(&mut *session)
                        .await?;
                    match updated.map(stuff_from) {
                        Some(Ok(s)) => Ok(Ok(ReviewOutcome::Applied(Box::new(s)))),
                        Some(Err(e)) => Ok(Err(Err(e))),
                        None => Ok(Err(Ok(ReviewOutcome::UnknownStuff))),
                    }
                }
                .boxed()
            })
            .await?
            .or_else(|aborted| aborted)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::time::from_db;

    fn stuff(order_id: Option<&str>) -> StuffRecord {
        StuffRecord {
            id: "s1".into(),
            title: "Lamp".into(),
            description: String::new(),
            price_cents: 1999,
            seller_id: "u1".into(),
            status: if order_id.is_some() {
                StuffStatus::Reserved
            } else {
                StuffStatus::Available
            },
            order_id: order_id.map(str::to_owned),
            version: 7,
            created_at: from_db("2026-11-23T20:00:00Z").unwrap(),
            updated_at: from_db("2026-11-23T20:00:01.000042Z").unwrap(),
            files: vec![StoredFile {
                meta: ms_common::events::FileMeta {
                    id: "f1".into(),
                    name: "notes.pdf".into(),
                    size_bytes: 10,
                    content_type: "application/pdf".into(),
                    sha256: "ab".repeat(32),
                    pages: None,
                    preview_urls: Vec::new(),
                },
                object: "files/s1/x".into(),
            }],
            has_secret_note: true,
            course: None,
            seller_name: None,
            rating_count: 0,
            rating_sum: 0,
            rating_rank: 0,
            cover: None,
        }
    }

    /// The layout to keep: what the hand-written `stuff_doc` wrote, plus the deliverables.
    fn old_doc(s: &StuffRecord) -> Document {
        let mut d = pre_delivery_doc(s);
        d.insert(
            "files",
            vec![Bson::Document(doc! {
                "id": "f1", "name": "notes.pdf", "sizeBytes": 10_i64,
                "contentType": "application/pdf", "sha256": "ab".repeat(32), "object": "files/s1/x",
            })],
        );
        d.insert("hasSecretNote", true);
        d
    }

    /// A document written before stuff had deliverables.
    fn pre_delivery_doc(s: &StuffRecord) -> Document {
        doc! {
            "_id": &s.id,
            "title": &s.title,
            "description": &s.description,
            "priceCents": s.price_cents,
            "sellerId": &s.seller_id,
            "status": s.status.as_str(),
            "orderId": s.order_id.as_deref(),
            "version": db_version(s.version),
            "createdAt": to_db(&s.created_at),
            "updatedAt": to_db(&s.updated_at),
        }
    }

    #[test]
    fn stuff_document_keeps_its_layout_and_round_trips() {
        for s in [stuff(None), stuff(Some("o1"))] {
            let d = stuff_doc(&s).unwrap();
            // What documents held before courses, plus `course`.
            let mut expected = old_doc(&s);
            expected.insert("course", Bson::Null);
            for rating in ["ratingCount", "ratingSum", "ratingRank"] {
                expected.insert(rating, 0_i64);
            }
            // Files now say their page count and previews (none for this one).
            expected.insert(
                "files",
                vec![Bson::Document(doc! {
                    "id": "f1", "name": "notes.pdf", "sizeBytes": 10_i64,
                    "contentType": "application/pdf", "sha256": "ab".repeat(32),
                    "pages": Bson::Null, "previewUrls": Bson::Array(vec![]), "object": "files/s1/x",
                })],
            );
            assert_eq!(d, expected);
            assert_eq!(stuff_from(d).unwrap(), s);
            // A document from before courses reads as having none.
            assert_eq!(stuff_from(old_doc(&s)).unwrap(), s);
        }
        let with_course = StuffRecord {
            course: Some("CS 101".into()),
            ..stuff(None)
        };
        let d = stuff_doc(&with_course).unwrap();
        assert_eq!(d.get_str("course").ok(), Some("CS 101"));
        assert_eq!(stuff_from(d).unwrap(), with_course);
        // A free stuff stores `orderId: null` (what the `$set` of a release writes too).
        assert_eq!(
            stuff_doc(&stuff(None)).unwrap().get("orderId"),
            Some(&Bson::Null)
        );
    }

    #[test]
    fn reads_a_document_from_before_delivery() {
        let s = stuff(None);
        let read = stuff_from(pre_delivery_doc(&s)).unwrap();
        assert_eq!((read.files.len(), read.has_secret_note), (0, false));
    }

    #[test]
    fn reads_a_document_without_order_id() {
        let s = stuff(None);
        let mut d = old_doc(&s);
        d.remove("orderId");
        assert_eq!(stuff_from(d).unwrap(), s);
    }

    #[test]
    fn refuses_a_bad_document() {
        let s = stuff(None);
        let mut d = old_doc(&s);
        d.insert("status", "lost");
        assert!(stuff_from(d).is_err());
        let mut d = old_doc(&s);
        d.insert("version", -1_i64);
        assert!(stuff_from(d).is_err());
    }

    #[test]
    fn the_event_payload_is_unchanged() {
        // The record's own serde (event JSON) still has `id`, no `orderId` when free.
        let json = serde_json::to_value(stuff(None)).unwrap();
        assert_eq!(json["id"], "s1");
        assert!(json.get("orderId").is_none());
        assert!(json.get("_id").is_none());
    }
}
