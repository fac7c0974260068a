//! The account store: a repository trait with SQLite and MongoDB backends.
//!
//! Both pass the same conformance suite (`tests/store_conformance.rs`). Uniqueness of
//! e-mails and the single use of a refresh token are decided by the database.

pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::events::{EventEnvelope, Role, UserRecord};
use ms_common::storage::OutboxStore;
use std::sync::Arc;

/// A stored account (a row of the SQLite `users` table, column for field; serde gives the
/// layout of a MongoDB `users` document).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRow {
    /// Opaque id.
    #[serde(rename = "_id")]
    pub id: String,
    /// Normalised e-mail (unique).
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role at sign-up.
    pub role: Role,
    /// The name the user chose; `None` until they do (then the e-mail's local part shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Record version.
    #[sqlx(try_from = "i64")]
    #[serde(with = "ms_common::storage::version")]
    pub version: u64,
    /// Creation time.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    /// The name others see: the chosen one, else the e-mail's local part.
    pub fn shown_name(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| ms_common::contract::default_display_name(&self.email))
    }

    /// The account as events replicate it.
    pub fn record(&self) -> UserRecord {
        UserRecord {
            id: self.id.clone(),
            email: self.email.clone(),
            role: self.role,
            display_name: self.shown_name(),
            version: self.version,
        }
    }
}

/// A stored refresh token (only its hash is kept); serde gives the layout of a MongoDB
/// `refresh_tokens` document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRow {
    /// SHA-256 of the token, hex.
    #[serde(rename = "_id")]
    pub token_hash: String,
    /// All tokens descending from one sign-in share a family; reuse revokes it.
    pub family_id: String,
    /// Owner.
    pub user_id: String,
    /// Not accepted after this.
    #[serde(with = "ms_common::time::db")]
    pub expires_at: DateTime<Utc>,
    /// Already exchanged for a new token.
    pub rotated: bool,
    /// Revoked (sign-out, reuse detected, or superseded within the grace window).
    pub revoked: bool,
    /// When it was exchanged: the grace window on rotation counts from here.
    #[serde(
        default,
        with = "ms_common::time::db_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub rotated_at: Option<DateTime<Utc>>,
    /// Hash of the token it was exchanged for: the one a grace-window retry supersedes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub successor: Option<String>,
}

/// A stored Ed25519 signing key; serde gives the layout of a MongoDB `signing_keys` document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRow {
    /// Key id, put in token headers.
    #[serde(rename = "_id")]
    pub kid: String,
    /// Base64 of the 32-byte seed (private; never leaves this service).
    #[serde(rename = "seed")]
    pub seed_b64: String,
    /// Newest key signs.
    #[serde(with = "ms_common::time::db")]
    pub created_at: DateTime<Utc>,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The e-mail is already registered (unique index).
    #[error("email in use")]
    EmailTaken,
    /// Anything else (logged, shown as 500).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

ms_common::database_errors!(StoreError);

/// What ms-user needs from storage.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user and its `user.created` event atomically; `EmailTaken` on a duplicate.
    async fn create_user(&self, user: &UserRow, event: &EventEnvelope) -> Result<(), StoreError>;
    /// Writes `user`'s role, display name and version if the stored version is still
    /// `expected_version`, with its `user.updated` event, atomically; false if someone
    /// changed it meanwhile.
    async fn update_user(
        &self,
        user: &UserRow,
        expected_version: u64,
        event: &EventEnvelope,
    ) -> Result<bool, StoreError>;
    /// Finds by normalised e-mail.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError>;
    /// Finds by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError>;
    /// Stores a new refresh token.
    async fn add_refresh(&self, row: &RefreshRow) -> Result<(), StoreError>;
    /// Looks a refresh token up by hash.
    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError>;
    /// Marks `old_hash` rotated at `at` with `new` as its successor and stores `new`
    /// atomically; false if it was already rotated or revoked (the caller lost a race or is
    /// replaying).
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The grace-window exchange of an already rotated token, atomically: only if
    /// `old_hash` is unrevoked, was rotated at or after `rotated_since`, and its successor is
    /// still `successor` and unused, the successor is revoked, `new` becomes the successor
    /// and is stored. False otherwise (the successor was used: the caller is not the client
    /// whose reply was lost).
    async fn regrant_refresh(
        &self,
        old_hash: &str,
        successor: &str,
        new: &RefreshRow,
        rotated_since: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Revokes every token of a family.
    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError>;
    /// Signing keys, newest first.
    async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError>;
    /// Stores a new signing key.
    async fn add_signing_key(&self, key: &KeyRow) -> Result<(), StoreError>;
    /// Stores `key` only if the store holds no signing key yet, deciding in the database
    /// so that replicas starting together on an empty database create one key set; true
    /// if this call stored it.
    async fn add_first_signing_key(&self, key: &KeyRow) -> Result<bool, StoreError>;
    /// The outbox of this store, for the relay.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
}

/// Opens the store the configuration selects.
pub async fn open(
    storage: &ms_common::config::StorageConfig,
) -> anyhow::Result<Arc<dyn UserStore>> {
    ms_common::storage::open_store(
        storage,
        async |url, database| {
            Ok(Arc::new(mongo::MongoUserStore::open(url, database).await?) as Arc<dyn UserStore>)
        },
        async |path| Ok(Arc::new(sqlite::SqliteUserStore::open(path).await?) as Arc<dyn UserStore>),
    )
    .await
}
