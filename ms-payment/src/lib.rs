//! ms-payment: payments and coupons for StuffMart.
//!
//! Layout: [`domain`] (parsed input, the amount rule, coupon codes, response shapes) →
//! [`service`] (RPC actions and the order-event consumer) → [`store`] (order replica,
//! payments, declines, coupons; SQLite and MongoDB) and [`gateway`] (Stripe, or the
//! built-in test gateway).
//!
//! Flow: `order.*` events keep a replica of orders (version by version) → `payment:create`
//! checks the order, redeems a coupon atomically, charges through the gateway and stores the
//! payment with `payment.created` in the outbox → ms-order completes the order; a decline
//! publishes `payment.failed` instead → ms-order cancels it.

pub mod domain;
pub mod events;
pub mod gateway;
pub mod payouts;
pub mod service;
pub mod store;
pub mod webhook;

use gateway::PaymentGateway;
use ms_common::auth::TokenVerifier;
use ms_common::config::{CommonConfig, StorageConfig, env_opt, env_parse};
use ms_common::contract::GATEWAY_REPLY_WAIT;
use ms_common::events::EventEnvelope;
use ms_common::messaging::RpcKeySource;
use ms_common::messaging::{RpcClient, Service};
use ms_common::money::{Currency, FeePercent};
use ms_common::service::{ServiceHandle, ServiceRuntime};
use service::PaymentService;
use std::sync::Arc;
use std::time::Duration;

/// Which gateway charges cards.
#[derive(Clone, PartialEq, Eq)]
pub enum GatewayConfig {
    /// The built-in test gateway (no `STRIPE_SECRET_KEY`).
    Test,
    /// Stripe.
    Stripe {
        /// `STRIPE_SECRET_KEY`.
        secret_key: String,
        /// `STRIPE_API_BASE`: another API location (a local stand-in in tests).
        api_base: Option<String>,
        /// `STRIPE_TIMEOUT_MS` (20000): bound on each HTTP attempt.
        timeout: Duration,
    },
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayConfig::Test => f.write_str("Test"),
            GatewayConfig::Stripe {
                api_base, timeout, ..
            } => f
                .debug_struct("Stripe")
                .field("secret_key", &"***")
                .field("api_base", api_base)
                .field("timeout", timeout)
                .finish(),
        }
    }
}

impl GatewayConfig {
    /// Builds the configured gateway.
    pub fn build(&self) -> anyhow::Result<Arc<dyn PaymentGateway>> {
        Ok(match self {
            GatewayConfig::Test => Arc::new(gateway::builtin::TestGateway::default()),
            GatewayConfig::Stripe {
                secret_key,
                api_base,
                timeout,
            } => Arc::new(gateway::stripe::StripeGateway::new(
                secret_key,
                api_base.as_deref(),
                *timeout,
            )?),
        })
    }
}

/// `PUBLIC_URL` when unset: the run command's address.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";

/// ms-payment's settings.
#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// Shared settings (broker, prefix, storage location).
    pub common: CommonConfig,
    /// Where orders, payments and coupons are stored.
    pub storage: StorageConfig,
    /// Which gateway charges.
    pub gateway: GatewayConfig,
    /// `CURRENCY` (`eur`): every charge is in it.
    pub currency: Currency,
    /// `PLATFORM_FEE_PERCENT` (10): the marketplace's share, pinned on each payment.
    pub fee: FeePercent,
    /// `PUBLIC_URL` (`http://localhost:3000`): the web client's address, where Stripe
    /// sends a seller back after onboarding.
    pub public_url: String,
    /// How long `payment:create` waits for an order's event to arrive (2 s).
    pub order_wait: Duration,
    /// `STRIPE_WEBHOOK_SECRET`: checks `Stripe-Signature`; unset, webhooks are refused.
    pub webhook_secret: Option<webhook::WebhookSecret>,
    /// `STRIPE_PUBLISHABLE_KEY` (`pk_…`), handed to browsers with each intent for
    /// Stripe's Payment Element; only with Stripe (the built-in gateway has none).
    pub publishable_key: Option<String>,
    /// `RECONCILE_SECONDS` (300): how often charges with a lost answer are settled.
    pub reconcile_every: Duration,
    /// How old a pending charge must be before reconciliation asks about it: longer
    /// than a charge may take ([`GATEWAY_REPLY_WAIT`]) plus Stripe's search lag (a
    /// minute). Tests shorten it.
    pub reconcile_grace: Duration,
}

