//! What ms-payment does with the events it consumes: keeps its replica of the orders at
//! ms-order's versions, so `payment:create` can check an order without asking ms-order,
//! cancels the open PaymentIntent of an order whose hold ended, and refunds the payment
//! of an order ms-order announced `refunded` (a payment that
//! landed after the stuff went to someone else) unless it is refunded already.

use crate::service::{PaymentService, RefundBy};
use crate::store::OrderReplica;
use async_trait::async_trait;
use ms_common::events::{Event, EventEnvelope, VersionCheck};
use ms_common::messaging::{HandleError, Handler};

#[async_trait]
impl Handler<EventEnvelope> for PaymentService {
    async fn handle(&self, env: EventEnvelope, cid: Option<String>) -> Result<(), HandleError> {
        let order = match &env.event {
            Event::OrderCreated(o)
            | Event::OrderCancelled(o)
            | Event::OrderCompleted(o)
            | Event::OrderRefunded(o) => o,
            other => {
                tracing::debug!(kind = other.routing_key(), "event not for ms-payment");
                return Ok(());
            }
        };
        if order.version == 0 {
            return Err(HandleError::Reject(format!(
                "order {} with version 0",
                order.id
            )));
        }
        let check = self
            .store
            .apply_order(&OrderReplica::from(order))
            .await
            .map_err(|e| HandleError::Retry(e.to_string()))?;
        match check {
            VersionCheck::Apply => {
                tracing::debug!(order_id = %order.id, version = order.version, status = order.status.as_str(), "order replica updated");
                self.replica_changed.notify_waiters();
            }
            VersionCheck::Stale => {
                tracing::debug!(order_id = %order.id, version = order.version, "stale order event dropped");
            }
            VersionCheck::Raced => {
                return Err(HandleError::Retry(format!(
                    "order {} v{} raced another write",
                    order.id, order.version
                )));
            }
        }
        // The hold ended: an intent a browser holds is cancelled, so it is never paid
        // (also on a redelivery; a cancelled intent makes this a no-op).
        if matches!(env.event, Event::OrderCancelled(_)) {
            self.hold_ended(&order.id).await;
        }
        // Also on a redelivery (`Stale`): the refund may have failed after the replica
        // was written. A refunded payment makes this a no-op.
        if matches!(env.event, Event::OrderRefunded(_)) {
            let cid = cid.or_else(|| env.correlation_id.clone());
            match self.refund(&order.id, cid, RefundBy::Gateway).await {
                Ok(p) => {
                    tracing::info!(order_id = %order.id, payment_id = %p.id, "refunded order's payment is refunded")
                }
                Err(e) if e.status == 404 => {
                    tracing::warn!(order_id = %order.id, "order refunded but no payment stored for it")
                }
                Err(e) => return Err(HandleError::Retry(e.first_message().to_owned())),
            }
        }
        Ok(())
    }
}
