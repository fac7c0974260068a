//! MongoDB backend of [`OrderStore`] (used when `MONGODB_URL` is set; a replica set is
//! needed for the transactions that write an order change and its event together).

use super::{
    CreateError, NamedReview, OrderStore, Paid, ReviewError, SalesPage, StuffReplica, event_for,
    review_event, sale_of,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc, from_document, to_document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, ReviewRecord, SaleRecord, UserRecord,
    VersionCheck,
};
use ms_common::storage::mongo::{
    Db, USER_NAMES, apply_user_name, enqueue, is_duplicate_key, user_name_or,
};
use ms_common::storage::{OutboxStore, db_version};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Orders in a MongoDB database.
#[derive(Clone)]
pub struct MongoOrderStore {
    db: Db,
}

impl MongoOrderStore {
    /// Connects and ensures the indexes, including the partial unique "one taker per stuff"
    /// (an order `created` or `complete`; `$in` in a partial index needs MongoDB 6.0).
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let db = ms_common::storage::mongo::connect(url, database).await?;
        let one_taker = IndexOptions::builder()
            .unique(true)
            .partial_filter_expression(doc! {"status": {"$in": ["created", "complete"]}})
            .name("orders_one_taker_per_stuff".to_owned())
            .build();
        let orders = db.collection::<Document>("orders");
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"stuffId": 1})
                    .options(one_taker)
                    .build(),
            )
            .await?;
        // The narrower index of earlier versions (only `created`) is implied by the new one.
        if let Err(e) = orders.drop_index("orders_one_active_per_stuff").await {
            tracing::debug!(error = %e, "no index orders_one_active_per_stuff to drop");
        }
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"userId": 1, "createdAt": -1})
                    .build(),
            )
            .await?;
        // order:sales: a seller's complete orders, newest paid first.
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"sellerId": 1, "paidAt": -1, "_id": -1})
                    .options(
                        IndexOptions::builder()
                            .partial_filter_expression(doc! {"status": "complete"})
                            .name("orders_sales".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await?;
        // The sweeper's query: holds by expiry (only `created` orders are indexed).
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"expiresAt": 1})
                    .options(
                        IndexOptions::builder()
                            .partial_filter_expression(doc! {"status": "created"})
                            .name("orders_created_by_expiry".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await?;
        // One review per order (the database decides a second one); review:list reads a
        // stuff's reviews newest first.
        let reviews = db.collection::<Document>("reviews");
        reviews
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"orderId": 1})
                    .options(
                        IndexOptions::builder()
                            .unique(true)
                            .name("reviews_one_per_order".to_owned())
                            .build(),
                    )
                    .build(),
            )
            .await?;
        reviews
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"stuffId": 1, "createdAt": -1, "_id": -1})
                    .build(),
            )
            .await?;
        Ok(Self { db })
    }

    fn orders(&self) -> Collection<Document> {
        self.db.collection("orders")
    }

    /// The sale an `orders` document is (its `sellerId`, `feeCents`, `paidAt`, and the
    /// buyer's name from the replica of accounts), read in `session`; `None` when its
    /// seller was never recorded.
    async fn sale_from(
        &self,
        session: &mut mongodb::ClientSession,
        d: &Document,
    ) -> anyhow::Result<Option<SaleRecord>> {
        let buyer = match d.get_str("userId") {
            Ok(user_id) => self
                .db
                .collection::<Document>(USER_NAMES)
                .find_one(doc! {"_id": user_id})
                .session(&mut *session)
                .await?
                .and_then(|n| n.get_str("displayName").ok().map(str::to_owned)),
            Err(_) => None,
        };
        sale_of_doc(d, buyer)
    }

    /// The names the replica of accounts holds for `ids`, in one read.
    async fn names_of(&self, ids: &[&str]) -> anyhow::Result<HashMap<String, String>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        Ok(self
            .db
            .collection::<Document>(USER_NAMES)
            .find(doc! {"_id": {"$in": ids}})
            .await?
            .try_collect::<Vec<Document>>()
            .await?
            .into_iter()
            .filter_map(|d| {
                Some((
                    d.get_str("_id").ok()?.to_owned(),
                    d.get_str("displayName").ok()?.to_owned(),
                ))
            })
            .collect())
    }

    fn reviews(&self) -> Collection<Document> {
        self.db.collection("reviews")
    }
    fn stuff_coll(&self) -> Collection<Document> {
        self.db.collection("stuff_replica")
    }
}

