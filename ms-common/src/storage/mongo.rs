//! MongoDB, every service's backend when `MONGODB_URL` is set.
//!
//! The outbox lives in an `outbox` collection written inside the same multi-document
//! transaction as the change (MongoDB must run as a replica set, as docker compose does);
//! the RPC reply log in `rpc_replies`. [`Db::transaction`] runs a change in a transaction
//! with the driver's retry rules and wakes the outbox relay when it commits.

use super::{OutboxRecord, OutboxStore, ReplyLog, prune_due};
use crate::events::EventEnvelope;
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, TryStreamExt};
use mongodb::bson::{Document, doc};
use mongodb::{Client, ClientSession, Collection, Database};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A service's MongoDB database and the signal its commits raise for the outbox relay.
/// It dereferences to the driver's [`Database`] for reads.
#[derive(Clone)]
pub struct Db {
    database: Database,
    committed: Arc<Notify>,
}

impl std::ops::Deref for Db {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.database
    }
}

/// Carries a caller's own refusal through the driver's transaction runner.
struct Refusal<E>(Mutex<Option<E>>);

impl Db {
    /// Runs `body` in a transaction with the driver's convenient transaction API
    /// (`start_transaction().and_run`), the one way every service writes to MongoDB:
    /// - `Ok(Ok(v))` commits (an unknown commit result is retried) and wakes the outbox
    ///   relay;
    /// - `Ok(Err(refusal))` aborts and returns the refusal, never retried;
    /// - `Err(driver error)` aborts; a transient one (write conflict, election) runs
    ///   `body` again, for up to two minutes, as the driver's rules say.
    ///
    /// `body` gets the session and `context` (what it needs from the caller, often a
    /// tuple of references) and returns a boxed future, as the driver requires.
    pub async fn transaction<C, T, E, F>(
        &self,
        context: C,
        mut body: F,
    ) -> mongodb::error::Result<Result<T, E>>
    where
        C: Send,
        T: Send + 'static,
        E: Send + 'static,
        F: for<'b> FnMut(
                &'b mut ClientSession,
                &'b mut C,
            ) -> BoxFuture<'b, mongodb::error::Result<Result<T, E>>>
            + Send,
    {
        let mut session = self.database.client().start_session().await?;
        let run = session
            .start_transaction()
            .and_run(context, |s, c| {
                let attempt = body(s, c);
                async move {
                    match attempt.await? {
                        Ok(v) => Ok(v),
                        Err(refusal) => Err(mongodb::error::Error::custom(Arc::new(Refusal(
                            Mutex::new(Some(refusal)),
                        )))),
                    }
                }
                .boxed()
            })
            .await;
        match run {
            Ok(v) => {
                self.committed.notify_one();
                Ok(Ok(v))
            }
            Err(err) => match err
                .get_custom::<Arc<Refusal<E>>>()
                .and_then(|r| r.0.lock().ok().and_then(|mut slot| slot.take()))
            {
                Some(refusal) => Ok(Err(refusal)),
                None => Err(err),
            },
        }
    }

    /// Inserts `doc` into `collection` and writes `event` to the outbox, in one
    /// transaction: the most common write. `Ok(Err(Duplicate))` when a unique index
    /// refused the document (nothing is written then).
    pub async fn insert_with_event(
        &self,
        collection: &str,
        doc: &Document,
        event: &EventEnvelope,
    ) -> mongodb::error::Result<Result<(), Duplicate>> {
        let coll = self.database.collection::<Document>(collection);
        self.transaction((self, &coll, doc, event), |session, ctx| {
            let (db, coll, doc, event) = *ctx;
            async move {
                match coll.insert_one(doc).session(&mut *session).await {
                    Err(e) if is_duplicate_key(&e) => return Ok(Err(Duplicate)),
                    other => other?,
                };
                enqueue(db, session, event).await?;
                Ok(Ok(()))
            }
            .boxed()
        })
        .await
    }

    /// The outbox and reply log in this database.
    pub fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(MongoOutbox {
            db: self.clone(),
            coll: self.database.collection("outbox"),
        })
    }
}

/// A unique index refused a document ([`Db::insert_with_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duplicate;

/// Connects and returns the service's database.
pub async fn connect(url: &str, database: &str) -> anyhow::Result<Db> {
    let client = Client::with_uri_str(url).await?;
    let db = client.database(database);
    db.run_command(doc! {"ping": 1}).await?;
    // The relay's query (unsent, in id order) and the pruning of sent events both use it.
    db.collection::<Document>("outbox")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"sentAt": 1, "_id": 1})
                .build(),
        )
        .await?;
    Ok(Db {
        database: db,
        committed: Arc::new(Notify::new()),
    })
}

/// True for a duplicate-key (unique index) violation, whichever way the driver reports it.
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        ErrorKind::InsertMany(im) => im
            .write_errors
            .as_ref()
            .is_some_and(|v| v.iter().any(|w| w.code == 11000)),
        _ => e.to_string().contains("E11000"),
    }
}

/// Writes an event inside the caller's transaction: it is published once that commits.
pub async fn enqueue(
    db: &Database,
    session: &mut ClientSession,
    env: &EventEnvelope,
) -> mongodb::error::Result<()> {
    let rec = OutboxRecord::from_envelope(env)
        .map_err(|e| mongodb::error::Error::custom(Arc::new(e.to_string())))?;
    db.collection::<Document>("outbox")
        .insert_one(doc! {
            "_id": &rec.id,
            "routingKey": &rec.routing_key,
            "payload": &rec.payload,
            "correlationId": rec.correlation_id.as_deref(),
            "createdAt": crate::time::to_db(&env.occurred_at),
            "sentAt": mongodb::bson::Bson::Null,
        })
        .session(session)
        .await?;
    Ok(())
}

