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
use lapin::types::AMQPValue;
use ms_common::events::EventKind;
use ms_common::messaging::topology::{QueueSpec, retry_queues, work_queue};
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
    /// The expired queue and its retry ladder, then the hold queue: its messages
    /// dead-letter into the expired queue at least once (a quorum queue keeps an expired
    /// hold until `order.expired` has it, through a leader change too).
    fn queues(&self) -> Vec<QueueSpec> {
        let expired = self.expired_queue();
        let mut queues = vec![work_queue(&self.names, Service::Order, &expired)];
        queues.extend(retry_queues(&expired, &self.retry));
        let ttl = i32::try_from(self.hold.as_millis()).unwrap_or(i32::MAX);
        queues.push(
            QueueSpec::new(self.hold_queue())
                .arg("x-message-ttl", AMQPValue::LongInt(ttl))
                .dead_letter("", &expired)
                .bind(
                    self.names.events_exchange(),
                    EventKind::OrderCreated.routing_key(),
                ),
        );
        queues
    }
}
