//! The messaging core against a real RabbitMQ: retries and dead letters, poison messages,
//! RPC timeouts and error forwarding, publisher confirms, and recovery after the broker
//! closes our connections. Each test lives under its own queue prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use ms_common::ApiError;
use ms_common::auth::{AuthUser, VerifyToken};
use ms_common::contract::StuffAction;
use ms_common::messaging::consumer::{REASON_HEADER, RETRY_HEADER};
use ms_common::messaging::retry::FIRST_FAILURE_HEADER;
use ms_common::messaging::{
    Broker, ConsumerSpec, HandleError, Handler, Outgoing, PublishError, Publisher, RpcClient,
    RpcContext, RpcHandler, RpcRequest, Service, ServiceTopology, run_consumer, run_rpc_server,
};
use ms_common::shutdown::Shutdown;
use ms_testkit::{TestEnv, eventually};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn topology(env: &TestEnv, bindings: &[&str]) -> Arc<ServiceTopology> {
    Arc::new(ServiceTopology {
        names: env.names(),
        service: Service::Stuff,
        bindings: bindings.iter().map(|s| s.to_string()).collect(),
        retry: env.common.retry_policy(),
        rpc: true,
    })
}

fn spec(env: &TestEnv) -> ConsumerSpec {
    ConsumerSpec {
        names: env.names(),
        service: Service::Stuff,
        queue: env.names().events_queue(Service::Stuff),
        prefetch: 8,
        retry: env.common.retry_policy(),
    }
}

async fn publish_event(p: &Publisher, env: &TestEnv, key: &str, body: &[u8]) {
    p.publish(Outgoing {
        exchange: env.names().events_exchange(),
        routing_key: key.into(),
        payload: body.to_vec(),
        correlation_id: Some("cid-test".into()),
        ..Outgoing::default()
    })
    .await
    .expect("publish");
}

/// Counts deliveries; fails while `fail` is set.
struct Counting {
    calls: AtomicUsize,
    fail: bool,
}

#[async_trait]
impl Handler<Value> for Counting {
    async fn handle(&self, _msg: Value, _cid: Option<String>) -> Result<(), HandleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            Err(HandleError::Retry("boom: store unavailable".into()))
        } else {
            Ok(())
        }
    }
}

fn header<'a>(t: &'a FieldTable, k: &str) -> Option<&'a AMQPValue> {
    t.inner().get(k)
}

fn as_text(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => format!("{other:?}"),
    }
}

async fn get_one(broker: &Broker, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    let ch = broker.channel().await.ok()?;
    ch.basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .ok()?
}

/// The first message in ms-stuff's dead-letter queue, waited for up to `wait`, and its
/// headers.
async fn dead_letter(
    env: &TestEnv,
    broker: &Broker,
    wait: Duration,
) -> (lapin::message::BasicGetMessage, FieldTable) {
    let dlq = env.names().dead_letter_queue(Service::Stuff);
    let msg = eventually(wait, "the dead letter", || get_one(broker, &dlq))
        .await
        .unwrap();
    let headers = msg
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    (msg, headers)
}

#[tokio::test]
async fn failing_handler_is_retried_then_dead_lettered_with_reason() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker
        .declare(topology(&env, &["test.fail"]))
        .await
        .unwrap();
    let handler = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        fail: true,
    });
    let shutdown = Shutdown::new();
    tokio::spawn(run_consumer::<Value, _>(
        broker.clone(),
        spec(&env),
        handler.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "test.fail", br#"{"hello":"world"}"#).await;

    let (msg, headers) = dead_letter(&env, &broker, Duration::from_secs(10)).await;
    assert!(as_text(header(&headers, REASON_HEADER)).contains("boom: store unavailable"));
    assert!(as_text(header(&headers, REASON_HEADER)).contains("retries exhausted"));
    assert_eq!(header(&headers, RETRY_HEADER), Some(&AMQPValue::LongInt(3)));
    assert_eq!(msg.delivery.data, br#"{"hello":"world"}"#);
    // First delivery plus max_retries redeliveries, each after the retry queue's delay.
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        1 + env.common.max_retries as usize
    );
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[]).await;
}

