//! Order events published straight to the events exchange, as ms-order will: reserve,
//! release, sell; duplicates and out-of-order delivery; nothing dead-lettered.

use crate::helpers::{App, WAIT, order, record};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use ms_common::events::{Event, OrderStatus, StuffStatus};
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
async fn out_of_order_events_are_retried_until_they_apply() {
    let mut app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let a = app.create(&ann, "Camera", 30000).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Version 2 first: it is early, goes to the retry queue and comes back after v1.
    app.publish(Event::OrderCancelled(order(
        "o1",
        &a,
        OrderStatus::Cancelled,
        2,
    )))
    .await;
    app.publish(Event::OrderCreated(order(
        "o1",
        &a,
        OrderStatus::Created,
        1,
    )))
    .await;
    let end = app.wait_for(&a, "available", 3).await;
    assert_eq!(end["status"], "available");

    let store = app.stop_stuff().await;
    app.assert_queues_settled().await;
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
