//! Socket.IO: identity at connect time, `session:authenticate`, and the generic relay of
//! `<service>:<action>` events to the owning service's RPC queue.

use crate::AppState;
use ms_common::ApiError;
use ms_common::auth::{AuthUser, NOT_AUTHORIZED, VerifyToken};
use ms_common::messaging::{RpcRequest, Service};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use std::sync::atomic::Ordering;
use tracing::Instrument;

/// Which service answers each client event; anything else is a 404.
pub const ROUTES: &[(&str, Service)] = &[
    ("stuff:list", Service::Stuff),
    ("stuff:get", Service::Stuff),
    ("stuff:create", Service::Stuff),
    ("stuff:update", Service::Stuff),
    ("order:create", Service::Order),
    ("order:cancel", Service::Order),
    ("order:list", Service::Order),
    ("order:get", Service::Order),
    ("payment:create", Service::Payment),
    ("coupon:create", Service::Payment),
    ("coupon:list", Service::Payment),
];

/// The service that owns a client event.
pub fn service_for(event: &str) -> Option<Service> {
    ROUTES.iter().find(|(e, _)| *e == event).map(|(_, s)| *s)
}

/// Who a socket speaks for (kept in the socket's extensions).
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// The verified user, `None` when browsing anonymously.
    pub user: Option<AuthUser>,
    /// The token to forward to services.
    pub token: Option<String>,
}

/// The room of a user's sockets, for `order:updated`.
pub fn user_room(id: &str) -> String {
    format!("user:{id}")
}

/// Why a connection was refused; its text is the `connect_error` message.
#[derive(Debug)]
pub enum Refused {
    /// The token did not verify.
    NotAuthorized,
    /// The process holds `max_connections` sockets already.
    TooManyConnections,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::NotAuthorized => f.write_str(NOT_AUTHORIZED),
            Refused::TooManyConnections => f.write_str("Too many connections"),
        }
    }
}

/// Marks a socket that holds one of the process's connection slots.
#[derive(Clone, Debug)]
struct Slot;

/// Read buffer per websocket connection, bytes.
pub const WS_READ_BUFFER_BYTES: usize = 1024;

/// How long a transport may stay open without joining the namespace. Only joined sockets
/// take a `MAX_CONNECTIONS` slot, so a client that opens Engine.IO sessions and never
/// sends CONNECT is closed after this (socketioxide's default is 45 s).
pub const JOIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The Socket.IO layer and handle, configured with the router's limits.
pub fn layer(state: AppState) -> (SocketIoLayer, SocketIo) {
    let max = state.cfg.max_payload_bytes as u64;
    let (layer, io) = SocketIo::builder()
        .max_payload(max)
        .max_buffer_size(256)
        // Each websocket keeps a read buffer of this size for its whole life; requests are
        // a few hundred bytes and longer frames are read in several chunks. 1 KiB instead
        // of engineioxide's 4 KiB default (benchmarked in docs/benchmarks.md).
        .ws_read_buffer_size(WS_READ_BUFFER_BYTES)
        .connect_timeout(JOIN_TIMEOUT)
        .with_state(state)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    (layer, io)
}

