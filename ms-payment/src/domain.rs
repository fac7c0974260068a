//! Input parsed into domain values (a value that exists is valid), the amount rule, coupon
//! codes, and the contract's `Payment` and `Coupon` shapes.

use crate::store::{CouponRow, PaymentRow};
use chrono::{DateTime, SubsecRound, Utc};
use ms_common::ApiError;
use ms_common::contract;
use serde_json::Value;

/// 404 for an order the replica does not hold (after waiting for it).
pub const ORDER_NOT_FOUND: &str = "Order not found";
/// 403 for someone else's order.
pub const NOT_YOUR_ORDER: &str = "You do not own this order";
/// 409 for a cancelled or expired order (contract text).
pub const CANCELLED: &str = "Cannot pay for a cancelled order";
/// 409 for a paid or complete order.
pub const ALREADY_PAID: &str = "This order has already been paid";
/// 404 for `payment:refund` of an order that has no payment.
pub const NOT_PAID: &str = "This order has not been paid, so there is nothing to refund";
/// 409 for a payment while an earlier charge of the order has no known end (its answer
/// was lost), with another coupon than that charge's.
pub const IN_PROGRESS: &str = "A payment for this order is already being processed";
/// 409 while the charge is processing (a bank debit): the webhook completes the order.
pub const PROCESSING: &str = "Your payment is being processed; the order completes when it clears";
/// 402 for a declined card.
pub const DECLINED: &str = "Your card was declined";
/// 400 (`couponCode`) for an unknown or malformed code.
pub const COUPON_INVALID: &str = "Coupon is not valid";
/// 400 (`couponCode`) when every redemption is used.
pub const COUPON_EXHAUSTED: &str = "Coupon has been fully redeemed";
/// 400 (`couponCode`) past the coupon's expiry.
pub const COUPON_EXPIRED: &str = "Coupon has expired";
/// 400 (`couponCode`) when the coupon leaves more than nothing but less than Stripe can
/// charge ([`PRICE_MIN`] cents); a 100 % coupon is fine (nothing is charged).
pub const COUPON_BELOW_MINIMUM: &str =
    "This coupon would leave less than the smallest charge to pay";
/// 400 (`couponCode`) for `coupon:check` without a code.
pub const COUPON_REQUIRED: &str = "Coupon code is required";
/// 400 (`couponCode`) for `payment:intent` when the coupon leaves nothing to charge:
/// `payment:create` with the coupon alone completes the order.
pub const FREE_NO_CARD: &str = "This coupon makes it free: no card is needed";
/// 400 (`paymentMethod`) when something must be charged and no method was given.
pub const PAYMENT_METHOD_REQUIRED: &str = "Payment method is required";
/// 400 (`orderId`).
pub const ORDER_ID_REQUIRED: &str = "Order id is required";
/// 400 (`percentOff`).
pub const PERCENT_OFF_MESSAGE: &str = "Percent off must be a whole number between 1 and 100";
/// 400 (`maxRedemptions`).
pub const MAX_REDEMPTIONS_MESSAGE: &str = "Max redemptions must be a whole number of at least 1";
/// 400 (`expiresAt`).
pub const EXPIRES_AT_MESSAGE: &str = "Expiry must be a date and time in the future";

/// Characters of generated codes: uppercase letters and digits without look-alikes
/// (no 0/O, 1/I/L), 31 symbols, so 12 of them carry about 59 random bits.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Length of generated codes.
pub const CODE_LEN: usize = 12;
pub use ms_common::contract::limits::MAX_REDEMPTIONS_MAX as MAX_REDEMPTIONS_LIMIT;
use ms_common::contract::limits::{ID_MAX, PERCENT_OFF_MAX, PERCENT_OFF_MIN, PRICE_MIN};

/// A coupon code as typed by a buyer: trimmed, case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponCode(String);

impl CouponCode {
    /// Normalises user input; anything that cannot be a code is "not valid".
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let s = raw.trim().to_ascii_uppercase();
        if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ApiError::field("couponCode", COUPON_INVALID));
        }
        Ok(Self(s))
    }
    /// The normalised code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Generates a random code with the OS-seeded CSPRNG.
