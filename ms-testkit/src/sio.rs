//! The [`SioClient`] handle and the background task that owns the websocket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::SioError;
use crate::packet::{
    EioPacket, SioKind, ack_first_arg, connect_error_message, encode_connect, encode_event,
    event_parts, parse_eio, parse_sio, split_frame,
};

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Deadline for the whole handshake (TCP + websocket + Engine.IO open + Socket.IO connect).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a graceful close waits for the server's close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Heartbeat values used when the open packet does not carry them (server defaults).
const DEFAULT_PING_INTERVAL_MS: u64 = 25_000;
const DEFAULT_PING_TIMEOUT_MS: u64 = 20_000;

/// Namespace this client talks to; packets for other namespaces are ignored.
const NAMESPACE: &str = "/";

/// A connected Socket.IO v5 client (Engine.IO v4, websocket transport only).
///
/// All methods take `&self`, so one client can serve many concurrent
/// `emit_with_ack` calls (wrap it in an `Arc` to share it across tasks).
/// Dropping the client closes the connection in the background.
#[derive(Debug)]
pub struct SioClient {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    next_ack_id: AtomicU64,
    sid: String,
    task: JoinHandle<()>,
}

/// Requests from the handle to the connection task.
#[derive(Debug)]
enum Command {
    /// Send this text frame as is.
    Frame(String),
    /// Send `41`, close the websocket, then signal completion.
    Disconnect(oneshot::Sender<()>),
}

type AckSender = oneshot::Sender<Result<Value, SioError>>;

/// State shared between the handle and the connection task.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever a push is buffered or the connection ends.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    connected: bool,
    events: VecDeque<(String, Value)>,
    acks: HashMap<u64, AckSender>,
    /// The last `RECENT_PACKETS` Socket.IO packets as received, for tests that pin the
    /// exact text on the wire.
    packets: VecDeque<String>,
}

/// How many received Socket.IO packets a client keeps as text.
pub const RECENT_PACKETS: usize = 256;

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking user predicate must not make the client unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push_event(&self, name: String, value: Value) {
        self.lock().events.push_back((name, value));
        self.changed.notify_waiters();
    }

    fn resolve_ack(&self, id: u64, result: Result<Value, SioError>) {
        let sender = self.lock().acks.remove(&id);
        match sender {
            // The receiver may have timed out meanwhile; nothing to do then.
            Some(sender) => {
                let _ = sender.send(result);
            }
            None => tracing::debug!(id, "ack for unknown or expired id"),
        }
    }

    /// Marks the connection as gone and fails every pending ack.
    fn mark_disconnected(&self) {
        let pending: Vec<AckSender> = {
            let mut state = self.lock();
            state.connected = false;
            state.acks.drain().map(|(_, sender)| sender).collect()
        };
        for sender in pending {
            let _ = sender.send(Err(SioError::Disconnected));
        }
        self.changed.notify_waiters();
    }
}

/// Removes a pending ack entry when `emit_with_ack` finishes or is cancelled.
struct AckGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for AckGuard<'_> {
    fn drop(&mut self) {
        self.shared.lock().acks.remove(&self.id);
    }
}

impl SioClient {
    /// Connects to `base_url` (e.g. `http://127.0.0.1:3000`), sending `{"token": token}` as auth if given.
    pub async fn connect(base_url: &str, token: Option<&str>) -> Result<Self, SioError> {
        let auth = match token {
            Some(token) => json!({ "token": token }),
            None => Value::Null,
        };
        Self::connect_with_auth(base_url, auth).await
    }

    /// Connects with an arbitrary auth payload (`Value::Null` sends a bare `40`).
    pub async fn connect_with_auth(base_url: &str, auth: Value) -> Result<Self, SioError> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let url = websocket_url(base_url)?;
        let (mut ws, _response) = timeout_at(deadline, connect_async(url.as_str()))
            .await
            .map_err(|_| SioError::Timeout)?
            .map_err(|e| SioError::Connect(format!("{url}: {e}")))?;

        match handshake(&mut ws, &auth, deadline).await {
            Ok(outcome) => {
                let shared = Arc::new(Shared {
                    state: Mutex::new(State {
                        connected: true,
                        events: outcome.early_events,
                        acks: HashMap::new(),
                        packets: VecDeque::new(),
                    }),
                    changed: Notify::new(),
                });
                let (commands, command_rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(run_connection(
                    ws,
                    command_rx,
                    Arc::clone(&shared),
                    outcome.liveness,
                ));
                Ok(Self {
                    commands,
                    shared,
                    next_ack_id: AtomicU64::new(0),
                    sid: outcome.sid,
                    task,
                })
            }
            Err(err) => {
                let _ = timeout(CLOSE_TIMEOUT, ws.close(None)).await;
                Err(err)
            }
        }
    }

