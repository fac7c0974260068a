//! One conformance suite for every `OrderStore` backend: SQLite in memory and in a file
//! always, MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, ReviewRecord, Role, StuffStatus, UserRecord,
    VersionCheck,
};
use ms_order::store::{CreateError, OrderStore, Paid, ReviewError, StuffReplica};
use std::sync::Arc;

fn order(stuff: &str, user: &str) -> OrderRecord {
    let now = ms_common::time::now();
    OrderRecord {
        id: uuid::Uuid::now_v7().to_string(),
        stuff_id: stuff.into(),
        user_id: user.into(),
        status: OrderStatus::Created,
        expires_at: now + chrono::Duration::minutes(15),
        price_cents: 500,
        stuff_title: format!("Notes for {stuff}"),
        paid_cents: None,
        reviewed: false,
        stuff_version: Some(1),
        seller_id: None,
        version: 1,
        created_at: now,
    }
}

fn replica(version: u64, status: StuffStatus) -> StuffReplica {
    StuffReplica {
        id: "s1".into(),
        seller_id: "seller".into(),
        title: format!("Notes v{version}"),
        price_cents: 500,
        status,
        version,
        deliverable: version % 2 == 1,
    }
}

async fn cancel(store: &dyn OrderStore, id: &str) {
    store
        .transition(id, OrderStatus::Created, OrderStatus::Cancelled, None, None)
        .await
        .unwrap()
        .unwrap();
}

/// Whether a late payment completes the cancelled order `id`.
async fn completes(store: &dyn OrderStore, id: &str) -> bool {
    store
        .transition(
            id,
            OrderStatus::Cancelled,
            OrderStatus::Complete,
            None,
            None,
        )
        .await
        .unwrap()
        .is_some()
}

