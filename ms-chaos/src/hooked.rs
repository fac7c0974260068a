//! Stores that let a test step in around chosen writes, so a fault lands at an exact
//! point: fail a write before it happens, or act (cut the broker, release a competing
//! write) right after it committed. Every other call goes straight to the real store.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::events::{EventEnvelope, OrderRecord, OrderStatus, VersionCheck};
use ms_common::storage::OutboxStore;
use ms_order::store::{CreateError, OrderStore, StuffReplica};
use ms_payment::store::{
    CouponRow, FailureRow, LedgerStore, OrderReplica, PaymentRow, PaymentStore, PendingCharge,
    Redemption, StoreError,
};
use std::sync::Arc;

/// A write a hook can see, with what the tests key their faults on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// ms-payment applies an order event to its replica.
    PaymentOrderReplica {
        /// The order's stuff.
        stuff_id: &'a str,
    },
    /// ms-payment stores a new coupon.
    Coupon,
    /// ms-order applies a stuff event to its replica.
    OrderStuffReplica {
        /// The stuff.
        stuff_id: &'a str,
    },
    /// ms-order inserts a new order.
    OrderCreate,
    /// ms-order moves an order from one status to another.
    OrderTransition {
        /// The order.
        id: &'a str,
        /// Expected status.
        from: OrderStatus,
        /// New status.
        to: OrderStatus,
    },
}

/// What a test does around the writes.
#[async_trait]
pub trait WriteHook: Send + Sync + 'static {
    /// Before a write: an error fails the write with it and nothing is written.
    async fn before(&self, _write: Write<'_>) -> anyhow::Result<()> {
        Ok(())
    }
    /// After a write that changed something (a transition that moved the order).
    async fn after(&self, _write: Write<'_>) {}
}

/// ms-payment's store with a hook around its writes.
pub struct HookedPayments<H> {
    /// The real store.
    pub inner: Arc<dyn PaymentStore>,
    /// The test's hook.
    pub hook: Arc<H>,
}

#[async_trait]
impl<H: WriteHook> PaymentStore for HookedPayments<H> {
    async fn apply_order(&self, order: &OrderReplica) -> Result<VersionCheck, StoreError> {
        let w = Write::PaymentOrderReplica {
            stuff_id: &order.stuff_id,
        };
        self.hook.before(w).await.map_err(StoreError::Other)?;
        let r = self.inner.apply_order(order).await?;
        self.hook.after(w).await;
        Ok(r)
    }
    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError> {
        self.inner.order(id).await
    }
    async fn payment_for_order(&self, order_id: &str) -> Result<Option<PaymentRow>, StoreError> {
        self.inner.payment_for_order(order_id).await
    }
    async fn record_payment(&self, p: &PaymentRow, e: &EventEnvelope) -> Result<(), StoreError> {
        self.inner.record_payment(p, e).await
    }
    async fn record_refund(
        &self,
        order_id: &str,
        refunded_at: chrono::DateTime<chrono::Utc>,
        e: &EventEnvelope,
    ) -> Result<Option<PaymentRow>, StoreError> {
        self.inner.record_refund(order_id, refunded_at, e).await
    }
    async fn record_failure(
        &self,
        f: &FailureRow,
        coupon: Option<&str>,
        e: &EventEnvelope,
    ) -> Result<(), StoreError> {
        self.inner.record_failure(f, coupon, e).await
    }
    async fn failure_for_order(&self, order_id: &str) -> Result<Option<FailureRow>, StoreError> {
        self.inner.failure_for_order(order_id).await
    }
    async fn create_coupon(&self, coupon: &CouponRow) -> Result<(), StoreError> {
        self.hook
            .before(Write::Coupon)
            .await
            .map_err(StoreError::Other)?;
        self.inner.create_coupon(coupon).await?;
        self.hook.after(Write::Coupon).await;
        Ok(())
    }
    async fn coupon(&self, code: &str) -> Result<Option<CouponRow>, StoreError> {
        self.inner.coupon(code).await
    }
    async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError> {
        self.inner.coupons().await
    }
    async fn redeem_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        self.inner.redeem_coupon(code, now).await
    }
    async fn payment_by_provider(&self, id: &str) -> Result<Option<PaymentRow>, StoreError> {
        self.inner.payment_by_provider(id).await
    }
    async fn webhook_handled(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.webhook_handled(id).await
    }
    async fn record_webhook(
        &self,
        id: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner.record_webhook(id, kind, at).await
    }
    async fn begin_charge(&self, c: &PendingCharge) -> Result<(), StoreError> {
        self.inner.begin_charge(c).await
    }
    async fn pending_charge(&self, id: &str) -> Result<Option<PendingCharge>, StoreError> {
        self.inner.pending_charge(id).await
    }
    async fn pending_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCharge>, StoreError> {
        self.inner.pending_charges(before, limit).await
    }
    async fn end_charge(&self, id: &str) -> Result<(), StoreError> {
        self.inner.end_charge(id).await
    }
    async fn set_charge_intent(&self, id: &str, key: &str, intent: &str) -> Result<(), StoreError> {
        self.inner.set_charge_intent(id, key, intent).await
    }
    async fn abandon_charge(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.abandon_charge(id).await
    }
    async fn release_coupon(&self, code: &str) -> Result<(), StoreError> {
        self.inner.release_coupon(code).await
    }
    fn ledger(&self) -> Arc<dyn LedgerStore> {
        self.inner.ledger()
    }
    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.inner.outbox()
    }
}

