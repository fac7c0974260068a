//! HTTP routes of the contract: the account endpoints (relayed to ms-user), health, the
//! file routes ([`crate::files`]), the web client with a single-page-app fallback. Bodies are parsed here so malformed ones
//! get the contract's envelope; the refresh token lives only in an HttpOnly cookie.

use crate::AppState;
use crate::client;
use crate::ratelimit::AuthAction;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use axum_extra::TypedHeader;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use axum_extra::headers::Authorization;
use axum_extra::headers::authorization::Bearer;
use ms_common::ApiError;
use ms_common::auth::NOT_AUTHORIZED;
use ms_common::contract::{
    ClientConfig, DisplayName, PaymentAction, StripeWebhookRequest, UserAction, limits,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use tower_http::services::{ServeDir, ServeFile};
use tracing::Instrument;

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The cookie is sent only to the account routes.
const COOKIE_PATH: &str = "/api/users";
/// Header that carries the correlation id in and out.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id (from the client if sane, else fresh).
#[derive(Clone, Debug)]
pub struct CorrelationId(pub String);

/// Builds the axum app (the Socket.IO layer is added by the caller).
pub fn routes(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/users/signup", post(signup))
        .route("/api/users/signin", post(signin))
        .route("/api/users/refresh", post(refresh))
        .route("/api/users/signout", post(signout))
        .route("/api/users/me", get(me).patch(update_me))
        .route("/api/config", get(config))
        .route("/api/{*rest}", any(not_found))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.cfg.max_payload_bytes,
        ))
        .merge(crate::files::routes(&state))
        .merge(crate::covers::routes())
        .merge(crate::previews::routes())
        .merge(
            Router::new()
                .route("/api/payments/stripe-webhook", post(stripe_webhook))
                .layer(axum::extract::DefaultBodyLimit::max(
                    limits::WEBHOOK_BODY_MAX,
                )),
        );
    let app = match &state.cfg.static_dir {
        Some(dir) => {
            let spa = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            // Shared stuff links carry the stuff in the page's head.
            let api = match crate::pages::Shell::read(dir) {
                Ok(shell) => api.merge(
                    Router::new()
                        .route("/stuff/{id}", get(crate::pages::stuff_page))
                        .layer(Extension(shell)),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "no index.html: stuff pages are served without their metadata");
                    api
                }
            };
            api.fallback_service(spa)
        }
        None => api.fallback(any(not_found)),
    };
    app.layer(axum::middleware::from_fn(envelope))
        .layer(axum::middleware::from_fn(correlation))
        .with_state(state)
}

/// `GET /api/config`: what the web client must know of the server before anything else
/// (the currency every price is in), read at run time so one build serves any deployment.
async fn config(State(s): State<AppState>) -> Response {
    let body = Json(ClientConfig {
        currency: s.cfg.currency.to_string(),
    });
    ([(header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// `POST /api/payments/stripe-webhook`: Stripe's event, body and `Stripe-Signature` passed
/// to ms-payment untouched (it alone holds the signing secret and verifies them). A 2xx
/// tells Stripe to stop; a 5xx (ms-payment down or busy) makes it retry for days.
async fn stripe_webhook(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let invalid = || ApiError::bad_request("Invalid signature");
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= limits::WEBHOOK_SIGNATURE_MAX)
        .ok_or_else(invalid)?;
    let payload = String::from_utf8(body.to_vec()).map_err(|_| invalid())?;
    let req = StripeWebhookRequest {
        payload,
        signature: signature.to_owned(),
    };
    let req = serde_json::to_value(req).map_err(ApiError::internal_from)?;
    let reply = s
        .rpc
        .request(PaymentAction::Webhook, None, req, &cid.0)
        .await?;
    Ok(Json(reply))
}

/// The message for an error response that axum or tower produced before any handler ran.
fn framework_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_server_error() => "Internal server error",
        _ => "Bad request",
    }
}

/// Every error leaves in the contract's envelope, also the ones no handler wrote (405 for
/// a wrong method, 413 from the body limit, …): those come as plain text and are rewritten
/// here, keeping their status and headers such as `Allow`.
async fn envelope(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    // JSON is an envelope already; HTML is a page (a shared stuff link's 404 is the app).
    let written = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || written {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let body = ApiError::new(status.as_u16(), framework_message(status)).body();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// Sanitises a client-sent correlation id: at most 64 of `[A-Za-z0-9_-]`.
pub fn sane_correlation_id(raw: Option<&str>) -> String {
    match raw {
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            s.to_owned()
        }
        _ => ms_common::telemetry::new_correlation_id(),
    }
}

async fn correlation(mut req: Request, next: Next) -> Response {
    let cid = sane_correlation_id(
        req.headers()
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok()),
    );
    req.extensions_mut().insert(CorrelationId(cid.clone()));
    let span = tracing::info_span!("http", correlation_id = %cid, method = %req.method(), path = %req.uri().path());
    let mut res = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&cid) {
        res.headers_mut().insert(CORRELATION_HEADER, v);
    }
    res
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not found")
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    if s.broker.is_connected() {
        Ok(Json(json!({"status": "ready"})))
    } else {
        Err(ApiError::unavailable())
    }
}

