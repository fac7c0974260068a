//! MongoDB backend of [`PaymentStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transactions that write a change and its event together).
//!
//! Collections: `orders` (`_id` = order id), `payments` (unique index on `orderId`),
//! `coupons` (`_id` = code), `outbox`. Times are stored as fixed-format RFC 3339 strings,
//! so comparing them as strings compares them in time.

use super::{
    CouponRow, FailureRow, OrderReplica, PaymentRow, PaymentStore, Redemption, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, IndexModel};
use ms_common::events::{EventEnvelope, OrderStatus, VersionCheck};
use ms_common::storage::mongo::{Db, Duplicate, enqueue, is_duplicate_key};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::{from_db, to_db};
use std::sync::Arc;

/// Orders, payments and coupons in a MongoDB database.
#[derive(Clone)]
pub struct MongoPaymentStore {
    db: Db,
}

impl MongoPaymentStore {
    /// Connects and ensures the indexes (one payment per order, coupons by creation).
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let db = ms_common::storage::mongo::connect(url, database).await?;
        db.collection::<Document>("payments")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"orderId": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
            .await?;
        db.collection::<Document>("coupons")
            .create_index(IndexModel::builder().keys(doc! {"createdAt": -1}).build())
            .await?;
        Ok(Self { db })
    }

    fn orders(&self) -> Collection<Document> {
        self.db.collection("orders")
    }
    fn payments(&self) -> Collection<Document> {
        self.db.collection("payments")
    }
    fn coupons(&self) -> Collection<Document> {
        self.db.collection("coupons")
    }
    fn failures(&self) -> Collection<Document> {
        self.db.collection("payment_failures")
    }
}

fn string(d: &Document, k: &str) -> Result<String, StoreError> {
    d.get_str(k)
        .map(str::to_owned)
        .map_err(|e| StoreError::Other(e.into()))
}

fn int(d: &Document, k: &str) -> Result<i64, StoreError> {
    match d.get(k) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        other => Err(StoreError::Other(anyhow::anyhow!(
            "field {k}: expected an integer, found {other:?}"
        ))),
    }
}

fn opt_int(d: &Document, k: &str) -> Result<Option<i64>, StoreError> {
    match d.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => int(d, k).map(Some),
    }
}

fn time(d: &Document, k: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(from_db(
        d.get_str(k).map_err(|e| StoreError::Other(e.into()))?,
    )?)
}

fn opt_time(d: &Document, k: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match d.get(k) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => time(d, k).map(Some),
    }
}

fn order_doc(o: &OrderReplica) -> Document {
    doc! {
        "stuffId": &o.stuff_id,
        "userId": &o.user_id,
        "status": o.status.as_str(),
        "expiresAt": to_db(&o.expires_at),
        "priceCents": o.price_cents,
        "version": db_version(o.version),
    }
}

fn order_from(d: &Document) -> Result<OrderReplica, StoreError> {
    let status = string(d, "status")?;
    Ok(OrderReplica {
        id: string(d, "_id")?,
        stuff_id: string(d, "stuffId")?,
        user_id: string(d, "userId")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| anyhow::anyhow!("unknown order status {status:?}"))?,
        expires_at: time(d, "expiresAt")?,
        price_cents: int(d, "priceCents")?,
        version: u64::try_from(int(d, "version")?).unwrap_or(0),
    })
}

fn payment_from(d: &Document) -> Result<PaymentRow, StoreError> {
    Ok(PaymentRow {
        id: string(d, "_id")?,
        order_id: string(d, "orderId")?,
        user_id: string(d, "userId")?,
        amount_cents: int(d, "amountCents")?,
        coupon_code: d.get_str("couponCode").ok().map(str::to_owned),
        provider_id: string(d, "providerId")?,
        created_at: time(d, "createdAt")?,
    })
}

fn coupon_from(d: &Document) -> Result<CouponRow, StoreError> {
    Ok(CouponRow {
        code: string(d, "_id")?,
        percent_off: int(d, "percentOff")?,
        max_redemptions: opt_int(d, "maxRedemptions")?,
        redemptions: int(d, "redemptions")?,
        expires_at: opt_time(d, "expiresAt")?,
        created_by: string(d, "createdBy")?,
        created_at: time(d, "createdAt")?,
    })
}

/// The update that gives one redemption back, never going below zero.
fn release_filter(code: &str) -> (Document, Document) {
    (
        doc! {"_id": code, "redemptions": {"$gt": 0_i64}},
        doc! {"$inc": {"redemptions": -1_i64}},
    )
}

