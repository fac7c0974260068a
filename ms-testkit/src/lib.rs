//! Test kit for StuffMart: a small but real Socket.IO v5 client, per-test broker
//! isolation ([`TestEnv`]), and a TCP proxy that can cut a process off the broker
//! ([`TcpProxy`]).
//!
//! [`SioClient`] speaks Engine.IO v4 over a plain websocket (no long-polling),
//! which is exactly what browsers end up using against `ms-router`. It exists so
//! integration tests (and later a load generator) exercise the real wire
//! protocol instead of mocking socketioxide.
//!
//! A background task owns the websocket: it answers Engine.IO heartbeats,
//! routes acks to the matching [`SioClient::emit_with_ack`] call and buffers
//! server pushes for [`SioClient::next_event`] / [`SioClient::wait_for`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), ms_testkit::SioError> {
//! use std::time::Duration;
//! use ms_testkit::SioClient;
//! use serde_json::json;
//!
//! let client = SioClient::connect("http://127.0.0.1:3000", Some("jwt")).await?;
//! let answer = client
//!     .emit_with_ack("echo", json!({"hello": "world"}), Duration::from_secs(2))
//!     .await?;
//! assert_eq!(answer, json!({"hello": "world"}));
//! let news = client.next_event("news", Duration::from_secs(2)).await?;
//! # let _ = news;
//! client.disconnect().await?;
//! # Ok(())
//! # }
//! ```

pub mod amqp_users;
pub mod env;
pub mod packet;
pub mod proxy;
mod sio;

pub use amqp_users::AmqpUsers;
pub use env::{TestEnv, eventually, queue_ready};
pub use proxy::TcpProxy;
pub use sio::SioClient;

/// Everything that can go wrong talking to a Socket.IO server, so tests can assert on the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SioError {
    /// The transport (TCP / websocket upgrade / Engine.IO session) could not be established.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The server refused the namespace connection with this `connect_error` message.
    #[error("connection refused by server: {0}")]
    ConnectError(String),
    /// The awaited ack, push or handshake step did not arrive before the deadline.
    #[error("timed out")]
    Timeout,
    /// The connection is gone (server `41`, websocket closed, or client disconnected).
    #[error("disconnected")]
    Disconnected,
    /// The server sent something that is not valid Engine.IO / Socket.IO.
    #[error("protocol error: {0}")]
    Protocol(String),
}
