//! Transactional outbox: events are written in the same transaction as the change they
//! announce, and a relay publishes them with confirms and marks them sent.
//!
//! A crash between publish and mark re-publishes the event (at-least-once); consumers are
//! idempotent by record version, so the store sees each event applied exactly once.

use crate::events::EventEnvelope;
use crate::messaging::{Outgoing, Publisher};
use crate::shutdown::Shutdown;
use async_trait::async_trait;
use sqlx::{Row, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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
pub trait OutboxStore: super::ReplyLog {
    /// Oldest unsent events first.
    async fn pending(&self, limit: u32) -> anyhow::Result<Vec<OutboxRecord>>;
    /// Marks one event as published.
    async fn mark_sent(&self, id: &str) -> anyhow::Result<()>;
    /// How many events are still unsent (tests, readiness).
    async fn unsent_count(&self) -> anyhow::Result<u64>;
}

/// Writes an event inside the caller's SQLite transaction.
pub async fn enqueue_sqlite(
    conn: &mut SqliteConnection,
    env: &EventEnvelope,
) -> anyhow::Result<()> {
    let rec = OutboxRecord::from_envelope(env)?;
    sqlx::query("INSERT INTO outbox (id, routing_key, payload, correlation_id, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&rec.id)
        .bind(&rec.routing_key)
        .bind(&rec.payload)
        .bind(&rec.correlation_id)
        .bind(crate::time::to_db(&env.occurred_at))
        .execute(conn)
        .await?;
    Ok(())
}

/// The outbox table of a service's SQLite database.
#[derive(Clone)]
pub struct SqliteOutbox {
    pool: SqlitePool,
}

impl SqliteOutbox {
    /// The outbox in `pool` (its migrations include [`super::sqlite::OUTBOX_SQL`]).
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn pending(&self, limit: u32) -> anyhow::Result<Vec<OutboxRecord>> {
        let rows = sqlx::query(
            "SELECT id, routing_key, payload, correlation_id FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| OutboxRecord {
                id: r.get(0),
                routing_key: r.get(1),
                payload: r.get(2),
                correlation_id: r.get(3),
            })
            .collect())
    }

    async fn mark_sent(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE outbox SET sent_at = ? WHERE id = ?")
            .bind(crate::time::to_db(&chrono::Utc::now()))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn unsent_count(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl super::ReplyLog for SqliteOutbox {
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>> {
        super::replies::logged_reply_sqlite(&self.pool, request_id).await
    }

    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()> {
        super::replies::log_reply_sqlite(&self.pool, request_id, reply).await
    }
}

/// Publishes outbox events in order until shutdown; wake it with `notify` after a commit.
pub struct OutboxRelay {
    /// Where events wait.
    pub store: Arc<dyn OutboxStore>,
    /// Confirming publisher.
    pub publisher: Arc<Publisher>,
    /// The events exchange.
    pub exchange: String,
    /// Signalled by writers after they commit, so events go out at once.
    pub notify: Arc<Notify>,
}

impl OutboxRelay {
    /// Runs until shutdown; broker or store failures back off and retry.
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = crate::messaging::Backoff::default();
        loop {
            match self.flush().await {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.token.cancelled() => return,
                    }
                }
                Ok(_) => backoff.reset(),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.token.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Publishes everything pending now; returns how many went out.
    pub async fn flush(&self) -> anyhow::Result<usize> {
        let mut sent = 0;
        loop {
            let batch = self.store.pending(100).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for rec in batch {
                self.publisher
                    .publish(Outgoing {
                        exchange: self.exchange.clone(),
                        routing_key: rec.routing_key.clone(),
                        payload: rec.payload.clone().into_bytes(),
                        correlation_id: rec.correlation_id.clone(),
                        message_id: Some(rec.id.clone()),
                        ..Outgoing::default()
                    })
                    .await?;
                self.store.mark_sent(&rec.id).await?;
                sent += 1;
            }
        }
    }
}
