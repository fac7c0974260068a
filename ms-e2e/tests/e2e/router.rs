//! The router's own duties: envelopes for bad input, unknown events, a missing service,
//! sign-in throttling, `session:authenticate`, health, correlation ids and the web client.

use crate::{T, err};
use ms_common::shutdown::Shutdown;
use ms_e2e::{System, SystemOptions};
use ms_testkit::SioClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn bad_socket_input_gets_an_envelope_and_the_socket_keeps_working() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let c = sys.socket(0, None).await.unwrap();
    assert_eq!(
        err(&c.emit_with_ack("nope:nothing", json!({}), T).await.unwrap()),
        (404, "Unknown event")
    );
    assert_eq!(
        err(&c.emit_with_ack("user:signin", json!({}), T).await.unwrap()).0,
        404,
        "accounts are not relayed over sockets"
    );
    assert_eq!(
        err(&c
            .emit_with_ack("stuff:get", json!("a string"), T)
            .await
            .unwrap()),
        (400, "Payload must be an object")
    );
    assert_eq!(
        err(&c
            .emit_with_ack("stuff:get", json!([1, 2]), T)
            .await
            .unwrap())
        .0,
        400
    );
    let big = json!({"id": "x".repeat(70_000)});
    assert_eq!(
        err(&c.emit_with_ack("stuff:get", big, T).await.unwrap()).0,
        400
    );
    // Still usable afterwards.
    let list = c.emit_with_ack("stuff:list", json!({}), T).await.unwrap();
    assert!(list["data"]["items"].is_array(), "{list}");
    sys.stop().await;
}

#[tokio::test]
async fn a_service_that_does_not_answer_is_a_503_ack() {
    let mut sys = System::start(SystemOptions::default()).await.unwrap();
    sys.payment.take().unwrap().handle.stop().await;
    let (t, _) = sys.signup("x@example.com").await.unwrap();
    let c = sys.socket(0, Some(&t)).await.unwrap();
    let ack = c.emit_with_ack("coupon:list", json!({}), T).await.unwrap();
    assert_eq!(ack["status"], 503, "{ack}");
    sys.stop().await;
}

