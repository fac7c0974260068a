//! Every broker connection of the system force-closed (as `rabbitmqctl close_connection`
//! does) while clients shop: every process reconnects, the flow completes, and no event
//! that was confirmed to a publisher is lost.

use crate::load::{Load, assert_nothing_died, assert_settled, every_service_answers};
use ms_chaos::client::{ask, signup};
use ms_chaos::{ProcOptions, ProcSystem};
use ms_testkit::SioClient;
use serde_json::json;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(15);

async fn all_ready(sys: &ProcSystem, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for name in ["user", "stuff", "order", "payment", "router"] {
            if !sys.is_ready(name).await {
                missing.push(name);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not ready again after {timeout:?}: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_every_broker_connection_during_checkout_loses_no_confirmed_event() {
    let mut sys = ProcSystem::start(ProcOptions {
        hold_seconds: 3,
        rpc_timeout_ms: 3000,
        payment_order_wait_ms: 1500,
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let t0 = Instant::now();
    let viewer = SioClient::connect(&sys.url, None).await.unwrap();
    let load = Load::start(&sys.url, 2).await.unwrap();
    load.successes(6, T * 2, "successes before the first cut")
        .await
        .unwrap();
    let needle = format!("{}ms-", sys.env.prefix);
    for round in 0..3 {
        eprintln!("[{:?}] cut {round}: closing", t0.elapsed());
        let closed = ms_chaos::amqp::close_connections_at_once(&needle)
            .await
            .unwrap();
        assert!(
            closed >= 5,
            "round {round}: closed only {closed} connections (one per process expected)"
        );
        eprintln!("[{:?}] cut {round}: closed {closed}", t0.elapsed());
        all_ready(&sys, T * 2).await.unwrap();
        eprintln!("[{:?}] cut {round}: all ready", t0.elapsed());
        load.successes(8, T * 3, &format!("successes after cut {round}"))
            .await
            .unwrap();
        eprintln!("[{:?}] cut {round}: flowing again", t0.elapsed());
    }
    let ledger = load.stop().await;
    eprintln!(
        "broker: {} stuff, {} orders, {} paid; {:?}",
        ledger.stuff.len(),
        ledger.orders.len(),
        ledger.paid.len(),
        ledger.statuses
    );

    // The router's live fan-out re-subscribed: a new listing reaches the viewer.
    let (t, _) = signup(&sys.url, "after-cut@example.com").await.unwrap();
    let seller = SioClient::connect(&sys.url, Some(&t)).await.unwrap();
    let created = ask(
        &seller,
        "stuff:create",
        json!({"secretNote": "the goods", "title": "seen live after the cut", "priceCents": 100}),
        T,
    )
    .await
    .unwrap();
    let id = created.data().unwrap()["id"].as_str().unwrap().to_owned();
    viewer
        .wait_for("stuff:created", T, |v| v["id"] == id.as_str())
        .await
        .expect("the viewer saw a listing made after the broker connections were cut");
    every_service_answers(&sys.url, &seller, "after-cut@example.com")
        .await
        .unwrap();

    eprintln!("[{:?}] settling", t0.elapsed());
    assert_settled(&sys, &ledger, Duration::from_secs(45)).await;
    assert_nothing_died(&mut sys);
}

/// A broker that stops answering without closing the connection (a frozen host, a
/// partition that drops packets): a service told to stop must still stop, within the
/// bounds `ServiceHandle::stop` promises (drain ≤ 10 s, each task ≤ 2 s), not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stops_within_a_deadline_when_the_broker_goes_silent() {
    let env = ms_testkit::TestEnv::new();
    let proxy = ms_chaos::silent::SilentProxy::start(&ms_chaos::silent::amqp_host_port(
        &env.common.amqp_url,
    ))
    .await
    .unwrap();
    let mut cfg = ms_stuff::StuffConfig::for_tests(&env.prefix);
    cfg.common.amqp_url = proxy.amqp_url();
    let running = ms_stuff::start(cfg).await.unwrap();
    assert!(running.handle.broker.is_connected());
    proxy.go_silent();
    let started = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(30), running.handle.stop()).await;
    assert!(
        stopped.is_ok(),
        "ServiceHandle::stop() still waiting after {:?} with a silent broker",
        started.elapsed()
    );
    drop(proxy);
    env.teardown(&[]).await;
}
