//! An RPC request whose effect is committed but whose acknowledgement is lost (the
//! service's broker connection drops in between) comes back from the broker: it must not
//! be carried out a second time, and the caller must be told what actually happened.
//!
//! The connection is cut at exactly that moment by a store wrapper that force-closes the
//! service's broker connection right after its first successful write; the broadly random
//! version of this is `broker::closing_every_broker_connection_…` (duplicate listings).

use async_trait::async_trait;
use ms_chaos::client::{Ack, ask};
use ms_chaos::hooked::{HookedOrders, HookedPayments, Write, WriteHook};
use ms_e2e::{System, SystemOptions};
use ms_testkit::eventually;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

/// Cuts the broker connections named `needle` once, after the first successful write.
struct Cutter {
    needle: String,
    done: AtomicBool,
    writes: AtomicU32,
}

impl Cutter {
    fn new(needle: String) -> Self {
        Self {
            needle,
            done: AtomicBool::new(false),
            writes: AtomicU32::new(0),
        }
    }

    async fn after_write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        if !self.done.swap(true, Ordering::SeqCst) {
            let closed = ms_chaos::amqp::close_connections_at_once(&self.needle)
                .await
                .unwrap_or(0);
            assert!(closed >= 1, "no connection named {} to cut", self.needle);
        }
    }
}

#[async_trait]
impl WriteHook for Cutter {
    async fn after(&self, write: Write<'_>) {
        if matches!(write, Write::Coupon | Write::OrderCreate) {
            self.after_write().await;
        }
    }
}

async fn stop(sys: System) {
    let _ = tokio::time::timeout(Duration::from_secs(30), sys.stop()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coupon_create_whose_ack_was_lost_is_not_carried_out_twice() {
    let mut sys = System::start(SystemOptions {
        admin_emails: "admin@example.com".into(),
        ..SystemOptions::default()
    })
    .await
    .unwrap();
    let _ = tokio::time::timeout(T * 3, sys.payment.take().unwrap().handle.stop()).await;
    let store = Arc::new(HookedPayments {
        inner: ms_payment::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap(),
        hook: Arc::new(Cutter::new(format!("{}ms-payment", sys.env.prefix))),
    });
    let cfg = ms_payment::PaymentConfig::for_tests(&sys.env.prefix);
    let gateway = cfg.gateway.build().unwrap();
    sys.payment = Some(
        ms_payment::start_with(cfg, store.clone(), gateway)
            .await
            .unwrap(),
    );
    let (t, _) = sys.signup("admin@example.com").await.unwrap();
    let admin = sys.socket(0, Some(&t)).await.unwrap();

    let answer = ask(&admin, "coupon:create", json!({"percentOff": 50}), T)
        .await
        .unwrap();
    // Whatever the answer, after things settle there is one coupon per accepted request.
    let store2 = store.clone();
    eventually(T, "the service back on the broker", || {
        let s = store2.clone();
        async move { s.hook.done.load(Ordering::SeqCst).then_some(()) }
    })
    .await
    .unwrap();
    let admin = &admin;
    let listed = eventually(T, "coupon:list answered", || async move {
        ask(admin, "coupon:list", json!({}), T)
            .await
            .ok()?
            .data()
            .cloned()
    })
    .await
    .unwrap();
    let coupons = listed.as_array().unwrap().len();
    let accepted = usize::from(answer.data().is_some());
    assert_eq!(
        coupons,
        accepted,
        "one coupon:create (answered {answer:?}) was carried out {} times, leaving {coupons} coupons",
        store.hook.writes.load(Ordering::SeqCst)
    );
    stop(sys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_create_whose_ack_was_lost_answers_what_really_happened() {
    let mut sys = System::start(SystemOptions::default()).await.unwrap();
    let _ = tokio::time::timeout(T * 3, sys.order.take().unwrap().handle.stop()).await;
    let store = Arc::new(HookedOrders {
        inner: ms_order::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap(),
        hook: Arc::new(Cutter::new(format!("{}ms-order", sys.env.prefix))),
    });
    sys.order = Some(
        ms_order::start_with_store(
            ms_order::OrderConfig::for_tests(&sys.env.prefix, Duration::from_secs(600)),
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
        json!({"secretNote": "the goods", "title": "one", "priceCents": 100}),
        T,
    )
    .await
    .unwrap();
    let sid = stuff.data().unwrap()["id"].as_str().unwrap().to_owned();

    let mut answer = ask(&buyer, "order:create", json!({"stuffId": sid}), T)
        .await
        .unwrap();
    // A reply that did not come in time (the service was still reconnecting) is a 503 that
    // says "please try again": trying again must answer what happened, not run it twice.
    if matches!(&answer, Ack::Error(503, _)) {
        answer = ask(&buyer, "order:create", json!({"stuffId": sid}), T)
            .await
            .unwrap();
    }
    let buyer = &buyer;
    let mine = eventually(T, "order:list answered", || async move {
        ask(buyer, "order:list", json!({}), T)
            .await
            .ok()?
            .data()
            .cloned()
    })
    .await
    .unwrap();
    let mine = mine.as_array().unwrap().clone();
    match &answer {
        Ack::Data(o) => assert_eq!(
            mine.iter().map(|m| &m["id"]).collect::<Vec<_>>(),
            vec![&o["id"]],
            "exactly the order the buyer was given"
        ),
        Ack::Error(status, message) => assert!(
            mine.is_empty(),
            "the buyer was told {status} {message:?}, yet holds order(s) {mine:?}"
        ),
    }
    stop(sys).await;
}
