//! `payment:webhook`: Stripe's events, signed in the test the way Stripe signs them, sent
//! over RPC as the router sends them.

use crate::helpers::*;
use ms_common::events::Event;
use ms_common::messaging::Service;
use ms_payment::gateway::builtin::TestGateway;
use ms_payment::webhook::WebhookSecret;
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "whsec_stuffmart_test";

async fn app_with_secret() -> App {
    spawn_with(
        |cfg| cfg.webhook_secret = WebhookSecret::new(SECRET),
        Arc::new(TestGateway::default()),
        None,
    )
    .await
}

/// Posts `event` signed with `secret` at `t` seconds from now.
async fn post(
    app: &App,
    event: &Value,
    secret: &str,
    t: i64,
) -> Result<Value, ms_common::ApiError> {
    let body = event.to_string();
    let at = chrono::Utc::now().timestamp() + t;
    let signature = WebhookSecret::new(secret)
        .unwrap()
        .sign(body.as_bytes(), at);
    app.call(
        Service::Payment,
        "payment:webhook",
        None,
        json!({"payload": body, "signature": signature}),
    )
    .await
}

fn intent_event(id: &str, kind: &str, intent: &str, order_id: &str, cents: i64) -> Value {
    json!({
        "id": id, "object": "event", "type": kind,
        "data": {"object": {
            "id": intent, "object": "payment_intent", "amount": cents,
            "amount_received": if kind == "payment_intent.succeeded" { cents } else { 0 },
            "currency": "eur", "metadata": {"order_id": order_id},
            "last_payment_error": if kind == "payment_intent.payment_failed" {
                json!({"code": "card_declined", "decline_code": "insufficient_funds"})
            } else { Value::Null }
        }}
    })
}

