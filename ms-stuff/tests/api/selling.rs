//! The seller's side of the catalogue: `stuff:mine` (every listing, any status) and
//! `stuff:withdraw` (out of the catalogue, not buyable, refused while reserved or sold).

use crate::helpers::{App, order, record};
use ms_common::events::{Event, OrderStatus};
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect()
}

/// The next `stuff.updated` about `id`, skipping other events.
async fn next_update_of(app: &App, id: &str) -> Value {
    loop {
        let ev = app.next_event().await;
        if let Event::StuffCreated(_) | Event::StuffUpdated(_) = ev.event {
            let (kind, rec) = record(&ev);
            if kind == "stuff.updated" && rec.id == id {
                return serde_json::to_value(rec).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn mine_lists_every_status_and_withdraw_takes_stuff_out_of_the_catalogue() {
    let app = App::spawn().await;
    let (ann, ann_id) = app.signup("ann@example.com").await;
    let (bob, _) = app.signup("bob@example.com").await;
    let a = app.create(&ann, "Algebra notes", 900).await;
    let b = app.create(&ann, "Biology summary", 1200).await;
    let c = app.create(&ann, "Chemistry past exams", 1500).await;
    let d = app.create(&bob, "Databases slides", 700).await;
    let (a, b, c, d) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
        d["id"].as_str().unwrap(),
    );

    // Newest first, only the caller's; signed in only.
    let mine = app.call("stuff:mine", Some(&ann), json!({})).await.unwrap();
    assert_eq!(ids(&mine), vec![c, b, a]);
    assert!(
        mine.as_array()
            .unwrap()
            .iter()
            .all(|s| s["sellerId"] == ann_id.as_str())
    );
    let bobs = app.call("stuff:mine", Some(&bob), json!({})).await.unwrap();
    assert_eq!(ids(&bobs), vec![d]);
    let e = app.call("stuff:mine", None, json!({})).await.unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));

    // Only the seller withdraws; unknown ids are 404.
    let e = app
        .call("stuff:withdraw", Some(&bob), json!({"id": a}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (403, "You do not own this stuff")
    );
    let e = app
        .call("stuff:withdraw", Some(&ann), json!({"id": "no-such-stuff"}))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (404, "Stuff not found"));
    let e = app
        .call("stuff:withdraw", Some(&ann), json!({}))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.errors[0].field.as_deref()), (400, Some("id")));

    let w = app
        .call("stuff:withdraw", Some(&ann), json!({"id": a}))
        .await
        .unwrap();
    assert_eq!(
        (w["status"].as_str(), w["version"].as_u64()),
        (Some("withdrawn"), Some(2))
    );
    // Viewers and ms-order learn it from the event.
    let rec = next_update_of(&app, a).await;
    assert_eq!(
        (&rec["status"], &rec["version"]),
        (&json!("withdrawn"), &json!(2))
    );
    // Again: answered as it is, nothing changes.
    let again = app
        .call("stuff:withdraw", Some(&ann), json!({"id": a}))
        .await
        .unwrap();
    assert_eq!(again, w);

    // Out of the catalogue, whatever the filter; still readable by id and in stuff:mine.
    let page = app.call("stuff:list", None, json!({})).await.unwrap();
    let listed: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![d, c, b]);
    let page = app
        .call("stuff:list", None, json!({"status": "withdrawn"}))
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
    assert_eq!(app.get(a).await.unwrap()["status"], "withdrawn");
    let mine = app.call("stuff:mine", Some(&ann), json!({})).await.unwrap();
    assert_eq!(mine[2]["status"], "withdrawn");

    // Neither edited nor given files any more.
    let e = app
        .call(
            "stuff:update",
            Some(&ann),
            json!({"id": a, "title": "Back"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "This stuff is no longer for sale")
    );
    let e = app
        .call("stuff:file-check", Some(&ann), json!({"stuffId": a}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 409);

    // An order that reached ms-order's replica before the withdrawal does not take it:
    // refused, so ms-order cancels (or refunds) it.
    app.publish(Event::OrderCreated(order(
        "o-late",
        a,
        OrderStatus::Created,
        1,
    )))
    .await;
    let refusal = loop {
        if let Event::ReservationRefused(r) = app.next_event().await.event {
            break r;
        }
    };
    assert_eq!(
        (refusal.order_id.as_str(), refusal.reason.as_str()),
        ("o-late", "the seller withdrew the stuff")
    );
    assert_eq!(app.get(a).await.unwrap()["status"], "withdrawn");

    // Not while reserved, nor once sold: the edit refusals.
    app.publish(Event::OrderCreated(order(
        "o-b",
        b,
        OrderStatus::Created,
        1,
    )))
    .await;
    app.wait_for(b, "reserved", 2).await;
    let e = app
        .call("stuff:withdraw", Some(&ann), json!({"id": b}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "Cannot edit a stuff while it is being checked out")
    );
    app.publish(Event::OrderCompleted(order(
        "o-c",
        c,
        OrderStatus::Complete,
        1,
    )))
    .await;
    app.wait_for(c, "sold", 2).await;
    let e = app
        .call("stuff:withdraw", Some(&ann), json!({"id": c}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "This stuff has already been sold")
    );
    let mine = app.call("stuff:mine", Some(&ann), json!({})).await.unwrap();
    let statuses: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["sold", "reserved", "withdrawn"]);
    app.done().await;
}
