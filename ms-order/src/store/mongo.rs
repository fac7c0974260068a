//! MongoDB backend of [`OrderStore`] (used when `MONGODB_URL` is set; a replica set is
//! needed for the transactions that write an order change and its event together).

use super::{CreateError, OrderStore, StuffReplica, event_for};
use async_trait::async_trait;
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use ms_common::events::{OrderRecord, OrderStatus, StuffStatus, VersionCheck};
use ms_common::storage::mongo::{Db, Duplicate, enqueue, is_duplicate_key};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::{from_db, to_db};
use std::sync::Arc;

/// Orders in a MongoDB database.
#[derive(Clone)]
pub struct MongoOrderStore {
    db: Db,
}

impl MongoOrderStore {
    /// Connects and ensures the indexes, including the partial unique "one active order".
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let db = ms_common::storage::mongo::connect(url, database).await?;
        let one_active = IndexOptions::builder()
            .unique(true)
            .partial_filter_expression(doc! {"status": "created"})
            .name("orders_one_active_per_stuff".to_owned())
            .build();
        let orders = db.collection::<Document>("orders");
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"stuffId": 1})
                    .options(one_active)
                    .build(),
            )
            .await?;
        orders
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"userId": 1, "createdAt": -1})
                    .build(),
            )
            .await?;
        Ok(Self { db })
    }

    fn orders(&self) -> Collection<Document> {
        self.db.collection("orders")
    }
    fn stuff_coll(&self) -> Collection<Document> {
        self.db.collection("stuff_replica")
    }
}

fn order_doc(o: &OrderRecord) -> Document {
    doc! {
        "_id": &o.id, "stuffId": &o.stuff_id, "userId": &o.user_id, "status": o.status.as_str(),
        "expiresAt": to_db(&o.expires_at), "priceCents": o.price_cents, "version": db_version(o.version),
        "createdAt": to_db(&o.created_at),
    }
}

fn order_from(d: &Document) -> anyhow::Result<OrderRecord> {
    Ok(OrderRecord {
        id: d.get_str("_id")?.to_owned(),
        stuff_id: d.get_str("stuffId")?.to_owned(),
        user_id: d.get_str("userId")?.to_owned(),
        status: OrderStatus::parse(d.get_str("status")?)
            .ok_or_else(|| anyhow::anyhow!("bad status"))?,
        expires_at: from_db(d.get_str("expiresAt")?)?,
        price_cents: d.get_i64("priceCents")?,
        version: u64::try_from(d.get_i64("version")?)?,
        created_at: from_db(d.get_str("createdAt")?)?,
    })
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
            let set = doc! {"$set": {
                "sellerId": &s.seller_id,
                "priceCents": s.price_cents,
                "status": s.status.as_str(),
                "version": db_version(s.version),
                "deliverable": s.deliverable,
            }};
            let res = self
                .stuff_coll()
                .update_one(filter, set)
                .upsert(held.is_none())
                .await;
            match res {
                Ok(r) if r.matched_count == 0 && r.upserted_id.is_none() => {
                    return Ok(VersionCheck::Early);
                }
                Err(e) if is_duplicate_key(&e) => return Ok(VersionCheck::Early),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        Ok(check)
    }

    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>> {
        let Some(d) = self.stuff_coll().find_one(doc! {"_id": id}).await? else {
            return Ok(None);
        };
        Ok(Some(StuffReplica {
            id: d.get_str("_id")?.to_owned(),
            seller_id: d.get_str("sellerId")?.to_owned(),
            price_cents: d.get_i64("priceCents")?,
            status: StuffStatus::parse(d.get_str("status")?)
                .ok_or_else(|| anyhow::anyhow!("bad status"))?,
            version: u64::try_from(d.get_i64("version")?)?,
            deliverable: d.get_bool("deliverable").unwrap_or(false),
        }))
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
        self.db
            .insert_with_event("orders", &order_doc(o), &event_for(o, cid))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(|Duplicate| CreateError::Held)
    }

    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>> {
        self.orders()
            .find_one(doc! {"_id": id})
            .await?
            .as_ref()
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
        docs.iter().map(order_from).collect()
    }

    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        cid: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>> {
        let moved = self
            .db
            .transaction((self, id, &cid), |session, ctx| {
                let (store, id, cid) = *ctx;
                async move {
                    let res = store
                        .orders()
                        .update_one(
                            doc! {"_id": id, "status": from.as_str()},
                            doc! {"$set": {"status": to.as_str()}, "$inc": {"version": 1_i64}},
                        )
                        .session(&mut *session)
                        .await;
                    let res = match res {
                        // Another active order holds the stuff (partial unique index).
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
                    let order = match order_from(&d) {
                        Ok(o) => o,
                        Err(e) => return Ok(Err(Some(e))),
                    };
                    enqueue(&store.db, session, &event_for(&order, cid.clone())).await?;
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