pub fn generate_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..CODE_LEN)
        .map(|_| char::from(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())]))
        .collect()
}

/// `payment:create` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    /// The order to pay.
    pub order_id: String,
    /// Payment method id; needed only when something is charged.
    pub payment_method: Option<String>,
    /// Coupon to redeem.
    pub coupon_code: Option<CouponCode>,
}

fn optional_str<'a>(payload: &'a Value, key: &str) -> Result<Option<&'a str>, ()> {
    match payload.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim())),
        Some(_) => Err(()),
    }
}

/// `orderId`, required, or its error.
fn order_id_of(payload: &Value) -> Result<String, ApiError> {
    match optional_str(payload, "orderId") {
        Ok(Some(id)) if id.len() <= ID_MAX => Ok(id.to_owned()),
        _ => Err(ApiError::field("orderId", ORDER_ID_REQUIRED)),
    }
}

/// `couponCode`, optional (empty is none), or its error.
fn coupon_of(payload: &Value) -> Result<Option<CouponCode>, ApiError> {
    match optional_str(payload, "couponCode") {
        Ok(None) => Ok(None),
        Ok(Some(c)) => CouponCode::parse(c).map(Some),
        Err(()) => Err(ApiError::field("couponCode", COUPON_INVALID)),
    }
}

impl PayRequest {
    /// Parses the payload, reporting every bad field at once.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let order_id = order_id_of(payload);
        let payment_method = match optional_str(payload, "paymentMethod") {
            Ok(pm) if pm.is_none_or(|p| p.len() <= 255) => Ok(pm.map(str::to_owned)),
            _ => Err(ApiError::field("paymentMethod", "Unknown payment method")),
        };
        let coupon_code = coupon_of(payload);
        match (order_id, payment_method, coupon_code) {
            (Ok(order_id), Ok(payment_method), Ok(coupon_code)) => Ok(Self {
                order_id,
                payment_method,
                coupon_code,
            }),
            (a, b, c) => Err(merged([a.err(), b.err(), c.err()])),
        }
    }
}

/// The errors found, as one envelope.
fn merged<const N: usize>(errors: [Option<ApiError>; N]) -> ApiError {
    ApiError::merge(errors.into_iter().flatten().collect())
        .unwrap_or_else(|| ApiError::field("orderId", ORDER_ID_REQUIRED))
}

/// `payment:intent` input: an order and, optionally, the coupon to pay it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentOpenRequest {
    /// The order to pay.
    pub order_id: String,
    /// Coupon to redeem with the intent.
    pub coupon_code: Option<CouponCode>,
}

impl IntentOpenRequest {
    /// Parses `{orderId, couponCode?}`, reporting both bad fields at once.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        match (order_id_of(payload), coupon_of(payload)) {
            (Ok(order_id), Ok(coupon_code)) => Ok(Self {
                order_id,
                coupon_code,
            }),
            (a, b) => Err(merged([a.err(), b.err()])),
        }
    }
}

/// `coupon:check` input: an order and the code to try on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponCheckRequest {
    /// The order the discount would apply to.
    pub order_id: String,
    /// The code typed.
    pub coupon_code: CouponCode,
}

impl CouponCheckRequest {
    /// Parses `{orderId, couponCode}`, reporting both bad fields at once.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let coupon_code = coupon_of(payload)
            .and_then(|c| c.ok_or_else(|| ApiError::field("couponCode", COUPON_REQUIRED)));
        match (order_id_of(payload), coupon_code) {
            (Ok(order_id), Ok(coupon_code)) => Ok(Self {
                order_id,
                coupon_code,
            }),
            (a, b) => Err(merged([a.err(), b.err()])),
        }
    }
}

