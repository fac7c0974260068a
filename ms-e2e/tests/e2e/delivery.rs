//! Digital delivery through real routers and services: upload → pay → download with
//! SHA-256 equality, `Range`, every refusal of the contract, access by other users, new
//! versions reaching the buyer, aborted uploads leaving no object, and the S3 backend
//! against a real S3-compatible server.

use crate::{T, ask, err};
use futures_util::TryStreamExt;
use ms_common::files::{FilesConfig, LinkClaims, LinkConfig, Objects};
use ms_e2e::{S3Server, System, SystemOptions};
use ms_testkit::SioClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deterministic bytes that are not all alike.
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(31) as u8) ^ seed ^ ((i >> 8) as u8))
        .collect()
}

fn sha(b: &[u8]) -> String {
    ms_common::files::hex_encode(&Sha256::digest(b))
}

fn form(name: &str, body: Vec<u8>, content_type: &str) -> reqwest::multipart::Form {
    let part = reqwest::multipart::Part::bytes(body)
        .file_name(name.to_owned())
        .mime_str(content_type)
        .unwrap();
    reqwest::multipart::Form::new().part("file", part)
}

async fn upload(
    sys: &System,
    token: Option<&str>,
    stuff: &str,
    form: reqwest::multipart::Form,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/stuff/{stuff}/files", sys.url()))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn new_version(
    sys: &System,
    token: &str,
    stuff: &str,
    file: &str,
    form: reqwest::multipart::Form,
) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .put(format!("{}/api/stuff/{stuff}/files/{file}", sys.url()))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn message(body: &Value) -> (&str, Option<&str>) {
    (
        body["errors"][0]["message"].as_str().unwrap_or_default(),
        body["errors"][0]["field"].as_str(),
    )
}

/// Every regular file under `dir` (staged uploads included).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Waits until `f` holds or the deadline passes.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + T;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seller, buyer and a stranger with sockets, and one stuff of the seller's.
struct Market {
    sys: System,
    seller_t: String,
    other_t: String,
    seller: SioClient,
    buyer: SioClient,
    other: SioClient,
    stuff: String,
}

