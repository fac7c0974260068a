//! The RPC client: publishes requests with direct reply-to and matches each reply to its
//! waiting caller by `correlation_id`.

use super::{DEADLINE_HEADER, DIRECT_REPLY_TO, RpcRequest};
use crate::contract::Action;
use crate::error::{ApiError, WireReply};
use crate::messaging::broker::Broker;
use crate::messaging::publisher::CORRELATION_HEADER;
use crate::messaging::topology::{Names, Service, lstr};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

/// Sends RPC requests and waits for replies (one per process, shared).
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

/// What a waiting caller gets: the reply's body as it came (parsed in the caller's task,
/// not in the one task reading every reply), or why none will come.
type Answer = Result<Vec<u8>, ApiError>;

struct ClientInner {
    broker: Broker,
    names: Names,
    timeout: Duration,
    pending: std::sync::Mutex<HashMap<String, oneshot::Sender<Answer>>>,
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
        let wait = action.reply_wait(self.inner.timeout);
        self.call_waiting(action.service(), &req, correlation_id, wait)
            .await
    }

    /// Sends `req` to `svc` as it is (tests send actions no service knows), waiting the
    /// configured timeout; any broker failure or timeout is a 503 in the envelope.
    pub async fn call(
        &self,
        svc: Service,
        req: &RpcRequest,
        correlation_id: &str,
    ) -> Result<Value, ApiError> {
        self.call_waiting(svc, req, correlation_id, self.inner.timeout)
            .await
    }

    /// [`Self::call`] waiting `wait` (the caller resolved the action already, and with it
    /// [`Action::reply_wait`]: nothing is looked up again on the relay's hot path).
    pub async fn call_waiting(
        &self,
        svc: Service,
        req: &RpcRequest,
        correlation_id: &str,
        wait: Duration,
    ) -> Result<Value, ApiError> {
        self.call_wire(svc, req, correlation_id, wait)
            .await
            .and_then(WireReply::into_result)
    }

    /// [`Self::call_waiting`] returning the reply as it came, for the router to pass on
    /// without parsing its data.
    pub async fn call_wire(
        &self,
        svc: Service,
        req: &RpcRequest,
        correlation_id: &str,
        wait: Duration,
    ) -> Result<WireReply, ApiError> {
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
        let deadline = tokio::time::Instant::now() + wait;
        let wall_deadline = std::time::SystemTime::now() + wait;
        let sent = self.send(
            svc,
            &id,
            correlation_id,
            wait,
            (deadline, wall_deadline),
            &body,
        );
        let result = match sent.await {
            Err(e) => {
                tracing::warn!(error = %e, service = svc.as_str(), "rpc publish failed");
                Err(ApiError::unavailable())
            }
            Ok(()) => match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(reply)) => reply.map(WireReply::from_bytes),
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

    async fn send(
        &self,
        svc: Service,
        id: &str,
        cid: &str,
        wait: Duration,
        (deadline, wall_deadline): (tokio::time::Instant, std::time::SystemTime),
        body: &[u8],
    ) -> lapin::Result<()> {
        let ch = tokio::time::timeout_at(deadline, self.channel())
            .await
            .map_err(|_| not_confirmed("rpc channel not opened in time"))??;
        let mut headers = FieldTable::default();
        headers.insert(CORRELATION_HEADER.into(), lstr(cid));
        if let Ok(ms) = wall_deadline.duration_since(std::time::UNIX_EPOCH) {
            headers.insert(DEADLINE_HEADER.into(), lstr(&ms.as_millis().to_string()));
        }
        let props = BasicProperties::default()
            .with_reply_to(DIRECT_REPLY_TO.into())
            .with_correlation_id(id.into())
            .with_message_id(id.into())
            .with_expiration(wait.as_millis().to_string().into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let publish = ch.basic_publish(
            "".into(),
            self.inner.names.rpc_queue(svc).into(),
            BasicPublishOptions::default(),
            body,
            props,
        );
        let confirm = tokio::time::timeout_at(deadline, publish)
            .await
            .map_err(|_| not_confirmed("rpc publish timed out"))??;
        // Confirmed: on a cluster, a channel opened while a quorum queue elected its
        // leader can lose its publishes to that queue without a word. A request nacked
        // or unconfirmed by its deadline drops the channel; the next request opens anew.
        match tokio::time::timeout_at(deadline, confirm).await {
            Ok(Ok(lapin::Confirmation::Ack(_))) => Ok(()),
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) | Err(_) => {
                self.forget_channel(&ch).await;
                Err(not_confirmed("rpc request not confirmed"))
            }
        }
    }

    /// Drops `ch` (unless already replaced) so that the next request opens a new one.
    async fn forget_channel(&self, ch: &Channel) {
        let mut guard = self.inner.channel.lock().await;
        if guard.as_ref().is_some_and(|(_, c)| c.id() == ch.id()) {
            *guard = None;
            drop(guard);
            let _ = ch.close(200, "unconfirmed".into()).await;
        }
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
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await?;
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
                let tx = inner.pending.lock().ok().and_then(|mut p| p.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(d.data));
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
                let _ = tx.send(Err(ApiError::unavailable()));
            }
        });
        Ok(ch)
    }
}

/// Fetches ms-user's key set over RPC.
pub struct RpcKeySource {
    client: RpcClient,
}

impl RpcKeySource {
    /// A key source that calls `user:jwks`.
    pub fn new(client: RpcClient) -> Self {
        Self { client }
    }
}

#[async_trait::async_trait]
impl crate::auth::KeySource for RpcKeySource {
    async fn fetch(&self) -> Result<crate::auth::JwkSet, ApiError> {
        let req = super::RpcRequest::new(
            crate::contract::UserAction::Jwks,
            None,
            serde_json::json!({}),
        );
        let v = self
            .client
            .call(crate::contract::Service::User, &req, "jwks")
            .await?;
        serde_json::from_value(v).map_err(ApiError::internal_from)
    }
}

/// The error of a request the broker did not take in time (the caller answers 503).
fn not_confirmed(what: &'static str) -> lapin::Error {
    lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
        lapin::ChannelState::Error,
        what,
    ))
}
