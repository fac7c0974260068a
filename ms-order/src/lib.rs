//! ms-order: checkout holds for StuffMart.
//!
//! Layout: [`service`] (RPC actions and event handlers) → [`store`] (orders and the stuff
//! replica; SQLite and MongoDB) and [`hold`] (the TTL queue that expires holds).
//!
//! Flow: `order:create` inserts an active order (a partial unique index lets exactly one
//! buyer win) with `order.created` in the outbox → ms-stuff marks the stuff reserved; the
//! same event waits in the hold queue and comes back through `order.expired` when the
//! hold ends → the order is cancelled unless paid (`payment.created` completes it,
//! `payment.failed` cancels it). A [`sweeper`] cancels overdue holds whose expiry never
//! came back.

pub mod domain;
pub mod events;
pub mod hold;
pub mod service;
pub mod store;
pub mod sweeper;

use events::ExpiryHandler;
use hold::HoldTopology;
use ms_common::auth::TokenVerifier;
use ms_common::config::{CommonConfig, StorageConfig, env_parse};
use ms_common::events::EventEnvelope;
use ms_common::messaging::RpcKeySource;
use ms_common::messaging::{RpcClient, Service};
use ms_common::money::FeePercent;
use ms_common::service::{ServiceHandle, ServiceRuntime};
use service::OrderService;
use std::sync::Arc;
use std::time::Duration;

/// ms-order's settings.
#[derive(Debug, Clone)]
pub struct OrderConfig {
    /// Shared settings.
    pub common: CommonConfig,
    /// Where orders are stored.
    pub storage: StorageConfig,
    /// `ORDER_HOLD_SECONDS` (900): how long an order holds its stuff.
    pub hold: Duration,
    /// `HOLD_SWEEP_SECONDS` (60): how often the sweeper cancels overdue holds whose TTL
    /// expiry never came.
    pub sweep_every: Duration,
    /// `PLATFORM_FEE_PERCENT` (10, 0–100): the share taken of a payment that does not say
    /// its fee (ms-payment pins it on every payment it makes now).
    pub fee: FeePercent,
}

impl OrderConfig {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let common = CommonConfig::from_env()?;
        let secs: u64 = env_parse("ORDER_HOLD_SECONDS", 900)?;
        anyhow::ensure!(secs >= 1, "ORDER_HOLD_SECONDS must be at least 1");
        let sweep: u64 = env_parse("HOLD_SWEEP_SECONDS", 60)?;
        anyhow::ensure!(sweep >= 1, "HOLD_SWEEP_SECONDS must be at least 1");
        Ok(Self {
            fee: FeePercent::from_env()?,
            storage: common.storage_for("order"),
            common,
            hold: Duration::from_secs(secs),
            sweep_every: Duration::from_secs(sweep),
        })
    }

    /// Test settings: in-memory SQLite, the given prefix and hold, and a sweeper that
    /// stays out of the way (tests of the TTL path must not be rescued by it; a sweeper
    /// test sets `sweep_every`).
    pub fn for_tests(prefix: &str, hold: Duration) -> Self {
        Self {
            common: CommonConfig::for_tests(prefix),
            storage: StorageConfig::SqliteMemory,
            hold,
            sweep_every: Duration::from_secs(3600),
            fee: FeePercent::default(),
        }
    }

    /// The hold queue names under these settings.
    pub fn hold_topology(&self) -> HoldTopology {
        HoldTopology {
            names: ms_common::messaging::Names::new(self.common.amqp_prefix.clone()),
            hold: self.hold,
            retry: self.common.retry_policy(),
        }
    }
}

/// A running ms-order.
pub struct RunningOrder {
    /// Stops the service.
    pub handle: ServiceHandle,
    /// Its store (tests check invariants on it).
    pub store: Arc<dyn store::OrderStore>,
}

/// Opens the store (or uses `store`), connects, declares the hold queues, starts everything.
pub async fn start_with_store(
    cfg: OrderConfig,
    store: Arc<dyn store::OrderStore>,
) -> anyhow::Result<RunningOrder> {
    let svc = Arc::new(OrderService::new(store.clone(), cfg.hold).with_fee(cfg.fee));
    let mut rt = ServiceRuntime::connect(cfg.common.clone(), Service::Order).await?;
    let hold = cfg.hold_topology();
    rt.broker.declare(Arc::new(hold.clone())).await?;
    let rpc = RpcClient::new(rt.broker.clone(), rt.names.clone(), cfg.common.rpc_timeout);
    let verifier = Arc::new(TokenVerifier::new(Arc::new(RpcKeySource::new(rpc))));
    rt.serve_rpc(verifier, svc.clone());
    rt.consume_events::<EventEnvelope, _>(svc.clone());
    rt.consume_queue::<EventEnvelope, _>(
        hold.expired_queue(),
        Arc::new(ExpiryHandler(svc.clone())),
    );
    rt.spawn(sweeper::run(svc, cfg.sweep_every, rt.shutdown.clone()));
    rt.relay_outbox(store.outbox());
    Ok(RunningOrder {
        handle: rt.started().await?,
        store,
    })
}

/// Opens the configured store and starts the service.
pub async fn start(cfg: OrderConfig) -> anyhow::Result<RunningOrder> {
    let store = store::open(&cfg.storage).await?;
    start_with_store(cfg, store).await
}
