//! ms-order's RPC actions (`order:create`, `order:cancel`, `order:list`, `order:get`) and
//! its event handlers (stuff replica, payments, expired holds).

use crate::store::{CreateError, OrderStore, StuffReplica};
use async_trait::async_trait;
use chrono::Utc;
use ms_common::ApiError;
use ms_common::contract::{OrderAction, limits};
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, PaymentFailure, PaymentRecord, StuffRecord,
    StuffStatus, VersionCheck,
};
use ms_common::messaging::{HandleError, Handler, RpcContext, RpcHandler, parse_payload};
use ms_common::storage::ReplyLog;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often a payment re-reads an order that changed under it before the event is retried.
const PAYMENT_CAS_ATTEMPTS: usize = 3;

/// 409 while another active order holds the stuff (exact contract text).
pub const HELD: &str = "The stuff is being checked out by someone else, please come back later";
/// 409 for sold stuff (exact contract text).
pub const SOLD: &str = "This stuff has already been sold";

/// How long `order:create` waits for a just-listed stuff to reach the replica.
const REPLICA_WAIT: Duration = Duration::from_secs(2);

/// The order service's state.
pub struct OrderService {
    store: Arc<dyn OrderStore>,
    hold: Duration,
    replica_changed: Notify,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    stuff_id: Option<Value>,
}

#[derive(Deserialize)]
struct IdInput {
    id: Option<Value>,
}

fn id_field(v: Option<Value>, field: &str) -> Result<String, ApiError> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= limits::ID_MAX => {
            Ok(s.trim().to_owned())
        }
        _ => Err(ApiError::field(
            field,
            format!("{field} must be a valid id"),
        )),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal_from(e)
}

fn to_value(o: &OrderRecord) -> Result<Value, ApiError> {
    serde_json::to_value(o).map_err(internal)
}

impl OrderService {
    /// The service over a store, with the configured hold time.
    pub fn new(store: Arc<dyn OrderStore>, hold: Duration) -> Self {
        Self {
            store,
            hold,
            replica_changed: Notify::new(),
        }
    }

