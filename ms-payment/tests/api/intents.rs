//! `payment:intent` with the built-in gateway: an intent opened for the browser, handed out
//! again, replaced when the coupon changes, confirmed by `payment:create`, cancelled when
//! the hold ends, and settled by reconciliation when the browser paid it.

use crate::helpers::*;
use ms_common::events::{Event, OrderStatus};
use ms_common::messaging::Service;
use ms_payment::gateway::{ChargeOutcome, ChargeRequest, IntentState, PaymentGateway};
use ms_testkit::eventually;
use serde_json::{Value, json};
use std::time::Duration;

impl App {
    async fn intent(&self, who: &Session, payload: Value) -> Result<Value, ms_common::ApiError> {
        self.call(
            Service::Payment,
            "payment:intent",
            Some(&who.token),
            payload,
        )
        .await
    }

    /// Where the gateway says the intent of `client_secret` stands.
    async fn intent_state(&self, client_secret: &Value) -> IntentState {
        self.gateway
            .intent(intent_id(client_secret))
            .await
            .unwrap()
            .unwrap()
            .state
    }
}

/// The intent id inside a client secret (`<id>_secret_<…>`).
fn intent_id(client_secret: &Value) -> &str {
    let secret = client_secret.as_str().unwrap();
    &secret[..secret.find("_secret_").unwrap()]
}

#[tokio::test]
async fn an_intent_is_opened_once_handed_out_again_and_confirmed_by_payment_create() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;
    let order = app.order_for(&ann, 2000).await;

    let first = app
        .intent(&ann, json!({"orderId": order.id}))
        .await
        .unwrap();
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec!["amountCents", "clientSecret", "currency", "publishableKey"]
    );
    assert_eq!(
        (
            &first["amountCents"],
            &first["currency"],
            &first["publishableKey"]
        ),
        (&json!(2000), &json!("eur"), &Value::Null)
    );
    // Asked again (a reload): the same intent.
    let again = app
        .intent(&ann, json!({"orderId": order.id}))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(
        app.intent_state(&first["clientSecret"]).await,
        IntentState::AwaitingBuyer
    );

    // The built-in gateway's test method confirms that very intent.
    let paid = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    let id = intent_id(&first["clientSecret"]);
    assert_eq!(paid["providerId"], id);
    let calls = app.gateway.calls();
    assert_eq!(
        calls
            .iter()
            .map(|c| c.intent_id.as_deref())
            .collect::<Vec<_>>(),
        vec![Some(id)]
    );
    assert_eq!(
        app.intent_state(&first["clientSecret"]).await,
        IntentState::Succeeded
    );
    assert!(
        matches!(app.next_event().await.event, Event::PaymentCreated(p) if p.provider_id == id)
    );
    assert!(
        app.payment
            .store
            .pending_charge(&order.id)
            .await
            .unwrap()
            .is_none()
    );
    // A paid order has no intent to hand out.
    let e = app
        .intent(&ann, json!({"orderId": order.id}))
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (409, "This order has already been paid", vec![])
    );
}

#[tokio::test]
async fn a_coupon_change_cancels_the_earlier_intent_and_moves_the_redemption() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    // One redemption only: the intent holds it, and paying with it still works.
    let coupon = app
        .create_coupon(&admin, json!({"percentOff": 50, "maxRedemptions": 1}))
        .await;
    let code = coupon["code"].as_str().unwrap();
    let order = app.order_for(&ann, 2000).await;

    let plain = app
        .intent(&ann, json!({"orderId": order.id}))
        .await
        .unwrap();
    let half = app
        .intent(&ann, json!({"orderId": order.id, "couponCode": code}))
        .await
        .unwrap();
    assert_eq!(half["amountCents"], 1000);
    assert_ne!(half["clientSecret"], plain["clientSecret"]);
    assert_eq!(
        app.intent_state(&plain["clientSecret"]).await,
        IntentState::Canceled,
        "the full-price intent can never be paid"
    );
    assert_eq!(app.redemptions(code).await, 1);
    // The same coupon again: the same intent, no second redemption (there is none left).
    let half_again = app
        .intent(
            &ann,
            json!({"orderId": order.id, "couponCode": code.to_lowercase()}),
        )
        .await
        .unwrap();
    assert_eq!(half_again, half);
    assert_eq!(app.redemptions(code).await, 1);

    // With the intent's coupon: the last redemption is the intent's own.
    let paid = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": code}),
        )
        .await
        .unwrap();
    assert_eq!(
        (
            &paid["amountCents"],
            &paid["couponCode"],
            &paid["providerId"]
        ),
        (
            &json!(1000),
            &json!(code),
            &json!(intent_id(&half["clientSecret"]))
        )
    );
    assert_eq!(app.redemptions(code).await, 1);
}

