//! MongoDB backend of [`PaymentStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transactions that write a change and its event together).
//!
//! Collections: `orders` (`_id` = order id), `payments` (unique index on `orderId`),
//! `coupons` (`_id` = code), `payment_failures` and `pending_charges` (`_id` = order id),
//! `webhook_events` (`_id` = Stripe event id), `outbox`. Times are stored as fixed-format RFC 3339 strings,
//! so comparing them as strings compares them in time.

use super::{
    CouponRow, FailureRow, LedgerStore, OrderReplica, PaymentRow, PaymentStore, Payout,
    PayoutAccount, PayoutTotals, PendingCharge, Redemption, StoreError, group_by_transfer,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Bson, Document, doc, from_document, to_document};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, IndexModel};
use ms_common::events::{EventEnvelope, VersionCheck};
use ms_common::storage::mongo::{Db, Duplicate, enqueue, is_duplicate_key};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::to_db;
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
        db.collection::<Document>("pending_charges")
            .create_index(IndexModel::builder().keys(doc! {"startedAt": 1}).build())
            .await?;
        // Stripe's events name the PaymentIntent.
        db.collection::<Document>("payments")
            .create_index(IndexModel::builder().keys(doc! {"providerId": 1}).build())
            .await?;
        // The ledger: a seller's earnings by payout state, and a transfer's payments.
        db.collection::<Document>("payments")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"sellerId": 1, "payout": 1})
                    .build(),
            )
            .await?;
        db.collection::<Document>("payments")
            .create_index(IndexModel::builder().keys(doc! {"transferKey": 1}).build())
            .await?;
        db.collection::<Document>("payout_accounts")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"accountId": 1})
                    .options(IndexOptions::builder().unique(true).build())
                    .build(),
            )
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
    fn webhook_events(&self) -> Collection<Document> {
        self.db.collection("webhook_events")
    }
    /// Gives one redemption of `code` back inside a transaction's `session`.
    async fn release_in(
        &self,
        session: &mut mongodb::ClientSession,
        code: &str,
    ) -> Result<(), mongodb::error::Error> {
        let (filter, update) = release_filter(code);
        self.coupons()
            .update_one(filter, update)
            .session(session)
            .await?;
        Ok(())
    }

    fn pending_charges(&self) -> Collection<Document> {
        self.db.collection("pending_charges")
    }
    fn payout_accounts(&self) -> Collection<Document> {
        self.db.collection("payout_accounts")
    }

    /// The payments matching `filter`, at most `limit` (sorted by `sort`).
    async fn payments_where(
        &self,
        filter: Document,
        sort: Document,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, StoreError> {
        let docs: Vec<Document> = self
            .payments()
            .find(filter)
            .sort(sort)
            .limit(limit)
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .map(from_document)
            .collect::<Result<_, _>>()?)
    }
}

