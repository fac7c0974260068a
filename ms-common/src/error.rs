//! The one error shape of the contract: `{"errors":[{"message","field?"}]}` plus a status.
//!
//! Every layer converts its own error enum into [`ApiError`] at one place; the
//! same value is serialized into HTTP bodies, Socket.IO acks and RPC replies.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One entry of the envelope: a human message and, for input errors, the field it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// What went wrong, safe to show to a user.
    pub message: String,
    /// The input field the message is about (only for 400s).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub field: Option<String>,
}

/// A failure a client may see: HTTP-like status and the contract's error list.
#[derive(
    Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema, thiserror::Error,
)]
#[error("{status}: {}", self.first_message())]
pub struct ApiError {
    /// HTTP-like status (400, 401, 402, 403, 404, 409, 429, 500, 503).
    pub status: u16,
    /// At least one error; several for multi-field validation failures.
    pub errors: Vec<ErrorDetail>,
}

/// The generic message shown for anything unexpected; internals are logged, never sent.
pub const INTERNAL_MESSAGE: &str = "Something went wrong";

impl ApiError {
    /// An error with one message and no field.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![ErrorDetail {
                message: message.into(),
                field: None,
            }],
        }
    }
    /// 400 for one invalid input field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            errors: vec![ErrorDetail {
                message: message.into(),
                field: Some(field.to_owned()),
            }],
        }
    }
    /// 400 without a field (malformed payload as a whole).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    /// 401: not signed in or a bad token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }
    /// 402: the payment was declined.
    pub fn payment_required(message: impl Into<String>) -> Self {
        Self::new(402, message)
    }
    /// 403: signed in but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }
    /// 404: the thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    /// 409: a conflict with the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    /// 429: too many attempts.
    pub fn too_many_requests() -> Self {
        Self::new(429, "Too many requests")
    }
    /// 503: a service did not answer in time.
    pub fn unavailable() -> Self {
        Self::new(503, "Service unavailable, please try again")
    }
    /// 500 with the generic message; log the cause before calling this.
    pub fn internal() -> Self {
        Self::new(500, INTERNAL_MESSAGE)
    }
    /// 500 after logging the unexpected cause with its whole chain.
    pub fn internal_from(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::internal()
    }
    /// The first message, for logs and `Display`.
    pub fn first_message(&self) -> &str {
        self.errors
            .first()
            .map(|e| e.message.as_str())
            .unwrap_or("")
    }
    /// Folds several field errors into one 400 (all fields reported at once).
    pub fn merge(errors: Vec<ApiError>) -> Option<ApiError> {
        let mut it = errors.into_iter();
        let mut first = it.next()?;
        for e in it {
            first.errors.extend(e.errors);
        }
        Some(first)
    }
    /// The body sent over HTTP: `{"errors":[...]}`.
    pub fn body(&self) -> Value {
        serde_json::json!({ "errors": self.errors })
    }
}

/// What a Socket.IO ack and an RPC reply carry: `{data}` or `{status, errors}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Success with its payload.
    Data(Value),
    /// Failure in the contract's shape.
    Error(ApiError),
}

impl Reply {
    /// Wraps a handler result.
    pub fn from_result(r: Result<Value, ApiError>) -> Self {
        match r {
            Ok(v) => Reply::Data(v),
            Err(e) => Reply::Error(e),
        }
    }
    /// Back into a result.
    pub fn into_result(self) -> Result<Value, ApiError> {
        match self {
            Reply::Data(v) => Ok(v),
            Reply::Error(e) => Err(e),
        }
    }
    /// The JSON value sent on the wire.
    pub fn to_value(&self) -> Value {
        match self {
            Reply::Data(v) => serde_json::json!({ "data": v }),
            Reply::Error(e) => serde_json::json!({ "status": e.status, "errors": e.errors }),
        }
    }
    /// Parses a wire value; anything not in either shape is a 500.
    pub fn from_value(v: Value) -> Self {
        if let Some(data) = v.get("data") {
            return Reply::Data(data.clone());
        }
        match serde_json::from_value::<ApiError>(v) {
            Ok(e) if !e.errors.is_empty() => Reply::Error(e),
            _ => Reply::Error(ApiError::internal_from("malformed reply")),
        }
    }
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shapes() {
        let e = ApiError::field("email", "Email must be valid");
        assert_eq!(
            e.body(),
            serde_json::json!({"errors":[{"message":"Email must be valid","field":"email"}]})
        );
        let r = Reply::Error(ApiError::not_found("Not found"));
        assert_eq!(
            r.to_value(),
            serde_json::json!({"status":404,"errors":[{"message":"Not found"}]})
        );
        assert_eq!(Reply::from_value(r.to_value()), r);
        let ok = Reply::Data(serde_json::json!({"a":1}));
        assert_eq!(Reply::from_value(ok.to_value()), ok);
        assert_eq!(
            Reply::from_value(serde_json::json!(42))
                .into_result()
                .unwrap_err()
                .status,
            500
        );
    }

    #[test]
    fn merge_keeps_every_field() {
        let m =
            ApiError::merge(vec![ApiError::field("a", "x"), ApiError::field("b", "y")]).unwrap();
        assert_eq!(m.errors.len(), 2);
        assert!(ApiError::merge(vec![]).is_none());
    }
}
