//! The Stripe gateway against a local stand-in for the Stripe API (wiremock): the request it
//! sends, and how Stripe's answers map to outcomes and to the contract's envelope.

use crate::helpers::*;
use ms_payment::gateway::stripe::StripeGateway;
use ms_payment::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, IntentRequest, IntentState, OpenIntent,
    PaymentGateway,
};
use ms_payment::{GatewayConfig, PaymentConfig};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_51StuffMartLocalStandIn";

fn gateway(server: &MockServer) -> StripeGateway {
    StripeGateway::new(KEY, Some(&server.uri()), Duration::from_secs(5)).unwrap()
}

fn charge(order_id: &str, amount: i64, pm: &str) -> ChargeRequest {
    ChargeRequest {
        order_id: order_id.into(),
        user_id: "user-42".into(),
        amount_cents: amount,
        currency: "usd".into(),
        payment_method: pm.into(),
        coupon_code: None,
        intent_id: None,
        destination: None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The form fields of a request body.
fn form(req: &Request) -> HashMap<String, String> {
    std::str::from_utf8(&req.body)
        .unwrap()
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A PaymentIntent as Stripe returns it after a successful confirmation.
fn payment_intent(id: &str, amount: i64, order_id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": {"allow_redirects": "never", "enabled": true},
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": format!("{id}_secret_abc"),
        "confirmation_method": "automatic",
        "created": 1_790_000_000,
        "currency": "usd",
        "customer": null,
        "description": null,
        "last_payment_error": null,
        "latest_charge": "ch_3StuffMart",
        "livemode": false,
        "metadata": {"order_id": order_id, "user_id": "user-42"},
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": "pm_1StuffMartVisa",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": status,
        "transfer_data": null,
        "transfer_group": null
    })
}

/// `pi` after a declined attempt: Stripe puts it back to `requires_payment_method` with the
/// attempt's error.
fn declined(mut pi: Value) -> Value {
    pi["last_payment_error"] = json!({
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds."
    });
    pi
}

fn stripe_error(kind: &str, code: Option<&str>, extra: Value) -> Value {
    let mut e = json!({
        "type": kind,
        "message": "details that must not reach a client",
        "doc_url": "https://stripe.com/docs/error-codes",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_x"
    });
    if let Some(c) = code {
        e["code"] = json!(c);
    }
    if let Value::Object(m) = extra {
        for (k, v) in m {
            e[k] = v;
        }
    }
    json!({"error": e})
}

#[tokio::test]
async fn creates_and_confirms_a_payment_intent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("idempotency-key", "order-1"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_3Succeeded",
            1234,
            "order-1",
            "succeeded",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let out = gateway(&server)
        .charge(&charge("order-1", 1234, "pm_card_visa"))
        .await
        .unwrap();
    assert_eq!(
        out,
        ChargeOutcome::Succeeded {
            provider_id: "pi_3Succeeded".into()
        }
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let f = form(&reqs[0]);
    for (k, v) in [
        ("amount", "1234"),
        ("currency", "usd"),
        ("confirm", "true"),
        ("payment_method", "pm_card_visa"),
        ("metadata[order_id]", "order-1"),
        ("metadata[user_id]", "user-42"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
        ("error_on_requires_action", "true"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    server.verify().await;
}

#[tokio::test]
async fn card_errors_are_declines() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "order-declined"))
        .respond_with(ResponseTemplate::new(402).set_body_json(stripe_error(
            "card_error",
            Some("card_declined"),
            json!({
                "decline_code": "generic_decline",
                "charge": "ch_3Declined",
                "payment_intent": payment_intent("pi_3Declined", 500, "order-declined", "requires_payment_method"),
            }),
        )))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "order-cvc"))
        .respond_with(ResponseTemplate::new(402).set_body_json(stripe_error(
            "card_error",
            Some("incorrect_cvc"),
            json!({"param": "cvc"}),
        )))
        .mount(&server)
        .await;
    let g = gateway(&server);
    assert_eq!(
        g.charge(&charge("order-declined", 500, "pm_card_chargeDeclined"))
            .await
            .unwrap(),
        ChargeOutcome::Declined {
            reason: "generic_decline".into()
        }
    );
    assert_eq!(
        g.charge(&charge(
            "order-cvc",
            500,
            "pm_card_chargeDeclinedIncorrectCvc"
        ))
        .await
        .unwrap(),
        ChargeOutcome::Declined {
            reason: "incorrect_cvc".into()
        }
    );
}

