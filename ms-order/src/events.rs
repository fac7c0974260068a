//! What ms-order does with the events it consumes: keeps its catalogue replica, completes
//! or cancels orders when payments succeed or fail, refunds orders whose payment was
//! refunded, and expires holds.
//!
//! A payment that lands after the hold expired completes the cancelled order if nobody
//! else took the stuff; otherwise the order moves `cancelled → refunded` and ms-payment,
//! on `order.refunded`, gives the money back.

use crate::service::OrderService;
use crate::store::{Paid, StuffReplica};
use async_trait::async_trait;
use chrono::Utc;
use ms_common::ApiError;
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, PaymentFailure, PaymentRecord,
    ReservationRefusal, StuffRecord, VersionCheck,
};
use ms_common::messaging::{HandleError, Handler};
use std::sync::Arc;

/// How often a payment re-reads an order that changed under it before the event is retried.
const PAYMENT_CAS_ATTEMPTS: usize = 3;

#[async_trait]
impl Handler<EventEnvelope> for OrderService {
    async fn handle(&self, env: EventEnvelope, cid: Option<String>) -> Result<(), HandleError> {
        match env.event {
            Event::StuffCreated(s) | Event::StuffUpdated(s) => self.on_stuff_changed(s).await,
            Event::PaymentCreated(p) => self.on_payment_created(p, cid).await,
            Event::PaymentFailed(f) => self.on_payment_failed(f, cid).await,
            Event::PaymentRefunded(p) => self.on_payment_refunded(p, cid).await,
            Event::ReservationRefused(r) => self.on_reservation_refused(r, cid).await,
            Event::UserCreated(u) | Event::UserUpdated(u) => {
                let renamed = self.store.apply_user(&u).await.map_err(transient)?;
                tracing::debug!(user_id = %u.id, version = u.version, renamed, "account replicated");
                Ok(())
            }
            other => {
                tracing::debug!(kind = other.routing_key(), "event not for ms-order");
                Ok(())
            }
        }
    }
}

/// A store failure while handling an event: the event is retried.
fn transient(e: anyhow::Error) -> HandleError {
    HandleError::Retry(e.to_string())
}

/// A failed order change while handling an event: the event is retried.
fn retry(e: ApiError) -> HandleError {
    HandleError::Retry(e.first_message().to_owned())
}

/// The event handlers, one per event ms-order follows.
impl OrderService {
    /// An expired hold: cancel unless paid or already cancelled. The TTL queue's expiry and
    /// the sweeper ([`OrderService::sweep_holds`]) both come here, and the cancel is a
    /// compare-and-set on `created`, so an order expired twice (by both, or by two
    /// replicas) is cancelled once and announced once. One that is not due yet (clock
    /// skew between replicas, or a leftover queue of a shorter hold) is deferred until its
    /// `expiresAt`, never dropped.
    pub async fn expire(&self, order_id: &str, cid: Option<String>) -> Result<(), HandleError> {
        self.expire_hold(order_id, cid).await.map(|_| ())
    }

    /// [`Self::expire`], saying whether this call was the one that cancelled the order.
    pub(crate) async fn expire_hold(
        &self,
        order_id: &str,
        cid: Option<String>,
    ) -> Result<bool, HandleError> {
        let Some(order) = self
            .store
            .order(order_id)
            .await
            .map_err(|e| HandleError::Retry(e.to_string()))?
        else {
            return Err(HandleError::Retry(format!(
                "order {order_id} not stored yet"
            )));
        };
        if order.status != OrderStatus::Created {
            return Ok(false);
        }
        let now = Utc::now();
        // Never before `expiresAt`: a buyer has the whole hold to pay. An expiry a few
        // milliseconds early (another clock) comes back after those milliseconds.
        if now < order.expires_at {
            let wait = (order.expires_at - now).to_std().unwrap_or_default();
            tracing::info!(
                order_id,
                ?wait,
                "expiry before expiresAt: deferred until then"
            );
            return Err(HandleError::Defer(wait));
        }
        let moved = self
            .move_order(
                order_id,
                OrderStatus::Created,
                OrderStatus::Cancelled,
                None,
                cid,
            )
            .await
            .map_err(retry)?;
        Ok(moved.is_some())
    }

    /// `stuff.created` / `stuff.updated`: keeps the stuff replica at ms-stuff's latest
    /// version (a newer one is applied even after a gap: the event is the full record).
    async fn on_stuff_changed(&self, s: StuffRecord) -> Result<(), HandleError> {
        let replica = StuffReplica {
            deliverable: s.deliverable(),
            id: s.id.clone(),
            seller_id: s.seller_id,
            title: s.title,
            price_cents: s.price_cents,
            status: s.status,
            version: s.version,
        };
        match self.store.apply_stuff(&replica).await.map_err(transient)? {
            VersionCheck::Apply => self.replica_changed.notify_waiters(),
            VersionCheck::Stale => {
                tracing::debug!(stuff_id = %s.id, version = s.version, "stale stuff event dropped")
            }
            VersionCheck::Raced => {
                return Err(HandleError::Retry(format!(
                    "stuff {} v{} raced another write",
                    s.id, s.version
                )));
            }
        }
        Ok(())
    }