/// What is charged for `price_cents` after a `percent_off` coupon, or [`COUPON_BELOW_MINIMUM`]
/// when that is more than nothing but less than Stripe's smallest charge.
pub fn coupon_amount(price_cents: i64, percent_off: i64) -> Result<i64, ApiError> {
    match amount_after(price_cents, percent_off) {
        a if a > 0 && a < PRICE_MIN => Err(ApiError::field("couponCode", COUPON_BELOW_MINIMUM)),
        a => Ok(a),
    }
}

/// `payment:refund` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The paid order whose money goes back.
    pub order_id: String,
}

impl RefundRequest {
    /// Parses `{orderId}`.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        order_id_of(payload).map(|order_id| Self { order_id })
    }
}

/// `coupon:create` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCoupon {
    /// 1–100.
    pub percent_off: i64,
    /// ≥ 1, or unlimited.
    pub max_redemptions: Option<i64>,
    /// In the future, or never.
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewCoupon {
    /// Parses the payload against the clock `now`, reporting every bad field at once.
    pub fn parse(payload: &Value, now: DateTime<Utc>) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let percent_off = match payload.get("percentOff").and_then(Value::as_i64) {
            Some(p) if (PERCENT_OFF_MIN..=PERCENT_OFF_MAX).contains(&p) => p,
            _ => {
                errors.push(ApiError::field("percentOff", PERCENT_OFF_MESSAGE));
                0
            }
        };
        let max_redemptions = match payload.get("maxRedemptions") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(m) if (1..=MAX_REDEMPTIONS_LIMIT).contains(&m) => Some(m),
                _ => {
                    errors.push(ApiError::field("maxRedemptions", MAX_REDEMPTIONS_MESSAGE));
                    None
                }
            },
        };
        let expires_at = match optional_str(payload, "expiresAt") {
            Ok(None) => None,
            Ok(Some(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) if t.with_timezone(&Utc) > now => {
                    Some(t.with_timezone(&Utc).trunc_subsecs(6))
                }
                _ => {
                    errors.push(ApiError::field("expiresAt", EXPIRES_AT_MESSAGE));
                    None
                }
            },
            Err(()) => {
                errors.push(ApiError::field("expiresAt", EXPIRES_AT_MESSAGE));
                None
            }
        };
        match ApiError::merge(errors) {
            Some(e) => Err(e),
            None => Ok(Self {
                percent_off,
                max_redemptions,
                expires_at,
            }),
        }
    }
}

/// The amount to charge: the price less `percent_off` percent of it, the discount rounded
/// down to the cent, never below zero.
pub fn amount_after(price_cents: i64, percent_off: i64) -> i64 {
    let pct = i128::from(percent_off.clamp(0, 100));
    let price = i128::from(price_cents.max(0));
    let discount = price * pct / 100;
    i64::try_from(price - discount).unwrap_or(0).max(0)
}

impl From<&PaymentRow> for contract::Payment {
    fn from(p: &PaymentRow) -> Self {
        Self {
            id: p.id.clone(),
            order_id: p.order_id.clone(),
            amount_cents: p.amount_cents,
            coupon_code: p.coupon_code.clone(),
            provider_id: p.provider_id.clone(),
            created_at: p.created_at,
            refunded_at: p.refunded_at,
            currency: p.currency.clone(),
            fee_cents: p.fee_cents,
        }
    }
}

