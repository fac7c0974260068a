//! The catalogue through ms-router over Socket.IO with ms-stuff behind RabbitMQ, and live
//! pushes to viewers on two router processes.

use crate::{T, ask, err};
use ms_e2e::{System, SystemOptions};
use serde_json::json;

#[tokio::test]
async fn create_get_list_update_and_every_refusal() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (seller_token, seller_id) = sys.signup("seller@example.com").await.unwrap();
    let (other_token, _) = sys.signup("other@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_token)).await.unwrap();
    let other = sys.socket(0, Some(&other_token)).await.unwrap();
    let anon = sys.socket(0, None).await.unwrap();

    let created = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "  Algebra notes  ", "priceCents": 1250}),
    )
    .await;
    let stuff = created["data"].clone();
    assert_eq!(stuff["title"], "Algebra notes", "{created}");
    assert_eq!(
        (stuff["status"].as_str(), stuff["version"].as_u64()),
        (Some("available"), Some(1))
    );
    assert_eq!(stuff["sellerId"].as_str(), Some(seller_id.as_str()));
    assert_eq!(
        stuff["seller"],
        json!({"id": seller_id, "displayName": "seller"}),
        "the default name is the e-mail's local part"
    );
    let mut keys: Vec<_> = stuff.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "course",
            "coverUrl",
            "createdAt",
            "description",
            "files",
            "hasSecretNote",
            "id",
            "priceCents",
            "rating",
            "seller",
            "sellerId",
            "status",
            "title",
            "updatedAt",
            "version"
        ]
    );
    let id = stuff["id"].as_str().unwrap().to_owned();

    assert_eq!(
        ask(&anon, "stuff:get", json!({"id": id})).await["data"],
        stuff
    );
    let list = ask(&anon, "stuff:list", json!({"limit": 10})).await;
    assert_eq!(list["data"]["items"][0]["id"].as_str(), Some(id.as_str()));
    assert!(list["data"].get("nextCursor").is_some());

    // Validation: every bad field named, all at once.
    let bad = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": " ", "priceCents": 1.5, "description": "x".repeat(2001)}),
    )
    .await;
    let mut fields: Vec<_> = bad["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort();
    assert_eq!(
        (bad["status"].as_u64(), fields),
        (Some(400), vec!["description", "priceCents", "title"])
    );
    assert_eq!(
        ask(
            &seller,
            "stuff:create",
            json!({"secretNote": "the goods", "title": "x", "priceCents": 100_000_001})
        )
        .await["errors"][0]["field"],
        "priceCents"
    );
    assert_eq!(
        ask(
            &seller,
            "stuff:create",
            json!({"secretNote": "the goods", "title": "x".repeat(121), "priceCents": 500})
        )
        .await["errors"][0]["field"],
        "title"
    );

    assert_eq!(
        err(&ask(
            &anon,
            "stuff:create",
            json!({"secretNote": "the goods", "title": "x", "priceCents": 500})
        )
        .await)
        .0,
        401
    );
    assert_eq!(
        err(&ask(&other, "stuff:update", json!({"id": id, "title": "mine"})).await).0,
        403
    );
    assert_eq!(
        err(&ask(&seller, "stuff:get", json!({"id": "missing"})).await).0,
        404
    );
    assert_eq!(
        err(&ask(
            &seller,
            "stuff:update",
            json!({"id": "missing", "title": "x"})
        )
        .await)
        .0,
        404
    );

    let updated = ask(
        &seller,
        "stuff:update",
        json!({"id": id, "version": 1, "priceCents": 990}),
    )
    .await;
    assert_eq!(
        (
            updated["data"]["priceCents"].as_i64(),
            updated["data"]["version"].as_u64()
        ),
        (Some(990), Some(2))
    );
    assert_eq!(
        err(&ask(
            &seller,
            "stuff:update",
            json!({"id": id, "version": 1, "title": "late"})
        )
        .await),
        (409, "This stuff was changed by someone else")
    );

    // Reserved by a real order: the seller cannot edit it.
    let o = ask(&other, "order:create", json!({"stuffId": id})).await;
    assert_eq!(o["data"]["status"], "created", "{o}");
    let reserved = seller
        .wait_for("stuff:updated", T, |s| {
            s["id"] == json!(id) && s["status"] == "reserved"
        })
        .await
        .unwrap();
    assert_eq!(reserved["version"].as_u64(), Some(3));
    assert!(reserved.get("orderId").is_none());
    assert_eq!(
        err(&ask(&seller, "stuff:update", json!({"id": id, "title": "new"})).await),
        (409, "Cannot edit a stuff while it is being checked out")
    );
    sys.stop().await;
}

#[tokio::test]
async fn concurrent_updates_with_one_version_exactly_one_wins() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (token, _) = sys.signup("seller@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&token)).await.unwrap();
    let id = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Race", "priceCents": 100}),
    )
    .await["data"]["id"]
        .clone();
    let attempts = (0..20).map(|i| {
        seller.emit_with_ack(
            "stuff:update",
            json!({"id": id, "version": 1, "title": format!("t{i}")}),
            T,
        )
    });
    let acks = futures_util::future::join_all(attempts).await;
    let wins = acks
        .iter()
        .filter(|a| a.as_ref().unwrap().get("data").is_some())
        .count();
    let conflicts = acks
        .iter()
        .filter(|a| err(a.as_ref().unwrap()) == (409, "This stuff was changed by someone else"))
        .count();
    assert_eq!((wins, conflicts), (1, 19));
    assert_eq!(
        ask(&seller, "stuff:get", json!({"id": id})).await["data"]["version"].as_u64(),
        Some(2)
    );
    sys.stop().await;
}

#[tokio::test]
async fn viewers_on_two_routers_see_every_change_live() {
    let sys = System::start(SystemOptions {
        routers: 2,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (seller_token, _) = sys.signup("seller@example.com").await.unwrap();
    let (buyer_token, _) = sys.signup("buyer@example.com").await.unwrap();
    let mut viewers = Vec::new();
    for i in 0..6 {
        viewers.push(sys.socket(i % 2, None).await.unwrap());
    }
    // The seller works through router B; the buyer through router A.
    let seller = sys.socket(1, Some(&seller_token)).await.unwrap();
    let buyer = sys.socket(0, Some(&buyer_token)).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "Live", "priceCents": 700}),
    )
    .await["data"]
        .clone();
    let id = stuff["id"].clone();
    for v in &viewers {
        let s = v
            .wait_for("stuff:created", T, |s| s["id"] == id)
            .await
            .unwrap();
        assert_eq!(s, stuff, "pushed exactly the Stuff shape");
    }
    let o = ask(&buyer, "order:create", json!({"stuffId": id})).await;
    assert!(o.get("data").is_some(), "{o}");
    for v in &viewers {
        let s = v
            .wait_for("stuff:updated", T, |s| {
                s["id"] == id && s["status"] == "reserved"
            })
            .await
            .unwrap();
        assert_eq!(s["version"].as_u64(), Some(2));
    }
    // The order's owner (and only the owner) hears about the order.
    let mine = buyer
        .wait_for("order:updated", T, |o| o["stuffId"] == id)
        .await
        .unwrap();
    assert_eq!(mine["status"], "created");
    assert!(
        viewers[0]
            .drain_events()
            .iter()
            .all(|(name, _)| name != "order:updated")
    );
    sys.stop().await;
}
