//! The built-in test gateway: no network, Stripe's test payment method ids.
//!
//! `pm_card_chargeDeclined…`, `pm_card_visa_chargeDeclined…` and the other decline ids are
//! declined; ids that need 3-D Secure are declined too (we confirm with
//! `error_on_requires_action`, as the Stripe gateway does); every other `pm_card_<name>`
//! succeeds with a generated `pi_test_…` id; anything else is an unknown payment method.
//! Every refund succeeds.
//!
//! Intents opened for the browser (`payment:intent`) live in this process's memory, at most
//! [`MAX_INTENTS`] of them (the oldest are forgotten first); the web client confirms them
//! with a test payment method through `payment:create`, as the browser confirms Stripe's.
//!
//! Payouts: a seller's connected account (`acct_test_…`) is onboarded as soon as its
//! onboarding link is asked for (the link is the return page itself), and transfers are
//! remembered by key, so tests can see what each seller was sent.

use super::{
    ChargeOutcome, ChargeRequest, GatewayError, IntentRequest, IntentState, IntentView, OpenIntent,
    PaymentGateway, TransferRequest,
};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most intents the built-in gateway remembers (a hold lasts minutes; this bounds memory).
pub const MAX_INTENTS: usize = 10_000;

/// Answers like Stripe's test mode, without calling anyone. Clones share their intents.
#[derive(Debug, Clone, Default)]
pub struct TestGateway {
    intents: Arc<Mutex<Intents>>,
    payouts: Arc<Mutex<Payouts>>,
}

/// Connected accounts and what was sent to them.
#[derive(Debug, Default)]
struct Payouts {
    /// Seller → account.
    accounts: HashMap<String, String>,
    /// Accounts whose onboarding link was handed out (onboarded at once).
    ready: std::collections::HashSet<String>,
    /// Transfer key → the transfer.
    transfers: HashMap<String, TestTransfer>,
    /// Reversal key → amount taken back.
    reversals: HashMap<String, i64>,
}

/// A transfer the built-in gateway made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTransfer {
    /// `tr_test_…`.
    pub id: String,
    /// The connected account paid.
    pub account_id: String,
    /// How much.
    pub amount_cents: i64,
}

/// The intents opened so far, by id and by idempotency key, oldest first.
#[derive(Debug, Default)]
struct Intents {
    by_id: HashMap<String, TestIntent>,
    by_key: HashMap<String, String>,
    age: VecDeque<String>,
}

#[derive(Debug, Clone)]
struct TestIntent {
    key: String,
    client_secret: String,
    amount_cents: i64,
    state: IntentState,
}

impl Intents {
    fn insert(&mut self, id: String, intent: TestIntent) {
        while self.age.len() >= MAX_INTENTS {
            let Some(old) = self.age.pop_front() else {
                break;
            };
            if let Some(gone) = self.by_id.remove(&old) {
                self.by_key.remove(&gone.key);
            }
        }
        self.by_key.insert(intent.key.clone(), id.clone());
        self.age.push_back(id.clone());
        self.by_id.insert(id, intent);
    }
}

impl TestGateway {
    fn payouts(&self) -> MutexGuard<'_, Payouts> {
        self.payouts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every transfer made so far (tests check what sellers were sent).
    pub fn transfers(&self) -> Vec<TestTransfer> {
        self.payouts().transfers.values().cloned().collect()
    }

    /// The sum taken back by reversals so far.
    pub fn reversed_cents(&self) -> i64 {
        self.payouts().reversals.values().sum()
    }

