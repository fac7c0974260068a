//! One conformance suite for every `PaymentStore` backend: SQLite in memory and in a file
//! always, MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use ms_common::events::{
    Event, EventEnvelope, OrderStatus, PaymentFailure, PaymentRecord, VersionCheck,
};
use ms_payment::store::{
    CouponRow, FailureRow, OrderReplica, PaymentRow, PaymentStore, Payout, PayoutAccount,
    PayoutTotals, PendingCharge, Redemption, StoreError,
};
use std::sync::Arc;

fn order(id: &str, version: u64, status: OrderStatus) -> OrderReplica {
    OrderReplica {
        id: id.into(),
        stuff_id: "stuff-1".into(),
        user_id: "user-1".into(),
        status,
        expires_at: ms_common::time::now() + Duration::minutes(15),
        price_cents: 1234,
        seller_id: Some("seller-1".into()),
        version,
    }
}

fn payment(order_id: &str, coupon: Option<&str>) -> (PaymentRow, EventEnvelope) {
    let p = PaymentRow {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: order_id.into(),
        user_id: "user-1".into(),
        amount_cents: 864,
        coupon_code: coupon.map(str::to_owned),
        provider_id: format!("pi_{order_id}"),
        created_at: ms_common::time::now(),
        refunded_at: None,
        currency: "eur".into(),
        fee_cents: 86,
        seller_id: Some("seller-1".into()),
        payout: Payout::Held,
        transfer_key: None,
        transfer_id: None,
    };
    let ev = EventEnvelope::new(Event::PaymentCreated(PaymentRecord::from(&p)), None);
    (p, ev)
}

fn failure(order_id: &str, reason: &str) -> (FailureRow, EventEnvelope) {
    let f = FailureRow {
        order_id: order_id.into(),
        user_id: "user-1".into(),
        reason: reason.into(),
        created_at: ms_common::time::now(),
    };
    let ev = EventEnvelope::new(
        Event::PaymentFailed(PaymentFailure {
            order_id: order_id.into(),
            user_id: "user-1".into(),
            reason: reason.into(),
        }),
        None,
    );
    (f, ev)
}

fn coupon(code: &str, max: Option<i64>, expires_in: Option<Duration>) -> CouponRow {
    CouponRow {
        code: code.into(),
        percent_off: 25,
        max_redemptions: max,
        redemptions: 0,
        expires_at: expires_in.map(|d| ms_common::time::now() + d),
        created_by: "admin-1".into(),
        created_at: ms_common::time::now(),
    }
}

async fn conformance(store: Arc<dyn PaymentStore>) {
    orders(store.as_ref()).await;
    payments(store.clone()).await;
    coupons(store.clone()).await;
    charges_carry_redemptions(store.clone()).await;
    ledger(store.clone()).await;
}

async fn orders(store: &dyn PaymentStore) {
    // Any newer version applies (events carry the full order); older ones are stale.
    assert!(store.order("o1").await.unwrap().is_none());
    let v1 = order("o1", 1, OrderStatus::Created);
    assert_eq!(store.apply_order(&v1).await.unwrap(), VersionCheck::Apply);
    assert_eq!(store.order("o1").await.unwrap().unwrap(), v1, "round trip");
    assert_eq!(store.apply_order(&v1).await.unwrap(), VersionCheck::Stale);
    // v2 never arrives (dead-lettered): v3 heals the gap instead of waiting for it.
    let v2 = order("o1", 2, OrderStatus::Cancelled);
    let v3 = order("o1", 3, OrderStatus::Complete);
    assert_eq!(store.apply_order(&v3).await.unwrap(), VersionCheck::Apply);
    assert_eq!(store.order("o1").await.unwrap().unwrap(), v3);
    assert_eq!(store.apply_order(&v2).await.unwrap(), VersionCheck::Stale);
    assert_eq!(store.apply_order(&v1).await.unwrap(), VersionCheck::Stale);
    assert_eq!(store.apply_order(&v3).await.unwrap(), VersionCheck::Stale);
    let held = store.order("o1").await.unwrap().unwrap();
    assert_eq!((held.status, held.version), (OrderStatus::Complete, 3));
    // A replica that starts at a later version (its first events were lost) starts there.
    let late = order("o2", 2, OrderStatus::Cancelled);
    assert_eq!(store.apply_order(&late).await.unwrap(), VersionCheck::Apply);
    assert_eq!(store.order("o2").await.unwrap().unwrap(), late);
    let v4 = order("o1", 4, OrderStatus::Refunded);
    assert_eq!(store.apply_order(&v4).await.unwrap(), VersionCheck::Apply);
    assert_eq!(
        store.order("o1").await.unwrap().unwrap(),
        v4,
        "refunded kept"
    );
}

