//! MongoDB backend of [`UserStore`] (used when `MONGODB_URL` is set; needs a replica set
//! for the transaction that writes a user and its event together).

use super::{KeyRow, RefreshRow, StoreError, UserRow, UserStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Document, doc, from_document, to_document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};
use ms_common::events::EventEnvelope;
use ms_common::storage::OutboxStore;
use ms_common::storage::db_version;
use ms_common::storage::mongo::{Db, Duplicate};
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
        // At most one key carries `first: true`: replicas racing to create the first key
        // set are decided by this index ([`UserStore::add_first_signing_key`]).
        db.collection::<Document>("signing_keys")
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"first": 1})
                    .options(IndexOptions::builder().unique(true).sparse(true).build())
                    .build(),
            )
            .await?;
        Ok(Self { db })
    }

    fn users(&self) -> Collection<Document> {
        self.db.collection("users")
    }
    /// In one transaction: each `(filter, update)` must change exactly one refresh token,
    /// then `new` is inserted; `false`, with nothing written, when one matched none.
    async fn change_then_insert(
        &self,
        changes: Vec<(Document, Document)>,
        new: Document,
    ) -> Result<bool, StoreError> {
        let done = self
            .db
            .transaction((self, &changes, &new), |session, ctx| {
                let (store, changes, new) = *ctx;
                async move {
                    for (filter, update) in changes {
                        let res = store
                            .refresh()
                            .update_one(filter.clone(), update.clone())
                            .session(&mut *session)
                            .await?;
                        if res.modified_count != 1 {
                            return Ok(Err(()));
                        }
                    }
                    store
                        .refresh()
                        .insert_one(new)
                        .session(&mut *session)
                        .await?;
                    Ok(Ok(()))
                }
                .boxed()
            })
            .await?;
        Ok(done.is_ok())
    }

    fn refresh(&self) -> Collection<Document> {
        self.db.collection("refresh_tokens")
    }
    fn keys(&self) -> Collection<Document> {
        self.db.collection("signing_keys")
    }
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn create_user(&self, u: &UserRow, event: &EventEnvelope) -> Result<(), StoreError> {
        self.db
            .insert_with_event("users", &to_document(u)?, event)
            .await?
            .map_err(|Duplicate| StoreError::EmailTaken)
    }

    async fn update_user(
        &self,
        u: &UserRow,
        expected_version: u64,
        event: &EventEnvelope,
    ) -> Result<bool, StoreError> {
        let filter = doc! {"_id": &u.id, "version": db_version(expected_version)};
        let update = doc! {"$set": {
            "role": u.role.as_str(),
            "displayName": u.display_name.as_deref(),
            "version": db_version(u.version),
        }};
        let done = self
            .db
            .transaction((self, &filter, &update, event), |session, ctx| {
                let (store, filter, update, event) = *ctx;
                async move {
                    let res = store
                        .users()
                        .update_one(filter.clone(), update.clone())
                        .session(&mut *session)
                        .await?;
                    if res.modified_count != 1 {
                        return Ok(Err(()));
                    }
                    ms_common::storage::mongo::enqueue(&store.db, session, event).await?;
                    Ok(Ok(()))
                }
                .boxed()
            })
            .await?;
        Ok(done.is_ok())
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(self
            .users()
            .find_one(doc! {"email": email})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        Ok(self
            .users()
            .find_one(doc! {"_id": id})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn add_refresh(&self, r: &RefreshRow) -> Result<(), StoreError> {
        self.refresh().insert_one(to_document(r)?).await?;
        Ok(())
    }

    async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshRow>, StoreError> {
        Ok(self
            .refresh()
            .find_one(doc! {"_id": hash})
            .await?
            .map(from_document)
            .transpose()?)
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let successor = new.token_hash.as_str();
        // Compare-and-set: only an unrotated, unrevoked token can be exchanged, once.
        let rotate = (
            doc! {"_id": old_hash, "rotated": false, "revoked": false},
            doc! {"$set": {"rotated": true, "rotatedAt": to_db(&at), "successor": successor}},
        );
        self.change_then_insert(vec![rotate], to_document(new)?)
            .await
    }

    async fn regrant_refresh(
        &self,
        old_hash: &str,
        successor: &str,
        new: &RefreshRow,
        rotated_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let new_hash = new.token_hash.as_str();
        // Times are stored in one fixed-width format: text order is time order.
        let repoint = (
            doc! {"_id": old_hash, "successor": successor, "rotated": true,
            "revoked": false, "rotatedAt": {"$gte": to_db(&rotated_since)}},
            doc! {"$set": {"successor": new_hash}},
        );
        let supersede = (
            doc! {"_id": successor, "rotated": false, "revoked": false},
            doc! {"$set": {"revoked": true}},
        );
        self.change_then_insert(vec![repoint, supersede], to_document(new)?)
            .await
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
        Ok(docs
            .into_iter()
            .map(from_document)
            .collect::<Result<_, _>>()?)
    }

    async fn add_signing_key(&self, k: &KeyRow) -> Result<(), StoreError> {
        self.keys().insert_one(to_document(k)?).await?;
        Ok(())
    }

    async fn add_first_signing_key(&self, k: &KeyRow) -> Result<bool, StoreError> {
        // A key stored before this index existed counts as the first one.
        if self.keys().find_one(doc! {}).await?.is_some() {
            return Ok(false);
        }
        let mut d = to_document(k)?;
        d.insert("first", true);
        match self.keys().insert_one(d).await {
            Ok(_) => Ok(true),
            Err(e) if ms_common::storage::mongo::is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::events::Role;
    use ms_common::time::from_db;

    fn at(s: &str) -> DateTime<Utc> {
        from_db(s).unwrap()
    }

    // Each test builds the document the hand-written mapper wrote (the expected layout),
    // checks the serde mapping writes exactly that and reads it back into the same row.

    #[test]
    fn user_document() {
        for (role, created_at) in [
            (Role::Admin, at("2026-11-23T20:00:00Z")),
            (Role::User, at("2026-11-23T20:00:00.123456Z")),
        ] {
            let u = UserRow {
                id: "u1".into(),
                email: "a@example.com".into(),
                password_hash: "$argon2id$v=19$x".into(),
                role,
                display_name: None,
                version: 3,
                created_at,
            };
            let old = doc! {
                "_id": &u.id,
                "email": &u.email,
                "passwordHash": &u.password_hash,
                "role": u.role.as_str(),
                "version": db_version(u.version),
                "createdAt": to_db(&u.created_at),
            };
            assert_eq!(to_document(&u).unwrap(), old);
            assert_eq!(from_document::<UserRow>(old).unwrap(), u);
        }
    }

    #[test]
    fn refresh_document() {
        for (rotated, revoked) in [(false, false), (true, false), (false, true)] {
            let r = RefreshRow {
                token_hash: "ab12".into(),
                family_id: "f1".into(),
                user_id: "u1".into(),
                expires_at: at("2026-12-01T08:30:00.000001Z"),
                rotated,
                revoked,
                rotated_at: None,
                successor: None,
            };
            let old = doc! {
                "_id": &r.token_hash,
                "familyId": &r.family_id,
                "userId": &r.user_id,
                "expiresAt": to_db(&r.expires_at),
                "rotated": r.rotated,
                "revoked": r.revoked,
            };
            assert_eq!(to_document(&r).unwrap(), old);
            assert_eq!(from_document::<RefreshRow>(old).unwrap(), r);
        }
        // A rotated token also records when and for which successor.
        let r = RefreshRow {
            token_hash: "ab12".into(),
            family_id: "f1".into(),
            user_id: "u1".into(),
            expires_at: at("2026-12-01T08:30:00.000001Z"),
            rotated: true,
            revoked: false,
            rotated_at: Some(at("2026-11-30T08:30:00Z")),
            successor: Some("cd34".into()),
        };
        let d = to_document(&r).unwrap();
        assert_eq!(
            d.get_str("rotatedAt").unwrap(),
            "2026-11-30T08:30:00.000000Z"
        );
        assert_eq!(d.get_str("successor").unwrap(), "cd34");
        assert_eq!(from_document::<RefreshRow>(d).unwrap(), r);
    }

    #[test]
    fn signing_key_document() {
        let k = KeyRow {
            kid: "k1".into(),
            seed_b64: "c2VlZA==".into(),
            created_at: at("2026-11-23T20:00:00.5Z"),
        };
        let old = doc! {"_id": &k.kid, "seed": &k.seed_b64, "createdAt": to_db(&k.created_at)};
        assert_eq!(to_document(&k).unwrap(), old);
        assert_eq!(from_document::<KeyRow>(old).unwrap(), k);
    }

    #[test]
    fn times_keep_the_fixed_format() {
        let d = to_document(&KeyRow {
            kid: "k".into(),
            seed_b64: String::new(),
            created_at: at("2026-11-23T20:00:00Z"),
        })
        .unwrap();
        assert_eq!(
            d.get_str("createdAt").unwrap(),
            "2026-11-23T20:00:00.000000Z"
        );
    }
}