#[tokio::test]
async fn other_stripe_errors_map_to_the_envelope() {
    let server = MockServer::start().await;
    let cases: Vec<(&str, u16, Value)> = vec![
        ("o-500", 500, stripe_error("api_error", None, json!({}))),
        (
            "o-429",
            429,
            stripe_error("invalid_request_error", Some("rate_limit"), json!({})),
        ),
        (
            "o-401",
            401,
            stripe_error("invalid_request_error", None, json!({})),
        ),
        (
            "o-pm",
            400,
            stripe_error(
                "invalid_request_error",
                Some("resource_missing"),
                json!({"param": "payment_method"}),
            ),
        ),
        (
            "o-small",
            400,
            stripe_error(
                "invalid_request_error",
                Some("amount_too_small"),
                json!({"param": "amount"}),
            ),
        ),
        (
            "o-idem",
            400,
            stripe_error("idempotency_error", None, json!({})),
        ),
    ];
    for (key, status, body) in &cases {
        Mock::given(method("POST"))
            .and(path("/v1/payment_intents"))
            .and(header("idempotency-key", *key))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body.clone()))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "o-html"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .mount(&server)
        .await;
    let g = gateway(&server);
    let outcome = |key: &'static str| {
        let g = g.clone();
        async move { g.charge(&charge(key, 900, "pm_card_visa")).await }
    };
    let envelope = |r: Result<ChargeOutcome, GatewayError>| {
        let e = r.unwrap_err().to_api();
        (
            e.status,
            e.first_message().to_owned(),
            fields(&e).iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
    };
    let generic = |status: u16, msg: &str| (status, msg.to_owned(), Vec::<String>::new());

    let r = outcome("o-500").await;
    assert!(matches!(r, Err(GatewayError::Unavailable(_))), "{r:?}");
    assert_eq!(
        envelope(r),
        generic(503, "Service unavailable, please try again")
    );
    assert_eq!(
        envelope(outcome("o-429").await),
        generic(503, "Service unavailable, please try again")
    );
    let r = outcome("o-401").await;
    assert!(matches!(r, Err(GatewayError::Failed(_))), "{r:?}");
    assert_eq!(envelope(r), generic(500, "Something went wrong"));
    assert_eq!(
        envelope(outcome("o-pm").await),
        (
            400,
            "Unknown payment method".to_owned(),
            vec!["paymentMethod".to_owned()]
        )
    );
    assert_eq!(envelope(outcome("o-small").await).0, 400);
    assert_eq!(envelope(outcome("o-idem").await).0, 409);
    assert_eq!(
        envelope(outcome("o-html").await),
        generic(500, "Something went wrong")
    );

    // Nobody listening: a network error is a 503.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let down = StripeGateway::new(
        KEY,
        Some(&format!("http://127.0.0.1:{closed}")),
        Duration::from_secs(2),
    )
    .unwrap();
    let r = down.charge(&charge("o-down", 900, "pm_card_visa")).await;
    assert!(matches!(r, Err(GatewayError::Unavailable(_))), "{r:?}");
}

/// The whole service configured for Stripe (`STRIPE_API_BASE` at the stand-in): a 30% coupon
/// reaches Stripe as the reduced amount with the order id as idempotency key.
#[tokio::test]
async fn the_service_charges_through_stripe() {
    let server = MockServer::start().await;
    let gw_cfg = GatewayConfig::Stripe {
        secret_key: KEY.into(),
        api_base: Some(server.uri()),
        timeout: Duration::from_secs(5),
    };
    let gw = gw_cfg.build().unwrap();
    let app = spawn_with(|_: &mut PaymentConfig| {}, gw, None).await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let coupon = app.create_coupon(&admin, json!({"percentOff": 30})).await;
    let order = app.order_for(&ann, 2000).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", order.id.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_3ViaStripe",
            1400,
            &order.id,
            "succeeded",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let p = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": coupon["code"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        (p["amountCents"].as_i64(), p["providerId"].as_str()),
        (Some(1400), Some("pi_3ViaStripe"))
    );
    let reqs = server.received_requests().await.unwrap();
    let f = form(&reqs[0]);
    assert_eq!(f["amount"], "1400");
    assert_eq!(f["metadata[order_id]"], order.id);
    assert_eq!(f["metadata[user_id]"], ann.id);

    // A decline through Stripe is the contract's 402.
    let order2 = app.order_for(&ann, 800).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", order2.id.as_str()))
        .respond_with(ResponseTemplate::new(402).set_body_json(stripe_error(
            "card_error",
            Some("card_declined"),
            json!({"decline_code": "insufficient_funds"}),
        )))
        .mount(&server)
        .await;
    let e = app
        .pay(&ann, json!({"orderId": order2.id, "paymentMethod": "pm_card_chargeDeclinedInsufficientFunds"}))
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (402, "Your card was declined", vec![]));
    server.verify().await;
    app.done().await;
}

