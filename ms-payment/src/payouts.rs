//! Sellers get paid (Stripe Connect): `payout:onboard`, `payout:status`, Stripe's
//! `account.updated`, and the ledger's transfers.
//!
//! ```text
//! seller ──payout:onboard──▶ connected account (made once, keyed by the seller)
//!                            └─▶ onboarding link ──▶ Stripe ──▶ PUBLIC_URL/selling?payouts=return
//! account ready (account.updated, or asked on payout:onboard / payout:status)
//!   ──▶ onboarded ──▶ held earnings claimed under one key ──▶ transfer (keyed) ──▶ transfer id
//! a sale of an onboarded seller ──▶ destination charge (application_fee_amount = the fee)
//! a sale of anyone else        ──▶ payment with payout `held` (the ledger)
//! refund of a transferred sale ──▶ transfer reversal of its earnings ──▶ `reversed`
//! ```
//!
//! A claim is written before the transfer is sent, so a crash in between leaves the claim
//! unsent; reconciliation sends it again with the same key (Stripe keeps idempotency keys
//! for 24 hours, and reconciliation runs every few minutes).

use crate::gateway::TransferRequest;
use crate::service::PaymentService;
use crate::store::{PaymentRow, Payout, PayoutAccount};
use ms_common::ApiError;
use ms_common::contract::{PayoutLink, PayoutStatus};
use ms_common::messaging::RpcContext;
use serde_json::Value;

/// Most sellers and reversals one reconciliation pass pays out (the next takes the rest).
const PAYOUT_BATCH: u32 = 100;

fn store_err(e: crate::store::StoreError) -> ApiError {
    ApiError::internal_from(e)
}

impl PaymentService {
    /// `payout:onboard`: the caller's connected account (made on the first call) and the
    /// link to fill it in. An account that is ready is marked onboarded and paid what the
    /// ledger holds.
    pub(crate) async fn payout_onboard(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let account = self.account_of(&user.id).await?;
        let back = |state: &str| format!("{}/selling?payouts={state}", self.public_url);
        let url = if account.onboarded {
            back("return")
        } else {
            self.gateway
                .onboarding_link(&account.account_id, &back("refresh"), &back("return"))
                .await
                .map_err(|e| e.to_api())?
        };
        if !account.onboarded {
            self.refresh_account(&account).await?;
        }
        serde_json::to_value(PayoutLink { url }).map_err(ApiError::internal_from)
    }

    /// `payout:status`: whether the caller is onboarded and what the ledger holds for
    /// them. An account that became ready since is marked so (and paid) first.
    pub(crate) async fn payout_status(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let user = ctx.require_user()?;
        let mut account = self
            .ledger
            .payout_account(&user.id)
            .await
            .map_err(store_err)?;
        if let Some(a) = account.as_mut().filter(|a| !a.onboarded) {
            a.onboarded = self.refresh_account(a).await?;
        }
        let totals = self
            .ledger
            .payout_totals(&user.id)
            .await
            .map_err(store_err)?;
        serde_json::to_value(PayoutStatus {
            started: account.is_some(),
            onboarded: account.is_some_and(|a| a.onboarded),
            held_cents: totals.held_cents,
            paid_out_cents: totals.paid_out_cents,
            currency: self.currency.to_string(),
        })
        .map_err(ApiError::internal_from)
    }

    /// Stripe's `account.updated`: an account that can receive money is onboarded and
    /// paid what the ledger holds.
    pub(crate) async fn account_updated(
        &self,
        account_id: &str,
        ready: bool,
    ) -> Result<(), ApiError> {
        if !ready {
            return Ok(());
        }
        match self
            .ledger
            .set_onboarded(account_id)
            .await
            .map_err(store_err)?
        {
            Some(seller) => {
                tracing::info!(account_id, "seller onboarded");
                self.pay_held(&seller).await
            }
            None => {
                tracing::warn!(account_id, "account.updated for an account not ours");
                Ok(())
            }
        }
    }