#[tokio::test]
async fn a_failing_message_is_dead_lettered_once_its_time_budget_is_spent_not_before() {
    // A count that would never run out: the budget (1.5 s since the first failure) ends it,
    // with retries spaced 100, 200, 400, 800, 800 … ms.
    let env = TestEnv::new();
    let mut policy = env.common.retry_policy();
    policy.max_retries = 1000;
    policy.budget = Duration::from_millis(1500);
    let broker = env.broker().await.unwrap();
    let topo = ServiceTopology {
        retry: policy,
        ..(*topology(&env, &["test.budget"])).clone()
    };
    broker.declare(Arc::new(topo)).await.unwrap();
    let handler = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        fail: true,
    });
    let shutdown = Shutdown::new();
    tokio::spawn(run_consumer::<Value, _>(
        broker.clone(),
        ConsumerSpec {
            retry: policy,
            ..spec(&env)
        },
        handler.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "test.budget", br#"{"n":1}"#).await;
    let (_, headers) = dead_letter(&env, &broker, Duration::from_secs(20)).await;
    assert!(as_text(header(&headers, REASON_HEADER)).contains("retries exhausted"));
    assert!(
        matches!(
            header(&headers, FIRST_FAILURE_HEADER),
            Some(AMQPValue::LongLongInt(_))
        ),
        "the budget's start travels with the message"
    );
    let retries = match header(&headers, RETRY_HEADER) {
        Some(AMQPValue::LongInt(n)) => *n,
        other => panic!("no retry count: {other:?}"),
    };
    // Jittered waits of at least half of 100, 200, 400, 800 … ms: the 1.5 s budget is
    // spent after a handful of retries, far below the count.
    assert!((3..=30).contains(&retries), "{retries} retries");
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1 + retries as usize);
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[]).await;
}

/// Defers a message once (not due yet), then takes it.
struct DeferOnce {
    calls: AtomicUsize,
}

#[async_trait]
impl Handler<Value> for DeferOnce {
    async fn handle(&self, _msg: Value, _cid: Option<String>) -> Result<(), HandleError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(HandleError::Defer(Duration::from_millis(300)))
        } else {
            Ok(())
        }
    }
}

