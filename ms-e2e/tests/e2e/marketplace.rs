//! The marketplace's people: display names chosen over HTTP, carried by `user.*` events to
//! ms-stuff's replica and shown on every listing of the seller.

use crate::{T, ask};
use ms_e2e::{System, SystemOptions};
use ms_testkit::eventually;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends `req` with `token` as Bearer (if any); the status and the JSON body (`null` if
/// none).
async fn send(req: reqwest::RequestBuilder, token: Option<&str>) -> (StatusCode, Value) {
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn rename(url: &str, token: Option<&str>, body: &str) -> (StatusCode, Value) {
    let req = reqwest::Client::new()
        .patch(format!("{url}/api/users/me"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    send(req, token).await
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

#[tokio::test]
async fn a_sale_is_pushed_to_its_seller_and_listed_with_fee_and_earnings() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url().to_owned();
    let (seller_token, _) = sys.signup("sella@example.com").await.unwrap();
    let (buyer_token, buyer_id) = sys.signup("bo.b@example.com").await.unwrap();
    let (other_token, _) = sys.signup("other@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_token)).await.unwrap();
    let buyer = sys.socket(0, Some(&buyer_token)).await.unwrap();
    let other = sys.socket(0, Some(&other_token)).await.unwrap();

    // Before any sale: nothing, and nothing earned.
    let none = ask(&seller, "order:sales", json!({})).await;
    assert_eq!(none["data"], json!({"sales": [], "totalEarnedCents": 0}));
    let anon = sys.socket(0, None).await.unwrap();
    assert_eq!(
        ask(&anon, "order:sales", json!({})).await["status"],
        401,
        "signed in only"
    );

    // The buyer picks a name.
    let (status, _) = rename(&url, Some(&buyer_token), r#"{"displayName":"Bob B"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"title": "Past exams", "priceCents": 1005, "secretNote": "x"}),
    )
    .await["data"]
        .clone();
    let order = ask(&buyer, "order:create", json!({"stuffId": stuff["id"]})).await;
    let order_id = order["data"]["id"].as_str().unwrap().to_owned();
    let paid = ask(
        &buyer,
        "payment:create",
        json!({"orderId": order_id, "paymentMethod": "pm_card_visa"}),
    )
    .await;
    assert_eq!(paid["data"]["amountCents"], 1005, "{paid}");

    // The seller's sockets hear of it, with the fee (10 %, rounded) and the earnings.
    // The name is the one ms-order's replica held at that moment: the rename's
    // `user.updated` comes from ms-user's outbox and the stuff and payment events from the
    // others', which RabbitMQ does not order among themselves; it is the new name unless
    // that event was overtaken (then the one from sign-up).
    let mut sale = seller.next_event("sale:completed", T).await.unwrap();
    let pushed_name = sale["buyerDisplayName"].take();
    assert!(
        pushed_name == "Bob B" || pushed_name == "bo.b",
        "{pushed_name}"
    );
    let paid_at = sale["paidAt"].as_str().unwrap().to_owned();
    assert_eq!(
        sale,
        json!({
            "orderId": order_id,
            "stuffId": stuff["id"],
            "stuffTitle": "Past exams",
            "buyerDisplayName": null,
            "paidCents": 1005,
            "feeCents": 101,
            "earnedCents": 904,
            "paidAt": paid_at,
        })
    );
    assert!(
        other
            .next_event("sale:completed", std::time::Duration::from_millis(300))
            .await
            .is_err(),
        "only the seller hears of a sale"
    );
    assert!(
        buyer
            .next_event("sale:completed", std::time::Duration::from_millis(300))
            .await
            .is_err(),
        "the buyer is not told of the seller's earnings"
    );
    let order = ask(&buyer, "order:get", json!({"id": order_id})).await;
    assert_eq!(order["data"]["userId"], buyer_id.as_str());

    // order:sales lists it as pushed, with the buyer's name as it is now, and totals it;
    // the buyer sold nothing.
    sale["buyerDisplayName"] = json!("Bob B");
    let expected = json!({"sales": [sale], "totalEarnedCents": 904});
    eventually(T, "the sale listed with the buyer's new name", || async {
        let sales = ask(&seller, "order:sales", json!({})).await;
        (sales["data"] == expected).then_some(())
    })
    .await
    .unwrap();
    let bought = ask(&buyer, "order:sales", json!({})).await;
    assert_eq!(bought["data"]["sales"], json!([]));
    sys.stop().await;
}

/// A PNG of `w` × `h` pixels of one colour.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 30, 30, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

async fn post_cover(
    url: &str,
    token: Option<&str>,
    stuff: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str("image/png")
        .unwrap();
    let req = reqwest::Client::new()
        .post(format!("{url}/api/stuff/{stuff}/cover"))
        .multipart(reqwest::multipart::Form::new().part("file", part));
    send(req, token).await
}

#[tokio::test]
async fn covers_are_verified_resized_served_for_good_and_replaced() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url().to_owned();
    let (token, _) = sys.signup("cover-seller@example.com").await.unwrap();
    let (other, _) = sys.signup("cover-other@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&token)).await.unwrap();
    let viewer = sys.socket(0, None).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"title": "Slides", "priceCents": 500, "secretNote": "x"}),
    )
    .await["data"]
        .clone();
    assert_eq!(stuff["coverUrl"], Value::Null);
    let id = stuff["id"].as_str().unwrap().to_owned();

    // A big PNG becomes a JPEG thumbnail within 480 px, at a URL named by its bytes.
    let (status, body) = post_cover(&url, Some(&token), &id, "slide.png", png(1600, 900)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let cover = body["coverUrl"].as_str().unwrap().to_owned();
    assert!(cover.starts_with(&format!("/api/covers/{id}/")), "{cover}");
    let r = reqwest::get(format!("{url}{cover}")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (480, 270));
    // Every viewer hears of it; the stuff shows it.
    viewer
        .wait_for("stuff:updated", T, |s| s["coverUrl"] == cover.as_str())
        .await
        .unwrap();
    let got = ask(&viewer, "stuff:get", json!({"id": id})).await;
    assert_eq!(got["data"]["coverUrl"], cover.as_str());

    // Refusals: not an image (whatever its name says), too big, not the seller, no token,
    // no such stuff; nothing changes.
    let not_image = b"%PDF-1.7 not an image".to_vec();
    let (status, body) = post_cover(&url, Some(&token), &id, "fake.png", not_image).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["errors"][0]["message"],
        "Cover must be a PNG, JPEG or WebP image"
    );
    assert_eq!(body["errors"][0]["field"], "file");
    let mut huge = png(8, 8);
    huge.resize(5 * 1024 * 1024 + 1, 0);
    let (status, _) = post_cover(&url, Some(&token), &id, "huge.png", huge).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = post_cover(&url, Some(&other), &id, "x.png", png(10, 10)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errors"][0]["message"], "You do not own this stuff");
    let (status, _) = post_cover(&url, None, &id, "x.png", png(10, 10)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_cover(&url, Some(&token), "no-such-stuff", "x.png", png(10, 10)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let got = ask(&viewer, "stuff:get", json!({"id": id})).await;
    assert_eq!(got["data"]["coverUrl"], cover.as_str(), "unchanged");

    // A new cover replaces the old one, whose URL then answers 404.
    let (status, body) = post_cover(&url, Some(&token), &id, "b.png", png(300, 600)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["coverUrl"].as_str().unwrap().to_owned();
    assert_ne!(second, cover);
    let r = reqwest::get(format!("{url}{second}")).await.unwrap();
    let thumb = image::load_from_memory(&r.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (240, 480));
    assert_eq!(
        reqwest::get(format!("{url}{cover}"))
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    for bad in [
        "/api/covers/x/..%2F..%2Fetc",
        "/api/covers/x/y.jpg",
        "/api/covers/a/b/c",
    ] {
        let r = reqwest::get(format!("{url}{bad}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    sys.stop().await;
}
