//! Refunds through the routers: an admin's `payment:refund` ends the delivery and frees the
//! stuff (seen live by the buyer and every viewer), only admins may refund, refunding
//! twice answers the same payment, and a payment that lands after the stuff went to
//! someone else is refunded by itself.

use crate::{T, ask, err};
use ms_common::events::{Event, EventEnvelope, PaymentRecord};
use ms_e2e::{System, SystemOptions};
use ms_payment::store::{PaymentRow, Payout};
use ms_testkit::SioClient;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN: &str = "admin@example.com";

/// A seller's deliverable stuff, a buyer, another buyer, an admin and an anonymous viewer.
struct Shop {
    sys: System,
    buyer: SioClient,
    other: SioClient,
    admin: SioClient,
    viewer: SioClient,
    stuff: String,
}

async fn shop(hold: Duration) -> Shop {
    let sys = System::start(SystemOptions {
        hold,
        admin_emails: ADMIN.into(),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (st, _) = sys.signup("seller@example.com").await.unwrap();
    let (bt, _) = sys.signup("buyer@example.com").await.unwrap();
    let (ot, _) = sys.signup("other@example.com").await.unwrap();
    let (at, _) = sys.signup(ADMIN).await.unwrap();
    let seller = sys.socket(0, Some(&st)).await.unwrap();
    let buyer = sys.socket(0, Some(&bt)).await.unwrap();
    let other = sys.socket(0, Some(&ot)).await.unwrap();
    let admin = sys.socket(0, Some(&at)).await.unwrap();
    let viewer = sys.socket(0, None).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Thing", "priceCents": 900}),
    )
    .await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Shop {
        sys,
        buyer,
        other,
        admin,
        viewer,
        stuff,
    }
}

impl Shop {
    /// `who` orders the stuff; the order's id. ms-order's replica of the stuff may lag
    /// behind the release the test just saw, so a 409 is tried again for a while.
    async fn order(&self, who: &SioClient) -> String {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let order = ask(who, "order:create", json!({"stuffId": self.stuff})).await;
            if order["data"]["status"] == "created" {
                return order["data"]["id"].as_str().unwrap().to_owned();
            }
            assert_eq!(err(&order).0, 409, "{order}");
            assert!(tokio::time::Instant::now() < deadline, "{order}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `who` pays `order_id` with the test card and sees it complete.
    async fn pay(&self, who: &SioClient, order_id: &str) -> Value {
        let paid = ask(
            who,
            "payment:create",
            json!({"orderId": order_id, "paymentMethod": "pm_card_visa"}),
        )
        .await;
        assert!(paid["data"]["id"].is_string(), "{paid}");
        who.wait_for("order:updated", T, |o| {
            o["id"] == order_id && o["status"] == "complete"
        })
        .await
        .unwrap();
        paid["data"].clone()
    }
}

#[tokio::test]
async fn an_admin_refund_ends_the_delivery_frees_the_stuff_and_answers_the_same_payment_twice() {
    let s = shop(Duration::from_secs(600)).await;
    let order = s.order(&s.buyer).await;
    let paid = s.pay(&s.buyer, &order).await;
    assert!(paid["refundedAt"].is_null(), "{paid}");
    let delivered = ask(&s.buyer, "delivery:get", json!({"orderId": order})).await;
    assert_eq!(delivered["data"]["secretNote"], "the goods", "{delivered}");

    // Only admins; unknown orders are 404.
    let refused = ask(&s.buyer, "payment:refund", json!({"orderId": order})).await;
    assert_eq!(err(&refused).0, 403, "{refused}");
    let unknown = ask(
        &s.admin,
        "payment:refund",
        json!({"orderId": "no-such-order"}),
    )
    .await;
    assert_eq!(err(&unknown), (404, "Order not found"));

    let refunded = ask(&s.admin, "payment:refund", json!({"orderId": order})).await;
    let payment = refunded["data"].clone();
    assert_eq!(payment["id"], paid["id"], "{refunded}");
    assert!(payment["refundedAt"].is_string(), "{refunded}");

    // The buyer sees the order refunded, everyone sees the stuff available again.
    let pushed = s
        .buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == order && o["status"] == "refunded"
        })
        .await
        .unwrap();
    s.viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == s.stuff && x["status"] == "available"
        })
        .await
        .unwrap();
    // The delivery ended.
    let gone = ask(&s.buyer, "delivery:get", json!({"orderId": order})).await;
    assert_eq!(err(&gone), (403, "Pay for this order to get the stuff"));

    // Again: the same payment, refunded at the same time; the order does not move again.
    let again = ask(&s.admin, "payment:refund", json!({"orderId": order})).await;
    assert_eq!(again["data"], payment, "{again}");
    let listed = ask(&s.buyer, "order:get", json!({"id": order})).await;
    assert_eq!(listed["data"]["status"], "refunded");
    assert_eq!(listed["data"]["version"], pushed["version"]);

    // The stuff can be bought again.
    let next = s.order(&s.other).await;
    s.pay(&s.other, &next).await;
    s.sys.stop().await;
}

#[tokio::test]
async fn a_payment_landing_after_the_stuff_went_to_someone_else_is_refunded_by_itself() {
    let s = shop(Duration::from_secs(2)).await;
    let late = s.order(&s.buyer).await;
    s.buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == late && o["status"] == "cancelled"
        })
        .await
        .unwrap();
    // Someone else buys the stuff.
    let winner = s.order(&s.other).await;
    s.pay(&s.other, &winner).await;

    // The late buyer's charge lands now (the gateway answered after the hold ran out):
    // ms-payment records it with its event, as `payment:create` does.
    let store = s.sys.payment.as_ref().unwrap().store.clone();
    let replica = store.order(&late).await.unwrap().unwrap();
    let row = PaymentRow {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: late.clone(),
        user_id: replica.user_id.clone(),
        amount_cents: replica.price_cents,
        coupon_code: None,
        provider_id: "pi_test_late".into(),
        created_at: ms_common::time::now(),
        refunded_at: None,
        currency: "eur".into(),
        fee_cents: 0,
        seller_id: replica.seller_id.clone(),
        payout: Payout::Held,
        transfer_key: None,
        transfer_id: None,
    };
    let event = EventEnvelope::new(Event::PaymentCreated(PaymentRecord::from(&row)), None);
    store.record_payment(&row, &event).await.unwrap();

    // ms-order refunds the order, ms-payment the money; the buyer is told.
    s.buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == late && o["status"] == "refunded"
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let p = store.payment_for_order(&late).await.unwrap().unwrap();
        if p.refunded_at.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "payment never refunded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The winner keeps the stuff and its delivery.
    let stuff = ask(&s.viewer, "stuff:get", json!({"id": s.stuff})).await;
    assert_eq!(stuff["data"]["status"], "sold", "{stuff}");
    let delivered = ask(&s.other, "delivery:get", json!({"orderId": winner})).await;
    assert_eq!(delivered["data"]["secretNote"], "the goods", "{delivered}");
    let refused = ask(&s.buyer, "delivery:get", json!({"orderId": late})).await;
    assert_eq!(err(&refused), (403, "Pay for this order to get the stuff"));
    s.sys.stop().await;
}