    /// The last Socket.IO packets received (at most `RECENT_PACKETS`), exactly as sent,
    /// e.g. `431[{"data":…}]` for an ack.
    pub fn recent_packets(&self) -> Vec<String> {
        self.shared.lock().packets.iter().cloned().collect()
    }

    /// The Socket.IO session id the server assigned in its CONNECT answer.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Whether the namespace connection is still up (false after a server disconnect or close).
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Emits `event` with one `payload` argument and no ack request.
    pub fn emit(&self, event: &str, payload: Value) -> Result<(), SioError> {
        let frame = encode_event(event, payload, None)?;
        self.send_frame(frame)
    }

    /// Emits `event` with an ack request and returns the first argument of the server's ack.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        payload: Value,
        timeout: Duration,
    ) -> Result<Value, SioError> {
        let id = self.next_ack_id.fetch_add(1, Ordering::Relaxed);
        let frame = encode_event(event, payload, Some(id))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            if !state.connected {
                return Err(SioError::Disconnected);
            }
            state.acks.insert(id, tx);
        }
        let _guard = AckGuard {
            shared: &self.shared,
            id,
        };
        self.send_frame(frame)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            // Sender dropped without an answer: the connection task is gone.
            Ok(Err(_)) => Err(SioError::Disconnected),
            Err(_) => Err(SioError::Timeout),
        }
    }

    /// Sends an arbitrary websocket text frame, e.g. a malformed packet for robustness tests.
    pub fn send_raw(&self, text: String) -> Result<(), SioError> {
        self.send_frame(text)
    }

    /// Returns the next push named `name` (buffered or arriving before `timeout`), leaving other pushes buffered.
    pub async fn next_event(&self, name: &str, timeout: Duration) -> Result<Value, SioError> {
        self.wait_for(name, timeout, |_| true).await
    }

    /// Returns the first push named `name` matching `predicate`; non-matching pushes of that name are discarded.
    pub async fn wait_for(
        &self,
        name: &str,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Result<Value, SioError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register interest before inspecting the buffer so a push that
            // lands in between still wakes us.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.shared.lock();
                let mut index = 0;
                while index < state.events.len() {
                    if state.events[index].0 != name {
                        index += 1;
                        continue;
                    }
                    if let Some((_, value)) = state.events.remove(index)
                        && predicate(&value)
                    {
                        return Ok(value);
                    }
                }
                if !state.connected {
                    return Err(SioError::Disconnected);
                }
            }
            if timeout_at(deadline, changed).await.is_err() {
                return Err(SioError::Timeout);
            }
        }
    }

    /// Takes every buffered push, in arrival order.
    pub fn drain_events(&self) -> Vec<(String, Value)> {
        self.shared.lock().events.drain(..).collect()
    }

    /// Sends `41`, closes the websocket and waits for the connection task to finish.
    pub async fn disconnect(self) -> Result<(), SioError> {
        let Self {
            commands,
            shared,
            task,
            ..
        } = self;
        let (done_tx, done_rx) = oneshot::channel();
        if commands.send(Command::Disconnect(done_tx)).is_ok() {
            // An error only means the task already ended on its own.
            let _ = timeout(CONNECT_TIMEOUT, done_rx).await;
        }
        drop(commands);
        let finished = timeout(CONNECT_TIMEOUT, task).await;
        shared.mark_disconnected();
        match finished {
            Ok(_) => Ok(()),
            Err(_) => Err(SioError::Timeout),
        }
    }

    fn send_frame(&self, frame: String) -> Result<(), SioError> {
        if !self.is_connected() {
            return Err(SioError::Disconnected);
        }
        self.commands
            .send(Command::Frame(frame))
            .map_err(|_| SioError::Disconnected)
    }
}

/// What a successful handshake yields.
struct HandshakeOutcome {
    sid: String,
    /// Silence after which the server is considered dead (pingInterval + pingTimeout).
    liveness: Duration,
    /// Pushes that arrived in the same frame as (or before) the CONNECT answer.
    early_events: VecDeque<(String, Value)>,
}

/// Builds `ws://host:port/socket.io/?EIO=4&transport=websocket` from an http(s)/ws(s) base URL.
fn websocket_url(base_url: &str) -> Result<String, SioError> {
    let base = base_url.trim().trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else if base.contains("://") {
        return Err(SioError::Connect(format!(
            "unsupported URL scheme in {base_url:?}"
        )));
    } else {
        format!("ws://{base}")
    };
    Ok(format!("{base}/socket.io/?EIO=4&transport=websocket"))
}

