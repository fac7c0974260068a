//! ms-user over a real RabbitMQ: the account actions as the router calls them, token rules,
//! key rotation, and the `user.created` event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::ApiError;
use ms_common::auth::{TokenVerifier, VerifyToken};
use ms_common::events::{Event, EventEnvelope, Role};
use ms_common::messaging::RpcKeySource;
use ms_common::messaging::{RpcClient, RpcRequest, Service};
use ms_testkit::{TestEnv, eventually};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Ctx {
    env: TestEnv,
    rpc: RpcClient,
    user: ms_user::RunningUser,
}

async fn setup(admins: &[&str]) -> Ctx {
    setup_with(|cfg| cfg.admin_emails = ms_user::parse_admin_emails(&admins.join(","))).await
}

async fn setup_with(change: impl FnOnce(&mut ms_user::UserConfig)) -> Ctx {
    let env = TestEnv::new();
    let mut cfg = ms_user::UserConfig::for_tests(&env.prefix);
    change(&mut cfg);
    let user = ms_user::start(cfg).await.unwrap();
    let rpc = RpcClient::new(
        env.broker().await.unwrap(),
        env.names(),
        Duration::from_secs(5),
    );
    Ctx { env, rpc, user }
}

impl Ctx {
    async fn call(
        &self,
        action: &str,
        token: Option<&str>,
        payload: Value,
    ) -> Result<Value, ApiError> {
        let req = RpcRequest {
            action: action.into(),
            token: token.map(str::to_owned),
            payload,
        };
        self.rpc.call(Service::User, &req, "test").await
    }
    async fn done(self) {
        self.user.handle.stop().await;
        self.env.teardown(&[]).await;
    }
}

fn fields(e: &ApiError) -> Vec<&str> {
    e.errors.iter().filter_map(|d| d.field.as_deref()).collect()
}