/// The layout of an `orders` document: [`OrderRecord`]'s fields under serde attributes of
/// their own (`_id`, times as `to_db` text), so the record's JSON form for events is left
/// alone.
#[derive(Serialize, Deserialize)]
#[serde(remote = "OrderRecord", rename_all = "camelCase")]
struct OrderDoc {
    #[serde(rename = "_id")]
    id: String,
    stuff_id: String,
    user_id: String,
    status: OrderStatus,
    #[serde(with = "ms_common::time::db")]
    expires_at: DateTime<Utc>,
    price_cents: i64,
    // Both absent from orders written before they were recorded.
    #[serde(default)]
    stuff_title: String,
    #[serde(default)]
    paid_cents: Option<i64>,
    // Absent from orders written before reviews existed.
    #[serde(default)]
    reviewed: bool,
    // Absent from orders written before it was recorded.
    #[serde(default, with = "ms_common::storage::optional_version")]
    stuff_version: Option<u64>,
    // Absent from orders made before the seller was recorded at creation (set when paid).
    #[serde(default)]
    seller_id: Option<String>,
    #[serde(with = "ms_common::storage::version")]
    version: u64,
    #[serde(with = "ms_common::time::db")]
    created_at: DateTime<Utc>,
}

/// An order to write, in [`OrderDoc`]'s layout.
#[derive(Serialize)]
#[serde(transparent)]
struct OrderOut<'a>(#[serde(serialize_with = "OrderDoc::serialize")] &'a OrderRecord);

/// An order read back, in [`OrderDoc`]'s layout.
#[derive(Deserialize)]
#[serde(transparent)]
struct OrderIn(#[serde(with = "OrderDoc")] OrderRecord);

fn order_doc(o: &OrderRecord) -> anyhow::Result<Document> {
    Ok(to_document(&OrderOut(o))?)
}

fn order_from(d: Document) -> anyhow::Result<OrderRecord> {
    Ok(from_document::<OrderIn>(d)?.0)
}

/// The layout of a `reviews` document: [`ReviewRecord`]'s fields with `_id` and the time
/// as `to_db` text (string order is time order).
#[derive(Serialize, Deserialize)]
#[serde(remote = "ReviewRecord", rename_all = "camelCase")]
struct ReviewDoc {
    #[serde(rename = "_id")]
    id: String,
    order_id: String,
    stuff_id: String,
    user_id: String,
    rating: i64,
    comment: String,
    #[serde(with = "ms_common::time::db")]
    created_at: DateTime<Utc>,
}

/// A review to write, in [`ReviewDoc`]'s layout.
#[derive(Serialize)]
#[serde(transparent)]
struct ReviewOut<'a>(#[serde(serialize_with = "ReviewDoc::serialize")] &'a ReviewRecord);

