//! Socket.IO: identity at connect time, `session:authenticate`, and the generic relay of
//! `<service>:<action>` events to the owning service's RPC queue.
//!
//! ```text
//! connect ─▶ token verified (or anonymous) ─▶ a slot for the client address and one of
//!            MAX_CONNECTIONS ─▶ signed in: join room user:<id>, arm the expiry timer
//! event   ─▶ the socket's and its user's allowances (crate::allowance; 429 beyond)
//!         ─▶ relayed to the owning service ─▶ one ack
//! session:authenticate ─▶ a new identity: leave the old user's room, join the new one,
//!            re-arm the expiry timer
//! token expires ─▶ the socket leaves its user's room (no more pushes meant for a user it
//!            can no longer prove to be); the services refuse its token as before
//! disconnect ─▶ slots given back, timer stopped, every room left
//! ```

use crate::AppState;
use crate::allowance::{AddressSlot, Cost, InFlight, SocketBudget};
use crate::client;
use axum::extract::{ConnectInfo, OriginalUri};
use futures_util::FutureExt;
use ms_common::ApiError;
use ms_common::auth::{AuthUser, NOT_AUTHORIZED};
use ms_common::contract::{Action, UserAction};
use ms_common::messaging::RpcRequest;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Sid;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tracing::Instrument;

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

/// One of the process's `MAX_CONNECTIONS` slots and one of its client address's
/// `MAX_CONNECTIONS_PER_ADDRESS`, given back when the last handle to it is dropped: on
/// disconnect (the listener removes it from the socket) or when a socket that was never
/// fully connected is freed, so no path can leak a slot.
#[derive(Clone, Debug)]
struct Slot {
    _held: Arc<SlotGuard>,
    _address: Option<Arc<AddressSlot>>,
}

/// What the router keeps per socket besides its [`Session`] (in its extensions, gone
/// with it): its allowance, and the identity its token-expiry timer belongs to.
#[derive(Debug, Default)]
struct SocketState {
    budget: Arc<SocketBudget>,
    identity: Mutex<Identity>,
}

