//! `payment:refund` (admins) and the refund ms-payment makes by itself on `order.refunded`,
//! over RPC with a recording built-in gateway.

use crate::helpers::*;
use ms_common::events::{Event, OrderRecord, OrderStatus};
use ms_common::messaging::Service;
use ms_payment::gateway::builtin::TestGateway;
use serde_json::{Value, json};
use std::sync::Arc;

async fn refund(app: &App, who: &Session, payload: Value) -> Result<Value, ms_common::ApiError> {
    app.call(
        Service::Payment,
        "payment:refund",
        Some(&who.token),
        payload,
    )
    .await
}

/// An order of `who` paid with the test card, with its `payment.created` consumed; the
/// order and the payment.
async fn paid_order(app: &App, who: &Session, cents: i64) -> (OrderRecord, Value) {
    let order = app.order_for(who, cents).await;
    let paid = app
        .pay(
            who,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    assert!(matches!(
        app.next_event().await.event,
        Event::PaymentCreated(_)
    ));
    (order, paid)
}

#[tokio::test]
async fn an_admin_refunds_a_paid_order_once_and_payment_refunded_is_published() {
    let gateway = Recording::new(Arc::new(TestGateway::default()));
    let app = spawn_with(|_| {}, gateway.clone(), None).await;
    let ann = app.signup("ann@example.com").await;
    let admin = app.admin().await;
    let (order, paid) = paid_order(&app, &ann, 2500).await;

    // Not an admin, not a payload, not an order, not paid.
    let e = refund(&app, &ann, json!({"orderId": order.id}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 403);
    let e = refund(&app, &admin, json!({})).await.unwrap_err();
    assert_eq!(summary(&e), (400, "Order id is required", vec!["orderId"]));
    let e = refund(&app, &admin, json!({"orderId": "no-such-order"}))
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (404, "Order not found", vec![]));
    let unpaid = app.order_for(&ann, 700).await;
    app.replica_at(&unpaid.id, 1).await;
    let e = refund(&app, &admin, json!({"orderId": unpaid.id}))
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (
            404,
            "This order has not been paid, so there is nothing to refund",
            vec![]
        )
    );
    assert!(gateway.refunds().is_empty());

    let first = refund(&app, &admin, json!({"orderId": order.id}))
        .await
        .unwrap();
    assert_eq!(first["id"], paid["id"]);
    assert!(first["refundedAt"].is_string(), "{first}");
    let ev = app.next_event().await;
    assert_eq!(ev.correlation_id.as_deref(), Some("test-cid"));
    match ev.event {
        Event::PaymentRefunded(rec) => {
            assert_eq!(rec.order_id, order.id);
            assert_eq!(rec.id, paid["id"].as_str().unwrap());
            assert!(rec.refunded_at.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }

    // Again: the same payment, no second gateway call, no second event.
    let second = refund(&app, &admin, json!({"orderId": order.id}))
        .await
        .unwrap();
    assert_eq!(second, first);
    assert_eq!(
        gateway.refunds(),
        vec![(
            paid["providerId"].as_str().unwrap().to_owned(),
            order.id.clone()
        )]
    );
    // ms-order announces the refunded order: already refunded, nothing more happens.
    let complete = next(&order, OrderStatus::Complete);
    app.publish(Event::OrderCompleted(complete.clone())).await;
    app.publish(Event::OrderRefunded(next(&complete, OrderStatus::Refunded)))
        .await;
    app.replica_at(&order.id, 3).await;
    app.outbox_drained().await;
    assert_eq!(gateway.refunds().len(), 1, "refunded exactly once");
    assert_eq!(
        app.queue_len(&app.observer).await,
        0,
        "one payment.refunded"
    );
    assert_eq!(app.dead_letters().await, 0);
    app.done().await;
}

#[tokio::test]
async fn an_order_refunded_by_ms_order_gets_its_payment_refunded() {
    let gateway = Recording::new(Arc::new(TestGateway::default()));
    let app = spawn_with(|_| {}, gateway.clone(), None).await;
    let ann = app.signup("ann@example.com").await;
    let (order, _) = paid_order(&app, &ann, 1200).await;
    // The hold had run out and the stuff went to someone else: ms-order cancelled the
    // order, then refunded it when the payment landed.
    let cancelled = next(&order, OrderStatus::Cancelled);
    let refunded = next(&cancelled, OrderStatus::Refunded);
    app.publish(Event::OrderCancelled(cancelled)).await;
    app.publish(Event::OrderRefunded(refunded.clone())).await;
    app.publish(Event::OrderRefunded(refunded)).await; // duplicate delivery
    match app.next_event().await.event {
        Event::PaymentRefunded(rec) => {
            assert_eq!(rec.order_id, order.id);
            assert!(rec.refunded_at.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    let stored = app
        .payment
        .store
        .payment_for_order(&order.id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.refunded_at.is_some());
    assert_eq!(
        app.replica_at(&order.id, 3).await.status,
        OrderStatus::Refunded
    );
    app.outbox_drained().await;
    // The duplicate may be handled while the first is still at the gateway: both then ask
    // for the refund with the same idempotency key (`refund-<orderId>`), which Stripe
    // makes one refund, and only one of them records it.
    let mut refunded: Vec<_> = gateway.refunds().into_iter().map(|(_, o)| o).collect();
    refunded.dedup();
    assert_eq!(refunded, vec![order.id.clone()], "one order refunded");
    assert_eq!(
        app.queue_len(&app.observer).await,
        0,
        "one payment.refunded"
    );
    assert_eq!(app.dead_letters().await, 0);
    app.done().await;
}