    /// Moves the order of a payment event as `decide` says (`None`: nothing to do), as a
    /// compare-and-set on its status, recording `paid_cents` (the payment's amount) with it. `decide` also learns, for a cancelled order, whether
    /// another order has taken its stuff since. When the hold's expiry (or anything else) moves the
    /// order in between, it is read and decided again rather than acknowledging a payment
    /// event that changed nothing.
    async fn follow_payment(
        &self,
        order_id: &str,
        doing: &str,
        paid: Option<Paid>,
        cid: Option<String>,
        decide: impl Fn(&OrderRecord, bool) -> Result<Option<OrderStatus>, HandleError>,
    ) -> Result<(), HandleError> {
        for _ in 0..PAYMENT_CAS_ATTEMPTS {
            let Some(order) = self.store.order(order_id).await.map_err(transient)? else {
                return Err(HandleError::Retry(format!(
                    "order {order_id} not stored yet"
                )));
            };
            let taken = order.status == OrderStatus::Cancelled
                && self
                    .store
                    .stuff_taken(&order.stuff_id, &order.id)
                    .await
                    .map_err(transient)?;
            let Some(to) = decide(&order, taken)? else {
                return Ok(());
            };
            let moved = self
                .move_order(&order.id, order.status, to, paid, cid.clone())
                .await
                .map_err(retry)?;
            if moved.is_some() {
                return Ok(());
            }
            tracing::info!(order_id, doing, "order changed meanwhile; reading it again");
        }
        Err(HandleError::Retry(format!(
            "order {order_id} kept changing while {doing} it"
        )))
    }

    /// `payment.created`: completes the paid order.
    async fn on_payment_created(
        &self,
        p: PaymentRecord,
        cid: Option<String>,
    ) -> Result<(), HandleError> {
        self.follow_payment(
            &p.order_id,
            "completing",
            Some(self.paid_by(&p)),
            cid,
            |order, taken| {
            match order.status {
                OrderStatus::Complete | OrderStatus::Refunded => Ok(None),
                OrderStatus::Created => Ok(Some(OrderStatus::Complete)),
                // Paid just as the hold ran out: honour the payment if nobody else took
                // the stuff, else the money goes back (ms-payment refunds on
                // `order.refunded`).
                OrderStatus::Cancelled if taken => {
                    tracing::warn!(order_id = %order.id, payment_id = %p.id, "paid after the stuff went to someone else: refunding");
                    Ok(Some(OrderStatus::Refunded))
                }
                OrderStatus::Cancelled => Ok(Some(OrderStatus::Complete)),
            }
            },
        )
        .await
    }

    /// `payment.refunded`: a complete (or cancelled, paid late) order becomes refunded.
    async fn on_payment_refunded(
        &self,
        p: PaymentRecord,
        cid: Option<String>,
    ) -> Result<(), HandleError> {
        self.follow_payment(&p.order_id, "refunding", None, cid, |order, _| {
            match order.status {
                OrderStatus::Refunded => Ok(None),
                // `payment.created` has not been applied yet: wait for it.
                OrderStatus::Created => Err(HandleError::Retry(format!(
                    "order {} refunded before it was seen paid",
                    order.id
                ))),
                OrderStatus::Complete | OrderStatus::Cancelled => Ok(Some(OrderStatus::Refunded)),
            }
        })
        .await
    }

    /// `reservation.refused`: ms-stuff would not let the order take its stuff, which changed
    /// after the order was priced. The order is cancelled; one paid meanwhile is refunded
    /// (the buyer paid for a version no longer offered; ms-payment gives the money back).
    async fn on_reservation_refused(
        &self,
        r: ReservationRefusal,
        cid: Option<String>,
    ) -> Result<(), HandleError> {
        tracing::warn!(
            order_id = %r.order_id,
            stuff_id = %r.stuff_id,
            priced_version = r.priced_version,
            stuff_version = r.stuff_version,
            reason = %r.reason,
            "ms-stuff refused the order its stuff: cancelling it"
        );
        self.follow_payment(
            &r.order_id,
            "cancelling a refused",
            None,
            cid,
            |order, _| {
                Ok(match order.status {
                    OrderStatus::Created => Some(OrderStatus::Cancelled),
                    OrderStatus::Complete => Some(OrderStatus::Refunded),
                    OrderStatus::Cancelled | OrderStatus::Refunded => None,
                })
            },
        )
        .await
    }

    /// `payment.failed`: cancels the declined order unless it already moved on.
    async fn on_payment_failed(
        &self,
        f: PaymentFailure,
        cid: Option<String>,
    ) -> Result<(), HandleError> {
        if self
            .store
            .order(&f.order_id)
            .await
            .map_err(transient)?
            .is_none()
        {
            return Err(HandleError::Retry(format!(
                "order {} not stored yet",
                f.order_id
            )));
        }
        self.move_order(
            &f.order_id,
            OrderStatus::Created,
            OrderStatus::Cancelled,
            None,
            cid,
        )
        .await
        .map_err(retry)?;
        Ok(())
    }
}

/// Consumes the expired-hold queue: each message is the order's `order.created` event.
pub struct ExpiryHandler(pub Arc<OrderService>);

#[async_trait]
impl Handler<EventEnvelope> for ExpiryHandler {
    async fn handle(&self, env: EventEnvelope, cid: Option<String>) -> Result<(), HandleError> {
        match env.event {
            Event::OrderCreated(o) => self.0.expire(&o.id, cid).await,
            other => Err(HandleError::Reject(format!(
                "unexpected {} in the expired queue",
                other.routing_key()
            ))),
        }
    }
}