async fn payments(store: Arc<dyn PaymentStore>) {
    let outbox = store.outbox();
    let before = outbox.unsent_count().await.unwrap();
    assert!(store.payment_for_order("o2").await.unwrap().is_none());
    let (p, ev) = payment("o2", Some("SAVE25"));
    store.record_payment(&p, &ev).await.unwrap();
    assert_eq!(store.payment_for_order("o2").await.unwrap().unwrap(), p);
    let (dup, dup_ev) = payment("o2", None);
    assert!(matches!(
        store.record_payment(&dup, &dup_ev).await,
        Err(StoreError::AlreadyPaid)
    ));
    assert_eq!(
        outbox.unsent_count().await.unwrap(),
        before + 1,
        "only the stored payment has an event"
    );

    // Racing payments for one order: the database lets exactly one in.
    let tries = (0..8).map(|_| {
        let store = store.clone();
        async move {
            let (p, ev) = payment("o-race", None);
            store.record_payment(&p, &ev).await
        }
    });
    let results = futures_util::future::join_all(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::AlreadyPaid)))
    );
    assert_eq!(outbox.unsent_count().await.unwrap(), before + 2);

    // Declines: the first of an order is kept with its event; a second writes nothing.
    assert!(store.failure_for_order("o3").await.unwrap().is_none());
    let (f, fev) = failure("o3", "generic_decline");
    store.record_failure(&f, None, &fev).await.unwrap();
    let (f2, fev2) = failure("o3", "insufficient_funds");
    store.record_failure(&f2, None, &fev2).await.unwrap();
    let kept = store.failure_for_order("o3").await.unwrap().unwrap();
    assert_eq!(kept, f, "the first decline is kept");
    let pending = outbox.pending(100).await.unwrap();
    assert_eq!(pending.len() as u64, before + 3);
    assert!(pending.iter().any(|r| r.id == fev.id));
    assert!(!pending.iter().any(|r| r.id == fev2.id));

    // Refunds: `refundedAt` set once, with its event; no payment or a refunded one
    // writes nothing.
    let at = ms_common::time::now();
    let refunded_event = |row: &PaymentRow| {
        EventEnvelope::new(
            Event::PaymentRefunded(PaymentRecord::from(&PaymentRow {
                refunded_at: Some(at),
                ..row.clone()
            })),
            None,
        )
    };
    let rev = refunded_event(&p);
    assert!(
        store
            .record_refund("no-such-order", at, &rev)
            .await
            .unwrap()
            .is_none()
    );
    let stored = store.record_refund("o2", at, &rev).await.unwrap().unwrap();
    assert_eq!(
        stored,
        PaymentRow {
            refunded_at: Some(at),
            ..p.clone()
        }
    );
    assert_eq!(
        store.payment_for_order("o2").await.unwrap().unwrap(),
        stored
    );
    let later = at + Duration::seconds(5);
    assert!(
        store
            .record_refund("o2", later, &refunded_event(&p))
            .await
            .unwrap()
            .is_none(),
        "refunded twice"
    );
    assert_eq!(
        store
            .payment_for_order("o2")
            .await
            .unwrap()
            .unwrap()
            .refunded_at,
        Some(at)
    );
    let pending = outbox.pending(100).await.unwrap();
    assert_eq!(pending.len() as u64, before + 4);
    assert_eq!(
        pending
            .iter()
            .filter(|r| r.routing_key == "payment.refunded")
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        vec![rev.id.as_str()]
    );

    // Stripe's events find a payment by its PaymentIntent, and are noted once handled.
    let by_intent = store.payment_by_provider("pi_o2").await.unwrap().unwrap();
    assert_eq!(by_intent.order_id, "o2");
    assert!(
        store
            .payment_by_provider("pi_none")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.webhook_handled("evt_1").await.unwrap());
    store
        .record_webhook("evt_1", "charge.refunded", at)
        .await
        .unwrap();
    store
        .record_webhook("evt_1", "charge.refunded", later)
        .await
        .unwrap();
    assert!(store.webhook_handled("evt_1").await.unwrap());
    assert!(!store.webhook_handled("evt_2").await.unwrap());

    // Pending charges: one per order (a retry replaces it), listed oldest first by age.
    let pending = |order: &str, secs: i64| PendingCharge {
        order_id: order.into(),
        user_id: "user-1".into(),
        amount_cents: 500,
        coupon_code: Some("HALF".into()),
        started_at: at - Duration::seconds(secs),
        intent_key: None,
        intent_id: None,
        fee_cents: 50,
        destination: None,
    };
    store.begin_charge(&pending("p1", 100)).await.unwrap();
    store.begin_charge(&pending("p2", 300)).await.unwrap();
    store.begin_charge(&pending("p1", 200)).await.unwrap();
    assert_eq!(
        store.pending_charge("p1").await.unwrap(),
        Some(pending("p1", 200))
    );
    let old = store
        .pending_charges(at - Duration::seconds(150), 10)
        .await
        .unwrap();
    assert_eq!(old, vec![pending("p2", 300), pending("p1", 200)]);
    assert_eq!(store.pending_charges(at, 1).await.unwrap().len(), 1);
    store.end_charge("p1").await.unwrap();
    store.end_charge("p1").await.unwrap();
    assert!(store.pending_charge("p1").await.unwrap().is_none());
    assert_eq!(store.pending_charges(at, 10).await.unwrap().len(), 1);

    // An intent's charge: its id is noted only under the key it was opened with.
    let mut intent = pending("p3", 10);
    intent.intent_key = Some("key-1".into());
    store.begin_charge(&intent).await.unwrap();
    store
        .set_charge_intent("p3", "key-0", "pi_old")
        .await
        .unwrap();
    assert_eq!(
        store.pending_charge("p3").await.unwrap(),
        Some(intent.clone())
    );
    store
        .set_charge_intent("p3", "key-1", "pi_1")
        .await
        .unwrap();
    let stored = store.pending_charge("p3").await.unwrap().unwrap();
    assert_eq!(
        (stored.intent_key.as_deref(), stored.intent_id.as_deref()),
        (Some("key-1"), Some("pi_1"))
    );
    assert!(stored.is_intent());
}

