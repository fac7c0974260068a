//! Paying through the router: a card payment sells the stuff (seen live), a decline
//! releases it, coupons from an admin, and the ownership rules.

use crate::{T, ask, err};
use ms_e2e::{Gateway, System, SystemOptions};
use ms_payment::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, IntentRequest, IntentState, IntentView, OpenIntent,
    PaymentGateway, builtin::TestGateway,
};
use ms_testkit::SioClient;
use serde_json::{Value, json};
use std::sync::Arc;

struct Shop {
    sys: System,
    seller: SioClient,
    buyer: SioClient,
    viewer: SioClient,
}

async fn shop(opts: SystemOptions) -> Shop {
    let sys = System::start(opts).await.unwrap();
    let (st, _) = sys.signup("seller@example.com").await.unwrap();
    let (bt, _) = sys.signup("buyer@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&st)).await.unwrap();
    let buyer = sys.socket(0, Some(&bt)).await.unwrap();
    let viewer = sys.socket(0, None).await.unwrap();
    Shop {
        sys,
        seller,
        buyer,
        viewer,
    }
}

/// A shop whose `boss@example.com` is an admin, and that admin's socket.
async fn shop_with_admin() -> (Shop, SioClient) {
    let s = shop(SystemOptions {
        admin_emails: "boss@example.com".into(),
        ..SystemOptions::default()
    })
    .await;
    let (at, _) = s.sys.signup("boss@example.com").await.unwrap();
    let admin = s.sys.socket(0, Some(&at)).await.unwrap();
    (s, admin)
}

impl Shop {
    async fn ordered(&self, price: i64) -> (Value, Value) {
        let stuff = ask(
            &self.seller,
            "stuff:create",
            json!({"secretNote": "the goods", "title": "Thing", "priceCents": price}),
        )
        .await["data"]
            .clone();
        let order = ask(&self.buyer, "order:create", json!({"stuffId": stuff["id"]})).await;
        assert_eq!(order["data"]["status"], "created", "{order}");
        (stuff, order["data"].clone())
    }
}

#[tokio::test]
async fn card_payment_completes_the_order_and_sells_the_stuff_live() {
    let s = shop(SystemOptions::default()).await;
    let (stuff, order) = s.ordered(1500).await;
    let paid = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "paymentMethod": "pm_card_visa"}),
    )
    .await;
    let p = &paid["data"];
    assert_eq!(
        (p["orderId"].clone(), p["amountCents"].as_i64()),
        (order["id"].clone(), Some(1500)),
        "{paid}"
    );
    assert!(p["providerId"].as_str().is_some_and(|id| !id.is_empty()));
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "sold"
        })
        .await
        .unwrap();
    s.buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == order["id"] && o["status"] == "complete"
        })
        .await
        .unwrap();
    let again = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(err(&again).0, 409);
    assert_eq!(
        ask(&s.buyer, "order:get", json!({"id": order["id"]})).await["data"]["status"],
        "complete"
    );
    s.sys.stop().await;
}

#[tokio::test]
async fn a_declined_card_cancels_the_order_and_releases_the_stuff() {
    let s = shop(SystemOptions::default()).await;
    let (stuff, order) = s.ordered(800).await;
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "reserved"
        })
        .await
        .unwrap();
    let declined = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "paymentMethod": "pm_card_chargeDeclined"}),
    )
    .await;
    assert_eq!(err(&declined), (402, "Your card was declined"));
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "available"
        })
        .await
        .unwrap();
    s.buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == order["id"] && o["status"] == "cancelled"
        })
        .await
        .unwrap();
    let late = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(err(&late), (409, "Cannot pay for a cancelled order"));
    s.sys.stop().await;
}