impl From<&CouponRow> for contract::Coupon {
    fn from(c: &CouponRow) -> Self {
        Self {
            code: c.code.clone(),
            percent_off: c.percent_off,
            max_redemptions: c.max_redemptions,
            redemptions: c.redemptions,
            expires_at: c.expires_at,
            created_by: c.created_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(e: &ApiError) -> Vec<&str> {
        e.errors.iter().filter_map(|d| d.field.as_deref()).collect()
    }

    #[test]
    fn amounts() {
        assert_eq!(amount_after(1000, 30), 700);
        assert_eq!(
            amount_after(999, 30),
            700,
            "discount 299.7 rounds down to 299"
        );
        assert_eq!(amount_after(1, 50), 1);
        assert_eq!(amount_after(1000, 100), 0);
        assert_eq!(amount_after(100_000_000, 1), 99_000_000);
    }

    #[test]
    fn coupons_leave_nothing_or_a_chargeable_amount() {
        assert_eq!(coupon_amount(1000, 95).unwrap(), 50);
        assert_eq!(coupon_amount(1000, 100).unwrap(), 0);
        let e = coupon_amount(1000, 96).unwrap_err();
        assert_eq!(
            (fields(&e), e.first_message()),
            (vec!["couponCode"], COUPON_BELOW_MINIMUM)
        );
    }

    #[test]
    fn coupon_checks() {
        let r =
            CouponCheckRequest::parse(&json!({"orderId": "o1", "couponCode": " save30 "})).unwrap();
        assert_eq!(
            (r.order_id.as_str(), r.coupon_code.as_str()),
            ("o1", "SAVE30")
        );
        let e = CouponCheckRequest::parse(&json!({"couponCode": ""})).unwrap_err();
        assert_eq!(fields(&e), vec!["orderId", "couponCode"]);
        assert_eq!(e.errors[1].message, COUPON_REQUIRED);
        let e = CouponCheckRequest::parse(&json!({"orderId": "o", "couponCode": 5})).unwrap_err();
        assert_eq!(
            (fields(&e), e.first_message()),
            (vec!["couponCode"], COUPON_INVALID)
        );
    }

    #[test]
    fn codes() {
        let a = generate_code();
        let b = generate_code();
        assert_eq!(a.len(), CODE_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| CODE_ALPHABET.contains(&c)));
        assert!(!a.contains(['0', 'O', '1', 'I', 'L']));
        assert_eq!(CouponCode::parse(" abc123 ").unwrap().as_str(), "ABC123");
        assert!(CouponCode::parse("no spaces").is_err());
    }

    #[test]
    fn pay_requests() {
        let r = PayRequest::parse(
            &json!({"orderId": "o1", "paymentMethod": "pm_card_visa", "couponCode": "save30"}),
        )
        .unwrap();
        assert_eq!(r.coupon_code.unwrap().as_str(), "SAVE30");
        let r = PayRequest::parse(&json!({"orderId": "o1", "couponCode": ""})).unwrap();
        assert!(r.coupon_code.is_none() && r.payment_method.is_none());
        let e = PayRequest::parse(&json!({"paymentMethod": 5, "couponCode": ["x"]})).unwrap_err();
        assert_eq!(fields(&e), vec!["orderId", "paymentMethod", "couponCode"]);
    }

    #[test]
    fn new_coupons() {
        let now = Utc::now();
        let c = NewCoupon::parse(&json!({"percentOff": 30}), now).unwrap();
        assert_eq!(
            (c.percent_off, c.max_redemptions, c.expires_at),
            (30, None, None)
        );
        let later = (now + chrono::Duration::days(1)).to_rfc3339();
        let c = NewCoupon::parse(
            &json!({"percentOff": 100, "maxRedemptions": 2, "expiresAt": later}),
            now,
        )
        .unwrap();
        assert_eq!((c.percent_off, c.max_redemptions), (100, Some(2)));
        assert!(c.expires_at.is_some());
        for bad in [json!(0), json!(101), json!(12.5), json!("30"), json!(null)] {
            let e = NewCoupon::parse(&json!({"percentOff": bad}), now).unwrap_err();
            assert_eq!(fields(&e), vec!["percentOff"], "{bad}");
        }
        let past = (now - chrono::Duration::seconds(1)).to_rfc3339();
        let e = NewCoupon::parse(
            &json!({"percentOff": 10, "maxRedemptions": 0, "expiresAt": past}),
            now,
        )
        .unwrap_err();
        assert_eq!(fields(&e), vec!["maxRedemptions", "expiresAt"]);
        let e =
            NewCoupon::parse(&json!({"percentOff": 10, "expiresAt": "tomorrow"}), now).unwrap_err();
        assert_eq!(fields(&e), vec!["expiresAt"]);
    }
}
