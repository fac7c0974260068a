//! Sellers get paid: the fee pinned on each payment, the ledger for sellers without an
//! account, `payout:onboard` paying it out once, destination charges afterwards, refunds
//! taking earnings back, Stripe's `account.updated`; over RPC with the built-in gateway.

use crate::helpers::*;
use ms_common::events::{Event, OrderRecord};
use ms_common::messaging::Service;
use ms_payment::gateway::Destination;
use ms_payment::gateway::builtin::TestGateway;
use ms_payment::store::PayoutAccount;
use ms_payment::webhook::WebhookSecret;
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "whsec_stuffmart_payouts";

async fn payout(app: &App, who: &Session, action: &str) -> Result<Value, ms_common::ApiError> {
    app.call(Service::Payment, action, Some(&who.token), json!({}))
        .await
}

/// `payout:status` of `who` as (held, paid out, onboarded).
async fn status(app: &App, who: &Session) -> (i64, i64, bool) {
    let s = payout(app, who, "payout:status").await.unwrap();
    assert_eq!(s["currency"], "eur", "{s}");
    (
        s["heldCents"].as_i64().unwrap(),
        s["paidOutCents"].as_i64().unwrap(),
        s["onboarded"].as_bool().unwrap(),
    )
}

/// A stuff of `seller` bought and paid by `buyer` with the test card; the order and the
/// payment as answered.
async fn sale(app: &App, buyer: &Session, seller: &Session, cents: i64) -> (OrderRecord, Value) {
    let order = OrderRecord {
        seller_id: Some(seller.id.clone()),
        ..new_order(&buyer.id, cents)
    };
    app.publish(Event::OrderCreated(order.clone())).await;
    let paid = app
        .pay(
            buyer,
            json!({"orderId": order.id, "paymentMethod": "pm_card_visa"}),
        )
        .await
        .unwrap();
    match app.next_event().await.event {
        Event::PaymentCreated(p) => {
            assert_eq!(
                (p.currency.as_str(), p.fee_cents),
                ("eur", paid["feeCents"].as_i64())
            );
        }
        other => panic!("expected payment.created, got {other:?}"),
    }
    (order, paid)
}

#[tokio::test]
async fn earnings_are_held_until_onboarding_then_paid_once_and_later_sales_go_direct() {
    let tg = TestGateway::default();
    let gateway = Recording::new(Arc::new(tg.clone()));
    let app = spawn_with(|_| {}, gateway.clone(), None).await;
    let seller = app.signup("seller@example.com").await;
    let buyer = app.signup("buyer@example.com").await;
    let admin = app.admin().await;

    // Signed out: refused.
    let e = app
        .call(Service::Payment, "payout:status", None, json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);

    // Two sales before the seller has an account: the fee (10 %) is pinned on each
    // payment, the rest is held for them.
    let (first, paid) = sale(&app, &buyer, &seller, 2500).await;
    assert_eq!(
        (paid["currency"].as_str(), paid["feeCents"].as_i64()),
        (Some("eur"), Some(250))
    );
    sale(&app, &buyer, &seller, 1005).await;
    assert_eq!(
        gateway
            .calls()
            .iter()
            .filter(|c| c.destination.is_some())
            .count(),
        0
    );
    assert_eq!(status(&app, &seller).await, (2250 + 904, 0, false));
    assert_eq!(
        status(&app, &buyer).await,
        (0, 0, false),
        "the buyer earned nothing"
    );
    let s = payout(&app, &seller, "payout:status").await.unwrap();
    assert_eq!(s["started"], false);

    // Onboarding: the built-in gateway finishes it at once and the link is the return
    // page; what was held goes out in one transfer.
    let link = payout(&app, &seller, "payout:onboard").await.unwrap();
    assert_eq!(link["url"], "http://localhost:3000/selling?payouts=return");
    let transfers = tg.transfers();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0].amount_cents, 2250 + 904);
    let account = transfers[0].account_id.clone();
    assert_eq!(status(&app, &seller).await, (0, 3154, true));
    let s = payout(&app, &seller, "payout:status").await.unwrap();
    assert_eq!(s["started"], true);

    // Asking again pays nothing twice.
    payout(&app, &seller, "payout:onboard").await.unwrap();
    app.payment.service.settle_payouts().await;
    assert_eq!(tg.transfers().len(), 1);

    // A later sale is a destination charge with the fee as the application fee.
    let (third, _) = sale(&app, &buyer, &seller, 1000).await;
    let charge = gateway.calls().into_iter().last().unwrap();
    assert_eq!(
        charge.destination,
        Some(Destination {
            account_id: account.clone(),
            fee_cents: 100
        })
    );
    assert_eq!(status(&app, &seller).await, (0, 3154 + 900, true));
    assert_eq!(
        tg.transfers().len(),
        1,
        "paid by the charge, not by a transfer"
    );

    // Refunds take the seller's earnings back: a transferred sale by a reversal, a
    // destination charge with the refund itself.
    for order in [&first, &third] {
        app.call(
            Service::Payment,
            "payment:refund",
            Some(&admin.token),
            json!({"orderId": order.id}),
        )
        .await
        .unwrap();
        assert!(matches!(
            app.next_event().await.event,
            Event::PaymentRefunded(_)
        ));
    }
    assert_eq!(tg.reversed_cents(), 2250);
    assert_eq!(status(&app, &seller).await, (0, 904, true));
    app.done().await;
}

