//! HTTP routes of the contract: the account endpoints (relayed to ms-user), health, the
//! web client with a single-page-app fallback. Bodies are parsed here so malformed ones
//! get the contract's envelope; the refresh token lives only in an HttpOnly cookie.

use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Json, Router};
use ms_common::ApiError;
use ms_common::auth::NOT_AUTHORIZED;
use ms_common::contract::UserAction;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tower_http::services::{ServeDir, ServeFile};
use tracing::Instrument;

/// Name of the refresh-token cookie.
pub const REFRESH_COOKIE: &str = "refresh_token";
/// The cookie is sent only to the account routes.
const COOKIE_PATH: &str = "/api/users";
/// Refresh cookie lifetime (matches the refresh token's).
const COOKIE_MAX_AGE: u64 = 30 * 24 * 3600;
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
        .route("/api/users/me", get(me))
        .route("/api/{*rest}", any(not_found))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.cfg.max_payload_bytes,
        ));
    let app = match &state.cfg.static_dir {
        Some(dir) => {
            let spa = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            api.fallback_service(spa)
        }
        None => api.fallback(any(not_found)),
    };
    app.layer(axum::middleware::from_fn(envelope))
        .layer(axum::middleware::from_fn(correlation))
        .with_state(state)
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
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
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
        _ => uuid::Uuid::new_v4().simple().to_string(),
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

fn refresh_cookie(s: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if s.cfg.cookie_secure { "; Secure" } else { "" };
    let cookie = format!(
        "{REFRESH_COOKIE}={value}; HttpOnly; SameSite=Lax; Path={COOKIE_PATH}; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("refresh_token=; Max-Age=0"))
}

/// Moves the refresh token from ms-user's reply into a cookie; the body keeps the rest.
fn session_response(s: &AppState, status: StatusCode, mut reply: Value) -> Response {
    let token = reply
        .as_object_mut()
        .and_then(|o| o.remove("refreshToken"))
        .and_then(|v| v.as_str().map(str::to_owned));
    let mut res = (status, Json(reply)).into_response();
    if let Some(t) = token {
        res.headers_mut()
            .append(header::SET_COOKIE, refresh_cookie(s, &t, COOKIE_MAX_AGE));
    }
    res
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

fn client_addr(s: &AppState, headers: &HeaderMap, peer: SocketAddr) -> String {
    if s.cfg.trust_proxy
        && let Some(first) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return first.trim().to_owned();
    }
    peer.ip().to_string()
}

async fn signup(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = json_object(&body)?;
    let reply = call_user(&s, UserAction::Signup, None, payload, &cid.0).await?;
    Ok(session_response(&s, StatusCode::CREATED, reply))
}

async fn signin(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payload = json_object(&body)?;
    let email = payload
        .get("email")
        .and_then(Value::as_str)
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    let keys = [
        format!("email:{email}"),
        format!("addr:{}", client_addr(&s, &headers, peer)),
    ];
    if !s.limiter.attempt(&keys) {
        tracing::warn!("sign-in rate limit hit");
        return Err(ApiError::too_many_requests());
    }
    let reply = call_user(&s, UserAction::Signin, None, payload, &cid.0).await?;
    Ok(session_response(&s, StatusCode::OK, reply))
}

async fn refresh(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token =
        cookie(&headers, REFRESH_COOKIE).ok_or_else(|| ApiError::unauthorized(NOT_AUTHORIZED))?;
    let reply = call_user(
        &s,
        UserAction::Refresh,
        None,
        json!({"refreshToken": token}),
        &cid.0,
    )
    .await?;
    Ok(session_response(&s, StatusCode::OK, reply))
}

async fn signout(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = cookie(&headers, REFRESH_COOKIE) {
        call_user(
            &s,
            UserAction::Signout,
            None,
            json!({"refreshToken": token}),
            &cid.0,
        )
        .await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, refresh_cookie(&s, "", 0));
    Ok(res)
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

async fn me(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).ok_or_else(|| ApiError::unauthorized(NOT_AUTHORIZED))?;
    Ok(Json(
        call_user(&s, UserAction::Me, Some(token), json!({}), &cid.0).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_sanitised() {
        assert_eq!(sane_correlation_id(Some("abc-123_X")), "abc-123_X");
        assert_ne!(sane_correlation_id(Some("bad id\n")), "bad id\n");
        assert_eq!(sane_correlation_id(Some(&"a".repeat(65))).len(), 32);
        assert_eq!(sane_correlation_id(None).len(), 32);
    }

    #[test]
    fn cookies_and_bearer() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; refresh_token=xyz; b=2"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert_eq!(cookie(&h, REFRESH_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "zzz"), None);
        assert_eq!(bearer(&h).as_deref(), Some("t0k"));
        assert!(json_object(&Bytes::from_static(b"[1]")).is_err());
        assert!(json_object(&Bytes::from_static(b"{")).is_err());
        assert!(json_object(&Bytes::from_static(b"{}")).is_ok());
    }
}
