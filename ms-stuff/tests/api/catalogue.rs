//! `stuff:create`, `stuff:get`, `stuff:list`, `stuff:update` as the router calls them.

use crate::helpers::{App, fields, order, record};
use ms_common::events::{Event, OrderStatus, StuffStatus};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn create_get_list_and_update() {
    let app = App::spawn().await;
    let (ann, ann_id) = app.signup("ann@example.com").await;

    let created = app
        .call(
            "stuff:create",
            Some(&ann),
            json!({"title": "  Desk lamp ", "priceCents": 1999, "description": "Bright", "ignored": 1}),
        )
        .await
        .unwrap();
    assert_eq!(
        keys(&created),
        BTreeSet::from([
            "id",
            "title",
            "description",
            "priceCents",
            "sellerId",
            "seller",
            "status",
            "version",
            "createdAt",
            "updatedAt",
            "files",
            "hasSecretNote",
            "course",
            "coverUrl",
            "rating"
        ]),
        "exactly the contract's Stuff shape"
    );
    assert_eq!(created["title"], "Desk lamp");
    assert_eq!(created["description"], "Bright");
    assert_eq!(created["priceCents"], 1999);
    assert_eq!(created["sellerId"], ann_id.as_str());
    assert_eq!(created["status"], "available");
    assert_eq!(created["version"], 1);
    let created_at = created["createdAt"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(created_at.ends_with('Z'), "UTC: {created_at}");
    let id = created["id"].as_str().unwrap();

    // Without a description it is empty.
    let plain = app.create(&ann, "Chair", 500).await;
    assert_eq!(plain["description"], "");

    assert_eq!(app.get(id).await.unwrap(), created);
    let list = app.call("stuff:list", None, json!({})).await.unwrap();
    assert_eq!(list["items"], json!([plain, created]), "newest first");
    assert_eq!(list["nextCursor"], Value::Null);

    let updated = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "version": 1, "title": "Desk lamp (LED)", "priceCents": 2499}),
        )
        .await
        .unwrap();
    assert_eq!(updated["title"], "Desk lamp (LED)");
    assert_eq!(updated["priceCents"], 2499);
    assert_eq!(updated["description"], "Bright", "untouched fields stay");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["createdAt"], created["createdAt"]);
    assert_eq!(app.get(id).await.unwrap(), updated);
    // Without a version the edit applies to whatever is current.
    let again = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "description": ""}),
        )
        .await
        .unwrap();
    assert_eq!(
        (again["description"].clone(), again["version"].clone()),
        (json!(""), json!(3))
    );

    // Every change went out as an event, in order, in the public shape.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ev = app.next_event().await;
        let (kind, rec) = record(&ev);
        assert!(rec.order_id.is_none());
        assert_eq!(ev.correlation_id.as_deref(), Some("test"));
        seen.push((kind, rec.id.clone(), rec.version));
    }
    let plain_id = plain["id"].as_str().unwrap().to_owned();
    assert_eq!(
        seen,
        vec![
            ("stuff.created", id.to_owned(), 1),
            ("stuff.created", plain_id, 1),
            ("stuff.updated", id.to_owned(), 2),
            ("stuff.updated", id.to_owned(), 3),
        ]
    );
    app.done().await;
}