/// [`PaymentConfig::reconcile_grace`] outside tests.
pub const RECONCILE_GRACE: Duration = Duration::from_secs(GATEWAY_REPLY_WAIT.as_secs() + 60);

impl PaymentConfig {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let common = CommonConfig::from_env()?;
        let gateway = match env_opt("STRIPE_SECRET_KEY") {
            None => GatewayConfig::Test,
            Some(secret_key) => GatewayConfig::Stripe {
                secret_key: secret_key.trim().to_owned(),
                api_base: env_opt("STRIPE_API_BASE"),
                timeout: Duration::from_millis(env_parse("STRIPE_TIMEOUT_MS", 20_000u64)?),
            },
        };
        Ok(Self {
            storage: common.storage_for("payment"),
            common,
            currency: Currency::from_env()?,
            fee: FeePercent::from_env()?,
            public_url: ms_common::config::env_or("PUBLIC_URL", DEFAULT_PUBLIC_URL),
            order_wait: Duration::from_millis(env_parse("PAYMENT_ORDER_WAIT_MS", 2000u64)?),
            webhook_secret: env_opt("STRIPE_WEBHOOK_SECRET")
                .and_then(|s| webhook::WebhookSecret::new(&s)),
            publishable_key: match gateway {
                GatewayConfig::Test => None,
                GatewayConfig::Stripe { .. } => {
                    env_opt("STRIPE_PUBLISHABLE_KEY").map(|k| k.trim().to_owned())
                }
            },
            gateway,
            reconcile_every: Duration::from_secs(env_parse("RECONCILE_SECONDS", 300u64)?.max(10)),
            reconcile_grace: RECONCILE_GRACE,
        })
    }

    /// Test settings: in-memory SQLite, the test gateway, the given prefix.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            common: CommonConfig::for_tests(prefix),
            storage: StorageConfig::SqliteMemory,
            gateway: GatewayConfig::Test,
            currency: Currency::default(),
            fee: FeePercent::default(),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            order_wait: Duration::from_secs(2),
            webhook_secret: None,
            publishable_key: None,
            reconcile_every: Duration::from_secs(300),
            reconcile_grace: RECONCILE_GRACE,
        }
    }
}

/// A running ms-payment.
pub struct RunningPayment {
    /// Stops the service.
    pub handle: ServiceHandle,
    /// Its store (tests check the replica, payments and coupons on it).
    pub store: Arc<dyn store::PaymentStore>,
    /// The service (tests run reconciliation when they choose).
    pub service: Arc<PaymentService>,
}

/// Starts with the configured store and gateway.
pub async fn start(cfg: PaymentConfig) -> anyhow::Result<RunningPayment> {
    let store = store::open(&cfg.storage).await?;
    let gateway = cfg.gateway.build()?;
    start_with(cfg, store, gateway).await
}

/// Connects and starts the RPC server, the order-event consumer and the outbox relay over
/// the given store and gateway (tests pass recording gateways).
pub async fn start_with(
    cfg: PaymentConfig,
    store: Arc<dyn store::PaymentStore>,
    gateway: Arc<dyn PaymentGateway>,
) -> anyhow::Result<RunningPayment> {
    let svc = Arc::new(
        PaymentService::new(
            store.clone(),
            gateway,
            cfg.currency.clone(),
            cfg.order_wait,
            cfg.webhook_secret.clone(),
        )
        .with_publishable_key(cfg.publishable_key.clone())
        .with_payouts(cfg.fee, cfg.public_url.clone()),
    );
    let mut rt = ServiceRuntime::connect(cfg.common.clone(), Service::Payment).await?;
    let rpc = RpcClient::new(rt.broker.clone(), rt.names.clone(), cfg.common.rpc_timeout);
    let verifier = Arc::new(TokenVerifier::new(Arc::new(RpcKeySource::new(rpc))));
    rt.serve_rpc(verifier, svc.clone());
    rt.consume_events::<EventEnvelope, _>(svc.clone());
    rt.relay_outbox(store.outbox());
    // Reconciliation: at start (charges a crash left behind), then periodically.
    let (every, grace, stop) = (
        cfg.reconcile_every,
        cfg.reconcile_grace,
        rt.shutdown.clone(),
    );
    let reconciler = svc.clone();
    rt.spawn(async move {
        loop {
            reconciler.reconcile(grace).await;
            reconciler.settle_payouts().await;
            tokio::select! {
                _ = stop.signalled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
    tracing::info!(gateway = ?cfg.gateway, currency = %cfg.currency, "ms-payment configured");
    Ok(RunningPayment {
        handle: rt.started().await?,
        store,
        service: svc,
    })
}
