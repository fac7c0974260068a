//! Coupons: admin-only creation and listing, discounts, and atomic bounded redemption.

use crate::helpers::*;
use ms_common::events::Event;
use ms_common::messaging::Service;
use ms_payment::domain::CODE_ALPHABET;
use ms_payment::store::CouponRow;
use serde_json::{Value, json};

async fn redemptions(app: &App, code: &str) -> i64 {
    app.payment
        .store
        .coupon(code)
        .await
        .unwrap()
        .unwrap()
        .redemptions
}

#[tokio::test]
async fn admins_create_and_list_coupons() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;

    let e = app
        .call(
            Service::Payment,
            "coupon:create",
            None,
            json!({"percentOff": 10}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (401, "Not authorized", vec![]));
    for action in ["coupon:create", "coupon:list"] {
        let e = app
            .call(
                Service::Payment,
                action,
                Some(&ann.token),
                json!({"percentOff": 10}),
            )
            .await
            .unwrap_err();
        assert_eq!(summary(&e), (403, "Admins only", vec![]), "{action}");
    }

    let e = app
        .call(
            Service::Payment,
            "coupon:create",
            Some(&admin.token),
            json!({"percentOff": 0, "maxRedemptions": 0, "expiresAt": "2001-01-01T00:00:00Z"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(
        fields(&e),
        vec!["percentOff", "maxRedemptions", "expiresAt"]
    );
    for bad in [
        json!({}),
        json!({"percentOff": 101}),
        json!({"percentOff": 2.5}),
    ] {
        let e = app
            .call(
                Service::Payment,
                "coupon:create",
                Some(&admin.token),
                bad.clone(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            summary(&e),
            (
                400,
                "Percent off must be a whole number between 1 and 100",
                vec!["percentOff"]
            ),
            "{bad}"
        );
    }

    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let first = app
        .create_coupon(
            &admin,
            json!({"percentOff": 30, "maxRedemptions": 5, "expiresAt": tomorrow.to_rfc3339()}),
        )
        .await;
    let mut keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "code",
            "createdBy",
            "expiresAt",
            "maxRedemptions",
            "percentOff",
            "redemptions"
        ]
    );
    let code = first["code"].as_str().unwrap();
    assert_eq!(code.len(), 12);
    assert!(code.bytes().all(|c| CODE_ALPHABET.contains(&c)), "{code}");
    assert_eq!(
        (
            &first["percentOff"],
            &first["maxRedemptions"],
            &first["redemptions"],
            &first["createdBy"]
        ),
        (&json!(30), &json!(5), &json!(0), &json!(admin.id))
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(first["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!(expires.timestamp(), tomorrow.timestamp());

    let second = app.create_coupon(&admin, json!({"percentOff": 100})).await;
    assert!(second["maxRedemptions"].is_null() && second["expiresAt"].is_null());
    assert_ne!(second["code"], first["code"]);

    let list = app
        .call(
            Service::Payment,
            "coupon:list",
            Some(&admin.token),
            json!({}),
        )
        .await
        .unwrap();
    assert_eq!(list, Value::Array(vec![second, first]), "newest first");
    app.done().await;
}

#[tokio::test]
async fn a_full_coupon_pays_without_the_gateway() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let coupon = app
        .create_coupon(&admin, json!({"percentOff": 100, "maxRedemptions": 3}))
        .await;
    let code = coupon["code"].as_str().unwrap();
    let order = app.order_for(&ann, 4200).await;
    // Typed in lower case, no payment method.
    let p = app
        .pay(
            &ann,
            json!({"orderId": order.id, "couponCode": code.to_lowercase()}),
        )
        .await
        .unwrap();
    assert_eq!(p["amountCents"], 0);
    assert_eq!(p["couponCode"], code);
    assert_eq!(p["providerId"], format!("coupon:{code}"));
    assert!(app.gateway.calls().is_empty(), "no gateway call");
    match app.next_event().await.event {
        Event::PaymentCreated(rec) => {
            assert_eq!(
                (rec.amount_cents, rec.coupon_code.as_deref()),
                (0, Some(code))
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(redemptions(&app, code).await, 1);
    // A payment method sent anyway (the web client always sends one) is not charged.
    let order2 = app.order_for(&ann, 300).await;
    let p = app
        .pay(
            &ann,
            json!({"orderId": order2.id, "couponCode": code, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    assert_eq!(p["amountCents"], 0);
    assert!(app.gateway.calls().is_empty());
    app.done().await;
}

#[tokio::test]
async fn a_partial_coupon_reduces_what_the_gateway_charges() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let coupon = app.create_coupon(&admin, json!({"percentOff": 30})).await;
    let code = coupon["code"].as_str().unwrap();
    let order = app.order_for(&ann, 999).await;
    let p = app
        .pay(
            &ann,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": code}),
        )
        .await
        .unwrap();
    // 30% of 999 is 299.7: the discount rounds down to 299.
    assert_eq!(p["amountCents"], 700);
    assert_eq!(p["couponCode"], code);
    let calls = app.gateway.calls();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(
        (
            c.order_id.as_str(),
            c.user_id.as_str(),
            c.amount_cents,
            c.currency.as_str(),
            c.payment_method.as_str()
        ),
        (
            order.id.as_str(),
            ann.id.as_str(),
            700,
            "eur",
            "pm_card_visa"
        )
    );
    assert_eq!(redemptions(&app, code).await, 1);
    app.done().await;
}

#[tokio::test]
async fn refused_coupons_and_redemptions_given_back() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ann = app.signup("ann@example.com").await;
    let bob = app.signup("bob@example.com").await;

    // Unknown and malformed codes.
    let order = app.order_for(&ann, 1000).await;
    for bad in [json!("NOPE"), json!("not a code"), json!(42)] {
        let e = app
            .pay(
                &ann,
                json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": bad}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            summary(&e),
            (400, "Coupon is not valid", vec!["couponCode"]),
            "{bad}"
        );
    }

    // Exhausted: one redemption, used by Ann.
    let once = app
        .create_coupon(&admin, json!({"percentOff": 50, "maxRedemptions": 1}))
        .await;
    let once = once["code"].as_str().unwrap();
    app.pay(
        &ann,
        json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": once}),
    )
    .await
    .unwrap();
    let bobs = app.order_for(&bob, 1000).await;
    let e = app
        .pay(
            &bob,
            json!({"orderId": bobs.id, "paymentMethod": "pm_card_visa", "couponCode": once}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        summary(&e),
        (400, "Coupon has been fully redeemed", vec!["couponCode"])
    );

    // Expired (written directly: the API only accepts future expiries).
    app.payment
        .store
        .create_coupon(&CouponRow {
            code: "OLDCOUPON".into(),
            percent_off: 20,
            max_redemptions: None,
            redemptions: 0,
            expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
            created_by: admin.id.clone(),
            created_at: ms_common::time::now(),
        })
        .await
        .unwrap();
    let e = app
        .pay(
            &bob,
            json!({"orderId": bobs.id, "paymentMethod": "pm_card_visa", "couponCode": "oldcoupon"}),
        )
        .await
        .unwrap_err();
    assert_eq!(summary(&e), (400, "Coupon has expired", vec!["couponCode"]));

    // A charge that fails gives its redemption back: a refused payment method…
    let twice = app
        .create_coupon(&admin, json!({"percentOff": 10, "maxRedemptions": 1}))
        .await;
    let twice = twice["code"].as_str().unwrap();
    let e = app
        .pay(
            &bob,
            json!({"orderId": bobs.id, "paymentMethod": "card-1234", "couponCode": twice}),
        )
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["paymentMethod"]);
    assert_eq!(redemptions(&app, twice).await, 0);
    // …and a decline.
    let e = app
        .pay(
            &bob,
            json!({"orderId": bobs.id, "paymentMethod": "pm_card_chargeDeclined", "couponCode": twice}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 402);
    assert_eq!(redemptions(&app, twice).await, 0);
    // So another buyer can still use it.
    let third = app.signup("cat@example.com").await;
    let cats = app.order_for(&third, 1000).await;
    let p = app
        .pay(
            &third,
            json!({"orderId": cats.id, "paymentMethod": "pm_card_visa", "couponCode": twice}),
        )
        .await
        .unwrap();
    assert_eq!(p["amountCents"], 900);
    assert_eq!(redemptions(&app, twice).await, 1);
    app.done().await;
}

#[tokio::test]
async fn the_last_redemption_goes_to_exactly_one_buyer() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let coupon = app
        .create_coupon(&admin, json!({"percentOff": 100, "maxRedemptions": 1}))
        .await;
    let code = coupon["code"].as_str().unwrap().to_owned();
    let mut buyers = Vec::new();
    for name in ["ann", "bob", "cat", "dan"] {
        let who = app.signup(&format!("{name}@example.com")).await;
        let order = app.order_for(&who, 1500).await;
        app.replica_at(&order.id, 1).await;
        buyers.push((who, order));
    }
    let attempts = buyers.iter().map(|(who, order)| {
        app.pay(
            who,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa", "couponCode": code}),
        )
    });
    let results = futures_util::future::join_all(attempts).await;
    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        let e = r.as_ref().unwrap_err();
        assert_eq!(
            summary(e),
            (400, "Coupon has been fully redeemed", vec!["couponCode"])
        );
    }
    assert_eq!(redemptions(&app, &code).await, 1);
    assert!(app.gateway.calls().is_empty());
    app.done().await;
}