/// Reads the Engine.IO open packet, sends the namespace CONNECT and waits for the answer.
async fn handshake(
    ws: &mut WsStream,
    auth: &Value,
    deadline: Instant,
) -> Result<HandshakeOutcome, SioError> {
    let mut liveness: Option<Duration> = None;
    let mut sid: Option<String> = None;
    let mut early_events = VecDeque::new();

    while sid.is_none() {
        let frame = recv_text(ws, deadline).await?;
        for raw in split_frame(&frame) {
            match parse_eio(raw)? {
                EioPacket::Open(data) => {
                    if liveness.is_some() {
                        return Err(SioError::Protocol("duplicate engine.io open packet".into()));
                    }
                    liveness = Some(parse_open(data)?);
                    send_text(ws, encode_connect(auth)?, deadline).await?;
                }
                _ if liveness.is_none() => {
                    return Err(SioError::Protocol(format!(
                        "expected engine.io open packet, got {raw:?}"
                    )));
                }
                EioPacket::Ping(data) => send_text(ws, format!("3{data}"), deadline).await?,
                EioPacket::Close => {
                    return Err(SioError::Connect(
                        "server closed the engine.io session during the handshake".into(),
                    ));
                }
                EioPacket::Message(data) => {
                    let packet = parse_sio(data)?;
                    if packet.namespace != NAMESPACE {
                        continue;
                    }
                    match packet.kind {
                        SioKind::Connect if sid.is_none() => {
                            let id = packet
                                .data
                                .as_ref()
                                .and_then(|d| d.get("sid"))
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    SioError::Protocol(format!("CONNECT without sid: {data:?}"))
                                })?;
                            sid = Some(id.to_owned());
                        }
                        SioKind::ConnectError => {
                            return Err(SioError::ConnectError(connect_error_message(packet.data)));
                        }
                        SioKind::Disconnect => return Err(SioError::Disconnected),
                        SioKind::Event => early_events.push_back(event_parts(packet.data)?),
                        _ => tracing::debug!(packet = data, "ignoring packet during handshake"),
                    }
                }
                EioPacket::Pong | EioPacket::Upgrade | EioPacket::Noop => {}
            }
        }
    }

    Ok(HandshakeOutcome {
        sid: sid.unwrap_or_default(),
        liveness: liveness.unwrap_or_else(|| {
            Duration::from_millis(DEFAULT_PING_INTERVAL_MS + DEFAULT_PING_TIMEOUT_MS)
        }),
        early_events,
    })
}

/// Extracts pingInterval + pingTimeout from the open packet JSON.
fn parse_open(data: &str) -> Result<Duration, SioError> {
    let open: Value = serde_json::from_str(data)
        .map_err(|e| SioError::Protocol(format!("bad engine.io open packet {data:?}: {e}")))?;
    let field =
        |name: &str, default: u64| open.get(name).and_then(Value::as_u64).unwrap_or(default);
    let interval = field("pingInterval", DEFAULT_PING_INTERVAL_MS);
    let ping_timeout = field("pingTimeout", DEFAULT_PING_TIMEOUT_MS);
    Ok(Duration::from_millis(interval.saturating_add(ping_timeout)))
}