#[tokio::test]
async fn a_deferred_message_comes_back_without_counting_as_a_retry() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker
        .declare(topology(&env, &["test.defer"]))
        .await
        .unwrap();
    let handler = Arc::new(DeferOnce {
        calls: AtomicUsize::new(0),
    });
    let shutdown = Shutdown::new();
    tokio::spawn(run_consumer::<Value, _>(
        broker.clone(),
        spec(&env),
        handler.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "test.defer", br#"{"n":1}"#).await;
    eventually(
        Duration::from_secs(10),
        "the deferred message back",
        || async { (handler.calls.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await
    .unwrap();
    assert!(
        get_one(&broker, &env.names().dead_letter_queue(Service::Stuff))
            .await
            .is_none()
    );
    shutdown.drain(Duration::from_secs(2)).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 2);
    env.teardown(&[]).await;
}

#[tokio::test]
async fn poison_message_goes_straight_to_dead_letters_and_consumer_keeps_running() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker.declare(topology(&env, &["test.#"])).await.unwrap();
    let handler = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        fail: false,
    });
    let shutdown = Shutdown::new();
    tokio::spawn(run_consumer::<Value, _>(
        broker.clone(),
        spec(&env),
        handler.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "test.poison", b"{not json").await;

    let dlq = env.names().dead_letter_queue(Service::Stuff);
    let msg = eventually(Duration::from_secs(10), "the poison message", || {
        get_one(&broker, &dlq)
    })
    .await
    .unwrap();
    let headers = msg
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    assert!(as_text(header(&headers, REASON_HEADER)).starts_with("invalid message"));
    assert_eq!(
        handler.calls.load(Ordering::SeqCst),
        0,
        "the handler never saw the poison"
    );

    publish_event(&publisher, &env, "test.ok", br#"{"n":1}"#).await;
    eventually(Duration::from_secs(5), "the next message", || async {
        (handler.calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await
    .unwrap();
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[]).await;
}

#[tokio::test]
async fn publisher_confirms_and_unroutable_is_an_error() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker.declare(topology(&env, &[])).await.unwrap();
    let publisher = Publisher::new(broker.clone());
    let ok = publisher
        .publish(Outgoing {
            exchange: String::new(),
            routing_key: env.names().dead_letter_queue(Service::Stuff),
            payload: b"{}".to_vec(),
            ..Outgoing::default()
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let unroutable = publisher
        .publish(Outgoing {
            exchange: String::new(),
            routing_key: format!("{}no-such-queue", env.prefix),
            payload: b"{}".to_vec(),
            ..Outgoing::default()
        })
        .await;
    assert!(
        matches!(unroutable, Err(PublishError::Unroutable(_))),
        "{unroutable:?}"
    );
    // Events nobody subscribes to are parked, not lost and not an error.
    let parked = publisher
        .publish(Outgoing {
            exchange: env.names().events_exchange(),
            routing_key: "nobody.listens".into(),
            payload: b"{}".to_vec(),
            ..Outgoing::default()
        })
        .await;
    assert!(parked.is_ok(), "{parked:?}");
    let unrouted = env.names().unrouted_queue();
    let got = eventually(Duration::from_secs(5), "the parked event", || {
        get_one(&broker, &unrouted)
    })
    .await;
    assert!(got.is_ok());
    env.teardown(&[]).await;
}

struct NoTokens;

#[async_trait]
impl VerifyToken for NoTokens {
    async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        if token == "good" {
            Ok(AuthUser {
                id: "u1".into(),
                email: "u1@example.com".into(),
                role: ms_common::events::Role::User,
            })
        } else {
            Err(ApiError::unauthorized("Not authorized"))
        }
    }
}

struct Echo;

#[async_trait]
/// `stuff:get` echoes, `stuff:update` conflicts, the rest is refused.
impl RpcHandler for Echo {
    type Action = StuffAction;

    async fn handle(
        &self,
        ctx: RpcContext,
        action: StuffAction,
        payload: Value,
    ) -> Result<Value, ApiError> {
        match action {
            StuffAction::Get => {
                let remaining_ms = ctx.remaining().map(|d| d.as_millis() as u64);
                Ok(
                    json!({"payload": payload, "user": ctx.user.map(|u| u.id), "cid": ctx.correlation_id, "remainingMs": remaining_ms}),
                )
            }
            StuffAction::Update => {
                Err(ApiError::conflict("This stuff was changed by someone else"))
            }
            StuffAction::List
            | StuffAction::Create
            | StuffAction::FileCheck
            | StuffAction::FileAttach
            | StuffAction::FileRemove
            | StuffAction::FileOrphans
            | StuffAction::Delivery
            | StuffAction::Withdraw
            | StuffAction::Mine
            | StuffAction::Courses
            | StuffAction::Cover => Err(ApiError::forbidden("Not here")),
        }
    }
}

fn req(action: &str, token: Option<&str>, payload: Value) -> RpcRequest {
    RpcRequest {
        action: action.into(),
        token: token.map(str::to_owned),
        payload,
    }
}

#[tokio::test]
async fn rpc_round_trip_forwards_data_and_errors() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker.declare(topology(&env, &[])).await.unwrap();
    let shutdown = Shutdown::new();
    tokio::spawn(run_rpc_server(
        broker.clone(),
        env.names(),
        Service::Stuff,
        16,
        Arc::new(NoTokens),
        Arc::new(Echo),
        shutdown.clone(),
    ));
    let client = RpcClient::new(broker.clone(), env.names(), Duration::from_secs(3));
    let mut v = client
        .call(
            Service::Stuff,
            &req("stuff:get", Some("good"), json!({"a": 1})),
            "cid-1",
        )
        .await
        .unwrap();
    // The caller's deadline travels with the request (x-deadline-ms): the handler sees
    // what is left of the client's 3 s.
    let remaining = v
        .as_object_mut()
        .and_then(|o| o.remove("remainingMs"))
        .and_then(|r| r.as_u64());
    assert!(
        remaining.is_some_and(|ms| ms > 0 && ms <= 3000),
        "{remaining:?}"
    );
    assert_eq!(
        v,
        json!({"payload": {"a": 1}, "user": "u1", "cid": "cid-1"})
    );
    let e = client
        .call(Service::Stuff, &req("stuff:update", None, json!({})), "c")
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.first_message()),
        (409, "This stuff was changed by someone else")
    );
    let e = client
        .call(
            Service::Stuff,
            &req("stuff:get", Some("forged"), json!({})),
            "c",
        )
        .await
        .unwrap_err();
    assert_eq!((e.status, e.first_message()), (401, "Not authorized"));
    let e = client
        .call(Service::Stuff, &req("stuff:nope", None, json!({})), "c")
        .await
        .unwrap_err();
    assert_eq!(e.status, 404);
    // Many in flight at once, each answered to its own caller.
    let calls = (0..50).map(|i| {
        let client = client.clone();
        async move {
            client
                .call(
                    Service::Stuff,
                    &req("stuff:get", None, json!({"i": i})),
                    "c",
                )
                .await
        }
    });
    for (i, r) in futures_util::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap()["payload"]["i"], json!(i));
    }
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[]).await;
}

