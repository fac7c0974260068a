//! Request/response over RabbitMQ: an RPC client on direct reply-to and an RPC server.
//!
//! Request body: `{"action":"stuff:get","token":"…","payload":{…}}` published to
//! `rpc.<svc>` with `reply_to = amq.rabbitmq.reply-to`, a fresh AMQP `correlation_id`
//! to match the reply, the tracing correlation id in `x-correlation-id`, the caller's
//! deadline in `x-deadline-ms`, and an `expiration` equal to the caller's timeout so a
//! stale request is never processed.
//! Reply body: the contract's ack shape, `{"data":…}` or `{"status":…,"errors":[…]}`.
//!
//! Every call has a globally unique request id (AMQP `message_id`, also the
//! `correlation_id`). Replies to mutating actions are logged under it before they are
//! sent, and a request RabbitMQ delivers again is answered from that log instead of being
//! carried out twice (see [`crate::storage::ReplyLog`]).
//!
//! The parts: `client` sends requests and matches replies, `server` consumes a service's
//! RPC queue and answers, `duplicates` keeps a redelivered request from being carried out
//! twice.

mod client;
mod duplicates;
mod server;

pub use client::{RpcClient, RpcKeySource};
pub use server::run_rpc_server;

use crate::auth::AuthUser;
use crate::contract::{Action, ServiceAction};
use crate::error::ApiError;
use crate::storage::ReplyLog;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// RabbitMQ's pseudo-queue for direct reply-to.
pub const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Request header: when the caller stops waiting, in Unix milliseconds (decimal string).
/// A service that queues work of its own (ms-user's password hashing) answers 429 before
/// it instead of leaving the caller to time out with a 503.
pub const DEADLINE_HEADER: &str = "x-deadline-ms";

/// What travels in an RPC request body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcRequest {
    /// `<service>:<action>`, e.g. `stuff:get`.
    pub action: String,
    /// The caller's access token, verified by the receiving service itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The action's input, as the client sent it.
    #[serde(default)]
    pub payload: Value,
}

impl RpcRequest {
    /// A request for `action` on behalf of `token`'s holder.
    pub fn new(action: impl Into<Action>, token: Option<String>, payload: Value) -> Self {
        Self {
            action: action.into().name().to_owned(),
            token,
            payload,
        }
    }
}

/// Decodes an action's payload; a payload of the wrong shape is a 400 `Invalid payload`.
/// (Make fields `Option` to report a missing field as a field error instead.)
pub fn parse_payload<T: serde::de::DeserializeOwned>(payload: Value) -> Result<T, ApiError> {
    serde_json::from_value(payload).map_err(|_| ApiError::bad_request("Invalid payload"))
}

/// Who is calling and in which request, as the RPC server established it.
#[derive(Debug, Clone, Default)]
pub struct RpcContext {
    /// The verified caller, when a valid token came with the request.
    pub user: Option<AuthUser>,
    /// The caller's verified token, so a service can ask another on the caller's behalf
    /// (and that service checks it again).
    pub token: Option<String>,
    /// Correlation id of the originating request.
    pub correlation_id: Option<String>,
    /// When the caller stops waiting ([`DEADLINE_HEADER`]), if it said.
    pub deadline: Option<SystemTime>,
}

impl RpcContext {
    /// Time left before the caller gives up: `None` when unknown, zero when past.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }

    /// The caller, or 401 when the action needs one.
    pub fn require_user(&self) -> Result<&AuthUser, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::unauthorized("Not authorized"))
    }
}

/// A service's RPC actions.
#[async_trait]
pub trait RpcHandler: Send + Sync + 'static {
    /// The actions this service answers; a request for any other action is a 404.
    type Action: ServiceAction;

    /// Answers one request.
    async fn handle(
        &self,
        ctx: RpcContext,
        action: Self::Action,
        payload: Value,
    ) -> Result<Value, ApiError>;

    /// Where replies to mutating actions ([`Action::mutates`]) are logged (none:
    /// redeliveries run again).
    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        None
    }
}
