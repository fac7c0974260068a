//! ms-stuff: the StuffMart catalogue.
//!
//! Layout: [`domain`] (validated `StuffTitle`, `PriceCents`, `Description`, `Version`,
//! opaque `Cursor`) → [`service`] (RPC actions and the order-event consumer) → [`store`]
//! (repository trait, SQLite and MongoDB backends, the shared order rules).
//!
//! Data flow: `stuff:create` / `stuff:update` arrive over RPC from ms-router; the change
//! and its `stuff.created` / `stuff.updated` event are written in one transaction, and the
//! outbox relay publishes the event (the router pushes it to every socket). ms-order's
//! `order.created` / `order.cancelled` / `order.completed` events reserve, release and
//! sell stuff, applied in per-order version order.

pub mod domain;
pub mod events;
pub mod service;
pub mod store;

use events::OrderEvents;
use ms_common::auth::TokenVerifier;
use ms_common::config::{CommonConfig, StorageConfig};
use ms_common::events::EventEnvelope;
use ms_common::files::LinkConfig;
use ms_common::messaging::RpcKeySource;
use ms_common::messaging::{RpcClient, Service};
use ms_common::service::{ServiceHandle, ServiceRuntime};
use service::{Links, StuffService};
use std::sync::Arc;
use store::StuffStore;

/// ms-stuff's settings.
#[derive(Debug, Clone)]
pub struct StuffConfig {
    /// Shared settings (broker, prefix, retries, storage location).
    pub common: CommonConfig,
    /// Where the catalogue is stored.
    pub storage: StorageConfig,
    /// Download links (key, lifetime).
    pub links: LinkConfig,
}

impl StuffConfig {
    /// Reads the environment (`MONGODB_URL` selects MongoDB, else `DATA_DIR/stuff.db`).
    pub fn from_env() -> anyhow::Result<Self> {
        let common = CommonConfig::from_env()?;
        Ok(Self {
            storage: common.storage_for("stuff"),
            links: LinkConfig::from_env(&common.data_dir)?,
            common,
        })
    }

    /// Test settings: in-memory SQLite, the given prefix.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            common: CommonConfig::for_tests(prefix),
            storage: StorageConfig::SqliteMemory,
            links: LinkConfig::for_tests(),
        }
    }
}

/// A running ms-stuff: the handle plus its store (tests inspect it after stopping).
pub struct RunningStuff {
    /// Stops the service.
    pub handle: ServiceHandle,
    /// The catalogue store the service writes.
    pub store: Arc<dyn StuffStore>,
}

/// Opens the store, connects, and starts the RPC server, the order-event consumer and the
/// outbox relay.
pub async fn start(cfg: StuffConfig) -> anyhow::Result<RunningStuff> {
    let store = store::open(&cfg.storage).await?;
    let mut rt = ServiceRuntime::connect(cfg.common.clone(), Service::Stuff).await?;
    let keys = RpcClient::new(rt.broker.clone(), rt.names.clone(), cfg.common.rpc_timeout);
    let verifier = Arc::new(TokenVerifier::new(Arc::new(RpcKeySource::new(
        keys.clone(),
    ))));
    let links = Links {
        key: cfg.links.key.clone(),
        ttl: cfg.links.ttl,
        orders: keys,
    };
    rt.serve_rpc(verifier, Arc::new(StuffService::new(store.clone(), links)));
    rt.consume_events::<EventEnvelope, _>(Arc::new(OrderEvents::new(store.clone())));
    rt.relay_outbox(store.outbox());
    Ok(RunningStuff {
        handle: rt.started().await?,
        store,
    })
}
