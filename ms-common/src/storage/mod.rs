//! Storage every service shares, split by backend: [`sqlite`] (the default, one file per
//! service under `DATA_DIR`) and [`mongo`] (`MONGODB_URL`). Each backend brings the
//! messaging layer's own rows — the transactional outbox and the RPC reply log — so a
//! service's store only declares its own tables. The relay that publishes the outbox
//! lives with the messaging code (`messaging::relay`).

pub mod mongo;
pub mod sqlite;

use crate::config::StorageConfig;
use crate::events::EventEnvelope;
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::Notify;

pub use sqlite::SqliteOutbox;

/// How long a logged RPC reply is kept (far longer than any RPC timeout).
pub const REPLY_RETENTION: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// How long a published event stays in the outbox (to look at by hand after an incident);
/// older sent events are deleted.
pub const OUTBOX_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// How often the relay deletes sent events past [`OUTBOX_RETENTION`].
pub const OUTBOX_PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Prune old replies once every this many inserts.
const PRUNE_EVERY: u64 = 256;

/// Reply-log inserts since start, to space out pruning.
static REPLY_INSERTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// True once every [`PRUNE_EVERY`] reply-log inserts (and on the first).
fn prune_due() -> bool {
    REPLY_INSERTS
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(PRUNE_EVERY)
}

/// Where a service keeps its replies to mutating RPC requests, so a request RabbitMQ
/// delivers again is answered, not carried out again.
///
/// Why: the RPC server acknowledges a request after the handler's transaction committed
/// and the reply was published. When the service's broker connection drops in between,
/// RabbitMQ redelivers the request (flagged `redelivered`); without the log it would
/// create a second coupon, or answer 409 against the buyer's own new order. The server
/// logs the reply of every mutating action before it publishes it, and looks it up only
/// for redelivered requests, so ordinary requests pay one insert and reads pay nothing.
///
/// A copy redelivered while the first is still running in the same process (the
/// connection dropped, the process did not) waits for the first one's reply in the RPC
/// server. The one window left: the log insert is its own statement after the handler's
/// commit, so a `kill -9` exactly between the two lets a redelivery run the request again.
/// Requests carry an `expiration` equal to the caller's timeout, so entries are only
/// needed for that long; they are pruned after [`REPLY_RETENTION`].
#[async_trait]
pub trait ReplyLog: Send + Sync + 'static {
    /// The reply (the contract's ack envelope as JSON text) logged for `request_id`.
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>>;
    /// Logs a reply; a second reply for the same request is ignored.
    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()>;
}

/// One stored, not yet published event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Event id (also the AMQP message id).
    pub id: String,
    /// Routing key (event type).
    pub routing_key: String,
    /// Serialized envelope.
    pub payload: String,
    /// Correlation id of the request that caused it.
    pub correlation_id: Option<String>,
}

impl OutboxRecord {
    /// Serializes an envelope into a record.
    pub fn from_envelope(env: &EventEnvelope) -> serde_json::Result<Self> {
        Ok(Self {
            id: env.id.clone(),
            routing_key: env.event.routing_key().to_owned(),
            payload: serde_json::to_string(env)?,
            correlation_id: env.correlation_id.clone(),
        })
    }
}

/// What the relay needs from a store; the same tables' owner also keeps the RPC reply log
/// (both are the messaging layer's rows inside a service's database).
#[async_trait]
pub trait OutboxStore: ReplyLog {
    /// Oldest unsent events first.
    async fn pending(&self, limit: u32) -> anyhow::Result<Vec<OutboxRecord>>;
    /// Marks one event as published.
    async fn mark_sent(&self, id: &str) -> anyhow::Result<()>;
    /// How many events are still unsent (tests, readiness).
    async fn unsent_count(&self) -> anyhow::Result<u64>;
    /// Deletes events sent before `before` (never an unsent one); how many went. The
    /// relay runs it every [`OUTBOX_PRUNE_EVERY`] so the outbox does not grow forever.
    async fn prune_sent(&self, before: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64>;
    /// Signalled after every commit of the database, so the relay publishes at once and
    /// no writer has to remember to wake it.
    fn committed(&self) -> Arc<Notify>;
}

/// A record version (`u64` in Rust) as the databases store it (`i64`); versions never
/// come near the limit, so a larger one saturates instead of wrapping.
pub fn db_version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `#[serde(with = "ms_common::storage::version")]`: a record version in a MongoDB document,
/// stored as [`db_version`] stores it (an `i64`) and read back refusing negative values.
pub mod version {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes [`super::db_version`].
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(super::db_version(*v))
    }

    /// Reads a non-negative integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        u64::try_from(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "ms_common::storage::optional_version")]`: an optional record version
/// in a MongoDB document ([`version`]'s form, or absent / null).
pub mod optional_version {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes [`super::db_version`], or null.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&super::db_version(*v)),
            None => s.serialize_none(),
        }
    }

    /// Reads a non-negative integer, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        Option::<i64>::deserialize(d)?
            .map(|v| u64::try_from(v).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Opens a service's store on the configured backend: the one place that chooses between
/// MongoDB, a SQLite file and private memory.
pub async fn open_store<T: ?Sized>(
    cfg: &StorageConfig,
    mongo: impl AsyncFnOnce(&str, &str) -> anyhow::Result<Arc<T>>,
    sqlite: impl AsyncFnOnce(Option<&Path>) -> anyhow::Result<Arc<T>>,
) -> anyhow::Result<Arc<T>> {
    match cfg {
        StorageConfig::Mongo { url, database } => mongo(url, database).await,
        StorageConfig::SqliteFile(p) => sqlite(Some(p)).await,
        StorageConfig::SqliteMemory => sqlite(None).await,
    }
}

/// Gives a service's store error enum its conversions from both database drivers' errors
/// (and from BSON document (de)serialisation errors), into its `Other(anyhow::Error)`
/// variant (one definition instead of one per service).
#[macro_export]
macro_rules! database_errors {
    ($error:ty) => {
        impl From<sqlx::Error> for $error {
            fn from(e: sqlx::Error) -> Self {
                Self::Other(e.into())
            }
        }

        impl From<mongodb::error::Error> for $error {
            fn from(e: mongodb::error::Error) -> Self {
                Self::Other(e.into())
            }
        }

        impl From<mongodb::bson::ser::Error> for $error {
            fn from(e: mongodb::bson::ser::Error) -> Self {
                Self::Other(e.into())
            }
        }

        impl From<mongodb::bson::de::Error> for $error {
            fn from(e: mongodb::bson::de::Error) -> Self {
                Self::Other(e.into())
            }
        }
    };
}
