//! `spawn_app` for ms-payment: a fresh broker prefix, a real ms-user for tokens, ms-payment
//! with an in-memory store and a recording gateway, a publisher for order events and an
//! observer queue for the payment events ms-payment publishes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::ApiError;
use ms_common::events::{Event, EventEnvelope, OrderRecord, OrderStatus, VersionCheck};
use ms_common::messaging::{Broker, Outgoing, Publisher, RpcClient, RpcRequest, Service};
use ms_common::storage::OutboxStore;
use ms_payment::gateway::builtin::TestGateway;
use ms_payment::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, IntentRequest, IntentState, IntentView, OpenIntent,
    PaymentGateway, TransferRequest,
};
use ms_payment::store::{
    CouponRow, FailureRow, LedgerStore, OrderReplica, PaymentRow, PaymentStore, PendingCharge,
    Redemption, StoreError,
};
use ms_testkit::{TestEnv, eventually};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The e-mail that ms-user makes an admin in these tests.
pub const ADMIN_EMAIL: &str = "admin@example.com";

/// Records every charge and answers with the wrapped gateway.
pub struct Recording {
    inner: Arc<dyn PaymentGateway>,
    calls: Mutex<Vec<ChargeRequest>>,
    refunds: Mutex<Vec<(String, String)>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn PaymentGateway>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            calls: Mutex::new(Vec::new()),
            refunds: Mutex::new(Vec::new()),
        })
    }
    pub fn calls(&self) -> Vec<ChargeRequest> {
        self.calls.lock().unwrap().clone()
    }
    /// `(provider_id, order_id)` of every refund asked for.
    pub fn refunds(&self) -> Vec<(String, String)> {
        self.refunds.lock().unwrap().clone()
    }
}

#[async_trait]
impl PaymentGateway for Recording {
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        self.calls.lock().unwrap().push(req.clone());
        self.inner.charge(req).await
    }
    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError> {
        self.refunds
            .lock()
            .unwrap()
            .push((provider_id.to_owned(), order_id.to_owned()));
        self.inner.refund(provider_id, order_id, destination).await
    }
    async fn create_account(&self, seller_id: &str) -> Result<String, GatewayError> {
        self.inner.create_account(seller_id).await
    }
    async fn onboarding_link(
        &self,
        account_id: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        self.inner
            .onboarding_link(account_id, refresh_url, return_url)
            .await
    }
    async fn account_ready(&self, account_id: &str) -> Result<bool, GatewayError> {
        self.inner.account_ready(account_id).await
    }
    async fn transfer(&self, req: &TransferRequest) -> Result<String, GatewayError> {
        self.inner.transfer(req).await
    }
    async fn reverse_transfer(
        &self,
        transfer_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), GatewayError> {
        self.inner
            .reverse_transfer(transfer_id, amount_cents, key)
            .await
    }
    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        self.inner.find_charge(order_id).await
    }
    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError> {
        self.inner.open_intent(req).await
    }
    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError> {
        self.inner.intent(id).await
    }
    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError> {
        self.inner.cancel_intent(id).await
    }
}

/// A store that counts replica look-ups, so a test can see `payment:create` waiting.
pub struct CountingStore {
    pub inner: Arc<dyn PaymentStore>,
    pub order_reads: AtomicUsize,
    /// When set, the next `record_payment` fails (a disk that fills after the charge).
    pub fail_next_payment: std::sync::atomic::AtomicBool,
}

impl CountingStore {
    /// Over a fresh in-memory SQLite store.
    pub async fn in_memory() -> Arc<Self> {
        let inner = ms_payment::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap();
        Arc::new(Self {
            inner,
            order_reads: AtomicUsize::new(0),
            fail_next_payment: Default::default(),
        })
    }
}