async fn market(opts: SystemOptions) -> Market {
    let sys = System::start(opts).await.unwrap();
    let (seller_t, _) = sys.signup("seller@example.com").await.unwrap();
    let (buyer_t, _) = sys.signup("buyer@example.com").await.unwrap();
    let (other_t, _) = sys.signup("other@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&seller_t)).await.unwrap();
    let buyer = sys.socket(0, Some(&buyer_t)).await.unwrap();
    let other = sys.socket(0, Some(&other_t)).await.unwrap();
    let created = ask(
        &seller,
        "stuff:create",
        json!({"title": "Linear algebra notes", "priceCents": 900}),
    )
    .await;
    let stuff = created["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["data"]["files"], json!([]), "{created}");
    assert_eq!(created["data"]["hasSecretNote"], false);
    Market {
        sys,
        seller_t,
        other_t,
        seller,
        buyer,
        other,
        stuff,
    }
}

impl Market {
    /// The buyer pays `order_id` with the test card and waits until it is complete.
    async fn pay(&self, order_id: &str) {
        let paid = ask(
            &self.buyer,
            "payment:create",
            json!({"orderId": order_id, "paymentMethod": "pm_card_visa"}),
        )
        .await;
        assert!(paid["data"]["id"].is_string(), "{paid}");
        self.buyer
            .wait_for("order:updated", T, |o| {
                o["id"] == order_id && o["status"] == "complete"
            })
            .await
            .unwrap();
    }

    /// The buyer orders the stuff and pays; the complete order's id.
    async fn buy(&self) -> String {
        let order = ask(&self.buyer, "order:create", json!({"stuffId": self.stuff})).await;
        let order_id = order["data"]["id"].as_str().unwrap().to_owned();
        self.pay(&order_id).await;
        order_id
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn upload_pay_download_and_every_refusal() {
    let m = market(SystemOptions::default()).await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    let viewer = sys.socket(0, None).await.unwrap();

    // Nothing to deliver yet: no order.
    let refused = ask(&m.buyer, "order:create", json!({"stuffId": stuff})).await;
    assert_eq!(
        err(&refused),
        (409, "This stuff has nothing to deliver yet")
    );

    // Refusals before any byte is stored. The first sends almost a whole file: the
    // router reads the refused body to its end, so the client gets the answer, not a
    // reset connection.
    let small = bytes(1000, 1);
    let (s, b) = upload(
        sys,
        Some(&m.other_t),
        stuff,
        form("x.pdf", bytes(1_000_000, 1), "application/pdf"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), message(&b).0),
        (403, "You do not own this stuff")
    );
    let (s, b) = upload(
        sys,
        None,
        stuff,
        form("x.pdf", small.clone(), "application/pdf"),
    )
    .await;
    assert_eq!((s.as_u16(), message(&b).0), (401, "Not authorized"));
    let no_file = reqwest::multipart::Form::new().text("other", "value");
    let (s, b) = upload(sys, Some(&m.seller_t), stuff, no_file).await;
    assert_eq!(
        (s.as_u16(), message(&b)),
        (400, ("A file is required", Some("file")))
    );
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        "no-such-stuff",
        form("x.pdf", small.clone(), "application/pdf"),
    )
    .await;
    assert_eq!((s.as_u16(), message(&b).0), (404, "Stuff not found"));
    // Over MAX_FILE_BYTES (1 MiB in tests): 413, and nothing left in the store.
    let huge = bytes(1024 * 1024 + 1, 2);
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("big.bin", huge, "application/octet-stream"),
    )
    .await;
    assert_eq!((s.as_u16(), message(&b).0), (413, "File too large"));
    assert_eq!(
        files_under(&sys.files_dir()),
        Vec::<std::path::PathBuf>::new()
    );

    // The seller uploads a PDF: 201 with its metadata; every viewer sees it listed.
    let pdf = bytes(300_000, 3);
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("Week 1/../notes.pdf", pdf.clone(), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    let file = b["file"].clone();
    assert_eq!(file["name"], "notes.pdf");
    assert_eq!(file["sizeBytes"], 300_000);
    assert_eq!(file["contentType"], "application/pdf");
    assert_eq!(file["sha256"], sha(&pdf));
    let file_id = file["id"].as_str().unwrap().to_owned();
    let pushed = viewer
        .wait_for("stuff:updated", T, |s| {
            s["id"] == stuff && s["files"].as_array().is_some_and(|f| f.len() == 1)
        })
        .await
        .unwrap();
    assert_eq!(pushed["files"][0], file, "public metadata only: {pushed}");
    let got = ask(&viewer, "stuff:get", json!({"id": stuff})).await["data"].clone();
    assert_eq!(got["files"], json!([file.clone()]));
    assert!(
        !got.to_string().contains("files/"),
        "no object key leaks: {got}"
    );

    // The buyer holds it: no upload while reserved; no delivery before paying.
    let order = ask(&m.buyer, "order:create", json!({"stuffId": stuff})).await["data"].clone();
    let order_id = order["id"].as_str().unwrap().to_owned();
    viewer
        .wait_for("stuff:updated", T, |s| {
            s["id"] == stuff && s["status"] == "reserved"
        })
        .await
        .unwrap();
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("y.pdf", small.clone(), "application/pdf"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), message(&b).0),
        (409, "Cannot edit a stuff while it is being checked out")
    );
    let early = ask(&m.buyer, "delivery:get", json!({"orderId": order_id})).await;
    assert_eq!(err(&early), (403, "Pay for this order to get the stuff"));

    // Paid: the buyer gets a link that works without headers.
    m.pay(&order_id).await;
    let delivery =
        ask(&m.buyer, "delivery:get", json!({"orderId": order_id})).await["data"].clone();
    assert_eq!(delivery["secretNote"], Value::Null);
    assert_eq!(delivery["files"][0]["sha256"], sha(&pdf));
    assert!(delivery["files"][0]["expiresAt"].is_string());
    let url = format!(
        "{}{}",
        sys.url(),
        delivery["files"][0]["url"].as_str().unwrap()
    );
    assert!(url.contains("/api/files/"), "{url}");
    let r = get(&url, &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert!(
        h["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"notes.pdf\"")
    );
    assert_eq!(h["etag"].to_str().unwrap(), format!("\"{}\"", sha(&pdf)));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&pdf));

    // Range: the bytes asked for, 206; outside the file: 416; same version: 304.
    let r = get(&url, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &pdf[1000..2000]);
    let r = get(&url, &[("range", "bytes=400000-")]).await;
    assert_eq!(r.status().as_u16(), 416);
    let etag = format!("\"{}\"", sha(&pdf));
    let r = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status().as_u16(), 304);

    // Altered or expired links: 403 with the contract's message.
    let mut altered = url.clone();
    altered.insert(url.len() - 5, 'x');
    let r = get(&altered, &[]).await;
    assert_eq!(r.status().as_u16(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(message(&body).0, "This download link has expired");
    let test_key = LinkConfig::for_tests().key;
    let expired = test_key.sign(&LinkClaims {
        file_id: file_id.clone(),
        object: "files/x/y".into(),
        name: "notes.pdf".into(),
        content_type: "application/pdf".into(),
        sha256: sha(&pdf),
        size_bytes: 300_000,
        order_id: Some(order_id.clone()),
        user_id: "someone".into(),
        expires: chrono::Utc::now().timestamp() - 1,
    });
    let r = get(&format!("{}{expired}", sys.url()), &[]).await;
    assert_eq!(r.status().as_u16(), 403);

    // Other users get nothing; the seller gets their own links.
    let theirs = ask(&m.other, "delivery:get", json!({"orderId": order_id})).await;
    assert_eq!(err(&theirs), (403, "Pay for this order to get the stuff"));
    let theirs = ask(&m.other, "delivery:get", json!({"stuffId": stuff})).await;
    assert_eq!(err(&theirs), (403, "You do not own this stuff"));
    let own = ask(&m.seller, "delivery:get", json!({"stuffId": stuff})).await;
    assert_eq!(own["data"]["files"][0]["sha256"], sha(&pdf), "{own}");
    let bad = ask(&m.buyer, "delivery:get", json!({})).await;
    assert_eq!(err(&bad).0, 400);

    // Sold: no new file, no removal; a new version is allowed and reaches the buyer.
    viewer
        .wait_for("stuff:updated", T, |s| {
            s["id"] == stuff && s["status"] == "sold"
        })
        .await
        .unwrap();
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("y.pdf", small.clone(), "application/pdf"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), message(&b).0),
        (409, "This stuff has already been sold")
    );
    let r = reqwest::Client::new()
        .delete(format!("{}/api/stuff/{stuff}/files/{file_id}", sys.url()))
        .bearer_auth(&m.seller_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let v2 = bytes(120_000, 9);
    let (s, b) = new_version(
        sys,
        &m.seller_t,
        stuff,
        &file_id,
        form("notes-v2.pdf", v2.clone(), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 200, "{b}");
    assert_eq!(
        (b["file"]["id"].as_str(), b["file"]["sha256"].as_str()),
        (Some(file_id.as_str()), Some(sha(&v2).as_str()))
    );
    let pushed = m
        .buyer
        .wait_for("delivery:updated", T, |d| d["orderId"] == order_id.as_str())
        .await
        .unwrap();
    assert_eq!(pushed, json!({"orderId": order_id}));
    // The old version is gone; fresh links serve the new one.
    assert_eq!(get(&url, &[]).await.status().as_u16(), 404);
    let delivery =
        ask(&m.buyer, "delivery:get", json!({"orderId": order_id})).await["data"].clone();
    let url2 = format!(
        "{}{}",
        sys.url(),
        delivery["files"][0]["url"].as_str().unwrap()
    );
    assert_eq!(sha(&get(&url2, &[]).await.bytes().await.unwrap()), sha(&v2));
    assert_eq!(
        files_under(&sys.files_dir()).len(),
        1,
        "only the live version is kept"
    );
    let (s, _) = new_version(
        sys,
        &m.other_t,
        stuff,
        &file_id,
        form("z.pdf", small, "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 403);
    m.sys.stop().await;
}

#[tokio::test]
async fn notes_limits_and_removal() {
    let m = market(SystemOptions::default()).await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    // A note alone makes it deliverable; it is never shown publicly.
    let updated = ask(
        &m.seller,
        "stuff:update",
        json!({"id": stuff, "secretNote": "KEY-1234"}),
    )
    .await;
    assert_eq!(updated["data"]["hasSecretNote"], true, "{updated}");
    assert!(!updated.to_string().contains("KEY-1234"));
    let too_long = ask(
        &m.seller,
        "stuff:update",
        json!({"id": stuff, "secretNote": "x".repeat(10_001)}),
    )
    .await;
    assert_eq!(err(&too_long).0, 400);
    assert_eq!(too_long["errors"][0]["field"], "secretNote");

    // Ten files at most; a removal frees a place and deletes the object.
    let mut ids = Vec::new();
    for i in 0..10u8 {
        let (s, b) = upload(
            sys,
            Some(&m.seller_t),
            stuff,
            form(&format!("part{i}.txt"), bytes(100, i), "text/plain"),
        )
        .await;
        assert_eq!(s.as_u16(), 201, "{b}");
        ids.push(b["file"]["id"].as_str().unwrap().to_owned());
    }
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("eleven.txt", bytes(10, 11), "text/plain"),
    )
    .await;
    assert_eq!(
        (s.as_u16(), message(&b).0),
        (409, "A stuff can have at most 10 files")
    );
    assert_eq!(files_under(&sys.files_dir()).len(), 10);
    let r = reqwest::Client::new()
        .delete(format!("{}/api/stuff/{stuff}/files/{}", sys.url(), ids[0]))
        .bearer_auth(&m.seller_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(files_under(&sys.files_dir()).len(), 9);
    let r = reqwest::Client::new()
        .delete(format!("{}/api/stuff/{stuff}/files/{}", sys.url(), ids[0]))
        .bearer_auth(&m.seller_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // The buyer pays and reads the note.
    let order_id = m.buy().await;
    let ack = ask(&m.buyer, "delivery:get", json!({"orderId": order_id})).await;
    let d = &ack["data"];
    assert_eq!(d["secretNote"], "KEY-1234", "{ack}");
    assert_eq!(d["files"].as_array().map(Vec::len), Some(9));
    m.sys.stop().await;
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_no_object() {
    let m = market(SystemOptions::default()).await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    let addr = sys.url().trim_start_matches("http://").to_owned();
    let boundary = "cutcutcut";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    );
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST /api/stuff/{stuff}/files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 900000\r\n\r\n{head}",
        m.seller_t
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Enough bytes that the upload has begun writing its object, then the client vanishes.
    tcp.write_all(&bytes(600_000, 5)).await.unwrap();
    tcp.flush().await.unwrap();
    let dir = sys.files_dir();
    eventually("the upload started writing", || {
        !files_under(&dir).is_empty()
    })
    .await;
    drop(tcp);
    eventually("the staged upload was removed", || {
        files_under(&dir).is_empty()
    })
    .await;
    let got = ask(&m.other, "stuff:get", json!({"id": stuff})).await;
    assert_eq!(got["data"]["files"], json!([]));

    // A body that ends early (framing broken) is a 400 and leaves nothing either.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = format!("{head}only this");
    let request = format!(
        "POST /api/stuff/{stuff}/files HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        m.seller_t,
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(files_under(&dir).is_empty());
    m.sys.stop().await;
}

#[tokio::test]
async fn the_sweeper_deletes_objects_no_file_points_at() {
    // Sweeps every 200 ms, of objects older than 2 s: longer than an upload here takes
    // from its object's creation to its record.
    let m = market(SystemOptions {
        orphan_sweep: Some((Duration::from_millis(200), Duration::from_secs(2))),
        ..SystemOptions::default()
    })
    .await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    let pdf = bytes(50_000, 8);
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("kept.pdf", pdf.clone(), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    // What a crash between storing and recording leaves: objects of this stuff and of no
    // stuff, written straight into the store.
    let dir = sys.files_dir();
    let orphans = [
        dir.join("files")
            .join(stuff)
            .join("0190aaaabbbbccccddddeeeeffff0000"),
        // A preview of an upload that was never recorded.
        dir.join("previews")
            .join(stuff)
            .join("0190aaaabbbbccccddddeeeeffff0001-1.jpg"),
        dir.join("files")
            .join(uuid::Uuid::now_v7().to_string())
            .join("0190aaaa"),
    ];
    for o in &orphans {
        std::fs::create_dir_all(o.parent().unwrap()).unwrap();
        std::fs::write(o, b"left behind").unwrap();
    }
    eventually("the orphans were swept", || {
        orphans.iter().all(|o| !o.exists())
    })
    .await;
    // The recorded file survived every sweep so far and still downloads.
    assert_eq!(files_under(&dir).len(), 1, "{:?}", files_under(&dir));
    let d = ask(&m.seller, "delivery:get", json!({"stuffId": stuff})).await["data"].clone();
    let url = format!("{}{}", sys.url(), d["files"][0]["url"].as_str().unwrap());
    let r = get(&url, &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&pdf));
    m.sys.stop().await;
}

#[tokio::test]
async fn the_s3_backend_stores_serves_and_cleans_up() {
    let s3 = S3Server::start().await.unwrap();
    s3.create_bucket("stuffmart-test").await.unwrap();
    let prefix = format!("run-{}", uuid::Uuid::new_v4().simple());
    let mut files = FilesConfig::for_tests(std::path::Path::new("/unused"));
    files.object_store_url = format!("s3://stuffmart-test/{prefix}");
    files.s3_options = s3.options();
    // Bigger than one S3 part (5 MiB), so the upload really is multipart.
    files.max_file_bytes = 12 * 1024 * 1024;
    let objects = Objects::open(&files).unwrap();
    let m = market(SystemOptions {
        files: Some(files),
        ..SystemOptions::default()
    })
    .await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    let list = || async {
        objects
            .store()
            .list(None)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
    };

    let too_big = bytes(12 * 1024 * 1024 + 1, 4);
    let (s, _) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("big.zip", too_big, "application/zip"),
    )
    .await;
    assert_eq!(s.as_u16(), 413);
    assert!(list().await.is_empty());

    let zip = bytes(11 * 1024 * 1024, 6);
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("code.zip", zip.clone(), "application/zip"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    let stored = list().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].size, zip.len() as u64);

    let order_id = m.buy().await;
    let d = ask(&m.buyer, "delivery:get", json!({"orderId": order_id})).await["data"].clone();
    let url = format!("{}{}", sys.url(), d["files"][0]["url"].as_str().unwrap());
    let r = get(&url, &[]).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&zip));
    let r = get(&url, &[("range", "bytes=6000000-6000099")]).await;
    assert_eq!(r.status().as_u16(), 206);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &zip[6_000_000..6_000_100]
    );

    // A new version replaces the object.
    let file_id = d["files"][0]["id"].as_str().unwrap().to_owned();
    let v2 = bytes(1000, 8);
    let (s, _) = new_version(
        sys,
        &m.seller_t,
        stuff,
        &file_id,
        form("code.zip", v2, "application/zip"),
    )
    .await;
    assert_eq!(s.as_u16(), 200);
    let stored = list().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].size, 1000);
    m.sys.stop().await;
}

