//! ms-order's RPC actions (`order:create`, `order:cancel`, `order:list`, `order:get`,
//! `order:sales`, `review:create`, `review:list`); its inputs are parsed in
//! [`crate::domain`], its event handlers live in [`crate::events`].
//!
//! Reviews: `review:create` reads the caller's order (404 if it is not theirs, 409 unless
//! complete), then the store inserts the review, marks the order `reviewed` and writes
//! `review.created` in one transaction; the unique index on the order id turns a second
//! review (even a simultaneous one) into the 409. ms-stuff keeps the stuff's rating from
//! the event.

use crate::domain::{
    ALREADY_REVIEWED, HELD, NOT_PAID, NOTHING_TO_DELIVER, NewOrder, NewReview, OrderRef, ReviewsOf,
    SOLD,
};
use crate::store::{CreateError, NamedReview, OrderStore, Paid, ReviewError, StuffReplica};
use async_trait::async_trait;
use ms_common::ApiError;
use ms_common::contract::{self, OrderAction, Review, limits};
use ms_common::events::{OrderRecord, OrderStatus, ReviewRecord, StuffStatus};
use ms_common::messaging::{RpcContext, RpcHandler};
use ms_common::money::FeePercent;
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
    /// The marketplace's share of a sale paid before payments carried their fee.
    fee: FeePercent,
    /// Woken when the catalogue replica changes (`order:create` may wait for a stuff).
    pub(crate) replica_changed: Notify,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal_from(e)
}

fn to_value(o: &OrderRecord) -> Result<Value, ApiError> {
    serde_json::to_value(o).map_err(internal)
}

/// A stored review in the contract's `Review` shape.
fn review_of(r: NamedReview) -> Review {
    Review::new(r.review, r.buyer_name)
}

impl OrderService {
    /// The service over a store, with the configured hold time.
    pub fn new(store: Arc<dyn OrderStore>, hold: Duration) -> Self {
        Self {
            store,
            hold,
            fee: FeePercent::default(),
            replica_changed: Notify::new(),
        }
    }

    /// The same service taking `fee` of a sale whose payment does not say its fee (events
    /// written before ms-payment pinned it).
    pub fn with_fee(self, fee: FeePercent) -> Self {
        Self { fee, ..self }
    }

    /// What a payment brings to its order: the amount and the fee ms-payment pinned on it
    /// (or this service's share, for a payment from before fees were pinned).
    pub(crate) fn paid_by(&self, p: &ms_common::events::PaymentRecord) -> Paid {
        Paid {
            cents: p.amount_cents,
            fee_cents: p.fee_cents.unwrap_or_else(|| self.fee.of(p.amount_cents)),
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
            StuffStatus::Reserved => return self.held(&user.id, &stuff.id).await,
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
            reviewed: false,
            // The price is this version's: ms-stuff reserves only at it.
            stuff_version: Some(stuff.version),
            seller_id: Some(stuff.seller_id.clone()),
            version: 1,
            created_at: now,
        };
        match self
            .store
            .create_order(&order, ctx.correlation_id.clone())
            .await
        {
            Ok(()) => {}
            Err(CreateError::Held) => return self.held(&user.id, &stuff.id).await,
            Err(CreateError::Sold) => return Err(ApiError::conflict(SOLD)),
            Err(CreateError::Other(e)) => return Err(internal(e)),
        }
        tracing::info!(order_id = %order.id, stuff_id = %order.stuff_id, "order created");
        to_value(&order)
    }

    /// The answer to `order:create` on a held stuff: the buyer's own hold when it is theirs
    /// (a retry after a 503 whose request had in fact gone through is safe), else the 409.
    async fn held(&self, user_id: &str, stuff_id: &str) -> Result<Value, ApiError> {
        let mine = self.store.orders_of(user_id).await.map_err(internal)?;
        match mine
            .into_iter()
            .find(|o| o.stuff_id == stuff_id && o.status == OrderStatus::Created)
        {
            Some(own) => to_value(&own),
            None => Err(ApiError::conflict(HELD)),
        }
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

    async fn review(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let NewReview {
            order_id,
            rating,
            comment,
        } = NewReview::parse(payload)?;
        // Someone else's order is not found, as with `order:get`'s lookup.
        let order = self
            .store
            .order(&order_id)
            .await
            .map_err(internal)?
            .filter(|o| o.user_id == user.id)
            .ok_or_else(|| ApiError::not_found("Order not found"))?;
        if order.status != OrderStatus::Complete {
            return Err(ApiError::conflict(NOT_PAID));
        }
        let record = ReviewRecord {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order.id,
            stuff_id: order.stuff_id,
            user_id: user.id.clone(),
            rating: rating.get(),
            comment: comment.as_str().to_owned(),
            created_at: ms_common::time::now(),
        };
        // The name the buyer goes by until ms-user's account event says otherwise.
        let fallback = contract::default_display_name(&user.email);
        let named = match self
            .store
            .create_review(&record, &fallback, ctx.correlation_id.clone())
            .await
        {
            Ok(named) => named,
            Err(ReviewError::AlreadyReviewed) => return Err(ApiError::conflict(ALREADY_REVIEWED)),
            // Refunded between the read and the write.
            Err(ReviewError::NotComplete) => return Err(ApiError::conflict(NOT_PAID)),
            Err(ReviewError::Other(e)) => return Err(internal(e)),
        };
        tracing::info!(review_id = %record.id, order_id = %record.order_id, stuff_id = %record.stuff_id, rating = record.rating, "review created");
        serde_json::to_value(review_of(named)).map_err(internal)
    }

    async fn reviews(&self, payload: Value) -> Result<Value, ApiError> {
        let ReviewsOf { stuff_id } = ReviewsOf::parse(payload)?;
        let reviews: Vec<Review> = self
            .store
            .reviews_of(&stuff_id, limits::REVIEW_LIST_MAX)
            .await
            .map_err(internal)?
            .into_iter()
            .map(review_of)
            .collect();
        serde_json::to_value(reviews).map_err(internal)
    }

    /// Moves an order (compare-and-set on `from`), recording `paid` when a payment moves
    /// it.
    pub(crate) async fn move_order(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<Paid>,
        cid: Option<String>,
    ) -> Result<Option<OrderRecord>, ApiError> {
        let moved = self
            .store
            .transition(id, from, to, paid, cid)
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
            OrderAction::ReviewCreate => self.review(&ctx, payload).await,
            OrderAction::ReviewList => self.reviews(payload).await,
        }
        .map(|v| if v.is_null() { json!({}) } else { v })
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}
