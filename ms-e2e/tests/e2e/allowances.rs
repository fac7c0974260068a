//! Socket allowances (issue 17): a socket that floods gets 429 acks for the excess while
//! everyone else is served, writes run out before reads, a user's sockets share one
//! allowance, requests in flight are capped per socket, sockets are capped per client
//! address, and a socket whose token expires stops getting its user's pushes.

use crate::{T, ask, err};
use ms_e2e::{System, SystemOptions};
use ms_router::allowance::SocketLimits;
use ms_router::ratelimit::Allowance;
use ms_testkit::{SioClient, SioError, eventually};
use serde_json::{Value, json};
use std::time::Duration;

/// The 429 ack, exactly as every other 429 the router sends.
fn too_many() -> Value {
    json!({"status": 429, "errors": [{"message": "Too many requests"}]})
}

/// `max` at once, then one an hour: nothing refills while a test runs.
fn per_hour(max: u32) -> Allowance {
    Allowance {
        max,
        window: Duration::from_secs(3600) * max,
    }
}

fn limits(events: Allowance, writes: Allowance) -> SocketLimits {
    SocketLimits {
        events,
        writes,
        ..SocketLimits::generous()
    }
}

async fn start(socket: SocketLimits) -> System {
    System::start(SystemOptions {
        socket: Some(socket),
        ..SystemOptions::default()
    })
    .await
    .unwrap()
}

/// How many acks were `{data}` and how many the exact 429; panics on anything else.
fn tally(acks: &[Value]) -> (usize, usize) {
    let ok = acks.iter().filter(|a| a.get("data").is_some()).count();
    let refused = acks.iter().filter(|a| **a == too_many()).count();
    assert_eq!(ok + refused, acks.len(), "only data or 429: {acks:?}");
    (ok, refused)
}

#[tokio::test]
async fn a_flooding_socket_gets_429_for_the_excess_while_another_client_is_served() {
    let sys = start(limits(per_hour(10), SocketLimits::generous().writes)).await;
    let flooder = sys.socket(0, None).await.unwrap();
    let victim = sys.socket(0, None).await.unwrap();
    let flood = futures_util::future::join_all(
        (0..200).map(|_| flooder.emit_with_ack("stuff:list", json!({}), T)),
    );
    let served = async {
        let mut acks = Vec::new();
        for _ in 0..5 {
            acks.push(ask(&victim, "stuff:list", json!({})).await);
        }
        acks
    };
    let (flood, served) = tokio::join!(flood, served);
    let flood: Vec<Value> = flood.into_iter().map(Result::unwrap).collect();
    assert_eq!(tally(&flood), (10, 190), "the burst, then 429s");
    for ack in &served {
        assert!(
            ack["data"]["items"].is_array(),
            "the victim is served: {ack}"
        );
    }
    // The flooder is refused, not cut off: it is answered, and still connected.
    assert!(flooder.is_connected());
    assert_eq!(ask(&flooder, "stuff:list", json!({})).await, too_many());
    sys.stop().await;
}

