//! MongoDB backend of [`StuffStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transactions that write a change and its event together).
//!
//! Collections: `stuff` (one document per stuff, `_id` = id), `order_versions` (`_id` =
//! order id: last applied version, status and stuff of every order heard of), `outbox`.
//! Transactions that hit a write conflict (`TransientTransactionError`) are run again.

use super::{
    Edit, ListQuery, OrderChange, OrderOutcome, StoreError, StuffStore, created_event,
    edit_refusal, order_effect, updated_event,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::options::ReturnDocument;
use mongodb::{ClientSession, Collection, Database, IndexModel};
use ms_common::events::{OrderRecord, StuffRecord, StuffStatus, VersionCheck};
use ms_common::storage::OutboxStore;
use ms_common::storage::mongo::{MongoOutbox, enqueue};
use ms_common::time::{from_db, to_db};
use std::sync::Arc;

/// How many times a transaction that lost a write conflict is run again.
const TX_ATTEMPTS: u32 = 5;

/// The catalogue in a MongoDB database.
#[derive(Clone)]
pub struct MongoStuffStore {
    db: Database,
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
            filter.insert("version", to_i64(v));
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
        let updated = self
            .stuff()
            .find_one_and_update(filter, doc! {"$set": set, "$inc": {"version": 1_i64}})
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?;
        let Some(doc) = updated else {
            let current = self
                .stuff()
                .find_one(doc! {"_id": e.id})
                .session(&mut *session)
                .await?;
            let current = current.as_ref().map(stuff_from).transpose()?;
            return Err(edit_refusal(current.as_ref(), e));
        };
        let updated = stuff_from(&doc)?;
        enqueue(
            &self.db,
            session,
            &updated_event(&updated, e.correlation_id),
        )
        .await?;
        Ok(updated)
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
        match VersionCheck::of(held, order.version) {
            VersionCheck::Stale => return Ok(OrderOutcome::Stale),
            VersionCheck::Early => return Ok(OrderOutcome::Early),
            VersionCheck::Apply => {}
        }
        let Some(stuff) = self
            .stuff()
            .find_one(doc! {"_id": &order.stuff_id})
            .session(&mut *session)
            .await?
        else {
            return Ok(OrderOutcome::UnknownStuff);
        };
        let stuff = stuff_from(&stuff)?;
        self.orders()
            .update_one(
                doc! {"_id": &order.id},
                doc! {"$set": {
                    "stuffId": &order.stuff_id,
                    "status": change.status().as_str(),
                    "version": to_i64(order.version),
                }},
            )
            .upsert(true)
            .session(&mut *session)
            .await?;
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
        let doc = self
            .stuff()
            .find_one_and_update(
                doc! {"_id": &stuff.id, "version": to_i64(stuff.version)},
                doc! {
                    "$set": {
                        "status": holding.status.as_str(),
                        "orderId": holding.order_id.as_deref(),
                        "updatedAt": to_db(&now),
                    },
                    "$inc": {"version": 1_i64},
                },
            )
            .return_document(ReturnDocument::After)
            .session(&mut *session)
            .await?
            .ok_or_else(|| anyhow::anyhow!("stuff {} changed inside a transaction", stuff.id))?;
        let updated = stuff_from(&doc)?;
        enqueue(&self.db, session, &updated_event(&updated, cid)).await?;
        Ok(OrderOutcome::Applied(Some(updated)))
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn string(d: &Document, k: &str) -> Result<String, StoreError> {
    d.get_str(k)
        .map(str::to_owned)
        .map_err(|e| StoreError::Other(e.into()))
}

fn int(d: &Document, k: &str) -> Result<i64, StoreError> {
    d.get_i64(k).map_err(|e| StoreError::Other(e.into()))
}

fn stuff_from(d: &Document) -> Result<StuffRecord, StoreError> {
    let status = string(d, "status")?;
    Ok(StuffRecord {
        id: string(d, "_id")?,
        title: string(d, "title")?,
        description: string(d, "description")?,
        price_cents: int(d, "priceCents")?,
        seller_id: string(d, "sellerId")?,
        status: StuffStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown stuff status {status:?}"))?,
        order_id: d.get_str("orderId").ok().map(str::to_owned),
        version: u64::try_from(int(d, "version")?)
            .map_err(|e| anyhow::anyhow!("bad version: {e}"))?,
        created_at: from_db(&string(d, "createdAt")?)?,
        updated_at: from_db(&string(d, "updatedAt")?)?,
    })
}

fn stuff_doc(s: &StuffRecord) -> Document {
    doc! {
        "_id": &s.id,
        "title": &s.title,
        "description": &s.description,
        "priceCents": s.price_cents,
        "sellerId": &s.seller_id,
        "status": s.status.as_str(),
        "orderId": s.order_id.as_deref(),
        "version": to_i64(s.version),
        "createdAt": to_db(&s.created_at),
        "updatedAt": to_db(&s.updated_at),
    }
}

/// True when the whole transaction may simply be run again.
fn is_transient(e: &StoreError) -> bool {
    match e {
        StoreError::Other(a) => a
            .downcast_ref::<mongodb::error::Error>()
            .is_some_and(|m| m.contains_label(TRANSIENT_TRANSACTION_ERROR)),
        _ => false,
    }
}

/// Commits after success (retrying an unknown commit result), aborts after a failure.
async fn settle<T>(
    session: &mut ClientSession,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(v) => {
            let mut tries = 0;
            loop {
                match session.commit_transaction().await {
                    Ok(()) => return Ok(v),
                    Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && tries < 3 => {
                        tries += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(e) => {
            // Nothing to keep; a failed abort only means the server already dropped it.
            let _ = session.abort_transaction().await;
            Err(e)
        }
    }
}

#[async_trait]
impl StuffStore for MongoStuffStore {
    async fn create(&self, s: &StuffRecord, cid: Option<&str>) -> Result<(), StoreError> {
        let event = created_event(s, cid);
        for attempt in 1..=TX_ATTEMPTS {
            let mut session = self.db.client().start_session().await?;
            session.start_transaction().await?;
            let res = async {
                self.stuff()
                    .insert_one(stuff_doc(s))
                    .session(&mut session)
                    .await?;
                enqueue(&self.db, &mut session, &event).await?;
                Ok(())
            }
            .await;
            match settle(&mut session, res).await {
                Err(e) if is_transient(&e) && attempt < TX_ATTEMPTS => continue,
                other => return other,
            }
        }
        Err(anyhow::anyhow!("transaction kept conflicting").into())
    }

    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError> {
        self.stuff()
            .find_one(doc! {"_id": id})
            .await?
            .as_ref()
            .map(stuff_from)
            .transpose()
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError> {
        let mut filter = Document::new();
        if let Some(s) = q.status {
            filter.insert("status", s.as_str());
        }
        if let Some(c) = &q.after {
            let t = to_db(&c.created_at);
            filter.insert(
                "$or",
                vec![
                    Bson::Document(doc! {"createdAt": {"$lt": &t}}),
                    Bson::Document(doc! {"createdAt": &t, "_id": {"$lt": &c.id}}),
                ],
            );
        }
        let docs: Vec<Document> = self
            .stuff()
            .find(filter)
            .sort(doc! {"createdAt": -1, "_id": -1})
            .limit(i64::from(q.limit))
            .await?
            .try_collect()
            .await?;
        docs.iter().map(stuff_from).collect()
    }

    async fn edit(&self, e: &Edit<'_>) -> Result<StuffRecord, StoreError> {
        for attempt in 1..=TX_ATTEMPTS {
            let mut session = self.db.client().start_session().await?;
            session.start_transaction().await?;
            let res = self.edit_in(&mut session, e).await;
            match settle(&mut session, res).await {
                Err(err) if is_transient(&err) && attempt < TX_ATTEMPTS => continue,
                other => return other,
            }
        }
        Err(anyhow::anyhow!("transaction kept conflicting").into())
    }

    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        cid: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        for attempt in 1..=TX_ATTEMPTS {
            let mut session = self.db.client().start_session().await?;
            session.start_transaction().await?;
            let res = self
                .apply_order_in(&mut session, change, order, now, cid)
                .await;
            match settle(&mut session, res).await {
                Err(err) if is_transient(&err) && attempt < TX_ATTEMPTS => continue,
                other => return other,
            }
        }
        Err(anyhow::anyhow!("transaction kept conflicting").into())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(MongoOutbox::new(&self.db))
    }
}