#[tokio::test]
async fn only_the_owner_pays_and_unknown_orders_are_404() {
    let s = shop(SystemOptions::default()).await;
    let (_, order) = s.ordered(500).await;
    let (ot, _) = s.sys.signup("other@example.com").await.unwrap();
    let other = s.sys.socket(0, Some(&ot)).await.unwrap();
    assert_eq!(
        err(&ask(
            &other,
            "payment:create",
            json!({"orderId": order["id"], "paymentMethod": "pm_card_visa"})
        )
        .await)
        .0,
        403
    );
    assert_eq!(
        err(&ask(
            &s.buyer,
            "payment:create",
            json!({"orderId": "nope", "paymentMethod": "pm_card_visa"})
        )
        .await)
        .0,
        404
    );
    assert_eq!(
        err(&ask(&s.viewer, "payment:create", json!({"orderId": order["id"]})).await).0,
        401
    );
    s.sys.stop().await;
}

#[tokio::test]
async fn admin_coupons_and_a_free_checkout() {
    let (s, admin) = shop_with_admin().await;
    assert_eq!(
        err(&ask(&s.buyer, "coupon:create", json!({"percentOff": 100})).await).0,
        403
    );
    assert_eq!(err(&ask(&s.buyer, "coupon:list", json!({})).await).0, 403);
    let coupon = ask(
        &admin,
        "coupon:create",
        json!({"percentOff": 100, "maxRedemptions": 1}),
    )
    .await["data"]
        .clone();
    let code = coupon["code"].as_str().unwrap().to_owned();
    assert!(code.len() >= 10);
    assert_eq!(
        ask(&admin, "coupon:list", json!({})).await["data"][0]["code"].as_str(),
        Some(code.as_str())
    );

    let (stuff, order) = s.ordered(2500).await;
    let paid = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "couponCode": code}),
    )
    .await;
    assert_eq!(
        (
            paid["data"]["amountCents"].as_i64(),
            paid["data"]["couponCode"].as_str()
        ),
        (Some(0), Some(code.as_str())),
        "{paid}"
    );
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "sold"
        })
        .await
        .unwrap();
    // Exhausted now.
    let (_, order2) = s.ordered(100).await;
    let refused = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order2["id"], "couponCode": code}),
    )
    .await;
    assert_eq!(
        (err(&refused).0, refused["errors"][0]["field"].as_str()),
        (400, Some("couponCode"))
    );
    s.sys.stop().await;
}

/// The built-in gateway, answering only after `delay` (a slow card network).
struct SlowGateway {
    delay: std::time::Duration,
    inner: TestGateway,
}

#[async_trait::async_trait]
impl PaymentGateway for SlowGateway {
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        tokio::time::sleep(self.delay).await;
        self.inner.charge(req).await
    }
    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError> {
        self.inner.refund(provider_id, order_id, destination).await
    }
    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        self.inner.find_charge(order_id).await
    }
    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError> {
        self.inner.open_intent(req).await
    }
    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError> {
        self.inner.intent(id).await
    }
    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError> {
        self.inner.cancel_intent(id).await
    }
}

#[tokio::test]
async fn the_router_waits_for_a_charge_longer_than_its_usual_wait() {
    // The router gives other actions 2 s (sign-ups hash passwords in that time even on a
    // busy machine); the card network takes twice as long.
    let s = shop(SystemOptions {
        rpc_timeout: Some(std::time::Duration::from_secs(2)),
        gateway: Some(Gateway(Arc::new(SlowGateway {
            delay: std::time::Duration::from_secs(4),
            inner: TestGateway::default(),
        }))),
        ..SystemOptions::default()
    })
    .await;
    let (_, order) = s.ordered(1500).await;
    let paid = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(paid["data"]["amountCents"], 1500, "not a 503: {paid}");
    s.sys.stop().await;
}