    fn intents(&self) -> MutexGuard<'_, Intents> {
        // The map stays consistent whatever a panicking holder left half-done.
        self.intents
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The outcome of `pm` without an intent.
    fn decide(pm: &str) -> Result<ChargeOutcome, GatewayError> {
        if !known_shape(pm) {
            return Err(GatewayError::UnknownPaymentMethod);
        }
        Ok(match decline_reason(pm) {
            Some(reason) => ChargeOutcome::Declined { reason },
            None => ChargeOutcome::Succeeded {
                provider_id: format!("pi_test_{}", uuid::Uuid::new_v4().simple()),
            },
        })
    }
}

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
        let outcome = Self::decide(&req.payment_method)?;
        let Some(id) = &req.intent_id else {
            return Ok(outcome);
        };
        let mut intents = self.intents();
        // An intent this process forgot (a restart) is charged as a plain test charge.
        let Some(intent) = intents.by_id.get_mut(id) else {
            return Ok(outcome);
        };
        match (&intent.state, outcome) {
            (IntentState::AwaitingBuyer, ChargeOutcome::Succeeded { .. }) => {
                intent.state = IntentState::Succeeded;
                Ok(ChargeOutcome::Succeeded {
                    provider_id: id.clone(),
                })
            }
            (IntentState::AwaitingBuyer, ChargeOutcome::Declined { reason }) => {
                intent.state = IntentState::Declined {
                    reason: reason.clone(),
                };
                Ok(ChargeOutcome::Declined { reason })
            }
            // Confirming again answers what the first confirmation did, as Stripe does.
            (IntentState::Succeeded, _) => Ok(ChargeOutcome::Succeeded {
                provider_id: id.clone(),
            }),
            (IntentState::Declined { reason }, _) => Ok(ChargeOutcome::Declined {
                reason: reason.clone(),
            }),
            (state, _) => Err(GatewayError::InProgress(format!(
                "intent {id} cannot be confirmed: {state:?}"
            ))),
        }
    }

    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError> {
        tracing::info!(provider_id, order_id, destination, "test gateway: refunded");
        Ok(())
    }

    /// The built-in gateway answers in the same process: an answer is never lost, so
    /// there is never a charge to find.
    async fn find_charge(&self, _order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        Ok(None)
    }

    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError> {
        let mut intents = self.intents();
        if let Some(id) = intents.by_key.get(&req.idempotency_key).cloned()
            && let Some(known) = intents.by_id.get(&id)
        {
            return Ok(OpenIntent {
                id,
                client_secret: known.client_secret.clone(),
            });
        }
        let id = format!("pi_test_{}", uuid::Uuid::new_v4().simple());
        let client_secret = format!("{id}_secret_{}", uuid::Uuid::new_v4().simple());
        intents.insert(
            id.clone(),
            TestIntent {
                key: req.idempotency_key.clone(),
                client_secret: client_secret.clone(),
                amount_cents: req.amount_cents,
                state: IntentState::AwaitingBuyer,
            },
        );
        Ok(OpenIntent { id, client_secret })
    }

    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError> {
        Ok(self.intents().by_id.get(id).map(|i| IntentView {
            state: i.state.clone(),
            client_secret: i.client_secret.clone(),
            amount_cents: i.amount_cents,
        }))
    }

    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError> {
        let mut intents = self.intents();
        let Some(intent) = intents.by_id.get_mut(id) else {
            return Ok(IntentState::Canceled);
        };
        if matches!(
            intent.state,
            IntentState::AwaitingBuyer | IntentState::Declined { .. }
        ) {
            intent.state = IntentState::Canceled;
        }
        Ok(intent.state.clone())
    }

    async fn create_account(&self, seller_id: &str) -> Result<String, GatewayError> {
        let mut p = self.payouts();
        let id = p
            .accounts
            .entry(seller_id.to_owned())
            .or_insert_with(|| format!("acct_test_{}", uuid::Uuid::new_v4().simple()))
            .clone();
        Ok(id)
    }

    async fn onboarding_link(
        &self,
        account_id: &str,
        _refresh_url: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        let mut p = self.payouts();
        if !p.accounts.values().any(|a| a == account_id) {
            return Err(GatewayError::Failed(format!("no account {account_id}")));
        }
        p.ready.insert(account_id.to_owned());
        Ok(return_url.to_owned())
    }

    async fn account_ready(&self, account_id: &str) -> Result<bool, GatewayError> {
        Ok(self.payouts().ready.contains(account_id))
    }

    async fn transfer(&self, req: &TransferRequest) -> Result<String, GatewayError> {
        let mut p = self.payouts();
        if !p.ready.contains(&req.account_id) {
            return Err(GatewayError::Failed(format!(
                "account {} cannot receive transfers yet",
                req.account_id
            )));
        }
        let t = p
            .transfers
            .entry(req.key.clone())
            .or_insert_with(|| TestTransfer {
                id: format!("tr_test_{}", uuid::Uuid::new_v4().simple()),
                account_id: req.account_id.clone(),
                amount_cents: req.amount_cents,
            });
        Ok(t.id.clone())
    }

    async fn reverse_transfer(
        &self,
        transfer_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), GatewayError> {
        let mut p = self.payouts();
        if !p.transfers.values().any(|t| t.id == transfer_id) {
            return Err(GatewayError::Failed(format!("no transfer {transfer_id}")));
        }
        p.reversals.entry(key.to_owned()).or_insert(amount_cents);
        Ok(())
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
            intent_id: None,
            destination: None,
        }
    }

    fn open(key: &str) -> IntentRequest {
        IntentRequest {
            order_id: "o1".into(),
            user_id: "u1".into(),
            amount_cents: 900,
            currency: "eur".into(),
            coupon_code: None,
            idempotency_key: key.into(),
            destination: None,
        }
    }

    #[tokio::test]
    async fn an_intent_is_opened_once_per_key_confirmed_once_and_cancelled() {
        let g = TestGateway::default();
        let a = g.open_intent(&open("k1")).await.unwrap();
        assert_eq!(g.open_intent(&open("k1")).await.unwrap(), a);
        let b = g.open_intent(&open("k2")).await.unwrap();
        assert_ne!(a.id, b.id);
        assert!(a.client_secret.starts_with(&format!("{}_secret_", a.id)));
        let view = g.intent(&a.id).await.unwrap().unwrap();
        assert_eq!(
            (view.state, view.amount_cents),
            (IntentState::AwaitingBuyer, 900)
        );

        let mut pay = req("pm_card_visa");
        pay.intent_id = Some(a.id.clone());
        let paid = ChargeOutcome::Succeeded {
            provider_id: a.id.clone(),
        };
        assert_eq!(g.charge(&pay).await.unwrap(), paid);
        // Again, even with a declining card: the first confirmation stands.
        pay.payment_method = "pm_card_chargeDeclined".into();
        assert_eq!(g.charge(&pay).await.unwrap(), paid);
        assert_eq!(
            g.cancel_intent(&a.id).await.unwrap(),
            IntentState::Succeeded
        );

        assert_eq!(g.cancel_intent(&b.id).await.unwrap(), IntentState::Canceled);
        let mut late = req("pm_card_visa");
        late.intent_id = Some(b.id.clone());
        assert!(matches!(
            g.charge(&late).await,
            Err(GatewayError::InProgress(_))
        ));
        assert_eq!(
            g.cancel_intent("pi_unknown").await.unwrap(),
            IntentState::Canceled
        );
        assert_eq!(g.intent("pi_unknown").await.unwrap(), None);
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let g = TestGateway::default();
        let first = g.open_intent(&open("first")).await.unwrap();
        for i in 0..MAX_INTENTS {
            g.open_intent(&open(&format!("k{i}"))).await.unwrap();
        }
        let intents = g.intents();
        assert_eq!(
            (intents.by_id.len(), intents.by_key.len()),
            (MAX_INTENTS, MAX_INTENTS)
        );
        assert!(!intents.by_id.contains_key(&first.id));
    }

    #[tokio::test]
    async fn test_ids() {
        let g = TestGateway::default();
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