/// The collection of a service's replica of account names (`_id`, `displayName`,
/// `version`), fed by `user.created` and `user.updated`.
pub const USER_NAMES: &str = "user_names";

/// Applies an account event to the name replica in the session's transaction, when it is
/// newer than the version held; true when it changed the name held. (Read, then a
/// compare-and-set: a concurrent writer makes the transaction conflict and run again.)
pub async fn apply_user_name(
    db: &Database,
    session: &mut ClientSession,
    user: &crate::events::UserRecord,
) -> mongodb::error::Result<bool> {
    let coll = db.collection::<Document>(USER_NAMES);
    let version = super::db_version(user.version);
    let held = coll
        .find_one(doc! {"_id": &user.id})
        .session(&mut *session)
        .await?;
    match held {
        Some(d) => {
            let held_version = d.get_i64("version").unwrap_or(0);
            if held_version >= version {
                return Ok(false);
            }
            coll.update_one(
                doc! {"_id": &user.id, "version": held_version},
                doc! {"$set": {"displayName": &user.display_name, "version": version}},
            )
            .session(&mut *session)
            .await?;
            Ok(d.get_str("displayName").ok() != Some(user.display_name.as_str()))
        }
        None => {
            coll.insert_one(
                doc! {"_id": &user.id, "displayName": &user.display_name, "version": version},
            )
            .session(&mut *session)
            .await?;
            Ok(true)
        }
    }
}

/// The name the replica holds for `id`, in the session's transaction; when it holds none,
/// `fallback` is recorded at version 0, so any event replaces it.
pub async fn user_name_or(
    db: &Database,
    session: &mut ClientSession,
    id: &str,
    fallback: &str,
) -> mongodb::error::Result<String> {
    let coll = db.collection::<Document>(USER_NAMES);
    if let Some(d) = coll
        .find_one(doc! {"_id": id})
        .session(&mut *session)
        .await?
        && let Ok(name) = d.get_str("displayName")
    {
        return Ok(name.to_owned());
    }
    coll.insert_one(doc! {"_id": id, "displayName": fallback, "version": 0_i64})
        .session(&mut *session)
        .await?;
    Ok(fallback.to_owned())
}

/// The outbox and RPC reply log of a service's MongoDB database.
#[derive(Clone)]
pub struct MongoOutbox {
    db: Db,
    coll: Collection<Document>,
}

#[async_trait]
impl ReplyLog for MongoOutbox {
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>> {
        let coll = self.db.collection::<Document>("rpc_replies");
        Ok(coll
            .find_one(doc! {"_id": request_id})
            .await?
            .and_then(|d| d.get_str("reply").ok().map(str::to_owned)))
    }

    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()> {
        let coll = self.db.collection::<Document>("rpc_replies");
        let now = chrono::Utc::now();
        let inserted = coll
            .insert_one(
                doc! {"_id": request_id, "reply": reply, "createdAt": crate::time::to_db(&now)},
            )
            .await;
        match inserted {
            Err(e) if is_duplicate_key(&e) => {}
            other => {
                other?;
            }
        }
        if prune_due() {
            let cutoff = crate::time::to_db(&(now - super::REPLY_RETENTION));
            coll.delete_many(doc! {"createdAt": {"$lt": cutoff}})
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for MongoOutbox {
    async fn pending(&self, limit: u32) -> anyhow::Result<Vec<OutboxRecord>> {
        // Event ids are UUIDv7 strings: sorting by `_id` is sorting by creation time.
        let docs: Vec<Document> = self
            .coll
            .find(doc! {"sentAt": mongodb::bson::Bson::Null})
            .sort(doc! {"_id": 1})
            .limit(i64::from(limit))
            .await?
            .try_collect()
            .await?;
        docs.into_iter()
            .map(|d| {
                Ok(OutboxRecord {
                    id: d.get_str("_id")?.to_owned(),
                    routing_key: d.get_str("routingKey")?.to_owned(),
                    payload: d.get_str("payload")?.to_owned(),
                    correlation_id: d.get_str("correlationId").ok().map(str::to_owned),
                })
            })
            .collect()
    }

    async fn mark_sent(&self, id: &str) -> anyhow::Result<()> {
        self.coll
            .update_one(
                doc! {"_id": id},
                doc! {"$set": {"sentAt": crate::time::to_db(&chrono::Utc::now())}},
            )
            .await?;
        Ok(())
    }

    async fn prune_sent(&self, before: chrono::DateTime<chrono::Utc>) -> anyhow::Result<u64> {
        let cutoff = crate::time::to_db(&before);
        let done = self
            .coll
            .delete_many(doc! {"sentAt": {"$ne": mongodb::bson::Bson::Null, "$lt": cutoff}})
            .await?;
        Ok(done.deleted_count)
    }

    async fn unsent_count(&self) -> anyhow::Result<u64> {
        Ok(self
            .coll
            .count_documents(doc! {"sentAt": mongodb::bson::Bson::Null})
            .await?)
    }

    fn committed(&self) -> Arc<Notify> {
        self.db.committed.clone()
    }
}
