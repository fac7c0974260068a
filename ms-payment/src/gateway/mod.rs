//! Payment gateways: the trait the service charges through, and its two implementations.
//!
//! - [`stripe::StripeGateway`]: a Stripe PaymentIntent created and confirmed in one call,
//!   the order id as idempotency key (selected when `STRIPE_SECRET_KEY` is set), or one
//!   opened for the browser's Payment Element (`payment:intent`) and confirmed there or by
//!   the server. Refunds are a Stripe Refund of that PaymentIntent, keyed by the order id.
//! - [`builtin::TestGateway`]: no network; answers Stripe's test payment method ids the way
//!   Stripe's test mode does (the default).
//!
//! A gateway says whether money moved ([`ChargeOutcome`]) or that it could not tell or was
//! misused ([`GatewayError`]); [`GatewayError::to_api`] is the one place those become the
//! contract's envelope.

pub mod builtin;
pub mod stripe;

use async_trait::async_trait;
use ms_common::ApiError;

/// One charge to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The order paid for (also the idempotency key: one charge per order).
    pub order_id: String,
    /// The buyer (sent as metadata).
    pub user_id: String,
    /// Amount in the currency's smallest unit, > 0.
    pub amount_cents: i64,
    /// ISO currency code, lowercase (e.g. `usd`).
    pub currency: String,
    /// The payment method id (e.g. `pm_card_visa`).
    pub payment_method: String,
    /// The coupon redeemed for this charge (sent as metadata, so a charge that Stripe's
    /// webhook reports first is recorded with it).
    pub coupon_code: Option<String>,
    /// The PaymentIntent `payment:intent` opened for this order: confirm it rather than
    /// make a second one (two intents could both be paid).
    pub intent_id: Option<String>,
    /// The seller's connected account when the seller is onboarded (a destination
    /// charge); `None`: the platform keeps the money and the ledger holds the earnings.
    pub destination: Option<Destination>,
}

/// A destination charge's other party: Stripe moves the amount less the platform's fee to
/// the seller's connected account as part of the charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The seller's connected account (`acct_…`).
    pub account_id: String,
    /// `application_fee_amount`: what the platform keeps.
    pub fee_cents: i64,
}

/// Held earnings sent to a seller's connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The seller's connected account.
    pub account_id: String,
    /// The sum of the earnings claimed for it.
    pub amount_cents: i64,
    /// ISO code, lower-case.
    pub currency: String,
    /// Idempotency key (the claim's key): sending it again never pays twice.
    pub key: String,
}

/// A PaymentIntent to open for the buyer's browser to confirm (`payment:intent`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    /// The order paid for (metadata: Stripe's events name it).
    pub order_id: String,
    /// The buyer (metadata).
    pub user_id: String,
    /// Amount in the currency's smallest unit, at least the smallest charge.
    pub amount_cents: i64,
    /// ISO currency code, lowercase.
    pub currency: String,
    /// The coupon redeemed for it (metadata, so the webhook records the payment with it).
    pub coupon_code: Option<String>,
    /// Sending the same key again gives the same intent; a new amount gets a new key.
    pub idempotency_key: String,
    /// The seller's connected account for a destination charge (see [`ChargeRequest`]).
    pub destination: Option<Destination>,
}

/// A PaymentIntent the browser can confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIntent {
    /// The gateway's id (`pi_…`).
    pub id: String,
    /// What the browser confirms it with; never logged.
    pub client_secret: String,
}

/// Where a PaymentIntent stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentState {
    /// Waiting for the buyer to confirm it (no payment attempt yet).
    AwaitingBuyer,
    /// The money is on its way.
    Processing,
    /// Paid.
    Succeeded,
    /// The buyer's attempt was declined.
    Declined {
        /// The decline code, for logs.
        reason: String,
    },
    /// Cancelled: it can never be paid.
    Canceled,
}

/// A PaymentIntent as the gateway knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentView {
    /// Where it stands.
    pub state: IntentState,
    /// What the browser confirms it with (to hand the same intent out again).
    pub client_secret: String,
    /// What it charges.
    pub amount_cents: i64,
}

/// What the gateway decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money moved.
    Succeeded {
        /// The gateway's reference (PaymentIntent id).
        provider_id: String,
    },
    /// The card was declined; nothing moved.
    Declined {
        /// The decline code, for logs.
        reason: String,
    },
    /// The money is on its way (a bank debit, say): Stripe's webhook says how it ends.
    Processing {
        /// The gateway's reference (PaymentIntent id).
        provider_id: String,
    },
}

