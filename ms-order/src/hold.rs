//! The checkout hold, built from broker features alone.
//!
//! ```text
//! order.created ──(events exchange)──▶ {p}order.hold.<ms>ms   x-message-ttl = hold
//!                                          │ dead-letter when the TTL runs out
//!                                          ▼
//!                                      {p}order.expired ──▶ ms-order cancels unless paid
//! ```
//! The hold message *is* the `order.created` event, so it leaves through the outbox in
//! the same transaction as the order: no order without its hold, no hold without its order.
//! One TTL per queue keeps expiry in FIFO order; a new hold time means a new queue name.
//! An expiry that arrives before the order's `expiresAt` (clock skew, or a leftover queue
//! from an older, shorter setting) is deferred until then; a late or duplicate one finds
//! nothing to cancel. The [`crate::sweeper`] catches holds whose message was lost.

use async_trait::async_trait;
use lapin::Channel;
use lapin::options::QueueBindOptions;
use lapin::types::{AMQPValue, FieldTable};
use ms_common::events::EventKind;
use ms_common::messaging::topology::{declare_retry_queues, declare_work_queue, lstr, table};
use ms_common::messaging::{Declare, Names, RetryPolicy, Service};
use std::time::Duration;

/// Queue names of the hold mechanism.
#[derive(Debug, Clone)]
pub struct HoldTopology {
    /// Name scheme.
    pub names: Names,
    /// How long an order holds its stuff.
    pub hold: Duration,
    /// Backoff of the expired queue's consumer (its retry ladder).
    pub retry: RetryPolicy,
}

impl HoldTopology {
    /// The TTL queue; its name carries the hold time.
    pub fn hold_queue(&self) -> String {
        format!(
            "{}order.hold.{}ms",
            self.names.prefix(),
            self.hold.as_millis()
        )
    }
    /// Where expired holds arrive.
    pub fn expired_queue(&self) -> String {
        format!("{}order.expired", self.names.prefix())
    }
}

#[async_trait]
impl Declare for HoldTopology {
    async fn declare(&self, ch: &Channel) -> lapin::Result<()> {
        let expired = self.expired_queue();
        declare_work_queue(ch, &self.names, Service::Order, &expired).await?;
        declare_retry_queues(ch, &expired, &self.retry).await?;
        let ttl = i32::try_from(self.hold.as_millis()).unwrap_or(i32::MAX);
        ch.queue_declare(
            self.hold_queue().into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            table(vec![
                ("x-message-ttl", AMQPValue::LongInt(ttl)),
                ("x-dead-letter-exchange", lstr("")),
                ("x-dead-letter-routing-key", lstr(&expired)),
            ]),
        )
        .await?;
        ch.queue_bind(
            self.hold_queue().into(),
            self.names.events_exchange().into(),
            EventKind::OrderCreated.routing_key().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
    }
}