/// The socket's sign-in as the expiry timer sees it.
#[derive(Debug, Default)]
struct Identity {
    /// Bumped on every change of identity: a timer armed for an older token does nothing.
    epoch: u64,
    /// The timer of the current token, stopped when the identity changes or the socket goes.
    expiry: Option<tokio::task::AbortHandle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent, so a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct SlotGuard(Arc<AtomicUsize>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where the router serves Engine.IO (socketioxide's default, set explicitly so that
/// [`detach_head`] matches what the layer takes).
const SOCKET_IO_PATH: &str = "/socket.io";

/// Whether engineioxide takes a request for this path: the path itself or below it.
fn is_socket_io_path(path: &str) -> bool {
    path.strip_prefix(SOCKET_IO_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Copies the head of a request that may open a socket into allocations of its own.
/// socketioxide keeps that request's head (`req_parts`) for the socket's whole life, and
/// hyper parses the URI and header values as slices of its per-connection read buffer,
/// so they would keep that buffer (8–16 KiB) alive as long as the socket: 28 % of an idle
/// socket's resident memory (measured in docs/benchmarks.md). Other requests pass as they are.
pub async fn detach_head(req: axum::extract::Request) -> axum::extract::Request {
    if !is_socket_io_path(req.uri().path()) {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    let mut headers = axum::http::HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        // hyper copies names out of the buffer already; values are slices of it, so they
        // are copied (hyper accepted them, so they parse again; if not, the original).
        let mut v =
            axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        v.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), v);
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse::<axum::http::Uri>() {
        // axum's copy of the URI (for nested routers) is a slice of the buffer too.
        if let Some(original) = parts.extensions.get_mut::<OriginalUri>() {
            original.0 = uri.clone();
        }
        parts.uri = uri;
    }
    axum::extract::Request::from_parts(parts, body)
}

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
        .req_path(SOCKET_IO_PATH)
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
///
/// **Every listener is registered here, not in the connect handler.** socketioxide (0.18)
/// runs the middleware, then inserts the socket and sends CONNECT, and only then calls the
/// connect handler, in a task of its own. A client may emit the moment it sees CONNECT (the
/// official client flushes its buffer then), and an event read before the handler ran
/// would find no listener and be dropped without an ack. The middleware runs before the
/// socket can receive anything, so after it returns `Ok` nothing can arrive unheard.
async fn authenticate(
    s: SocketRef,
    io: SocketIo,
    State(state): State<AppState>,
    TryData(auth): TryData<Value>,
) -> Result<(), Refused> {
    let token = auth.ok().as_ref().and_then(token_of);
    let signed_in = match token {
        None => None,
        Some(t) => {
            let (user, exp) = within_deadline(
                state.cfg.common.rpc_timeout,
                state.verifier.verify_with_expiry(&t),
            )
            .await
            .map_err(|_| Refused::NotAuthorized)?;
            let session = Session {
                user: Some(user),
                token: Some(t),
            };
            Some((session, exp))
        }
    };
    // Take the connection slots last, so a refused token never holds one: the client
    // address's first, then the process's.
    let address = match client_address(&s, &state) {
        Some(ip) => match state.allowances.connect(ip) {
            Some(slot) => Some(Arc::new(slot)),
            None => {
                // Debug, not warn: a client hammering its own cap would flood the log.
                tracing::debug!("connection refused: limit per client address reached");
                return Err(Refused::TooManyConnections);
            }
        },
        None => None,
    };
    let open = state.connections.fetch_add(1, Ordering::SeqCst);
    let slot = Slot {
        _held: Arc::new(SlotGuard(state.connections.clone())),
        _address: address,
    };
    if open >= state.cfg.max_connections {
        drop(slot);
        tracing::warn!(open, "connection refused: limit reached");
        return Err(Refused::TooManyConnections);
    }
    let socket_state = Arc::new(SocketState::default());
    s.extensions.insert(slot);
    s.extensions.insert(socket_state.clone());
    match signed_in {
        Some((session, exp)) => sign_in(&s, &io, &socket_state, session, exp),
        None => {
            s.extensions.insert(Session::default());
        }
    }
    s.on("session:authenticate", session_authenticate);
    s.on_fallback(relay);
    s.on_disconnect(release_slot);
    Ok(())
}

/// The address the socket's client connected from (see [`client::client_ip`]); `None`
/// when the server was not started with connection info (then only `MAX_CONNECTIONS`
/// applies).
fn client_address(s: &SocketRef, state: &AppState) -> Option<IpAddr> {
    let parts = s.req_parts();
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(client::client_ip(
        peer.ip(),
        &parts.headers,
        &state.cfg.trusted_proxies,
    ))
}

/// Makes `session` (a verified user whose token expires at `exp`, Unix seconds) the
/// socket's identity: out of the previous user's room, into this user's, and a timer that
/// takes it out again when the token expires.
fn sign_in(s: &SocketRef, io: &SocketIo, st: &Arc<SocketState>, session: Session, exp: i64) {
    let mut identity = lock(&st.identity);
    identity.epoch += 1;
    if let Some(timer) = identity.expiry.take() {
        timer.abort();
    }
    let new_id = session.user.as_ref().map(|u| u.id.clone());
    if let Some(old) = s.extensions.get::<Session>().and_then(|x| x.user)
        && new_id.as_deref() != Some(old.id.as_str())
    {
        s.leave(user_room(&old.id));
    }
    if let Some(id) = &new_id {
        s.join(user_room(id));
    }
    s.extensions.insert(session);
    let timer = tokio::spawn(leave_at_expiry(io.clone(), s.id, identity.epoch, exp));
    identity.expiry = Some(timer.abort_handle());
}

/// Waits until the token of identity `epoch` expires (`exp`, Unix seconds), then takes
/// the socket out of its user's room, unless it has switched identity since. Holds the
/// `SocketIo` and the id, never the socket, so a socket that is gone is simply not found.
async fn leave_at_expiry(io: SocketIo, sid: Sid, epoch: u64, exp: i64) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let wait_ms = u64::try_from(exp.saturating_mul(1000).saturating_sub(now_ms)).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
    let Some(s) = io.of("/").and_then(|ns| ns.get_socket(sid)) else {
        return;
    };
    let Some(st) = s.extensions.get::<Arc<SocketState>>() else {
        return;
    };
    let identity = lock(&st.identity);
    if identity.epoch != epoch {
        return;
    }
    if let Some(user) = s.extensions.get::<Session>().and_then(|x| x.user) {
        s.leave(user_room(&user.id));
        tracing::debug!(%sid, "token expired: the socket left its user's room");
    }
}

async fn release_slot(s: SocketRef) {
    // Dropping the slot gives it back (see `SlotGuard`).
    drop(s.extensions.remove::<Slot>());
    if let Some(st) = s.extensions.remove::<Arc<SocketState>>()
        && let Some(timer) = lock(&st.identity).expiry.take()
    {
        timer.abort();
    }
}

/// Spends one event of the socket's allowances (and its user's, when signed in as per
/// `session`): its in-flight slot, to hold until it is answered, or a 429.
fn admit(
    s: &SocketRef,
    state: &AppState,
    session: Option<&Session>,
    cost: Cost,
) -> Result<InFlight, ApiError> {
    let st = s
        .extensions
        .get::<Arc<SocketState>>()
        .ok_or_else(|| ApiError::internal_from("a socket without its state sent an event"))?;
    let user = session.and_then(|x| x.user.as_ref()).map(|u| u.id.as_str());
    state.allowances.admit(&st.budget, user, cost)
}

/// The namespace's connect handler. Nothing is left to do once the middleware accepted
/// the socket: listeners and the user's room were set up there (see [`authenticate`]).
/// Tests can make it slow, to prove that nothing depends on when it runs.
async fn on_connect(State(state): State<AppState>) {
    if let Some(delay) = state.cfg.connect_handler_delay {
        tokio::time::sleep(delay).await;
    }
}

/// How long an event may wait for its ack: the RPC timeout plus this margin. Past it the
/// client gets a 503 in the ack instead of silence.
pub const ACK_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `work` within the ack deadline (`wait`, the RPC wait of what it asks, +
/// [`ACK_MARGIN`]); past it, the result is a 503.
async fn within_deadline<T>(
    wait: std::time::Duration,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let deadline = wait + ACK_MARGIN;
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(?deadline, "no answer within the ack deadline");
            Err(ApiError::unavailable())
        }
    }
}

/// The one place where an event is answered. Every event that asked for an ack gets
/// exactly one (the `AckSender` is consumed once), within the ack deadline, whatever the
/// token, the payload or the state of the services: past the deadline it is a 503, a
/// panic while working it out is a 500.
async fn answer<R: Into<ms_common::WireReply>>(
    ack: AckSender,
    wait: std::time::Duration,
    work: impl std::future::Future<Output = Result<R, ApiError>>,
) {
    let guarded = std::panic::AssertUnwindSafe(work).catch_unwind();
    let result = match within_deadline(wait, async { Ok(guarded.await) }).await {
        Ok(Ok(r)) => r,
        Ok(Err(_panic)) => {
            tracing::error!("event handler panicked");
            Err(ApiError::internal())
        }
        Err(e) => Err(e),
    };
    let reply: ms_common::WireReply = match result {
        Ok(r) => r.into(),
        Err(e) => ms_common::Reply::Error(e).into(),
    };
    // An event sent without an ack callback has nobody to answer.
    if ack.send(&reply).is_err() {
        tracing::debug!("no ack requested");
    }
}

async fn session_authenticate(
    s: SocketRef,
    io: SocketIo,
    State(state): State<AppState>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let admitted = admit(
        &s,
        &state,
        s.extensions.get::<Session>().as_ref(),
        Cost::Read,
    );
    let work = async {
        let _in_flight = admitted?;
        let token = data
            .ok()
            .as_ref()
            .and_then(token_of)
            .ok_or_else(|| ApiError::unauthorized(NOT_AUTHORIZED))?;
        let (user, exp) = state.verifier.verify_with_expiry(&token).await?;
        // The account as ms-user holds it now (the token does not carry the display name,
        // which may have changed since it was issued).
        let cid = ms_common::telemetry::new_correlation_id();
        let body = state
            .rpc
            .request(
                UserAction::Me,
                Some(token.clone()),
                serde_json::json!({}),
                &cid,
            )
            .await?;
        let st = s
            .extensions
            .get::<Arc<SocketState>>()
            .ok_or_else(|| ApiError::internal_from("a socket without its state"))?;
        let session = Session {
            user: Some(user),
            token: Some(token),
        };
        sign_in(&s, &io, &st, session, exp);
        Ok(body)
    };
    answer(ack, state.cfg.common.rpc_timeout, work).await;
}

/// Answers an event refused before any work with its error (a 429 from the allowances).
fn refuse(ack: AckSender, error: ApiError) {
    let reply = ms_common::Reply::from_result(Err(error));
    if ack.send(&reply).is_err() {
        tracing::debug!("no ack requested, or the socket's buffer is full");
    }
}

/// Relays a client event to its service and answers through the ack.
async fn relay(
    s: SocketRef,
    Event(event): Event,
    State(state): State<AppState>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let session = s.extensions.get::<Session>();
    // Spent before anything else, and a refusal answered at once (no correlation id, span
    // or deadline timer), so a flood costs the router as little as it can.
    let relayed = Action::relayed_event(&event);
    let cost = Cost::of(relayed);
    let in_flight = match admit(&s, &state, session.as_ref(), cost) {
        Ok(slot) => slot,
        Err(refused) => return refuse(ack, refused),
    };
    // Actions that call the payment gateway get its longer wait, here and in the RPC.
    let usual = state.cfg.common.rpc_timeout;
    let wait = relayed.map_or(usual, |a| a.reply_wait(usual));
    let cid = ms_common::telemetry::new_correlation_id();
    let span = tracing::info_span!("socket", correlation_id = %cid, event = %event);
    let work = async {
        let _in_flight = in_flight;
        let (action, payload) = check(&event, data, state.cfg.max_payload_bytes)?;
        let token = session.and_then(|x| x.token);
        let req = RpcRequest::new(action, token, payload);
        // The service's reply goes to the client as the text it came as.
        state
            .rpc
            .call_wire(action.service(), &req, &cid, wait)
            .await
    };
    answer(ack, wait, work).instrument(span).await
}

/// Validates an event before it leaves the router.
pub fn check(
    event: &str,
    data: Result<Value, impl std::fmt::Debug>,
    max: usize,
) -> Result<(Action, Value), ApiError> {
    let action =
        Action::relayed_event(event).ok_or_else(|| ApiError::not_found("Unknown event"))?;
    let payload = match data {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(ApiError::bad_request("Payload must be an object")),
    };
    if json_len(&payload) > max {
        return Err(ApiError::bad_request("Payload too large"));
    }
    Ok((action, payload))
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
    use ms_common::contract::StuffAction;
    use serde_json::json;

    /// A request whose URI and header values are slices of one buffer, as hyper makes them.
    fn sliced_request(path: &str) -> (bytes::Bytes, axum::extract::Request) {
        let buf = bytes::Bytes::from(format!("{path}|websocket|10.0.0.1"));
        let (p, rest) = (path.len(), path.len() + 1);
        let uri = axum::http::Uri::from_maybe_shared(buf.slice(..p)).unwrap();
        let mut req = axum::extract::Request::new(axum::body::Body::empty());
        *req.uri_mut() = uri.clone();
        req.extensions_mut().insert(OriginalUri(uri));
        let header = |r: std::ops::Range<usize>| {
            axum::http::HeaderValue::from_maybe_shared(buf.slice(r)).unwrap()
        };
        let headers = req.headers_mut();
        headers.insert("upgrade", header(rest..rest + 9));
        headers.append("x-forwarded-for", header(rest + 10..buf.len()));
        (buf, req)
    }

    fn inside(buf: &bytes::Bytes, s: &[u8]) -> bool {
        buf.as_ptr_range().contains(&s.as_ptr())
    }

    #[tokio::test]
    async fn a_socket_keeps_no_slice_of_the_connection_buffer() {
        for uri in ["/socket.io/?EIO=4&transport=websocket", "/socket.io?EIO=4"] {
            let (buf, req) = sliced_request(uri);
            let req = detach_head(req).await;
            assert_eq!(req.uri(), uri);
            assert!(!inside(&buf, req.uri().path().as_bytes()), "{uri}");
            let original = req.extensions().get::<OriginalUri>().unwrap();
            assert_eq!(original.0, *req.uri());
            assert!(!inside(&buf, original.0.path().as_bytes()), "{uri}");
            assert_eq!(req.headers().len(), 2);
            for (name, value) in req.headers() {
                assert!(!inside(&buf, value.as_bytes()), "{uri}: {name} is a slice");
            }
            assert_eq!(req.headers()["upgrade"], "websocket");
            assert_eq!(req.headers()["x-forwarded-for"], "10.0.0.1");
        }
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        for path in ["/api/stuff", "/socket.iox", "/api/socket.io"] {
            let (buf, req) = sliced_request(path);
            let req = detach_head(req).await;
            assert!(inside(&buf, req.uri().path().as_bytes()), "{path}");
            assert!(inside(&buf, req.headers()["upgrade"].as_bytes()), "{path}");
        }
    }

    #[test]
    fn the_socket_io_paths_are_those_engineioxide_takes() {
        for path in ["/socket.io", "/socket.io/", "/socket.io/engine"] {
            assert!(is_socket_io_path(path), "{path}");
        }
        for path in ["/socket.iox", "/api/socket.io", "/"] {
            assert!(!is_socket_io_path(path), "{path}");
        }
    }

    #[test]
    fn routing_and_payload_checks() {
        assert_eq!(
            check("user:signin", Ok::<_, ()>(json!({})), 100)
                .unwrap_err()
                .status,
            404,
            "accounts are HTTP only"
        );
        let ok: Result<Value, ()> = Ok(json!({"id": "1"}));
        assert_eq!(
            check("stuff:get", ok, 100).unwrap().0,
            Action::Stuff(StuffAction::Get)
        );
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
