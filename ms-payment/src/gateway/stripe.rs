//! Stripe through `async-stripe`: one `POST /v1/payment_intents` that creates and confirms
//! the PaymentIntent with the buyer's payment method.
//!
//! Request: `amount`, `currency`, `confirm=true`, `payment_method`, automatic payment
//! methods without redirects, `error_on_requires_action=true` (a card that needs 3-D Secure
//! is declined rather than left waiting), `metadata[order_id]`, `metadata[user_id]`, and the
//! order id as `Idempotency-Key`, so a repeated call for an order never charges twice.
//!
//! Answers: a succeeded PaymentIntent → [`ChargeOutcome::Succeeded`]; a processing one →
//! [`ChargeOutcome::Processing`] (the webhook tells how it ends); a `card_error` (HTTP
//! 402) → [`ChargeOutcome::Declined`]; anything else → a [`GatewayError`]. The coupon, when
//! one was redeemed, goes in `metadata[coupon_code]`.
//!
//! Finding a charge whose answer was lost: `GET /v1/payment_intents/search` with
//! `metadata['order_id']:'<id>'` (Stripe's search lags writes by up to a minute, so
//! reconciliation only asks about charges older than that). A succeeded intent wins, then
//! a processing one, then a failed one; none is `None`.
//!
//! Intents for the browser (`payment:intent`): `POST /v1/payment_intents` without
//! `confirm`, automatic payment methods without redirects (no return URL is needed, so the
//! server can confirm the same intent with a test method, and the Payment Element's 3-D
//! Secure runs in its own modal), the idempotency key the service chose (it changes with
//! the amount). A charge for an order with an intent confirms that intent
//! (`POST /v1/payment_intents/{id}/confirm`, keyed `confirm-<intent>`); cancelling is
//! `POST /v1/payment_intents/{id}/cancel`, and an intent that was paid first is reported
//! as such, not as an error.
//!
//! Refunds: one `POST /v1/refunds` for the whole PaymentIntent with `metadata[order_id]`
//! and `refund-<order id>` as `Idempotency-Key` (one refund per order). A refund that
//! Stripe reports `failed` or `canceled` is an error; `charge_already_refunded` is done.
//! A destination charge's refund also sets `reverse_transfer` and `refund_application_fee`,
//! so the seller's share and the platform's fee go back with it.
//!
//! Sellers (Stripe Connect): a seller's Express account is `POST /v1/accounts` keyed
//! `account-<seller id>`; onboarding is an Account Link (`POST /v1/account_links`, type
//! `account_onboarding`); an account is ready when `details_submitted` and
//! `payouts_enabled`. An onboarded seller's sales are destination charges
//! (`transfer_data[destination]`, `application_fee_amount`); earnings held before are sent
//! with `POST /v1/transfers` (keyed by the claim) and taken back after a refund with
//! `POST /v1/transfers/{id}/reversals`. These four calls read only the fields they need
//! (the typed Account of async-stripe-connect wants the whole object).