#[tokio::test]
async fn stripe_s_account_updated_onboards_the_seller_and_pays_what_is_held() {
    let tg = TestGateway::default();
    let app = spawn_with(
        |cfg| cfg.webhook_secret = WebhookSecret::new(SECRET),
        Arc::new(tg.clone()),
        None,
    )
    .await;
    let seller = app.signup("seller@example.com").await;
    let buyer = app.signup("buyer@example.com").await;
    sale(&app, &buyer, &seller, 1200).await;

    // An account whose onboarding is not finished (made by the gateway, kept unready).
    let account_id = ms_payment::gateway::PaymentGateway::create_account(&tg, &seller.id)
        .await
        .unwrap();
    let ledger = app.payment.store.ledger();
    ledger
        .add_payout_account(&PayoutAccount {
            seller_id: seller.id.clone(),
            account_id: account_id.clone(),
            onboarded: false,
            created_at: ms_common::time::now(),
        })
        .await
        .unwrap();
    // Reconciliation pays nobody who is not onboarded.
    app.payment.service.settle_payouts().await;
    assert!(tg.transfers().is_empty());

    let event = |id: &str, ready: bool| {
        json!({"id": id, "object": "event", "type": "account.updated",
            "data": {"object": {"id": account_id, "object": "account",
                "details_submitted": ready, "payouts_enabled": ready}}})
        .to_string()
    };
    let post = |body: String| {
        let signature = WebhookSecret::new(SECRET)
            .unwrap()
            .sign(body.as_bytes(), chrono::Utc::now().timestamp());
        app.call(
            Service::Payment,
            "payment:webhook",
            None,
            json!({"payload": body, "signature": signature}),
        )
    };
    post(event("evt_not_yet", false)).await.unwrap();
    assert_eq!(status(&app, &seller).await, (1080, 0, false));
    // Ready: onboarded, and the held 1080 leaves in one transfer (the gateway must
    // accept it: the built-in one only pays accounts whose onboarding link was made).
    ms_payment::gateway::PaymentGateway::onboarding_link(&tg, &account_id, "r", "b")
        .await
        .unwrap();
    post(event("evt_ready", true)).await.unwrap();
    post(event("evt_ready", true)).await.unwrap();
    let transfers = tg.transfers();
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0].amount_cents, 1080);
    assert_eq!(status(&app, &seller).await, (0, 1080, true));
    app.done().await;
}