#[tokio::test]
async fn rpc_without_a_consumer_answers_503_after_the_timeout() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker.declare(topology(&env, &[])).await.unwrap();
    let timeout = Duration::from_millis(400);
    let client = RpcClient::new(broker.clone(), env.names(), timeout);
    let started = Instant::now();
    let e = client
        .call(
            Service::Stuff,
            &req("stuff:get", None, json!({"id": "x"})),
            "c",
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.status, 503);
    assert!(waited >= timeout, "gave up early: {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(3),
        "did not give up: {waited:?}"
    );
    env.teardown(&[]).await;
}

#[tokio::test]
async fn consumer_and_publisher_recover_after_the_broker_closes_their_connection() {
    let env = TestEnv::new();
    let broker = Broker::new(&env.common.amqp_url, &format!("{}chaos", env.prefix));
    broker.declare(topology(&env, &["test.#"])).await.unwrap();
    let handler = Arc::new(Counting {
        calls: AtomicUsize::new(0),
        fail: false,
    });
    let shutdown = Shutdown::new();
    tokio::spawn(run_consumer::<Value, _>(
        broker.clone(),
        spec(&env),
        handler.clone(),
        shutdown.clone(),
    ));
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "test.one", b"{}").await;
    eventually(Duration::from_secs(5), "first message", || async {
        (handler.calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await
    .unwrap();

    let closed = env
        .close_connections(&format!("{}chaos", env.prefix))
        .await
        .unwrap();
    assert!(closed >= 1, "no connection was closed");

    // The publisher reopens its channel on the next attempt; the consumer re-subscribes.
    eventually(
        Duration::from_secs(15),
        "a publish after the close",
        || async {
            publisher
                .publish(Outgoing {
                    exchange: env.names().events_exchange(),
                    routing_key: "test.two".into(),
                    payload: b"{}".to_vec(),
                    ..Outgoing::default()
                })
                .await
                .ok()
        },
    )
    .await
    .unwrap();
    eventually(
        Duration::from_secs(15),
        "the consumer to receive after the close",
        || async { (handler.calls.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await
    .unwrap();
    assert!(broker.is_connected());
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[]).await;
}

#[tokio::test]
async fn a_queue_bound_in_a_test_sees_events_with_their_correlation_id() {
    let env = TestEnv::new();
    let broker = env.broker().await.unwrap();
    broker.declare(topology(&env, &[])).await.unwrap();
    let ch = broker.channel().await.unwrap();
    let q = format!("{}observer", env.prefix);
    ch.queue_declare(
        q.clone().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        q.clone().into(),
        env.names().events_exchange().into(),
        "x.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let publisher = Publisher::new(broker.clone());
    publish_event(&publisher, &env, "x.y", b"{}").await;
    let msg = eventually(Duration::from_secs(5), "observed event", || {
        get_one(&broker, &q)
    })
    .await
    .unwrap();
    let headers = msg
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    assert_eq!(as_text(header(&headers, "x-correlation-id")), "cid-test");
    assert_eq!(
        msg.delivery.properties.delivery_mode(),
        &Some(2),
        "persistent"
    );
    env.teardown(&[q]).await;
}
