//! Every exchange and queue name, and their declarations, in one place.
//!
//! ```text
//! {p}stuffmart.events   topic   ─┬─▶ {p}<svc>.events (durable, DLX → dlx/<svc>)
//!        │ (alternate)           └─▶ router replicas' exclusive queues (live fan-out)
//!        ▼
//! {p}stuffmart.unrouted fanout ──▶ {p}stuffmart.unrouted (events nobody subscribes to yet)
//! {p}<svc>.retry.<ms>ms (TTL) ──dead-letter──▶ default exchange ──▶ {p}<svc>.events
//!   (one per rung of the backoff ladder: RETRY_DELAY_MS doubling up to RETRY_MAX_DELAY_MS)
//! {p}stuffmart.dlx      direct  ──<svc>──▶ {p}<svc>.dlq (parking, reason in headers)
//! {p}rpc.<svc>          durable RPC request queue (direct reply-to answers)
//! ```
//! `{p}` is `AMQP_PREFIX`, empty in production, unique per test run.

use async_trait::async_trait;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use std::time::Duration;

use super::retry::RetryPolicy;
pub use crate::contract::Service;

/// Names of every exchange and queue, under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (empty in production).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// Topic exchange every event is published to.
    pub fn events_exchange(&self) -> String {
        format!("{}stuffmart.events", self.prefix)
    }
    /// Alternate exchange that catches events no queue is bound for.
    pub fn unrouted_exchange(&self) -> String {
        format!("{}stuffmart.unrouted", self.prefix)
    }
    /// Queue that keeps unrouted events for inspection.
    pub fn unrouted_queue(&self) -> String {
        format!("{}stuffmart.unrouted", self.prefix)
    }
    /// Direct exchange that routes dead letters to their service's parking queue.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}stuffmart.dlx", self.prefix)
    }
    /// A service's RPC request queue.
    pub fn rpc_queue(&self, svc: Service) -> String {
        format!("{}rpc.{}", self.prefix, svc.as_str())
    }
    /// A service's durable event queue.
    pub fn events_queue(&self, svc: Service) -> String {
        format!("{}{}.events", self.prefix, svc.as_str())
    }
    /// A service's delayed-retry queue for its events queue.
    pub fn retry_queue(&self, svc: Service, delay: Duration) -> String {
        retry_queue_for(&self.events_queue(svc), delay)
    }
    /// A service's dead-letter (parking) queue.
    pub fn dead_letter_queue(&self, svc: Service) -> String {
        format!("{}{}.dlq", self.prefix, svc.as_str())
    }
}

/// The delayed-retry queue that feeds `queue`; the delay is in the name so a new delay
/// never clashes with an existing queue's fixed TTL.
pub fn retry_queue_for(queue: &str, delay: Duration) -> String {
    format!("{queue}.retry.{}ms", delay.as_millis())
}

/// Declares the retry queue of `queue`: messages wait out `delay`, then return to `queue`.
pub async fn declare_retry_queue(ch: &Channel, queue: &str, delay: Duration) -> lapin::Result<()> {
    let ttl = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
    ch.queue_declare(
        retry_queue_for(queue, delay).into(),
        durable(),
        table(vec![
            ("x-message-ttl", AMQPValue::LongInt(ttl)),
            ("x-dead-letter-exchange", lstr("")),
            ("x-dead-letter-routing-key", lstr(queue)),
        ]),
    )
    .await?;
    Ok(())
}

/// Declares every rung of `queue`'s retry ladder ([`RetryPolicy::rungs`]).
pub async fn declare_retry_queues(
    ch: &Channel,
    queue: &str,
    policy: &RetryPolicy,
) -> lapin::Result<()> {
    for delay in policy.rungs() {
        declare_retry_queue(ch, queue, delay).await?;
    }
    Ok(())
}

/// Declares a durable work queue whose broker-side rejections go to `svc`'s parking queue.
pub async fn declare_work_queue(
    ch: &Channel,
    names: &Names,
    svc: Service,
    queue: &str,
) -> lapin::Result<()> {
    ch.queue_declare(
        queue.into(),
        durable(),
        table(vec![
            (
                "x-dead-letter-exchange",
                lstr(&names.dead_letter_exchange()),
            ),
            ("x-dead-letter-routing-key", lstr(svc.as_str())),
        ]),
    )
    .await?;
    Ok(())
}

/// Something to declare on every (re)connection; declarations are idempotent.
#[async_trait]
pub trait Declare: Send + Sync + 'static {
    /// Declares exchanges, queues and bindings on `ch`.
    async fn declare(&self, ch: &Channel) -> lapin::Result<()>;
}

