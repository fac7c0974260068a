//! ms-order's inputs, validated on construction, and its refusal messages: an
//! [`OrderRef`] or a [`NewOrder`] that exists names a plausible id, a [`NewReview`] a
//! [`Rating`] of 1–5 stars and a [`ReviewComment`] of at most 1000 characters.

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

/// 409 for reviewing an order that is not complete (exact contract text).
pub const NOT_PAID: &str = "Only a paid order can be reviewed";
/// 409 for a second review of one order (exact contract text).
pub const ALREADY_REVIEWED: &str = "You already reviewed this order";
/// 400 on field `rating` (exact contract text).
pub const RATING_MESSAGE: &str = "Rating must be a whole number from 1 to 5";
/// 400 on field `comment` (exact contract text).
pub const COMMENT_MESSAGE: &str = "Comment must be at most 1000 characters";

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

/// The id of a `{stuffId}` payload (`order:create`, `review:list`).
fn stuff_id_of(payload: Value) -> Result<String, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Input {
        stuff_id: Option<Value>,
    }
    let input: Input = parse_payload(payload)?;
    id_field(input.stuff_id, "stuffId")
}

impl NewOrder {
    /// Parses `{stuffId}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        Ok(Self {
            stuff_id: stuff_id_of(payload)?,
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

/// A review's stars: a JSON integer from 1 to 5 (floats, strings and others refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating(i64);

impl Rating {
    /// Parses a JSON value; the error names the `rating` field.
    pub fn parse(v: Option<&Value>) -> Result<Self, ApiError> {
        // `as_i64` is `None` for floats (even `4.0`) and for integers beyond i64.
        match v.and_then(Value::as_i64) {
            Some(n) if (limits::RATING_MIN..=limits::RATING_MAX).contains(&n) => Ok(Self(n)),
            _ => Err(ApiError::field("rating", RATING_MESSAGE)),
        }
    }
    /// The stars.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A review's text: trimmed, at most 1000 characters; missing or `null` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReviewComment(String);

impl ReviewComment {
    /// Parses a JSON value; the error names the `comment` field.
    pub fn parse(v: Option<&Value>) -> Result<Self, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(Value::String(s)) => {
                let text = s.trim();
                if text.chars().nth(limits::REVIEW_COMMENT_MAX).is_some() {
                    return Err(ApiError::field("comment", COMMENT_MESSAGE));
                }
                Ok(Self(text.to_owned()))
            }
            Some(_) => Err(ApiError::field("comment", COMMENT_MESSAGE)),
        }
    }
    /// The trimmed text (may be empty).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `review:create` payload: which order, how many stars, what was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    /// The order reviewed.
    pub order_id: String,
    /// Its stars.
    pub rating: Rating,
    /// Its text.
    pub comment: ReviewComment,
}

impl NewReview {
    /// Parses `{orderId, rating, comment?}`, reporting every bad field at once.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Input {
            order_id: Option<Value>,
            rating: Option<Value>,
            comment: Option<Value>,
        }
        let input: Input = parse_payload(payload)?;
        let order_id = id_field(input.order_id, "orderId");
        let rating = Rating::parse(input.rating.as_ref());
        let comment = ReviewComment::parse(input.comment.as_ref());
        match (order_id, rating, comment) {
            (Ok(order_id), Ok(rating), Ok(comment)) => Ok(Self {
                order_id,
                rating,
                comment,
            }),
            (o, r, c) => Err(ApiError::merge(
                [o.err(), r.err(), c.err()].into_iter().flatten().collect(),
            )
            .unwrap_or_else(|| ApiError::bad_request("Invalid payload"))),
        }
    }
}

/// The `review:list` payload: which stuff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewsOf {
    /// The stuff.
    pub stuff_id: String,
}

impl ReviewsOf {
    /// Parses `{stuffId}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        Ok(Self {
            stuff_id: stuff_id_of(payload)?,
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

    #[test]
    fn reviews_need_an_order_whole_stars_and_a_short_comment() {
        let r =
            NewReview::parse(json!({"orderId": "o1", "rating": 4, "comment": "  fine  "})).unwrap();
        assert_eq!(
            (r.order_id.as_str(), r.rating.get(), r.comment.as_str()),
            ("o1", 4, "fine")
        );
        let r = NewReview::parse(json!({"orderId": "o1", "rating": 1})).unwrap();
        assert_eq!(r.comment.as_str(), "");
        let r = NewReview::parse(json!({"orderId": "o1", "rating": 5, "comment": null})).unwrap();
        assert_eq!(r.comment.as_str(), "");
        for bad in [
            json!(0),
            json!(6),
            json!(4.0),
            json!(4.5),
            json!("4"),
            json!(null),
        ] {
            let e = NewReview::parse(json!({"orderId": "o1", "rating": bad})).unwrap_err();
            assert_eq!(e.status, 400);
            assert_eq!(e.errors[0].field.as_deref(), Some("rating"), "{bad}");
            assert_eq!(e.errors[0].message, RATING_MESSAGE);
        }
        // Exactly 1000 characters (after trimming) pass; 1001 do not.
        let most = format!("  {}  ", "é".repeat(limits::REVIEW_COMMENT_MAX));
        assert!(NewReview::parse(json!({"orderId": "o1", "rating": 3, "comment": most})).is_ok());
        for bad in [json!("x".repeat(limits::REVIEW_COMMENT_MAX + 1)), json!(7)] {
            let e = NewReview::parse(json!({"orderId": "o1", "rating": 3, "comment": bad}))
                .unwrap_err();
            assert_eq!(e.errors[0].field.as_deref(), Some("comment"));
            assert_eq!(e.errors[0].message, COMMENT_MESSAGE);
        }
        // Every bad field at once.
        let e = NewReview::parse(json!({"rating": 9, "comment": 1})).unwrap_err();
        let fields: Vec<_> = e.errors.iter().filter_map(|d| d.field.as_deref()).collect();
        assert_eq!(fields, vec!["orderId", "rating", "comment"]);
        assert_eq!(
            ReviewsOf::parse(json!({})).unwrap_err().errors[0]
                .field
                .as_deref(),
            Some("stuffId")
        );
    }
}
