//! Publishing with publisher confirms, persistent messages and `mandatory`.

use super::broker::Broker;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation};
use tokio::sync::Mutex;

/// AMQP header that carries the correlation id across services.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// Why a publish did not reach a queue.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// `mandatory` publish that no queue is bound for.
    #[error("unroutable: {0}")]
    Unroutable(String),
    /// The broker refused to take responsibility for the message.
    #[error("nacked by the broker")]
    Nacked,
    /// Connection or channel failure; safe to retry.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
}

/// A message to publish.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// Exchange ("" = default exchange).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Body (JSON).
    pub payload: Vec<u8>,
    /// Extra headers.
    pub headers: FieldTable,
    /// Correlation id, put both in the header and the AMQP property.
    pub correlation_id: Option<String>,
    /// Message id (event id), for duplicate detection.
    pub message_id: Option<String>,
    /// Per-message TTL (`expiration`): how long it may wait in a queue before it expires
    /// (a retry queue's jittered delay).
    pub expiration: Option<std::time::Duration>,
}

/// A confirm-mode publisher that survives broker restarts and failovers (it reopens its
/// channel when the connection is gone or the broker nacked).
pub struct Publisher {
    broker: Broker,
    channel: Mutex<Option<Channel>>,
}

impl Publisher {
    /// A publisher on `broker`; the channel opens at first use.
    pub fn new(broker: Broker) -> Self {
        Self {
            broker,
            channel: Mutex::new(None),
        }
    }

    async fn channel(&self) -> lapin::Result<Channel> {
        let mut guard = self.channel.lock().await;
        if let Some(ch) = guard.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.broker.channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *guard = Some(ch.clone());
        Ok(ch)
    }

    /// Publishes persistently and waits for the broker's confirm.
    pub async fn publish(&self, msg: Outgoing) -> Result<(), PublishError> {
        let ch = self.channel().await?;
        let mut headers = msg.headers;
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        if let Some(cid) = &msg.correlation_id {
            headers.insert(CORRELATION_HEADER.into(), super::topology::lstr(cid));
            props = props.with_correlation_id(cid.as_str().into());
        }
        if let Some(id) = &msg.message_id {
            props = props.with_message_id(id.as_str().into());
        }
        if let Some(ttl) = msg.expiration {
            props = props.with_expiration(ttl.as_millis().to_string().into());
        }
        props = props.with_headers(headers);
        let confirm = ch
            .basic_publish(
                msg.exchange.as_str().into(),
                msg.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &msg.payload,
                props,
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(PublishError::Unroutable(format!(
                "{} -> {}",
                returned.delivery.exchange, returned.delivery.routing_key
            ))),
            Confirmation::Nack(_) | Confirmation::NotRequested => {
                // A quorum queue whose leader moved to another node keeps nacking this
                // channel's publishes (`x-overflow: reject-publish`), even once a new leader
                // is elected; a fresh channel is accepted. The caller's retry gets one.
                self.forget_channel(&ch).await;
                Err(PublishError::Nacked)
            }
        }
    }

    /// Closes `ch` and drops it, unless another task already replaced it.
    async fn forget_channel(&self, ch: &Channel) {
        let mut guard = self.channel.lock().await;
        if guard.as_ref().is_some_and(|c| c.id() == ch.id()) {
            *guard = None;
            drop(guard);
            let _ = ch.close(200, "nacked; reopening".into()).await;
        }
    }
}