/// A Refund as Stripe returns it.
fn refund_object(pi: &str, order_id: &str, status: &str) -> Value {
    json!({
        "id": "re_3StuffMart",
        "object": "refund",
        "amount": 2500,
        "balance_transaction": null,
        "charge": "ch_3StuffMart",
        "created": 1_790_000_100,
        "currency": "usd",
        "metadata": {"order_id": order_id},
        "payment_intent": pi,
        "reason": null,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": status,
        "transfer_reversal": null
    })
}

#[tokio::test]
async fn a_refund_posts_one_refund_of_the_payment_intent_keyed_by_the_order() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("Idempotency-Key", "refund-order-7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(refund_object(
            "pi_3StuffMart",
            "order-7",
            "succeeded",
        )))
        .expect(1)
        .mount(&server)
        .await;
    gateway(&server)
        .refund("pi_3StuffMart", "order-7", false)
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let sent = form(&requests[0]);
    assert_eq!(sent["payment_intent"], "pi_3StuffMart");
    assert_eq!(sent["metadata[order_id]"], "order-7");
}

#[tokio::test]
async fn a_failed_refund_is_an_error_and_an_already_refunded_charge_is_done() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("Idempotency-Key", "refund-failed"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(refund_object("pi_1", "failed", "failed")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("Idempotency-Key", "refund-twice"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "invalid_request_error",
            "code": "charge_already_refunded",
            "message": "Charge ch_1 has already been refunded."
        }})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .and(header("Idempotency-Key", "refund-down"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": {
            "type": "api_error",
            "message": "Try again later"
        }})))
        .mount(&server)
        .await;
    let g = gateway(&server);
    assert!(matches!(
        g.refund("pi_1", "failed", false).await,
        Err(GatewayError::Failed(_))
    ));
    g.refund("pi_2", "twice", false).await.unwrap();
    let down = g.refund("pi_3", "down", false).await.unwrap_err();
    assert_eq!(down.to_api().status, 503);
}

/// Stripe's answer to `GET /v1/payment_intents/search`.
fn search_result(intents: Vec<Value>) -> Value {
    json!({"object": "search_result", "url": "/v1/payment_intents/search",
        "has_more": false, "next_page": null, "data": intents})
}

