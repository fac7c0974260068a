//! The account flow through the router's HTTP API with ms-user behind RabbitMQ, and token
//! attacks over HTTP and Socket.IO.

use base64::Engine;
use ms_common::auth::Claims;
use ms_common::events::Role;
use ms_e2e::{System, SystemOptions};
use ms_testkit::{SioClient, SioError};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The `refresh_token` cookie a response sets, with its attributes.
fn set_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("refresh_token="))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_owned()
}

async fn post(
    url: &str,
    path: &str,
    body: Option<Value>,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut req = client().post(format!("{url}{path}"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

async fn me(url: &str, token: &str) -> reqwest::Response {
    client()
        .get(format!("{url}/api/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn fields(body: &Value) -> Vec<&str> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect()
}

#[tokio::test]
async fn the_whole_account_flow_over_http() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url();
    let creds = json!({"email": "ann@example.com", "password": "password123"});

    let r = post(url, "/api/users/signup", Some(creds.clone()), None).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cookie = set_cookie(&r).expect("refresh cookie");
    // Max-Age is the refresh token's own lifetime (ms-user's REFRESH_TOKEN_SECONDS, 3600
    // in tests), not a constant of the router.
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/api/users",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    let body: Value = r.json().await.unwrap();
    assert!(
        body.get("refreshTokenMaxAge").is_none(),
        "the lifetime travels in the cookie only: {body}"
    );
    assert_eq!(body["user"]["email"], "ann@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert!(
        body.get("refreshToken").is_none(),
        "refresh token only in the cookie"
    );
    let token = body["accessToken"].as_str().unwrap().to_owned();

    let r = post(url, "/api/users/signup", Some(creds.clone()), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(
        b,
        json!({"errors": [{"message": "Email in use", "field": "email"}]})
    );

    let r = post(
        url,
        "/api/users/signup",
        Some(json!({"email": "bad", "password": "short"})),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(fields(&r.json().await.unwrap()), vec!["email", "password"]);

    let r = post(url, "/api/users/signin", Some(creds.clone()), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(set_cookie(&r).is_some());
    let wrong = post(
        url,
        "/api/users/signin",
        Some(json!({"email": "ann@example.com", "password": "wrong-pass"})),
        None,
    )
    .await;
    let unknown = post(
        url,
        "/api/users/signin",
        Some(json!({"email": "who@example.com", "password": "password123"})),
        None,
    )
    .await;
    assert_eq!(
        (wrong.status(), unknown.status()),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    let (w, u): (Value, Value) = (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(w, u);
    assert_eq!(w, json!({"errors": [{"message": "Invalid credentials"}]}));

    let r = me(url, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["user"], body["user"]);
    let r = client()
        .get(format!("{url}/api/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Refresh rotates: a new token and cookie. Once the new cookie has been used, the old
    // one is refused and its reuse revokes the whole family (the newest cookie stops
    // working too). (Before the new one is used, the old one is accepted once within
    // REFRESH_GRACE_SECONDS: ms-user's tests cover that window.)
    let old = cookie_value(&cookie);
    let r = post(url, "/api/users/refresh", None, Some(&old)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let new = cookie_value(&set_cookie(&r).expect("rotated cookie"));
    assert_ne!(old, new);
    let refreshed: Value = r.json().await.unwrap();
    assert!(refreshed.get("refreshToken").is_none());
    assert_eq!(
        me(url, refreshed["accessToken"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    let r = post(url, "/api/users/refresh", None, Some(&new)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let newest = cookie_value(&set_cookie(&r).expect("rotated cookie"));
    assert_eq!(
        post(url, "/api/users/refresh", None, Some(&old))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(url, "/api/users/refresh", None, Some(&newest))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(url, "/api/users/refresh", None, None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Sign out: 204, cookie cleared, refresh token revoked.
    let r = post(url, "/api/users/signin", Some(creds), None).await;
    let c = cookie_value(&set_cookie(&r).unwrap());
    let r = post(url, "/api/users/signout", None, Some(&c)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookie(&r).expect("cleared cookie");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        post(url, "/api/users/refresh", None, Some(&c))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    sys.stop().await;
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn bad_tokens_are_refused_over_http_and_socket_io() {
    let sys = System::start(SystemOptions::default()).await.unwrap();
    let url = sys.url();
    let r = post(
        url,
        "/api/users/signup",
        Some(json!({"email": "kim@example.com", "password": "password123"})),
        None,
    )
    .await;
    let body: Value = r.json().await.unwrap();
    let good = body["accessToken"].as_str().unwrap().to_owned();
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, role: Role| Claims {
        sub: user_id.clone(),
        email: "kim@example.com".into(),
        role,
        iat: now - 100,
        exp,
    };

    let expired = sys
        .user
        .service
        .sign(&claims(now - 60, Role::User))
        .await
        .unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    let mut forged: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    forged["role"] = json!("admin");
    let wrong_signature = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
    let other_key = {
        let ring = ms_user::tokens::Keyring::from_rows(&[ms_user::tokens::generate_key()])
            .unwrap()
            .unwrap();
        let t = ring.sign(&claims(now + 600, Role::Admin)).unwrap();
        let kid = jsonwebtoken::decode_header(&good).unwrap().kid.unwrap();
        let p: Vec<&str> = t.split('.').collect();
        format!(
            "{}.{}.{}",
            b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": kid})),
            p[1],
            p[2]
        )
    };
    let hs256 = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"guessable");
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = jsonwebtoken::decode_header(&good).unwrap().kid;
        jsonwebtoken::encode(&h, &claims(now + 600, Role::Admin), &key).unwrap()
    };
    assert_eq!(me(url, &good).await.status(), StatusCode::OK, "control");
    assert!(
        SioClient::connect(url, Some(&good)).await.is_ok(),
        "control"
    );
    for (name, bad) in [
        ("expired", expired.as_str()),
        ("alg none", &alg_none),
        ("wrong signature", &wrong_signature),
        ("other key", &other_key),
        ("hs256", &hs256),
        ("garbage", "garbage"),
    ] {
        let r = me(url, bad).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{name} over HTTP");
        let err = SioClient::connect(url, Some(bad)).await.unwrap_err();
        assert_eq!(
            err,
            SioError::ConnectError("Not authorized".into()),
            "{name} over Socket.IO"
        );
    }
    // Anonymous browsing is allowed.
    let anon = SioClient::connect(url, None).await.unwrap();
    assert!(anon.is_connected());
    sys.stop().await;
}