fn token_of(auth: &Value) -> Option<String> {
    auth.get("token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|t| !t.is_empty())
}

/// Connect middleware: a token must verify; no token means anonymous.
async fn authenticate(
    s: SocketRef,
    State(state): State<AppState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let token = auth.ok().as_ref().and_then(token_of);
    let session = match token {
        None => Session::default(),
        Some(t) => {
            let user = state
                .verifier
                .verify(&t)
                .await
                .map_err(|_| Refused::NotAuthorized)?;
            Session {
                user: Some(user),
                token: Some(t),
            }
        }
    };
    // Take a connection slot last, so a refused token never holds one.
    let open = state.connections.fetch_add(1, Ordering::SeqCst);
    if open >= state.cfg.max_connections {
        state.connections.fetch_sub(1, Ordering::SeqCst);
        tracing::warn!(open, "connection refused: limit reached");
        return Err(Refused::TooManyConnections);
    }
    s.extensions.insert(Slot);
    s.extensions.insert(session);
    Ok(())
}

async fn release_slot(s: SocketRef, State(state): State<AppState>) {
    if s.extensions.remove::<Slot>().is_some() {
        state.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Registers every listener synchronously (events sent right after connecting are not lost).
fn on_connect(s: SocketRef) -> impl std::future::Future<Output = ()> {
    if let Some(user) = s.extensions.get::<Session>().and_then(|x| x.user) {
        s.join(user_room(&user.id));
    }
    s.on("session:authenticate", session_authenticate);
    s.on_fallback(relay);
    s.on_disconnect(release_slot);
    async {}
}

async fn session_authenticate(
    s: SocketRef,
    State(state): State<AppState>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let token = data.ok().as_ref().and_then(token_of);
    let verified = match token {
        Some(t) => state.verifier.verify(&t).await.map(|u| (u, t)),
        None => Err(ApiError::unauthorized(NOT_AUTHORIZED)),
    };
    let reply = match verified {
        Ok((user, token)) => {
            if let Some(old) = s.extensions.get::<Session>().and_then(|x| x.user)
                && old.id != user.id
            {
                s.leave(user_room(&old.id));
            }
            s.join(user_room(&user.id));
            let body =
                json!({"data": {"user": {"id": user.id, "email": user.email, "role": user.role}}});
            s.extensions.insert(Session {
                user: Some(user),
                token: Some(token),
            });
            body
        }
        Err(e) => json!({"status": e.status, "errors": e.errors}),
    };
    let _ = ack.send(&reply);
}

fn error_ack(e: &ApiError) -> Value {
    json!({"status": e.status, "errors": e.errors})
}

/// Relays a client event to its service and answers through the ack.
async fn relay(
    s: SocketRef,
    Event(event): Event,
    State(state): State<AppState>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let cid = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("socket", correlation_id = %cid, event = %event);
    async move {
        let reply = match check(&event, data, state.cfg.max_payload_bytes) {
            Err(e) => error_ack(&e),
            Ok((service, payload)) => {
                let token = s.extensions.get::<Session>().and_then(|x| x.token);
                let req = RpcRequest {
                    action: event.clone(),
                    token,
                    payload,
                };
                match state.rpc.call(service, &req, &cid).await {
                    Ok(v) => json!({"data": v}),
                    Err(e) => error_ack(&e),
                }
            }
        };
        // An event sent without an ack callback has nobody to answer.
        if ack.send(&reply).is_err() {
            tracing::debug!("no ack requested");
        }
    }
    .instrument(span)
    .await
}

/// Validates an event before it leaves the router.
pub fn check(
    event: &str,
    data: Result<Value, impl std::fmt::Debug>,
    max: usize,
) -> Result<(Service, Value), ApiError> {
    let service = service_for(event).ok_or_else(|| ApiError::not_found("Unknown event"))?;
    let payload = match data {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(ApiError::bad_request("Payload must be an object")),
    };
    if json_len(&payload) > max {
        return Err(ApiError::bad_request("Payload too large"));
    }
    Ok((service, payload))
}

/// The length of a value's JSON text, counted without building it.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_payload_checks() {
        assert_eq!(service_for("coupon:list"), Some(Service::Payment));
        assert_eq!(service_for("user:signin"), None, "accounts are HTTP only");
        let ok: Result<Value, ()> = Ok(json!({"id": "1"}));
        assert_eq!(check("stuff:get", ok, 100).unwrap().0, Service::Stuff);
        assert_eq!(
            check("nope", Ok::<_, ()>(json!({})), 100)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            check("stuff:get", Ok::<_, ()>(json!("x")), 100)
                .unwrap_err()
                .first_message(),
            "Payload must be an object"
        );
        assert_eq!(
            check("stuff:get", Err::<Value, _>("none"), 100)
                .unwrap_err()
                .status,
            400
        );
        let small = json!({"t": "x".repeat(92)});
        assert_eq!(json_len(&small), 100);
        assert!(check("stuff:get", Ok::<_, ()>(small), 100).is_ok());
        let big = json!({"t": "x".repeat(200)});
        assert_eq!(
            check("stuff:get", Ok::<_, ()>(big), 100)
                .unwrap_err()
                .first_message(),
            "Payload too large"
        );
    }
}