    /// The replica of a stuff, waiting briefly for one that was just created.
    async fn replica(&self, id: &str) -> Result<Option<StuffReplica>, ApiError> {
        let deadline = tokio::time::Instant::now() + REPLICA_WAIT;
        loop {
            let changed = self.replica_changed.notified();
            if let Some(s) = self.store.stuff(id).await.map_err(internal)? {
                return Ok(Some(s));
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    async fn create(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let input: CreateInput = parse_payload(payload)?;
        let stuff_id = id_field(input.stuff_id, "stuffId")?;
        let stuff = self
            .replica(&stuff_id)
            .await?
            .ok_or_else(|| ApiError::not_found("Stuff not found"))?;
        if stuff.seller_id == user.id {
            return Err(ApiError::forbidden("You cannot buy your own stuff"));
        }
        match stuff.status {
            StuffStatus::Sold => return Err(ApiError::conflict(SOLD)),
            StuffStatus::Reserved => return Err(ApiError::conflict(HELD)),
            StuffStatus::Available => {}
        }
        let now = ms_common::time::now();
        let order = OrderRecord {
            id: uuid::Uuid::now_v7().to_string(),
            stuff_id: stuff.id.clone(),
            user_id: user.id.clone(),
            status: OrderStatus::Created,
            expires_at: now + chrono::Duration::from_std(self.hold).map_err(internal)?,
            price_cents: stuff.price_cents,
            version: 1,
            created_at: now,
        };
        match self
            .store
            .create_order(&order, ctx.correlation_id.clone())
            .await
        {
            Ok(()) => {}
            Err(CreateError::Held) => return Err(ApiError::conflict(HELD)),
            Err(CreateError::Sold) => return Err(ApiError::conflict(SOLD)),
            Err(CreateError::Other(e)) => return Err(internal(e)),
        }
        tracing::info!(order_id = %order.id, stuff_id = %order.stuff_id, "order created");
        to_value(&order)
    }

    async fn owned(&self, ctx: &RpcContext, payload: Value) -> Result<OrderRecord, ApiError> {
        let user = ctx.require_user()?;
        let input: IdInput = parse_payload(payload)?;
        let id = id_field(input.id, "id")?;
        let order = self
            .store
            .order(&id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::not_found("Order not found"))?;
        if order.user_id != user.id {
            return Err(ApiError::forbidden("You do not own this order"));
        }
        Ok(order)
    }

    async fn cancel(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let order = self.owned(ctx, payload).await?;
        match order.status {
            OrderStatus::Cancelled => to_value(&order),
            OrderStatus::Complete => {
                Err(ApiError::conflict("A complete order cannot be cancelled"))
            }
            OrderStatus::Created => {
                match self
                    .move_order(
                        &order.id,
                        OrderStatus::Created,
                        OrderStatus::Cancelled,
                        ctx.correlation_id.clone(),
                    )
                    .await?
                {
                    Some(o) => to_value(&o),
                    // It changed meanwhile (paid or expired): answer with what it is now.
                    None => {
                        let now = self
                            .store
                            .order(&order.id)
                            .await
                            .map_err(internal)?
                            .ok_or_else(ApiError::internal)?;
                        if now.status == OrderStatus::Complete {
                            return Err(ApiError::conflict("A complete order cannot be cancelled"));
                        }
                        to_value(&now)
                    }
                }
            }
        }
    }

    async fn list(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let orders = self.store.orders_of(&user.id).await.map_err(internal)?;
        serde_json::to_value(orders).map_err(internal)
    }

    async fn move_order(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        cid: Option<String>,
    ) -> Result<Option<OrderRecord>, ApiError> {
        let moved = self
            .store
            .transition(id, from, to, cid)
            .await
            .map_err(internal)?;
        if moved.is_some() {
            tracing::info!(order_id = %id, from = from.as_str(), to = to.as_str(), "order changed");
        }
        Ok(moved)
    }

    /// An expired hold: cancel unless paid, already cancelled, or not due yet.
    pub async fn expire(&self, order_id: &str, cid: Option<String>) -> Result<(), HandleError> {
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
            return Ok(());
        }
        if Utc::now() + chrono::Duration::milliseconds(500) < order.expires_at {
            tracing::info!(
                order_id,
                "expiry before expiresAt ignored (older hold queue?)"
            );
            return Ok(());
        }
        self.move_order(order_id, OrderStatus::Created, OrderStatus::Cancelled, cid)
            .await
            .map_err(retry)?;
        Ok(())
    }
}

#[async_trait]
impl RpcHandler for OrderService {
    type Action = OrderAction;

    async fn handle(
        &self,
        ctx: RpcContext,
        action: OrderAction,
        payload: Value,
    ) -> Result<Value, ApiError> {
        match action {
            OrderAction::Create => self.create(&ctx, payload).await,
            OrderAction::Cancel => self.cancel(&ctx, payload).await,
            OrderAction::List => self.list(&ctx).await,
            OrderAction::Get => to_value(&self.owned(&ctx, payload).await?),
        }
        .map(|v| if v.is_null() { json!({}) } else { v })
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}

#[async_trait]
impl Handler<EventEnvelope> for OrderService {
    async fn handle(&self, env: EventEnvelope, cid: Option<String>) -> Result<(), HandleError> {
        match env.event {
            Event::StuffCreated(s) | Event::StuffUpdated(s) => self.on_stuff_changed(s).await,
            Event::PaymentCreated(p) => self.on_payment_created(p, cid).await,
            Event::PaymentFailed(f) => self.on_payment_failed(f, cid).await,
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
    /// `stuff.created` / `stuff.updated`: keeps the stuff replica at ms-stuff's version.
    async fn on_stuff_changed(&self, s: StuffRecord) -> Result<(), HandleError> {
        let replica = StuffReplica {
            id: s.id.clone(),
            seller_id: s.seller_id,
            price_cents: s.price_cents,
            status: s.status,
            version: s.version,
        };
        match self.store.apply_stuff(&replica).await.map_err(transient)? {
            VersionCheck::Apply => self.replica_changed.notify_waiters(),
            VersionCheck::Stale => {
                tracing::debug!(stuff_id = %s.id, version = s.version, "stale stuff event dropped")
            }
            VersionCheck::Early => {
                return Err(HandleError::Retry(format!(
                    "stuff {} v{} arrived early",
                    s.id, s.version
                )));
            }
        }
        Ok(())
    }

    /// `payment.created`: completes the paid order.
    async fn on_payment_created(
        &self,
        p: PaymentRecord,
        cid: Option<String>,
    ) -> Result<(), HandleError> {
        // Each step is a compare-and-set on the order's status; when the hold's
        // expiry (or anything else) moves the order in between, read it again and
        // decide again rather than acknowledge a payment that changed nothing.
        for _ in 0..PAYMENT_CAS_ATTEMPTS {
            let Some(order) = self.store.order(&p.order_id).await.map_err(transient)? else {
                return Err(HandleError::Retry(format!(
                    "order {} not stored yet",
                    p.order_id
                )));
            };
            let from = match order.status {
                OrderStatus::Complete => return Ok(()),
                OrderStatus::Created => OrderStatus::Created,
                OrderStatus::Cancelled => {
                    // Paid just as the hold ran out: honour the payment if nobody
                    // else took the stuff.
                    if self
                        .store
                        .stuff_taken(&order.stuff_id, &order.id)
                        .await
                        .map_err(transient)?
                    {
                        tracing::error!(order_id = %order.id, payment_id = %p.id, "paid after the stuff went to someone else: refund needed");
                        return Ok(());
                    }
                    OrderStatus::Cancelled
                }
            };
            let moved = self
                .move_order(&order.id, from, OrderStatus::Complete, cid.clone())
                .await
                .map_err(retry)?;
            if moved.is_some() {
                return Ok(());
            }
            tracing::info!(order_id = %order.id, "order changed while completing it; reading it again");
        }
        Err(HandleError::Retry(format!(
            "order {} kept changing while completing it",
            p.order_id
        )))
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