#[async_trait]
impl PaymentStore for MongoPaymentStore {
    async fn apply_order(&self, o: &OrderReplica) -> Result<VersionCheck, StoreError> {
        if o.version == 1 {
            let mut d = order_doc(o);
            d.insert("_id", &o.id);
            return match self.orders().insert_one(d).await {
                Ok(_) => Ok(VersionCheck::Apply),
                // Version 1 is held already (or later ones): a duplicate.
                Err(e) if is_duplicate_key(&e) => Ok(VersionCheck::Stale),
                Err(e) => Err(e.into()),
            };
        }
        if o.version > 1 {
            // Compare-and-set on the previous version.
            let res = self
                .orders()
                .update_one(
                    doc! {"_id": &o.id, "version": db_version(o.version - 1)},
                    doc! {"$set": order_doc(o)},
                )
                .await?;
            if res.matched_count == 1 {
                return Ok(VersionCheck::Apply);
            }
        }
        let held = self
            .orders()
            .find_one(doc! {"_id": &o.id})
            .await?
            .map(|d| int(&d, "version"))
            .transpose()?
            .map(|v| u64::try_from(v).unwrap_or(0));
        Ok(match VersionCheck::of(held, o.version) {
            // N-1 arrived between our update and this read: try again shortly.
            VersionCheck::Apply => VersionCheck::Early,
            other => other,
        })
    }

    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError> {
        self.orders()
            .find_one(doc! {"_id": id})
            .await?
            .as_ref()
            .map(order_from)
            .transpose()
    }

    async fn payment_for_order(&self, order_id: &str) -> Result<Option<PaymentRow>, StoreError> {
        self.payments()
            .find_one(doc! {"orderId": order_id})
            .await?
            .as_ref()
            .map(payment_from)
            .transpose()
    }

    async fn record_payment(
        &self,
        p: &PaymentRow,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        let payment = doc! {
            "_id": &p.id,
            "orderId": &p.order_id,
            "userId": &p.user_id,
            "amountCents": p.amount_cents,
            "couponCode": p.coupon_code.as_deref(),
            "providerId": &p.provider_id,
            "createdAt": to_db(&p.created_at),
        };
        self.db
            .insert_with_event("payments", &payment, event)
            .await?
            .map_err(|Duplicate| StoreError::AlreadyPaid)
    }

    async fn record_failure(
        &self,
        f: &FailureRow,
        coupon: Option<&str>,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        self.db
            .transaction((self, f, coupon, event), |session, ctx| {
                let (store, f, coupon, event) = *ctx;
                async move {
                    // Keeps the first decline of an order.
                    store
                        .failures()
                        .update_one(
                            doc! {"_id": &f.order_id},
                            doc! {"$setOnInsert": {
                                "userId": &f.user_id,
                                "reason": &f.reason,
                                "createdAt": to_db(&f.created_at),
                            }},
                        )
                        .upsert(true)
                        .session(&mut *session)
                        .await?;
                    if let Some(code) = coupon {
                        let (filter, update) = release_filter(code);
                        store
                            .coupons()
                            .update_one(filter, update)
                            .session(&mut *session)
                            .await?;
                    }
                    enqueue(&store.db, session, event).await?;
                    Ok(Ok::<(), StoreError>(()))
                }
                .boxed()
            })
            .await?
    }

    async fn failure_for_order(&self, order_id: &str) -> Result<Option<FailureRow>, StoreError> {
        self.failures()
            .find_one(doc! {"_id": order_id})
            .await?
            .map(|d| {
                Ok(FailureRow {
                    order_id: string(&d, "_id")?,
                    user_id: string(&d, "userId")?,
                    reason: string(&d, "reason")?,
                    created_at: time(&d, "createdAt")?,
                })
            })
            .transpose()
    }

    async fn create_coupon(&self, c: &CouponRow) -> Result<(), StoreError> {
        let res = self
            .coupons()
            .insert_one(doc! {
                "_id": &c.code,
                "percentOff": c.percent_off,
                "maxRedemptions": c.max_redemptions,
                "redemptions": c.redemptions,
                "expiresAt": c.expires_at.as_ref().map(to_db),
                "createdBy": &c.created_by,
                "createdAt": to_db(&c.created_at),
            })
            .await;
        match res {
            Err(e) if is_duplicate_key(&e) => Err(StoreError::CodeTaken),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn coupon(&self, code: &str) -> Result<Option<CouponRow>, StoreError> {
        self.coupons()
            .find_one(doc! {"_id": code})
            .await?
            .as_ref()
            .map(coupon_from)
            .transpose()
    }

    async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError> {
        let docs: Vec<Document> = self
            .coupons()
            .find(doc! {})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .await?
            .try_collect()
            .await?;
        docs.iter().map(coupon_from).collect()
    }

    async fn redeem_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        // One document update: the filter and the increment are applied atomically.
        let filter = doc! {
            "_id": code,
            "$and": [
                {"$or": [
                    {"maxRedemptions": Bson::Null},
                    {"$expr": {"$lt": ["$redemptions", "$maxRedemptions"]}},
                ]},
                {"$or": [
                    {"expiresAt": Bson::Null},
                    {"expiresAt": {"$gt": to_db(&now)}},
                ]},
            ],
        };
        let updated = self
            .coupons()
            .find_one_and_update(filter, doc! {"$inc": {"redemptions": 1_i64}})
            .return_document(ReturnDocument::After)
            .await?;
        match updated {
            Some(d) => Ok(Redemption::Redeemed(coupon_from(&d)?)),
            None => Ok(Redemption::why_not(self.coupon(code).await?, now)),
        }
    }

    async fn release_coupon(&self, code: &str) -> Result<(), StoreError> {
        let (filter, update) = release_filter(code);
        self.coupons().update_one(filter, update).await?;
        Ok(())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}
