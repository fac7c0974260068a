//! One conformance suite for every `OrderStore` backend: SQLite in memory and in a file
//! always, MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ms_common::events::{OrderRecord, OrderStatus, StuffStatus, VersionCheck};
use ms_order::store::{CreateError, OrderStore, StuffReplica};
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
            Some(375),
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
}

#[tokio::test]
async fn sqlite_in_memory() {
    conformance(Arc::new(
        ms_order::store::sqlite::SqliteOrderStore::open(None)
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("stuffmart-order-{}", uuid::Uuid::new_v4()));
    conformance(Arc::new(
        ms_order::store::sqlite::SqliteOrderStore::open(Some(&dir.join("order.db")))
            .await
            .unwrap(),
    ))
    .await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongodb_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB order store conformance skipped");
        return;
    };
    let db = format!("stuffmart_order_{}", uuid::Uuid::new_v4().simple());
    conformance(Arc::new(
        ms_order::store::mongo::MongoOrderStore::open(&url, &db)
            .await
            .unwrap(),
    ))
    .await;
    ms_common::storage::mongo::connect(&url, &db)
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
}
