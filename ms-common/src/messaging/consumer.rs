//! Consuming with explicit prefetch, manual acks after the work is stored, delayed retries
//! with exponential backoff and jitter, and dead-lettering with the reason in headers.
//!
//! Per delivery: parse → handle → ack. A handler asking for a retry sends the message to a
//! rung of the queue's retry ladder (it comes back after the rung's jittered delay, see
//! [`super::retry`]) with `x-retry-count` + 1; once the retry budget since its first
//! failure is spent (or past `max_retries`), or for a message that cannot even be parsed,
//! it goes to the dead-letter exchange with `x-death-reason`. A handler deferring a message
//! that is not due yet sends it to the rung covering the wait, uncounted. The original is
//! acked only after that publish is confirmed, so a broker failure in between means
//! redelivery, never loss.

use super::broker::{Backoff, Broker};
use super::publisher::{CORRELATION_HEADER, Outgoing, Publisher};
use super::retry::{FIRST_FAILURE_HEADER, RetryPolicy, jittered};
use super::topology::{Names, Service, lstr, retry_queue_for};
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::types::AMQPValue;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Header counting how many times a message went through the retry queue.
pub const RETRY_HEADER: &str = "x-retry-count";
/// Header with the reason a message was dead-lettered.
pub const REASON_HEADER: &str = "x-death-reason";
/// Header with the routing key a dead letter was first published with.
pub const ORIGINAL_KEY_HEADER: &str = "x-original-routing-key";

/// What a handler says about a message it could not apply.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Try again later (transient failure, or an event that arrived early).
    #[error("retry: {0}")]
    Retry(String),
    /// Can never succeed: park it in the dead-letter queue now.
    #[error("reject: {0}")]
    Reject(String),
    /// Not due yet (an expiry that arrived before its time): come back after this long.
    /// Not a failure: it uses none of the retry budget.
    #[error("deferred by {0:?}")]
    Defer(Duration),
}

/// Applies one decoded message. Return only after the effect is stored.
#[async_trait]
pub trait Handler<T>: Send + Sync + 'static {
    /// Handles one message; `correlation_id` is the one from its headers.
    async fn handle(&self, msg: T, correlation_id: Option<String>) -> Result<(), HandleError>;
}

/// Where and how a consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Name scheme (for retry and dead-letter destinations).
    pub names: Names,
    /// The owning service.
    pub service: Service,
    /// The queue to read.
    pub queue: String,
    /// Unacknowledged deliveries in flight.
    pub prefetch: u16,
    /// Backoff and budget; the queue's retry ladder (`topology::declare_retry_queues`)
    /// must be declared with the same policy.
    pub retry: RetryPolicy,
}

/// Reads a string header, if present.
pub fn header_str(d: &Delivery, key: &str) -> Option<String> {
    let h = d.properties.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

fn header_i64(d: &Delivery, key: &str) -> Option<i64> {
    let h = d.properties.headers().as_ref()?;
    match h.inner().get(key)? {
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        _ => None,
    }
}

fn header_u32(d: &Delivery, key: &str) -> u32 {
    let Some(h) = d.properties.headers().as_ref() else {
        return 0;
    };
    match h.inner().get(key) {
        Some(AMQPValue::LongInt(v)) => u32::try_from(*v).unwrap_or(0),
        Some(AMQPValue::LongUInt(v)) => *v,
        Some(AMQPValue::LongLongInt(v)) => u32::try_from(*v).unwrap_or(0),
        _ => 0,
    }
}

/// The correlation id of a delivery: header first, then the AMQP property.
pub fn correlation_of(d: &Delivery) -> Option<String> {
    header_str(d, CORRELATION_HEADER).or_else(|| {
        d.properties
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_owned())
    })
}

/// Runs a consumer until shutdown, reconnecting after broker failures.
pub async fn run_consumer<T, H>(
    broker: Broker,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: Shutdown,
) where
    T: DeserializeOwned + Send + 'static,
    H: Handler<T>,
{
    let publisher = Arc::new(Publisher::new(broker.clone()));
    let mut backoff = Backoff::default();
    let _t: PhantomData<T> = PhantomData;
    loop {
        if shutdown.token.is_cancelled() {
            return;
        }
        match consume_once::<T, H>(
            &broker,
            &spec,
            &handler,
            &publisher,
            &shutdown,
            &mut backoff,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(queue = %spec.queue, error = %e, "consumer lost its channel; reconnecting");
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.token.cancelled() => return,
                }
            }
        }
    }
}

async fn consume_once<T, H>(
    broker: &Broker,
    spec: &ConsumerSpec,
    handler: &Arc<H>,
    publisher: &Arc<Publisher>,
    shutdown: &Shutdown,
    backoff: &mut Backoff,
) -> lapin::Result<()>
where
    T: DeserializeOwned + Send + 'static,
    H: Handler<T>,
{
    let (_ch, mut stream) = broker.consume(&spec.queue, spec.prefetch).await?;
    backoff.reset();
    tracing::debug!(queue = %spec.queue, "consuming");
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = shutdown.token.cancelled() => return Ok(()),
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e),
            None => {
                return Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Closed,
                    "consumer stream ended",
                )));
            }
        };
        let handler = handler.clone();
        let publisher = publisher.clone();
        let spec = spec.clone();
        let cid = correlation_of(&delivery);
        let span = tracing::info_span!("message", queue = %spec.queue, correlation_id = cid.as_deref().unwrap_or("-"));
        shutdown.tracker.spawn(
            async move {
                process::<T, H>(delivery, cid, &spec, handler.as_ref(), &publisher).await;
            }
            .instrument(span),
        );
    }
}