use super::{
    ChargeOutcome, ChargeRequest, Destination, GatewayError, IntentRequest, IntentState,
    IntentView, OpenIntent, PaymentGateway, TransferRequest,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;
use stripe::{
    ApiErrors, ApiErrorsCode, ApiErrorsType, Client, ClientBuilder, IdempotencyKey,
    RequestStrategy, StripeError, StripeRequest,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::PaymentIntent;
use stripe_core::PaymentIntentStatus;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CancelPaymentIntentCancellationReason, ConfirmPaymentIntent,
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentTransferData,
    RetrievePaymentIntent, SearchPaymentIntent,
};
use stripe_core::refund::CreateRefund;

/// Charges through the Stripe API.
#[derive(Debug, Clone)]
pub struct StripeGateway {
    client: Client,
}

impl StripeGateway {
    /// A gateway with `secret_key`, talking to `api_base` (Stripe itself when `None`), each
    /// HTTP attempt bounded by `timeout`.
    pub fn new(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut builder = ClientBuilder::new(secret_key).timeout(timeout).app_info(
            "StuffMart",
            Some(env!("CARGO_PKG_VERSION").to_owned()),
            None,
        );
        if let Some(base) = api_base {
            // The client appends `v1/...` to the base as is.
            let base = if base.ends_with('/') {
                base.to_owned()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("invalid Stripe configuration: {e}"))?;
        Ok(Self { client })
    }
}

/// Sorts a Stripe error into a decline or a gateway error.
pub fn classify(err: StripeError) -> Result<ChargeOutcome, GatewayError> {
    match err {
        StripeError::Stripe(api, status) => classify_api(&api, status),
        StripeError::ClientError(e) => Err(GatewayError::Unavailable(format!("network: {e}"))),
        StripeError::Timeout => Err(GatewayError::Unavailable("timed out".into())),
        StripeError::JSONDeserialize(e) => Err(GatewayError::Failed(format!(
            "unreadable Stripe answer: {e}"
        ))),
        StripeError::ConfigError(e) => Err(GatewayError::Failed(format!("configuration: {e}"))),
    }
}

fn classify_api(api: &ApiErrors, status: u16) -> Result<ChargeOutcome, GatewayError> {
    let code = api.code.as_ref().map(|c| c.as_str().to_owned());
    let detail = format!(
        "HTTP {status} {} {} {}",
        api.type_.as_str(),
        code.as_deref().unwrap_or("-"),
        api.message.as_deref().unwrap_or("")
    );
    match (&api.type_, &api.code) {
        (ApiErrorsType::CardError, _) => Ok(ChargeOutcome::Declined {
            reason: api
                .decline_code
                .clone()
                .or(code)
                .unwrap_or_else(|| "card_declined".into()),
        }),
        (_, Some(ApiErrorsCode::ResourceMissing))
            if api.param.as_deref() == Some("payment_method") =>
        {
            Err(GatewayError::UnknownPaymentMethod)
        }
        (_, Some(ApiErrorsCode::AmountTooSmall)) => Err(GatewayError::AmountTooSmall),
        (ApiErrorsType::IdempotencyError, _)
        | (_, Some(ApiErrorsCode::IdempotencyKeyInUse | ApiErrorsCode::LockTimeout)) => {
            Err(GatewayError::InProgress(detail))
        }
        _ if status == 429 || status >= 500 || api.type_ == ApiErrorsType::ApiError => {
            Err(GatewayError::Unavailable(detail))
        }
        _ => Err(GatewayError::Failed(detail)),
    }
}

/// A Stripe error that can only be a gateway error (no decline is expected there).
fn gateway_error(e: StripeError, what: &str) -> GatewayError {
    match classify(e) {
        Err(e) => e,
        Ok(outcome) => GatewayError::Failed(format!("{what} refused: {outcome:?}")),
    }
}

/// True for the error Stripe gives when an intent is not in a state the call needs.
fn unexpected_state(e: &StripeError) -> bool {
    matches!(e, StripeError::Stripe(api, _) if api.code == Some(ApiErrorsCode::PaymentIntentUnexpectedState))
}

/// True when Stripe knows no such object.
fn missing(e: &StripeError) -> bool {
    matches!(e, StripeError::Stripe(api, _) if api.code == Some(ApiErrorsCode::ResourceMissing))
}

/// The decline code of an intent's last failed attempt, or its status.
fn decline_of(pi: &PaymentIntent) -> String {
    pi.last_payment_error
        .as_ref()
        .and_then(|e| {
            e.decline_code
                .clone()
                .or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))
        })
        .unwrap_or_else(|| pi.status.as_str().to_owned())
}

/// Where a Stripe PaymentIntent stands.
pub fn state_of(pi: &PaymentIntent) -> IntentState {
    match pi.status {
        PaymentIntentStatus::Succeeded => IntentState::Succeeded,
        PaymentIntentStatus::Canceled => IntentState::Canceled,
        PaymentIntentStatus::RequiresPaymentMethod if pi.last_payment_error.is_some() => {
            IntentState::Declined {
                reason: decline_of(pi),
            }
        }
        PaymentIntentStatus::RequiresPaymentMethod
        | PaymentIntentStatus::RequiresConfirmation
        | PaymentIntentStatus::RequiresAction => IntentState::AwaitingBuyer,
        // Captured later, or a status newer than this code: money may be moving.
        _ => IntentState::Processing,
    }
}