#[tokio::test]
async fn writes_run_out_first_and_a_users_sockets_share_their_allowance() {
    let sys = start(limits(per_hour(100), per_hour(3))).await;
    let (seller_t, _) = sys.signup("writer@example.com").await.unwrap();
    let (other_t, _) = sys.signup("other-writer@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_t)).await.unwrap();
    let create = |n: usize| json!({"title": format!("Item {n}"), "priceCents": 500});
    let mut acks = Vec::new();
    for n in 0..5 {
        acks.push(ask(&seller, "stuff:create", create(n)).await);
    }
    assert_eq!(tally(&acks), (3, 2), "three writes, then 429: {acks:?}");
    // Reads have their own, larger allowance.
    let list = ask(&seller, "stuff:list", json!({})).await;
    assert!(list["data"]["items"].is_array(), "{list}");
    // A second socket of the same user shares the user's writes allowance …
    let tab = sys.socket(0, Some(&seller_t)).await.unwrap();
    assert_eq!(ask(&tab, "stuff:create", create(5)).await, too_many());
    let list = ask(&tab, "stuff:list", json!({})).await;
    assert!(list["data"]["items"].is_array(), "{list}");
    // … and another user has their own.
    let other = sys.socket(0, Some(&other_t)).await.unwrap();
    let made = ask(&other, "stuff:create", create(6)).await;
    assert_eq!(made["data"]["title"], "Item 6", "{made}");
    sys.stop().await;
}

#[tokio::test]
async fn requests_in_flight_are_capped_per_socket() {
    let mut sys = start(SocketLimits {
        max_in_flight: 2,
        ..SocketLimits::generous()
    })
    .await;
    // ms-payment gone: every coupon:list waits for the RPC timeout, so it stays in flight.
    sys.payment.take().unwrap().handle.stop().await;
    let c = sys.socket(0, None).await.unwrap();
    let acks: Vec<Value> = futures_util::future::join_all(
        (0..5).map(|_| c.emit_with_ack("coupon:list", json!({}), T)),
    )
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let statuses = |acks: &[Value]| {
        let mut s: Vec<u64> = acks.iter().map(|a| err(a).0).collect();
        s.sort_unstable();
        s
    };
    assert_eq!(statuses(&acks), [429, 429, 429, 503, 503], "{acks:?}");
    assert_eq!(acks.iter().filter(|a| **a == too_many()).count(), 3);
    // The slots come back with the answers.
    assert_eq!(err(&ask(&c, "coupon:list", json!({})).await).0, 503);
    // Another socket was never limited by this one's requests.
    let other = sys.socket(0, None).await.unwrap();
    assert!(ask(&other, "stuff:list", json!({})).await["data"].is_object());
    sys.stop().await;
}

/// Why a connection was refused; panics when it was accepted.
async fn refusal(url: &str, token: Option<&str>) -> SioError {
    match SioClient::connect(url, token).await {
        Err(e) => e,
        Ok(_) => panic!("a socket beyond the address's limit was accepted"),
    }
}

#[tokio::test]
async fn sockets_are_capped_per_client_address() {
    let sys = start(SocketLimits {
        max_per_address: 3,
        ..SocketLimits::generous()
    })
    .await;
    let (token, _) = sys.signup("many-tabs@example.com").await.unwrap();
    let mut open = vec![
        sys.socket(0, None).await.unwrap(),
        sys.socket(0, Some(&token)).await.unwrap(),
        sys.socket(0, None).await.unwrap(),
    ];
    let too_many = SioError::ConnectError("Too many connections".into());
    assert_eq!(refusal(sys.url(), None).await, too_many);
    assert_eq!(
        refusal(sys.url(), Some(&token)).await,
        too_many,
        "signed in or not, one address"
    );
    // The open ones are not disturbed, and a slot frees up when a socket leaves.
    assert!(ask(&open[0], "stuff:list", json!({})).await["data"].is_object());
    open.pop().unwrap().disconnect().await.unwrap();
    let again = eventually(T, "a free slot for the address", || async {
        sys.socket(0, None).await.ok()
    })
    .await
    .unwrap();
    assert!(again.is_connected());
    sys.stop().await;
}

#[tokio::test]
async fn a_socket_leaves_its_users_room_when_its_token_expires() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (seller_t, _) = sys.signup("expiry-seller@example.com").await.unwrap();
    let (buyer_t, buyer_id) = sys.signup("expiry-buyer@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_t)).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"title": "Short-lived", "priceCents": 500, "secretNote": "the goods"}),
    )
    .await["data"]["id"]
        .clone();
    // The buyer's long-lived tab, and a socket on a token that runs out in a few seconds.
    let tab = sys.socket(0, Some(&buyer_t)).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let short = sys
        .user
        .service
        .sign(&ms_common::auth::Claims {
            sub: buyer_id.clone(),
            email: "expiry-buyer@example.com".into(),
            role: ms_common::events::Role::User,
            iat: now,
            exp: now + 10,
        })
        .await
        .unwrap();
    let expiring = sys.socket(0, Some(&short)).await.unwrap();

    // While the token is valid, the socket gets the user's pushes.
    let order = ask(&tab, "order:create", json!({"stuffId": stuff})).await;
    let order_id = order["data"]["id"].clone();
    assert!(order_id.is_string(), "{order}");
    expiring
        .wait_for("order:updated", T, |o| o["id"] == order_id)
        .await
        .unwrap();

    // The services refuse the token once it is past `exp` (and their 5 s of leeway); the
    // router took the socket out of the room at `exp`.
    eventually(
        Duration::from_secs(40),
        "the short token to expire",
        || async {
            let ack = ask(&expiring, "order:list", json!({})).await;
            (err(&ack).0 == 401).then_some(())
        },
    )
    .await
    .unwrap();
    let cancelled = ask(&tab, "order:cancel", json!({"id": order_id})).await;
    assert_eq!(cancelled["data"]["status"], "cancelled", "{cancelled}");
    tab.wait_for("order:updated", T, |o| {
        o["id"] == order_id && o["status"] == "cancelled"
    })
    .await
    .unwrap();
    // A push queued for `expiring` with the tab's would arrive before this ack (a 401:
    // the services refuse the expired token).
    assert_eq!(err(&ask(&expiring, "stuff:list", json!({})).await).0, 401);
    let missed: Vec<_> = expiring
        .drain_events()
        .into_iter()
        .filter(|(name, o)| name == "order:updated" && o["status"] == "cancelled")
        .collect();
    assert!(missed.is_empty(), "pushed after expiry: {missed:?}");

    // A fresh token puts the socket back into the room.
    let back = ask(&expiring, "session:authenticate", json!({"token": buyer_t})).await;
    assert_eq!(back["data"]["user"]["id"], buyer_id.as_str(), "{back}");
    // The cancellation frees the stuff through ms-stuff and back into ms-order's copy:
    // order it again once that has happened.
    let again_id = eventually(T, "the stuff free to order again", || async {
        let again = ask(&tab, "order:create", json!({"stuffId": stuff})).await;
        Some(again["data"]["id"].clone()).filter(Value::is_string)
    })
    .await
    .unwrap();
    expiring
        .wait_for("order:updated", T, |o| o["id"] == again_id)
        .await
        .unwrap();
    sys.stop().await;
}
