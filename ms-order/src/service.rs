//! ms-order's RPC actions (`order:create`, `order:cancel`, `order:list`, `order:get`,
//! `order:sales`);
//! its inputs are parsed in [`crate::domain`], its event handlers live in
//! [`crate::events`].

use crate::domain::{HELD, NOTHING_TO_DELIVER, NewOrder, OrderRef, SOLD};
use crate::store::{CreateError, OrderStore, Paid, StuffReplica};
use async_trait::async_trait;
use ms_common::ApiError;
use ms_common::contract::{self, OrderAction};
use ms_common::events::{OrderRecord, OrderStatus, StuffStatus};
use ms_common::messaging::{RpcContext, RpcHandler};
use ms_common::storage::ReplyLog;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long `order:create` waits for a just-listed stuff to reach the replica.
const REPLICA_WAIT: Duration = Duration::from_secs(2);

/// The order service's state.
pub struct OrderService {
    pub(crate) store: Arc<dyn OrderStore>,
    hold: Duration,
    /// The marketplace's share of a sale, in percent.
    fee_percent: u8,
    /// Woken when the catalogue replica changes (`order:create` may wait for a stuff).
    pub(crate) replica_changed: Notify,
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
            fee_percent: crate::DEFAULT_FEE_PERCENT,
            replica_changed: Notify::new(),
        }
    }

    /// The same service taking `percent` of every sale it completes.
    pub fn with_fee(self, percent: u8) -> Self {
        Self {
            fee_percent: percent.min(100),
            ..self
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
        let NewOrder { stuff_id } = NewOrder::parse(payload)?;
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
            StuffStatus::Withdrawn => return Err(ApiError::conflict(contract::NOT_FOR_SALE)),
            StuffStatus::Available => {}
        }
        if !stuff.deliverable {
            return Err(ApiError::conflict(NOTHING_TO_DELIVER));
        }
        let now = ms_common::time::now();
        let order = OrderRecord {
            id: uuid::Uuid::now_v7().to_string(),
            stuff_id: stuff.id.clone(),
            user_id: user.id.clone(),
            status: OrderStatus::Created,
            expires_at: now + chrono::Duration::from_std(self.hold).map_err(internal)?,
            price_cents: stuff.price_cents,
            stuff_title: stuff.title.clone(),
            paid_cents: None,
            // The price is this version's: ms-stuff reserves only at it.
            stuff_version: Some(stuff.version),
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
        let OrderRef { id } = OrderRef::parse(payload)?;
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
            // Nothing holds the stuff any more: answer it unchanged.
            OrderStatus::Cancelled | OrderStatus::Refunded => to_value(&order),
            OrderStatus::Complete => {
                Err(ApiError::conflict("A complete order cannot be cancelled"))
            }
            OrderStatus::Created => {
                match self
                    .move_order(
                        &order.id,
                        OrderStatus::Created,
                        OrderStatus::Cancelled,
                        None,
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

    /// `order:sales`: the caller's sales, newest first, with the fee and earnings of each
    /// and in total (refunded orders are no sales).
    async fn sales(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let page = self
            .store
            .sales_of(&user.id, contract::limits::SALES_MAX)
            .await
            .map_err(internal)?;
        serde_json::to_value(contract::Sales {
            sales: page.sales.into_iter().map(contract::Sale::from).collect(),
            total_earned_cents: page.total_earned_cents,
        })
        .map_err(internal)
    }

    async fn list(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let orders = self.store.orders_of(&user.id).await.map_err(internal)?;
        serde_json::to_value(orders).map_err(internal)
    }

    /// Moves an order (compare-and-set on `from`), recording `paid_cents` (and the fee on
    /// it, at today's `PLATFORM_FEE_PERCENT`) when a payment moves it.
    pub(crate) async fn move_order(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid_cents: Option<i64>,
        cid: Option<String>,
    ) -> Result<Option<OrderRecord>, ApiError> {
        let moved = self
            .store
            .transition(
                id,
                from,
                to,
                paid_cents.map(|cents| Paid {
                    cents,
                    fee_cents: contract::platform_fee(cents, self.fee_percent),
                }),
                cid,
            )
            .await
            .map_err(internal)?;
        if moved.is_some() {
            tracing::info!(order_id = %id, from = from.as_str(), to = to.as_str(), "order changed");
        }
        Ok(moved)
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
            OrderAction::Sales => self.sales(&ctx).await,
        }
        .map(|v| if v.is_null() { json!({}) } else { v })
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}
