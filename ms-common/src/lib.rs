//! What every StuffMart service shares.
//!
//! Layout:
//! - [`error`]: the contract's error envelope ([`ApiError`]) and the ack/RPC reply shape.
//! - [`events`]: the typed event catalogue and the version rule replicas follow.
//! - [`messaging`]: RabbitMQ topology, connection, confirming publisher, retrying consumer,
//!   RPC client and server.
//! - [`storage`]: SQLite and MongoDB helpers and the transactional outbox.
//! - [`files`]: the object store for delivered files and signed download links.
//! - [`auth`]: EdDSA JWT verification with keys fetched over RPC.
//! - [`money`]: the one currency of every price and charge.
//! - [`config`], [`telemetry`], [`shutdown`]: process plumbing.
//! - [`service`]: the start-up and shutdown sequence every backend service runs.
//!
//! Data flow: a request arrives as an RPC message → the service's handler changes its
//! store and writes the event to the outbox in one transaction → the relay publishes it →
//! other services' consumers apply it by version → ms-router pushes it to sockets.

pub mod auth;
pub mod config;
pub mod contract;
pub mod error;
pub mod events;
pub mod files;
pub mod messaging;
pub mod money;
pub mod pdf;
pub mod service;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod time;

pub use error::{ApiError, Reply, WireReply};