/// What a confirmed PaymentIntent means for the charge.
fn outcome_of(pi: &PaymentIntent) -> Result<ChargeOutcome, GatewayError> {
    let provider_id = pi.id.to_string();
    match pi.status {
        PaymentIntentStatus::Succeeded => Ok(ChargeOutcome::Succeeded { provider_id }),
        PaymentIntentStatus::Processing => Ok(ChargeOutcome::Processing { provider_id }),
        PaymentIntentStatus::RequiresPaymentMethod | PaymentIntentStatus::RequiresAction => {
            Ok(ChargeOutcome::Declined {
                reason: pi
                    .last_payment_error
                    .as_ref()
                    .and_then(|e| e.decline_code.clone())
                    .unwrap_or_else(|| pi.status.as_str().to_owned()),
            })
        }
        ref other => Err(GatewayError::Failed(format!(
            "PaymentIntent {} is {}",
            pi.id,
            other.as_str()
        ))),
    }
}

/// An `Idempotency-Key` header value.
fn idempotency_key(key: impl AsRef<str>) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key).map_err(|e| GatewayError::Failed(format!("idempotency key: {e}")))
}

/// A PaymentIntent for an order, as both ways of paying create it: the order, buyer and
/// coupon in metadata (Stripe's events name them), automatic payment methods without
/// redirects.
fn new_intent(
    order_id: &str,
    user_id: &str,
    amount_cents: i64,
    currency: &str,
    coupon_code: Option<&str>,
    destination: Option<&Destination>,
) -> Result<CreatePaymentIntent, GatewayError> {
    let mut metadata = HashMap::from([
        ("order_id".to_owned(), order_id.to_owned()),
        ("user_id".to_owned(), user_id.to_owned()),
    ]);
    if let Some(code) = coupon_code {
        metadata.insert("coupon_code".to_owned(), code.to_owned());
    }
    let mut automatic = CreatePaymentIntentAutomaticPaymentMethods::new(true);
    automatic.allow_redirects =
        Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
    let currency = stripe_types::Currency::from_str(currency)
        .map_err(|e| GatewayError::Failed(format!("currency: {e:?}")))?;
    let intent = CreatePaymentIntent::new(amount_cents, currency)
        .automatic_payment_methods(automatic)
        .metadata(metadata);
    Ok(match destination {
        None => intent,
        Some(d) => intent
            .transfer_data(CreatePaymentIntentTransferData::new(d.account_id.clone()))
            .application_fee_amount(d.fee_cents),
    })
}

/// The fields of a connected account StuffMart reads.
#[derive(miniserde::Deserialize)]
struct AccountView {
    id: String,
    details_submitted: Option<bool>,
    payouts_enabled: Option<bool>,
}

/// An object answered with its id and, for links, its URL.
#[derive(miniserde::Deserialize)]
struct Created {
    id: Option<String>,
    url: Option<String>,
}

/// `POST /v1/accounts` form.
#[derive(serde::Serialize)]
struct NewAccount<'a> {
    r#type: &'static str,
    metadata: HashMap<&'static str, &'a str>,
    capabilities: HashMap<&'static str, HashMap<&'static str, bool>>,
}

/// `POST /v1/account_links` form.
#[derive(serde::Serialize)]
struct NewAccountLink<'a> {
    account: &'a str,
    refresh_url: &'a str,
    return_url: &'a str,
    r#type: &'static str,
}

/// `POST /v1/transfers` form.
#[derive(serde::Serialize)]
struct NewTransfer<'a> {
    amount: i64,
    currency: &'a str,
    destination: &'a str,
    transfer_group: &'a str,
}

/// `POST /v1/transfers/{id}/reversals` form.
#[derive(serde::Serialize)]
struct NewReversal<'a> {
    amount: i64,
    metadata: HashMap<&'static str, &'a str>,
}