async fn conformance(store: Arc<dyn OrderStore>) {
    // Stuff replica: any newer version applies (the event is the full record), so a
    // missing version heals; older and equal ones are stale.
    assert_eq!(
        store
            .apply_stuff(&replica(1, StuffStatus::Available))
            .await
            .unwrap(),
        VersionCheck::Apply
    );
    assert_eq!(
        store
            .apply_stuff(&replica(1, StuffStatus::Available))
            .await
            .unwrap(),
        VersionCheck::Stale
    );
    // v2 was lost: v3 applies over the gap.
    assert_eq!(
        store
            .apply_stuff(&replica(3, StuffStatus::Reserved))
            .await
            .unwrap(),
        VersionCheck::Apply
    );
    assert_eq!(
        store
            .apply_stuff(&replica(2, StuffStatus::Available))
            .await
            .unwrap(),
        VersionCheck::Stale
    );
    assert_eq!(
        store.stuff("s1").await.unwrap().unwrap(),
        replica(3, StuffStatus::Reserved)
    );

    // One active order per stuff, decided by the database, even under a race.
    let tries = (0..10).map(|i| {
        let store = store.clone();
        async move {
            store
                .create_order(&order("race", &format!("u{i}")), None)
                .await
        }
    });
    let results = futures_util::future::join_all(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, CreateError::Held))
    );
    assert_eq!(store.active_count("race").await.unwrap(), 1);
    assert_eq!(
        store.outbox().unsent_count().await.unwrap(),
        1,
        "one event for the one order"
    );

    // Transitions are compare-and-set on status, bump the version, and write an event.
    let a = order("s2", "alice");
    store.create_order(&a, None).await.unwrap();
    assert_eq!(store.order(&a.id).await.unwrap().unwrap(), a);
    assert!(
        store
            .transition(
                &a.id,
                OrderStatus::Complete,
                OrderStatus::Cancelled,
                None,
                None
            )
            .await
            .unwrap()
            .is_none()
    );
    let c = store
        .transition(
            &a.id,
            OrderStatus::Created,
            OrderStatus::Cancelled,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.status, c.version), (OrderStatus::Cancelled, 2));
    assert!(
        store
            .transition(
                &a.id,
                OrderStatus::Created,
                OrderStatus::Cancelled,
                None,
                None
            )
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.outbox().unsent_count().await.unwrap(), 3);

    // After a cancel the stuff can be ordered again; once complete it is sold.
    let b = order("s2", "bob");
    store.create_order(&b, None).await.unwrap();
    assert!(store.stuff_taken("s2", &a.id).await.unwrap());
    // The payment that completes an order is recorded with it; a later move keeps it.
    let paid = store
        .transition(
            &b.id,
            OrderStatus::Created,
            OrderStatus::Complete,
            Some(Paid {
                cents: 375,
                fee_cents: 38,
            }),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (paid.paid_cents, paid.stuff_title.as_str(), paid.price_cents),
        (Some(375), "Notes for s2", 500)
    );
    assert_eq!(store.order(&b.id).await.unwrap().unwrap(), paid);
    assert!(matches!(
        store.create_order(&order("s2", "carol"), None).await,
        Err(CreateError::Sold)
    ));

    // One taker per stuff: a late payment cannot complete a cancelled order while another
    // order holds the stuff, nor once another order bought it.
    let late = order("s4", "dave");
    store.create_order(&late, None).await.unwrap();
    cancel(&*store, &late.id).await;
    let holder = order("s4", "erin");
    store.create_order(&holder, None).await.unwrap();
    assert!(
        !completes(&*store, &late.id).await,
        "a cancelled order completed while another held the stuff"
    );
    store
        .transition(
            &holder.id,
            OrderStatus::Created,
            OrderStatus::Complete,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !completes(&*store, &late.id).await,
        "a cancelled order completed after the stuff sold"
    );

    // The race itself: a late completion against a new order, many times; exactly one of
    // the two takes the stuff each time.
    for round in 0..20 {
        let stuff = format!("race-{round}");
        let late = order(&stuff, "dave");
        store.create_order(&late, None).await.unwrap();
        cancel(&*store, &late.id).await;
        let newer = order(&stuff, "erin");
        let (completed, created) = tokio::join!(
            {
                let store = store.clone();
                let id = late.id.clone();
                async move {
                    store
                        .transition(
                            &id,
                            OrderStatus::Cancelled,
                            OrderStatus::Complete,
                            None,
                            None,
                        )
                        .await
                }
            },
            {
                let store = store.clone();
                let newer = newer.clone();
                async move { store.create_order(&newer, None).await }
            }
        );
        let completed = completed.unwrap().is_some();
        let created = match created {
            Ok(()) => true,
            Err(CreateError::Held | CreateError::Sold) => false,
            Err(CreateError::Other(e)) => panic!("{e:#}"),
        };
        assert!(
            completed ^ created,
            "round {round}: completed {completed}, created {created}"
        );
    }

    // Refunds: the late payment's cancelled order becomes refunded while the stuff stays
    // sold to the other order; refunding the buyer frees the stuff for a new order.
    let refunded = store
        .transition(
            &late.id,
            OrderStatus::Cancelled,
            OrderStatus::Refunded,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (refunded.status, refunded.version),
        (OrderStatus::Refunded, 3)
    );
    assert_eq!(
        store.order(&late.id).await.unwrap().unwrap().status,
        OrderStatus::Refunded
    );
    assert!(store.stuff_taken("s4", &late.id).await.unwrap());
    let unsent = store.outbox().unsent_count().await.unwrap();
    let r = store
        .transition(
            &holder.id,
            OrderStatus::Complete,
            OrderStatus::Refunded,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, OrderStatus::Refunded);
    assert_eq!(
        store.outbox().unsent_count().await.unwrap(),
        unsent + 1,
        "order.refunded written with the change"
    );
    assert!(
        store
            .transition(
                &holder.id,
                OrderStatus::Complete,
                OrderStatus::Refunded,
                None,
                None
            )
            .await
            .unwrap()
            .is_none(),
        "refunded twice"
    );
    assert!(!store.stuff_taken("s4", "nobody").await.unwrap());
    let again = order("s4", "frank");
    store.create_order(&again, None).await.unwrap();

    // The sweeper's query: `created` orders past their hold, longest overdue first.
    let now = ms_common::time::now();
    let overdue = |stuff: &str, ago: i64| OrderRecord {
        expires_at: now - chrono::Duration::seconds(ago),
        ..order(stuff, "sweepy")
    };
    let (o1, o2, o3) = (
        overdue("sweep-1", 30),
        overdue("sweep-2", 60),
        overdue("sweep-3", 10),
    );
    for o in [&o1, &o2, &o3] {
        store.create_order(o, None).await.unwrap();
    }
    assert_eq!(
        store.overdue_holds(now, 10).await.unwrap(),
        vec![o2.id.clone(), o1.id.clone(), o3.id.clone()],
        "only overdue created orders, longest overdue first"
    );
    assert_eq!(
        store
            .overdue_holds(now - chrono::Duration::seconds(20), 10)
            .await
            .unwrap(),
        vec![o2.id.clone(), o1.id.clone()]
    );
    assert_eq!(
        store.overdue_holds(now, 1).await.unwrap(),
        vec![o2.id.clone()]
    );
    cancel(&*store, &o2.id).await;
    assert_eq!(
        store.overdue_holds(now, 10).await.unwrap(),
        vec![o1.id.clone(), o3.id.clone()],
        "a cancelled order is no longer overdue"
    );
    for o in [&o1, &o3] {
        cancel(&*store, &o.id).await;
    }

    // A user's orders, newest first.
    let later = order("s3", "alice");
    store.create_order(&later, None).await.unwrap();
    let ids: Vec<_> = store
        .orders_of("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(ids, vec![later.id, a.id]);
    assert!(store.orders_of("nobody").await.unwrap().is_empty());

    sales(&*store).await;
}

