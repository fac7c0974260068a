//! Request/response over RabbitMQ: an RPC client on direct reply-to and an RPC server.
//!
//! Request body: `{"action":"stuff:get","token":"…","payload":{…}}` published to
//! `rpc.<svc>` with `reply_to = amq.rabbitmq.reply-to`, a fresh AMQP `correlation_id`
//! to match the reply, the tracing correlation id in `x-correlation-id`, and an
//! `expiration` equal to the caller's timeout so a stale request is never processed.
//! Reply body: the contract's ack shape, `{"data":…}` or `{"status":…,"errors":[…]}`.
//!
//! Every call has a globally unique request id (AMQP `message_id`, also the
//! `correlation_id`). Replies to mutating actions are logged under it before they are
//! sent, and a request RabbitMQ delivers again is answered from that log instead of being
//! carried out twice (see [`crate::storage::ReplyLog`]).

use super::broker::{Backoff, Broker};
use super::consumer::correlation_of;
use super::publisher::CORRELATION_HEADER;
use super::topology::{Names, Service, lstr};
use crate::auth::{AuthUser, VerifyToken};
use crate::contract::{Action, ServiceAction};
use crate::error::{ApiError, Reply};
use crate::shutdown::Shutdown;
use crate::storage::ReplyLog;
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

/// RabbitMQ's pseudo-queue for direct reply-to.
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// What travels in an RPC request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcRequest {
    /// `<service>:<action>`, e.g. `stuff:get`.
    pub action: String,
    /// The caller's access token, verified by the receiving service itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The action's input, as the client sent it.
    #[serde(default)]
    pub payload: Value,
}

impl RpcRequest {
    /// A request for `action` on behalf of `token`'s holder.
    pub fn new(action: impl Into<Action>, token: Option<String>, payload: Value) -> Self {
        Self {
            action: action.into().name().to_owned(),
            token,
            payload,
        }
    }
}

/// Sends RPC requests and waits for replies (one per process, shared).
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    broker: Broker,
    names: Names,
    timeout: Duration,
    pending: std::sync::Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    channel: tokio::sync::Mutex<Option<(u64, Channel)>>,
    generation: AtomicU64,
    /// Request ids are `{prefix}.{counter}`: the prefix is random per client, so ids are
    /// unique across processes and restarts, and a call costs no random bytes.
    id_prefix: String,
    /// The counter part of request ids.
    next_id: AtomicU64,
}

impl RpcClient {
    /// A client whose calls give up (503) after `timeout`.
    pub fn new(broker: Broker, names: Names, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                broker,
                names,
                timeout,
                pending: std::sync::Mutex::new(HashMap::new()),
                channel: tokio::sync::Mutex::new(None),
                generation: AtomicU64::new(0),
                id_prefix: uuid::Uuid::new_v4().simple().to_string(),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Asks the service that owns `action`; any broker failure or timeout is a 503.
    pub async fn request(
        &self,
        action: impl Into<Action>,
        token: Option<String>,
        payload: Value,
        correlation_id: &str,
    ) -> Result<Value, ApiError> {
        let action = action.into();
        let req = RpcRequest::new(action, token, payload);
        self.call(action.service(), &req, correlation_id).await
    }

    /// Sends `req` to `svc` as it is (tests send actions no service knows); any broker
    /// failure or timeout is a 503 in the envelope.
    pub async fn call(
        &self,
        svc: Service,
        req: &RpcRequest,
        correlation_id: &str,
    ) -> Result<Value, ApiError> {
        let body = serde_json::to_vec(req).map_err(ApiError::internal_from)?;
        let id = format!(
            "{}.{:x}",
            self.inner.id_prefix,
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.inner.pending.lock() {
            p.insert(id.clone(), tx);
        }
        // One deadline for the whole call: opening a channel and publishing (which wait
        // for the broker) count against it too.
        let deadline = tokio::time::Instant::now() + self.inner.timeout;
        let sent = tokio::time::timeout_at(deadline, self.send(svc, &id, correlation_id, &body));
        let result = match sent.await {
            Err(_) => {
                tracing::warn!(service = svc.as_str(), "rpc publish timed out");
                Err(ApiError::unavailable())
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, service = svc.as_str(), "rpc publish failed");
                Err(ApiError::unavailable())
            }
            Ok(Ok(())) => match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(reply)) => reply.into_result(),
                Ok(Err(_)) => Err(ApiError::unavailable()),
                Err(_) => {
                    tracing::warn!(service = svc.as_str(), action = %req.action, "rpc timed out");
                    Err(ApiError::unavailable())
                }
            },
        };
        if let Ok(mut p) = self.inner.pending.lock() {
            p.remove(&id);
        }
        result
    }

    async fn send(&self, svc: Service, id: &str, cid: &str, body: &[u8]) -> lapin::Result<()> {
        let ch = self.channel().await?;
        let mut headers = FieldTable::default();
        headers.insert(CORRELATION_HEADER.into(), lstr(cid));
        let props = BasicProperties::default()
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(id.into())
            .with_message_id(id.into())
            .with_expiration(self.inner.timeout.as_millis().to_string().into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        ch.basic_publish(
            "".into(),
            self.inner.names.rpc_queue(svc).into(),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await?;
        Ok(())
    }

    /// The channel with its direct reply-to consumer, reopened after a failure.
    async fn channel(&self) -> lapin::Result<Channel> {
        let mut guard = self.inner.channel.lock().await;
        if let Some((_, ch)) = guard.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.inner.broker.channel().await?;
        let mut replies = ch
            .basic_consume(
                DIRECT_REPLY_TO.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let generation = self.inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        *guard = Some((generation, ch.clone()));
        let inner = self.inner.clone();
        tokio::spawn(async move {
            while let Some(Ok(d)) = replies.next().await {
                let Some(id) = d
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                else {
                    continue;
                };
                let reply = match serde_json::from_slice::<Value>(&d.data) {
                    Ok(v) => Reply::from_value(v),
                    Err(e) => Reply::Error(ApiError::internal_from(format!("bad rpc reply: {e}"))),
                };
                let tx = inner.pending.lock().ok().and_then(|mut p| p.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(reply);
                }
            }
            // The channel is gone: callers waiting on it would never hear back.
            let mut guard = inner.channel.lock().await;
            if guard.as_ref().is_some_and(|(g, _)| *g == generation) {
                *guard = None;
            }
            drop(guard);
            let waiting: Vec<_> = inner
                .pending
                .lock()
                .map(|mut p| p.drain().collect())
                .unwrap_or_default();
            for (_, tx) in waiting {
                let _ = tx.send(Reply::Error(ApiError::unavailable()));
            }
        });
        Ok(ch)
    }
}

/// Decodes an action's payload; a payload of the wrong shape is a 400 `Invalid payload`.
/// (Make fields `Option` to report a missing field as a field error instead.)
pub fn parse_payload<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T, ApiError> {
    serde_json::from_value(payload).map_err(|_| ApiError::bad_request("Invalid payload"))
}

/// Who is calling and in which request, as the RPC server established it.
#[derive(Debug, Clone, Default)]
pub struct RpcContext {
    /// The verified caller, when a valid token came with the request.
    pub user: Option<AuthUser>,
    /// Correlation id of the originating request.
    pub correlation_id: Option<String>,
}

impl RpcContext {
    /// The caller, or 401 when the action needs one.
    pub fn require_user(&self) -> Result<&AuthUser, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("Not authorized"))
    }
}