impl StripeGateway {
    /// Confirms the intent `id` (opened by `payment:intent`) with the buyer's method; an
    /// intent confirmed before answers how that ended.
    async fn confirm(&self, id: &str, payment_method: &str) -> Result<ChargeOutcome, GatewayError> {
        let key = idempotency_key(format!("confirm-{id}"))?;
        let confirmed = ConfirmPaymentIntent::new(id)
            .payment_method(payment_method)
            .error_on_requires_action(true)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await;
        match confirmed {
            Ok(pi) => outcome_of(&pi),
            Err(e) if unexpected_state(&e) => {
                let pi = RetrievePaymentIntent::new(id)
                    .send(&self.client)
                    .await
                    .map_err(|e| gateway_error(e, "retrieve"))?;
                match state_of(&pi) {
                    IntentState::Succeeded => Ok(ChargeOutcome::Succeeded {
                        provider_id: pi.id.to_string(),
                    }),
                    IntentState::Processing => Ok(ChargeOutcome::Processing {
                        provider_id: pi.id.to_string(),
                    }),
                    IntentState::Declined { reason } => Ok(ChargeOutcome::Declined { reason }),
                    state => Err(GatewayError::InProgress(format!(
                        "intent {id} cannot be confirmed: {state:?}"
                    ))),
                }
            }
            Err(e) => classify(e),
        }
    }
}