/// A pending charge carries its coupon's redemption: replacing it with another coupon
/// gives the earlier one back, with the same coupon keeps it; abandoning it gives it
/// back once.
/// The ledger: accounts (the first kept), earnings held until onboarding, claimed once for
/// a transfer, unsent claims listed until their transfer id is set, reversals of refunded
/// transferred earnings, totals excluding refunds.
async fn ledger(store: Arc<dyn PaymentStore>) {
    let ledger = store.ledger();
    let seller = format!("seller-{}", uuid::Uuid::now_v7().simple());
    let sale = async |cents: i64, fee: i64| {
        let order_id = format!("ledger-{}", uuid::Uuid::now_v7().simple());
        let (p, ev) = payment(&order_id, None);
        let p = PaymentRow {
            amount_cents: cents,
            fee_cents: fee,
            seller_id: Some(seller.clone()),
            ..p
        };
        store.record_payment(&p, &ev).await.unwrap();
        p
    };
    let a = sale(1000, 100).await;
    let b = sale(500, 50).await;
    assert_eq!(
        ledger.payout_totals(&seller).await.unwrap(),
        PayoutTotals {
            held_cents: 1350,
            paid_out_cents: 0
        }
    );
    // Nobody onboarded: no payout work.
    assert!(ledger.payout_sellers(10).await.unwrap().is_empty());

    let account = PayoutAccount {
        seller_id: seller.clone(),
        account_id: format!("acct_{seller}"),
        onboarded: false,
        created_at: ms_common::time::now(),
    };
    assert_eq!(ledger.add_payout_account(&account).await.unwrap(), account);
    let second = PayoutAccount {
        account_id: "acct_other".into(),
        ..account.clone()
    };
    assert_eq!(
        ledger.add_payout_account(&second).await.unwrap(),
        account,
        "the first account is kept"
    );
    assert_eq!(ledger.set_onboarded("acct_nobody").await.unwrap(), None);
    assert_eq!(
        ledger.set_onboarded(&account.account_id).await.unwrap(),
        Some(seller.clone())
    );
    assert!(
        ledger
            .payout_account(&seller)
            .await
            .unwrap()
            .unwrap()
            .onboarded
    );
    assert_eq!(
        ledger.payout_sellers(10).await.unwrap(),
        vec![seller.clone()]
    );

    // One claim takes both; a second claims nothing.
    assert_eq!(ledger.claim_held(&seller, "k1").await.unwrap(), 2);
    assert_eq!(ledger.claim_held(&seller, "k2").await.unwrap(), 0);
    let unsent = ledger.unsent_transfers(&seller).await.unwrap();
    assert_eq!(unsent.len(), 1);
    assert_eq!(unsent[0].0, "k1");
    let mut ids: Vec<_> = unsent[0].1.iter().map(|p| p.order_id.clone()).collect();
    ids.sort();
    let mut want = vec![a.order_id.clone(), b.order_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    // Claimed but unsent is still payout work; sent is not.
    assert_eq!(
        ledger.payout_sellers(10).await.unwrap(),
        vec![seller.clone()]
    );
    ledger.set_transfer_id("k1", "tr_1").await.unwrap();
    assert!(ledger.unsent_transfers(&seller).await.unwrap().is_empty());
    assert!(ledger.payout_sellers(10).await.unwrap().is_empty());
    assert_eq!(
        ledger.payout_totals(&seller).await.unwrap(),
        PayoutTotals {
            held_cents: 0,
            paid_out_cents: 1350
        }
    );

    // A refund of a transferred sale is due for reversal until marked reversed.
    let refund = EventEnvelope::new(Event::PaymentRefunded(PaymentRecord::from(&a)), None);
    store
        .record_refund(&a.order_id, ms_common::time::now(), &refund)
        .await
        .unwrap()
        .unwrap();
    let due: Vec<_> = ledger
        .reversals_due(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.seller_id.as_deref() == Some(seller.as_str()))
        .collect();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].order_id.as_str(), due[0].payout),
        (a.order_id.as_str(), Payout::Transferred)
    );
    ledger.set_reversed(&a.order_id).await.unwrap();
    assert!(
        ledger
            .reversals_due(100)
            .await
            .unwrap()
            .iter()
            .all(|p| p.order_id != a.order_id)
    );
    assert_eq!(
        ledger.payout_totals(&seller).await.unwrap(),
        PayoutTotals {
            held_cents: 0,
            paid_out_cents: 450
        }
    );
    // A later sale to an onboarded seller paid directly counts as paid out at once.
    let c = sale(300, 30).await;
    let direct = PaymentRow {
        order_id: format!("{}-d", c.order_id),
        id: uuid::Uuid::now_v7().to_string(),
        provider_id: format!("pi_{}-d", c.order_id),
        payout: Payout::Direct,
        ..c
    };
    let ev = EventEnvelope::new(Event::PaymentCreated(PaymentRecord::from(&direct)), None);
    store.record_payment(&direct, &ev).await.unwrap();
    assert_eq!(
        ledger.payout_totals(&seller).await.unwrap(),
        PayoutTotals {
            held_cents: 270,
            paid_out_cents: 450 + 270
        }
    );
}

