//! ms-user: accounts and tokens for StuffMart.
//!
//! Layout: [`domain`] (validated `Email`, `Password`) → [`service`] (RPC actions) →
//! [`store`] (repository trait, SQLite and MongoDB backends) with [`password`] (argon2id)
//! and [`tokens`] (EdDSA signing keys, refresh tokens). Only this service holds private
//! keys; everyone else verifies with the key set from `user:jwks`. [`admin`] is the
//! `ms-user admin grant|revoke EMAIL` subcommand.

pub mod admin;
pub mod domain;
pub mod password;
pub mod service;
pub mod store;
pub mod tokens;

use ms_common::auth::TokenVerifier;
use ms_common::config::{CommonConfig, StorageConfig, env_opt, env_parse};
use ms_common::messaging::Service;
use ms_common::service::{ServiceHandle, ServiceRuntime};
use service::{LocalKeys, UserService};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// ms-user's settings.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// Shared settings (broker, prefix, storage location).
    pub common: CommonConfig,
    /// Where accounts are stored.
    pub storage: StorageConfig,
    /// `ADMIN_EMAILS`, normalised: these get role `admin` at sign-up. A development
    /// convenience (whoever signs up first with a listed address becomes admin); deployments
    /// leave it unset and use `ms-user admin grant EMAIL` ([`admin`]).
    pub admin_emails: HashSet<String>,
    /// Access token lifetime (`ACCESS_TOKEN_SECONDS`, 900).
    pub access_ttl: Duration,
    /// Refresh token lifetime (`REFRESH_TOKEN_SECONDS`, 30 days).
    pub refresh_ttl: Duration,
    /// How long a rotated refresh token is still accepted once, for a client whose reply
    /// was lost (`REFRESH_GRACE_SECONDS`, 10).
    pub refresh_grace: Duration,
    /// argon2 runs at once (`ARGON2_MAX_CONCURRENT`) and the wait for a turn (`ARGON2_WAIT_MS`).
    pub argon2: password::Argon2Limits,
}

/// Parses `ADMIN_EMAILS` (comma-separated, case-insensitive).
pub fn parse_admin_emails(raw: &str) -> HashSet<String> {
    raw.split(',')
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

impl UserConfig {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let common = CommonConfig::from_env()?;
        Ok(Self {
            storage: common.storage_for("user"),
            common,
            admin_emails: parse_admin_emails(&env_opt("ADMIN_EMAILS").unwrap_or_default()),
            access_ttl: Duration::from_secs(env_parse("ACCESS_TOKEN_SECONDS", 900u64)?),
            refresh_ttl: Duration::from_secs(env_parse(
                "REFRESH_TOKEN_SECONDS",
                30 * 24 * 3600u64,
            )?),
            refresh_grace: Duration::from_secs(env_parse("REFRESH_GRACE_SECONDS", 10u64)?),
            argon2: password::Argon2Limits {
                max_concurrent: env_parse(
                    "ARGON2_MAX_CONCURRENT",
                    password::default_max_concurrent(),
                )?
                .max(1),
                wait: Duration::from_millis(env_parse(
                    "ARGON2_WAIT_MS",
                    password::DEFAULT_WAIT_MS,
                )?),
            },
        })
    }

    /// Test settings: in-memory SQLite, the given prefix.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            common: CommonConfig::for_tests(prefix),
            storage: StorageConfig::SqliteMemory,
            admin_emails: HashSet::new(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(10),
            // Fixed, so tests do not depend on the machine; the wait stays below the
            // routers' RPC timeout in tests (3 s), so a busy ms-user answers 429, not 503.
            argon2: password::Argon2Limits {
                max_concurrent: 4,
                wait: Duration::from_millis(password::DEFAULT_WAIT_MS),
            },
        }
    }
}

/// A running ms-user: the handle plus the service (tests rotate keys through it).
pub struct RunningUser {
    /// Stops the service.
    pub handle: ServiceHandle,
    /// The service's state.
    pub service: Arc<UserService>,
}

/// Opens the store, connects, and starts the RPC server and the outbox relay.
pub async fn start(cfg: UserConfig) -> anyhow::Result<RunningUser> {
    let store = store::open(&cfg.storage).await?;
    tracing::info!(
        max_concurrent = cfg.argon2.max_concurrent,
        wait = ?cfg.argon2.wait,
        "argon2 limits"
    );
    let svc = Arc::new(
        UserService::new(
            store.clone(),
            cfg.admin_emails.clone(),
            cfg.access_ttl,
            cfg.refresh_ttl,
            cfg.refresh_grace,
            password::Argon2Pool::new(cfg.argon2),
        )
        .await?,
    );
    let mut rt = ServiceRuntime::connect(cfg.common.clone(), Service::User).await?;
    let verifier = Arc::new(TokenVerifier::new(Arc::new(LocalKeys(svc.clone()))));
    rt.serve_rpc(verifier, svc.clone());
    rt.relay_outbox(store.outbox());
    Ok(RunningUser {
        handle: rt.started().await?,
        service: svc,
    })
}
