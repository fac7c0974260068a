//! ms-router: StuffMart's edge.
//!
//! Layers, outside in: transport ([`http`] routes and the Socket.IO layer on one axum app)
//! → envelope (every failure is the contract's `ApiError` shape, acks are `{data}` or
//! `{status, errors}`) → relay ([`socket`] forwards `<service>:<action>` events as RPC
//! requests carrying the caller's token; [`fanout`] pushes events from the router's own
//! exclusive queue to sockets). Sign-ups and sign-ins are throttled per e-mail and per
//! client address ([`ratelimit`], with the address from [`client`]) before they reach
//! ms-user; socket events spend per-socket and per-user allowances, and sockets are capped
//! per client address ([`allowance`], on the same limiter). The router trusts nobody's word for identity: tokens are
//! verified with ms-user's published keys, here and again in every service.

pub mod allowance;
pub mod client;
pub mod covers;
pub mod fanout;
pub mod files;
pub mod http;
pub mod pages;
pub mod previews;
pub mod ratelimit;
pub mod socket;

use ms_common::auth::TokenVerifier;
use ms_common::config::{CommonConfig, env_opt, env_or, env_parse};
use ms_common::files::FilesConfig;
use ms_common::messaging::RpcKeySource;
use ms_common::messaging::{Broker, Names, RpcClient};
use ms_common::money::Currency;
use ms_common::shutdown::Shutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The router's settings.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Shared settings (broker, prefix, RPC timeout).
    pub common: CommonConfig,
    /// `BIND_ADDR` (`0.0.0.0`).
    pub bind_addr: String,
    /// `PORT` (3000); 0 picks a free port (tests).
    pub port: u16,
    /// `STATIC_DIR`: the built web client (default `web-client/dist` when it exists).
    pub static_dir: Option<PathBuf>,
    /// `COOKIE_SECURE`: add `Secure` to the refresh cookie (behind HTTPS).
    pub cookie_secure: bool,
    /// `SIGNIN_MAX_ATTEMPTS` (10) per e-mail and per address in a window.
    pub signin_max_attempts: u32,
    /// `SIGNIN_WINDOW_SECONDS` (60).
    pub signin_window: Duration,
    /// `SIGNUP_MAX_ATTEMPTS` (5) per e-mail and per address in a window.
    pub signup_max_attempts: u32,
    /// `SIGNUP_WINDOW_SECONDS` (60).
    pub signup_window: Duration,
    /// `AUTH_THROTTLE_MAX_KEYS` (100000): the most e-mails and addresses the throttles hold.
    pub throttle_max_keys: usize,
    /// `MAX_PAYLOAD_BYTES` (65536): largest Socket.IO payload or HTTP body.
    pub max_payload_bytes: usize,
    /// `TRUSTED_PROXIES` (plus the private networks with `TRUST_PROXY=true`): peers whose
    /// `X-Forwarded-For` names the client.
    pub trusted_proxies: client::TrustedProxies,
    /// `MAX_CONNECTIONS` (20000): Socket.IO connections this process accepts at once.
    pub max_connections: usize,
    /// What one socket, one user and one client address may ask: `SOCKET_RATE`,
    /// `SOCKET_BURST`, `SOCKET_WRITE_RATE`, `SOCKET_WRITE_BURST`, `SOCKET_MAX_IN_FLIGHT`,
    /// `MAX_CONNECTIONS_PER_ADDRESS`.
    pub socket: allowance::SocketLimits,
    /// Test hook, never read from the environment: how long the Socket.IO connect handler
    /// waits before it returns. It widens the window between CONNECT and the handler, in
    /// which an event is lost if its listener is registered by the handler (issue 12).
    pub connect_handler_delay: Option<Duration>,
    /// Delivered files: object store, size limit, link key.
    pub files: FilesConfig,
    /// `CURRENCY`, told to the web client by `GET /api/config` so it formats prices the
    /// way ms-payment charges them.
    pub currency: Currency,
}

