//! SQLite: one file per service under `DATA_DIR` (or private memory in tests), WAL, and
//! forward-only migrations recorded in `schema_migrations`.
//!
//! [`open`] adds the messaging layer's tables (outbox, RPC reply log) to every database
//! itself. Write transactions start with `BEGIN IMMEDIATE` ([`Db::begin_write`]) so
//! concurrent writers queue on the busy timeout instead of failing on a lock upgrade, and
//! their commit wakes the outbox relay.

use super::{OutboxRecord, OutboxStore, ReplyLog, prune_due};
use crate::events::EventEnvelope;
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// One schema step; `version` increases, `sql` may hold several statements.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Strictly increasing number.
    pub version: i64,
    /// What it does, for the log.
    pub name: &'static str,
    /// The statements (run in one transaction).
    pub sql: &'static str,
}

/// The outbox table every database gets (idempotent: older databases created it in
/// their own migration list).
const OUTBOX_SQL: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    correlation_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox(sent_at) WHERE sent_at IS NOT NULL;
";

/// The RPC reply log table every database gets (idempotent, as [`OUTBOX_SQL`]).
const REPLIES_SQL: &str = "
CREATE TABLE IF NOT EXISTS rpc_replies (
    request_id TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rpc_replies_created ON rpc_replies(created_at);
";

/// A service's SQLite database: the pool, and the signal its commits raise for the relay.
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
    committed: Arc<Notify>,
}

impl Db {
    /// The pool, for reads.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction that takes the write lock at once; its commit wakes the
    /// outbox relay.
    pub async fn begin_write(&self) -> sqlx::Result<WriteTx> {
        Ok(WriteTx {
            tx: begin_write(&self.pool).await?,
            committed: self.committed.clone(),
        })
    }

    /// The outbox and reply log in this database.
    pub fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(SqliteOutbox { db: self.clone() })
    }
}

/// A write transaction whose commit wakes the outbox relay (so no event waits for the
/// relay's next look because a writer forgot to wake it). Dropped without a commit, it
/// rolls back.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    committed: Arc<Notify>,
}

impl WriteTx {
    /// Commits, then wakes the relay.
    pub async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await?;
        self.committed.notify_one();
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// Opens (creating) the database at `path`, or a private in-memory one for `None`, applies
/// the service's `migrations`, then makes sure the outbox and reply-log tables exist.
pub async fn open(path: Option<&Path>, migrations: &[Migration]) -> anyhow::Result<Db> {
    let pool = match path {
        Some(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let opts = SqliteConnectOptions::new()
                .filename(p)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            SqlitePoolOptions::new()
                .max_connections(8)
                // A connection to a local file cannot go stale; the default ping before
                // each use is a round trip to sqlx's SQLite worker thread (a context switch
                // per query in ms-stuff's profile).
                .test_before_acquire(false)
                .connect_with(opts)
                .await?
        }
        None => {
            // One connection that never closes: a private memory database lives with it.
            let opts = SqliteConnectOptions::new()
                .in_memory(true)
                .foreign_keys(true);
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await?
        }
    };
    migrate(&pool, migrations).await?;
    let mut tx = begin_write(&pool).await?;
    for sql in [OUTBOX_SQL, REPLIES_SQL] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Db {
        pool,
        committed: Arc::new(Notify::new()),
    })
}

async fn migrate(pool: &SqlitePool, migrations: &[Migration]) -> anyhow::Result<()> {
    let mut tx = begin_write(pool).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.get::<i64, _>(0))
        .collect();
    for m in migrations {
        if applied.contains(&m.version) {
            continue;
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(m.sql))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
            .bind(m.version)
            .bind(m.name)
            .bind(crate::time::to_db(&chrono::Utc::now()))
            .execute(&mut *tx)
            .await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
    }
    tx.commit().await?;
    Ok(())
}

/// Starts a write transaction that takes the write lock at once (without waking the relay:
/// for the kit's own bookkeeping; services use [`Db::begin_write`]).
async fn begin_write(pool: &SqlitePool) -> sqlx::Result<Transaction<'static, Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// True for a UNIQUE (or PRIMARY KEY) constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}

