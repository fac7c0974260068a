//! Races between consumers, made deterministic: ms-order runs in-process on a store that
//! holds one write back until a competing write has happened, so the interleaving that
//! the crash test hits by chance (a payment and the hold's expiry handled at the same
//! moment after ms-order restarts) happens every time.

use async_trait::async_trait;
use ms_chaos::client::ask;
use ms_chaos::hooked::{HookedOrders, Write, WriteHook};
use ms_common::events::OrderStatus;
use ms_e2e::{System, SystemOptions};
use ms_testkit::eventually;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const T: Duration = Duration::from_secs(10);

/// Makes completing the gated order wait until that order has been cancelled by someone
/// else (or 10 s pass).
struct Gate {
    gated: Mutex<Option<String>>,
    cancelled: watch::Sender<bool>,
    /// Set when a completion really waited for a cancellation that then happened.
    raced: AtomicBool,
}

impl Gate {
    fn is_gated(&self, id: &str) -> bool {
        self.gated.lock().unwrap().as_deref() == Some(id)
    }
}

#[async_trait]
impl WriteHook for Gate {
    async fn before(&self, write: Write<'_>) -> anyhow::Result<()> {
        if let Write::OrderTransition {
            id,
            from: OrderStatus::Created,
            to: OrderStatus::Complete,
        } = write
            && self.is_gated(id)
        {
            let mut rx = self.cancelled.subscribe();
            let waited = tokio::time::timeout(T, rx.wait_for(|c| *c)).await;
            if matches!(waited, Ok(Ok(_))) {
                self.raced.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    async fn after(&self, write: Write<'_>) {
        if let Write::OrderTransition {
            id,
            to: OrderStatus::Cancelled,
            ..
        } = write
            && self.is_gated(id)
        {
            let _ = self.cancelled.send(true);
        }
    }
}

/// A payment that reaches ms-order while the hold is being expired: the payment was taken,
/// nobody else holds the stuff, so the order must end complete and the stuff sold (the
/// rule ms-order already applies when the payment arrives after the cancellation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_handled_while_the_hold_expires_still_completes_the_order() {
    let hold = Duration::from_secs(2);
    let mut sys = System::start(SystemOptions {
        hold,
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let _ = tokio::time::timeout(T * 3, sys.order.take().unwrap().handle.stop()).await;
    let (tx, _) = watch::channel(false);
    let store = Arc::new(HookedOrders {
        inner: ms_order::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap(),
        hook: Arc::new(Gate {
            gated: Mutex::new(None),
            cancelled: tx,
            raced: AtomicBool::new(false),
        }),
    });
    sys.order = Some(
        ms_order::start_with_store(
            ms_order::OrderConfig::for_tests(&sys.env.prefix, hold),
            store.clone(),
        )
        .await
        .unwrap(),
    );
    let (st, _) = sys.signup("seller@example.com").await.unwrap();
    let (bt, _) = sys.signup("buyer@example.com").await.unwrap();
    let seller = sys.socket(0, Some(&st)).await.unwrap();
    let buyer = sys.socket(0, Some(&bt)).await.unwrap();
    let stuff = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "last-second buy", "priceCents": 700}),
        T,
    )
    .await
    .unwrap();
    let sid = stuff.data().unwrap()["id"].as_str().unwrap().to_owned();
    let order = ask(&buyer, "order:create", json!({"stuffId": sid}), T)
        .await
        .unwrap();
    let oid = order.data().unwrap()["id"].as_str().unwrap().to_owned();
    *store.hook.gated.lock().unwrap() = Some(oid.clone());
    let paid = ask(
        &buyer,
        "payment:create",
        json!({"orderId": oid, "paymentMethod": "pm_card_visa"}),
        T,
    )
    .await
    .unwrap();
    assert!(paid.data().is_some(), "the payment was taken: {paid:?}");

    let orders = store.clone();
    let id = oid.clone();
    let outcome = eventually(T, "the paid order to be complete", || {
        let orders = orders.clone();
        let id = id.clone();
        async move {
            let o = orders.inner.order(&id).await.ok()??;
            (o.status == OrderStatus::Complete).then_some(o)
        }
    })
    .await;
    let now = store.inner.order(&oid).await.unwrap().unwrap();
    assert!(
        store.hook.raced.load(Ordering::SeqCst),
        "the race was not reproduced (the completion did not wait for the expiry)"
    );
    assert!(
        outcome.is_ok(),
        "order {oid} was paid but ended {:?} (v{}) after its hold expired during the \
         payment's completion; the payment.created event was acknowledged without effect",
        now.status,
        now.version
    );
    let buyer = &buyer;
    eventually(T, "the stuff to be sold", || {
        let sid = sid.clone();
        async move {
            let s = ask(buyer, "stuff:get", json!({"id": sid}), T).await.ok()?;
            (s.data()?["status"] == "sold").then_some(())
        }
    })
    .await
    .unwrap();
    let _ = tokio::time::timeout(T * 3, sys.stop()).await;
}