/// The unsent events of `kind`, parsed.
async fn unsent(store: &dyn OrderStore, kind: &str) -> Vec<EventEnvelope> {
    store
        .outbox()
        .pending(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.routing_key == kind)
        .map(|r| serde_json::from_str(&r.payload).unwrap())
        .collect()
}

/// A paid order is its seller's sale: announced with `sale.completed` in the completing
/// transaction, listed newest first with the fee pinned at payment, totalled; a refund
/// takes it back out.
async fn sales(store: &dyn OrderStore) {
    for id in ["sale-a", "sale-b"] {
        let rep = StuffReplica {
            id: id.into(),
            seller_id: "sam".into(),
            ..replica(1, StuffStatus::Available)
        };
        store.apply_stuff(&rep).await.unwrap();
    }
    let bea = UserRecord {
        id: "bea".into(),
        email: "bea@example.com".into(),
        role: Role::User,
        display_name: "Bea".into(),
        version: 1,
    };
    assert!(store.apply_user(&bea).await.unwrap());
    let first = order("sale-a", "bea");
    store.create_order(&first, None).await.unwrap();
    let paid = Paid {
        cents: 1005,
        fee_cents: 101,
    };
    store
        .transition(
            &first.id,
            OrderStatus::Created,
            OrderStatus::Complete,
            Some(paid),
            Some("c9".into()),
        )
        .await
        .unwrap()
        .unwrap();
    let announced = unsent(store, "sale.completed").await;
    let sale = match announced.as_slice() {
        [
            EventEnvelope {
                event: Event::SaleCompleted(sale),
                correlation_id,
                ..
            },
        ] => {
            assert_eq!(correlation_id.as_deref(), Some("c9"));
            sale.clone()
        }
        other => panic!("one sale.completed expected: {other:?}"),
    };
    assert_eq!(
        (
            sale.seller_id.as_str(),
            sale.order_id.as_str(),
            sale.stuff_id.as_str()
        ),
        ("sam", first.id.as_str(), "sale-a")
    );
    assert_eq!(
        (
            sale.buyer_display_name.as_str(),
            sale.paid_cents,
            sale.fee_cents,
            sale.earned_cents
        ),
        ("Bea", 1005, 101, 904)
    );
    // A buyer the replica does not know yet, paid later.
    let second = order("sale-b", "zed");
    store.create_order(&second, None).await.unwrap();
    store
        .transition(
            &second.id,
            OrderStatus::Created,
            OrderStatus::Complete,
            Some(Paid {
                cents: 500,
                fee_cents: 50,
            }),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let page = store.sales_of("sam", 100).await.unwrap();
    let listed: Vec<(&str, &str, i64)> = page
        .sales
        .iter()
        .map(|s| {
            (
                s.order_id.as_str(),
                s.buyer_display_name.as_str(),
                s.earned_cents,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                second.id.as_str(),
                ms_common::contract::UNKNOWN_BUYER_NAME,
                450
            ),
            (first.id.as_str(), "Bea", 904),
        ]
    );
    assert_eq!(page.sales[1], sale, "listed as announced");
    assert_eq!(page.total_earned_cents, 1354);
    let newest = store.sales_of("sam", 1).await.unwrap();
    assert_eq!(
        (newest.sales.len(), newest.total_earned_cents),
        (1, 1354),
        "the total counts every sale"
    );
    // A rename shows in the list; a refund takes the sale (and its earnings) back.
    assert!(
        store
            .apply_user(&UserRecord {
                display_name: "Bea B".into(),
                version: 2,
                ..bea
            })
            .await
            .unwrap()
    );
    store
        .transition(
            &first.id,
            OrderStatus::Complete,
            OrderStatus::Refunded,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let page = store.sales_of("sam", 100).await.unwrap();
    assert_eq!(page.sales.len(), 1);
    assert_eq!(page.total_earned_cents, 450);
    let empty = store.sales_of("nobody", 100).await.unwrap();
    assert_eq!((empty.sales.len(), empty.total_earned_cents), (0, 0));
}

fn review(o: &OrderRecord, rating: i64, at: chrono::DateTime<chrono::Utc>) -> ReviewRecord {
    ReviewRecord {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: o.id.clone(),
        stuff_id: o.stuff_id.clone(),
        user_id: o.user_id.clone(),
        rating,
        comment: format!("{rating} stars"),
        created_at: at,
    }
}

/// The unsent `review.created` events.
async fn reviews_announced(store: &dyn OrderStore) -> Vec<ReviewRecord> {
    store
        .outbox()
        .pending(1000)
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            match serde_json::from_str::<EventEnvelope>(&r.payload)
                .unwrap()
                .event
            {
                Event::ReviewCreated(rv) => Some(rv),
                _ => None,
            }
        })
        .collect()
}