#[async_trait]
impl PaymentGateway for StripeGateway {
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if let Some(id) = &req.intent_id {
            return self.confirm(id, &req.payment_method).await;
        }
        let key = idempotency_key(&req.order_id)?;
        let intent = new_intent(
            &req.order_id,
            &req.user_id,
            req.amount_cents,
            &req.currency,
            req.coupon_code.as_deref(),
            req.destination.as_ref(),
        )?
        .confirm(true)
        .payment_method(req.payment_method.clone())
        .error_on_requires_action(true)
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&self.client)
        .await;
        match intent {
            Ok(pi) => outcome_of(&pi),
            Err(e) => classify(e),
        }
    }

    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError> {
        let key = idempotency_key(format!("refund-{order_id}"))?;
        let metadata = HashMap::from([("order_id".to_owned(), order_id.to_owned())]);
        let mut refund = CreateRefund::new()
            .payment_intent(provider_id)
            .metadata(metadata);
        if destination {
            refund = refund.reverse_transfer(true).refund_application_fee(true);
        }
        let refund = refund
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await;
        let refund = match refund {
            Ok(r) => r,
            Err(StripeError::Stripe(api, _))
                if api.code == Some(ApiErrorsCode::ChargeAlreadyRefunded) =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(match classify(e) {
                    Err(e) => e,
                    Ok(outcome) => GatewayError::Failed(format!("refund refused: {outcome:?}")),
                });
            }
        };
        match refund.status.as_deref() {
            Some("failed" | "canceled") => Err(GatewayError::Failed(format!(
                "refund {} is {}",
                refund.id,
                refund.status.as_deref().unwrap_or("-")
            ))),
            _ => Ok(()),
        }
    }

    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        // Order ids are opaque to Stripe's query language: quotes would end the string.
        if order_id.contains(['\'', '\\']) {
            return Ok(None);
        }
        let query = format!("metadata['order_id']:'{order_id}'");
        let found = match SearchPaymentIntent::new(query)
            .limit(10)
            .send(&self.client)
            .await
        {
            Ok(list) => list.data,
            Err(e) => return Err(gateway_error(e, "search")),
        };
        let with = |status: PaymentIntentStatus| found.iter().find(|pi| pi.status == status);
        if let Some(pi) = with(PaymentIntentStatus::Succeeded) {
            return Ok(Some(ChargeOutcome::Succeeded {
                provider_id: pi.id.to_string(),
            }));
        }
        if let Some(pi) = with(PaymentIntentStatus::Processing) {
            return Ok(Some(ChargeOutcome::Processing {
                provider_id: pi.id.to_string(),
            }));
        }
        // A cancelled intent, or one still waiting for a buyer, charged nothing.
        Ok(found.iter().find_map(|pi| match state_of(pi) {
            IntentState::Declined { reason } => Some(ChargeOutcome::Declined { reason }),
            _ => None,
        }))
    }

    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError> {
        let key = idempotency_key(&req.idempotency_key)?;
        let pi = new_intent(
            &req.order_id,
            &req.user_id,
            req.amount_cents,
            &req.currency,
            req.coupon_code.as_deref(),
            req.destination.as_ref(),
        )?
        .customize()
        .request_strategy(RequestStrategy::Idempotent(key))
        .send(&self.client)
        .await
        .map_err(|e| gateway_error(e, "open intent"))?;
        let client_secret = pi.client_secret.clone().ok_or_else(|| {
            GatewayError::Failed(format!("intent {} has no client secret", pi.id))
        })?;
        Ok(OpenIntent {
            id: pi.id.to_string(),
            client_secret,
        })
    }

    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError> {
        match RetrievePaymentIntent::new(id).send(&self.client).await {
            Ok(pi) => Ok(Some(IntentView {
                state: state_of(&pi),
                client_secret: pi.client_secret.clone().unwrap_or_default(),
                amount_cents: pi.amount,
            })),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(gateway_error(e, "retrieve")),
        }
    }

    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError> {
        match CancelPaymentIntent::new(id)
            .cancellation_reason(CancelPaymentIntentCancellationReason::Abandoned)
            .send(&self.client)
            .await
        {
            Ok(pi) => Ok(state_of(&pi)),
            Err(e) if missing(&e) => Ok(IntentState::Canceled),
            // Paid, processing or cancelled before: say which.
            Err(e) if unexpected_state(&e) => {
                let pi = RetrievePaymentIntent::new(id)
                    .send(&self.client)
                    .await
                    .map_err(|e| gateway_error(e, "retrieve"))?;
                Ok(state_of(&pi))
            }
            Err(e) => Err(gateway_error(e, "cancel")),
        }
    }

    async fn create_account(&self, seller_id: &str) -> Result<String, GatewayError> {
        let key = idempotency_key(format!("account-{seller_id}"))?;
        let form = NewAccount {
            r#type: "express",
            metadata: HashMap::from([("seller_id", seller_id)]),
            capabilities: HashMap::from([("transfers", HashMap::from([("requested", true)]))]),
        };
        let account: AccountView = RequestBuilder::new(StripeMethod::Post, "/accounts")
            .form(&form)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| gateway_error(e, "create account"))?;
        Ok(account.id)
    }

    async fn onboarding_link(
        &self,
        account_id: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        let form = NewAccountLink {
            account: account_id,
            refresh_url,
            return_url,
            r#type: "account_onboarding",
        };
        let link: Created = RequestBuilder::new(StripeMethod::Post, "/account_links")
            .form(&form)
            .customize()
            .send(&self.client)
            .await
            .map_err(|e| gateway_error(e, "account link"))?;
        link.url
            .ok_or_else(|| GatewayError::Failed("account link without a url".into()))
    }

    async fn account_ready(&self, account_id: &str) -> Result<bool, GatewayError> {
        let account: AccountView =
            RequestBuilder::new(StripeMethod::Get, format!("/accounts/{account_id}"))
                .customize()
                .send(&self.client)
                .await
                .map_err(|e| gateway_error(e, "retrieve account"))?;
        Ok(account.details_submitted == Some(true) && account.payouts_enabled == Some(true))
    }

    async fn transfer(&self, req: &TransferRequest) -> Result<String, GatewayError> {
        let key = idempotency_key(format!("transfer-{}", req.key))?;
        let form = NewTransfer {
            amount: req.amount_cents,
            currency: &req.currency,
            destination: &req.account_id,
            transfer_group: &req.key,
        };
        let transfer: Created = RequestBuilder::new(StripeMethod::Post, "/transfers")
            .form(&form)
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|e| gateway_error(e, "transfer"))?;
        transfer
            .id
            .ok_or_else(|| GatewayError::Failed("transfer without an id".into()))
    }

    async fn reverse_transfer(
        &self,
        transfer_id: &str,
        amount_cents: i64,
        key: &str,
    ) -> Result<(), GatewayError> {
        let idem = idempotency_key(format!("reversal-{key}"))?;
        let form = NewReversal {
            amount: amount_cents,
            metadata: HashMap::from([("reason_key", key)]),
        };
        let _: Created = RequestBuilder::new(
            StripeMethod::Post,
            format!("/transfers/{transfer_id}/reversals"),
        )
        .form(&form)
        .customize()
        .request_strategy(RequestStrategy::Idempotent(idem))
        .send(&self.client)
        .await
        .map_err(|e| gateway_error(e, "reverse transfer"))?;
        Ok(())
    }
}
