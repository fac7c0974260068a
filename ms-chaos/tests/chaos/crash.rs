//! `kill -9` of every backend in turn (two rounds) while clients shop, each restarted on its
//! own data: afterwards every accepted request ended in exactly one consistent state.

use crate::load::{Load, assert_nothing_died, assert_settled, every_service_answers};
use ms_chaos::{Backend, ProcOptions, ProcSystem};
use ms_testkit::SioClient;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_each_backend_during_checkout_loses_nothing_and_applies_nothing_twice() {
    let mut sys = ProcSystem::start(ProcOptions {
        hold_seconds: 3,
        rpc_timeout_ms: 3000,
        payment_order_wait_ms: 1500,
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let load = Load::start(&sys.url, 2).await.unwrap();
    load.successes(
        8,
        Duration::from_secs(30),
        "successes before the first kill",
    )
    .await
    .unwrap();
    let t0 = std::time::Instant::now();
    for (round, b) in Backend::ALL.iter().chain(Backend::ALL.iter()).enumerate() {
        sys.kill9(b.name()).unwrap();
        eprintln!("[{:?}] kill {round}: ms-{} killed", t0.elapsed(), b.name());
        // Clients keep getting answers (503s for the dead service) while it is down; a
        // payment in flight to a killed ms-payment is answered after the gateway wait (30 s).
        load.answers(
            3,
            Duration::from_secs(45),
            &format!("answers with ms-{} down", b.name()),
        )
        .await
        .unwrap();
        sys.restart(b.name()).await.unwrap();
        load.successes(
            8,
            Duration::from_secs(40),
            &format!("successes after ms-{} restarted", b.name()),
        )
        .await
        .unwrap();
        eprintln!(
            "[{:?}] kill {round}: ms-{} back and serving",
            t0.elapsed(),
            b.name()
        );
    }
    let ledger = load.stop().await;
    eprintln!(
        "crash: {} stuff, {} orders, {} paid, {} declined, {} cancelled; {:?}",
        ledger.stuff.len(),
        ledger.orders.len(),
        ledger.paid.len(),
        ledger.declined.len(),
        ledger.cancelled.len(),
        ledger.statuses
    );
    assert!(!ledger.paid.is_empty() && !ledger.orders.is_empty());

    assert_settled(&sys, &ledger, Duration::from_secs(45)).await;
    // Still one system that answers, with nobody crashed and nothing panicked.
    let (t, _) = ms_chaos::client::signup(&sys.url, "after-crash@example.com")
        .await
        .unwrap();
    let c = SioClient::connect(&sys.url, Some(&t)).await.unwrap();
    every_service_answers(&sys.url, &c, "after-crash@example.com")
        .await
        .unwrap();
    assert_nothing_died(&mut sys);
}