/// A whole record as the body of an upsert's `$set` or `$setOnInsert`: its document without
/// the `_id` (which the filter gives).
fn without_id(record: &impl serde::Serialize) -> Result<Document, StoreError> {
    let mut d = to_document(record)?;
    d.remove("_id");
    Ok(d)
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
        // Full state: any newer version replaces the one held, so a lost event in between
        // heals instead of blocking every later one.
        let res = self
            .orders()
            .update_one(
                doc! {"_id": &o.id, "version": {"$lt": db_version(o.version)}},
                doc! {"$set": without_id(o)?},
            )
            .await?;
        if res.matched_count == 1 {
            return Ok(VersionCheck::Apply);
        }
        match self.orders().insert_one(to_document(o)?).await {
            Ok(_) => Ok(VersionCheck::Apply),
            // Held already: at this version or a later one (a duplicate), or an older one
            // written between our update and insert (read again).
            Err(e) if is_duplicate_key(&e) => {
                let held = self
                    .orders()
                    .find_one(doc! {"_id": &o.id})
                    .await?
                    .map(from_document::<OrderReplica>)
                    .transpose()?
                    .map(|held| held.version);
                Ok(match VersionCheck::of(held, o.version) {
                    VersionCheck::Apply => VersionCheck::Raced,
                    other => other,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError> {
        Ok(self
            .orders()
            .find_one(doc! {"_id": id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn payment_for_order(&self, order_id: &str) -> Result<Option<PaymentRow>, StoreError> {
        Ok(self
            .payments()
            .find_one(doc! {"orderId": order_id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn record_payment(
        &self,
        p: &PaymentRow,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        self.db
            .insert_with_event("payments", &to_document(p)?, event)
            .await?
            .map_err(|Duplicate| StoreError::AlreadyPaid)
    }

    async fn record_refund(
        &self,
        order_id: &str,
        refunded_at: DateTime<Utc>,
        event: &EventEnvelope,
    ) -> Result<Option<PaymentRow>, StoreError> {
        let at = to_db(&refunded_at);
        let updated = self
            .db
            .transaction((self, order_id, &at, event), |session, ctx| {
                let (store, order_id, at, event) = *ctx;
                async move {
                    // `null` matches a missing field too (payments stored before refunds).
                    let doc = store
                        .payments()
                        .find_one_and_update(
                            doc! {"orderId": order_id, "refundedAt": Bson::Null},
                            doc! {"$set": {"refundedAt": at.as_str()}},
                        )
                        .return_document(ReturnDocument::After)
                        .session(&mut *session)
                        .await?;
                    if doc.is_some() {
                        enqueue(&store.db, session, event).await?;
                    }
                    Ok(Ok::<Option<Document>, StoreError>(doc))
                }
                .boxed()
            })
            .await??;
        Ok(updated.map(from_document).transpose()?)
    }

    async fn record_failure(
        &self,
        f: &FailureRow,
        coupon: Option<&str>,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        let failure = without_id(f)?;
        self.db
            .transaction((self, f, &failure, coupon, event), |session, ctx| {
                let (store, f, failure, coupon, event) = *ctx;
                async move {
                    // Keeps the first decline of an order; a failure told twice (the
                    // decline answer, then Stripe's webhook) gives the redemption back once.
                    let res = store
                        .failures()
                        .update_one(doc! {"_id": &f.order_id}, doc! {"$setOnInsert": failure})
                        .upsert(true)
                        .session(&mut *session)
                        .await?;
                    if res.upserted_id.is_none() {
                        return Ok(Ok::<(), StoreError>(()));
                    }
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
        Ok(self
            .failures()
            .find_one(doc! {"_id": order_id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn create_coupon(&self, c: &CouponRow) -> Result<(), StoreError> {
        let res = self.coupons().insert_one(to_document(c)?).await;
        match res {
            Err(e) if is_duplicate_key(&e) => Err(StoreError::CodeTaken),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn coupon(&self, code: &str) -> Result<Option<CouponRow>, StoreError> {
        Ok(self
            .coupons()
            .find_one(doc! {"_id": code})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError> {
        let docs: Vec<Document> = self
            .coupons()
            .find(doc! {})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .map(from_document)
            .collect::<Result<_, _>>()?)
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
            Some(d) => Ok(Redemption::Redeemed(from_document(d)?)),
            None => Ok(Redemption::why_not(self.coupon(code).await?, now)),
        }
    }

    async fn payment_by_provider(
        &self,
        provider_id: &str,
    ) -> Result<Option<PaymentRow>, StoreError> {
        Ok(self
            .payments()
            .find_one(doc! {"providerId": provider_id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn webhook_handled(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .webhook_events()
            .find_one(doc! {"_id": id})
            .await?
            .is_some())
    }

    async fn record_webhook(
        &self,
        id: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.webhook_events()
            .update_one(
                doc! {"_id": id},
                doc! {"$setOnInsert": {"kind": kind, "handledAt": to_db(&at)}},
            )
            .upsert(true)
            .await?;
        Ok(())
    }

    async fn begin_charge(&self, c: &PendingCharge) -> Result<(), StoreError> {
        let charge = to_document(c)?;
        self.db
            .transaction((self, c, &charge), |session, ctx| {
                let (store, c, charge) = *ctx;
                async move {
                    let earlier = store
                        .pending_charges()
                        .find_one_and_replace(doc! {"_id": &c.order_id}, charge.clone())
                        .upsert(true)
                        .session(&mut *session)
                        .await?
                        .map(from_document::<PendingCharge>)
                        .transpose()?;
                    if let Some(code) = earlier.and_then(|e| e.coupon_code)
                        && Some(&code) != c.coupon_code.as_ref()
                    {
                        store.release_in(session, &code).await?;
                    }
                    Ok(Ok::<(), StoreError>(()))
                }
                .boxed()
            })
            .await?
    }

    async fn set_charge_intent(
        &self,
        order_id: &str,
        intent_key: &str,
        intent_id: &str,
    ) -> Result<(), StoreError> {
        self.pending_charges()
            .update_one(
                doc! {"_id": order_id, "intentKey": intent_key},
                doc! {"$set": {"intentId": intent_id}},
            )
            .await?;
        Ok(())
    }

    async fn abandon_charge(&self, order_id: &str) -> Result<bool, StoreError> {
        self.db
            .transaction((self, order_id), |session, ctx| {
                let (store, order_id) = *ctx;
                async move {
                    let Some(gone) = store
                        .pending_charges()
                        .find_one_and_delete(doc! {"_id": order_id})
                        .session(&mut *session)
                        .await?
                        .map(from_document::<PendingCharge>)
                        .transpose()?
                    else {
                        return Ok(Ok::<bool, StoreError>(false));
                    };
                    if let Some(code) = gone.coupon_code {
                        store.release_in(session, &code).await?;
                    }
                    Ok(Ok::<bool, StoreError>(true))
                }
                .boxed()
            })
            .await?
    }

    async fn pending_charge(&self, order_id: &str) -> Result<Option<PendingCharge>, StoreError> {
        Ok(self
            .pending_charges()
            .find_one(doc! {"_id": order_id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn pending_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCharge>, StoreError> {
        let docs: Vec<Document> = self
            .pending_charges()
            .find(doc! {"startedAt": {"$lt": to_db(&before)}})
            .sort(doc! {"startedAt": 1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        Ok(docs
            .into_iter()
            .map(from_document)
            .collect::<Result<_, _>>()?)
    }

    async fn end_charge(&self, order_id: &str) -> Result<(), StoreError> {
        self.pending_charges()
            .delete_one(doc! {"_id": order_id})
            .await?;
        Ok(())
    }

    async fn release_coupon(&self, code: &str) -> Result<(), StoreError> {
        let (filter, update) = release_filter(code);
        self.coupons().update_one(filter, update).await?;
        Ok(())
    }

    fn ledger(&self) -> Arc<dyn LedgerStore> {
        Arc::new(self.clone())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[async_trait]
impl LedgerStore for MongoPaymentStore {
    async fn payout_account(&self, seller_id: &str) -> Result<Option<PayoutAccount>, StoreError> {
        Ok(self
            .payout_accounts()
            .find_one(doc! {"_id": seller_id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn add_payout_account(&self, a: &PayoutAccount) -> Result<PayoutAccount, StoreError> {
        match self.payout_accounts().insert_one(to_document(a)?).await {
            Ok(_) => {}
            // The seller has one already: the first is kept.
            Err(e) if is_duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.payout_account(&a.seller_id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("payout account not stored")))
    }

    async fn set_onboarded(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        let found = self
            .payout_accounts()
            .find_one_and_update(
                doc! {"accountId": account_id},
                doc! {"$set": {"onboarded": true}},
            )
            .await?;
        Ok(found.and_then(|d| d.get_str("_id").ok().map(str::to_owned)))
    }

    async fn claim_held(&self, seller_id: &str, key: &str) -> Result<u64, StoreError> {
        let res = self
            .payments()
            .update_many(
                doc! {"sellerId": seller_id, "payout": Payout::Held.as_str(), "refundedAt": Bson::Null},
                doc! {"$set": {"payout": Payout::Transferred.as_str(), "transferKey": key}},
            )
            .await?;
        Ok(res.modified_count)
    }

    async fn unsent_transfers(
        &self,
        seller_id: &str,
    ) -> Result<Vec<(String, Vec<PaymentRow>)>, StoreError> {
        let rows = self
            .payments_where(
                doc! {
                    "sellerId": seller_id,
                    "payout": Payout::Transferred.as_str(),
                    "transferId": Bson::Null,
                    "transferKey": {"$type": "string"},
                },
                doc! {"transferKey": 1, "_id": 1},
                i64::MAX,
            )
            .await?;
        Ok(group_by_transfer(rows))
    }

    async fn set_transfer_id(&self, key: &str, transfer_id: &str) -> Result<(), StoreError> {
        self.payments()
            .update_many(
                doc! {"transferKey": key},
                doc! {"$set": {"transferId": transfer_id}},
            )
            .await?;
        Ok(())
    }

    async fn payout_sellers(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        let due = self
            .payments_where(
                doc! {"sellerId": {"$type": "string"}, "$or": [
                    {"payout": Payout::Held.as_str(), "refundedAt": Bson::Null},
                    {"payout": Payout::Transferred.as_str(), "transferId": Bson::Null},
                ]},
                doc! {"_id": 1},
                10_000,
            )
            .await?;
        let mut sellers: Vec<String> = due.into_iter().filter_map(|p| p.seller_id).collect();
        sellers.sort();
        sellers.dedup();
        let mut onboarded = Vec::new();
        for seller in sellers {
            if onboarded.len() >= limit as usize {
                break;
            }
            if self
                .payout_account(&seller)
                .await?
                .is_some_and(|a| a.onboarded)
            {
                onboarded.push(seller);
            }
        }
        Ok(onboarded)
    }

    async fn reversals_due(&self, limit: u32) -> Result<Vec<PaymentRow>, StoreError> {
        self.payments_where(
            doc! {
                "payout": Payout::Transferred.as_str(),
                "transferId": {"$type": "string"},
                "refundedAt": {"$type": "string"},
            },
            doc! {"_id": 1},
            i64::from(limit),
        )
        .await
    }

    async fn set_reversed(&self, order_id: &str) -> Result<(), StoreError> {
        self.payments()
            .update_one(
                doc! {"orderId": order_id, "payout": Payout::Transferred.as_str()},
                doc! {"$set": {"payout": Payout::Reversed.as_str()}},
            )
            .await?;
        Ok(())
    }

    async fn payout_totals(&self, seller_id: &str) -> Result<PayoutTotals, StoreError> {
        let rows = self
            .payments_where(
                doc! {"sellerId": seller_id, "refundedAt": Bson::Null},
                doc! {"_id": 1},
                i64::MAX,
            )
            .await?;
        Ok(totals_of(&rows))
    }
}

/// Sums a seller's unrefunded payments by where their earnings stand.
fn totals_of(rows: &[PaymentRow]) -> PayoutTotals {
    rows.iter()
        .fold(PayoutTotals::default(), |mut t, p| match p.payout {
            Payout::Held => {
                t.held_cents += p.earned_cents();
                t
            }
            Payout::Direct | Payout::Transferred => {
                t.paid_out_cents += p.earned_cents();
                t
            }
            Payout::Reversed => t,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::events::OrderStatus;
    use ms_common::time::from_db;

    fn at(s: &str) -> DateTime<Utc> {
        from_db(s).unwrap()
    }

    // Each test builds the document the hand-written mapper wrote (the expected layout),
    // checks the serde mapping writes exactly that and reads it back into the same row.

    #[test]
    fn order_document() {
        let o = OrderReplica {
            id: "o1".into(),
            stuff_id: "s1".into(),
            user_id: "u2".into(),
            status: OrderStatus::Created,
            expires_at: at("2026-11-23T20:15:00Z"),
            price_cents: 1999,
            seller_id: None,
            version: 1,
        };
        // `order_doc`, which the `$set` of later versions used as is ...
        let set = doc! {
            "stuffId": &o.stuff_id,
            "userId": &o.user_id,
            "status": o.status.as_str(),
            "expiresAt": to_db(&o.expires_at),
            "priceCents": o.price_cents,
            "sellerId": Bson::Null,
            "version": db_version(o.version),
        };
        // ... and the insert of version 1 with the `_id` added.
        let mut old = set.clone();
        old.insert("_id", &o.id);
        assert_eq!(without_id(&o).unwrap(), set);
        assert_eq!(to_document(&o).unwrap(), old);
        assert_eq!(from_document::<OrderReplica>(old).unwrap(), o);
    }

    #[test]
    fn payment_document() {
        for coupon_code in [None, Some("SAVE10".to_owned())] {
            let p = PaymentRow {
                id: "p1".into(),
                order_id: "o1".into(),
                user_id: "u2".into(),
                amount_cents: 1799,
                coupon_code,
                provider_id: "pi_123".into(),
                created_at: at("2026-11-23T20:05:00.123456Z"),
                refunded_at: None,
                currency: String::new(),
                fee_cents: 0,
                seller_id: None,
                payout: Payout::Held,
                transfer_key: None,
                transfer_id: None,
            };
            let old = doc! {
                "_id": &p.id,
                "orderId": &p.order_id,
                "userId": &p.user_id,
                "amountCents": p.amount_cents,
                "couponCode": p.coupon_code.as_deref(),
                "providerId": &p.provider_id,
                "createdAt": to_db(&p.created_at),
            };
            // Documents written before refunds have no `refundedAt`: read as not refunded;
            // before the ledger, no fee, seller or payout: read as held, nobody's.
            assert_eq!(from_document::<PaymentRow>(old.clone()).unwrap(), p);
            let mut now = old;
            now.insert("refundedAt", Bson::Null);
            now.insert("currency", "");
            now.insert("feeCents", 0_i64);
            now.insert("sellerId", Bson::Null);
            now.insert("payout", "held");
            now.insert("transferKey", Bson::Null);
            now.insert("transferId", Bson::Null);
            assert_eq!(to_document(&p).unwrap(), now);
            let refunded = PaymentRow {
                refunded_at: Some(at("2026-11-24T08:00:00Z")),
                ..p.clone()
            };
            let mut doc = to_document(&refunded).unwrap();
            assert_eq!(
                doc.get_str("refundedAt").ok(),
                Some(to_db(&at("2026-11-24T08:00:00Z")).as_str())
            );
            doc.remove("_id");
            doc.insert("_id", &p.id);
            assert_eq!(from_document::<PaymentRow>(doc).unwrap(), refunded);
        }
    }

    #[test]
    fn coupon_document() {
        let limited = CouponRow {
            code: "SAVE10".into(),
            percent_off: 10,
            max_redemptions: Some(3),
            redemptions: 1,
            expires_at: Some(at("2027-01-01T00:00:00Z")),
            created_by: "admin1".into(),
            created_at: at("2026-11-23T20:00:00.5Z"),
        };
        let open = CouponRow {
            max_redemptions: None,
            expires_at: None,
            ..limited.clone()
        };
        for c in [limited, open] {
            let old = doc! {
                "_id": &c.code,
                "percentOff": c.percent_off,
                "maxRedemptions": c.max_redemptions,
                "redemptions": c.redemptions,
                "expiresAt": c.expires_at.as_ref().map(to_db),
                "createdBy": &c.created_by,
                "createdAt": to_db(&c.created_at),
            };
            assert_eq!(to_document(&c).unwrap(), old);
            assert_eq!(from_document::<CouponRow>(old).unwrap(), c);
        }
    }

    #[test]
    fn coupon_reads_missing_limits_and_int32_counts() {
        let d = doc! {
            "_id": "FREE",
            "percentOff": 100_i32,
            "redemptions": 0_i32,
            "createdBy": "admin1",
            "createdAt": "2026-11-23T20:00:00.000000Z",
        };
        let c: CouponRow = from_document(d).unwrap();
        assert_eq!((c.max_redemptions, c.expires_at), (None, None));
        assert_eq!((c.percent_off, c.redemptions), (100, 0));
    }

    #[test]
    fn failure_document() {
        let f = FailureRow {
            order_id: "o1".into(),
            user_id: "u2".into(),
            reason: "card_declined".into(),
            created_at: at("2026-11-23T20:06:00Z"),
        };
        // The `$setOnInsert` of `record_failure`, upserted under `_id` = order id.
        let set = doc! {
            "userId": &f.user_id,
            "reason": &f.reason,
            "createdAt": to_db(&f.created_at),
        };
        assert_eq!(without_id(&f).unwrap(), set);
        let mut stored = set;
        stored.insert("_id", &f.order_id);
        assert_eq!(from_document::<FailureRow>(stored).unwrap(), f);
    }
}