#[tokio::test]
async fn dropping_the_coupon_gives_its_redemption_back() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let code = app.coupon_code(&admin, json!({"percentOff": 25})).await;
    let order = app.order_for(&ann, 2000).await;
    app.intent(&ann, json!({"orderId": order.id, "couponCode": code}))
        .await
        .unwrap();
    assert_eq!(app.redemptions(&code).await, 1);
    let plain = app
        .intent(&ann, json!({"orderId": order.id, "couponCode": ""}))
        .await
        .unwrap();
    assert_eq!(plain["amountCents"], 2000);
    assert_eq!(app.redemptions(&code).await, 0);
}

#[tokio::test]
async fn refusals_come_in_the_contract_s_envelope() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let bob = app.signup("bob@example.com").await;
    let order = app.order_for(&ann, 2000).await;
    let free = app.coupon_code(&admin, json!({"percentOff": 100})).await;
    let free = free.as_str();

    let cases = [
        (json!({}), (400, "Order id is required", vec!["orderId"])),
        (
            json!({"orderId": 7, "couponCode": "no-such code"}),
            (400, "Order id is required", vec!["orderId", "couponCode"]),
        ),
        (
            json!({"orderId": order.id, "couponCode": "NOSUCHCODE"}),
            (400, "Coupon is not valid", vec!["couponCode"]),
        ),
        (
            json!({"orderId": order.id, "couponCode": free}),
            (
                400,
                "This coupon makes it free: no card is needed",
                vec!["couponCode"],
            ),
        ),
    ];
    for (payload, want) in cases {
        let e = app.intent(&ann, payload.clone()).await.unwrap_err();
        assert_eq!(summary(&e), want, "{payload}");
    }
    assert_eq!(
        app.redemptions(free).await,
        0,
        "a refused intent redeems nothing"
    );
    let e = app
        .intent(&bob, json!({"orderId": order.id}))
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (403, "You do not own this order", vec![]));
    let e = app
        .call(
            Service::Payment,
            "payment:intent",
            None,
            json!({"orderId": order.id}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    assert!(app.gateway.calls().is_empty());
}

#[tokio::test]
async fn the_end_of_the_hold_cancels_the_open_intent_and_gives_the_coupon_back() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let code = app.coupon_code(&admin, json!({"percentOff": 50})).await;
    let order = app.order_for(&ann, 2000).await;
    let intent = app
        .intent(&ann, json!({"orderId": order.id, "couponCode": code}))
        .await
        .unwrap();
    assert_eq!(app.redemptions(&code).await, 1);

    app.publish(Event::OrderCancelled(next(&order, OrderStatus::Cancelled)))
        .await;
    let store = app.payment.store.clone();
    eventually(
        Duration::from_secs(10),
        "the pending charge is gone",
        || {
            let store = store.clone();
            let id = order.id.clone();
            async move {
                store
                    .pending_charge(&id)
                    .await
                    .unwrap()
                    .is_none()
                    .then_some(())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(
        app.intent_state(&intent["clientSecret"]).await,
        IntentState::Canceled
    );
    assert_eq!(app.redemptions(&code).await, 0);
    // A browser confirming it now is refused: the money never moves.
    let late = app
        .gateway
        .charge(&ChargeRequest {
            order_id: order.id.clone(),
            user_id: ann.id.clone(),
            amount_cents: 1000,
            currency: "eur".into(),
            payment_method: "pm_card_visa".into(),
            coupon_code: Some(code.clone()),
            intent_id: Some(intent_id(&intent["clientSecret"]).to_owned()),
            destination: None,
        })
        .await;
    assert!(late.is_err(), "{late:?}");
}

#[tokio::test]
async fn reconciliation_records_an_intent_the_browser_paid() {
    let app = spawn_app().await;
    let ann = app.signup("ann@example.com").await;
    let paid_order = app.order_for(&ann, 2000).await;
    let waiting_order = app.order_for(&ann, 3000).await;
    let paid = app
        .intent(&ann, json!({"orderId": paid_order.id}))
        .await
        .unwrap();
    let waiting = app
        .intent(&ann, json!({"orderId": waiting_order.id}))
        .await
        .unwrap();
    // The browser confirms with Stripe directly; the webhook never comes.
    let id = intent_id(&paid["clientSecret"]).to_owned();
    let outcome = app
        .gateway
        .charge(&ChargeRequest {
            order_id: paid_order.id.clone(),
            user_id: ann.id.clone(),
            amount_cents: 2000,
            currency: "eur".into(),
            payment_method: "pm_card_visa".into(),
            coupon_code: None,
            intent_id: Some(id.clone()),
            destination: None,
        })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ChargeOutcome::Succeeded {
            provider_id: id.clone()
        }
    );

    let settled = app.payment.service.reconcile(Duration::ZERO).await;
    assert_eq!(
        settled, 1,
        "the paid intent is settled; the waiting one waits"
    );
    let payment = app
        .payment
        .store
        .payment_for_order(&paid_order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (payment.provider_id.as_str(), payment.amount_cents),
        (id.as_str(), 2000)
    );
    assert!(
        matches!(app.next_event().await.event, Event::PaymentCreated(p) if p.order_id == paid_order.id)
    );
    // The buyer of the other order still has their hold to pay in.
    let still = app
        .payment
        .store
        .pending_charge(&waiting_order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.intent_id.as_deref(),
        Some(intent_id(&waiting["clientSecret"]))
    );
    assert_eq!(
        app.intent_state(&waiting["clientSecret"]).await,
        IntentState::AwaitingBuyer
    );
}

#[tokio::test]
async fn a_declined_confirmation_cancels_the_order_and_releases_the_coupon() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let code = app.coupon_code(&admin, json!({"percentOff": 50})).await;
    let order = app.order_for(&ann, 2000).await;
    app.intent(&ann, json!({"orderId": order.id, "couponCode": code}))
        .await
        .unwrap();
    let e = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_chargeDeclined", "couponCode": code}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (402, "Your card was declined", vec![]));
    assert_eq!(app.redemptions(&code).await, 0);
    assert!(
        matches!(app.next_event().await.event, Event::PaymentFailed(f) if f.order_id == order.id)
    );
    // An unknown method leaves the intent open (nothing was tried).
    let other = app.order_for(&ann, 2000).await;
    let open = app
        .intent(&ann, json!({"orderId": other.id}))
        .await
        .unwrap();
    let e = app
        .pay(&ann, json!({"orderId": other.id, "paymentMethod": "visa"}))
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (400, "Unknown payment method", vec!["paymentMethod"])
    );
    assert_eq!(
        app.intent_state(&open["clientSecret"]).await,
        IntentState::AwaitingBuyer
    );
    assert_eq!(
        app.intent(&ann, json!({"orderId": other.id}))
            .await
            .unwrap(),
        open
    );
}

