//! The RPC server: consumes a service's RPC queue, answers each request on its reply-to
//! address and acknowledges it afterwards.

use super::duplicates::{InFlight, reply_once};
use super::{RpcContext, RpcHandler, RpcRequest};
use crate::auth::VerifyToken;
use crate::contract::Action;
use crate::error::{ApiError, Reply};
use crate::messaging::broker::{Backoff, Broker};
use crate::messaging::consumer::correlation_of;
use crate::messaging::topology::{Names, Service};
use crate::shutdown::Shutdown;
use futures_util::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicAckOptions, BasicPublishOptions};
use serde_json::Value;
use std::sync::Arc;
use tracing::Instrument;

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
        replies: Arc::new(Replies {
            broker: broker.sibling("replies"),
            channel: tokio::sync::Mutex::new(None),
        }),
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
    replies: Arc<Replies>,
    prefetch: u16,
    verifier: Arc<dyn VerifyToken>,
    handler: Arc<H>,
    in_flight: InFlight,
    shutdown: Shutdown,
}

/// Serves on one channel: `Ok` at shutdown, `Err` when the channel fails (the caller
/// reconnects).
async fn serve_once<H: RpcHandler>(
    broker: &Broker,
    queue: &str,
    serving: &Serving<H>,
    backoff: &mut Backoff,
) -> lapin::Result<()> {
    let Serving {
        replies,
        prefetch,
        verifier,
        handler,
        in_flight,
        shutdown,
    } = serving;
    let prefetch = *prefetch;
    let (_ch, mut stream) = broker.consume(queue, prefetch).await?;
    backoff.reset();
    tracing::debug!(queue, "serving");
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
        let replies = replies.clone();
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
                ) && let Err(e) = replies.send(reply_to.as_str(), corr.as_str(), &body).await
                {
                    tracing::warn!(error = %e, "could not send rpc reply");
                }
                if let Err(e) = d.ack(BasicAckOptions::default()).await {
                    tracing::warn!(error = %e, "rpc ack failed");
                }
            }
            .instrument(span),
        );
    }
}

/// Where replies are published: a connection of their own. A reply to a requester whose
/// broker node died (its direct reply-to address names that node) makes RabbitMQ close the
/// publishing connection with `INTERNAL_ERROR`; on the consuming connection, the request
/// could never be acknowledged and would come back, be answered and crash it again, for
/// good. Here only the reply connection drops (and reopens), and the request is acked.
/// How long sending one reply may take before the request is acknowledged anyway.
const REPLY_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

struct Replies {
    broker: Broker,
    channel: tokio::sync::Mutex<Option<lapin::Channel>>,
}

impl Replies {
    async fn send(&self, reply_to: &str, correlation_id: &str, body: &[u8]) -> lapin::Result<()> {
        let ch = {
            let mut guard = self.channel.lock().await;
            match guard.as_ref() {
                // The channel can look open while the broker already closed its connection.
                Some(ch) if ch.status().connected() && self.broker.is_connected() => ch.clone(),
                _ => {
                    let ch = self.broker.channel().await?;
                    *guard = Some(ch.clone());
                    ch
                }
            }
        };
        let props = BasicProperties::default()
            .with_correlation_id(correlation_id.into())
            .with_content_type("application/json".into());
        let publish = ch.basic_publish(
            "".into(),
            reply_to.into(),
            BasicPublishOptions::default(),
            body,
            props,
        );
        // A connection dying under the publish must not hold the request's ack back.
        match tokio::time::timeout(REPLY_SEND_TIMEOUT, publish).await {
            Ok(res) => res.map(|_| ()),
            Err(_) => {
                *self.channel.lock().await = None;
                Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Error,
                    "rpc reply publish timed out",
                )))
            }
        }
    }
}

/// Decodes, authenticates and handles one request; also returns the action (when known)
/// so the caller can tell whether the reply must be logged.
pub(super) async fn answer<H: RpcHandler>(
    data: &[u8],
    cid: Option<String>,
    deadline: Option<std::time::SystemTime>,
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
    let token = user.as_ref().and(req.token);
    let ctx = RpcContext {
        user,
        token,
        correlation_id: cid,
        deadline,
    };
    let payload = if req.payload.is_null() {
        Value::Object(Default::default())
    } else {
        req.payload
    };
    let reply = Reply::from_result(handler.handle(ctx, own, payload).await);
    (Some(action), reply)
}
