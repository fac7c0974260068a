//! The public contract pinned as text: a few acks and pushes exactly as a client receives
//! them (field names, order, nesting, status codes), so a refactor of the shapes behind
//! them cannot change a byte unnoticed.

use crate::T;
use ms_e2e::{System, SystemOptions};
use ms_testkit::SioClient;
use serde_json::{Value, json};

/// The received Socket.IO packet that starts with `prefix` (e.g. `30[` for the ack of
/// request 0: packet type 3, ack id 0; the Engine.IO `4` in front is not part of it).
fn packet(c: &SioClient, prefix: &str) -> String {
    c.recent_packets()
        .into_iter()
        .find(|p| p.starts_with(prefix))
        .unwrap_or_else(|| panic!("no packet {prefix}…: {:?}", c.recent_packets()))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no string {k} in {v}"))
}

#[tokio::test]
async fn acks_and_pushes_are_pinned_as_text() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (seller_token, seller) = sys.signup("pin-seller@example.com").await.unwrap();
    let (buyer_token, buyer) = sys.signup("pin-buyer@example.com").await.unwrap();
    let viewer = sys.socket(0, None).await.unwrap();
    let cs = sys.socket(0, Some(&seller_token)).await.unwrap();
    let cb = sys.socket(0, Some(&buyer_token)).await.unwrap();

    // Ack of stuff:create (request 0 of the seller's socket). Fields keep the order of the
    // contract's shapes.
    let created = cs
        .emit_with_ack(
            "stuff:create",
            json!({"secretNote": "the goods", "title": "Pinned notes", "priceCents": 1500, "description": "All of it", "course": " cs  101 "}),
            T,
        )
        .await
        .unwrap();
    let st = &created["data"];
    let (id, c_at, u_at) = (s(st, "id"), s(st, "createdAt"), s(st, "updatedAt"));
    assert_eq!(
        packet(&cs, "30["),
        format!(
            r#"30[{{"data":{{"id":"{id}","title":"Pinned notes","description":"All of it","priceCents":1500,"sellerId":"{seller}","seller":{{"id":"{seller}","displayName":"pin-seller"}},"status":"available","version":1,"createdAt":"{c_at}","updatedAt":"{u_at}","files":[],"hasSecretNote":true,"course":"CS 101","coverUrl":null,"rating":{{"average":0.0,"count":0}}}}}}]"#
        )
    );

    // Push stuff:created to every viewer.
    viewer.next_event("stuff:created", T).await.unwrap();
    assert_eq!(
        packet(&viewer, r#"2["stuff:created""#),
        format!(
            r#"2["stuff:created",{{"id":"{id}","title":"Pinned notes","description":"All of it","priceCents":1500,"sellerId":"{seller}","seller":{{"id":"{seller}","displayName":"pin-seller"}},"status":"available","version":1,"createdAt":"{c_at}","updatedAt":"{u_at}","files":[],"hasSecretNote":true,"course":"CS 101","coverUrl":null,"rating":{{"average":0.0,"count":0}}}}]"#
        )
    );

    // Ack of order:create, then order:updated to the buyer and stuff:updated to viewers.
    let order = cb
        .emit_with_ack("order:create", json!({"stuffId": id}), T)
        .await
        .unwrap();
    let o = &order["data"];
    let (oid, oc_at, exp) = (s(o, "id"), s(o, "createdAt"), s(o, "expiresAt"));
    assert_eq!(
        packet(&cb, "30["),
        format!(
            r#"30[{{"data":{{"id":"{oid}","stuffId":"{id}","userId":"{buyer}","status":"created","expiresAt":"{exp}","priceCents":1500,"stuffTitle":"Pinned notes","paidCents":null,"reviewed":false,"sellerId":"{seller}","stuffVersion":1,"version":1,"createdAt":"{oc_at}"}}}}]"#
        )
    );
    cb.next_event("order:updated", T).await.unwrap();
    assert_eq!(
        packet(&cb, r#"2["order:updated""#),
        format!(
            r#"2["order:updated",{{"id":"{oid}","stuffId":"{id}","userId":"{buyer}","status":"created","expiresAt":"{exp}","priceCents":1500,"stuffTitle":"Pinned notes","paidCents":null,"reviewed":false,"sellerId":"{seller}","stuffVersion":1,"version":1,"createdAt":"{oc_at}"}}]"#
        )
    );
    let reserved = viewer
        .wait_for("stuff:updated", T, |v| v["status"] == "reserved")
        .await
        .unwrap();
    let r_at = s(&reserved, "updatedAt");
    assert_eq!(
        packet(&viewer, r#"2["stuff:updated""#),
        format!(
            r#"2["stuff:updated",{{"id":"{id}","title":"Pinned notes","description":"All of it","priceCents":1500,"sellerId":"{seller}","seller":{{"id":"{seller}","displayName":"pin-seller"}},"status":"reserved","version":2,"createdAt":"{c_at}","updatedAt":"{r_at}","files":[],"hasSecretNote":true,"course":"CS 101","coverUrl":null,"rating":{{"average":0.0,"count":0}}}}]"#
        )
    );

    // Error acks: a field error, a conflict, an unknown event.
    viewer
        .emit_with_ack("stuff:get", json!({}), T)
        .await
        .unwrap();
    assert_eq!(
        packet(&viewer, "30["),
        r#"30[{"status":400,"errors":[{"message":"Id must be a non-empty string","field":"id"}]}]"#
    );
    cs.emit_with_ack("stuff:update", json!({"id": id, "title": "Changed"}), T)
        .await
        .unwrap();
    assert_eq!(
        packet(&cs, "31["),
        r#"31[{"status":409,"errors":[{"message":"Cannot edit a stuff while it is being checked out"}]}]"#
    );
    viewer
        .emit_with_ack("nope:nothing", json!({}), T)
        .await
        .unwrap();
    assert_eq!(
        packet(&viewer, "31["),
        r#"31[{"status":404,"errors":[{"message":"Unknown event"}]}]"#
    );
    sys.stop().await;
}
