//! Duplicate handling on the server side: a request RabbitMQ delivers again is answered
//! with the reply of its first copy, never carried out twice.

use super::server::answer;
use super::{DEADLINE_HEADER, RpcHandler};
use crate::auth::VerifyToken;
use crate::error::{ApiError, Reply};
use crate::messaging::consumer::header_str;
use std::collections::HashMap;
use std::sync::Arc;

/// A reply body shared between the delivery that produced it and a copy waiting for it.
type Body = Option<Arc<Vec<u8>>>;

/// Requests being handled in this process, by request id. When the broker connection drops
/// while a handler runs, the process reconnects and RabbitMQ redelivers the request at
/// once; that copy waits here for the first one's reply instead of running again (the
/// reply log alone could be read before the first copy has written it).
#[derive(Clone, Default)]
pub(super) struct InFlight(
    Arc<std::sync::Mutex<HashMap<String, tokio::sync::watch::Receiver<Body>>>>,
);

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
pub(super) async fn reply_once<H: RpcHandler>(
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
    let deadline = header_str(d, DEADLINE_HEADER)
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    let (action, reply) = answer(&d.data, cid, deadline, verifier, handler).await;
    let text = match serde_json::to_string(&reply) {
        Ok(text) => text,
        // Only a map with non-string keys fails, which `Value` cannot hold.
        Err(e) => {
            tracing::error!(error = %e, "could not serialise a reply");
            Reply::Error(ApiError::internal()).to_value().to_string()
        }
    };
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
