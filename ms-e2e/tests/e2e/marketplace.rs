//! The marketplace's people: display names chosen over HTTP, carried by `user.*` events to
//! ms-stuff's replica and shown on every listing of the seller.

use crate::{T, ask};
use ms_e2e::{System, SystemOptions};
use ms_testkit::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn rename(url: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .patch(format!("{url}/api/users/me"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_rename_reaches_every_listing_and_bad_names_are_refused() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url().to_owned();
    let (token, seller_id) = sys.signup("ada.l@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&token)).await.unwrap();
    let anon = sys.socket(0, None).await.unwrap();

    // Two listings under the default name (the e-mail's local part, never the domain).
    let mut ids = Vec::new();
    for title in ["Analysis notes", "Algebra slides"] {
        let ack = ask(
            &seller,
            "stuff:create",
            json!({"title": title, "priceCents": 500, "secretNote": "x"}),
        )
        .await;
        assert_eq!(ack["data"]["seller"]["displayName"], "ada.l", "{ack}");
        ids.push(ack["data"]["id"].as_str().unwrap().to_owned());
    }
    let me = reqwest::Client::new()
        .get(format!("{url}/api/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["displayName"], "ada.l");

    // Bad names: 400 on `displayName`, in the contract's envelope, from the router.
    for bad in [
        r#"{"displayName":"A"}"#.to_owned(),
        r#"{"displayName":"   "}"#.to_owned(),
        r#"{}"#.to_owned(),
        r#"{"displayName":42}"#.to_owned(),
        json!({"displayName": "x".repeat(41)}).to_string(),
        json!({"displayName": "Ada\u{202E}evil"}).to_string(),
    ] {
        let (status, body) = rename(&url, Some(&token), &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "displayName", "{bad}: {body}");
        assert_eq!(
            body["errors"][0]["message"], "Display name must be 2 to 40 characters",
            "{bad}"
        );
    }
    let (status, _) = rename(&url, None, r#"{"displayName":"Ada"}"#).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = rename(&url, Some(&token), "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A rename: trimmed and single-spaced, answered with the account.
    let (status, body) = rename(&url, Some(&token), r#"{"displayName":"  Ada   Lovelace "}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["displayName"], "Ada Lovelace");
    assert_eq!(body["user"]["id"], seller_id.as_str());
    // The same name again changes nothing and is still fine.
    let (status, again) = rename(&url, Some(&token), r#"{"displayName":"Ada Lovelace"}"#).await;
    assert_eq!((status, &again["user"]), (StatusCode::OK, &body["user"]));

    // Every listing shows the new name within seconds, by id and in the catalogue, and
    // the stuff itself did not change (same version).
    for id in &ids {
        let shown = eventually(T, "the new name on a listing", || async {
            let ack = ask(&anon, "stuff:get", json!({"id": id})).await;
            (ack["data"]["seller"]["displayName"] == "Ada Lovelace").then_some(ack)
        })
        .await
        .unwrap();
        assert_eq!(shown["data"]["version"], 1);
        assert_eq!(shown["data"]["seller"]["id"], seller_id.as_str());
    }
    let page = ask(&anon, "stuff:list", json!({"sellerId": seller_id})).await;
    let names: Vec<&Value> = page["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["seller"]["displayName"])
        .collect();
    assert_eq!(names, [&json!("Ada Lovelace"), &json!("Ada Lovelace")]);

    // A new listing after the rename carries the new name from the start.
    let ack = ask(
        &seller,
        "stuff:create",
        json!({"title": "Topology", "priceCents": 500, "secretNote": "x"}),
    )
    .await;
    assert_eq!(ack["data"]["seller"]["displayName"], "Ada Lovelace");
    sys.stop().await;
}
