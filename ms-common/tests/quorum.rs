//! Quorum queues against a real RabbitMQ: every durable queue a service declares is a
//! quorum queue, and a classic queue left by an older StuffMart is moved over at start
//! with its messages and bindings. Each test lives under its own queue prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};
use ms_common::messaging::migrate::is_argument_mismatch;
use ms_common::messaging::topology::{Declare, declare_exchanges, lstr, table};
use ms_common::messaging::{Broker, Service, ServiceTopology};
use ms_testkit::{TestEnv, eventually, queue_ready};
use std::sync::Arc;
use std::time::Duration;

fn topology(env: &TestEnv) -> Arc<ServiceTopology> {
    Arc::new(ServiceTopology {
        names: env.names(),
        service: Service::Stuff,
        bindings: vec!["order.created".into(), "order.expired".into()],
        retry: env.common.retry_policy(),
        rpc: true,
    })
}

/// Declares `queue` as a classic durable queue with `args` (minus the queue type), on a
/// throwaway channel; the broker's answer.
async fn declare_classic(broker: &Broker, queue: &str, args: FieldTable) -> lapin::Result<()> {
    let ch = broker.channel().await.unwrap();
    let mut args = args;
    args.insert("x-queue-type".into(), lstr("classic"));
    let res = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .map(|_| ());
    let _ = ch.close(200, "done".into()).await;
    res
}

async fn publish(ch: &Channel, exchange: &str, key: &str, body: &[u8]) {
    ch.basic_publish(
        exchange.into(),
        key.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_delivery_mode(2),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

async fn drain(broker: &Broker, queue: &str) -> Vec<Vec<u8>> {
    let ch = broker.channel().await.unwrap();
    let mut bodies = Vec::new();
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        bodies.push(m.delivery.data.clone());
    }
    bodies
}

#[tokio::test]
async fn every_durable_queue_a_service_declares_is_a_quorum_queue() {
    let env = TestEnv::new();
    let topo = topology(&env);
    let broker = Broker::connect(
        &env.common.amqp_url,
        &format!("{}ms-stuff", env.prefix),
        vec![topo.clone() as Arc<dyn Declare>],
    )
    .await
    .unwrap();
    let queues = topo.queues();
    // The parking queue, the events queue, its retry ladder, the RPC queue, unrouted.
    assert!(queues.len() >= 5, "{queues:?}");
    for q in &queues {
        let err = declare_classic(&broker, &q.name, q.arguments())
            .await
            .expect_err("the broker must refuse a classic redeclaration");
        assert!(
            is_argument_mismatch(&err),
            "{}: expected a queue-type mismatch, got {err}",
            q.name
        );
    }
    // Retry rungs and the parking paths dead-letter at least once.
    let events = queues
        .iter()
        .find(|q| q.name == env.names().events_queue(Service::Stuff))
        .unwrap();
    let args = events.arguments();
    let inner = args.inner();
    assert_eq!(
        inner.get("x-dead-letter-strategy"),
        Some(&lstr("at-least-once"))
    );
    assert_eq!(inner.get("x-overflow"), Some(&lstr("reject-publish")));
    broker.close().await;
    env.teardown(&[]).await;
}

#[tokio::test]
async fn a_classic_queue_from_an_older_version_moves_over_with_its_messages() {
    let env = TestEnv::new();
    let names = env.names();
    let queue = names.events_queue(Service::Stuff);
    let parked = format!("{queue}.to-quorum");
    let old = env.broker().await.unwrap();
    // What a version before quorum queues left behind: a classic events queue, bound,
    // with three messages waiting.
    {
        let ch = old.channel().await.unwrap();
        declare_exchanges(&ch, &names).await.unwrap();
        let dlx = table(vec![
            (
                "x-dead-letter-exchange",
                lstr(&names.dead_letter_exchange()),
            ),
            ("x-dead-letter-routing-key", lstr(Service::Stuff.as_str())),
        ]);
        declare_classic(&old, &queue, dlx).await.unwrap();
        ch.queue_bind(
            queue.as_str().into(),
            names.events_exchange().into(),
            "order.created".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..3 {
            publish(
                &ch,
                &names.events_exchange(),
                "order.created",
                format!("old-{i}").as_bytes(),
            )
            .await;
        }
    }

    // The new version starts: its declaration finds the classic queue and moves it.
    let broker = Broker::connect(
        &env.common.amqp_url,
        &format!("{}ms-stuff", env.prefix),
        vec![topology(&env) as Arc<dyn Declare>],
    )
    .await
    .expect("start over a classic queue");

    let events = topology(&env)
        .queues()
        .into_iter()
        .find(|q| q.name == queue)
        .unwrap();
    let err = declare_classic(&broker, &queue, events.arguments())
        .await
        .expect_err("the events queue is a quorum queue now");
    assert!(is_argument_mismatch(&err), "{err}");
    assert_eq!(
        queue_ready(&broker, &parked).await.unwrap(),
        None,
        "the parking queue is gone"
    );

    // Its bindings work: a new event lands next to the moved ones.
    let ch = broker.channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    publish(&ch, &names.events_exchange(), "order.created", b"new").await;
    // Quorum queues count messages asynchronously: wait until all four are ready.
    eventually(Duration::from_secs(5), "four messages ready", || async {
        let ready = queue_ready(&broker, &queue).await.ok().flatten();
        ready.filter(|n| *n >= 4)
    })
    .await
    .unwrap();
    let bodies = drain(&broker, &queue).await;
    let mut bodies: Vec<String> = bodies
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["new", "old-0", "old-1", "old-2"]);

    // A second start declares over the quorum queue without a move.
    let again = Broker::connect(
        &env.common.amqp_url,
        &format!("{}ms-stuff-2", env.prefix),
        vec![topology(&env) as Arc<dyn Declare>],
    )
    .await
    .expect("second start");
    again.close().await;
    broker.close().await;
    old.close().await;
    env.teardown(&[parked]).await;
}
