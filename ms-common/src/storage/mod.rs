//! Storage shared by every service: SQLite (default) and MongoDB (`MONGODB_URL`) helpers,
//! and the transactional outbox.

pub mod mongo;
pub mod outbox;
pub mod sqlite;

pub use outbox::{OutboxRecord, OutboxRelay, OutboxStore, SqliteOutbox};