/// ms-order's store with a hook around its writes.
pub struct HookedOrders<H> {
    /// The real store.
    pub inner: Arc<dyn OrderStore>,
    /// The test's hook.
    pub hook: Arc<H>,
}

#[async_trait]
impl<H: WriteHook> OrderStore for HookedOrders<H> {
    async fn apply_stuff(&self, s: &StuffReplica) -> anyhow::Result<VersionCheck> {
        let w = Write::OrderStuffReplica { stuff_id: &s.id };
        self.hook.before(w).await?;
        let r = self.inner.apply_stuff(s).await?;
        self.hook.after(w).await;
        Ok(r)
    }
    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>> {
        self.inner.stuff(id).await
    }
    async fn create_order(&self, o: &OrderRecord, cid: Option<String>) -> Result<(), CreateError> {
        self.hook
            .before(Write::OrderCreate)
            .await
            .map_err(CreateError::Other)?;
        self.inner.create_order(o, cid).await?;
        self.hook.after(Write::OrderCreate).await;
        Ok(())
    }
    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>> {
        self.inner.order(id).await
    }
    async fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<OrderRecord>> {
        self.inner.orders_of(user_id).await
    }
    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<ms_order::store::Paid>,
        cid: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>> {
        let w = Write::OrderTransition { id, from, to };
        self.hook.before(w).await?;
        let moved = self.inner.transition(id, from, to, paid, cid).await?;
        if moved.is_some() {
            self.hook.after(w).await;
        }
        Ok(moved)
    }
    async fn overdue_holds(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<String>> {
        self.inner.overdue_holds(before, limit).await
    }
    async fn stuff_taken(&self, stuff_id: &str, except: &str) -> anyhow::Result<bool> {
        self.inner.stuff_taken(stuff_id, except).await
    }
    async fn apply_user(&self, user: &ms_common::events::UserRecord) -> anyhow::Result<bool> {
        self.inner.apply_user(user).await
    }
    async fn sales_of(
        &self,
        seller_id: &str,
        limit: u32,
    ) -> anyhow::Result<ms_order::store::SalesPage> {
        self.inner.sales_of(seller_id, limit).await
    }
    async fn create_review(
        &self,
        review: &ms_common::events::ReviewRecord,
        fallback_name: &str,
        cid: Option<String>,
    ) -> Result<ms_order::store::NamedReview, ms_order::store::ReviewError> {
        self.inner.create_review(review, fallback_name, cid).await
    }
    async fn reviews_of(
        &self,
        stuff_id: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<ms_order::store::NamedReview>> {
        self.inner.reviews_of(stuff_id, limit).await
    }
    async fn active_count(&self, stuff_id: &str) -> anyhow::Result<u64> {
        self.inner.active_count(stuff_id).await
    }
    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.inner.outbox()
    }
}