#[tokio::test]
async fn coupon_check_previews_what_paying_charges() {
    let (s, admin) = shop_with_admin().await;
    let coupon = |pct: i64| {
        let admin = &admin;
        async move {
            ask(admin, "coupon:create", json!({"percentOff": pct})).await["data"]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (thirty, most, all) = (coupon(30).await, coupon(97).await, coupon(100).await);
    let (_, order) = s.ordered(1500).await;
    let check = |code: String| {
        let (buyer, id) = (&s.buyer, order["id"].clone());
        async move {
            ask(
                buyer,
                "coupon:check",
                json!({"orderId": id, "couponCode": code}),
            )
            .await
        }
    };

    let preview = check(thirty.to_lowercase()).await;
    assert_eq!(
        preview["data"],
        json!({"amountCents": 1050, "discountCents": 450}),
        "{preview}"
    );
    assert_eq!(
        check(all.clone()).await["data"],
        json!({"amountCents": 0, "discountCents": 1500})
    );
    // 45 cents left: more than nothing, less than a card can be charged.
    let below = check(most.clone()).await;
    assert_eq!(
        (
            err(&below).0,
            below["errors"][0]["field"].as_str(),
            below["errors"][0]["message"].as_str()
        ),
        (
            400,
            Some("couponCode"),
            Some("This coupon would leave less than the smallest charge to pay")
        ),
        "{below}"
    );
    let unknown = check("NOPE123".into()).await;
    assert_eq!(
        (err(&unknown).0, unknown["errors"][0]["message"].as_str()),
        (400, Some("Coupon is not valid"))
    );
    // Someone else's order.
    let other = ask(
        &s.seller,
        "coupon:check",
        json!({"orderId": order["id"], "couponCode": thirty}),
    )
    .await;
    assert_eq!(err(&other).0, 403, "{other}");
    // Paying with the coupon that leaves too little is refused the same way, and with
    // the previewed one charges what was shown.
    let refused = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "couponCode": most, "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(refused["errors"], below["errors"]);
    let paid = ask(
        &s.buyer,
        "payment:create",
        json!({"orderId": order["id"], "couponCode": thirty, "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(paid["data"]["amountCents"], 1050, "{paid}");
    // A paid order has nothing left to preview.
    assert_eq!(err(&check(all).await).0, 409);
    s.sys.stop().await;
}

#[tokio::test]
async fn the_web_client_reads_the_currency_from_the_server() {
    // Not the default, so a hard-coded answer cannot pass.
    let s = shop(SystemOptions {
        currency: Some(ms_common::money::Currency::parse("SEK").unwrap()),
        ..SystemOptions::default()
    })
    .await;
    let r = reqwest::get(format!("{}/api/config", s.sys.url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"currency": "sek"}));
    s.sys.stop().await;
}

#[tokio::test]
async fn stripe_s_webhook_completes_an_order_through_the_router() {
    const SECRET: &str = "whsec_e2e";
    let s = shop(SystemOptions {
        webhook_secret: Some(SECRET.into()),
        ..SystemOptions::default()
    })
    .await;
    let (stuff, order) = s.ordered(2000).await;
    let url = format!("{}/api/payments/stripe-webhook", s.sys.url());
    let event = json!({
        "id": "evt_e2e", "object": "event", "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_e2e", "object": "payment_intent", "amount": 2000,
            "amount_received": 2000, "currency": "eur", "metadata": {"order_id": order["id"]}}}
    })
    .to_string();
    let http = reqwest::Client::new();
    let post = |signature: Option<String>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(event.clone());
        if let Some(sig) = signature {
            req = req.header("stripe-signature", sig);
        }
        req.send()
    };
    // No signature, and one made with another secret: refused in the contract's envelope.
    let now = chrono::Utc::now().timestamp();
    let forged = ms_payment::webhook::WebhookSecret::new("whsec_forged")
        .unwrap()
        .sign(event.as_bytes(), now);
    for sig in [None, Some(forged)] {
        let r = post(sig).await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["errors"][0]["message"], "Invalid signature", "{body}");
    }
    // Stripe's own: the order completes and the buyer sees it live.
    let signed = ms_payment::webhook::WebhookSecret::new(SECRET)
        .unwrap()
        .sign(event.as_bytes(), now);
    let r = post(Some(signed.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"received": true}));
    s.buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == order["id"] && o["status"] == "complete"
        })
        .await
        .unwrap();
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "sold"
        })
        .await
        .unwrap();
    // Delivered again: answered, nothing done twice.
    let again = post(Some(signed)).await.unwrap();
    assert_eq!(again.status(), 200);
    s.sys.stop().await;
}