/// A service's RPC actions.
#[async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// The actions this service answers; a request for any other action is a 404.
    type Action: ServiceAction;

    /// Answers one request.
    async fn handle(
        &self,
        ctx: RpcContext,
        action: Self::Action,
        payload: Value,
    ) -> Result<Value, ApiError>;

    /// Where replies to mutating actions ([`Action::mutates`]) are logged (none:
    /// redeliveries run again).
    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        None
    }
}

/// Serves a service's RPC queue until shutdown, reconnecting after broker failures.
pub async fn run_rpc_server<H: RpcHandler>(
    broker: Broker,
    names: Names,
    svc: Service,
    prefetch: u16,
    verifier: Arc<dyn VerifyToken>,
    handler: Arc<H>,
    shutdown: Shutdown,
) {
    let mut backoff = Backoff::default();
    let queue = names.rpc_queue(svc);
    let serving = Serving {
        prefetch,
        verifier,
        handler,
        // Outlives each channel: a request redelivered after a reconnect may still run.
        in_flight: InFlight::default(),
        shutdown: shutdown.clone(),
    };
    loop {
        if shutdown.token.is_cancelled() {
            return;
        }
        let res = serve_once(&broker, &queue, &serving, &mut backoff).await;
        match res {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(queue = %queue, error = %e, "rpc server lost its channel; reconnecting");
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.token.cancelled() => return,
                }
            }
        }
    }
}

/// What an RPC server keeps across reconnects.
struct Serving<H> {
    prefetch: u16,
    verifier: Arc<dyn VerifyToken>,
    handler: Arc<H>,
    in_flight: InFlight,
    shutdown: Shutdown,
}

async fn serve_once<H: RpcHandler>(
    broker: &Broker,
    queue: &str,
    serving: &Serving<H>,
    backoff: &mut Backoff,
) -> lapin::Result<()> {
    let Serving {
        prefetch,
        verifier,
        handler,
        in_flight,
        shutdown,
    } = serving;
    let prefetch = *prefetch;
    let ch = broker.channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut stream = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    backoff.reset();
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = shutdown.token.cancelled() => return Ok(()),
        };
        let d = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Closed,
                    "rpc stream ended",
                )));
            }
        };
        let ch = ch.clone();
        let verifier = verifier.clone();
        let handler = handler.clone();
        let in_flight = in_flight.clone();
        let cid = correlation_of(&d);
        let span = tracing::info_span!(
            "rpc",
            correlation_id = cid.as_deref().unwrap_or("-"),
            action = tracing::field::Empty
        );
        shutdown.tracker.spawn(
            async move {
                let body =
                    reply_once(&d, cid, verifier.as_ref(), handler.as_ref(), &in_flight).await;
                if let (Some(reply_to), Some(corr)) = (
                    d.properties.reply_to().as_ref(),
                    d.properties.correlation_id().as_ref(),
                ) {
                    let props = BasicProperties::default()
                        .with_correlation_id(corr.clone())
                        .with_content_type("application/json".into());
                    if let Err(e) = ch
                        .basic_publish(
                            "".into(),
                            reply_to.clone(),
                            BasicPublishOptions::default(),
                            &body,
                            props,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "could not send rpc reply");
                    }
                }
                if let Err(e) = d.ack(BasicAckOptions::default()).await {
                    tracing::warn!(error = %e, "rpc ack failed");
                }
            }
            .instrument(span),
        );
    }
}

