//! SQLite backend of [`UserStore`].

use super::{KeyRow, RefreshRow, StoreError, UserRow, UserStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::events::EventEnvelope;
use ms_common::storage::OutboxStore;
use ms_common::storage::sqlite::{self, Db, Migration, is_unique_violation};
use ms_common::time::to_db;
use sqlx::{FromRow, Row};
use std::path::Path;
use std::sync::Arc;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users, refresh tokens, signing keys",
        sql: "
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL,
    rotated INTEGER NOT NULL DEFAULT 0,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    seed TEXT NOT NULL,
    created_at TEXT NOT NULL
);",
    },
    Migration {
        version: 2,
        name: "refresh token rotation time and successor (grace window)",
        sql: "
ALTER TABLE refresh_tokens ADD COLUMN rotated_at TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor TEXT;",
    },
    Migration {
        version: 3,
        name: "display names (null: the e-mail's local part shows)",
        sql: "ALTER TABLE users ADD COLUMN display_name TEXT;",
    },
];

/// Accounts in a SQLite database.
#[derive(Clone)]
pub struct SqliteUserStore {
    db: Db,
}

impl SqliteUserStore {
    /// Opens the file at `path` (or private memory for `None`) and migrates it.
    pub async fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            db: sqlite::open(path, MIGRATIONS).await?,
        })
    }
}

async fn insert_refresh(
    conn: &mut sqlx::SqliteConnection,
    r: &RefreshRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, rotated, revoked, rotated_at, successor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.token_hash)
    .bind(&r.family_id)
    .bind(&r.user_id)
    .bind(to_db(&r.expires_at))
    .bind(r.rotated)
    .bind(r.revoked)
    .bind(r.rotated_at.as_ref().map(to_db))
    .bind(&r.successor)
    .execute(conn)
    .await?;
    Ok(())
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Other(e.into()))
}

#[async_trait]
impl UserStore for SqliteUserStore {
    async fn create_user(&self, u: &UserRow, event: &EventEnvelope) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO users (id, email, password_hash, role, display_name, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(u.role.as_str())
        .bind(&u.display_name)
        .bind(i64::try_from(u.version).unwrap_or(i64::MAX))
        .bind(to_db(&u.created_at))
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::EmailTaken),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        sqlite::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_user(
        &self,
        u: &UserRow,
        expected_version: u64,
        event: &EventEnvelope,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE users SET role = ?, display_name = ?, version = ? WHERE id = ? AND version = ?",
        )
        .bind(u.role.as_str())
        .bind(&u.display_name)
        .bind(ms_common::storage::db_version(u.version))
        .bind(&u.id)
        .bind(ms_common::storage::db_version(expected_version))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        sqlite::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE email = ?")
            .bind(email)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(UserRow::from_row).transpose()?)
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(UserRow::from_row).transpose()?)
    }

    async fn add_refresh(&self, r: &RefreshRow) -> Result<(), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        insert_refresh(&mut conn, r).await
    }

    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = ?")
            .bind(hash)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| {
            Ok(RefreshRow {
                token_hash: r.get("token_hash"),
                family_id: r.get("family_id"),
                user_id: r.get("user_id"),
                expires_at: parse_time(&r.get::<String, _>("expires_at"))?,
                rotated: r.get("rotated"),
                revoked: r.get("revoked"),
                rotated_at: r
                    .get::<Option<String>, _>("rotated_at")
                    .map(|t| parse_time(&t))
                    .transpose()?,
                successor: r.get("successor"),
            })
        })
        .transpose()
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET rotated = 1, rotated_at = ?, successor = ? WHERE token_hash = ? AND rotated = 0 AND revoked = 0",
        )
        .bind(to_db(&at))
        .bind(&new.token_hash)
        .bind(old_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn regrant_refresh(
        &self,
        old_hash: &str,
        successor: &str,
        new: &RefreshRow,
        rotated_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        // Times are stored in one fixed-width format, so text order is time order.
        let old = sqlx::query(
            "UPDATE refresh_tokens SET successor = ? WHERE token_hash = ? AND successor = ? AND rotated = 1 AND revoked = 0 AND rotated_at >= ?",
        )
        .bind(&new.token_hash)
        .bind(old_hash)
        .bind(successor)
        .bind(to_db(&rotated_since))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if old != 1 {
            return Ok(false);
        }
        let superseded = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ? AND rotated = 0 AND revoked = 0",
        )
        .bind(successor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if superseded != 1 {
            return Ok(false);
        }
        insert_refresh(&mut tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ?")
            .bind(family_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, seed, created_at FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRow {
                    kid: r.get("kid"),
                    seed_b64: r.get("seed"),
                    created_at: parse_time(&r.get::<String, _>("created_at"))?,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (kid, seed, created_at) VALUES (?, ?, ?)")
            .bind(&k.kid)
            .bind(&k.seed_b64)
            .bind(to_db(&k.created_at))
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn add_first_signing_key(&self, k: &KeyRow) -> Result<bool, StoreError> {
        // One statement under the write lock (`BEGIN IMMEDIATE`): the check and the insert
        // cannot interleave with another replica's.
        let mut tx = self.db.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO signing_keys (kid, seed, created_at) SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys)",
        )
        .bind(&k.kid)
        .bind(&k.seed_b64)
        .bind(to_db(&k.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}
