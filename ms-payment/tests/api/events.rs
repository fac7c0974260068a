//! The order replica: order events applied by version whatever their order of arrival (a
//! newer version wins, also over a gap), and what cannot be applied parked in the
//! dead-letter queue.

use crate::helpers::*;
use ms_common::events::{Event, OrderStatus};
use ms_common::messaging::Outgoing;
use ms_testkit::eventually;
use std::time::Duration;

#[tokio::test]
async fn duplicated_and_out_of_order_order_events_end_consistent() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;

    // Cancelled (v2) before created (v1), each twice: the newest version wins whichever
    // arrives first (v2 is the whole order; v1 after it is stale).
    let a = new_order(&ann.id, 1000);
    let a2 = next(&a, OrderStatus::Cancelled);
    app.publish(Event::OrderCancelled(a2.clone())).await;
    app.publish(Event::OrderCancelled(a2.clone())).await;
    app.publish(Event::OrderCreated(a.clone())).await;
    app.publish(Event::OrderCreated(a.clone())).await;

    // In order but duplicated, and an old version replayed after the newest.
    let b = new_order(&ann.id, 2000);
    let b2 = next(&b, OrderStatus::Complete);
    for ev in [
        Event::OrderCreated(b.clone()),
        Event::OrderCreated(b.clone()),
        Event::OrderCompleted(b2.clone()),
        Event::OrderCompleted(b2.clone()),
        Event::OrderCreated(b.clone()),
    ] {
        app.publish(ev).await;
    }

    let ra = app.replica_at(&a.id, 2).await;
    assert_eq!(
        (ra.status, ra.price_cents, ra.user_id.as_str()),
        (OrderStatus::Cancelled, 1000, ann.id.as_str())
    );
    let rb = app.replica_at(&b.id, 2).await;
    assert_eq!(rb.status, OrderStatus::Complete);

    // Every copy was consumed (applied or dropped as stale) and nothing was
    // dead-lettered; the replica stays at v2.
    let events_q = app
        .env
        .names()
        .events_queue(ms_common::messaging::Service::Payment);
    let retry_q =
        ms_common::messaging::topology::retry_queue_for(&events_q, app.env.common.retry_delay);
    eventually(Duration::from_secs(10), "drained queues", || async {
        (app.queue_len(&events_q).await == 0 && app.queue_len(&retry_q).await == 0).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(app.dead_letters().await, 0);
    assert_eq!(
        app.payment
            .store
            .order(&a.id)
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        app.payment
            .store
            .order(&b.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        OrderStatus::Complete
    );
    app.done().await;
}

#[tokio::test]
async fn impossible_and_unreadable_events_are_dead_lettered_and_a_gap_heals() {
    let app = spawn_app().await;
    let mut zero = new_order("someone", 100);
    zero.version = 0;
    app.publish(Event::OrderCreated(zero)).await;
    // A gap that never fills (v1 and v2 lost): v3 is the whole order and applies, rather
    // than being retried until it is parked.
    let lonely = next(
        &next(&new_order("someone", 100), OrderStatus::Cancelled),
        OrderStatus::Cancelled,
    );
    app.publish(Event::OrderCancelled(lonely.clone())).await;
    app.publisher
        .publish(Outgoing {
            exchange: app.env.names().events_exchange(),
            routing_key: "order.created".into(),
            payload: b"{not json".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "two dead letters", || async {
        (app.dead_letters().await == 2).then_some(())
    })
    .await
    .unwrap();
    let healed = app.replica_at(&lonely.id, 3).await;
    assert_eq!(healed.status, OrderStatus::Cancelled);
    // A healthy event still goes through afterwards.
    let ok = new_order("someone", 100);
    app.publish(Event::OrderCreated(ok.clone())).await;
    app.replica_at(&ok.id, 1).await;
    app.done().await;
}