/// A review read back, in [`ReviewDoc`]'s layout.
#[derive(Deserialize)]
#[serde(transparent)]
struct ReviewIn(#[serde(with = "ReviewDoc")] ReviewRecord);

/// The sale an `orders` document is, with the buyer's name when known; `None` when its
/// seller was never recorded.
fn sale_of_doc(d: &Document, buyer: Option<String>) -> anyhow::Result<Option<SaleRecord>> {
    let Ok(seller_id) = d.get_str("sellerId") else {
        return Ok(None);
    };
    let order = order_from(d.clone())?;
    let fee = d.get_i64("feeCents").unwrap_or(0);
    let paid_at = match d.get_str("paidAt") {
        Ok(t) => ms_common::time::from_db(t)?,
        Err(_) => order.created_at,
    };
    Ok(Some(sale_of(
        &order,
        seller_id.to_owned(),
        fee,
        paid_at,
        buyer,
    )))
}

#[async_trait]
impl OrderStore for MongoOrderStore {
    async fn apply_stuff(&self, s: &StuffReplica) -> anyhow::Result<VersionCheck> {
        let held = self
            .stuff_coll()
            .find_one(doc! {"_id": &s.id})
            .await?
            .and_then(|d| d.get_i64("version").ok())
            .map(|v| u64::try_from(v).unwrap_or(0));
        let check = VersionCheck::of(held, s.version);
        if check == VersionCheck::Apply {
            // Conditional on the version we read, so a concurrent apply cannot go backwards.
            let filter = match held {
                Some(h) => doc! {"_id": &s.id, "version": db_version(h)},
                None => doc! {"_id": &s.id},
            };
            // The whole replica but its `_id` (which the filter or the upsert gives).
            let mut set = to_document(s)?;
            set.remove("_id");
            let res = self
                .stuff_coll()
                .update_one(filter, doc! {"$set": set})
                .upsert(held.is_none())
                .await;
            match res {
                Ok(r) if r.matched_count == 0 && r.upserted_id.is_none() => {
                    return Ok(VersionCheck::Raced);
                }
                Err(e) if is_duplicate_key(&e) => return Ok(VersionCheck::Raced),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        Ok(check)
    }

    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>> {
        Ok(self
            .stuff_coll()
            .find_one(doc! {"_id": id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn create_order(&self, o: &OrderRecord, cid: Option<String>) -> Result<(), CreateError> {
        let sold = self
            .orders()
            .find_one(doc! {"stuffId": &o.stuff_id, "status": "complete"})
            .await
            .map_err(anyhow::Error::from)?;
        if sold.is_some() {
            return Err(CreateError::Sold);
        }
        // Whose sale it becomes (a stuff's seller never changes).
        let seller = self
            .stuff_coll()
            .find_one(doc! {"_id": &o.stuff_id})
            .await
            .map_err(anyhow::Error::from)?
            .and_then(|d| d.get_str("sellerId").ok().map(str::to_owned));
        let mut doc = order_doc(o)?;
        doc.insert("sellerId", seller);
        let inserted = self
            .db
            .insert_with_event("orders", &doc, &event_for(o, cid))
            .await
            .map_err(anyhow::Error::from)?;
        if inserted.is_ok() {
            return Ok(());
        }
        // The index refused it: held by another order, or sold since the check above.
        let sold = self
            .orders()
            .find_one(doc! {"stuffId": &o.stuff_id, "status": "complete"})
            .await
            .map_err(anyhow::Error::from)?;
        Err(if sold.is_some() {
            CreateError::Sold
        } else {
            CreateError::Held
        })
    }

    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>> {
        self.orders()
            .find_one(doc! {"_id": id})
            .await?
            .map(order_from)
            .transpose()
    }

    async fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<OrderRecord>> {
        let docs: Vec<Document> = self
            .orders()
            .find(doc! {"userId": user_id})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .limit(500)
            .await?
            .try_collect()
            .await?;
        docs.into_iter().map(order_from).collect()
    }

    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<Paid>,
        cid: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>> {
        let moved = self
            .db
            .transaction((self, id, &cid), |session, ctx| {
                let (store, id, cid) = *ctx;
                async move {
                    let mut set = doc! {"status": to.as_str()};
                    if let Some(paid) = paid {
                        set.insert("paidCents", paid.cents);
                        set.insert("feeCents", paid.fee_cents);
                    }
                    if to == OrderStatus::Complete {
                        set.insert("paidAt", ms_common::time::to_db(&ms_common::time::now()));
                    }
                    let res = store
                        .orders()
                        .update_one(
                            doc! {"_id": id, "status": from.as_str()},
                            doc! {"$set": set, "$inc": {"version": 1_i64}},
                        )
                        .session(&mut *session)
                        .await;
                    let res = match res {
                        // Another order holds or bought the stuff (partial unique index).
                        Err(e) if is_duplicate_key(&e) => return Ok(Err(None)),
                        other => other?,
                    };
                    if res.modified_count != 1 {
                        return Ok(Err(None));
                    }
                    let Some(d) = store
                        .orders()
                        .find_one(doc! {"_id": id})
                        .session(&mut *session)
                        .await?
                    else {
                        return Ok(Err(Some(anyhow::anyhow!("order vanished"))));
                    };
                    let sale = match store.sale_from(session, &d).await {
                        Ok(sale) => sale,
                        Err(e) => return Ok(Err(Some(e))),
                    };
                    let order = match order_from(d) {
                        Ok(o) => o,
                        Err(e) => return Ok(Err(Some(e))),
                    };
                    enqueue(&store.db, session, &event_for(&order, cid.clone())).await?;
                    if let (OrderStatus::Complete, Some(sale)) = (order.status, sale) {
                        let ev = EventEnvelope::new(Event::SaleCompleted(sale), cid.clone());
                        enqueue(&store.db, session, &ev).await?;
                    }
                    Ok(Ok(order))
                }
                .boxed()
            })
            .await?;
        match moved {
            Ok(order) => Ok(Some(order)),
            Err(None) => Ok(None),
            Err(Some(e)) => Err(e),
        }
    }

    async fn sales_of(&self, seller_id: &str, limit: u32) -> anyhow::Result<SalesPage> {
        let filter = doc! {"sellerId": seller_id, "status": "complete"};
        let docs: Vec<Document> = self
            .orders()
            .find(filter.clone())
            .sort(doc! {"paidAt": -1, "_id": -1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        // The buyers' names in one read, not one per sale.
        let buyers: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.get_str("userId").ok())
            .collect();
        let names = self.names_of(&buyers).await?;
        let mut sales = Vec::with_capacity(docs.len());
        for d in &docs {
            let buyer = d.get_str("userId").ok().and_then(|u| names.get(u).cloned());
            sales.extend(sale_of_doc(d, buyer)?);
        }
        let totals: Vec<Document> = self
            .orders()
            .aggregate(vec![
                doc! {"$match": filter},
                doc! {"$group": {"_id": Bson::Null, "earned": {"$sum": {"$subtract": [
                    {"$ifNull": ["$paidCents", 0_i64]},
                    {"$ifNull": ["$feeCents", 0_i64]},
                ]}}}},
            ])
            .await?
            .try_collect()
            .await?;
        let total = totals
            .first()
            .and_then(|d| match d.get("earned") {
                Some(Bson::Int64(n)) => Some(*n),
                Some(Bson::Int32(n)) => Some(i64::from(*n)),
                _ => None,
            })
            .unwrap_or(0);
        Ok(SalesPage {
            sales,
            total_earned_cents: total,
        })
    }

    async fn overdue_holds(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<String>> {
        // `expiresAt` is `to_db` text: string order is time order.
        let docs: Vec<Document> = self
            .orders()
            .find(doc! {"status": "created", "expiresAt": {"$lt": ms_common::time::to_db(&before)}})
            .projection(doc! {"_id": 1})
            .sort(doc! {"expiresAt": 1, "_id": 1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|d| Ok(d.get_str("_id")?.to_owned()))
            .collect()
    }

    async fn apply_user(&self, user: &UserRecord) -> anyhow::Result<bool> {
        Ok(self
            .db
            .transaction((self, user), |session, ctx| {
                let (store, user) = *ctx;
                async move {
                    Ok(Ok::<bool, ()>(
                        apply_user_name(&store.db, session, user).await?,
                    ))
                }
                .boxed()
            })
            .await?
            .unwrap_or(false))
    }

    async fn create_review(
        &self,
        review: &ReviewRecord,
        fallback_name: &str,
        cid: Option<String>,
    ) -> Result<NamedReview, ReviewError> {
        let doc = to_document(&ReviewOut(review)).map_err(anyhow::Error::from)?;
        self.db
            .transaction((self, review, &doc, fallback_name, &cid), |session, ctx| {
                let (store, review, doc, fallback, cid) = *ctx;
                async move {
                    match store.reviews().insert_one(doc).session(&mut *session).await {
                        Err(e) if is_duplicate_key(&e) => {
                            return Ok(Err(ReviewError::AlreadyReviewed));
                        }
                        other => other?,
                    };
                    // Not a change of the order: no version bump, no order event.
                    let marked = store
                        .orders()
                        .update_one(
                            doc! {"_id": &review.order_id, "userId": &review.user_id,
                            "stuffId": &review.stuff_id, "status": "complete"},
                            doc! {"$set": {"reviewed": true}},
                        )
                        .session(&mut *session)
                        .await?;
                    if marked.matched_count != 1 {
                        return Ok(Err(ReviewError::NotComplete));
                    }
                    let name = user_name_or(&store.db, session, &review.user_id, fallback).await?;
                    enqueue(&store.db, session, &review_event(review, cid.clone())).await?;
                    Ok(Ok(NamedReview {
                        review: review.clone(),
                        buyer_name: Some(name),
                    }))
                }
                .boxed()
            })
            .await
            .map_err(anyhow::Error::from)?
    }

    async fn reviews_of(&self, stuff_id: &str, limit: u32) -> anyhow::Result<Vec<NamedReview>> {
        let docs: Vec<Document> = self
            .reviews()
            .find(doc! {"stuffId": stuff_id})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        let reviews: Vec<ReviewRecord> = docs
            .into_iter()
            .map(|d| Ok(from_document::<ReviewIn>(d)?.0))
            .collect::<anyhow::Result<_>>()?;
        // The buyers' names as the replica holds them now, in one read.
        let buyers: Vec<&str> = reviews.iter().map(|r| r.user_id.as_str()).collect();
        let names = self.names_of(&buyers).await?;
        Ok(reviews
            .into_iter()
            .map(|review| NamedReview {
                buyer_name: names.get(&review.user_id).cloned(),
                review,
            })
            .collect())
    }

    async fn stuff_taken(&self, stuff_id: &str, except: &str) -> anyhow::Result<bool> {
        let d = self
            .orders()
            .find_one(doc! {"stuffId": stuff_id, "_id": {"$ne": except}, "status": {"$in": [Bson::from("created"), Bson::from("complete")]}})
            .await?;
        Ok(d.is_some())
    }

    async fn active_count(&self, stuff_id: &str) -> anyhow::Result<u64> {
        Ok(self
            .orders()
            .count_documents(doc! {"stuffId": stuff_id, "status": "created"})
            .await?)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::events::StuffStatus;
    use ms_common::time::{from_db, to_db};

    fn order(status: OrderStatus) -> OrderRecord {
        OrderRecord {
            id: "o1".into(),
            stuff_id: "s1".into(),
            user_id: "u2".into(),
            status,
            expires_at: from_db("2026-11-23T20:15:00.250Z").unwrap(),
            price_cents: 1999,
            stuff_title: "Lamp".into(),
            paid_cents: None,
            reviewed: false,
            stuff_version: Some(3),
            seller_id: None,
            version: 2,
            created_at: from_db("2026-11-23T20:00:00Z").unwrap(),
        }
    }

    #[test]
    fn order_document_keeps_its_layout_and_round_trips() {
        for status in [
            OrderStatus::Created,
            OrderStatus::Cancelled,
            OrderStatus::Complete,
            OrderStatus::Refunded,
        ] {
            let o = order(status);
            // The document the hand-written `order_doc` wrote.
            let old = doc! {
                "_id": &o.id, "stuffId": &o.stuff_id, "userId": &o.user_id, "status": o.status.as_str(),
                "expiresAt": to_db(&o.expires_at), "priceCents": o.price_cents, "version": db_version(o.version),
                "createdAt": to_db(&o.created_at),
            };
            // Plus the stuff version it was priced at, its title and what was paid.
            let mut now = old.clone();
            now.insert("stuffVersion", 3_i64);
            now.insert("stuffTitle", "Lamp");
            now.insert("paidCents", Bson::Null);
            now.insert("reviewed", false);
            now.insert("sellerId", Bson::Null);
            let d = order_doc(&o).unwrap();
            assert_eq!(d.get("stuffVersion"), now.get("stuffVersion"));
            assert_eq!(d, now);
            assert_eq!(order_from(d).unwrap(), o);
            // An order written before the field existed reads as unchecked.
            let before = order_from(old).unwrap();
            assert_eq!(
                (
                    before.stuff_version,
                    before.stuff_title.as_str(),
                    before.paid_cents
                ),
                (None, "", None)
            );
            assert_eq!(
                OrderRecord {
                    stuff_version: Some(3),
                    seller_id: None,
                    stuff_title: "Lamp".into(),
                    ..before
                },
                o
            );
        }
    }

    #[test]
    fn the_event_payload_is_unchanged() {
        let json = serde_json::to_value(order(OrderStatus::Created)).unwrap();
        assert_eq!(json["id"], "o1");
        assert!(json.get("_id").is_none());
    }

    #[test]
    fn stuff_replica_document() {
        let s = StuffReplica {
            id: "s1".into(),
            seller_id: "u1".into(),
            title: "Lamp".into(),
            price_cents: 500,
            status: StuffStatus::Reserved,
            version: 4,
            deliverable: true,
        };
        // What the upsert's `$set` writes, and the `_id` it was upserted under.
        let doc = doc! {"_id": &s.id, "sellerId": &s.seller_id, "title": "Lamp", "priceCents": s.price_cents, "status": s.status.as_str(), "version": db_version(s.version), "deliverable": true};
        assert_eq!(to_document(&s).unwrap(), doc);
        assert_eq!(from_document::<StuffReplica>(doc).unwrap(), s);
        // A replica written before delivery existed reads as nothing to deliver.
        let old = doc! {"_id": &s.id, "sellerId": &s.seller_id, "priceCents": s.price_cents, "status": s.status.as_str(), "version": db_version(s.version)};
        assert!(!from_document::<StuffReplica>(old).unwrap().deliverable);
    }
}
