//! Order events published straight to the events exchange, as ms-order will: reserve,
//! release, sell; duplicates, a lost version, a reservation priced at an old version;
//! nothing dead-lettered.

use crate::helpers::{App, WAIT, order, record};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use ms_common::events::{Event, OrderRecord, OrderStatus, StuffStatus};
use ms_common::messaging::Service;
use ms_testkit::eventually;

/// The `stuff.updated` events seen so far, as (stuff id, status, version).
async fn updates(app: &App, n: usize) -> Vec<(String, StuffStatus, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = app.next_event().await;
        let (kind, rec) = record(&ev);
        assert!(rec.order_id.is_none(), "events carry the public shape");
        if kind == "stuff.updated" {
            out.push((rec.id.clone(), rec.status, rec.version));
        }
    }
    out
}

#[tokio::test]
async fn order_events_reserve_release_and_sell_once_each() {
    let mut app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let a = app.create(&ann, "Bike", 5000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create(&ann, "Helmet", 900).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let o1 = |status, v| order("o1", &a, status, v);
    let o2 = |status, v| order("o2", &b, status, v);
    app.publish(Event::OrderCreated(o1(OrderStatus::Created, 1)))
        .await;
    let got = app.wait_for(&a, "reserved", 2).await;
    assert!(
        got.get("orderId").is_none(),
        "the holding order stays internal"
    );
    app.publish(Event::OrderCancelled(o1(OrderStatus::Cancelled, 2)))
        .await;
    app.wait_for(&a, "available", 3).await;
    app.publish(Event::OrderCreated(o2(OrderStatus::Created, 1)))
        .await;
    app.wait_for(&b, "reserved", 2).await;
    app.publish(Event::OrderCompleted(o2(OrderStatus::Complete, 2)))
        .await;
    app.wait_for(&b, "sold", 3).await;

    // Duplicates of every event change nothing and publish nothing...
    app.publish(Event::OrderCreated(o1(OrderStatus::Created, 1)))
        .await;
    app.publish(Event::OrderCancelled(o1(OrderStatus::Cancelled, 2)))
        .await;
    app.publish(Event::OrderCreated(o2(OrderStatus::Created, 1)))
        .await;
    app.publish(Event::OrderCompleted(o2(OrderStatus::Complete, 2)))
        .await;
    app.publish(Event::OrderCompleted(o2(OrderStatus::Complete, 2)))
        .await;
    // ...which a later, real change published after them makes visible.
    app.publish(Event::OrderCreated(order(
        "o3",
        &a,
        OrderStatus::Created,
        1,
    )))
    .await;
    app.wait_for(&a, "reserved", 4).await;

    let store = app.stop_stuff().await;
    app.assert_queues_settled().await;
    assert_eq!(store.get(&a).await.unwrap().unwrap().version, 4);
    assert_eq!(store.get(&b).await.unwrap().unwrap().version, 3);
    assert_eq!(
        updates(&app, 5).await,
        vec![
            (a.clone(), StuffStatus::Reserved, 2),
            (a.clone(), StuffStatus::Available, 3),
            (b.clone(), StuffStatus::Reserved, 2),
            (b.clone(), StuffStatus::Sold, 3),
            (a.clone(), StuffStatus::Reserved, 4),
        ]
    );
    assert_eq!(store.outbox().unsent_count().await.unwrap(), 0);
    let ch = app.broker.channel().await.unwrap();
    let extra = ch
        .basic_get(
            format!("{}observer", app.env.prefix).into(),
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap();
    assert!(extra.is_none(), "no event twice");
    app.done().await;
}

#[tokio::test]
async fn a_lost_order_version_heals_instead_of_holding_later_ones_back() {
    let mut app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let a = app.create(&ann, "Camera", 30000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    app.publish(Event::OrderCreated(order(
        "o1",
        &a,
        OrderStatus::Created,
        1,
    )))
    .await;
    app.wait_for(&a, "reserved", 2).await;
    // v2 (paid) was dead-lettered upstream and never comes; v3 (refunded) is the whole
    // order and releases the stuff instead of waiting for v2 forever.
    app.publish(Event::OrderRefunded(order(
        "o1",
        &a,
        OrderStatus::Refunded,
        3,
    )))
    .await;
    app.wait_for(&a, "available", 3).await;
    // v2 turning up late is stale: it must not sell the released stuff.
    app.publish(Event::OrderCompleted(order(
        "o1",
        &a,
        OrderStatus::Complete,
        2,
    )))
    .await;

    // It changes nothing visible: stop once it is taken.
    let store = app.stop_when_drained().await;
    let rec = store.get(&a).await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.order_id, rec.version),
        (StuffStatus::Available, None, 3)
    );
    assert_eq!(
        updates(&app, 2).await,
        vec![
            (a.clone(), StuffStatus::Reserved, 2),
            (a.clone(), StuffStatus::Available, 3),
        ]
    );
    app.done().await;
}

#[tokio::test]
async fn a_reservation_priced_at_another_version_is_refused() {
    let mut app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let a = app.create(&ann, "Camera", 30000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The seller raises the price (v2) before the buyer's order, priced at v1, arrives.
    app.call(
        "stuff:update",
        Some(&ann),
        serde_json::json!({"id": a, "priceCents": 45000}),
    )
    .await
    .unwrap();
    let stale = OrderRecord {
        stuff_version: Some(1),
        seller_id: None,
        price_cents: 30000,
        ..order("o1", &a, OrderStatus::Created, 1)
    };
    app.publish(Event::OrderCreated(stale)).await;
    let refusal = loop {
        let ev = app.next_event().await;
        if let Event::ReservationRefused(r) = ev.event {
            break r;
        }
    };
    assert_eq!(
        (refusal.order_id.as_str(), refusal.stuff_id.as_str()),
        ("o1", a.as_str())
    );
    assert_eq!((refusal.priced_version, refusal.stuff_version), (1, 2));
    // An order priced at the current version reserves it, also after a refused one.
    let current = OrderRecord {
        stuff_version: Some(2),
        seller_id: None,
        price_cents: 45000,
        ..order("o2", &a, OrderStatus::Created, 1)
    };
    app.publish(Event::OrderCreated(current)).await;
    app.wait_for(&a, "reserved", 3).await;
    // The refused order's cancellation (ms-order's answer) leaves o2's hold alone.
    app.publish(Event::OrderCancelled(order(
        "o1",
        &a,
        OrderStatus::Cancelled,
        2,
    )))
    .await;

    // It changes nothing visible: stop once it is taken.
    let store = app.stop_when_drained().await;
    let rec = store.get(&a).await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.order_id.as_deref(), rec.version),
        (StuffStatus::Reserved, Some("o2"), 3)
    );
    app.done().await;
}

#[tokio::test]
async fn an_order_for_unknown_stuff_is_dead_lettered_with_its_reason() {
    let app = App::spawn().await;
    app.publish(Event::OrderCreated(order(
        "o1",
        "no-such-stuff",
        OrderStatus::Created,
        1,
    )))
    .await;
    let dlq = app.env.names().dead_letter_queue(Service::Stuff);
    let msg = eventually(WAIT, "a dead letter", || async {
        let ch = app.broker.channel().await.ok()?;
        ch.queue_declare(
            dlq.clone().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .ok()?;
        ch.basic_get(dlq.clone().into(), BasicGetOptions { no_ack: true })
            .await
            .ok()?
    })
    .await
    .unwrap();
    let headers = msg.delivery.properties.headers().clone().unwrap();
    let reason = match headers.inner().get("x-death-reason") {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("no reason header: {other:?}"),
    };
    assert!(reason.contains("unknown stuff"), "{reason}");
    app.done().await;
}
