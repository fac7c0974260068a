//! ms-order's inputs, validated on construction, and its refusal messages: an
//! [`OrderRef`] or a [`NewOrder`] that exists names a plausible id.

use ms_common::ApiError;
use ms_common::contract::limits;
use ms_common::messaging::parse_payload;
use serde::Deserialize;
use serde_json::Value;

/// 409 while another active order holds the stuff (exact contract text).
pub const HELD: &str = "The stuff is being checked out by someone else, please come back later";
/// 409 for sold stuff (exact contract text).
pub const SOLD: &str = "This stuff has already been sold";
/// 409 for stuff with no file and no note (exact contract text).
pub const NOTHING_TO_DELIVER: &str = "This stuff has nothing to deliver yet";

/// An id from a request: trimmed, 1–`ID_MAX` characters; the error names `field`.
fn id_field(v: Option<Value>, field: &str) -> Result<String, ApiError> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= limits::ID_MAX => {
            Ok(s.trim().to_owned())
        }
        _ => Err(ApiError::field(
            field,
            format!("{field} must be a valid id"),
        )),
    }
}

/// The `order:create` payload: which stuff to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The stuff to buy.
    pub stuff_id: String,
}

impl NewOrder {
    /// Parses `{stuffId}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Input {
            stuff_id: Option<Value>,
        }
        let input: Input = parse_payload(payload)?;
        Ok(Self {
            stuff_id: id_field(input.stuff_id, "stuffId")?,
        })
    }
}

/// The `order:get` / `order:cancel` payload: which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRef {
    /// The order's id.
    pub id: String,
}

impl OrderRef {
    /// Parses `{id}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Input {
            id: Option<Value>,
        }
        let input: Input = parse_payload(payload)?;
        Ok(Self {
            id: id_field(input.id, "id")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_trimmed_bounded_and_named_in_errors() {
        assert_eq!(
            NewOrder::parse(json!({"stuffId": " s1 "}))
                .unwrap()
                .stuff_id,
            "s1"
        );
        let e = NewOrder::parse(json!({})).unwrap_err();
        assert_eq!(e.errors[0].field.as_deref(), Some("stuffId"));
        let long = "x".repeat(limits::ID_MAX + 1);
        assert!(OrderRef::parse(json!({"id": long})).is_err());
        assert!(OrderRef::parse(json!({"id": "x".repeat(limits::ID_MAX)})).is_ok());
        assert_eq!(
            OrderRef::parse(json!({"id": 5})).unwrap_err().errors[0]
                .field
                .as_deref(),
            Some("id")
        );
    }
}