async fn charges_carry_redemptions(store: Arc<dyn PaymentStore>) {
    let now = Utc::now();
    for code in ["CARRY1", "CARRY2"] {
        store
            .create_coupon(&coupon(code, None, None))
            .await
            .unwrap();
    }
    let redemptions = async |code: &str| store.coupon(code).await.unwrap().unwrap().redemptions;
    let charge = |code: &str| PendingCharge {
        order_id: "carry".into(),
        user_id: "user-1".into(),
        amount_cents: 500,
        coupon_code: Some(code.into()),
        started_at: now,
        intent_key: Some(format!("key-{code}")),
        intent_id: None,
        fee_cents: 50,
        destination: Some("acct_1".into()),
    };
    store.redeem_coupon("CARRY1", now).await.unwrap();
    store.begin_charge(&charge("CARRY1")).await.unwrap();
    // The same coupon again: the redemption carries over.
    store.begin_charge(&charge("CARRY1")).await.unwrap();
    assert_eq!(redemptions("CARRY1").await, 1);
    // Another coupon (redeemed by the caller): the first goes back.
    store.redeem_coupon("CARRY2", now).await.unwrap();
    store.begin_charge(&charge("CARRY2")).await.unwrap();
    assert_eq!(
        (redemptions("CARRY1").await, redemptions("CARRY2").await),
        (0, 1)
    );
    assert!(store.abandon_charge("carry").await.unwrap());
    assert!(!store.abandon_charge("carry").await.unwrap());
    assert_eq!(redemptions("CARRY2").await, 0);
    assert!(store.pending_charge("carry").await.unwrap().is_none());
}