/// A complete order of `buyer` for `stuff`.
async fn paid(store: &dyn OrderStore, stuff: &str, buyer: &str) -> OrderRecord {
    let o = order(stuff, buyer);
    store.create_order(&o, None).await.unwrap();
    store
        .transition(
            &o.id,
            OrderStatus::Created,
            OrderStatus::Complete,
            Some(Paid {
                cents: 450,
                fee_cents: 45,
            }),
            None,
        )
        .await
        .unwrap()
        .unwrap()
}

/// Reviews: once per order (the database decides), only of a complete order, listed newest
/// first with the buyer's name as it is now; the order is marked `reviewed` without a
/// version bump, and `review.created` goes out with the review.
async fn reviews(store: Arc<dyn OrderStore>) {
    let store = &*store;
    let o = paid(store, "rs1", "rita").await;
    let events_before = reviews_announced(store).await.len();
    let first = review(&o, 4, ms_common::time::now());
    let named = store
        .create_review(&first, "rita-from-token", Some("c1".into()))
        .await
        .unwrap();
    assert_eq!(named.review, first);
    // The replica of accounts had no name: the one from the token is recorded.
    assert_eq!(named.buyer_name.as_deref(), Some("rita-from-token"));
    let marked = store.order(&o.id).await.unwrap().unwrap();
    assert!(marked.reviewed);
    assert_eq!(
        marked.version, o.version,
        "reviewing is not a change of the order"
    );
    assert_eq!(
        reviews_announced(store).await[events_before..],
        *std::slice::from_ref(&first)
    );

    // A second review of the same order, even with another id: refused, nothing written.
    let again = review(&o, 1, ms_common::time::now());
    assert!(matches!(
        store.create_review(&again, "rita", None).await,
        Err(ReviewError::AlreadyReviewed)
    ));
    assert_eq!(reviews_announced(store).await.len(), events_before + 1);

    // Only a complete order of the reviewer's.
    let open = order("rs3", "rita");
    store.create_order(&open, None).await.unwrap();
    assert!(matches!(
        store
            .create_review(&review(&open, 5, ms_common::time::now()), "rita", None)
            .await,
        Err(ReviewError::NotComplete)
    ));
    let not_hers = ReviewRecord {
        user_id: "mallory".into(),
        ..review(&o, 5, ms_common::time::now())
    };
    // (The unique index answers first for an order already reviewed.)
    assert!(store.create_review(&not_hers, "m", None).await.is_err());
    let other = paid(store, "rs2", "sam").await;
    let wrong_buyer = ReviewRecord {
        user_id: "mallory".into(),
        ..review(&other, 5, ms_common::time::now())
    };
    assert!(matches!(
        store.create_review(&wrong_buyer, "m", None).await,
        Err(ReviewError::NotComplete)
    ));
    assert!(!store.order(&other.id).await.unwrap().unwrap().reviewed);
    assert!(!store.order(&open.id).await.unwrap().unwrap().reviewed);
    cancel(store, &open.id).await;

    // Newest first, names read now: a rename shows on old reviews. (A stuff sells once;
    // refunded, it can sell again and be reviewed by its next buyer.)
    store
        .transition(
            &o.id,
            OrderStatus::Complete,
            OrderStatus::Refunded,
            None,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let second_buyer = paid(store, "rs1", "tess").await;
    let later = review(
        &second_buyer,
        2,
        ms_common::time::now() + chrono::Duration::seconds(1),
    );
    store.create_review(&later, "tess", None).await.unwrap();
    store
        .apply_user(&UserRecord {
            id: "rita".into(),
            email: "rita@uni.example".into(),
            role: Role::User,
            display_name: "Rita R.".into(),
            version: 2,
        })
        .await
        .unwrap();
    let listed = store.reviews_of("rs1", 200).await.unwrap();
    let seen: Vec<_> = listed
        .iter()
        .map(|r| (r.review.id.as_str(), r.buyer_name.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (later.id.as_str(), Some("tess")),
            (first.id.as_str(), Some("Rita R."))
        ]
    );
    assert_eq!(listed[1].review, first);
    assert_eq!(store.reviews_of("rs1", 1).await.unwrap().len(), 1);
    assert!(store.reviews_of("nothing", 200).await.unwrap().is_empty());
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store: Arc<dyn OrderStore> = Arc::new(
        ms_order::store::sqlite::SqliteOrderStore::open(None)
            .await
            .unwrap(),
    );
    conformance(store.clone()).await;
    reviews(store).await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("stuffmart-order-{}", uuid::Uuid::new_v4()));
    let store: Arc<dyn OrderStore> = Arc::new(
        ms_order::store::sqlite::SqliteOrderStore::open(Some(&dir.join("order.db")))
            .await
            .unwrap(),
    );
    conformance(store.clone()).await;
    reviews(store).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongodb_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB order store conformance skipped");
        return;
    };
    let db = format!("stuffmart_order_{}", uuid::Uuid::new_v4().simple());
    let store: Arc<dyn OrderStore> = Arc::new(
        ms_order::store::mongo::MongoOrderStore::open(&url, &db)
            .await
            .unwrap(),
    );
    conformance(store.clone()).await;
    reviews(store).await;
    ms_common::storage::mongo::connect(&url, &db)
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
}