#[tokio::test]
async fn a_succeeded_intent_records_the_payment_once_and_bad_signatures_are_refused() {
    let app = app_with_secret().await;
    let ann = app.signup("ann@example.com").await;
    let order = app.order_for(&ann, 1800).await;
    let event = intent_event("evt_1", "payment_intent.succeeded", "pi_1", &order.id, 1800);

    // Not from Stripe: another secret, a stale timestamp, no signature at all.
    for (secret, t) in [("whsec_someone_else", 0), (SECRET, -301), (SECRET, 400)] {
        let e = post(&app, &event, secret, t).await.unwrap_err();
        assert_eq!(
            (e.status, e.first_message()),
            (400, "Invalid signature"),
            "{secret} {t}"
        );
    }
    let e = app
        .call(
            Service::Payment,
            "payment:webhook",
            None,
            json!({"payload": event.to_string(), "signature": ""}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.first_message(), "Invalid signature");
    assert!(
        app.payment
            .store
            .payment_for_order(&order.id)
            .await
            .unwrap()
            .is_none()
    );

    let ok = post(&app, &event, SECRET, 0).await.unwrap();
    assert_eq!(ok, json!({"received": true}));
    match app.next_event().await.event {
        Event::PaymentCreated(p) => {
            assert_eq!(
                (p.order_id.as_str(), p.amount_cents),
                (order.id.as_str(), 1800)
            );
            assert_eq!(p.provider_id, "pi_1");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Stripe delivers again (same event), and a second event for the same intent comes.
    assert_eq!(
        post(&app, &event, SECRET, 0).await.unwrap(),
        json!({"received": true})
    );
    let again = intent_event("evt_2", "payment_intent.succeeded", "pi_1", &order.id, 1800);
    post(&app, &again, SECRET, 0).await.unwrap();
    app.outbox_drained().await;
    assert_eq!(app.queue_len(&app.observer).await, 0, "one payment.created");
    // The buyer's own `payment:create` now finds it paid.
    let e = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 409);
    assert_eq!(app.dead_letters().await, 0);
    app.done().await;
}

#[tokio::test]
async fn without_a_secret_every_webhook_is_refused() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;
    let order = app.order_for(&ann, 1800).await;
    let event = intent_event("evt_1", "payment_intent.succeeded", "pi_1", &order.id, 1800);
    let e = post(&app, &event, SECRET, 0).await.unwrap_err();
    assert_eq!((e.status, e.first_message()), (400, "Invalid signature"));
    app.done().await;
}

#[tokio::test]
async fn a_failed_intent_cancels_the_order_and_gives_the_coupon_back_once() {
    let app = app_with_secret().await;
    let ann = app.signup("ann@example.com").await;
    let admin = app.admin().await;
    let code = app
        .create_coupon(&admin, json!({"percentOff": 10, "maxRedemptions": 1}))
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = app.order_for(&ann, 1800).await;
    app.replica_at(&order.id, 1).await;
    // The coupon was redeemed for a charge whose outcome only the webhook tells.
    app.payment
        .store
        .redeem_coupon(&code, chrono::Utc::now())
        .await
        .unwrap();
    let mut failed = intent_event(
        "evt_f",
        "payment_intent.payment_failed",
        "pi_f",
        &order.id,
        1620,
    );
    failed["data"]["object"]["metadata"]["coupon_code"] = json!(code);
    post(&app, &failed, SECRET, 0).await.unwrap();
    match app.next_event().await.event {
        Event::PaymentFailed(f) => {
            assert_eq!(
                (f.order_id.as_str(), f.reason.as_str()),
                (order.id.as_str(), "insufficient_funds")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Told again by a new event id: nothing more is given back.
    failed["id"] = json!("evt_f2");
    post(&app, &failed, SECRET, 0).await.unwrap();
    app.outbox_drained().await;
    assert_eq!(app.queue_len(&app.observer).await, 0, "one payment.failed");
    let coupon = app.payment.store.coupon(&code).await.unwrap().unwrap();
    assert_eq!(coupon.redemptions, 0);
    app.done().await;
}

#[tokio::test]
async fn a_refund_made_in_stripe_is_recorded_and_processing_waits() {
    let app = app_with_secret().await;
    let ann = app.signup("ann@example.com").await;
    let order = app.order_for(&ann, 2400).await;
    let processing = intent_event(
        "evt_p",
        "payment_intent.processing",
        "pi_9",
        &order.id,
        2400,
    );
    post(&app, &processing, SECRET, 0).await.unwrap();
    // Processing records nothing: the order waits for how it ends.
    app.outbox_drained().await;
    assert_eq!(app.queue_len(&app.observer).await, 0);
    assert!(
        app.payment
            .store
            .payment_for_order(&order.id)
            .await
            .unwrap()
            .is_none()
    );
    let paid = intent_event("evt_s", "payment_intent.succeeded", "pi_9", &order.id, 2400);
    post(&app, &paid, SECRET, 0).await.unwrap();
    assert!(matches!(
        app.next_event().await.event,
        Event::PaymentCreated(_)
    ));

    // A partial refund is not StuffMart's: nothing is recorded.
    let charge = |id: &str, refunded: bool| {
        json!({"id": id, "type": "charge.refunded", "data": {"object": {
            "id": "ch_9", "object": "charge", "payment_intent": "pi_9",
            "amount": 2400, "amount_refunded": if refunded { 2400 } else { 500 }, "refunded": refunded}}})
    };
    post(&app, &charge("evt_r1", false), SECRET, 0)
        .await
        .unwrap();
    app.outbox_drained().await;
    assert_eq!(app.queue_len(&app.observer).await, 0);
    post(&app, &charge("evt_r2", true), SECRET, 0)
        .await
        .unwrap();
    match app.next_event().await.event {
        Event::PaymentRefunded(p) => {
            assert_eq!(p.order_id, order.id);
            assert!(p.refunded_at.is_some());
        }
        other => panic!("unexpected {other:?}"),
    }
    // Stripe's dashboard refunded it: the gateway is not asked again.
    assert!(app.gateway.refunds().is_empty());
    // The same refund again: recorded once.
    post(&app, &charge("evt_r3", true), SECRET, 0)
        .await
        .unwrap();
    app.outbox_drained().await;
    assert_eq!(app.queue_len(&app.observer).await, 0);
    app.done().await;
}