/// Next text frame before `deadline`, skipping binary and control frames.
async fn recv_text(ws: &mut WsStream, deadline: Instant) -> Result<String, SioError> {
    loop {
        match timeout_at(deadline, ws.next()).await {
            Err(_) => return Err(SioError::Timeout),
            Ok(None) => {
                return Err(SioError::Connect(
                    "websocket closed during the handshake".into(),
                ));
            }
            Ok(Some(Err(e))) => return Err(SioError::Connect(e.to_string())),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Err(SioError::Connect(format!(
                    "websocket closed during the handshake: {frame:?}"
                )));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn send_text(ws: &mut WsStream, text: String, deadline: Instant) -> Result<(), SioError> {
    timeout_at(deadline, ws.send(Message::text(text)))
        .await
        .map_err(|_| SioError::Timeout)?
        .map_err(|e| SioError::Connect(e.to_string()))
}

/// What the connection loop should do after handling a frame.
enum Flow {
    Continue,
    Stop(&'static str),
}

/// Owns the websocket after the handshake: answers pings, routes acks, buffers pushes.
async fn run_connection(
    mut ws: WsStream,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
    liveness: Duration,
) {
    let mut last_heard = Instant::now();
    let mut done: Option<oneshot::Sender<()>> = None;
    let reason: String = loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Frame(text)) => {
                    if let Err(e) = ws.send(Message::text(text)).await {
                        break format!("send failed: {e}");
                    }
                }
                Some(Command::Disconnect(tx)) => {
                    done = Some(tx);
                    let _ = ws.send(Message::text("41")).await;
                    break "client disconnect".to_owned();
                }
                None => {
                    let _ = ws.send(Message::text("41")).await;
                    break "client handle dropped".to_owned();
                }
            },
            message = ws.next() => match message {
                None => break "websocket closed".to_owned(),
                Some(Err(e)) => break format!("websocket error: {e}"),
                Some(Ok(Message::Text(text))) => {
                    last_heard = Instant::now();
                    match handle_frame(&mut ws, &shared, text.as_str()).await {
                        Flow::Continue => {}
                        Flow::Stop(reason) => break reason.to_owned(),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break format!("server closed the websocket: {frame:?}");
                }
                // Binary frames are ignored; ws-level ping/pong are handled by tungstenite.
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            () = tokio::time::sleep_until(last_heard + liveness) => {
                break "no heartbeat from the server".to_owned();
            }
        }
    };
    tracing::debug!(%reason, "socket.io connection ended");
    shared.mark_disconnected();
    close_websocket(&mut ws).await;
    if let Some(tx) = done {
        let _ = tx.send(());
    }
}

/// Handles one websocket text frame (normally one Engine.IO packet).
async fn handle_frame(ws: &mut WsStream, shared: &Shared, frame: &str) -> Flow {
    for raw in split_frame(frame) {
        let packet = match parse_eio(raw) {
            Ok(packet) => packet,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring malformed engine.io packet");
                continue;
            }
        };
        match packet {
            EioPacket::Ping(data) => {
                if ws.send(Message::text(format!("3{data}"))).await.is_err() {
                    return Flow::Stop("failed to answer ping");
                }
            }
            EioPacket::Close => return Flow::Stop("server closed the engine.io session"),
            EioPacket::Message(data) => {
                if let Flow::Stop(reason) = handle_socketio(shared, data) {
                    return Flow::Stop(reason);
                }
            }
            EioPacket::Open(_) | EioPacket::Pong | EioPacket::Upgrade | EioPacket::Noop => {}
        }
    }
    Flow::Continue
}

/// Routes one Socket.IO packet: acks to their waiter, events to the buffer.
fn handle_socketio(shared: &Shared, data: &str) -> Flow {
    {
        let mut state = shared.lock();
        if state.packets.len() >= RECENT_PACKETS {
            state.packets.pop_front();
        }
        state.packets.push_back(data.to_owned());
    }
    let packet = match parse_sio(data) {
        Ok(packet) => packet,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring malformed socket.io packet");
            return Flow::Continue;
        }
    };
    if packet.namespace != NAMESPACE {
        tracing::debug!(namespace = %packet.namespace, "ignoring packet for another namespace");
        return Flow::Continue;
    }
    match packet.kind {
        SioKind::Event => match event_parts(packet.data) {
            Ok((name, value)) => {
                if packet.ack_id.is_some() {
                    tracing::debug!(event = %name, "server requested an ack; not answered");
                }
                shared.push_event(name, value);
            }
            Err(e) => tracing::warn!(error = %e, "ignoring malformed event"),
        },
        SioKind::Ack => match packet.ack_id {
            Some(id) => shared.resolve_ack(id, ack_first_arg(packet.data)),
            None => tracing::warn!("ignoring ack without id"),
        },
        SioKind::Disconnect => return Flow::Stop("server disconnected the namespace"),
        SioKind::ConnectError => {
            tracing::warn!(
                message = %connect_error_message(packet.data),
                "connect_error after connect"
            );
        }
        SioKind::Connect => {}
        SioKind::BinaryEvent | SioKind::BinaryAck => {
            tracing::debug!("ignoring binary socket.io packet");
        }
    }
    Flow::Continue
}

/// Best-effort graceful websocket close, bounded in time.
async fn close_websocket(ws: &mut WsStream) {
    let _ = timeout(CLOSE_TIMEOUT, async {
        if ws.close(None).await.is_ok() {
            // Wait for the server's close answer so the TCP connection ends cleanly.
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn websocket_urls() {
        let suffix = "/socket.io/?EIO=4&transport=websocket";
        assert_eq!(
            websocket_url("http://127.0.0.1:3000").unwrap(),
            format!("ws://127.0.0.1:3000{suffix}")
        );
        assert_eq!(
            websocket_url("http://127.0.0.1:3000/").unwrap(),
            format!("ws://127.0.0.1:3000{suffix}")
        );
        assert_eq!(
            websocket_url("https://example.test").unwrap(),
            format!("wss://example.test{suffix}")
        );
        assert_eq!(
            websocket_url("ws://h:1").unwrap(),
            format!("ws://h:1{suffix}")
        );
        assert_eq!(
            websocket_url("localhost:9").unwrap(),
            format!("ws://localhost:9{suffix}")
        );
        assert!(websocket_url("ftp://x").is_err());
    }

    #[test]
    fn open_packet_liveness() {
        assert_eq!(
            parse_open(r#"{"sid":"a","pingInterval":300,"pingTimeout":200}"#).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_open(r#"{"sid":"a"}"#).unwrap(),
            Duration::from_millis(45_000)
        );
        assert!(parse_open("nope").is_err());
    }
}
