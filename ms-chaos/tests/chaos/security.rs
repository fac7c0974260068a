//! Attacks through the public interface: other users' resources, admin-only events, token
//! edge cases (and services that check tokens themselves when the router is bypassed),
//! sign-in throttling under concurrency, payload and connection limits.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use ms_chaos::amqp::RawRpc;
use ms_chaos::client::{Ack, ask, envelope_problem, error_body_problem};
use ms_chaos::{ProcOptions, ProcSystem};
use ms_common::auth::Claims;
use ms_common::events::Role;
use ms_common::shutdown::Shutdown;
use ms_e2e::{System, SystemOptions};
use ms_testkit::{SioClient, SioError, eventually};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(10);

async fn data(c: &SioClient, event: &str, payload: Value) -> Value {
    match ask(c, event, payload.clone(), T).await.unwrap() {
        Ack::Data(d) => d,
        other => panic!("{event} {payload}: {other:?}"),
    }
}

async fn status(c: &SioClient, event: &str, payload: Value) -> (u64, String) {
    match ask(c, event, payload, T).await.unwrap() {
        Ack::Data(d) => (200, d.to_string()),
        Ack::Error(s, m) => (s, m),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_reads_or_changes_another_users_stuff_orders_or_payments() {
    let sys = System::start(SystemOptions {
        admin_emails: "admin@example.com".into(),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (alice_t, _) = sys.signup("alice@example.com").await.unwrap();
    let (bob_t, _) = sys.signup("bob@example.com").await.unwrap();
    let (eve_t, _) = sys.signup("eve@example.com").await.unwrap();
    let (admin_t, _) = sys.signup("admin@example.com").await.unwrap();
    let alice = sys.socket(0, Some(&alice_t)).await.unwrap();
    let bob = sys.socket(0, Some(&bob_t)).await.unwrap();
    let eve = sys.socket(0, Some(&eve_t)).await.unwrap();
    let admin = sys.socket(0, Some(&admin_t)).await.unwrap();

    let stuff = data(
        &alice,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "alice's", "priceCents": 1000}),
    )
    .await;
    let sid = stuff["id"].as_str().unwrap().to_owned();
    // Editing someone else's listing, with or without a version.
    for patch in [
        json!({"id": sid, "title": "eve's now"}),
        json!({"id": sid, "version": 1, "priceCents": 500}),
        json!({"id": sid, "version": 1, "description": "x"}),
    ] {
        assert_eq!(
            status(&eve, "stuff:update", patch).await,
            (403, "You do not own this stuff".into())
        );
    }
    let unchanged = data(&eve, "stuff:get", json!({"id": sid})).await;
    assert_eq!(unchanged, stuff, "a refused edit changes nothing");
    // Buying one's own listing.
    assert_eq!(
        status(&alice, "order:create", json!({"stuffId": sid}))
            .await
            .0,
        403
    );

    let order = data(&bob, "order:create", json!({"stuffId": sid})).await;
    let oid = order["id"].as_str().unwrap().to_owned();
    assert_eq!(
        status(&eve, "order:get", json!({"id": oid})).await,
        (403, "You do not own this order".into())
    );
    assert_eq!(
        status(&eve, "order:cancel", json!({"id": oid})).await,
        (403, "You do not own this order".into())
    );
    assert_eq!(
        status(&alice, "order:get", json!({"id": oid})).await.0,
        403,
        "the seller neither"
    );
    assert_eq!(data(&eve, "order:list", json!({})).await, json!([]));
    assert_eq!(
        data(&bob, "order:get", json!({"id": oid})).await["status"],
        "created",
        "a refused cancel changes nothing"
    );

    // Paying for someone else's order, with a card or a free coupon.
    let coupon = data(
        &admin,
        "coupon:create",
        json!({"percentOff": 100, "maxRedemptions": 1}),
    )
    .await;
    let code = coupon["code"].as_str().unwrap().to_owned();
    for pay in [
        json!({"orderId": oid, "paymentMethod": "pm_card_visa"}),
        json!({"orderId": oid, "couponCode": code}),
        json!({"orderId": oid, "paymentMethod": "pm_card_chargeDeclined"}),
    ] {
        let (s, _) = status(&eve, "payment:create", pay).await;
        assert_eq!(s, 403);
    }
    let coupons = data(&admin, "coupon:list", json!({})).await;
    assert_eq!(
        coupons[0]["redemptions"], 0,
        "no redemption for a refused payment"
    );
    assert_eq!(
        data(&bob, "order:get", json!({"id": oid})).await["status"],
        "created",
        "a refused decline does not cancel the order"
    );
    // The owner can still pay (so nothing was paid or declined on their behalf).
    data(
        &bob,
        "payment:create",
        json!({"orderId": oid, "couponCode": code}),
    )
    .await;
    bob.wait_for("order:updated", T, |o| {
        o["id"] == oid.as_str() && o["status"] == "complete"
    })
    .await
    .unwrap();
    // Other users' order pushes never reach eve (bob's own push above is the sync point;
    // the fan-out sends each push once, to the owner's room).
    let leaked: Vec<_> = eve
        .drain_events()
        .into_iter()
        .filter(|(name, _)| name == "order:updated")
        .collect();
    assert!(leaked.is_empty(), "eve saw {leaked:?}");
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_and_ordinary_users_are_refused_what_needs_more() {
    let sys = System::start(SystemOptions {
        admin_emails: "admin@example.com".into(),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let (user_t, _) = sys.signup("user@example.com").await.unwrap();
    let (admin_t, _) = sys.signup("admin@example.com").await.unwrap();
    let anon = sys.socket(0, None).await.unwrap();
    let user = sys.socket(0, Some(&user_t)).await.unwrap();
    let admin = sys.socket(0, Some(&admin_t)).await.unwrap();
    let sid = data(
        &user,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "t", "priceCents": 500}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (event, payload) in [
        (
            "stuff:create",
            json!({"secretNote": "the goods", "title": "t", "priceCents": 500}),
        ),
        ("stuff:update", json!({"id": sid, "title": "x"})),
        ("order:create", json!({"stuffId": sid})),
        ("order:cancel", json!({"id": "x"})),
        ("order:list", json!({})),
        ("order:get", json!({"id": "x"})),
        (
            "payment:create",
            json!({"orderId": "x", "paymentMethod": "pm_card_visa"}),
        ),
        ("coupon:create", json!({"percentOff": 100})),
        ("coupon:list", json!({})),
    ] {
        assert_eq!(
            status(&anon, event, payload).await,
            (401, "Not authorized".into()),
            "anonymous {event}"
        );
    }
    for (event, payload) in [
        ("coupon:create", json!({"percentOff": 100})),
        ("coupon:create", json!({"percentOff": 100, "role": "admin"})),
        ("coupon:list", json!({})),
    ] {
        assert_eq!(status(&user, event, payload).await.0, 403, "user {event}");
    }
    // Anyone may browse; admins may manage coupons.
    assert!(data(&anon, "stuff:list", json!({})).await["items"].is_array());
    data(&anon, "stuff:get", json!({"id": sid})).await;
    data(&admin, "coupon:create", json!({"percentOff": 10})).await;
    assert_eq!(
        data(&admin, "coupon:list", json!({}))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sys.stop().await;
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn claims(sub: &str, role: Role, exp_in: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: sub.into(),
        email: format!("{sub}@example.com"),
        role,
        iat: now - 10,
        exp: now + exp_in,
    }
}

async fn me(url: &str, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{url}/api/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_edge_cases_are_refused_everywhere_including_behind_the_router() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url().to_owned();
    let (good, uid) = sys.signup("kim@example.com").await.unwrap();

    // A correctly signed token for an account that does not exist (deleted, or never
    // created): the account endpoint refuses it in the envelope.
    let ghost = sys.token_for("no-such-user").await.unwrap();
    let (s, body) = me(&url, &ghost).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(error_body_problem(&body, false), None, "{body}");

    // A key id nobody published, and a header that is not JSON.
    let foreign = {
        let ring = ms_user::tokens::Keyring::from_rows(&[ms_user::tokens::generate_key()])
            .unwrap()
            .unwrap();
        ring.sign(&claims(&uid, Role::Admin, 600)).unwrap()
    };
    let parts: Vec<&str> = good.split('.').collect();
    let bad_header = format!("bm90IGpzb24.{}.{}", parts[1], parts[2]);
    let no_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "EdDSA", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    let two_dots = format!("{good}.");
    for (name, bad) in [
        ("unknown kid", foreign.as_str()),
        ("header not JSON", &bad_header),
        ("no kid", &no_kid),
        ("extra segment", &two_dots),
        ("empty signature", &format!("{}.{}.", parts[0], parts[1])),
    ] {
        assert_eq!(me(&url, bad).await.0, 401, "{name} over HTTP");
        assert_eq!(
            SioClient::connect(&url, Some(bad)).await.unwrap_err(),
            SioError::ConnectError("Not authorized".into()),
            "{name} over Socket.IO"
        );
    }

    // session:authenticate with an expired token: refused, the socket stays anonymous.
    let expired = sys
        .user
        .service
        .sign(&claims(&uid, Role::User, -60))
        .await
        .unwrap();
    let c = sys.socket(0, None).await.unwrap();
    assert_eq!(
        status(&c, "session:authenticate", json!({"token": expired})).await,
        (401, "Not authorized".into())
    );
    assert_eq!(status(&c, "order:list", json!({})).await.0, 401);

    // A token that expires while its socket is connected: the services stop accepting it
    // (each checks the token of every request, not only the router at connect time).
    let short = sys
        .user
        .service
        .sign(&claims(&uid, Role::User, 1))
        .await
        .unwrap();
    let s = sys.socket(0, Some(&short)).await.unwrap();
    assert_eq!(status(&s, "order:list", json!({})).await.0, 200);
    eventually(
        Duration::from_secs(20),
        "the expired token to be refused",
        || async { (status(&s, "order:list", json!({})).await.0 == 401).then_some(()) },
    )
    .await
    .unwrap();

    // Zero trust: requests put straight on the services' queues (bypassing the router)
    // are checked by the services themselves.
    let broker = sys.env.broker().await.unwrap();
    let mut rpc = RawRpc::new(&broker).await.unwrap();
    let names = sys.env.names();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let mut forged_claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    forged_claims["role"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);
    for (svc, action, payload) in [
        (
            ms_common::messaging::Service::Order,
            "order:list",
            json!({}),
        ),
        (
            ms_common::messaging::Service::Stuff,
            "stuff:create",
            json!({"secretNote": "the goods", "title": "t", "priceCents": 500}),
        ),
        (
            ms_common::messaging::Service::Payment,
            "coupon:create",
            json!({"percentOff": 100}),
        ),
        (ms_common::messaging::Service::User, "user:me", json!({})),
    ] {
        for (name, token) in [
            ("none", Some(alg_none.as_str())),
            ("forged admin", Some(forged.as_str())),
            ("foreign key", Some(foreign.as_str())),
            ("expired", Some(expired.as_str())),
            ("missing", None),
        ] {
            let body = json!({"action": action, "token": token, "payload": payload});
            let reply = rpc
                .call(&names.rpc_queue(svc), body.to_string().as_bytes(), T)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{action} with {name}: no reply"));
            assert_eq!(envelope_problem(&reply), None);
            assert_eq!(
                reply["status"], 401,
                "{action} with a {name} token: {reply}"
            );
        }
    }
    broker.close().await;
    sys.stop().await;
}

/// Starts one more in-process router on `sys` with its own settings.
async fn extra_router(
    sys: &System,
    tweak: impl FnOnce(&mut ms_router::RouterConfig),
) -> (
    String,
    Shutdown,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let mut cfg = ms_router::RouterConfig::for_tests(&sys.env.prefix);
    tweak(&mut cfg);
    let shutdown = Shutdown::new();
    let app = ms_router::Application::build(cfg, shutdown.clone())
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    (url, shutdown, tokio::spawn(app.run_until_stopped()))
}

async fn signin_burst(
    url: &str,
    attempts: Vec<(String, &'static str, Option<String>)>,
) -> Vec<u16> {
    let http = reqwest::Client::new();
    futures_util::future::join_all(attempts.into_iter().map(|(email, pw, xff)| {
        let mut req = http
            .post(format!("{url}/api/users/signin"))
            .json(&json!({"email": email, "password": pw}));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        async move {
            let r = req.send().await.unwrap();
            let s = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(error_body_problem(&body, false), None, "{s} {body}");
            s
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_limit_holds_under_concurrent_attempts() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    sys.signup("victim@example.com").await.unwrap();
    const MAX: usize = 5;

    // One e-mail, 30 guesses at once (case and spaces varied): only MAX reach ms-user.
    let (url, stop1, task1) = extra_router(&sys, |c| c.signin_max_attempts = MAX as u32).await;
    let burst = (0..30)
        .map(|i| {
            let email = match i % 3 {
                0 => "victim@example.com".to_owned(),
                1 => "VICTIM@example.com".to_owned(),
                _ => " victim@example.com ".to_owned(),
            };
            (email, "wrong-password", None)
        })
        .collect();
    let got = signin_burst(&url, burst).await;
    assert_eq!(got.iter().filter(|s| **s == 401).count(), MAX, "{got:?}");
    assert_eq!(
        got.iter().filter(|s| **s == 429).count(),
        30 - MAX,
        "{got:?}"
    );
    // The right password does not get through either while the window lasts.
    let right = signin_burst(
        &url,
        vec![("victim@example.com".into(), "password123", None)],
    )
    .await;
    assert_eq!(right, vec![429]);

    // One address, 30 different e-mails with forged X-Forwarded-For headers (the router
    // does not trust proxies by default): again only MAX attempts.
    let (url, stop2, task2) = extra_router(&sys, |c| c.signin_max_attempts = MAX as u32).await;
    let burst = (0..30)
        .map(|i| {
            (
                format!("someone{i}@example.com"),
                "wrong-password",
                Some(format!("10.0.0.{i}")),
            )
        })
        .collect();
    let got = signin_burst(&url, burst).await;
    assert_eq!(got.iter().filter(|s| **s == 401).count(), MAX, "{got:?}");
    assert_eq!(
        got.iter().filter(|s| **s == 429).count(),
        30 - MAX,
        "{got:?}"
    );

    for (s, t) in [(stop1, task1), (stop2, task2)] {
        s.token.cancel();
        let _ = tokio::time::timeout(T, t).await;
    }
    sys.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_payloads_are_refused_without_hurting_anyone_else() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let (t, _) = sys.signup("big@example.com").await.unwrap();
    let url = sys.url().to_owned();
    let bystander = sys.socket(0, None).await.unwrap();
    let big_sender = sys.socket(0, Some(&t)).await.unwrap();

    // Just under the limit: an ordinary validation answer.
    let near = json!({"secretNote": "the goods", "title": "x".repeat(60_000), "priceCents": 500});
    let a = ask(&big_sender, "stuff:create", near, T).await.unwrap();
    assert_eq!(a.status(), 400, "{a:?}");
    // Over the limit: refused (an error ack, or the connection is dropped), nothing stored.
    let over = json!({"secretNote": "the goods", "title": "x".repeat(200_000), "priceCents": 500});
    match big_sender.emit_with_ack("stuff:create", over, T).await {
        Ok(v) => {
            assert_eq!(envelope_problem(&v), None);
            assert_eq!(v["status"], 400, "{v}");
        }
        Err(e) => assert_eq!(e, SioError::Disconnected, "dropped, not hung"),
    }
    // Others are unaffected, and the catalogue is empty.
    let list = data(&bystander, "stuff:list", json!({})).await;
    assert_eq!(list["items"], json!([]));

    // HTTP: a body over MAX_PAYLOAD_BYTES is refused in the contract's error shape.
    let r = reqwest::Client::new()
        .post(format!("{url}/api/users/signup"))
        .header("content-type", "application/json")
        .body(json!({"email": "a@example.com", "password": "x".repeat(100_000)}).to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert!(code == 413 || code == 400, "{code}");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    assert_eq!(
        error_body_problem(&body, false),
        None,
        "HTTP {code} for an oversized body must use the error envelope, got {text:?}"
    );
    sys.stop().await;
}

/// A Socket.IO connection done by hand, so it can be dropped without any goodbye.
async fn raw_socket(
    url: &str,
    join_namespace: bool,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let ws_url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        url.replacen("http://", "ws://", 1)
    );
    let (mut ws, _) = tokio::time::timeout(T, tokio_tungstenite::connect_async(ws_url)).await??;
    let open = tokio::time::timeout(T, ws.next()).await?;
    anyhow::ensure!(
        matches!(&open, Some(Ok(Message::Text(t))) if t.starts_with('0')),
        "no engine.io open: {open:?}"
    );
    if join_namespace {
        ws.send(Message::text("40")).await?;
        loop {
            match tokio::time::timeout(T, ws.next()).await? {
                Some(Ok(Message::Text(t))) if t.starts_with("40") => break,
                Some(Ok(Message::Text(t))) if t.starts_with("44") => {
                    anyhow::bail!("refused: {t}")
                }
                Some(Ok(_)) => {}
                other => anyhow::bail!("closed: {other:?}"),
            }
        }
    }
    Ok(ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_holds_under_a_connect_storm_and_abrupt_drops_free_their_slots() {
    const MAX: usize = 5;
    let sys = ProcSystem::start(ProcOptions {
        max_connections: Some(MAX),
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let url = sys.url.clone();

    // 20 at once: exactly MAX get in, the others are told why.
    let storm =
        futures_util::future::join_all((0..20).map(|_| SioClient::connect(&url, None))).await;
    let mut kept = Vec::new();
    let mut refused = 0;
    for r in storm {
        match r {
            Ok(c) => kept.push(c),
            Err(SioError::ConnectError(m)) if m == "Too many connections" => refused += 1,
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!((kept.len(), refused), (MAX, 20 - MAX));
    // The ones inside work.
    data(&kept[0], "stuff:list", json!({})).await;
    for c in kept {
        c.disconnect().await.unwrap();
    }

    // Clients that vanish without a goodbye (TCP gone, no Socket.IO disconnect) give their
    // slots back too.
    for round in 0..3 {
        let mut raw = Vec::new();
        for _ in 0..MAX {
            raw.push(
                eventually(T, &format!("a free slot in round {round}"), || async {
                    raw_socket(&url, true).await.ok()
                })
                .await
                .unwrap(),
            );
        }
        assert!(
            raw_socket(&url, true).await.is_err(),
            "round {round}: one more than MAX got in"
        );
        drop(raw);
    }
    let back = eventually(T, "MAX sockets again after abrupt drops", || async {
        let mut v = Vec::new();
        for _ in 0..MAX {
            v.push(SioClient::connect(&url, None).await.ok()?);
        }
        Some(v)
    })
    .await
    .unwrap();
    assert_eq!(back.len(), MAX);
    drop(back);
    drop(sys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_connections_that_never_join_are_bounded_too() {
    const MAX: usize = 3;
    let sys = ProcSystem::start(ProcOptions {
        max_connections: Some(MAX),
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let url = sys.url.clone();
    let mut members = Vec::new();
    for _ in 0..MAX {
        members.push(SioClient::connect(&url, None).await.unwrap());
    }
    // With every slot taken, 4 × MAX more clients open Engine.IO sessions and never send
    // the namespace CONNECT. They must not pile up: each is refused or closed promptly
    // rather than held open (socketioxide's default connect timeout is 45 s).
    let mut lurkers = Vec::new();
    for _ in 0..(4 * MAX) {
        if let Ok(ws) = raw_socket(&url, false).await {
            lurkers.push(ws);
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut still_open = 0;
    for mut ws in lurkers {
        let closed = loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => break false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break true,
                Ok(Some(Ok(Message::Text(t)))) if t == "2" => {
                    let _ = ws.send(Message::text("3")).await;
                }
                Ok(Some(Ok(_))) => {}
            }
        };
        if !closed {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open, 0,
        "{still_open} transport connections beyond MAX_CONNECTIONS={MAX} were still open after 10 s"
    );
    drop(members);
    drop(sys);
}
