//! A three-node RabbitMQ cluster of the test's own: the node leading the queues (every
//! process connects to node 1 first, and quorum queues put their leader on the node of
//! the connection that declared them) is killed with `kill -9` while clients check out
//! and pay. The processes move to the other nodes, the quorum queues elect new leaders on
//! them, and afterwards: nothing a client was told is contradicted by the stores, no
//! request was carried out twice, no stuff was sold twice, and every hold left alone
//! expired through the hold queue (the overdue-hold sweeper is switched off here).

use crate::load::{Load, assert_nothing_died, assert_settled, every_service_answers};
use ms_chaos::cluster::RabbitCluster;
use ms_chaos::{ProcOptions, ProcSystem};
use ms_testkit::{SioClient, eventually};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_broker_node_that_leads_the_queues_loses_nothing() {
    let cluster = tokio::task::spawn_blocking(RabbitCluster::start)
        .await
        .unwrap()
        .unwrap();
    let t0 = Instant::now();
    let mut sys = ProcSystem::start(ProcOptions {
        hold_seconds: 3,
        rpc_timeout_ms: 3000,
        payment_order_wait_ms: 1500,
        amqp_url: Some(cluster.amqp_url.clone()),
        // Holds expire through the hold queue or not at all.
        extra_env: vec![("HOLD_SWEEP_SECONDS".into(), "86400".into())],
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let hold_queue = sys.hold_queues()[0].clone();
    let leader = cluster.leader_of(&hold_queue, 2).unwrap();
    eprintln!("[{:?}] hold queue led by node {leader}", t0.elapsed());

    let load = Load::start(&sys.url, 2).await.unwrap();
    load.successes(8, Duration::from_secs(40), "successes before the kill")
        .await
        .unwrap();
    cluster.kill(leader).unwrap();
    eprintln!("[{:?}] node {leader} killed", t0.elapsed());
    let survivor = if leader == 1 { 2 } else { 1 };
    let new_leader = eventually(Duration::from_secs(30), "a new hold queue leader", || {
        let found = cluster.leader_of(&hold_queue, survivor).ok();
        async move { found.filter(|n| *n != leader) }
    })
    .await
    .unwrap();
    eprintln!("[{:?}] hold queue led by node {new_leader}", t0.elapsed());
    if let Err(e) = load
        .successes(
            10,
            Duration::from_secs(90),
            "successes after the leading node died",
        )
        .await
    {
        panic!("{e}\n{}", cluster.describe(survivor));
    }
    eprintln!("[{:?}] flowing again", t0.elapsed());
    let ledger = load.stop().await;
    eprintln!(
        "cluster: {} stuff, {} orders, {} paid, {} declined, {} cancelled; {:?}",
        ledger.stuff.len(),
        ledger.orders.len(),
        ledger.paid.len(),
        ledger.declined.len(),
        ledger.cancelled.len(),
        ledger.statuses
    );
    assert!(!ledger.paid.is_empty() && !ledger.orders.is_empty());

    // Every order ends (paid, cancelled or expired by its hold), the stores agree, every
    // queue is drained, and what clients were told stands.
    let world = assert_settled(&sys, &ledger, Duration::from_secs(60)).await;
    let expired = world
        .orders
        .values()
        .filter(|o| o.status == "cancelled")
        .count();
    assert!(
        expired > ledger.cancelled.len() + ledger.declined.len(),
        "some holds left alone expired ({expired} cancelled orders)"
    );
    let (t, _) = ms_chaos::client::signup(&sys.url, "after-node-death@example.com")
        .await
        .unwrap();
    let c = SioClient::connect(&sys.url, Some(&t)).await.unwrap();
    every_service_answers(&sys.url, &c, "after-node-death@example.com")
        .await
        .unwrap();
    assert_nothing_died(&mut sys);
    drop(sys);
    drop(cluster);
}
