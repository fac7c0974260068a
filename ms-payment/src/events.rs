//! What ms-payment does with the events it consumes: keeps its replica of the orders at
//! ms-order's versions, so `payment:create` can check an order without asking ms-order.

use crate::service::PaymentService;
use crate::store::OrderReplica;
use async_trait::async_trait;
use ms_common::events::{Event, EventEnvelope, VersionCheck};
use ms_common::messaging::{HandleError, Handler};

#[async_trait]
impl Handler<EventEnvelope> for PaymentService {
    async fn handle(&self, env: EventEnvelope, _cid: Option<String>) -> Result<(), HandleError> {
        let order = match &env.event {
            Event::OrderCreated(o) | Event::OrderCancelled(o) | Event::OrderCompleted(o) => o,
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
                Ok(())
            }
            VersionCheck::Stale => {
                tracing::debug!(order_id = %order.id, version = order.version, "stale order event dropped");
                Ok(())
            }
            VersionCheck::Early => Err(HandleError::Retry(format!(
                "order {} v{} arrived early",
                order.id, order.version
            ))),
        }
    }
}