#[tokio::test]
async fn session_authenticate_switches_identity_without_reconnecting() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (t, id) = sys.signup("late@example.com").await.unwrap();
    let c = sys.socket(0, None).await.unwrap();
    let anon = c.emit_with_ack("order:list", json!({}), T).await.unwrap();
    assert_eq!(anon["status"], 401);
    let bad = c
        .emit_with_ack("session:authenticate", json!({"token": "garbage"}), T)
        .await
        .unwrap();
    assert_eq!(err(&bad), (401, "Not authorized"));
    let ok = c
        .emit_with_ack("session:authenticate", json!({"token": t}), T)
        .await
        .unwrap();
    assert_eq!(ok["data"]["user"]["id"].as_str(), Some(id.as_str()));
    assert_eq!(
        c.emit_with_ack("order:list", json!({}), T).await.unwrap(),
        json!({"data": []})
    );
    sys.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_are_throttled_per_email() {
    let sys = System::start(SystemOptions {
        signin_max_attempts: 3,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    sys.signup("t@example.com").await.unwrap();
    let http = reqwest::Client::new();
    let signin = |pw: &'static str| {
        http.post(format!("{}/api/users/signin", sys.url()))
            .json(&json!({"email": "T@example.com", "password": pw}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            signin("wrong-password").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = signin("password123").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": [{"message": "Too many requests"}]})
    );
    sys.stop().await;
}

/// `n` sign-ups at once with e-mails `{tag}{i}@example.com`; each one's status and body.
async fn signup_burst(url: &str, tag: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let http = reqwest::Client::new();
    futures_util::future::join_all((0..n).map(|i| {
        let req = http
            .post(format!("{url}/api/users/signup"))
            .json(&json!({"email": format!("{tag}{i}@example.com"), "password": "password123"}));
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    }))
    .await
}

#[tokio::test]
async fn sign_ups_beyond_the_allowance_of_an_address_get_429_in_the_envelope() {
    let sys = System::start(SystemOptions {
        signup_max_attempts: 3,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let got = signup_burst(sys.url(), "burst", 10).await;
    let created = got
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let refused: Vec<_> = got
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(created, 3, "{got:?}");
    assert_eq!(refused.len(), 7, "{got:?}");
    for (_, body) in refused {
        assert_eq!(body, &json!({"errors": [{"message": "Too many requests"}]}));
    }
    // A forged X-Forwarded-For does not make a new client: no proxy is trusted.
    let r = reqwest::Client::new()
        .post(format!("{}/api/users/signup", sys.url()))
        .header("x-forwarded-for", "198.51.100.77")
        .json(&json!({"email": "forged@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    sys.stop().await;
}

#[tokio::test]
async fn an_email_longer_than_the_contract_allows_is_a_400_on_email_at_the_router() {
    let sys = System::start(SystemOptions {
        signin_max_attempts: 1,
        signup_max_attempts: 1,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let long = format!("{}@example.com", "a".repeat(60_000));
    for path in ["signup", "signin"] {
        for _ in 0..3 {
            let r = http
                .post(format!("{}/api/users/{path}", sys.url()))
                .json(&json!({"email": long, "password": "password123"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(
                r.json::<Value>().await.unwrap(),
                json!({"errors": [{"message": "Email must be valid", "field": "email"}]})
            );
        }
    }
    // Refused before the throttles: the address's single sign-up is still there.
    sys.signup("short@example.com").await.unwrap();
    sys.stop().await;
}

#[tokio::test]
async fn argon2_runs_one_at_a_time_and_the_excess_gets_429_never_503() {
    let sys = System::start(SystemOptions {
        argon2: Some(ms_user::password::Argon2Limits {
            max_concurrent: 1,
            wait: Duration::from_millis(1),
        }),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let got = signup_burst(sys.url(), "argon", 12).await;
    let statuses: Vec<u16> = got.iter().map(|(s, _)| s.as_u16()).collect();
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 429),
        "no 503, nothing else: {statuses:?}"
    );
    for (s, body) in &got {
        if *s == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body, &json!({"errors": [{"message": "Too many requests"}]}));
        }
    }
    // Sign-in verifies under the same permits, and works once the burst is over.
    let r = reqwest::Client::new()
        .post(format!("{}/api/users/signin", sys.url()))
        .json(&json!({"email": "nobody@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    sys.stop().await;
}

#[tokio::test]
async fn http_envelopes_health_and_correlation_ids() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let http = reqwest::Client::new();
    let url = sys.url();
    let r = http
        .post(format!("{url}/api/users/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["errors"][0]["message"],
        "Malformed JSON body"
    );
    let r = http
        .get(format!("{url}/api/nothing/here"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.json::<Value>().await.unwrap()["errors"].is_array());
    let r = http
        .get(format!("{url}/healthz"))
        .header("x-correlation-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-correlation-id"], "trace-me-42");
    assert_eq!(
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // Errors no handler wrote still come in the envelope, with their status and headers.
    let big = json!({"email": "x".repeat(70_000), "password": "password123"});
    let r = http
        .post(format!("{url}/api/users/signup"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": [{"message": "Payload too large"}]})
    );
    let r = http
        .post(format!("{url}/api/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.headers().contains_key("allow"));
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": [{"message": "Method not allowed"}]})
    );
    sys.stop().await;
}

/// A router of `sys` that serves a web client: `index.html` and `assets/app.js` in a
/// directory of its own.
struct WebRouter {
    url: String,
    dir: std::path::PathBuf,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl WebRouter {
    async fn start(sys: &System, index_html: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("stuffmart-static-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), index_html).unwrap();
        std::fs::write(dir.join("assets/app.js"), "console.log(1)").unwrap();
        let mut cfg = ms_router::RouterConfig::for_tests(&sys.env.prefix);
        cfg.static_dir = Some(dir.clone());
        let shutdown = Shutdown::new();
        let app = ms_router::Application::build(cfg, shutdown.clone())
            .await
            .unwrap();
        let url = format!("http://127.0.0.1:{}", app.port());
        let task = tokio::spawn(app.run_until_stopped());
        Self {
            url,
            dir,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.token.cancel();
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(self.dir);
    }
}

#[tokio::test]
async fn the_web_client_is_served_with_a_single_page_fallback() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let web = WebRouter::start(&sys, "<!doctype html><title>StuffMart</title>").await;
    let url = web.url.clone();
    let get = |p: &str| reqwest::get(format!("{url}{p}"));
    let r = get("/").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("StuffMart"));
    assert_eq!(
        get("/assets/app.js").await.unwrap().text().await.unwrap(),
        "console.log(1)"
    );
    let deep = get("/stuff/123/edit").await.unwrap();
    assert_eq!(
        deep.status(),
        StatusCode::OK,
        "client-side routes fall back to index.html"
    );
    assert!(deep.text().await.unwrap().contains("StuffMart"));
    assert_eq!(
        get("/api/unknown").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // The socket still works on the same port.
    assert!(SioClient::connect(&url, None).await.is_ok());
    web.stop().await;
    sys.stop().await;
}

#[tokio::test]
async fn a_connection_limit_protects_the_router() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let mut cfg = ms_router::RouterConfig::for_tests(&sys.env.prefix);
    cfg.max_connections = 3;
    let shutdown = Shutdown::new();
    let app = ms_router::Application::build(cfg, shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(app.run_until_stopped());
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(SioClient::connect(&url, None).await.unwrap());
    }
    let refused = SioClient::connect(&url, None).await.unwrap_err();
    assert_eq!(
        refused,
        ms_testkit::SioError::ConnectError("Too many connections".into())
    );
    // A refused token does not use up a slot either.
    assert_eq!(
        SioClient::connect(&url, Some("garbage")).await.unwrap_err(),
        ms_testkit::SioError::ConnectError("Not authorized".into())
    );
    // A slot frees up when a socket leaves.
    open.pop().unwrap().disconnect().await.unwrap();
    let again = ms_testkit::eventually(T, "a free slot", || async {
        SioClient::connect(&url, None).await.ok()
    })
    .await
    .unwrap();
    assert!(again.is_connected());
    shutdown.token.cancel();
    let _ = task.await;
    sys.stop().await;
}

/// Connects `n` sockets `parallel` at a time; each emits its first event the moment it is
/// connected. Returns the events that got no ack (with what happened instead).
async fn first_events_without_ack(
    sys: &System,
    token: &str,
    n: usize,
    parallel: usize,
) -> Vec<String> {
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let token = token.to_owned();
            async move {
                // A mix of anonymous and signed-in sockets, and of relayed and router events.
                let (auth, event, payload) = match i % 3 {
                    0 => (None, "stuff:list", json!({})),
                    1 => (Some(token.as_str()), "order:list", json!({})),
                    _ => (None, "session:authenticate", json!({"token": token})),
                };
                let c = match sys.socket(0, auth).await {
                    Ok(c) => c,
                    Err(e) => return Some(format!("#{i}: connect failed: {e}")),
                };
                let outcome = match c.emit_with_ack(event, payload, T).await {
                    Ok(ack) if ack.get("data").is_some() => None,
                    Ok(ack) => Some(format!("#{i} {event}: error ack {ack}")),
                    Err(e) => Some(format!("#{i} {event}: {e}")),
                };
                let _ = c.disconnect().await;
                outcome
            }
        })
        .buffer_unordered(parallel)
        .filter_map(|lost| async move { lost })
        .collect()
        .await
}

#[tokio::test]
async fn the_first_event_after_connecting_is_answered_even_when_the_connect_handler_is_slow() {
    // socketioxide sends CONNECT before it runs the connect handler; a client may emit at
    // once. With a slow handler that window is wide: a listener registered by the handler
    // would miss every one of these first events (issue 12).
    let sys = System::start(SystemOptions {
        connect_handler_delay: Some(Duration::from_millis(300)),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (token, _) = sys.signup("first@example.com").await.unwrap();
    let lost = first_events_without_ack(&sys, &token, 30, 30).await;
    assert!(lost.is_empty(), "first events without an ack: {lost:?}");
    sys.stop().await;
}

#[tokio::test]
async fn many_connect_then_emit_sequences_lose_no_ack() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (token, _) = sys.signup("many@example.com").await.unwrap();
    let lost = first_events_without_ack(&sys, &token, 300, 30).await;
    assert!(lost.is_empty(), "first events without an ack: {lost:?}");
    sys.stop().await;
}

#[tokio::test]
async fn a_shared_stuff_link_carries_the_stuff_in_the_head_escaped() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let web = WebRouter::start(
        &sys,
        "<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta name=\"description\" content=\"StuffMart: students sell digital stuff to each other\" />\n    <title>StuffMart</title>\n  </head>\n  <body>\n    <div id=\"root\"></div>\n  </body>\n</html>\n",
    )
    .await;
    let url = web.url.clone();

    let (token, _) = sys.signup("pages@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&token)).await.unwrap();
    let title = r#"Notes </title><script>alert("hi")</script> & more"#;
    let created = seller
        .emit_with_ack(
            "stuff:create",
            json!({"title": title, "priceCents": 1250, "course": "cs 101", "description": "Week 1–12, typed", "secretNote": "k"}),
            T,
        )
        .await
        .unwrap();
    let id = created["data"]["id"].as_str().unwrap().to_owned();

    let r = reqwest::get(format!("{url}/stuff/{id}")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let headers = r.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "public, max-age=60");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<title>Notes &lt;/title&gt;&lt;script&gt;alert(&quot;hi&quot;)&lt;/script&gt; &amp; more · StuffMart</title>"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains(r#"<meta property="og:title" content="Notes &lt;/title&gt;"#));
    assert!(page.contains(r#"<meta property="og:description" content="Week 1–12, typed" />"#));
    assert!(page.contains(r#"<meta property="product:price:amount" content="12.50" />"#));
    assert!(
        !page.contains("students sell digital stuff"),
        "one description"
    );
    let open = r#"<script type="application/ld+json">"#;
    let ld_start = page.find(open).unwrap() + open.len();
    let ld_end = ld_start + page[ld_start..].find("</script>").unwrap();
    let ld: Value = serde_json::from_str(&page[ld_start..ld_end]).unwrap();
    assert_eq!(
        (&ld["@type"], &ld["name"], &ld["category"]),
        (&json!("Product"), &json!(title), &json!("CS 101"))
    );
    assert_eq!(
        ld["offers"],
        json!({"@type": "Offer", "price": "12.50", "priceCurrency": "EUR", "availability": "https://schema.org/InStock", "seller": {"@type": "Person", "name": "pages"}})
    );
    assert!(page.contains("<div id=\"root\"></div>"), "still the app");

    // Unknown: the app, with 404 (not the JSON envelope), and not cached.
    let r = reqwest::get(format!("{url}/stuff/no-such-stuff"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let page = r.text().await.unwrap();
    assert!(page.contains("<title>StuffMart</title>") && page.contains("id=\"root\""));
    // Deeper client routes are the plain app.
    let r = reqwest::get(format!("{url}/stuff/{id}/edit"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("<title>StuffMart</title>"));
    web.stop().await;
    sys.stop().await;
}
