//! Storage shared by every service: SQLite (default) and MongoDB (`MONGODB_URL`) helpers,
//! the transactional outbox and the RPC reply log.

pub mod mongo;
pub mod outbox;
pub mod replies;
pub mod sqlite;

pub use outbox::{OutboxRecord, OutboxRelay, OutboxStore, SqliteOutbox};
pub use replies::ReplyLog;