#[tokio::test]
async fn a_lost_charge_is_found_by_its_order_in_stripe_s_search() {
    let server = MockServer::start().await;
    let found = |order: &str, intents: Vec<Value>| {
        Mock::given(method("GET"))
            .and(path("/v1/payment_intents/search"))
            .and(wiremock::matchers::query_param(
                "query",
                format!("metadata['order_id']:'{order}'"),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(search_result(intents)))
    };
    found(
        "order-paid",
        vec![
            payment_intent("pi_failed", 900, "order-paid", "requires_payment_method"),
            payment_intent("pi_paid", 900, "order-paid", "succeeded"),
        ],
    )
    .mount(&server)
    .await;
    found(
        "order-slow",
        vec![payment_intent("pi_slow", 900, "order-slow", "processing")],
    )
    .mount(&server)
    .await;
    found(
        "order-declined",
        vec![declined(payment_intent(
            "pi_no",
            900,
            "order-declined",
            "requires_payment_method",
        ))],
    )
    .mount(&server)
    .await;
    // Intents that charged nothing: one waiting for its buyer, one cancelled.
    found(
        "order-none",
        vec![
            payment_intent("pi_open", 900, "order-none", "requires_payment_method"),
            payment_intent("pi_gone", 900, "order-none", "canceled"),
        ],
    )
    .mount(&server)
    .await;
    let g = gateway(&server);
    assert_eq!(
        g.find_charge("order-paid").await.unwrap(),
        Some(ChargeOutcome::Succeeded {
            provider_id: "pi_paid".into()
        })
    );
    assert_eq!(
        g.find_charge("order-slow").await.unwrap(),
        Some(ChargeOutcome::Processing {
            provider_id: "pi_slow".into()
        })
    );
    assert!(matches!(
        g.find_charge("order-declined").await.unwrap(),
        Some(ChargeOutcome::Declined { .. })
    ));
    assert_eq!(g.find_charge("order-none").await.unwrap(), None);
    // An id that would break out of the query string is not sent.
    assert_eq!(
        g.find_charge("x' OR status:'succeeded").await.unwrap(),
        None
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
}

#[tokio::test]
async fn opens_an_intent_for_the_browser_without_confirming_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("idempotency-key", "intent-order-7-abc"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_3Open",
            1500,
            "order-7",
            "requires_payment_method",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let opened = gateway(&server)
        .open_intent(&IntentRequest {
            order_id: "order-7".into(),
            user_id: "user-42".into(),
            amount_cents: 1500,
            currency: "eur".into(),
            coupon_code: Some("HALF".into()),
            idempotency_key: "intent-order-7-abc".into(),
            destination: None,
        })
        .await
        .unwrap();
    assert_eq!(
        opened,
        OpenIntent {
            id: "pi_3Open".into(),
            client_secret: "pi_3Open_secret_abc".into()
        }
    );
    let reqs = server.received_requests().await.unwrap();
    let f = form(&reqs[0]);
    for (k, v) in [
        ("amount", "1500"),
        ("currency", "eur"),
        ("metadata[order_id]", "order-7"),
        ("metadata[coupon_code]", "HALF"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    for absent in ["confirm", "payment_method"] {
        assert!(!f.contains_key(absent), "{absent} in {f:?}");
    }
    server.verify().await;
}

#[tokio::test]
async fn an_open_intent_is_confirmed_and_one_confirmed_before_answers_its_end() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_open/confirm"))
        .and(header("idempotency-key", "confirm-pi_open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_open",
            1500,
            "order-7",
            "succeeded",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_paid/confirm"))
        .respond_with(ResponseTemplate::new(400).set_body_json(stripe_error(
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            json!({}),
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_paid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_paid",
            1500,
            "order-8",
            "succeeded",
        )))
        .mount(&server)
        .await;
    let g = gateway(&server);
    let mut req = charge("order-7", 1500, "pm_card_visa");
    req.intent_id = Some("pi_open".into());
    assert_eq!(
        g.charge(&req).await.unwrap(),
        ChargeOutcome::Succeeded {
            provider_id: "pi_open".into()
        }
    );
    let reqs = server.received_requests().await.unwrap();
    let f = form(&reqs[0]);
    assert_eq!(
        (
            f.get("payment_method").map(String::as_str),
            f.get("error_on_requires_action").map(String::as_str)
        ),
        (Some("pm_card_visa"), Some("true"))
    );
    assert!(
        !f.contains_key("amount"),
        "the amount is the intent's: {f:?}"
    );
    req.order_id = "order-8".into();
    req.intent_id = Some("pi_paid".into());
    assert_eq!(
        g.charge(&req).await.unwrap(),
        ChargeOutcome::Succeeded {
            provider_id: "pi_paid".into()
        }
    );
    server.verify().await;
}

#[tokio::test]
async fn cancelling_an_intent_says_what_it_became() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_open/cancel"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(payment_intent("pi_open", 1500, "order-7", "canceled")),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_paid/cancel"))
        .respond_with(ResponseTemplate::new(400).set_body_json(stripe_error(
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            json!({}),
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_paid"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent(
            "pi_paid",
            1500,
            "order-8",
            "succeeded",
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_declined"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(declined(payment_intent(
                "pi_declined",
                1500,
                "order-9",
                "requires_payment_method",
            ))),
        )
        .mount(&server)
        .await;
    let missing = ResponseTemplate::new(404).set_body_json(stripe_error(
        "invalid_request_error",
        Some("resource_missing"),
        json!({"param": "intent"}),
    ));
    Mock::given(path("/v1/payment_intents/pi_gone/cancel"))
        .respond_with(missing.clone())
        .mount(&server)
        .await;
    Mock::given(path("/v1/payment_intents/pi_gone"))
        .respond_with(missing)
        .mount(&server)
        .await;
    let g = gateway(&server);
    assert_eq!(
        g.cancel_intent("pi_open").await.unwrap(),
        IntentState::Canceled
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        form(&reqs[0])
            .get("cancellation_reason")
            .map(String::as_str),
        Some("abandoned")
    );
    assert_eq!(
        g.cancel_intent("pi_paid").await.unwrap(),
        IntentState::Succeeded
    );
    assert_eq!(
        g.cancel_intent("pi_gone").await.unwrap(),
        IntentState::Canceled
    );
    assert_eq!(g.intent("pi_gone").await.unwrap(), None);
    let view = g.intent("pi_declined").await.unwrap().unwrap();
    assert_eq!(
        (view.state, view.client_secret.as_str(), view.amount_cents),
        (
            IntentState::Declined {
                reason: "insufficient_funds".into()
            },
            "pi_declined_secret_abc",
            1500
        )
    );
    server.verify().await;
}