#[tokio::test]
async fn validation_failures_name_their_fields() {
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let create = |payload: Value| app.call("stuff:create", Some(&ann), payload);

    let long_title = "x".repeat(121);
    let long_description = "d".repeat(2001);
    let cases = [
        (json!({"title": "", "priceCents": 100}), vec!["title"]),
        (json!({"title": "   ", "priceCents": 100}), vec!["title"]),
        (
            json!({"title": long_title, "priceCents": 100}),
            vec!["title"],
        ),
        (json!({"title": 5, "priceCents": 100}), vec!["title"]),
        (json!({"priceCents": 100}), vec!["title"]),
        (json!({"title": "ok", "priceCents": 0}), vec!["priceCents"]),
        (json!({"title": "ok", "priceCents": 49}), vec!["priceCents"]),
        (
            json!({"title": "ok", "priceCents": -100}),
            vec!["priceCents"],
        ),
        (
            json!({"title": "ok", "priceCents": 10.5}),
            vec!["priceCents"],
        ),
        (
            json!({"title": "ok", "priceCents": "100"}),
            vec!["priceCents"],
        ),
        (
            json!({"title": "ok", "priceCents": 100_000_001}),
            vec!["priceCents"],
        ),
        (json!({"title": "ok"}), vec!["priceCents"]),
        (
            json!({"title": "ok", "priceCents": 100, "description": long_description}),
            vec!["description"],
        ),
        (
            json!({"title": "ok", "priceCents": 100, "description": 7}),
            vec!["description"],
        ),
        (
            json!({"title": "", "priceCents": 1.5, "description": ["x"]}),
            vec!["title", "priceCents", "description"],
        ),
    ];
    for (payload, expected) in cases {
        let e = create(payload.clone()).await.unwrap_err();
        assert_eq!(e.status, 400, "{payload}");
        assert_eq!(fields(&e), expected, "{payload}");
    }
    // Limits are inclusive.
    let edge = create(json!({"title": "x".repeat(120), "priceCents": 100_000_000, "description": "d".repeat(2000)}))
        .await
        .unwrap();
    let cheapest = create(json!({"title": "y", "priceCents": 50}))
        .await
        .unwrap();
    assert_eq!(cheapest["priceCents"], 50);
    let id = edge["id"].as_str().unwrap();

    let update = |payload: Value| app.call("stuff:update", Some(&ann), payload);
    for (payload, expected) in [
        (json!({"title": "x"}), vec!["id"]),
        (json!({"id": 5, "title": "x"}), vec!["id"]),
        (
            json!({"id": id, "version": 0, "title": "x"}),
            vec!["version"],
        ),
        (
            json!({"id": id, "version": "1", "title": "x"}),
            vec!["version"],
        ),
        (json!({"id": id, "title": " "}), vec!["title"]),
        (json!({"id": id, "priceCents": 1.25}), vec!["priceCents"]),
        (
            json!({"id": id, "description": long_description}),
            vec!["description"],
        ),
        (
            json!({"id": id, "title": "", "priceCents": 0}),
            vec!["title", "priceCents"],
        ),
    ] {
        let e = update(payload.clone()).await.unwrap_err();
        assert_eq!(e.status, 400, "{payload}");
        assert_eq!(fields(&e), expected, "{payload}");
    }
    let e = update(json!({"id": id})).await.unwrap_err();
    assert_eq!(e.status, 400, "an edit that changes nothing");
    assert_eq!(app.get(id).await.unwrap()["version"], 1, "nothing changed");

    let e = app.call("stuff:get", None, json!({})).await.unwrap_err();
    assert_eq!((e.status, fields(&e)), (400, vec!["id"]));
    for (payload, expected) in [
        (json!({"status": "gone"}), vec!["status"]),
        (json!({"limit": 0}), vec!["limit"]),
        (json!({"limit": 101}), vec!["limit"]),
        (json!({"limit": "5"}), vec!["limit"]),
        (json!({"cursor": "not a cursor"}), vec!["cursor"]),
        (
            json!({"status": 1, "limit": 2.5, "cursor": 3}),
            vec!["status", "limit", "cursor"],
        ),
    ] {
        let e = app
            .call("stuff:list", None, payload.clone())
            .await
            .unwrap_err();
        assert_eq!(e.status, 400, "{payload}");
        assert_eq!(fields(&e), expected, "{payload}");
    }
    app.done().await;
}

