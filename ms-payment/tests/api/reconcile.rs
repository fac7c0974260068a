//! Reconciliation: a charge whose end `payment:create` could not record is settled later
//! from what the gateway says, with its coupon redemption kept or given back.

use crate::helpers::*;
use async_trait::async_trait;
use ms_common::events::Event;
use ms_payment::gateway::builtin::TestGateway;
use ms_payment::gateway::{
    ChargeOutcome, ChargeRequest, GatewayError, IntentRequest, IntentState, IntentView, OpenIntent,
    PaymentGateway,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the gateway does with a charge, and what the caller hears.
#[derive(Clone, Copy)]
enum Mode {
    /// Charges, and answers truly.
    Answer,
    /// Charges, but the answer is lost (a timeout after Stripe charged).
    LoseReply,
    /// Never charges: the request is lost on its way.
    LoseRequest,
    /// Answers "processing"; the charge succeeds afterwards.
    ProcessingThenSucceeds,
}

/// The built-in gateway behind a network that loses things; it remembers what it charged
/// so `find_charge` can tell, as Stripe's search does.
struct Flaky {
    mode: Mode,
    charged: Mutex<HashMap<String, ChargeOutcome>>,
    inner: TestGateway,
}

impl Flaky {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            charged: Mutex::new(HashMap::new()),
            inner: TestGateway::default(),
        })
    }
}

#[async_trait]
impl PaymentGateway for Flaky {
    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, GatewayError> {
        if let Mode::LoseRequest = self.mode {
            return Err(GatewayError::Unavailable("connection reset".into()));
        }
        let outcome = self.inner.charge(req).await?;
        self.charged
            .lock()
            .unwrap()
            .insert(req.order_id.clone(), outcome.clone());
        match (self.mode, outcome) {
            (Mode::LoseReply, _) => Err(GatewayError::Unavailable("timed out".into())),
            (Mode::ProcessingThenSucceeds, ChargeOutcome::Succeeded { provider_id }) => {
                Ok(ChargeOutcome::Processing { provider_id })
            }
            (_, outcome) => Ok(outcome),
        }
    }
    async fn refund(
        &self,
        provider_id: &str,
        order_id: &str,
        destination: bool,
    ) -> Result<(), GatewayError> {
        self.inner.refund(provider_id, order_id, destination).await
    }
    async fn find_charge(&self, order_id: &str) -> Result<Option<ChargeOutcome>, GatewayError> {
        Ok(self.charged.lock().unwrap().get(order_id).cloned())
    }
    async fn open_intent(&self, req: &IntentRequest) -> Result<OpenIntent, GatewayError> {
        self.inner.open_intent(req).await
    }
    async fn intent(&self, id: &str) -> Result<Option<IntentView>, GatewayError> {
        self.inner.intent(id).await
    }
    async fn cancel_intent(&self, id: &str) -> Result<IntentState, GatewayError> {
        self.inner.cancel_intent(id).await
    }
}

