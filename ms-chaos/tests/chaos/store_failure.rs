//! A database write that fails inside a consumer: the message is retried after the retry
//! delay, applied once the store recovers, dead-lettered with `x-death-reason` when it
//! never does, and the service keeps answering requests all along. A failed write in an
//! RPC action is a generic 500 that writes nothing.
//!
//! The system runs in-process (ms-e2e's harness) with ms-order and ms-payment started on
//! stores that fail on command.

use async_trait::async_trait;
use ms_chaos::client::{Ack, ask};
use ms_chaos::hooked::{HookedOrders, HookedPayments, Write, WriteHook};
use ms_common::events::OrderStatus;
use ms_e2e::{System, SystemOptions};
use ms_order::store::OrderStore;
use ms_payment::store::PaymentStore;
use ms_testkit::{SioClient, eventually};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// What to break: writes about these keys always fail; the next `budget` writes fail.
#[derive(Default)]
struct Faults {
    always: Mutex<HashSet<String>>,
    budget: AtomicU32,
    /// Fail the next `create_budget` order inserts (an RPC-path write).
    create_budget: AtomicU32,
    attempts: Mutex<HashMap<String, u32>>,
}

impl Faults {
    /// Records an attempt on `key` and says whether it must fail.
    fn hit(&self, key: &str) -> bool {
        *self
            .attempts
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default() += 1;
        if self.always.lock().unwrap().contains(key) {
            return true;
        }
        self.budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
            .is_ok()
    }

