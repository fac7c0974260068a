//! `payment:create` over RPC with the built-in test gateway.

use crate::helpers::*;
use ms_common::events::{Event, OrderStatus};
use ms_common::messaging::Service;
use ms_payment::gateway::builtin::TestGateway;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[tokio::test]
async fn visa_pays_once_and_publishes_payment_created() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;
    // Paid right after the event is published: the service waits for its replica.
    let order = app.order_for(&ann, 2500).await;
    let p = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "amountCents",
            "couponCode",
            "createdAt",
            "currency",
            "feeCents",
            "id",
            "orderId",
            "providerId",
            "refundedAt"
        ]
    );
    assert_eq!(
        (p["currency"].as_str(), p["feeCents"].as_i64()),
        (Some("eur"), Some(250))
    );
    assert_eq!(p["orderId"], order.id.as_str());
    assert_eq!(p["amountCents"], 2500);
    assert!(p["couponCode"].is_null());
    assert!(p["refundedAt"].is_null());
    assert!(p["providerId"].as_str().unwrap().starts_with("pi_test_"));
    chrono::DateTime::parse_from_rfc3339(p["createdAt"].as_str().unwrap()).unwrap();

    let stored = app
        .payment
        .store
        .payment_for_order(&order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, p["id"].as_str().unwrap());
    assert_eq!(
        (stored.user_id.as_str(), stored.amount_cents),
        (ann.id.as_str(), 2500)
    );

    let ev = app.next_event().await;
    assert_eq!(ev.correlation_id.as_deref(), Some("test-cid"));
    match ev.event {
        Event::PaymentCreated(rec) => {
            assert_eq!(rec.id, stored.id);
            assert_eq!(rec.order_id, order.id);
            assert_eq!(rec.user_id, ann.id);
            assert_eq!(rec.amount_cents, 2500);
            assert_eq!(rec.provider_id, stored.provider_id);
        }
        other => panic!("unexpected {other:?}"),
    }

    let again = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&again),
        (409, "This order has already been paid", vec![])
    );
    // ms-order completes it; still paid.
    app.publish(Event::OrderCompleted(next(&order, OrderStatus::Complete)))
        .await;
    app.replica_at(&order.id, 2).await;
    let again = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_mastercard"}),
        )
        .await
        .unwrap_err();
    assert_eq!(again.status, 409);
    assert_eq!(app.gateway.calls().len(), 1, "charged exactly once");
    app.outbox_drained().await;
    assert_eq!(app.dead_letters().await, 0);
    app.done().await;
}