#[tokio::test]
async fn list_paginates_newest_first_and_filters_by_status() {
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.create(&ann, &format!("Item {i}"), 100 + i).await["id"].clone());
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    let mut pages = 0;
    loop {
        let page = app
            .call("stuff:list", None, json!({"limit": 2, "cursor": cursor}))
            .await
            .unwrap();
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|s| s["id"].clone()));
        cursor = page["nextCursor"].clone();
        if cursor.is_null() {
            break;
        }
        assert!(cursor.is_string());
    }
    assert_eq!(
        (pages, seen.clone()),
        (3, ids.clone()),
        "newest first, no gaps or repeats"
    );
    let all = app
        .call("stuff:list", None, json!({"limit": 5}))
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_eq!(
        all["nextCursor"],
        Value::Null,
        "an exactly full page has no next page"
    );

    // Reserve one; the status filter sees it move.
    let held = ids[1].as_str().unwrap();
    app.publish(Event::OrderCreated(order(
        "o1",
        held,
        OrderStatus::Created,
        1,
    )))
    .await;
    app.wait_for(held, "reserved", 2).await;
    let reserved = app
        .call("stuff:list", None, json!({"status": "reserved"}))
        .await
        .unwrap();
    assert_eq!(reserved["items"].as_array().unwrap().len(), 1);
    assert_eq!(reserved["items"][0]["id"], held);
    assert!(reserved["items"][0].get("orderId").is_none());
    let available = app
        .call(
            "stuff:list",
            None,
            json!({"status": "available", "limit": 10}),
        )
        .await
        .unwrap();
    assert_eq!(available["items"].as_array().unwrap().len(), 4);
    let sold = app
        .call(
            "stuff:list",
            None,
            json!({"status": StuffStatus::Sold.as_str()}),
        )
        .await
        .unwrap();
    assert_eq!(sold, json!({"items": [], "nextCursor": null}));
    app.done().await;
}

#[tokio::test]
async fn permissions_and_conflicts() {
    let app = App::spawn().await;
    let (ann, _) = app.signup("ann@example.com").await;
    let (bob, _) = app.signup("bob@example.com").await;
    let s = app.create(&ann, "Guitar", 15000).await;
    let id = s["id"].as_str().unwrap();

    // Anonymous.
    let e = app
        .call(
            "stuff:create",
            None,
            json!({"title": "x", "priceCents": 100}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));
    let e = app
        .call("stuff:update", None, json!({"id": id, "title": "x"}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    let e = app
        .call(
            "stuff:create",
            Some("not.a.token"),
            json!({"title": "x", "priceCents": 100}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));

    // Not the seller.
    let e = app
        .call(
            "stuff:update",
            Some(&bob),
            json!({"id": id, "title": "Mine now"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (403, "You do not own this stuff")
    );
    let e = app
        .call(
            "stuff:update",
            Some(&bob),
            json!({"id": id, "version": 1, "title": "Mine now"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status, 403);

    // Unknown.
    let e = app.get("no-such-stuff").await.unwrap_err();
    assert_eq!((e.status, e.first_message()), (404, "Stuff not found"));
    let e = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": "no-such-stuff", "title": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (404, "Stuff not found"));
    let e = app
        .call("stuff:explode", None, json!({}))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (404, "Unknown event"));

    // Stale version.
    app.call(
        "stuff:update",
        Some(&ann),
        json!({"id": id, "version": 1, "priceCents": 14000}),
    )
    .await
    .unwrap();
    let e = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "version": 1, "priceCents": 13000}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "This stuff was changed by someone else")
    );
    assert_eq!(
        app.get(id).await.unwrap()["priceCents"],
        14000,
        "the stale edit lost"
    );

    // Reserved by an order.
    app.publish(Event::OrderCreated(order(
        "o1",
        id,
        OrderStatus::Created,
        1,
    )))
    .await;
    app.wait_for(id, "reserved", 3).await;
    for payload in [
        json!({"id": id, "title": "Cheaper"}),
        json!({"id": id, "version": 3, "title": "Cheaper"}),
    ] {
        let e = app
            .call("stuff:update", Some(&ann), payload)
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.first_message()),
            (409, "Cannot edit a stuff while it is being checked out")
        );
    }
    // Released, the seller can edit again; sold, never.
    app.publish(Event::OrderCancelled(order(
        "o1",
        id,
        OrderStatus::Cancelled,
        2,
    )))
    .await;
    app.wait_for(id, "available", 4).await;
    app.call(
        "stuff:update",
        Some(&ann),
        json!({"id": id, "version": 4, "title": "Guitar!"}),
    )
    .await
    .unwrap();
    app.publish(Event::OrderCompleted(order(
        "o2",
        id,
        OrderStatus::Complete,
        1,
    )))
    .await;
    app.wait_for(id, "sold", 6).await;
    let e = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": id, "title": "Again"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "This stuff has already been sold")
    );
    app.done().await;
}