/// Parses a JSON object body; anything else is a 400 in the envelope.
fn json_object(body: &Bytes) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request("Body must be a JSON object")),
        Err(_) => Err(ApiError::bad_request("Malformed JSON body")),
    }
}

async fn call_user(
    s: &AppState,
    action: UserAction,
    token: Option<String>,
    payload: Value,
    cid: &str,
) -> Result<Value, ApiError> {
    s.rpc.request(action, token, payload, cid).await
}

/// The refresh cookie: HttpOnly, SameSite=Lax, only sent to the account routes, `Secure`
/// behind HTTPS (`COOKIE_SECURE`), living as long as the token (`max_age` seconds).
fn refresh_cookie(s: &AppState, value: String, max_age: i64) -> Cookie<'static> {
    Cookie::build((REFRESH_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(COOKIE_PATH)
        .max_age(time::Duration::seconds(max_age))
        .secure(s.cfg.cookie_secure)
        .build()
}

/// Moves the refresh token (and its lifetime) from ms-user's reply into the cookie; the
/// body keeps the rest, the contract's `Session`.
fn session_response(
    s: &AppState,
    jar: CookieJar,
    status: StatusCode,
    mut reply: Value,
) -> Response {
    let fields = reply.as_object_mut();
    let (token, max_age) = match fields {
        Some(o) => (o.remove("refreshToken"), o.remove("refreshTokenMaxAge")),
        None => (None, None),
    };
    let jar = match (
        token.as_ref().and_then(Value::as_str),
        max_age.and_then(|v| v.as_i64()),
    ) {
        (Some(t), Some(age)) => jar.add(refresh_cookie(s, t.to_owned(), age)),
        _ => jar,
    };
    (status, jar, Json(reply)).into_response()
}

/// The refresh token the browser sent, if any.
fn refresh_token(jar: &CookieJar) -> Option<String> {
    jar.get(REFRESH_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Counts a sign-up or sign-in against the throttles (per e-mail and per client address);
/// a 400 for an over-long e-mail, a 429 over an allowance.
fn throttle(
    s: &AppState,
    action: AuthAction,
    payload: &Value,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<(), ApiError> {
    let ip = client::client_ip(peer.ip(), headers, &s.cfg.trusted_proxies);
    let email = payload.get("email").and_then(Value::as_str);
    s.throttle.attempt(action, email, ip)
}

async fn signup(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = json_object(&body)?;
    throttle(&s, AuthAction::Signup, &payload, &headers, peer)?;
    let reply = call_user(&s, UserAction::Signup, None, payload, &cid.0).await?;
    Ok(session_response(&s, jar, StatusCode::CREATED, reply))
}

async fn signin(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = json_object(&body)?;
    throttle(&s, AuthAction::Signin, &payload, &headers, peer)?;
    let reply = call_user(&s, UserAction::Signin, None, payload, &cid.0).await?;
    Ok(session_response(&s, jar, StatusCode::OK, reply))
}

async fn refresh(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    let token = refresh_token(&jar).ok_or_else(|| ApiError::unauthorized(NOT_AUTHORIZED))?;
    let reply = call_user(
        &s,
        UserAction::Refresh,
        None,
        json!({"refreshToken": token}),
        &cid.0,
    )
    .await?;
    Ok(session_response(&s, jar, StatusCode::OK, reply))
}

async fn signout(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    if let Some(token) = refresh_token(&jar) {
        call_user(
            &s,
            UserAction::Signout,
            None,
            json!({"refreshToken": token}),
            &cid.0,
        )
        .await?;
    }
    // Overwrites the cookie with an empty one that expires at once.
    let jar = jar.add(refresh_cookie(&s, String::new(), 0));
    Ok((StatusCode::NO_CONTENT, jar).into_response())
}

/// The caller's access token from `Authorization: Bearer …`; a request without one is a
/// 401 in the contract's envelope. Verification is the owning service's job.
#[derive(Debug, Clone)]
pub struct BearerToken(pub String);

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let TypedHeader(Authorization(bearer)) =
            TypedHeader::<Authorization<Bearer>>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::unauthorized(NOT_AUTHORIZED))?;
        let token = bearer.token().trim();
        if token.is_empty() {
            return Err(ApiError::unauthorized(NOT_AUTHORIZED));
        }
        Ok(Self(token.to_owned()))
    }
}

async fn me(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    BearerToken(token): BearerToken,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        call_user(&s, UserAction::Me, Some(token), json!({}), &cid.0).await?,
    ))
}