async fn process<T, H>(
    delivery: Delivery,
    cid: Option<String>,
    spec: &ConsumerSpec,
    handler: &H,
    publisher: &Publisher,
) where
    T: DeserializeOwned + Send + 'static,
    H: Handler<T>,
{
    let outcome = match serde_json::from_slice::<T>(&delivery.data) {
        Err(e) => Err(HandleError::Reject(format!("invalid message: {e}"))),
        Ok(msg) => handler.handle(msg, cid.clone()).await,
    };
    let settled = match outcome {
        Ok(()) => Ok(()),
        Err(HandleError::Retry(reason)) => retry_later(publisher, spec, &delivery, &reason).await,
        Err(HandleError::Defer(wait)) => {
            let rung = spec.retry.rung_covering(wait);
            tracing::debug!(?wait, "not due yet; deferred");
            forward(
                publisher,
                &delivery,
                "".into(),
                retry_queue_for(&spec.queue, rung),
                Hops {
                    retries: header_u32(&delivery, RETRY_HEADER),
                    first_failure_ms: header_i64(&delivery, FIRST_FAILURE_HEADER),
                    expiration: Some(wait.clamp(Duration::from_millis(1), rung)),
                },
                None,
            )
            .await
        }
        Err(HandleError::Reject(reason)) => {
            tracing::warn!(%reason, "dead-lettering");
            dead_letter(publisher, spec, &delivery, &reason).await
        }
    };
    match settled {
        Ok(()) => {
            if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                // The broker will redeliver; handlers are idempotent.
                tracing::warn!(error = %e, "ack failed");
            }
        }
        // Not acked: the broker redelivers it once the channel is back.
        Err(e) => tracing::warn!(error = %e, "could not forward message; left for redelivery"),
    }
}

/// A failed attempt: the next rung of the ladder with a jittered delay, or the
/// dead-letter queue once the budget (or `max_retries`) is spent.
async fn retry_later(
    publisher: &Publisher,
    spec: &ConsumerSpec,
    d: &Delivery,
    reason: &str,
) -> Result<(), super::PublishError> {
    let retries = header_u32(d, RETRY_HEADER);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let first_ms = header_i64(d, FIRST_FAILURE_HEADER).unwrap_or(now_ms);
    let elapsed = Duration::from_millis(u64::try_from(now_ms - first_ms).unwrap_or(0));
    if spec.retry.exhausted(retries, elapsed) {
        tracing::warn!(%reason, retries, ?elapsed, "retries exhausted; dead-lettering");
        return dead_letter(
            publisher,
            spec,
            d,
            &format!("retries exhausted after {retries} retries in {elapsed:?}: {reason}"),
        )
        .await;
    }
    let delay = spec.retry.delay_for(retries + 1);
    let wait = jittered(delay);
    tracing::debug!(%reason, attempt = retries + 1, ?wait, "retrying later");
    forward(
        publisher,
        d,
        "".into(),
        retry_queue_for(&spec.queue, delay),
        Hops {
            retries: retries + 1,
            first_failure_ms: Some(first_ms),
            expiration: Some(wait),
        },
        None,
    )
    .await
}

async fn dead_letter(
    publisher: &Publisher,
    spec: &ConsumerSpec,
    d: &Delivery,
    reason: &str,
) -> Result<(), super::PublishError> {
    forward(
        publisher,
        d,
        spec.names.dead_letter_exchange(),
        spec.service.as_str().to_owned(),
        Hops {
            retries: header_u32(d, RETRY_HEADER),
            first_failure_ms: header_i64(d, FIRST_FAILURE_HEADER),
            expiration: None,
        },
        Some(reason),
    )
    .await
}

/// What a forwarded copy records about its journey so far.
struct Hops {
    /// Failed attempts so far (`x-retry-count`).
    retries: u32,
    /// When the first attempt failed (`x-first-failure-ms`), if one has.
    first_failure_ms: Option<i64>,
    /// How long it waits in a retry queue (per-message TTL).
    expiration: Option<Duration>,
}

async fn forward(
    publisher: &Publisher,
    d: &Delivery,
    exchange: String,
    routing_key: String,
    hops: Hops,
    reason: Option<&str>,
) -> Result<(), super::PublishError> {
    let mut headers = d.properties.headers().clone().unwrap_or_default();
    headers.insert(
        RETRY_HEADER.into(),
        AMQPValue::LongInt(i32::try_from(hops.retries).unwrap_or(i32::MAX)),
    );
    if let Some(first) = hops.first_failure_ms {
        headers.insert(FIRST_FAILURE_HEADER.into(), AMQPValue::LongLongInt(first));
    }
    if header_str(d, ORIGINAL_KEY_HEADER).is_none() {
        headers.insert(ORIGINAL_KEY_HEADER.into(), lstr(d.routing_key.as_str()));
    }
    if let Some(r) = reason {
        headers.insert(REASON_HEADER.into(), lstr(r));
    }
    publisher
        .publish(Outgoing {
            exchange,
            routing_key,
            payload: d.data.clone(),
            headers,
            correlation_id: correlation_of(d),
            message_id: d
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            expiration: hops.expiration,
        })
        .await
}