/// A PDF of `pages` A4 pages, each saying "Page N" in large type.
fn pdf(pages: usize) -> Vec<u8> {
    let labels: Vec<String> = (1..=pages).map(|n| format!("Page {n}")).collect();
    let pages: Vec<_> = labels
        .iter()
        .map(|text| {
            vec![ms_common::pdf::TextLine {
                size: 48,
                y: 700,
                text,
            }]
        })
        .collect();
    ms_common::pdf::text_pdf(&pages)
}

/// The status of a header-less `GET` of `path` on the router.
async fn status_of(sys: &System, path: &str) -> u16 {
    get(&format!("{}{path}", sys.url()), &[])
        .await
        .status()
        .as_u16()
}

/// Every object under `previews/` in the local store.
fn previews_in(sys: &System) -> Vec<std::path::PathBuf> {
    files_under(&sys.files_dir().join("previews"))
}

#[tokio::test]
async fn a_pdf_shows_its_page_count_and_its_first_pages_to_anyone() {
    assert!(
        std::process::Command::new("pdftoppm")
            .arg("-v")
            .output()
            .is_ok(),
        "poppler-utils (pdftoppm) is not installed: scripts/test.sh installs it"
    );
    let m = market(SystemOptions::default()).await;
    let (sys, stuff) = (&m.sys, m.stuff.as_str());
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("lectures.pdf", pdf(5), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    let file = b["file"].clone();
    assert_eq!(file["pages"], 5, "{b}");
    let urls: Vec<String> = serde_json::from_value(file["previewUrls"].clone()).unwrap();
    assert_eq!(urls.len(), 3, "the first three pages: {urls:?}");

    // A stranger who has not bought it sees the same previews, and they load without any
    // header, as immutable JPEGs of at most 800 px with the page drawn on them.
    let seen = ask(&m.other, "stuff:get", json!({"id": stuff})).await;
    assert_eq!(
        seen["data"]["files"][0]["previewUrls"],
        json!(urls),
        "{seen}"
    );
    assert_eq!(seen["data"]["files"][0]["pages"], 5);
    let mut images = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        assert!(
            url.starts_with(&format!("/api/previews/{stuff}/"))
                && url.ends_with(&format!("-{}.jpg", i + 1)),
            "{url}"
        );
        let r = get(&format!("{}{url}", sys.url()), &[]).await;
        assert_eq!(r.status().as_u16(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let img = image::load_from_memory_with_format(
            &r.bytes().await.unwrap(),
            image::ImageFormat::Jpeg,
        )
        .unwrap()
        .to_luma8();
        let (w, h) = img.dimensions();
        assert_eq!(h, 800, "an A4 page is taller than wide: {w}x{h}");
        assert!((560..=570).contains(&w), "A4 proportions: {w}x{h}");
        // The text made it onto the page: some pixels are dark, most are white.
        let dark = img.pixels().filter(|p| p.0[0] < 100).count();
        assert!(
            dark > 100 && dark < (w * h / 10) as usize,
            "{dark} dark pixels"
        );
        images.push(img);
    }
    assert_ne!(images[0], images[1], "each page is its own image");
    assert_eq!(previews_in(sys).len(), 3);
    // Names of no upload, or of pages past the preview, are not served.
    for bad in [
        format!("/api/previews/{stuff}/nope-1.jpg"),
        urls[0].replace("-1.jpg", "-4.jpg"),
        urls[0].replace(".jpg", ".png"),
    ] {
        assert_eq!(status_of(sys, &bad).await, 404, "{bad}");
    }

    // A short PDF shows every page; a "PDF" that is not one shows nothing, and uploads.
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("two.pdf", pdf(2), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    assert_eq!(
        (
            b["file"]["pages"].as_u64(),
            b["file"]["previewUrls"].as_array().map(Vec::len)
        ),
        (Some(2), Some(2))
    );
    let (s, b) = upload(
        sys,
        Some(&m.seller_t),
        stuff,
        form("fake.pdf", bytes(3000, 1), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 201, "{b}");
    assert_eq!(
        (&b["file"]["pages"], &b["file"]["previewUrls"]),
        (&Value::Null, &json!([]))
    );
    assert_eq!(previews_in(sys).len(), 5);

    // A new version brings its own previews and takes the old ones away; so does removal.
    let file_id = file["id"].as_str().unwrap();
    let (s, b) = new_version(
        sys,
        &m.seller_t,
        stuff,
        file_id,
        form("lectures.pdf", pdf(1), "application/pdf"),
    )
    .await;
    assert_eq!(s.as_u16(), 200, "{b}");
    assert_eq!(b["file"]["pages"], 1);
    let v2 = b["file"]["previewUrls"][0].as_str().unwrap().to_owned();
    assert_ne!(v2, urls[0]);
    for old in &urls {
        assert_eq!(status_of(sys, old).await, 404, "{old} outlived its version");
    }
    assert_eq!(status_of(sys, &v2).await, 200);
    assert_eq!(previews_in(sys).len(), 3);
    let r = reqwest::Client::new()
        .delete(format!("{}/api/stuff/{stuff}/files/{file_id}", sys.url()))
        .bearer_auth(&m.seller_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(status_of(sys, &v2).await, 404);
    assert_eq!(
        previews_in(sys).len(),
        2,
        "only the two-page file's previews are left"
    );
    m.sys.stop().await;
}