#[tokio::test]
async fn declined_card_is_402_and_publishes_payment_failed() {
    let app = spawn_app().await;
    let bob = app.signup("bob@example.com").await;
    let order = app.order_for(&bob, 1999).await;
    let e = app
        .pay(
            &bob,
            json!({"orderId": order.id, "paymentMethod": "pm_card_chargeDeclined"}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (402, "Your card was declined", vec![]));
    let ev = app.next_event().await;
    match ev.event {
        Event::PaymentFailed(f) => {
            assert_eq!(
                (f.order_id.as_str(), f.user_id.as_str(), f.reason.as_str()),
                (order.id.as_str(), bob.id.as_str(), "generic_decline")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        app.payment
            .store
            .payment_for_order(&order.id)
            .await
            .unwrap()
            .is_none()
    );
    // ms-order cancels the order on that event; until the replica hears of it the decline
    // itself already closes the order here.
    let e = app
        .pay(
            &bob,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (409, "Cannot pay for a cancelled order", vec![])
    );
    assert_eq!(app.gateway.calls().len(), 1);
    // Other Stripe decline ids are declines too.
    let order2 = app.order_for(&bob, 500).await;
    let e = app
        .pay(
            &bob,
            json!({"orderId": order2.id, "paymentMethod": "pm_card_visa_chargeDeclinedInsufficientFunds"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 402);
    match app.next_event().await.event {
        Event::PaymentFailed(f) => assert_eq!(f.reason, "insufficient_funds"),
        other => panic!("unexpected {other:?}"),
    }
    app.done().await;
}

#[tokio::test]
async fn who_and_which_order_may_be_paid() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;
    let eve = app.signup("eve@example.com").await;
    let order = app.order_for(&ann, 1000).await;
    app.replica_at(&order.id, 1).await;
    let visa = json!({"orderId": order.id, "paymentMethod": "pm_card_visa"});

    // Anonymous, or a bad token.
    let e = app
        .call(Service::Payment, "payment:create", None, visa.clone())
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (401, "Not authorized", vec![]));
    let e = app
        .call(
            Service::Payment,
            "payment:create",
            Some("not.a.token"),
            visa.clone(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    // Someone else's order.
    let e = app.pay(&eve, visa.clone()).await.unwrap_err();
    assert_eq!(summary(&e), (403, "You do not own this order", vec![]));
    // Input errors.
    let e = app.pay(&ann, json!({})).await.unwrap_err();
    assert_eq!(summary(&e), (400, "Order id is required", vec!["orderId"]));
    let e = app
        .pay(&ann, json!({"orderId": order.id}))
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (400, "Payment method is required", vec!["paymentMethod"])
    );
    let e = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "tok_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (400, "Unknown payment method", vec!["paymentMethod"])
    );
    let e = app
        .call(
            Service::Payment,
            "payment:nope",
            Some(&ann.token),
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (404, "Unknown event", vec![]));
    // payment:refund exists, for admins only.
    let e = app
        .call(
            Service::Payment,
            "payment:refund",
            Some(&ann.token),
            json!({"orderId": order.id}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (403, "Admins only", vec![]));
    assert!(
        app.gateway
            .calls()
            .iter()
            .all(|c| c.payment_method == "tok_visa")
    );

    // Unknown order: 404 after waiting for its event.
    let started = Instant::now();
    let e = app
        .pay(
            &ann,
            json!({"orderId": "no-such-order", "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (404, "Order not found", vec![]));
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "answered after {:?}",
        started.elapsed()
    );

    // Cancelled (by its owner or by expiry), as ms-order announces it.
    let cancelled = app.order_for(&ann, 1000).await;
    app.publish(Event::OrderCancelled(next(
        &cancelled,
        OrderStatus::Cancelled,
    )))
    .await;
    app.replica_at(&cancelled.id, 2).await;
    let e = app
        .pay(
            &ann,
            json!({"orderId": cancelled.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (409, "Cannot pay for a cancelled order", vec![])
    );

    // Past its hold, even before ms-order's expiry event.
    let mut expired = new_order(&ann.id, 1000);
    expired.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    app.publish(Event::OrderCreated(expired.clone())).await;
    let e = app
        .pay(
            &ann,
            json!({"orderId": expired.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (409, "Cannot pay for a cancelled order", vec![])
    );
    // None of these reached the gateway (only the unknown method did, and was refused).
    assert_eq!(app.gateway.calls().len(), 1);
    app.done().await;
}

#[tokio::test]
async fn payment_waits_for_an_order_event_still_in_flight() {
    let store = CountingStore::in_memory().await;
    let app = spawn_with(
        |_| {},
        Arc::new(TestGateway::default()),
        Some(store.clone()),
    )
    .await;
    let ann = app.signup("ann@example.com").await;
    let order = new_order(&ann.id, 700);
    let paying = {
        let rpc = app.rpc.clone();
        let token = ann.token.clone();
        let id = order.id.clone();
        tokio::spawn(async move {
            let req = ms_common::messaging::RpcRequest {
                action: "payment:create".into(),
                token: Some(token),
                payload: json!({"orderId": id, "paymentMethod": "pm_card_visa"}),
            };
            rpc.call(Service::Payment, &req, "late").await
        })
    };
    // The request has looked for the order more than once: it is waiting.
    ms_testkit::eventually(Duration::from_secs(5), "repeated replica reads", || async {
        (store.order_reads.load(Ordering::SeqCst) >= 3).then_some(())
    })
    .await
    .unwrap();
    app.publish(Event::OrderCreated(order.clone())).await;
    let p = paying.await.unwrap().unwrap();
    assert_eq!(
        (p["orderId"].as_str(), p["amountCents"].as_i64()),
        (Some(order.id.as_str()), Some(700))
    );
    app.done().await;
}
