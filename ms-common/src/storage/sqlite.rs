//! SQLite: one file per service under `DATA_DIR` (or private memory in tests), WAL, and
//! forward-only migrations recorded in `schema_migrations`.
//!
//! Write transactions start with `BEGIN IMMEDIATE` ([`begin_write`]) so concurrent writers
//! queue on the busy timeout instead of failing on a lock upgrade.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::time::Duration;

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

/// The outbox table every service's SQLite store includes (see [`super::outbox`]).
pub const OUTBOX_SQL: &str = "
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    correlation_id TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_unsent ON outbox(seq) WHERE sent_at IS NULL;
";

/// Opens (creating) the database at `path`, or a private in-memory one for `None`.
pub async fn open(path: Option<&Path>, migrations: &[Migration]) -> anyhow::Result<SqlitePool> {
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
    Ok(pool)
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

/// Starts a write transaction that takes the write lock at once.
pub async fn begin_write(pool: &SqlitePool) -> sqlx::Result<Transaction<'static, Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// True for a UNIQUE (or PRIMARY KEY) constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.is_unique_violation(),
        _ => false,
    }
}
