//! Least privilege end to end: every service on its own AMQP user with the deployment's
//! permissions (`deploy/rabbitmq/definitions.json` under the test's prefix) still sells
//! stuff: sign-up, listing, order, payment, sold, pushed live.

use crate::{T, ask};
use ms_e2e::{System, SystemOptions};
use serde_json::json;

#[tokio::test]
async fn every_service_on_its_own_amqp_user_still_sells_stuff_end_to_end() {
    let sys = System::start(SystemOptions {
        amqp_users: true,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (st, _) = sys.signup("seller@example.com").await.unwrap();
    let (bt, _) = sys.signup("buyer@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&st)).await.unwrap();
    let buyer = sys.socket(0, Some(&bt)).await.unwrap();
    let viewer = sys.socket(0, None).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Thing", "priceCents": 1200}),
    )
    .await["data"]
        .clone();
    assert!(stuff["id"].as_str().is_some(), "{stuff}");
    let order = ask(&buyer, "order:create", json!({"stuffId": stuff["id"]})).await;
    assert_eq!(order["data"]["status"], "created", "{order}");
    let paid = ask(
        &buyer,
        "payment:create",
        json!({"orderId": order["data"]["id"], "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(paid["data"]["amountCents"], 1200, "{paid}");
    viewer
        .wait_for("stuff:updated", T, |x| {
            x["id"] == stuff["id"] && x["status"] == "sold"
        })
        .await
        .unwrap();
    buyer
        .wait_for("order:updated", T, |o| {
            o["id"] == order["data"]["id"] && o["status"] == "complete"
        })
        .await
        .unwrap();
    sys.stop().await;
}