#[async_trait]
impl PaymentStore for CountingStore {
    async fn apply_order(&self, o: &OrderReplica) -> Result<VersionCheck, StoreError> {
        self.inner.apply_order(o).await
    }
    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError> {
        self.order_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.order(id).await
    }
    async fn payment_for_order(&self, id: &str) -> Result<Option<PaymentRow>, StoreError> {
        self.inner.payment_for_order(id).await
    }
    async fn record_payment(&self, p: &PaymentRow, e: &EventEnvelope) -> Result<(), StoreError> {
        if self.fail_next_payment.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Other(anyhow::anyhow!("disk full")));
        }
        self.inner.record_payment(p, e).await
    }
    async fn record_refund(
        &self,
        order_id: &str,
        at: chrono::DateTime<chrono::Utc>,
        e: &EventEnvelope,
    ) -> Result<Option<PaymentRow>, StoreError> {
        self.inner.record_refund(order_id, at, e).await
    }
    async fn record_failure(
        &self,
        f: &FailureRow,
        coupon: Option<&str>,
        e: &EventEnvelope,
    ) -> Result<(), StoreError> {
        self.inner.record_failure(f, coupon, e).await
    }
    async fn failure_for_order(&self, id: &str) -> Result<Option<FailureRow>, StoreError> {
        self.inner.failure_for_order(id).await
    }
    async fn create_coupon(&self, c: &CouponRow) -> Result<(), StoreError> {
        self.inner.create_coupon(c).await
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

/// A signed-in account.
pub struct Session {
    pub id: String,
    pub token: String,
}

pub struct App {
    pub env: TestEnv,
    pub rpc: RpcClient,
    pub broker: Broker,
    pub publisher: Publisher,
    pub user: ms_user::RunningUser,
    pub payment: ms_payment::RunningPayment,
    pub gateway: Arc<Recording>,
    /// Bound to `payment.*` on the events exchange.
    pub observer: String,
}

pub async fn spawn_app() -> App {
    spawn_with(|_| {}, Arc::new(TestGateway::default()), None).await
}

/// Starts everything; `tweak` adjusts ms-payment's settings, `store` replaces its store.
pub async fn spawn_with(
    tweak: impl FnOnce(&mut ms_payment::PaymentConfig),
    gateway: Arc<dyn PaymentGateway>,
    store: Option<Arc<dyn PaymentStore>>,
) -> App {
    let env = TestEnv::new();
    let mut ucfg = ms_user::UserConfig::for_tests(&env.prefix);
    ucfg.admin_emails = ms_user::parse_admin_emails(ADMIN_EMAIL);
    let user = ms_user::start(ucfg).await.unwrap();
    let mut cfg = ms_payment::PaymentConfig::for_tests(&env.prefix);
    tweak(&mut cfg);
    let store = match store {
        Some(s) => s,
        None => ms_payment::store::open(&cfg.storage).await.unwrap(),
    };
    let gateway = Recording::new(gateway);
    let payment = ms_payment::start_with(cfg, store, gateway.clone())
        .await
        .unwrap();
    let broker = env.broker().await.unwrap();
    let rpc = RpcClient::new(broker.clone(), env.names(), Duration::from_secs(10));
    let observer = format!("{}observer", env.prefix);
    let ch = broker.channel().await.unwrap();
    ch.queue_declare(
        observer.clone().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        observer.clone().into(),
        env.names().events_exchange().into(),
        "payment.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    App {
        publisher: Publisher::new(broker.clone()),
        env,
        rpc,
        broker,
        user,
        payment,
        gateway,
        observer,
    }
}

/// A fresh order, version 1, holding for 15 minutes.
pub fn new_order(user_id: &str, price_cents: i64) -> OrderRecord {
    let now = ms_common::time::now();
    OrderRecord {
        id: uuid::Uuid::now_v7().to_string(),
        stuff_id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.into(),
        status: OrderStatus::Created,
        expires_at: now + chrono::Duration::minutes(15),
        price_cents,
        stuff_title: "Notes".into(),
        paid_cents: None,
        reviewed: false,
        stuff_version: None,
        seller_id: None,
        version: 1,
        created_at: now,
    }
}

/// The next version of `o` with `status`.
pub fn next(o: &OrderRecord, status: OrderStatus) -> OrderRecord {
    OrderRecord {
        status,
        version: o.version + 1,
        ..o.clone()
    }
}

pub fn fields(e: &ApiError) -> Vec<&str> {
    e.errors.iter().filter_map(|d| d.field.as_deref()).collect()
}

/// (status, first message, fields) of an error, for one-line assertions.
pub fn summary(e: &ApiError) -> (u16, &str, Vec<&str>) {
    (e.status, e.first_message(), fields(e))
}

impl App {
    pub async fn call(
        &self,
        svc: Service,
        action: &str,
        token: Option<&str>,
        payload: Value,
    ) -> Result<Value, ApiError> {
        let req = RpcRequest {
            action: action.into(),
            token: token.map(str::to_owned),
            payload,
        };
        self.rpc.call(svc, &req, "test-cid").await
    }

    pub async fn signup(&self, email: &str) -> Session {
        let s = self
            .call(
                Service::User,
                "user:signup",
                None,
                json!({"email": email, "password": "password123"}),
            )
            .await
            .unwrap();
        Session {
            id: s["user"]["id"].as_str().unwrap().to_owned(),
            token: s["accessToken"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn admin(&self) -> Session {
        self.signup(ADMIN_EMAIL).await
    }

    pub async fn pay(&self, who: &Session, payload: Value) -> Result<Value, ApiError> {
        self.call(
            Service::Payment,
            "payment:create",
            Some(&who.token),
            payload,
        )
        .await
    }

    pub async fn create_coupon(&self, admin: &Session, payload: Value) -> Value {
        self.call(
            Service::Payment,
            "coupon:create",
            Some(&admin.token),
            payload,
        )
        .await
        .unwrap()
    }

    /// Creates a coupon as `admin` and returns its code (for tests that need only that).
    pub async fn coupon_code(&self, admin: &Session, payload: Value) -> String {
        self.create_coupon(admin, payload).await["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// How many times the coupon `code` is redeemed, as stored.
    pub async fn redemptions(&self, code: &str) -> i64 {
        self.payment
            .store
            .coupon(code)
            .await
            .unwrap()
            .unwrap()
            .redemptions
    }

    /// Publishes an order event as ms-order would.
    pub async fn publish(&self, event: Event) {
        let env = EventEnvelope::new(event, Some("order-cid".into()));
        self.publisher
            .publish(Outgoing {
                exchange: self.env.names().events_exchange(),
                routing_key: env.event.routing_key().into(),
                payload: serde_json::to_vec(&env).unwrap(),
                message_id: Some(env.id.clone()),
                correlation_id: env.correlation_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Publishes `order.created` for a new order and returns it.
    pub async fn order_for(&self, who: &Session, price_cents: i64) -> OrderRecord {
        let o = new_order(&who.id, price_cents);
        self.publish(Event::OrderCreated(o.clone())).await;
        o
    }

    /// Waits until the replica holds `version` of `order_id`.
    pub async fn replica_at(&self, order_id: &str, version: u64) -> OrderReplica {
        let store = self.payment.store.clone();
        eventually(Duration::from_secs(10), "the order replica", || {
            let store = store.clone();
            async move {
                store
                    .order(order_id)
                    .await
                    .unwrap()
                    .filter(|o| o.version == version)
            }
        })
        .await
        .unwrap()
    }

    /// The next payment event ms-payment published.
    pub async fn next_event(&self) -> EventEnvelope {
        let msg = eventually(Duration::from_secs(10), "a payment event", || async {
            self.broker
                .channel()
                .await
                .ok()?
                .basic_get(
                    self.observer.clone().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .ok()?
        })
        .await
        .unwrap();
        serde_json::from_slice(&msg.delivery.data).unwrap()
    }

    /// Messages waiting in a queue.
    pub async fn queue_len(&self, queue: &str) -> u32 {
        let ch = self.broker.channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        q.message_count()
    }

    /// Messages in ms-payment's dead-letter queue.
    pub async fn dead_letters(&self) -> u32 {
        self.queue_len(&self.env.names().dead_letter_queue(Service::Payment))
            .await
    }

    /// Waits until every outbox event went out.
    pub async fn outbox_drained(&self) {
        let outbox = self.payment.store.outbox();
        eventually(Duration::from_secs(10), "an empty outbox", || async {
            (outbox.unsent_count().await.unwrap() == 0).then_some(())
        })
        .await
        .unwrap();
    }

    pub async fn done(self) {
        self.payment.handle.stop().await;
        self.user.handle.stop().await;
        self.broker.close().await;
        self.env
            .teardown(std::slice::from_ref(&self.observer))
            .await;
    }
}