/// `PATCH /api/users/me {displayName}`: the name is checked here (a bad one never reaches
/// the broker) and again by ms-user, which owns it.
async fn update_me(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    BearerToken(token): BearerToken,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let payload = json_object(&body)?;
    let name = payload
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    DisplayName::parse(name)?;
    Ok(Json(
        call_user(&s, UserAction::Update, Some(token), payload, &cid.0).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_sanitised() {
        assert_eq!(sane_correlation_id(Some("abc-123_X")), "abc-123_X");
        assert_ne!(sane_correlation_id(Some("bad id\n")), "bad id\n");
        // Too long or missing: a new id, itself a sane one, and a different one each time.
        let fresh = sane_correlation_id(Some(&"a".repeat(65)));
        assert_ne!(fresh, "a".repeat(65));
        assert_eq!(sane_correlation_id(Some(&fresh)), fresh);
        assert_ne!(sane_correlation_id(None), sane_correlation_id(None));
    }

    async fn bearer_of(value: Option<&'static str>) -> Result<String, u16> {
        let mut req = axum::http::Request::builder();
        if let Some(v) = value {
            req = req.header(header::AUTHORIZATION, v);
        }
        let (mut parts, ()) = req.body(()).unwrap().into_parts();
        BearerToken::from_request_parts(&mut parts, &())
            .await
            .map(|b| b.0)
            .map_err(|e| e.status)
    }

    #[tokio::test]
    async fn cookies_and_bearer() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=xyz; b=2"),
        );
        assert_eq!(
            refresh_token(&CookieJar::from_headers(&h)).as_deref(),
            Some("xyz")
        );
        assert_eq!(refresh_token(&CookieJar::new()), None);
        assert_eq!(bearer_of(Some("Bearer t0k")).await, Ok("t0k".to_owned()));
        assert_eq!(bearer_of(Some("bearer t0k")).await, Ok("t0k".to_owned()));
        assert_eq!(bearer_of(Some("Basic abc")).await, Err(401));
        assert_eq!(bearer_of(Some("Bearer ")).await, Err(401));
        assert_eq!(bearer_of(None).await, Err(401));
        assert!(json_object(&Bytes::from_static(b"[1]")).is_err());
        assert!(json_object(&Bytes::from_static(b"{")).is_err());
        assert!(json_object(&Bytes::from_static(b"{}")).is_ok());
    }
}