/// Writes an event inside the caller's transaction: it is published once that commits.
pub async fn enqueue(conn: &mut SqliteConnection, env: &EventEnvelope) -> anyhow::Result<()> {
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

/// Applies an account event to a service's replica of account names (ms-stuff's sellers,
/// ms-order's buyers), in the caller's transaction, when it is newer than the version
/// held; true when it changed the name held. The service's migrations create the table:
/// `user_names (id TEXT PRIMARY KEY, display_name TEXT NOT NULL, version INTEGER NOT NULL)`.
pub async fn apply_user_name(
    conn: &mut SqliteConnection,
    user: &crate::events::UserRecord,
) -> sqlx::Result<bool> {
    let held: Option<(String, i64)> =
        sqlx::query_as("SELECT display_name, version FROM user_names WHERE id = ?")
            .bind(&user.id)
            .fetch_optional(&mut *conn)
            .await?;
    let version = super::db_version(user.version);
    if held.as_ref().is_some_and(|(_, v)| *v >= version) {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO user_names (id, display_name, version) VALUES (?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET display_name = excluded.display_name, version = excluded.version",
    )
    .bind(&user.id)
    .bind(&user.display_name)
    .bind(version)
    .execute(&mut *conn)
    .await?;
    Ok(held.is_none_or(|(name, _)| name != user.display_name))
}

/// The name the replica holds for `id`; when it holds none, `fallback` (learnt otherwise,
/// e.g. from a token's e-mail) is recorded at version 0, so any event replaces it.
pub async fn user_name_or(
    conn: &mut SqliteConnection,
    id: &str,
    fallback: &str,
) -> sqlx::Result<String> {
    sqlx::query("INSERT INTO user_names (id, display_name, version) VALUES (?, ?, 0) ON CONFLICT(id) DO NOTHING")
        .bind(id)
        .bind(fallback)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar("SELECT display_name FROM user_names WHERE id = ?")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
}

/// The outbox and RPC reply log of a service's SQLite database.
#[derive(Clone)]
pub struct SqliteOutbox {
    db: Db,
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn pending(&self, limit: u32) -> anyhow::Result<Vec<OutboxRecord>> {
        let rows = sqlx::query(
            "SELECT id, routing_key, payload, correlation_id FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.db.pool)
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
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    async fn prune_sent(&self, before: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?")
            .bind(crate::time::to_db(&before))
            .execute(&self.db.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn unsent_count(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.db.pool)
            .await?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn committed(&self) -> Arc<Notify> {
        self.db.committed.clone()
    }
}

#[async_trait]
impl ReplyLog for SqliteOutbox {
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT reply FROM rpc_replies WHERE request_id = ?")
            .bind(request_id)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()> {
        let now = chrono::Utc::now();
        sqlx::query(
            "INSERT OR IGNORE INTO rpc_replies (request_id, reply, created_at) VALUES (?, ?, ?)",
        )
        .bind(request_id)
        .bind(reply)
        .bind(crate::time::to_db(&now))
        .execute(&self.db.pool)
        .await?;
        if prune_due() {
            sqlx::query("DELETE FROM rpc_replies WHERE created_at < ?")
                .bind(crate::time::to_db(&(now - super::REPLY_RETENTION)))
                .execute(&self.db.pool)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_reply_log_keeps_the_first_reply_and_prunes_old_ones() {
        let db = open(None, &[]).await.unwrap();
        let log = db.outbox();
        assert_eq!(log.logged_reply("a.1").await.unwrap(), None);
        log.log_reply("a.1", r#"{"data":1}"#).await.unwrap();
        log.log_reply("a.1", r#"{"data":2}"#).await.unwrap();
        assert_eq!(
            log.logged_reply("a.1").await.unwrap().as_deref(),
            Some(r#"{"data":1}"#),
            "a second reply for the same request is ignored"
        );
        // An entry older than the retention goes at the next pruning insert.
        let old =
            chrono::Utc::now() - super::super::REPLY_RETENTION - chrono::TimeDelta::seconds(1);
        sqlx::query("UPDATE rpc_replies SET created_at = ? WHERE request_id = 'a.1'")
            .bind(crate::time::to_db(&old))
            .execute(db.pool())
            .await
            .unwrap();
        for i in 0..super::super::PRUNE_EVERY {
            log.log_reply(&format!("b.{i}"), "{}").await.unwrap();
        }
        assert_eq!(log.logged_reply("a.1").await.unwrap(), None);
        assert!(log.logged_reply("b.0").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn sent_events_past_the_retention_are_pruned_and_unsent_ones_never() {
        use crate::events::{Event, EventEnvelope, Role, UserRecord};
        let db = open(None, &[]).await.unwrap();
        let outbox = db.outbox();
        let event = |id: &str| {
            EventEnvelope::new(
                Event::UserCreated(UserRecord {
                    id: id.into(),
                    email: format!("{id}@example.com"),
                    role: Role::User,
                    display_name: id.into(),
                    version: 1,
                }),
                None,
            )
        };
        let (old, recent, unsent) = (event("old"), event("recent"), event("unsent"));
        let mut tx = db.begin_write().await.unwrap();
        for e in [&old, &recent, &unsent] {
            enqueue(&mut tx, e).await.unwrap();
        }
        tx.commit().await.unwrap();
        outbox.mark_sent(&old.id).await.unwrap();
        outbox.mark_sent(&recent.id).await.unwrap();
        let now = chrono::Utc::now();
        let long_ago = now - super::super::OUTBOX_RETENTION - chrono::TimeDelta::hours(1);
        sqlx::query("UPDATE outbox SET sent_at = ? WHERE id = ?")
            .bind(crate::time::to_db(&long_ago))
            .bind(&old.id)
            .execute(db.pool())
            .await
            .unwrap();
        // An unsent event older than anything is kept too.
        sqlx::query("UPDATE outbox SET created_at = ? WHERE id = ?")
            .bind(crate::time::to_db(&long_ago))
            .bind(&unsent.id)
            .execute(db.pool())
            .await
            .unwrap();
        let cutoff = now - super::super::OUTBOX_RETENTION;
        assert_eq!(outbox.prune_sent(cutoff).await.unwrap(), 1);
        assert_eq!(outbox.prune_sent(cutoff).await.unwrap(), 0);
        let left: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap();
        assert_eq!(left, vec![recent.id.clone(), unsent.id.clone()]);
        assert_eq!(outbox.unsent_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_commit_wakes_the_relay_and_reopening_keeps_the_kit_tables() {
        let dir = std::env::temp_dir().join(format!("kit-{}", uuid::Uuid::new_v4()));
        let path = dir.join("db.sqlite");
        let db = open(Some(&path), &[]).await.unwrap();
        let woken = db.outbox().committed();
        let waiting = woken.notified();
        let tx = db.begin_write().await.unwrap();
        tx.commit().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the commit woke the relay");
        drop(db);
        // Opening an existing database again (the kit's tables exist) is fine.
        let again = open(Some(&path), &[]).await.unwrap();
        assert_eq!(again.outbox().unsent_count().await.unwrap(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
