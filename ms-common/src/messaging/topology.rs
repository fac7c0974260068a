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

/// A durable queue as StuffMart declares it: always a quorum queue (replicated across a
/// RabbitMQ cluster, so a broker node's death loses none of its messages), with its
/// arguments and bindings in one value so a classic queue left by an older version can be
/// moved over ([`super::migrate`]).
#[derive(Debug, Clone)]
pub struct QueueSpec {
    /// Queue name (prefixed).
    pub name: String,
    args: Vec<(&'static str, AMQPValue)>,
    /// `(exchange, routing key)` pairs the queue is bound with.
    pub bindings: Vec<(String, String)>,
    /// Declared as a classic queue: only the short-lived parking queue of a move
    /// ([`super::migrate`]), which must support `if-empty` deletion.
    classic: bool,
}

impl QueueSpec {
    /// A quorum queue named `name`, no other arguments yet.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            args: Vec::new(),
            bindings: Vec::new(),
            classic: false,
        }
    }

    /// The same queue under `name` as a classic queue (arguments classic queues refuse
    /// left out): where a move parks messages for a moment ([`super::migrate`]).
    pub(crate) fn parked_as_classic(&self, name: String) -> Self {
        Self {
            name,
            classic: true,
            ..self.clone()
        }
    }

    /// Adds a queue argument (`x-message-ttl`, `x-max-length`…).
    pub fn arg(mut self, key: &'static str, value: AMQPValue) -> Self {
        self.args.push((key, value));
        self
    }

    /// Dead-letters to `exchange` / `routing_key`, at least once: the broker keeps a
    /// dead letter until the target queue confirms it (`x-dead-letter-strategy`, which
    /// needs `x-overflow: reject-publish`), so an expiring hold or a retry returning to
    /// its queue cannot vanish while a node fails over.
    pub fn dead_letter(self, exchange: &str, routing_key: &str) -> Self {
        self.arg("x-dead-letter-exchange", lstr(exchange))
            .arg("x-dead-letter-routing-key", lstr(routing_key))
            .arg("x-dead-letter-strategy", lstr("at-least-once"))
            .arg("x-overflow", lstr("reject-publish"))
    }

    /// Binds the queue to `exchange` with `routing_key`.
    pub fn bind(mut self, exchange: String, routing_key: impl Into<String>) -> Self {
        self.bindings.push((exchange, routing_key.into()));
        self
    }

    /// The declared arguments, `x-queue-type: quorum` included.
    pub fn arguments(&self) -> FieldTable {
        let kind = if self.classic { "classic" } else { "quorum" };
        let mut t = table(vec![("x-queue-type", lstr(kind))]);
        for (k, v) in &self.args {
            // Classic queues dead-letter at most once and refuse the strategy argument.
            if self.classic && *k == "x-dead-letter-strategy" {
                continue;
            }
            t.insert(ShortString::from(*k), v.clone());
        }
        t
    }

    /// Declares the queue and its bindings (idempotent).
    pub async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        ch.queue_declare(self.name.as_str().into(), durable(), self.arguments())
            .await?;
        for (exchange, key) in &self.bindings {
            ch.queue_bind(
                self.name.as_str().into(),
                exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The retry queue of `queue` for one rung: messages wait out `delay`, then return to
/// `queue`.
pub fn retry_queue(queue: &str, delay: Duration) -> QueueSpec {
    let ttl = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
    QueueSpec::new(retry_queue_for(queue, delay))
        .arg("x-message-ttl", AMQPValue::LongInt(ttl))
        .dead_letter("", queue)
}

/// Every rung of `queue`'s retry ladder ([`RetryPolicy::rungs`]).
pub fn retry_queues(queue: &str, policy: &RetryPolicy) -> Vec<QueueSpec> {
    policy
        .rungs()
        .into_iter()
        .map(|delay| retry_queue(queue, delay))
        .collect()
}

/// A work queue whose broker-side rejections go to `svc`'s parking queue.
pub fn work_queue(names: &Names, svc: Service, queue: &str) -> QueueSpec {
    QueueSpec::new(queue).dead_letter(&names.dead_letter_exchange(), svc.as_str())
}

/// The bounded queue that keeps events no service is bound for (declared by everyone).
fn unrouted_queue(names: &Names) -> QueueSpec {
    QueueSpec::new(names.unrouted_queue())
        .arg("x-max-length", AMQPValue::LongInt(100_000))
        .bind(names.unrouted_exchange(), "")
}

/// Something to declare on every (re)connection; declarations are idempotent.
#[async_trait]
pub trait Declare: Send + Sync + 'static {
    /// Declares exchanges, queues and bindings on `ch`; by default, [`Declare::queues`].
    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        for q in self.queues() {
            q.declare(ch).await?;
        }
        Ok(())
    }

    /// The durable queues `declare` creates, so that a classic queue of the same name
    /// (left by a version before quorum queues) can be moved over before declaring again.
    fn queues(&self) -> Vec<QueueSpec>;
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
    unrouted_queue(names).declare(ch).await?;
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

impl ServiceTopology {
    /// The parking queue, the events queue with its bindings, its retry ladder and the
    /// RPC queue, as declared.
    fn own_queues(&self) -> Vec<QueueSpec> {
        let n = &self.names;
        let mut queues = vec![
            // Parking queue for messages that failed for good.
            QueueSpec::new(n.dead_letter_queue(self.service))
                .bind(n.dead_letter_exchange(), self.service.as_str()),
        ];
        // The events queue: broker-side rejections also end in the parking queue.
        let events_q = n.events_queue(self.service);
        let mut events = work_queue(n, self.service, &events_q);
        for key in &self.bindings {
            events = events.bind(n.events_exchange(), key.as_str());
        }
        queues.push(events);
        // Delayed retry: messages wait out a rung's TTL, then go back to the events queue.
        queues.extend(retry_queues(&events_q, &self.retry));
        if self.rpc {
            queues.push(QueueSpec::new(n.rpc_queue(self.service)));
        }
        queues
    }
}

#[async_trait]
impl Declare for ServiceTopology {
    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        declare_exchanges(ch, &self.names).await?;
        for q in self.own_queues() {
            q.declare(ch).await?;
        }
        Ok(())
    }

    fn queues(&self) -> Vec<QueueSpec> {
        let mut queues = vec![unrouted_queue(&self.names)];
        queues.extend(self.own_queues());
        queues
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
