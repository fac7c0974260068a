//! Paying through the router: a card payment sells the stuff (seen live), a decline
//! releases it, coupons from an admin, and the ownership rules.

use crate::{T, ask, err};
use ms_e2e::{System, SystemOptions};
use ms_testkit::SioClient;
use serde_json::{Value, json};

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
    let s = shop(SystemOptions {
        admin_emails: "boss@example.com".into(),
        ..SystemOptions::default()
    })
    .await;
    let (at, _) = s.sys.signup("boss@example.com").await.unwrap();
    let admin = s.sys.socket(0, Some(&at)).await.unwrap();
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