/// Short helper: a `FieldTable` from pairs.
pub fn table(pairs: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(ShortString::from(k), v);
    }
    t
}

/// Short helper: an AMQP long string value.
pub fn lstr(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}

/// Exchanges shared by all services (declared by everyone, harmlessly, on connect).
pub async fn declare_exchanges(ch: &Channel, names: &Names) -> lapin::Result<()> {
    let durable_ex = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(
        names.unrouted_exchange().into(),
        ExchangeKind::Fanout,
        durable_ex,
        FieldTable::default(),
    )
    .await?;
    // Events nobody is bound for are kept, bounded, rather than lost or returned.
    ch.queue_declare(
        names.unrouted_queue().into(),
        durable(),
        table(vec![("x-max-length", AMQPValue::LongInt(100_000))]),
    )
    .await?;
    ch.queue_bind(
        names.unrouted_queue().into(),
        names.unrouted_exchange().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.exchange_declare(
        names.events_exchange().into(),
        ExchangeKind::Topic,
        durable_ex,
        table(vec![(
            "alternate-exchange",
            lstr(&names.unrouted_exchange()),
        )]),
    )
    .await?;
    ch.exchange_declare(
        names.dead_letter_exchange().into(),
        ExchangeKind::Direct,
        durable_ex,
        FieldTable::default(),
    )
    .await
}

/// The queues one service owns: RPC, events (with bindings), retry and dead letters.
#[derive(Debug, Clone)]
pub struct ServiceTopology {
    /// Name scheme.
    pub names: Names,
    /// Which service.
    pub service: Service,
    /// Routing keys its events queue is bound to (e.g. `order.created`).
    pub bindings: Vec<String>,
    /// Backoff ladder of the retry queues.
    pub retry: RetryPolicy,
    /// Whether the service answers RPC requests.
    pub rpc: bool,
}

#[async_trait]
impl Declare for ServiceTopology {
    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        let n = &self.names;
        let svc = self.service.as_str();
        declare_exchanges(ch, n).await?;
        // Parking queue for messages that failed for good.
        ch.queue_declare(
            n.dead_letter_queue(self.service).into(),
            durable(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            n.dead_letter_queue(self.service).into(),
            n.dead_letter_exchange().into(),
            svc.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
        // The events queue: broker-side rejections also end in the parking queue.
        let events_q = n.events_queue(self.service);
        declare_work_queue(ch, n, self.service, &events_q).await?;
        for key in &self.bindings {
            ch.queue_bind(
                events_q.clone().into(),
                n.events_exchange().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        // Delayed retry: messages wait out a rung's TTL, then go back to the events queue.
        declare_retry_queues(ch, &events_q, &self.retry).await?;
        if self.rpc {
            ch.queue_declare(
                n.rpc_queue(self.service).into(),
                durable(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The retry-queue delays tests may have declared: the ladders from the usual bases
/// (100, 200, 250, 500, 1000 ms) doubling to 60 s, and the usual caps.
fn teardown_retry_delays() -> Vec<u64> {
    let mut delays: Vec<u64> = vec![30_000, 60_000];
    for base in [100u64, 200, 250, 500, 1000] {
        let mut d = base;
        while d <= 60_000 {
            delays.push(d);
            d *= 2;
        }
    }
    delays.sort_unstable();
    delays.dedup();
    delays
}

/// Deletes every queue (and its usual retry queues) and exchange under a prefix's names;
/// tests clean up after themselves, naming their own extra queues.
pub async fn teardown(ch: &Channel, names: &Names, extra_queues: &[String]) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let mut queues: Vec<String> = extra_queues.to_vec();
    queues.push(names.unrouted_queue());
    for svc in Service::ALL {
        queues.push(names.rpc_queue(svc));
        queues.push(names.events_queue(svc));
        queues.push(names.dead_letter_queue(svc));
    }
    let with_retries: Vec<String> = queues
        .iter()
        .flat_map(|q| {
            let mut v = vec![q.clone()];
            v.extend(
                teardown_retry_delays()
                    .into_iter()
                    .map(|ms| retry_queue_for(q, Duration::from_millis(ms))),
            );
            v
        })
        .collect();
    for q in with_retries {
        // A queue that was never declared closes the channel on some brokers; use a fresh
        // delete with if_unused=false which is a no-op for missing queues on RabbitMQ 3.x.
        let _ = ch
            .queue_delete(q.into(), QueueDeleteOptions::default())
            .await;
    }
    for ex in [
        names.events_exchange(),
        names.unrouted_exchange(),
        names.dead_letter_exchange(),
    ] {
        let _ = ch
            .exchange_delete(ex.into(), ExchangeDeleteOptions::default())
            .await;
    }
}
