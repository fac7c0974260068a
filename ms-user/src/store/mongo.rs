//! MongoDB backend of [`UserStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transaction that writes a user and its event together).

use super::{KeyRow, RefreshRow, StoreError, UserRow, UserStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use ms_common::events::{EventEnvelope, Role};
use ms_common::storage::mongo::{Db, Duplicate};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::to_db;
use std::sync::Arc;

/// Accounts in a MongoDB database.
#[derive(Clone)]
pub struct MongoUserStore {
    db: Db,
}

impl MongoUserStore {
    /// Connects and ensures the unique indexes.
    pub async fn open(url: &str, database: &str) -> anyhow::Result<Self> {
        let db = ms_common::storage::mongo::connect(url, database).await?;
        let unique = IndexOptions::builder().unique(true).build();
        db.collection::<Document>("users")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"email": 1})
                    .options(unique)
                    .build(),
            )
            .await?;
        db.collection::<Document>("refresh_tokens")
            .create_index(IndexModel::builder().keys(doc! {"familyId": 1}).build())
            .await?;
        Ok(Self { db })
    }

    fn users(&self) -> Collection<Document> {
        self.db.collection("users")
    }
    fn refresh(&self) -> Collection<Document> {
        self.db.collection("refresh_tokens")
    }
    fn keys(&self) -> Collection<Document> {
        self.db.collection("signing_keys")
    }
}

fn time(d: &Document, k: &str) -> Result<DateTime<Utc>, StoreError> {
    let s = d.get_str(k).map_err(|e| StoreError::Other(e.into()))?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Other(e.into()))
}

fn string(d: &Document, k: &str) -> Result<String, StoreError> {
    d.get_str(k)
        .map(str::to_owned)
        .map_err(|e| StoreError::Other(e.into()))
}

fn user_from(d: &Document) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: string(d, "_id")?,
        email: string(d, "email")?,
        password_hash: string(d, "passwordHash")?,
        role: if d.get_str("role").ok() == Some("admin") {
            Role::Admin
        } else {
            Role::User
        },
        version: u64::try_from(d.get_i64("version").unwrap_or(0)).unwrap_or(0),
        created_at: time(d, "createdAt")?,
    })
}

fn refresh_from(d: &Document) -> Result<RefreshRow, StoreError> {
    Ok(RefreshRow {
        token_hash: string(d, "_id")?,
        family_id: string(d, "familyId")?,
        user_id: string(d, "userId")?,
        expires_at: time(d, "expiresAt")?,
        rotated: d.get_bool("rotated").unwrap_or(false),
        revoked: d.get_bool("revoked").unwrap_or(false),
    })
}

fn refresh_doc(r: &RefreshRow) -> Document {
    doc! {
        "_id": &r.token_hash,
        "familyId": &r.family_id,
        "userId": &r.user_id,
        "expiresAt": to_db(&r.expires_at),
        "rotated": r.rotated,
        "revoked": r.revoked,
    }
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn create_user(&self, u: &UserRow, event: &EventEnvelope) -> Result<(), StoreError> {
        let user = doc! {
            "_id": &u.id,
            "email": &u.email,
            "passwordHash": &u.password_hash,
            "role": u.role.as_str(),
            "version": db_version(u.version),
            "createdAt": to_db(&u.created_at),
        };
        self.db
            .insert_with_event("users", &user, event)
            .await?
            .map_err(|Duplicate| StoreError::EmailTaken)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        self.users()
            .find_one(doc! {"email": email})
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        self.users()
            .find_one(doc! {"_id": id})
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn add_refresh(&self, r: &RefreshRow) -> Result<(), StoreError> {
        self.refresh().insert_one(refresh_doc(r)).await?;
        Ok(())
    }

    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        self.refresh()
            .find_one(doc! {"_id": hash})
            .await?
            .as_ref()
            .map(refresh_from)
            .transpose()
    }

    async fn rotate_refresh(&self, old_hash: &str, new: &RefreshRow) -> Result<bool, StoreError> {
        let rotated = self
            .db
            .transaction((self, old_hash, new), |session, ctx| {
                let (store, old_hash, new) = *ctx;
                async move {
                    // Compare-and-set: only an unrotated, unrevoked token can be exchanged,
                    // once.
                    let res = store
                        .refresh()
                        .update_one(
                            doc! {"_id": old_hash, "rotated": false, "revoked": false},
                            doc! {"$set": {"rotated": true}},
                        )
                        .session(&mut *session)
                        .await?;
                    if res.modified_count != 1 {
                        return Ok(Err(()));
                    }
                    store
                        .refresh()
                        .insert_one(refresh_doc(new))
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(()))
                }
                .boxed()
            })
            .await?;
        Ok(rotated.is_ok())
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        self.refresh()
            .update_many(
                doc! {"familyId": family_id},
                doc! {"$set": {"revoked": true}},
            )
            .await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let docs: Vec<Document> = self
            .keys()
            .find(doc! {})
            .sort(doc! {"createdAt": -1, "_id": -1})
            .await?
            .try_collect()
            .await?;
        docs.iter()
            .map(|d| {
                Ok(KeyRow {
                    kid: string(d, "_id")?,
                    seed_b64: string(d, "seed")?,
                    created_at: time(d, "createdAt")?,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        self.keys()
            .insert_one(
                doc! {"_id": &k.kid, "seed": &k.seed_b64, "createdAt": to_db(&k.created_at)},
            )
            .await?;
        Ok(())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}