    fn attempts(&self, key: &str) -> u32 {
        self.attempts.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

const INJECTED: &str = "injected store failure: disk I/O error";

/// Fails, on command: ms-payment's order-replica writes and ms-order's stuff-replica writes
/// (keyed by stuff id), and ms-order's order inserts (an RPC-path write).
#[async_trait]
impl WriteHook for Faults {
    async fn before(&self, write: Write<'_>) -> anyhow::Result<()> {
        let fail = match write {
            Write::PaymentOrderReplica { stuff_id } | Write::OrderStuffReplica { stuff_id } => {
                self.hit(stuff_id)
            }
            Write::OrderCreate => self
                .create_budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                .is_ok(),
            _ => false,
        };
        if fail {
            anyhow::bail!(INJECTED);
        }
        Ok(())
    }
}

/// The in-process system with ms-order and ms-payment on failing stores.
struct Rig {
    sys: System,
    orders: Arc<dyn OrderStore>,
    payments: Arc<dyn PaymentStore>,
    order_faults: Arc<Faults>,
    payment_faults: Arc<Faults>,
    seller: SioClient,
    buyer: SioClient,
    max_retries: u32,
}

impl Rig {
    async fn start() -> Self {
        let mut sys = System::start(SystemOptions::default()).await.unwrap();
        // Swap the stock ms-order and ms-payment for ones on failing stores (stop first:
        // they would compete for the same queues).
        for h in [
            sys.order.take().unwrap().handle,
            sys.payment.take().unwrap().handle,
        ] {
            let _ = tokio::time::timeout(Duration::from_secs(30), h.stop()).await;
        }
        let order_faults = Arc::new(Faults::default());
        let payment_faults = Arc::new(Faults::default());
        let orders = ms_order::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap();
        let payments = ms_payment::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap();
        let ocfg = ms_order::OrderConfig::for_tests(&sys.env.prefix, Duration::from_secs(600));
        let max_retries = ocfg.common.max_retries;
        sys.order = Some(
            ms_order::start_with_store(
                ocfg,
                Arc::new(HookedOrders {
                    inner: orders.clone(),
                    hook: order_faults.clone(),
                }),
            )
            .await
            .unwrap(),
        );
        let pcfg = ms_payment::PaymentConfig::for_tests(&sys.env.prefix);
        let gateway = pcfg.gateway.build().unwrap();
        sys.payment = Some(
            ms_payment::start_with(
                pcfg,
                Arc::new(HookedPayments {
                    inner: payments.clone(),
                    hook: payment_faults.clone(),
                }),
                gateway,
            )
            .await
            .unwrap(),
        );
        let (st, _) = sys.signup("seller@example.com").await.unwrap();
        let (bt, _) = sys.signup("buyer@example.com").await.unwrap();
        let seller = sys.socket(0, Some(&st)).await.unwrap();
        let buyer = sys.socket(0, Some(&bt)).await.unwrap();
        Self {
            sys,
            orders,
            payments,
            order_faults,
            payment_faults,
            seller,
            buyer,
            max_retries,
        }
    }

    async fn list(&self, title: &str) -> String {
        let a = ask(
            &self.seller,
            "stuff:create",
            json!({"secretNote": "the goods", "title": title, "priceCents": 500}),
            T,
        )
        .await
        .unwrap();
        a.data().unwrap()["id"].as_str().unwrap().to_owned()
    }

    async fn dead_letters(
        &self,
        svc: ms_common::messaging::Service,
        n: u32,
    ) -> Vec<ms_chaos::amqp::Taken> {
        let broker = self.sys.env.broker().await.unwrap();
        let dlq = self.sys.env.names().dead_letter_queue(svc);
        eventually(T * 2, &format!("{n} dead letters in {dlq}"), || {
            let broker = broker.clone();
            let dlq = dlq.clone();
            async move { (ms_chaos::amqp::depth(&broker, &dlq).await.ok()? >= n).then_some(()) }
        })
        .await
        .unwrap();
        let taken = ms_chaos::amqp::drain(&broker, &dlq).await.unwrap();
        broker.close().await;
        taken
    }
}

/// Stops the in-process system, with a deadline: `ServiceHandle::stop` can wait forever
/// on the broker (see `broker::a_service_stops_within_a_deadline_when_the_broker_goes_silent`);
/// that bug has its own test, so here a stall only costs the deadline.
async fn stop(sys: System) {
    if tokio::time::timeout(Duration::from_secs(30), sys.stop())
        .await
        .is_err()
    {
        eprintln!("warning: System::stop did not finish within 30 s (Broker::close stalled)");
    }
}

fn body(t: &ms_chaos::amqp::Taken) -> Value {
    serde_json::from_slice(&t.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_payment_store_write_is_retried_then_dead_lettered_and_payments_go_on() {
    let rig = Rig::start().await;
    let payment_dlq = ms_common::messaging::Service::Payment;

    // Transient: the first two writes of the replica fail, the third (a retry) succeeds.
    let a = rig.list("transient").await;
    rig.payment_faults.budget.store(2, Ordering::SeqCst);
    let order_a = ask(&rig.buyer, "order:create", json!({"stuffId": a}), T)
        .await
        .unwrap();
    let order_a = order_a.data().unwrap()["id"].as_str().unwrap().to_owned();
    let payments = rig.payments.clone();
    let replica = eventually(T, "the order in ms-payment's replica after retries", || {
        let payments = payments.clone();
        let id = order_a.clone();
        async move { payments.order(&id).await.ok().flatten() }
    })
    .await
    .unwrap();
    assert_eq!(replica.version, 1);
    assert_eq!(
        rig.payment_faults.attempts(&a),
        3,
        "two failures, one success"
    );
    let paid = ask(
        &rig.buyer,
        "payment:create",
        json!({"orderId": order_a, "paymentMethod": "pm_card_visa"}),
        T,
    )
    .await
    .unwrap();
    assert!(paid.data().is_some(), "{paid:?}");

    // Persistent: every write about stuff B fails; after the retries it is parked.
    let b = rig.list("poisoned").await;
    rig.payment_faults.always.lock().unwrap().insert(b.clone());
    let order_b = ask(&rig.buyer, "order:create", json!({"stuffId": b}), T)
        .await
        .unwrap();
    let order_b = order_b.data().unwrap()["id"].as_str().unwrap().to_owned();
    let parked = rig.dead_letters(payment_dlq, 1).await;
    assert_eq!(parked.len(), 1, "exactly the one event is parked");
    let letter = &parked[0];
    let reason = letter.header("x-death-reason").unwrap_or_default();
    assert!(
        reason.contains("retries exhausted") && reason.contains("injected store failure"),
        "reason: {reason:?}"
    );
    assert_eq!(
        letter.header("x-retry-count"),
        Some(rig.max_retries.to_string().as_str())
    );
    assert_eq!(
        letter.header("x-original-routing-key"),
        Some("order.created")
    );
    assert_eq!(body(letter)["type"], "order.created");
    assert_eq!(body(letter)["data"]["id"], order_b.as_str());
    assert_eq!(
        rig.payment_faults.attempts(&b),
        rig.max_retries + 1,
        "one delivery plus max_retries redeliveries, then no more"
    );
    assert!(rig.payments.order(&order_b).await.unwrap().is_none());

    // The service kept serving all along: refusals, other orders and payments.
    let refused = ask(
        &rig.buyer,
        "payment:create",
        json!({"orderId": order_b, "paymentMethod": "pm_card_visa"}),
        T,
    )
    .await
    .unwrap();
    assert_eq!(refused, Ack::Error(404, "Order not found".into()));
    assert_eq!(
        ask(&rig.buyer, "coupon:list", json!({}), T)
            .await
            .unwrap()
            .status(),
        403
    );
    let c = rig.list("after the poison").await;
    let order_c = ask(&rig.buyer, "order:create", json!({"stuffId": c}), T)
        .await
        .unwrap();
    let order_c = order_c.data().unwrap()["id"].as_str().unwrap().to_owned();
    let paid = ask(
        &rig.buyer,
        "payment:create",
        json!({"orderId": order_c, "paymentMethod": "pm_card_visa"}),
        T,
    )
    .await
    .unwrap();
    assert!(paid.data().is_some(), "{paid:?}");
    let orders = rig.orders.clone();
    eventually(T, "order C complete", || {
        let orders = orders.clone();
        let id = order_c.clone();
        async move {
            (orders.order(&id).await.ok()??.status == OrderStatus::Complete).then_some(())
        }
    })
    .await
    .unwrap();
    stop(rig.sys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_order_store_write_is_dead_lettered_or_a_generic_500_and_orders_go_on() {
    let rig = Rig::start().await;

    // A consumer write that never succeeds: stuff X's listing is parked in order.dlq.
    let x = {
        // The id is only known once listed; make every replica write fail until then.
        rig.order_faults.budget.store(u32::MAX, Ordering::SeqCst);
        let x = rig.list("never replicated").await;
        rig.order_faults.always.lock().unwrap().insert(x.clone());
        rig.order_faults.budget.store(0, Ordering::SeqCst);
        x
    };
    let parked = rig
        .dead_letters(ms_common::messaging::Service::Order, 1)
        .await;
    assert_eq!(parked.len(), 1);
    let reason = parked[0].header("x-death-reason").unwrap_or_default();
    assert!(
        reason.contains("retries exhausted") && reason.contains("injected store failure"),
        "reason: {reason:?}"
    );
    assert_eq!(
        parked[0].header("x-original-routing-key"),
        Some("stuff.created")
    );
    assert_eq!(body(&parked[0])["data"]["id"], x.as_str());
    assert_eq!(rig.order_faults.attempts(&x), rig.max_retries + 1);

    // The service answers: the unreplicated stuff is "not found", listing orders works.
    assert_eq!(
        ask(&rig.buyer, "order:create", json!({"stuffId": x}), T)
            .await
            .unwrap(),
        Ack::Error(404, "Stuff not found".into())
    );
    assert_eq!(
        ask(&rig.buyer, "order:list", json!({}), T).await.unwrap(),
        Ack::Data(json!([]))
    );

    // An RPC write that fails: a generic 500, nothing stored, nothing published.
    let y = rig.list("write fails once").await;
    let orders = rig.orders.clone();
    let yy = y.clone();
    eventually(T, "stuff Y replicated to ms-order", || {
        let orders = orders.clone();
        let y = yy.clone();
        async move { orders.stuff(&y).await.ok().flatten() }
    })
    .await
    .unwrap();
    let unsent_before = rig.orders.outbox().unsent_count().await.unwrap();
    rig.order_faults.create_budget.store(1, Ordering::SeqCst);
    let failed = ask(&rig.buyer, "order:create", json!({"stuffId": y}), T)
        .await
        .unwrap();
    assert_eq!(failed, Ack::Error(500, "Something went wrong".into()));
    assert_eq!(
        ask(&rig.buyer, "order:list", json!({}), T).await.unwrap(),
        Ack::Data(json!([])),
        "nothing stored for the failed write"
    );
    assert_eq!(
        rig.orders.outbox().unsent_count().await.unwrap(),
        unsent_before
    );
    let stuff = ask(&rig.buyer, "stuff:get", json!({"id": y}), T)
        .await
        .unwrap();
    assert_eq!(stuff.data().unwrap()["status"], "available");
    // And the next attempt goes through.
    let ok = ask(&rig.buyer, "order:create", json!({"stuffId": y}), T)
        .await
        .unwrap();
    assert_eq!(ok.data().unwrap()["status"], "created");
    stop(rig.sys).await;
}