#[tokio::test]
async fn a_payment_with_another_coupon_replaces_the_open_intent() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let free = app.coupon_code(&admin, json!({"percentOff": 100})).await;
    let half = app.coupon_code(&admin, json!({"percentOff": 50})).await;
    // The page asked for an intent at full price; then the buyer typed a 100 % coupon.
    let order = app.order_for(&ann, 2000).await;
    let full = app
        .intent(&ann, json!({"orderId": order.id}))
        .await
        .unwrap();
    let paid = app
        .pay(&ann, json!({"orderId": order.id, "couponCode": free}))
        .await
        .unwrap();
    assert_eq!(
        (&paid["amountCents"], &paid["couponCode"]),
        (&json!(0), &json!(free))
    );
    assert_eq!(
        app.intent_state(&full["clientSecret"]).await,
        IntentState::Canceled
    );
    // An intent with a coupon, then paying at full price by the server: the coupon's
    // redemption goes back.
    let other = app.order_for(&ann, 2000).await;
    let halved = app
        .intent(&ann, json!({"orderId": other.id, "couponCode": half}))
        .await
        .unwrap();
    assert_eq!(app.redemptions(&half).await, 1);
    let paid = app
        .pay(
            &ann,
            json!({"orderId": other.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    assert_eq!(paid["amountCents"], 2000);
    assert_eq!(app.redemptions(&half).await, 0);
    assert_eq!(
        app.intent_state(&halved["clientSecret"]).await,
        IntentState::Canceled
    );
    // An intent the browser paid meanwhile is recorded, and the other payment refused.
    let third = app.order_for(&ann, 2000).await;
    let browser = app
        .intent(&ann, json!({"orderId": third.id}))
        .await
        .unwrap();
    app.gateway
        .charge(&ChargeRequest {
            order_id: third.id.clone(),
            user_id: ann.id.clone(),
            amount_cents: 2000,
            currency: "eur".into(),
            payment_method: "pm_card_visa".into(),
            coupon_code: None,
            intent_id: Some(intent_id(&browser["clientSecret"]).to_owned()),
            destination: None,
        })
        .await
        .unwrap();
    let e = app
        .pay(&ann, json!({"orderId": third.id, "couponCode": free}))
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (409, "This order has already been paid", vec![])
    );
    let stored = app
        .payment
        .store
        .payment_for_order(&third.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.provider_id, intent_id(&browser["clientSecret"]));
    assert_eq!(
        app.redemptions(&free).await,
        1,
        "only the first order used it"
    );
}
