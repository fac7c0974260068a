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
        let v = match v {
            Value::Object(mut o) => match o.remove("data") {
                Some(data) => return Reply::Data(data),
                None => Value::Object(o),
            },
            other => other,
        };
        match serde_json::from_value::<ApiError>(v) {
            Ok(e) if !e.errors.is_empty() => Reply::Error(e),
            _ => Reply::Error(ApiError::internal_from("malformed reply")),
        }
    }
}

/// A reply as it came from a service, for the router to pass on without parsing it into a
/// tree and writing it out again: a `{"data":…}` reply stays the text it arrived as (checked
/// to be JSON of that shape); anything else is parsed into a [`Reply`].
#[derive(Debug)]
pub enum WireReply {
    /// The whole `{"data":…}` text.
    Data(Box<serde_json::value::RawValue>),
    /// An error, or a reply built here.
    Parsed(Reply),
}

impl WireReply {
    /// Reads a reply body; one that is not JSON in the contract's shape is a 500.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        /// The success shape: exactly one key, `data`.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DataOnly<'a> {
            #[serde(borrow, rename = "data")]
            _data: &'a serde_json::value::RawValue,
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return Self::Parsed(Reply::Error(ApiError::internal_from("reply is not UTF-8")));
        };
        if serde_json::from_str::<DataOnly<'_>>(&text).is_ok() {
            return match serde_json::value::RawValue::from_string(text) {
                Ok(raw) => Self::Data(raw),
                Err(e) => Self::Parsed(Reply::Error(ApiError::internal_from(e))),
            };
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => Self::Parsed(Reply::from_value(v)),
            Err(e) => Self::Parsed(Reply::Error(ApiError::internal_from(format!(
                "bad rpc reply: {e}"
            )))),
        }
    }

    /// The reply as a result, for callers that read the data.
    pub fn into_result(self) -> Result<Value, ApiError> {
        match self {
            Self::Data(raw) => match serde_json::from_str::<Value>(raw.get()) {
                Ok(v) => Reply::from_value(v).into_result(),
                Err(e) => Err(ApiError::internal_from(e)),
            },
            Self::Parsed(r) => r.into_result(),
        }
    }
}

impl From<Reply> for WireReply {
    fn from(r: Reply) -> Self {
        Self::Parsed(r)
    }
}

impl From<Value> for WireReply {
    fn from(v: Value) -> Self {
        Self::Parsed(Reply::Data(v))
    }
}

impl Serialize for WireReply {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Data(raw) => raw.serialize(s),
            Self::Parsed(r) => r.serialize(s),
        }
    }
}

impl Serialize for Reply {
    /// Writes the wire shape straight from the reply (no intermediate `Value`: a reply's
    /// data is serialised once, not copied first).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Reply::Data(v) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("data", v)?;
                m.end()
            }
            Reply::Error(e) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("status", &e.status)?;
                m.serialize_entry("errors", &e.errors)?;
                m.end()
            }
        }
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
    fn wire_replies_pass_data_through_and_parse_the_rest() {
        let text = r#"{"data":{"id":"a","tags":[1,2]}}"#;
        let wire = WireReply::from_bytes(text.as_bytes().to_vec());
        assert!(matches!(wire, WireReply::Data(_)), "{wire:?}");
        assert_eq!(
            serde_json::to_string(&wire).unwrap(),
            text,
            "the same text goes on"
        );
        assert_eq!(
            wire.into_result().unwrap(),
            serde_json::json!({"id":"a","tags":[1,2]})
        );
        let error = r#"{"status":404,"errors":[{"message":"Not found"}]}"#;
        let wire = WireReply::from_bytes(error.as_bytes().to_vec());
        assert!(
            matches!(wire, WireReply::Parsed(Reply::Error(_))),
            "{wire:?}"
        );
        assert_eq!(serde_json::to_string(&wire).unwrap(), error);
        let bad: [&[u8]; 4] = [b"{\"data\":", b"[1]", b"{}", b"\xff"];
        for bad in bad {
            let wire = WireReply::from_bytes(bad.to_vec());
            assert_eq!(wire.into_result().unwrap_err().status, 500, "{bad:?}");
        }
    }

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
        // Serialised directly, a reply has the same wire shape as its value.
        for reply in [&r, &ok] {
            assert_eq!(serde_json::to_value(reply).unwrap(), reply.to_value());
        }
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
