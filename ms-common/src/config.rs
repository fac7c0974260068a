//! Configuration read from the environment, with the defaults of CONTRACT.md.

use std::path::PathBuf;
use std::time::Duration;

/// Reads a variable, falling back to a default when unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default.to_owned(),
    }
}

/// Reads an optional variable (unset and empty are the same).
pub fn env_opt(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reads and parses a variable, with a clear error naming it.
pub fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match env_opt(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={v:?} is invalid: {e}")),
    }
}

/// Where a service keeps its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// MongoDB at this URL (when `MONGODB_URL` is set).
    Mongo {
        /// Connection string.
        url: String,
        /// Database name; one per service.
        database: String,
    },
    /// A SQLite file under `DATA_DIR`.
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (tests).
    SqliteMemory,
}

/// `AMQP_URL`, with the password read from `AMQP_PASSWORD_FILE` when that is set (a
/// generated per-service password that stays out of the environment and the compose
/// file: see `deploy/rabbitmq/README.md`).
fn amqp_url_from_env() -> anyhow::Result<String> {
    let url = env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    match env_opt("AMQP_PASSWORD_FILE") {
        None => Ok(url),
        Some(path) => {
            let password = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("AMQP_PASSWORD_FILE={path}: {e}"))?;
            with_amqp_password(&url, password.trim())
        }
    }
}

/// Puts `password` (percent-encoded) into every address of an AMQP URL
/// (`amqp://user[:old]@host…`, several separated by commas); the user must be named.
pub fn with_amqp_password(url: &str, password: &str) -> anyhow::Result<String> {
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    url.split(',')
        .map(|one| {
            let one = one.trim();
            let (scheme, rest) = one
                .split_once("://")
                .ok_or_else(|| anyhow::anyhow!("AMQP_URL address without a scheme"))?;
            let (authority, tail) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let (userinfo, host) = authority.rsplit_once('@').ok_or_else(|| {
                anyhow::anyhow!("AMQP_PASSWORD_FILE needs the user in AMQP_URL (amqp://USER@host)")
            })?;
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            Ok(format!("{scheme}://{user}:{encoded}@{host}{tail}"))
        })
        .collect::<anyhow::Result<Vec<String>>>()
        .map(|v| v.join(","))
}

/// Settings every service process shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// RabbitMQ URL (`AMQP_URL`).
    pub amqp_url: String,
    /// Prefix for every exchange and queue name (`AMQP_PREFIX`); isolates test runs.
    pub amqp_prefix: String,
    /// How long an RPC caller waits for a reply (`RPC_TIMEOUT_MS`).
    pub rpc_timeout: Duration,
    /// Delay before a failed event's first redelivery; later ones double it
    /// (`RETRY_DELAY_MS`).
    pub retry_delay: Duration,
    /// The longest delay between two redeliveries (`RETRY_MAX_DELAY_MS`).
    pub retry_max_delay: Duration,
    /// How long after its first failure an event keeps being retried before it is
    /// dead-lettered (`RETRY_BUDGET_SECONDS`); longer than a database failover.
    pub retry_budget: Duration,
    /// Redeliveries after which an event is dead-lettered even within the budget
    /// (`MAX_RETRIES`).
    pub max_retries: u32,
    /// Unacknowledged deliveries per consumer (`PREFETCH`).
    pub prefetch: u16,
    /// `MONGODB_URL`, when set.
    pub mongodb_url: Option<String>,
    /// `DATA_DIR` for SQLite files.
    pub data_dir: PathBuf,
    /// `HEALTH_PORT`: when set, a backend service serves `/healthz` and `/readyz` there.
    pub health_port: Option<u16>,
}

impl CommonConfig {
    /// Reads the shared settings from the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            amqp_url: amqp_url_from_env()?,
            amqp_prefix: env_or("AMQP_PREFIX", ""),
            rpc_timeout: Duration::from_millis(env_parse("RPC_TIMEOUT_MS", 5000u64)?),
            retry_delay: Duration::from_millis(env_parse("RETRY_DELAY_MS", 1000u64)?),
            retry_max_delay: Duration::from_millis(env_parse("RETRY_MAX_DELAY_MS", 30_000u64)?),
            retry_budget: Duration::from_secs(env_parse("RETRY_BUDGET_SECONDS", 300u64)?),
            max_retries: env_parse("MAX_RETRIES", 100u32)?,
            prefetch: env_parse("PREFETCH", 64u16)?,
            mongodb_url: env_opt("MONGODB_URL"),
            data_dir: PathBuf::from(env_or("DATA_DIR", "./data")),
            health_port: env_opt("HEALTH_PORT")
                .map(|p| {
                    p.trim()
                        .parse()
                        .map_err(|e| anyhow::anyhow!("HEALTH_PORT={p:?} is invalid: {e}"))
                })
                .transpose()?,
        })
    }

    /// Settings for tests: a local broker, a given prefix, short delays, in-memory storage.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            amqp_url: env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            amqp_prefix: prefix.to_owned(),
            rpc_timeout: Duration::from_millis(3000),
            retry_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_millis(800),
            retry_budget: Duration::from_secs(60),
            max_retries: 3,
            prefetch: 32,
            mongodb_url: None,
            data_dir: PathBuf::from("./data"),
            health_port: None,
        }
    }

    /// The consumers' backoff and budget under these settings.
    pub fn retry_policy(&self) -> crate::messaging::RetryPolicy {
        crate::messaging::RetryPolicy {
            base: self.retry_delay,
            max_delay: self.retry_max_delay,
            budget: self.retry_budget,
            max_retries: self.max_retries,
        }
    }

    /// Which storage a service named `service` uses under these settings.
    pub fn storage_for(&self, service: &str) -> StorageConfig {
        match &self.mongodb_url {
            Some(url) => StorageConfig::Mongo {
                url: url.clone(),
                database: format!(
                    "{}stuffmart_{}",
                    self.amqp_prefix.replace('.', "_"),
                    service
                ),
            },
            None => StorageConfig::SqliteFile(self.data_dir.join(format!("{service}.db"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_amqp_password;

    #[test]
    fn a_password_file_fills_in_every_address_of_the_url() {
        assert_eq!(
            with_amqp_password("amqp://ms-user@rabbitmq:5672/%2f", "p@ss/w0rd").ok(),
            Some("amqp://ms-user:p%40ss%2Fw0rd@rabbitmq:5672/%2f".to_owned())
        );
        assert_eq!(
            with_amqp_password("amqp://u:old@a:5672/%2f,amqp://u@b:5673", "x").ok(),
            Some("amqp://u:x@a:5672/%2f,amqp://u:x@b:5673".to_owned())
        );
        assert!(with_amqp_password("amqp://rabbitmq:5672/%2f", "x").is_err());
    }
}