/// An app over `gateway` and a store whose next payment write can be made to fail; a
/// buyer, an admin's 50 % coupon and an order of 2000 cents.
async fn setup(gateway: Arc<Flaky>) -> (App, Arc<CountingStore>, Session, String, String) {
    let store = CountingStore::in_memory().await;
    let app = spawn_with(|_| {}, gateway, Some(store.clone())).await;
    let ann = app.signup("ann@example.com").await;
    let admin = app.admin().await;
    let code = app.create_coupon(&admin, json!({"percentOff": 50})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = app.order_for(&ann, 2000).await;
    (app, store, ann, code, order.id)
}

async fn pay(app: &App, who: &Session, order_id: &str, code: &str) -> ms_common::ApiError {
    app.pay(
        who,
        json!({"orderId": order_id, "paymentMethod": "pm_card_visa", "couponCode": code}),
    )
    .await
    .unwrap_err()
}

/// Runs reconciliation on everything pending and expects the order's payment.
async fn reconciled_payment(app: &App, order_id: &str) -> ms_common::events::PaymentRecord {
    assert_eq!(app.payment.service.reconcile(Duration::ZERO).await, 1);
    match app.next_event().await.event {
        Event::PaymentCreated(p) => {
            assert_eq!(p.order_id, order_id);
            p
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_charge_whose_reply_was_lost_is_recorded_by_reconciliation() {
    let (app, _, ann, code, order_id) = setup(Flaky::new(Mode::LoseReply)).await;
    assert_eq!(pay(&app, &ann, &order_id, &code).await.status, 503);
    // The charge may have happened: the redemption stays with it, nothing is stored yet.
    assert_eq!(app.redemptions(&code).await, 1);
    assert!(
        app.payment
            .store
            .pending_charge(&order_id)
            .await
            .unwrap()
            .is_some()
    );
    // Paying again with the same coupon does not redeem it a second time.
    assert_eq!(pay(&app, &ann, &order_id, &code).await.status, 503);
    assert_eq!(app.redemptions(&code).await, 1);
    let p = reconciled_payment(&app, &order_id).await;
    assert_eq!(
        (p.amount_cents, p.coupon_code.as_deref()),
        (1000, Some(code.as_str()))
    );
    assert!(
        app.payment
            .store
            .pending_charge(&order_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(app.redemptions(&code).await, 1);
    // Nothing left: a second pass settles nothing.
    assert_eq!(app.payment.service.reconcile(Duration::ZERO).await, 0);
    app.done().await;
}

#[tokio::test]
async fn a_charge_the_store_failed_to_record_is_recorded_by_reconciliation() {
    let (app, store, ann, code, order_id) = setup(Flaky::new(Mode::Answer)).await;
    store
        .fail_next_payment
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(pay(&app, &ann, &order_id, &code).await.status, 500);
    assert_eq!(app.redemptions(&code).await, 1);
    let p = reconciled_payment(&app, &order_id).await;
    assert_eq!(p.amount_cents, 1000);
    app.done().await;
}

#[tokio::test]
async fn a_processing_charge_that_succeeds_is_recorded_by_reconciliation() {
    let (app, _, ann, code, order_id) = setup(Flaky::new(Mode::ProcessingThenSucceeds)).await;
    let e = pay(&app, &ann, &order_id, &code).await;
    assert_eq!(
        (e.status, e.first_message()),
        (
            409,
            "Your payment is being processed; the order completes when it clears"
        )
    );
    assert_eq!(app.redemptions(&code).await, 1, "kept while processing");
    let p = reconciled_payment(&app, &order_id).await;
    assert!(p.provider_id.starts_with("pi_test_"), "{p:?}");
    app.done().await;
}

#[tokio::test]
async fn a_charge_that_never_reached_the_gateway_gives_the_coupon_back() {
    let (app, _, ann, code, order_id) = setup(Flaky::new(Mode::LoseRequest)).await;
    assert_eq!(pay(&app, &ann, &order_id, &code).await.status, 503);
    assert_eq!(app.redemptions(&code).await, 1);
    assert_eq!(app.payment.service.reconcile(Duration::ZERO).await, 1);
    assert_eq!(app.redemptions(&code).await, 0);
    assert!(
        app.payment
            .store
            .pending_charge(&order_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.payment
            .store
            .payment_for_order(&order_id)
            .await
            .unwrap()
            .is_none()
    );
    // A charge younger than the grace is left alone (it may still be in flight).
    assert_eq!(pay(&app, &ann, &order_id, &code).await.status, 503);
    assert_eq!(
        app.payment
            .service
            .reconcile(Duration::from_secs(3600))
            .await,
        0
    );
    assert!(
        app.payment
            .store
            .pending_charge(&order_id)
            .await
            .unwrap()
            .is_some()
    );
    app.done().await;
}