/// Why a charge has no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The payment method id is not one the gateway knows.
    #[error("unknown payment method")]
    UnknownPaymentMethod,
    /// The amount is below what the gateway can charge.
    #[error("amount too small")]
    AmountTooSmall,
    /// Another charge with this order's idempotency key is in flight or differed.
    #[error("conflicting charge in progress: {0}")]
    InProgress(String),
    /// The gateway could not be reached or was overloaded; trying later may work.
    #[error("gateway unavailable: {0}")]
    Unavailable(String),
    /// Anything else (configuration, unexpected answers).
    #[error("gateway failed: {0}")]
    Failed(String),
}

impl GatewayError {
    /// The client-facing error; details of unexpected failures are logged, never sent.
    pub fn to_api(&self) -> ApiError {
        match self {
            GatewayError::UnknownPaymentMethod => {
                ApiError::field("paymentMethod", "Unknown payment method")
            }
            // Coupons that leave too little are refused before the gateway is asked; this
            // is the gateway's own minimum (another currency's, say).
            GatewayError::AmountTooSmall => {
                ApiError::bad_request("The amount is too small to charge")
            }
            GatewayError::InProgress(detail) => {
                tracing::warn!(%detail, "gateway: conflicting charge");
                ApiError::conflict(crate::domain::IN_PROGRESS)
            }
            GatewayError::Unavailable(detail) => {
                tracing::error!(%detail, "gateway unavailable");
                ApiError::unavailable()
            }
            GatewayError::Failed(detail) => ApiError::internal_from(format!("gateway: {detail}")),
        }
    }
}

/// Something that can charge a payment method and give the money back.
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// Charges once per order (repeating a call for the same order must not charge twice).
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError>;
    /// Refunds the whole charge `provider_id` made for `order_id`, once per order
    /// (repeating a call for the same order must not refund twice; a charge already
    /// refunded counts as done). `destination`: it was a destination charge, so the
    /// seller's share and the platform's fee are taken back with it.
    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError>;
    /// What became of the charge made for `order_id` when its answer was lost (a timeout,
    /// a store failure after it, a processing charge): `None` when the gateway knows no
    /// charge for the order. Reconciliation settles pending charges with it.
    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError>;
    /// Opens a PaymentIntent for the browser (the same key gives the same intent).
    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError>;
    /// The PaymentIntent `id`, or `None` when the gateway does not know it.
    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError>;
    /// Cancels the PaymentIntent `id` so it can never be paid; where it stands afterwards
    /// ([`IntentState::Canceled`], or what it became first: a payment that raced the
    /// cancel is not lost). An unknown intent counts as cancelled.
    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError>;
    /// Creates the seller's connected account (Stripe Express); the same seller asked
    /// again gets the same account (keyed by the seller).
    async fn create_account(&self, _seller_id: &str) -> Result<String, GatewayError> {
        Err(no_payouts())
    }
    /// The URL where the seller fills in their account (Stripe's hosted onboarding),
    /// sending them to `return_url` when done and `refresh_url` when the link expired.
    async fn onboarding_link(
        &self,
        _account_id: &str,
        _refresh_url: &str,
        _return_url: &str,
    ) -> Result<String, GatewayError> {
        Err(no_payouts())
    }
    /// True when the account can receive money (details submitted, payouts enabled).
    async fn account_ready(&self, _account_id: &str) -> Result<bool, GatewayError> {
        Err(no_payouts())
    }
    /// Sends held earnings to a connected account; the transfer's id.
    async fn transfer(&self, _req: &TransferRequest) -> Result<String, GatewayError> {
        Err(no_payouts())
    }
    /// Takes `amount_cents` of transfer `transfer_id` back (a refunded sale), once per
    /// `key`.
    async fn reverse_transfer(
        &self,
        _transfer_id: &str,
        _amount_cents: i64,
        _key: &str,
    ) -> Result<(), GatewayError> {
        Err(no_payouts())
    }
}

/// What a gateway without payouts answers (test doubles that only charge).
fn no_payouts() -> GatewayError {
    GatewayError::Failed("this gateway pays no sellers".into())
}