#[tokio::test]
async fn signup_signin_me_and_validation() {
    let c = setup(&["Boss@Example.com"]).await;
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": " Ann@Example.com ", "password": "password123"}),
        )
        .await
        .unwrap();
    assert_eq!(s["user"]["email"], "ann@example.com");
    assert_eq!(s["user"]["role"], "user");
    assert!(s["accessToken"].as_str().unwrap().split('.').count() == 3);
    assert!(s["refreshToken"].as_str().unwrap().len() >= 40);

    let e = c
        .call(
            "user:signup",
            None,
            json!({"email": "ann@example.com", "password": "password123"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message(), fields(&e)),
        (400, "Email in use", vec!["email"])
    );
    let e = c
        .call(
            "user:signup",
            None,
            json!({"email": "nope", "password": "short"}),
        )
        .await
        .unwrap_err();
    assert_eq!((e.status, fields(&e)), (400, vec!["email", "password"]));
    let e = c
        .call("user:signup", None, json!({"password": "password123"}))
        .await
        .unwrap_err();
    assert_eq!(fields(&e), vec!["email"]);
    let e = c
        .call("user:signup", None, json!({"email": 5, "password": []}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 400);

    let admin = c
        .call(
            "user:signup",
            None,
            json!({"email": "boss@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    assert_eq!(admin["user"]["role"], "admin");

    let s2 = c
        .call(
            "user:signin",
            None,
            json!({"email": "ANN@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    assert_eq!(s2["user"]["id"], s["user"]["id"]);
    let wrong = c
        .call(
            "user:signin",
            None,
            json!({"email": "ann@example.com", "password": "wrong-password"}),
        )
        .await
        .unwrap_err();
    let unknown = c
        .call(
            "user:signin",
            None,
            json!({"email": "who@example.com", "password": "password123"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        wrong, unknown,
        "wrong password and unknown e-mail are indistinguishable"
    );
    assert_eq!(
        (wrong.status, wrong.first_message()),
        (401, "Invalid credentials")
    );

    let me = c
        .call("user:me", s2["accessToken"].as_str(), json!({}))
        .await
        .unwrap();
    assert_eq!(me["user"], s["user"]);
    let e = c.call("user:me", None, json!({})).await.unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));
    let e = c.call("user:nope", None, json!({})).await.unwrap_err();
    assert_eq!(e.status, 404);
    c.done().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_after_the_grace_window_revokes_the_family() {
    // No grace window: any reuse of a rotated token is past it.
    let c = setup_with(|cfg| cfg.refresh_grace = Duration::ZERO).await;
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "bob@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let r1 = s["refreshToken"].as_str().unwrap().to_owned();
    let s2 = c
        .call("user:refresh", None, json!({"refreshToken": r1}))
        .await
        .unwrap();
    let r2 = s2["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    assert_eq!(s2["user"]["email"], "bob@example.com");
    // The old token is refused, and its reuse revokes the new one too.
    let e = c
        .call("user:refresh", None, json!({"refreshToken": r1}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    let e = c
        .call("user:refresh", None, json!({"refreshToken": r2}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 401, "family revoked after reuse");
    // A separate sign-in is a separate family; sign-out revokes it.
    let s3 = c
        .call(
            "user:signin",
            None,
            json!({"email": "bob@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let r3 = s3["refreshToken"].as_str().unwrap().to_owned();
    c.call("user:signout", None, json!({"refreshToken": r3}))
        .await
        .unwrap();
    assert_eq!(
        c.call("user:refresh", None, json!({"refreshToken": r3}))
            .await
            .unwrap_err()
            .status,
        401
    );
    c.call("user:signout", None, json!({"refreshToken": "unknown"}))
        .await
        .unwrap();
    assert_eq!(
        c.call("user:refresh", None, json!({}))
            .await
            .unwrap_err()
            .status,
        401
    );
    assert_eq!(
        c.call("user:refresh", None, json!({"refreshToken": "garbage"}))
            .await
            .unwrap_err()
            .status,
        401
    );
    c.done().await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_let_at_most_one_through() {
    let c = setup(&[]).await;
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "race@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let r = s["refreshToken"].as_str().unwrap().to_owned();
    let tries = (0..6).map(|_| c.call("user:refresh", None, json!({"refreshToken": r})));
    let results = futures_util::future::join_all(tries).await;
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| e.status == 401)
    );
    // Within the grace window a second exchange may succeed, but it supersedes the first:
    // of all the tokens handed out, at most one is still live.
    let mut live = 0;
    for s in results.iter().filter_map(|r| r.as_ref().ok()) {
        let token = s["refreshToken"].as_str().unwrap();
        if c.call("user:refresh", None, json!({"refreshToken": token}))
            .await
            .is_ok()
        {
            live += 1;
        }
    }
    assert!(live <= 1, "{live} live tokens in one family");
    c.done().await;
}

#[tokio::test]
async fn a_rotation_whose_reply_was_lost_does_not_log_the_user_out() {
    let c = setup(&[]).await;
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "lost@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let r1 = s["refreshToken"].as_str().unwrap().to_owned();
    // The rotation commits, but the client gave up before the reply came: it never sees r2.
    let lost = c
        .call("user:refresh", None, json!({"refreshToken": r1}))
        .await
        .unwrap();
    let r2 = lost["refreshToken"].as_str().unwrap().to_owned();
    // Its retry with r1, within the grace window, gets a fresh successor.
    let retried = c
        .call("user:refresh", None, json!({"refreshToken": r1}))
        .await
        .unwrap();
    let r3 = retried["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(r3, r2);
    assert_eq!(retried["user"]["email"], "lost@example.com");
    // The successor nobody saw is superseded (refused, without harming the family).
    assert_eq!(
        c.call("user:refresh", None, json!({"refreshToken": r2}))
            .await
            .unwrap_err()
            .status,
        401
    );
    let s4 = c
        .call("user:refresh", None, json!({"refreshToken": r3}))
        .await
        .unwrap();
    let r4 = s4["refreshToken"].as_str().unwrap().to_owned();
    // Once a successor of r1 has been used, r1 is theft even inside the window: the family
    // is revoked.
    assert_eq!(
        c.call("user:refresh", None, json!({"refreshToken": r1}))
            .await
            .unwrap_err()
            .status,
        401
    );
    assert_eq!(
        c.call("user:refresh", None, json!({"refreshToken": r4}))
            .await
            .unwrap_err()
            .status,
        401,
        "family revoked after reuse"
    );
    c.done().await;
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn other_processes_verify_tokens_with_the_published_keys_and_follow_rotation() {
    let c = setup(&[]).await;
    let verifier = TokenVerifier::new(Arc::new(RpcKeySource::new(c.rpc.clone())));
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "kim@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let t1 = s["accessToken"].as_str().unwrap().to_owned();
    let who = verifier.verify(&t1).await.unwrap();
    assert_eq!(
        (who.email.as_str(), who.role),
        ("kim@example.com", Role::User)
    );

    // Rotation: new tokens carry a new kid; the verifier fetches it; old tokens still pass.
    let kid = c.user.service.rotate_signing_key().await.unwrap();
    let s2 = c
        .call(
            "user:signin",
            None,
            json!({"email": "kim@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let t2 = s2["accessToken"].as_str().unwrap().to_owned();
    let header = jsonwebtoken::decode_header(&t2).unwrap();
    assert_eq!(header.kid.as_deref(), Some(kid.as_str()));
    let who = eventually(
        Duration::from_secs(5),
        "the rotated key to be accepted",
        || async { verifier.verify(&t2).await.ok() },
    )
    .await
    .unwrap();
    assert_eq!(who.email, "kim@example.com");
    assert!(verifier.verify(&t1).await.is_ok());
    let jwks = c.call("user:jwks", None, json!({})).await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert!(
        jwks.to_string().find("seed").is_none() && jwks["keys"][0].get("d").is_none(),
        "no private parts"
    );

    // Attacks: garbage, alg none, tampered payload, unknown kid, expired, foreign key.
    let parts: Vec<&str> = t2.split('.').collect();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    let foreign_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "EdDSA", "kid": "forged"})),
        parts[1],
        parts[2]
    );
    let foreign = {
        let k = ms_user::tokens::Keyring::from_rows(&[ms_user::tokens::generate_key()])
            .unwrap()
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let mut tok = k
            .sign(&ms_common::auth::Claims {
                sub: "x".into(),
                email: "x@example.com".into(),
                role: Role::Admin,
                iat: now,
                exp: now + 60,
            })
            .unwrap();
        // Same kid as a real key, different private key.
        let p: Vec<&str> = tok.split('.').collect();
        tok = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})),
            p[1],
            p[2]
        );
        tok
    };
    for bad in [
        "garbage",
        "",
        "a.b.c",
        &none,
        &tampered,
        &foreign_kid,
        &foreign,
    ] {
        let e = verifier.verify(bad).await.unwrap_err();
        assert_eq!(
            (e.status, e.first_message()),
            (401, "Not authorized"),
            "accepted {bad:?}"
        );
    }
    c.done().await;
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let c = setup(&[]).await;
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "old@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let verifier = TokenVerifier::new(Arc::new(RpcKeySource::new(c.rpc.clone())));
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| ms_common::auth::Claims {
        sub: s["user"]["id"].as_str().unwrap().into(),
        email: "old@example.com".into(),
        role: Role::User,
        iat: now - 1000,
        exp,
    };
    let fresh = c.user.service.sign(&claims(now + 60)).await.unwrap();
    assert!(
        verifier.verify(&fresh).await.is_ok(),
        "control: same key, valid expiry"
    );
    let expired = c.user.service.sign(&claims(now - 60)).await.unwrap();
    let e = verifier.verify(&expired).await.unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));
    let e = c
        .call("user:me", Some(&expired), json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 401, "ms-user refuses it too");
    c.done().await;
}

#[tokio::test]
async fn signup_publishes_user_created_through_the_outbox() {
    let c = setup(&[]).await;
    let broker = c.env.broker().await.unwrap();
    let ch = broker.channel().await.unwrap();
    let q = format!("{}observer", c.env.prefix);
    ch.queue_declare(
        q.clone().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        q.clone().into(),
        c.env.names().events_exchange().into(),
        "user.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let s = c
        .call(
            "user:signup",
            None,
            json!({"email": "eve@example.com", "password": "password123"}),
        )
        .await
        .unwrap();
    let msg = eventually(Duration::from_secs(5), "user.created", || async {
        broker
            .channel()
            .await
            .ok()?
            .basic_get(q.clone().into(), BasicGetOptions { no_ack: true })
            .await
            .ok()?
    })
    .await
    .unwrap();
    let ev: EventEnvelope = serde_json::from_slice(&msg.delivery.data).unwrap();
    match ev.event {
        Event::UserCreated(u) => {
            assert_eq!(u.id, s["user"]["id"].as_str().unwrap());
            assert_eq!((u.email.as_str(), u.version), ("eve@example.com", 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ev.correlation_id.as_deref(), Some("test"));
    c.done().await;
}