    /// The seller's connected account, made (once) if they have none.
    async fn account_of(&self, seller_id: &str) -> Result<PayoutAccount, ApiError> {
        if let Some(a) = self
            .ledger
            .payout_account(seller_id)
            .await
            .map_err(store_err)?
        {
            return Ok(a);
        }
        let account_id = self
            .gateway
            .create_account(seller_id)
            .await
            .map_err(|e| e.to_api())?;
        self.ledger
            .add_payout_account(&PayoutAccount {
                seller_id: seller_id.to_owned(),
                account_id,
                onboarded: false,
                created_at: ms_common::time::now(),
            })
            .await
            .map_err(store_err)
    }

    /// Asks the gateway whether the account is ready; if so marks it onboarded and pays
    /// the ledger out. Whether it is onboarded now.
    async fn refresh_account(&self, account: &PayoutAccount) -> Result<bool, ApiError> {
        let ready = self
            .gateway
            .account_ready(&account.account_id)
            .await
            .map_err(|e| e.to_api())?;
        if ready {
            self.account_updated(&account.account_id, true).await?;
        }
        Ok(ready)
    }

    /// Sends an onboarded seller what the ledger holds: unsent claims first (a crash or a
    /// failed call left them), then a new claim of every held, unrefunded payment.
    pub(crate) async fn pay_held(&self, seller_id: &str) -> Result<(), ApiError> {
        let Some(account) = self
            .ledger
            .payout_account(seller_id)
            .await
            .map_err(store_err)?
            .filter(|a| a.onboarded)
        else {
            return Ok(());
        };
        let key = format!("payout-{}", uuid::Uuid::now_v7().simple());
        let claimed = self
            .ledger
            .claim_held(seller_id, &key)
            .await
            .map_err(store_err)?;
        if claimed > 0 {
            tracing::info!(seller_id, claimed, %key, "held earnings claimed for a transfer");
        }
        for (key, payments) in self
            .ledger
            .unsent_transfers(seller_id)
            .await
            .map_err(store_err)?
        {
            let amount: i64 = payments.iter().map(PaymentRow::earned_cents).sum();
            let transfer_id = if amount > 0 {
                self.gateway
                    .transfer(&TransferRequest {
                        account_id: account.account_id.clone(),
                        amount_cents: amount,
                        currency: self.currency.to_string(),
                        key: key.clone(),
                    })
                    .await
                    .map_err(|e| e.to_api())?
            } else {
                // Free orders earn nothing: nothing to send, the claim is done.
                "none".to_owned()
            };
            self.ledger
                .set_transfer_id(&key, &transfer_id)
                .await
                .map_err(store_err)?;
            tracing::info!(seller_id, amount, %transfer_id, "earnings transferred");
        }
        Ok(())
    }

    /// Takes a refunded payment's earnings back from the seller if they were transferred;
    /// a failure is left to reconciliation.
    pub(crate) async fn reverse_earnings(&self, payment: &PaymentRow) {
        if payment.payout != Payout::Transferred || payment.refunded_at.is_none() {
            return;
        }
        let Some(transfer_id) = payment.transfer_id.as_deref() else {
            return;
        };
        let done = if transfer_id == "none" || payment.earned_cents() == 0 {
            Ok(())
        } else {
            self.gateway
                .reverse_transfer(
                    transfer_id,
                    payment.earned_cents(),
                    &format!("refund-{}", payment.order_id),
                )
                .await
        };
        match done {
            Ok(()) => {
                if let Err(e) = self.ledger.set_reversed(&payment.order_id).await {
                    tracing::warn!(order_id = %payment.order_id, error = %e, "reversal not recorded; reconciliation retries it");
                }
            }
            Err(e) => {
                tracing::warn!(order_id = %payment.order_id, error = %e, "transfer reversal failed; reconciliation retries it")
            }
        }
    }

    /// Reconciliation's payout pass: onboarded sellers with held earnings or unsent
    /// transfers are paid, refunded sales' transferred earnings taken back.
    pub async fn settle_payouts(&self) {
        match self.ledger.payout_sellers(PAYOUT_BATCH).await {
            Ok(sellers) => {
                for seller in sellers {
                    if let Err(e) = self.pay_held(&seller).await {
                        tracing::warn!(seller_id = %seller, error = ?e, "payout not sent yet");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation: could not list payouts"),
        }
        match self.ledger.reversals_due(PAYOUT_BATCH).await {
            Ok(due) => {
                for payment in due {
                    self.reverse_earnings(&payment).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconciliation: could not list reversals"),
        }
    }
}
