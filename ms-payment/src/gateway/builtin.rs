//! The built-in test gateway: no network, Stripe's test payment method ids.
//!
//! `pm_card_chargeDeclined…`, `pm_card_visa_chargeDeclined…` and the other decline ids are
//! declined; ids that need 3-D Secure are declined too (we confirm with
//! `error_on_requires_action`, as the Stripe gateway does); every other `pm_card_<name>`
//! succeeds with a generated `pi_test_…` id; anything else is an unknown payment method.
//! Every refund succeeds.

use super::{ChargeOutcome, ChargeRequest, GatewayError, PaymentGateway};
use async_trait::async_trait;

/// Answers like Stripe's test mode, without calling anyone.
#[derive(Debug, Clone, Default)]
pub struct TestGateway;

/// Decline suffixes of Stripe's test ids and the decline codes Stripe reports for them.
const DECLINES: &[(&str, &str)] = &[
    ("InsufficientFunds", "insufficient_funds"),
    ("LostCard", "lost_card"),
    ("StolenCard", "stolen_card"),
    ("ExpiredCard", "expired_card"),
    ("IncorrectCvc", "incorrect_cvc"),
    ("ProcessingError", "processing_error"),
    ("Fraudulent", "fraudulent"),
    ("VelocityLimitExceeded", "card_velocity_exceeded"),
];

/// The decline code for a test id, or `None` when it is a succeeding card.
pub fn decline_reason(pm: &str) -> Option<String> {
    let name = pm.strip_prefix("pm_card_")?;
    if let Some(i) = name.find("chargeDeclined") {
        let suffix = &name[i + "chargeDeclined".len()..];
        let code = DECLINES
            .iter()
            .find(|(s, _)| *s == suffix)
            .map_or("generic_decline", |(_, c)| c);
        return Some(code.to_owned());
    }
    if name == "radarBlock" {
        return Some("fraudulent".to_owned());
    }
    if name.contains("authenticationRequired") || name.contains("threeDSecure2Required") {
        return Some("authentication_required".to_owned());
    }
    None
}

fn known_shape(pm: &str) -> bool {
    pm.strip_prefix("pm_card_").is_some_and(|name| {
        !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[async_trait]
impl PaymentGateway for TestGateway {
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if !known_shape(&req.payment_method) {
            return Err(GatewayError::UnknownPaymentMethod);
        }
        Ok(match decline_reason(&req.payment_method) {
            Some(reason) => ChargeOutcome::Declined { reason },
            None => ChargeOutcome::Succeeded {
                provider_id: format!("pi_test_{}", uuid::Uuid::new_v4().simple()),
            },
        })
    }

    async fn refund(&self, provider_id: &str, order_id: &str) -> Result<(), GatewayError> {
        tracing::info!(provider_id, order_id, "test gateway: refunded");
        Ok(())
    }

    /// The built-in gateway answers in the same process: an answer is never lost, so
    /// there is never a charge to find.
    async fn find_charge(&self, _order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pm: &str) -> ChargeRequest {
        ChargeRequest {
            order_id: "o1".into(),
            user_id: "u1".into(),
            amount_cents: 100,
            currency: "usd".into(),
            payment_method: pm.into(),
            coupon_code: None,
        }
    }

    #[tokio::test]
    async fn test_ids() {
        let g = TestGateway;
        for ok in [
            "pm_card_visa",
            "pm_card_mastercard",
            "pm_card_amex",
            "pm_card_visa_debit",
        ] {
            match g.charge(&req(ok)).await.unwrap() {
                ChargeOutcome::Succeeded { provider_id } => {
                    assert!(provider_id.starts_with("pi_test_"), "{ok}")
                }
                other => panic!("{ok}: {other:?}"),
            }
        }
        for (pm, reason) in [
            ("pm_card_chargeDeclined", "generic_decline"),
            ("pm_card_visa_chargeDeclined", "generic_decline"),
            (
                "pm_card_chargeDeclinedInsufficientFunds",
                "insufficient_funds",
            ),
            ("pm_card_visa_chargeDeclinedLostCard", "lost_card"),
            ("pm_card_radarBlock", "fraudulent"),
            ("pm_card_authenticationRequired", "authentication_required"),
        ] {
            assert_eq!(
                g.charge(&req(pm)).await.unwrap(),
                ChargeOutcome::Declined {
                    reason: reason.into()
                },
                "{pm}"
            );
        }
        for bad in [
            "",
            "visa",
            "pm_card_",
            "pm_1234",
            "tok_visa",
            "pm_card_visa; drop",
        ] {
            assert_eq!(
                g.charge(&req(bad)).await.unwrap_err(),
                GatewayError::UnknownPaymentMethod,
                "{bad:?}"
            );
        }
    }
}