impl RouterConfig {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let static_dir = match env_opt("STATIC_DIR") {
            Some(d) => Some(PathBuf::from(d)),
            None => {
                Some(PathBuf::from("web-client/dist")).filter(|p| p.join("index.html").exists())
            }
        };
        let common = CommonConfig::from_env()?;
        let mut trusted_proxies =
            client::TrustedProxies::parse(&env_opt("TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("TRUSTED_PROXIES: {e}"))?;
        if env_parse("TRUST_PROXY", false)? {
            trusted_proxies.extend(client::TrustedProxies::private_networks());
        }
        Ok(Self {
            files: FilesConfig::from_env(&common.data_dir)?,
            currency: Currency::from_env()?,
            common,
            bind_addr: env_or("BIND_ADDR", "0.0.0.0"),
            port: env_parse("PORT", 3000u16)?,
            static_dir,
            cookie_secure: env_parse("COOKIE_SECURE", false)?,
            signin_max_attempts: env_parse("SIGNIN_MAX_ATTEMPTS", 10u32)?,
            signin_window: Duration::from_secs(env_parse("SIGNIN_WINDOW_SECONDS", 60u64)?),
            signup_max_attempts: env_parse("SIGNUP_MAX_ATTEMPTS", 5u32)?,
            signup_window: Duration::from_secs(env_parse("SIGNUP_WINDOW_SECONDS", 60u64)?),
            throttle_max_keys: env_parse("AUTH_THROTTLE_MAX_KEYS", 100_000usize)?,
            max_payload_bytes: env_parse("MAX_PAYLOAD_BYTES", 65_536usize)?,
            trusted_proxies,
            max_connections: env_parse("MAX_CONNECTIONS", 20_000usize)?,
            socket: allowance::SocketLimits::from_env()?,
            connect_handler_delay: None,
        })
    }

    /// Test settings: loopback, a free port, the given prefix.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            files: FilesConfig::for_tests(&std::env::temp_dir().join(prefix).join("objects")),
            currency: Currency::default(),
            common: CommonConfig::for_tests(prefix),
            bind_addr: "127.0.0.1".into(),
            port: 0,
            static_dir: None,
            cookie_secure: false,
            signin_max_attempts: 50,
            signin_window: Duration::from_secs(60),
            signup_max_attempts: 1000,
            signup_window: Duration::from_secs(60),
            throttle_max_keys: 100_000,
            max_payload_bytes: 65_536,
            trusted_proxies: client::TrustedProxies::default(),
            max_connections: 10_000,
            socket: allowance::SocketLimits::generous(),
            connect_handler_delay: None,
        }
    }
}

/// Cheap handles shared by every request.
#[derive(Clone)]
pub struct AppState {
    /// Settings.
    pub cfg: Arc<RouterConfig>,
    /// The process's broker connection.
    pub broker: Broker,
    /// Requests to services.
    pub rpc: RpcClient,
    /// Token checks with ms-user's public keys.
    pub verifier: Arc<TokenVerifier>,
    /// Sign-up and sign-in throttling.
    pub throttle: Arc<ratelimit::AuthThrottle>,
    /// Open Socket.IO connections, bounded by `max_connections`.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Per-user event allowances and per-address connection counts.
    pub allowances: Arc<allowance::Allowances>,
    /// The object store and link key for file uploads and downloads.
    pub files: files::FilesState,
}

/// A router bound to its port, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    app: axum::Router,
    port: u16,
    shutdown: Shutdown,
}

impl Application {
    /// Connects to RabbitMQ, starts the fan-out consumer and binds the listener.
    pub async fn build(cfg: RouterConfig, shutdown: Shutdown) -> anyhow::Result<Self> {
        let names = Names::new(cfg.common.amqp_prefix.clone());
        let broker = Broker::connect(
            &cfg.common.amqp_url,
            &format!("{}ms-router", names.prefix()),
            vec![],
        )
        .await?;
        let rpc = RpcClient::new(broker.clone(), names.clone(), cfg.common.rpc_timeout);
        let verifier = Arc::new(TokenVerifier::new(Arc::new(RpcKeySource::new(rpc.clone()))));
        let throttle = Arc::new(ratelimit::AuthThrottle::new(
            cfg.throttle_max_keys,
            ratelimit::Allowance {
                max: cfg.signup_max_attempts,
                window: cfg.signup_window,
            },
            ratelimit::Allowance {
                max: cfg.signin_max_attempts,
                window: cfg.signin_window,
            },
        ));
        // Two keys (events, writes) per signed-in user, for at most every open socket.
        let allowances = Arc::new(allowance::Allowances::new(
            cfg.socket,
            cfg.max_connections.saturating_mul(2),
        ));
        let files = files::FilesState::open(cfg.files.clone())?;
        let listener = tokio::net::TcpListener::bind((cfg.bind_addr.as_str(), cfg.port)).await?;
        let port = listener.local_addr()?.port();
        let state = AppState {
            cfg: Arc::new(cfg),
            broker: broker.clone(),
            rpc,
            verifier,
            throttle,
            connections: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            allowances,
            files,
        };
        let (layer, io) = socket::layer(state.clone());
        let fanout = fanout::Fanout::new(broker, names, io);
        // Subscribe before serving, so no event published after start-up is missed.
        fanout.subscribe_once().await?;
        tokio::spawn(fanout.run(shutdown.clone()));
        tokio::spawn(files::sweep_orphans(state.clone(), shutdown.clone()));
        let app = http::routes(state)
            .layer(layer)
            .layer(axum::middleware::map_request(socket::detach_head));
        tracing::info!(port, "ms-router listening");
        Ok(Self {
            listener,
            app,
            port,
            shutdown,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the shutdown token is cancelled.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let token = self.shutdown.token.clone();
        use axum::serve::ListenerExt;
        // Pushes and acks are small frames that must leave at once, not wait for Nagle.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await?;
        Ok(())
    }
}
