//! Stripe's webhook, checked the way Stripe documents it and read for the few fields
//! ms-payment acts on.
//!
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`: each `v1` is an HMAC-SHA256,
//! keyed with the endpoint's signing secret (`STRIPE_WEBHOOK_SECRET`, `whsec_…`), of
//! `<t>.<raw body>`. A request is genuine when one `v1` matches (compared in constant
//! time) and `t` is within [`TOLERANCE_SECONDS`] of now (a replay of an old delivery is
//! refused; a replay inside the window is caught by the event id, stored once handled).
//!
//! The body is read as plain JSON for `id`, `type` and the few fields of `data.object`
//! used below, rather than as async-stripe's typed events: those must match the
//! account's API version field for field, and an event ms-payment cannot parse would be
//! retried by Stripe for three days while its money waits.

use hmac::{Hmac, Mac};
use ms_common::ApiError;
use serde_json::Value;
use sha2::Sha256;

/// How far the signature's timestamp may be from now (Stripe's libraries use 5 minutes).
pub const TOLERANCE_SECONDS: i64 = 300;
/// 400 for a request that is not from Stripe, or signed too long ago.
pub const INVALID_SIGNATURE: &str = "Invalid signature";
/// 400 for a signed body that is not a Stripe event.
pub const INVALID_EVENT: &str = "Invalid event";
/// Longest `Stripe-Signature` header read (a few signatures during a secret rollover).
const HEADER_MAX: usize = ms_common::contract::limits::WEBHOOK_SIGNATURE_MAX;

/// The endpoint's signing secret; an empty one is no secret (every request refused).
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// The secret as Stripe shows it (`whsec_…`, used whole as the HMAC key).
    pub fn new(secret: &str) -> Option<Self> {
        let s = secret.trim();
        (!s.is_empty()).then(|| Self(s.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// Checks `header` against `body` at the time `now` (unix seconds).
    pub fn verify(&self, body: &[u8], header: &str, now: i64) -> Result<(), ApiError> {
        let invalid = || ApiError::bad_request(INVALID_SIGNATURE);
        if header.len() > HEADER_MAX {
            return Err(invalid());
        }
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", sig)) => candidates.push(sig),
                _ => {}
            }
        }
        let t = timestamp.ok_or_else(invalid)?;
        let mut mac = self.mac();
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let matches = candidates
            .iter()
            .any(|c| hex::decode(c).is_ok_and(|sig| mac.clone().verify_slice(&sig).is_ok()));
        if !matches || (now - t).abs() > TOLERANCE_SECONDS {
            return Err(invalid());
        }
        Ok(())
    }

    /// A `Stripe-Signature` header for `body` signed at `t`, as Stripe would send it
    /// (tests, and a local tool to replay an event).
    pub fn sign(&self, body: &[u8], t: i64) -> String {
        let mut mac = self.mac();
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// What an event asks ms-payment to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookAction {
    /// `payment_intent.succeeded`: the money arrived; record the payment if it is not.
    Succeeded(IntentFacts),
    /// `payment_intent.payment_failed`: the charge failed; the order is cancelled.
    Failed(IntentFacts),
    /// `payment_intent.processing`: the money is on its way (nothing to do but wait).
    Processing(IntentFacts),
    /// `charge.refunded`: money went back (from Stripe's dashboard, or our own refund).
    Refunded {
        /// The PaymentIntent the charge belongs to.
        intent_id: String,
        /// True when the whole charge is refunded (partial refunds are not recorded).
        fully: bool,
    },
    /// `account.updated`: a seller's connected account changed (Stripe Connect).
    AccountUpdated {
        /// `acct_…`.
        account_id: String,
        /// It can receive money: details submitted and payouts enabled.
        ready: bool,
    },
    /// Any other type: acknowledged, nothing done.
    Ignored,
}

/// The fields of a PaymentIntent that ms-payment uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentFacts {
    /// `pi_…`.
    pub intent_id: String,
    /// `metadata.order_id`, set when the intent was made.
    pub order_id: String,
    /// `metadata.coupon_code`, when a coupon was redeemed for it.
    pub coupon_code: Option<String>,
    /// `amount_received` (falling back to `amount`), in cents.
    pub amount_cents: i64,
    /// The decline code of `last_payment_error`, for a failure.
    pub reason: Option<String>,
}

/// A verified event: its id (handled once) and what it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// `evt_…`.
    pub id: String,
    /// `type`, for logs and the record of handled events.
    pub kind: String,
    /// What to do.
    pub action: WebhookAction,
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .map(str::to_owned)
}

fn intent_facts(object: &Value) -> Option<IntentFacts> {
    let metadata = object.get("metadata").unwrap_or(&Value::Null);
    Some(IntentFacts {
        intent_id: text(object, "id")?,
        order_id: text(metadata, "order_id")?,
        coupon_code: text(metadata, "coupon_code"),
        amount_cents: object
            .get("amount_received")
            .and_then(Value::as_i64)
            .filter(|a| *a > 0)
            .or_else(|| object.get("amount").and_then(Value::as_i64))?,
        reason: object
            .get("last_payment_error")
            .and_then(|e| text(e, "decline_code").or_else(|| text(e, "code"))),
    })
}

impl WebhookEvent {
    /// Reads a verified body. A PaymentIntent event without `metadata.order_id` (an intent
    /// not made by StuffMart, on a shared account) is [`WebhookAction::Ignored`].
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let invalid = || ApiError::bad_request(INVALID_EVENT);
        let v: Value = serde_json::from_slice(body).map_err(|_| invalid())?;
        let id = text(&v, "id").ok_or_else(invalid)?;
        let kind = text(&v, "type").ok_or_else(invalid)?;
        let object = v
            .get("data")
            .and_then(|d| d.get("object"))
            .ok_or_else(invalid)?;
        let intent = || intent_facts(object);
        let action = match kind.as_str() {
            "payment_intent.succeeded" => intent().map(WebhookAction::Succeeded),
            "payment_intent.payment_failed" => intent().map(WebhookAction::Failed),
            "payment_intent.processing" => intent().map(WebhookAction::Processing),
            "charge.refunded" => {
                text(object, "payment_intent").map(|intent_id| WebhookAction::Refunded {
                    intent_id,
                    fully: object.get("refunded").and_then(Value::as_bool) == Some(true),
                })
            }
            "account.updated" => text(object, "id").map(|account_id| {
                let yes = |field: &str| object.get(field).and_then(Value::as_bool) == Some(true);
                WebhookAction::AccountUpdated {
                    account_id,
                    ready: yes("details_submitted") && yes("payouts_enabled"),
                }
            }),
            _ => None,
        }
        .unwrap_or(WebhookAction::Ignored);
        Ok(Self { id, kind, action })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn account_updates_say_whether_the_account_can_be_paid() {
        let event = |details: bool, payouts: bool| {
            json!({"id": "evt_a", "type": "account.updated", "data": {"object": {
                "id": "acct_1", "object": "account",
                "details_submitted": details, "payouts_enabled": payouts,
            }}})
            .to_string()
        };
        for (details, payouts, ready) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
        ] {
            let parsed = WebhookEvent::parse(event(details, payouts).as_bytes()).unwrap();
            assert_eq!(
                parsed.action,
                WebhookAction::AccountUpdated {
                    account_id: "acct_1".into(),
                    ready
                }
            );
        }
    }

    const NOW: i64 = 1_800_000_000;

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_test_secret").unwrap()
    }

    #[test]
    fn signatures_are_checked_in_time() {
        let body = br#"{"id":"evt_1"}"#;
        let s = secret();
        assert!(s.verify(body, &s.sign(body, NOW), NOW).is_ok());
        // Within the tolerance either way, refused beyond it.
        assert!(s.verify(body, &s.sign(body, NOW - 300), NOW).is_ok());
        assert!(s.verify(body, &s.sign(body, NOW - 301), NOW).is_err());
        assert!(s.verify(body, &s.sign(body, NOW + 301), NOW).is_err());
        // Another secret, another body, a mangled header.
        let other = WebhookSecret::new("whsec_other").unwrap();
        assert!(s.verify(body, &other.sign(body, NOW), NOW).is_err());
        assert!(s.verify(b"{}", &s.sign(body, NOW), NOW).is_err());
        for bad in [
            "",
            "t=x,v1=00",
            "v1=00",
            &format!("t={NOW}"),
            &"t=1,".repeat(1000),
        ] {
            let e = s.verify(body, bad, NOW).unwrap_err();
            assert_eq!((e.status, e.first_message()), (400, INVALID_SIGNATURE));
        }
        // During a secret rollover Stripe sends one v1 per secret: any may match.
        let both = format!("{},v1={}", other.sign(body, NOW), &s.sign(body, NOW)[16..]);
        assert!(s.verify(body, &both, NOW).is_ok(), "{both}");
        assert!(WebhookSecret::new("  ").is_none());
    }

    #[test]
    fn events_name_their_intent_and_order() {
        let body = json!({
            "id": "evt_1", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "amount": 1200, "amount_received": 1200,
                "metadata": {"order_id": "o1", "coupon_code": "SAVE30"}}}
        });
        let e = WebhookEvent::parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            e.action,
            WebhookAction::Succeeded(IntentFacts {
                intent_id: "pi_1".into(),
                order_id: "o1".into(),
                coupon_code: Some("SAVE30".into()),
                amount_cents: 1200,
                reason: None,
            })
        );
        let refunded = json!({"id": "evt_2", "type": "charge.refunded",
            "data": {"object": {"id": "ch_1", "payment_intent": "pi_1", "refunded": true}}});
        assert_eq!(
            WebhookEvent::parse(refunded.to_string().as_bytes())
                .unwrap()
                .action,
            WebhookAction::Refunded {
                intent_id: "pi_1".into(),
                fully: true
            }
        );
        // Someone else's intent on a shared account, and types we do not act on.
        let foreign = json!({"id": "evt_3", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_2", "amount": 5, "metadata": {}}}});
        let other = json!({"id": "evt_4", "type": "customer.created", "data": {"object": {}}});
        for ignored in [foreign, other] {
            let e = WebhookEvent::parse(ignored.to_string().as_bytes()).unwrap();
            assert_eq!(e.action, WebhookAction::Ignored);
        }
        for bad in [
            &b"not json"[..],
            br#"{"type":"x","data":{"object":{}}}"#,
            br#"{"id":"evt","type":"x"}"#,
        ] {
            let e = WebhookEvent::parse(bad).unwrap_err();
            assert_eq!(e.first_message(), INVALID_EVENT);
        }
    }
}