/// A reply body shared between the delivery that produced it and a copy waiting for it.
type Body = Option<Arc<Vec<u8>>>;

/// Requests being handled in this process, by request id. When the broker connection drops
/// while a handler runs, the process reconnects and RabbitMQ redelivers the request at
/// once; that copy waits here for the first one's reply instead of running again (the
/// reply log alone could be read before the first copy has written it).
#[derive(Clone, Default)]
struct InFlight(Arc<std::sync::Mutex<HashMap<String, tokio::sync::watch::Receiver<Body>>>>);

/// The right to handle a request id; the entry goes when it is dropped (also on a panic,
/// which a waiting copy sees as a closed channel and then handles the request itself).
struct Claim {
    map: InFlight,
    id: String,
    tx: tokio::sync::watch::Sender<Body>,
}

impl InFlight {
    /// Claims `id`, or returns the receiver of the copy already handling it.
    fn claim(&self, id: &str) -> Result<Claim, tokio::sync::watch::Receiver<Body>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(rx) = map.get(id) {
            return Err(rx.clone());
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        map.insert(id.to_owned(), rx);
        Ok(Claim {
            map: self.clone(),
            id: id.to_owned(),
            tx,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut map = self
            .map
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&self.id);
    }
}

/// The reply body for one delivery: the first copy's reply when the same request is still
/// being handled here, the logged reply of a redelivered request that was already carried
/// out, else the handler's answer (logged first when the action mutates).
async fn reply_once<H: RpcHandler>(
    d: &lapin::message::Delivery,
    cid: Option<String>,
    verifier: &dyn VerifyToken,
    handler: &H,
    in_flight: &InFlight,
) -> Vec<u8> {
    let request_id = d.properties.message_id().as_ref().map(|s| s.as_str());
    let log = request_id.and_then(|id| handler.replies().map(|l| (id, l)));
    let mut claim = None;
    if let Some((id, _)) = &log {
        match in_flight.claim(id) {
            Ok(c) => claim = Some(c),
            Err(mut rx) => {
                if let Ok(body) = rx.wait_for(Option::is_some).await
                    && let Some(body) = body.as_ref()
                {
                    tracing::info!(request_id = %id, "redelivered while still being handled; same reply");
                    return body.to_vec();
                }
            }
        }
    }
    if d.redelivered
        && let Some((id, log)) = &log
    {
        match log.logged_reply(id).await {
            Ok(Some(text)) => {
                tracing::info!(request_id = %id, "redelivered request already answered; replying again");
                return text.into_bytes();
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the reply log"),
        }
    }
    let (action, reply) = answer(&d.data, cid, verifier, handler).await;
    let text = reply.to_value().to_string();
    if let (Some(action), Some((id, log))) = (action, &log)
        && action.mutates()
        && let Err(e) = log.log_reply(id, &text).await
    {
        tracing::warn!(error = %e, "could not log the reply; a redelivery would run again");
    }
    let body = text.into_bytes();
    if let Some(c) = claim {
        c.tx.send_replace(Some(Arc::new(body.clone())));
    }
    body
}

async fn answer<H: RpcHandler>(
    data: &[u8],
    cid: Option<String>,
    verifier: &dyn VerifyToken,
    handler: &H,
) -> (Option<Action>, Reply) {
    let req: RpcRequest = match serde_json::from_slice(data) {
        Ok(r) => r,
        Err(_) => {
            return (
                None,
                Reply::Error(ApiError::bad_request("Malformed request")),
            );
        }
    };
    tracing::Span::current().record("action", req.action.as_str());
    let Some(action) = Action::from_name(&req.action) else {
        return (None, Reply::Error(ApiError::not_found("Unknown event")));
    };
    let Ok(own) = H::Action::try_from(action) else {
        return (None, Reply::Error(ApiError::not_found("Unknown event")));
    };
    let user = match req.token.as_deref() {
        None => None,
        Some(t) => match verifier.verify(t).await {
            Ok(u) => Some(u),
            Err(e) => return (Some(action), Reply::Error(e)),
        },
    };
    let ctx = RpcContext {
        user,
        correlation_id: cid,
    };
    let payload = if req.payload.is_null() {
        Value::Object(Default::default())
    } else {
        req.payload
    };
    let reply = Reply::from_result(handler.handle(ctx, own, payload).await);
    (Some(action), reply)
}
