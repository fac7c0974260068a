//! MongoDB helpers shared by every service's Mongo backend (used when `MONGODB_URL` is set).
//!
//! The outbox lives in an `outbox` collection written inside the same multi-document
//! transaction as the change (MongoDB must run as a replica set, as docker compose does).

use super::outbox::{OutboxRecord, OutboxStore};
use crate::events::EventEnvelope;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::{Client, ClientSession, Collection, Database};

/// Connects and returns the service's database.
pub async fn connect(url: &str, database: &str) -> anyhow::Result<Database> {
    let client = Client::with_uri_str(url).await?;
    let db = client.database(database);
    db.run_command(doc! {"ping": 1}).await?;
    Ok(db)
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

/// Writes an event inside the caller's transaction.
pub async fn enqueue(
    db: &Database,
    session: &mut ClientSession,
    env: &EventEnvelope,
) -> anyhow::Result<()> {
    let rec = OutboxRecord::from_envelope(env)?;
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

/// The outbox collection of a service's MongoDB database.
#[derive(Clone)]
pub struct MongoOutbox {
    db: Database,
    coll: Collection<Document>,
}

impl MongoOutbox {
    /// The outbox in `db`.
    pub fn new(db: &Database) -> Self {
        Self {
            db: db.clone(),
            coll: db.collection("outbox"),
        }
    }
}

#[async_trait]
impl super::ReplyLog for MongoOutbox {
    async fn logged_reply(&self, request_id: &str) -> anyhow::Result<Option<String>> {
        super::replies::logged_reply_mongo(&self.db, request_id).await
    }

    async fn log_reply(&self, request_id: &str, reply: &str) -> anyhow::Result<()> {
        super::replies::log_reply_mongo(&self.db, request_id, reply).await
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

    async fn unsent_count(&self) -> anyhow::Result<u64> {
        Ok(self
            .coll
            .count_documents(doc! {"sentAt": mongodb::bson::Bson::Null})
            .await?)
    }
}