async fn coupons(store: Arc<dyn PaymentStore>) {
    let now = Utc::now();
    let a = coupon("AAAA", Some(2), None);
    store.create_coupon(&a).await.unwrap();
    assert!(matches!(
        store.create_coupon(&coupon("AAAA", None, None)).await,
        Err(StoreError::CodeTaken)
    ));
    assert_eq!(
        store.coupon("AAAA").await.unwrap().unwrap(),
        a,
        "round trip"
    );
    let mut b = coupon("BBBB", None, Some(Duration::days(1)));
    b.created_at = a.created_at + Duration::seconds(1);
    store.create_coupon(&b).await.unwrap();
    assert_eq!(store.coupon("BBBB").await.unwrap().unwrap(), b);
    let mut old = coupon("OLD", None, Some(Duration::seconds(-1)));
    old.created_at = a.created_at - Duration::seconds(1);
    store.create_coupon(&old).await.unwrap();
    let codes: Vec<String> = store
        .coupons()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    assert_eq!(codes, vec!["BBBB", "AAAA", "OLD"], "newest first");

    // Redemption: bounded, not after expiry, unknown codes refused.
    assert_eq!(
        store.redeem_coupon("NONE", now).await.unwrap(),
        Redemption::Unknown
    );
    assert_eq!(
        store.redeem_coupon("OLD", now).await.unwrap(),
        Redemption::Expired
    );
    match store.redeem_coupon("AAAA", now).await.unwrap() {
        Redemption::Redeemed(c) => assert_eq!((c.redemptions, c.percent_off), (1, 25)),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.redeem_coupon("AAAA", now).await.unwrap(),
        Redemption::Redeemed(_)
    ));
    assert_eq!(
        store.redeem_coupon("AAAA", now).await.unwrap(),
        Redemption::Exhausted
    );
    assert_eq!(store.coupon("AAAA").await.unwrap().unwrap().redemptions, 2);
    // Expiry is judged at the given time.
    assert_eq!(
        store
            .redeem_coupon("BBBB", now + Duration::days(2))
            .await
            .unwrap(),
        Redemption::Expired
    );
    for _ in 0..5 {
        assert!(matches!(
            store.redeem_coupon("BBBB", now).await.unwrap(),
            Redemption::Redeemed(_)
        ));
    }
    assert_eq!(
        store.coupon("BBBB").await.unwrap().unwrap().redemptions,
        5,
        "unlimited"
    );

    // Release gives one back, never below zero.
    store.release_coupon("AAAA").await.unwrap();
    assert_eq!(store.coupon("AAAA").await.unwrap().unwrap().redemptions, 1);
    assert!(matches!(
        store.redeem_coupon("AAAA", now).await.unwrap(),
        Redemption::Redeemed(_)
    ));
    let z = coupon("ZERO", Some(1), None);
    store.create_coupon(&z).await.unwrap();
    store.release_coupon("ZERO").await.unwrap();
    assert_eq!(store.coupon("ZERO").await.unwrap().unwrap().redemptions, 0);
    store.release_coupon("NONE").await.unwrap();
    // A decline releases in the same transaction as its event.
    store.redeem_coupon("ZERO", now).await.unwrap();
    let (f, fev) = failure("o4", "card_declined");
    store.record_failure(&f, Some("ZERO"), &fev).await.unwrap();
    assert_eq!(store.coupon("ZERO").await.unwrap().unwrap().redemptions, 0);
    // Told twice (the decline answer, then the webhook): given back once.
    store.redeem_coupon("ZERO", now).await.unwrap();
    let (f, fev) = failure("o4", "card_declined");
    store.record_failure(&f, Some("ZERO"), &fev).await.unwrap();
    assert_eq!(store.coupon("ZERO").await.unwrap().unwrap().redemptions, 1);

    // The last-redemption race: of 12 concurrent redeemers of 3 left, exactly 3 win.
    store
        .create_coupon(&coupon("RACE", Some(3), None))
        .await
        .unwrap();
    let tries = (0..12).map(|_| {
        let store = store.clone();
        async move { store.redeem_coupon("RACE", Utc::now()).await.unwrap() }
    });
    let results = futures_util::future::join_all(tries).await;
    let won = results
        .iter()
        .filter(|r| matches!(r, Redemption::Redeemed(_)))
        .count();
    assert_eq!(won, 3, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Redemption::Redeemed(_) | Redemption::Exhausted))
    );
    assert_eq!(store.coupon("RACE").await.unwrap().unwrap().redemptions, 3);
}

#[tokio::test]
async fn sqlite_in_memory() {
    conformance(Arc::new(
        ms_payment::store::sqlite::SqlitePaymentStore::open(None)
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("stuffmart-payment-{}", uuid::Uuid::new_v4()));
    let path = dir.join("payment.db");
    conformance(Arc::new(
        ms_payment::store::sqlite::SqlitePaymentStore::open(Some(&path))
            .await
            .unwrap(),
    ))
    .await;
    // Reopening keeps the data and does not re-run migrations.
    let again = ms_payment::store::sqlite::SqlitePaymentStore::open(Some(&path))
        .await
        .unwrap();
    assert!(again.payment_for_order("o2").await.unwrap().is_some());
    // Five from `coupons`, two from `charges_carry_redemptions`.
    assert_eq!(again.coupons().await.unwrap().len(), 7);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongodb_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB payment store conformance skipped");
        return;
    };
    let db = format!("stuffmart_payment_{}", uuid::Uuid::new_v4().simple());
    let store = ms_payment::store::mongo::MongoPaymentStore::open(&url, &db)
        .await
        .unwrap();
    conformance(Arc::new(store)).await;
    ms_common::storage::mongo::connect(&url, &db)
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
}
