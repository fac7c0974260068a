//! Checkout through the routers: the hold seen live by every viewer, the exact 409 for
//! the second buyer, release on expiry, and the 200-buyer race.

use crate::{T, ask};
use ms_e2e::{System, SystemOptions};
use serde_json::{Value, json};
use std::time::Duration;

const HELD: &str = "The stuff is being checked out by someone else, please come back later";

#[tokio::test]
async fn the_whole_hold_cycle_seen_live() {
    let sys = System::start(SystemOptions {
        routers: 2,
        hold: Duration::from_secs(2),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (seller_t, _) = sys.signup("seller@example.com").await.unwrap();
    let (a_t, _) = sys.signup("a@example.com").await.unwrap();
    let (b_t, _) = sys.signup("b@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_t)).await.unwrap();
    let a = sys.socket(0, Some(&a_t)).await.unwrap();
    let b = sys.socket(1, Some(&b_t)).await.unwrap();
    let viewers = [
        sys.socket(0, None).await.unwrap(),
        sys.socket(1, None).await.unwrap(),
    ];
    let id = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Hold me", "priceCents": 300}),
    )
    .await["data"]["id"]
        .clone();

    let order = ask(&a, "order:create", json!({"stuffId": id})).await;
    assert_eq!(order["data"]["status"], "created", "{order}");
    for v in &viewers {
        v.wait_for("stuff:updated", T, |s| {
            s["id"] == id && s["status"] == "reserved"
        })
        .await
        .unwrap();
    }
    let refused = ask(&b, "order:create", json!({"stuffId": id})).await;
    assert_eq!(
        (
            refused["status"].as_u64(),
            refused["errors"][0]["message"].as_str()
        ),
        (Some(409), Some(HELD))
    );

    // The hold runs out: everyone sees the stuff available again; A sees the cancel.
    for v in &viewers {
        v.wait_for("stuff:updated", T, |s| {
            s["id"] == id && s["status"] == "available"
        })
        .await
        .unwrap();
    }
    let cancelled = a
        .wait_for("order:updated", T, |o| o["status"] == "cancelled")
        .await
        .unwrap();
    assert_eq!(cancelled["id"], order["data"]["id"]);
    let again = ask(&b, "order:create", json!({"stuffId": id})).await;
    assert_eq!(again["data"]["status"], "created", "{again}");
    sys.stop().await;
}

#[tokio::test]
async fn two_hundred_buyers_race_through_the_router_and_one_wins() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (seller_t, _) = sys.signup("seller@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_t)).await.unwrap();
    let id = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Hot item", "priceCents": 100}),
    )
    .await["data"]["id"]
        .clone();
    let mut buyers = Vec::new();
    for i in 0..200 {
        let token = sys.token_for(&format!("buyer-{i}")).await.unwrap();
        buyers.push(sys.socket(0, Some(&token)).await.unwrap());
    }
    let attempts = buyers.iter().map(|b| {
        b.emit_with_ack(
            "order:create",
            json!({"stuffId": id}),
            Duration::from_secs(30),
        )
    });
    let acks: Vec<Value> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let wins = acks.iter().filter(|a| a.get("data").is_some()).count();
    let held = acks
        .iter()
        .filter(|a| a["status"] == 409 && a["errors"][0]["message"] == HELD)
        .count();
    assert_eq!(
        (wins, held),
        (1, 199),
        "{:?}",
        acks.iter()
            .find(|a| a.get("data").is_none() && a["errors"][0]["message"] != HELD)
    );
    let store = sys.order.as_ref().unwrap().store.clone();
    assert_eq!(store.active_count(id.as_str().unwrap()).await.unwrap(), 1);
    sys.stop().await;
}
