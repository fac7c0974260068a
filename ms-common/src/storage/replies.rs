//! The RPC reply log: what a service answered to each mutating request, kept for a few
//! minutes so a request that RabbitMQ delivers again is answered, not carried out again.
//!
//! Why: the RPC server acknowledges a request after the handler's transaction committed
//! and the reply was published. When the service's broker connection drops in between,
//! RabbitMQ redelivers the request (flagged `redelivered`); without the log it would
//! create a second coupon, or answer 409 against the buyer's own new order. The server
//! logs the reply of every mutating action before it publishes it, and looks it up only
//! for redelivered requests, so ordinary requests pay one insert and reads pay nothing.
//!
//! A copy redelivered while the first is still running in the same process (the
//! connection dropped, the process did not) waits for the first one's reply in the RPC
//! server. The one window left: the log insert is its own statement after the handler's
//! commit, so a `kill -9` exactly between the two lets a redelivery run the request again.
//! Requests carry an `expiration` equal to the caller's timeout, so entries are only
//! needed for that long; they are pruned after [`RETENTION`].

use async_trait::async_trait;
use sqlx::{Row, SqlitePool};
use std::sync::atomic::{AtomicU64, Ordering};

/// How long a reply is kept (far longer than any RPC timeout).
pub const RETENTION: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Prune old entries once every this many inserts.
const PRUNE_EVERY: u64 = 256;

/// Inserts since start, to space out pruning.
static INSERTS: AtomicU64 = AtomicU64::new(0);

/// True once every [`PRUNE_EVERY`] inserts (and on the first).
fn prune_due() -> bool {
    INSERTS
        .fetch_add(1, Ordering::Relaxed)
        .is_multiple_of(PRUNE_EVERY)
}

/// Where a service keeps its replies to mutating RPC requests.
#[async_trait]
pub trait ReplyLog: Send + Sync + 'static {
    /// The reply (the contract's ack envelope as JSON text) logged for `request_id`.
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>>;
    /// Logs a reply; a second reply for the same request is ignored.
    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()>;
}

/// The reply log table every service's SQLite store includes.
pub const REPLIES_SQL: &str = "
CREATE TABLE rpc_replies (
    request_id TEXT PRIMARY KEY,
    reply TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX rpc_replies_created ON rpc_replies(created_at);
";

/// Logs a reply in a SQLite database whose migrations include [`REPLIES_SQL`].
pub async fn log_reply_sqlite(
    pool: &SqlitePool,
    request_id: &str,
    reply: &str,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    sqlx::query(
        "INSERT OR IGNORE INTO rpc_replies (request_id, reply, created_at) VALUES (?, ?, ?)",
    )
    .bind(request_id)
    .bind(reply)
    .bind(crate::time::to_db(&now))
    .execute(pool)
    .await?;
    if prune_due() {
        sqlx::query("DELETE FROM rpc_replies WHERE created_at < ?")
            .bind(crate::time::to_db(&(now - RETENTION)))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Reads a logged reply from a SQLite database.
pub async fn logged_reply_sqlite(
    pool: &SqlitePool,
    request_id: &str,
) -> anyhow::Result<Option<String>> {
    let row = sqlx::query("SELECT reply FROM rpc_replies WHERE request_id = ?")
        .bind(request_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Logs a reply in a MongoDB database (collection `rpc_replies`, `_id` = request id).
pub async fn log_reply_mongo(
    db: &mongodb::Database,
    request_id: &str,
    reply: &str,
) -> anyhow::Result<()> {
    use mongodb::bson::doc;
    let coll = db.collection::<mongodb::bson::Document>("rpc_replies");
    let now = chrono::Utc::now();
    let inserted = coll
        .insert_one(doc! {"_id": request_id, "reply": reply, "createdAt": crate::time::to_db(&now)})
        .await;
    match inserted {
        Err(e) if super::mongo::is_duplicate_key(&e) => {}
        other => {
            other?;
        }
    }
    if prune_due() {
        coll.delete_many(doc! {"createdAt": {"$lt": crate::time::to_db(&(now - RETENTION))}})
            .await?;
    }
    Ok(())
}

/// Reads a logged reply from a MongoDB database.
pub async fn logged_reply_mongo(
    db: &mongodb::Database,
    request_id: &str,
) -> anyhow::Result<Option<String>> {
    use mongodb::bson::doc;
    let coll = db.collection::<mongodb::bson::Document>("rpc_replies");
    Ok(coll
        .find_one(doc! {"_id": request_id})
        .await?
        .and_then(|d| d.get_str("reply").ok().map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::{self, Migration};

    #[tokio::test]
    async fn sqlite_log_keeps_the_first_reply_and_prunes_old_ones() {
        let pool = sqlite::open(
            None,
            &[Migration {
                version: 1,
                name: "replies",
                sql: REPLIES_SQL,
            }],
        )
        .await
        .unwrap();
        assert_eq!(logged_reply_sqlite(&pool, "a.1").await.unwrap(), None);
        log_reply_sqlite(&pool, "a.1", r#"{"data":1}"#)
            .await
            .unwrap();
        log_reply_sqlite(&pool, "a.1", r#"{"data":2}"#)
            .await
            .unwrap();
        assert_eq!(
            logged_reply_sqlite(&pool, "a.1").await.unwrap().as_deref(),
            Some(r#"{"data":1}"#),
            "a second reply for the same request is ignored"
        );
        // An entry older than the retention goes at the next pruning insert.
        let old = chrono::Utc::now() - RETENTION - chrono::TimeDelta::seconds(1);
        sqlx::query("UPDATE rpc_replies SET created_at = ? WHERE request_id = 'a.1'")
            .bind(crate::time::to_db(&old))
            .execute(&pool)
            .await
            .unwrap();
        for i in 0..PRUNE_EVERY {
            log_reply_sqlite(&pool, &format!("b.{i}"), "{}")
                .await
                .unwrap();
        }
        assert_eq!(logged_reply_sqlite(&pool, "a.1").await.unwrap(), None);
        assert!(logged_reply_sqlite(&pool, "b.0").await.unwrap().is_some());
    }
}
