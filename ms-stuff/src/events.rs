//! What ms-stuff does with the events it consumes: order events reserve, release, sell
//! and (on a refund) release again a stuff (the rules are `store::order_effect`, shared by
//! both backends); account events keep the sellers' names on their stuff; reviews add to
//! a stuff's rating (`store::rated`), once per review.

use crate::service::now;
use crate::store::{OrderChange, OrderOutcome, ReviewOutcome, StuffStore};
use async_trait::async_trait;
use ms_common::events::{Event, EventEnvelope};
use ms_common::messaging::{HandleError, Handler};
use std::sync::Arc;

/// Applies `order.created` / `order.cancelled` / `order.completed` / `order.refunded` to
/// the catalogue, `user.created` / `user.updated` to the sellers' names and
/// `review.created` to the ratings.
///
/// Versions are per order: any version newer than the one recorded applies (the event is
/// the whole order, so one lost event never holds later ones back); duplicates and older
/// ones are acked and dropped.
pub struct OrderEvents {
    store: Arc<dyn StuffStore>,
}

impl OrderEvents {
    /// The consumer over a store (whose commits wake the outbox relay).
    pub fn new(store: Arc<dyn StuffStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl Handler<EventEnvelope> for OrderEvents {
    async fn handle(
        &self,
        env: EventEnvelope,
        correlation_id: Option<String>,
    ) -> Result<(), HandleError> {
        let (change, order) = match env.event {
            Event::UserCreated(user) | Event::UserUpdated(user) => {
                let renamed = self
                    .store
                    .apply_user(&user)
                    .await
                    .map_err(|e| HandleError::Retry(format!("store: {e:#}")))?;
                tracing::info!(user_id = %user.id, version = user.version, renamed, "account replicated");
                return Ok(());
            }
            Event::ReviewCreated(review) => {
                let outcome = self
                    .store
                    .apply_review(&review)
                    .await
                    .map_err(|e| HandleError::Retry(format!("store: {e:#}")))?;
                return match outcome {
                    ReviewOutcome::Applied(s) => {
                        tracing::info!(review_id = %review.id, stuff_id = %s.id, rating_count = s.rating_count, rating_rank = s.rating_rank, "rating added");
                        Ok(())
                    }
                    ReviewOutcome::Duplicate => {
                        tracing::debug!(review_id = %review.id, "review already counted");
                        Ok(())
                    }
                    ReviewOutcome::UnknownStuff => Err(HandleError::Reject(format!(
                        "review {} names unknown stuff {}",
                        review.id, review.stuff_id
                    ))),
                };
            }
            Event::OrderCreated(o) => (OrderChange::Created, o),
            Event::OrderCancelled(o) => (OrderChange::Cancelled, o),
            Event::OrderCompleted(o) => (OrderChange::Completed, o),
            Event::OrderRefunded(o) => (OrderChange::Refunded, o),
            other => {
                // Not bound to it; another service's business. Nothing to do, nothing lost.
                tracing::warn!(event = other.routing_key(), id = %env.id, "ignoring an event ms-stuff does not use");
                return Ok(());
            }
        };
        let cid = correlation_id.or(env.correlation_id);
        let outcome = self
            .store
            .apply_order(change, &order, now(), cid.as_deref())
            .await
            .map_err(|e| HandleError::Retry(format!("store: {e:#}")))?;
        match outcome {
            OrderOutcome::Applied(Some(rec)) => {
                tracing::info!(
                    order_id = %order.id,
                    order_version = order.version,
                    stuff_id = %rec.id,
                    status = rec.status.as_str(),
                    version = rec.version,
                    "stuff status changed by an order"
                );
                Ok(())
            }
            OrderOutcome::Applied(None) => {
                tracing::info!(order_id = %order.id, order_version = order.version, stuff_id = %order.stuff_id, ?change, "order recorded; stuff unchanged");
                Ok(())
            }
            OrderOutcome::Refused(refusal) => {
                tracing::warn!(order_id = %order.id, stuff_id = %refusal.stuff_id, priced_version = refusal.priced_version, stuff_version = refusal.stuff_version, "reservation refused: the stuff changed after the order was priced");
                Ok(())
            }
            OrderOutcome::Stale => {
                tracing::debug!(order_id = %order.id, order_version = order.version, "stale order event dropped");
                Ok(())
            }
            OrderOutcome::UnknownStuff => Err(HandleError::Reject(format!(
                "order {} names unknown stuff {}",
                order.id, order.stuff_id
            ))),
        }
    }
}
