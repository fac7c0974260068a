//! Bad input, generated with proptest, against the real processes:
//! - random and malformed payloads for every Socket.IO event of the contract (and a few
//!   names that are not), from anonymous, ordinary and admin sockets;
//! - raw Engine.IO / Socket.IO frames;
//! - random bytes and wrong JSON published straight to every consumer's queues and through
//!   the events exchange, and to every service's RPC queue.
//!
//! Properties: nothing panics and every process stays up, the router keeps answering,
//! every ack / RPC reply is in the contract's envelope, nothing is written for a refused
//! request (every count in every store unchanged), and undecodable events are parked in
//! the owning service's dead-letter queue with the reason.
//!
//! Case counts are modest and the RNG is deterministic, so a run is bounded and
//! repeatable; `CHAOS_FUZZ_CASES=<n>` changes the number of cases.

use crate::load::settle;
use ms_chaos::amqp::{self, RawRpc};
use ms_chaos::client::{Ack, ask, envelope_problem, signup};
use ms_chaos::{ProcOptions, ProcSystem, Snapshot, Stores};
use ms_common::messaging::Service;
use ms_testkit::{SioClient, SioError};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

fn cases(default: u32) -> u32 {
    std::env::var("CHAOS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 24,
            max_shrink_time: 30_000,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The contract's events with their payload fields.
const EVENTS: &[(&str, &[&str])] = &[
    ("stuff:list", &["status", "limit", "cursor"]),
    ("stuff:get", &["id"]),
    ("stuff:create", &["title", "priceCents", "description"]),
    (
        "stuff:update",
        &["id", "version", "title", "priceCents", "description"],
    ),
    ("order:create", &["stuffId"]),
    ("order:cancel", &["id"]),
    ("order:list", &[]),
    ("order:get", &["id"]),
    (
        "payment:create",
        &["orderId", "paymentMethod", "couponCode"],
    ),
    (
        "coupon:create",
        &["percentOff", "maxRedemptions", "expiresAt"],
    ),
    ("coupon:list", &[]),
    ("session:authenticate", &["token"]),
];

/// Requests that may write when they succeed (and `payment:create` also when declined).
const WRITERS: &[&str] = &[
    "stuff:create",
    "stuff:update",
    "order:create",
    "order:cancel",
    "payment:create",
    "coupon:create",
    "user:signup",
    "user:signin",
    "user:refresh",
    "user:signout",
];

/// Ids and other values that exist in the running system, so generated input reaches the
/// checks behind "not found".
#[derive(Debug, Clone)]
struct Known {
    stuff: Vec<String>,
    order: String,
    token: String,
}

fn interesting(known: &Known) -> Vec<Value> {
    let mut v = vec![
        Value::Null,
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(1),
        json!(100),
        json!(101),
        json!(100_000_000),
        json!(100_000_001),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1.5),
        json!(-0.0),
        json!(1e300),
        json!(""),
        json!("   \t\n"),
        json!("a"),
        json!("x".repeat(121)),
        json!("x".repeat(2001)),
        json!("é🦀\u{0}\u{202e}"),
        json!("<script>alert(1)</script>"),
        json!("' OR 1=1 --"),
        json!({"$gt": ""}),
        json!("../../etc/passwd"),
        json!("pm_card_visa"),
        json!("pm_card_chargeDeclined"),
        json!("pm_card_nonsense"),
        json!("available"),
        json!("sold"),
        json!("bogus"),
        json!("2020-01-01T00:00:00Z"),
        json!("2999-01-01T00:00:00Z"),
        json!("not a date"),
        json!("eyJpZCI6IngifQ"),
        json!([]),
        json!({}),
        json!([1, 2]),
        json!(known.order),
        json!(known.token),
    ];
    v.extend(known.stuff.iter().map(|s| json!(s)));
    v
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(
                        EVENTS
                            .iter()
                            .flat_map(|(_, f)| f.iter().copied())
                            .collect::<Vec<_>>()
                    )
                    .prop_map(str::to_owned),
                    "[a-zA-Z]{0,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A request of `event` that would be accepted from the right socket.
fn valid(event: &str, known: &Known) -> Value {
    let (s, o) = (&known.stuff[0], &known.order);
    match event {
        "stuff:list" => json!({"status": "available", "limit": 5}),
        "stuff:get" => json!({"id": s}),
        "stuff:create" => {
            json!({"secretNote": "the goods", "title": "fuzzed", "priceCents": 100, "description": "d"})
        }
        "stuff:update" => json!({"id": s, "title": "edited", "priceCents": 200}),
        "order:create" => json!({"stuffId": s}),
        "order:cancel" | "order:get" => json!({"id": o}),
        "payment:create" => json!({"orderId": o, "paymentMethod": "pm_card_visa"}),
        "coupon:create" => json!({"percentOff": 10, "maxRedemptions": 2}),
        "session:authenticate" => json!({"token": known.token}),
        _ => json!({}),
    }
}

/// A payload for `event`: arbitrary JSON, an object of its own fields with odd values, or
/// a valid request with some fields replaced, dropped or added.
fn payload(
    event: &'static str,
    event_fields: &'static [&'static str],
    known: &Known,
) -> BoxedStrategy<Value> {
    let values = interesting(known);
    let base = valid(event, known);
    let mutated = prop::collection::vec(
        (
            prop::sample::select(
                event_fields
                    .iter()
                    .copied()
                    .chain(["extra", "__proto__"])
                    .collect::<Vec<_>>(),
            ),
            prop::option::of(prop::sample::select(values.clone())),
        ),
        0..3,
    )
    .prop_map(move |changes| {
        let mut v = base.clone();
        if let Some(obj) = v.as_object_mut() {
            for (k, change) in changes {
                match change {
                    Some(x) => {
                        obj.insert(k.to_owned(), x);
                    }
                    None => {
                        obj.remove(k);
                    }
                }
            }
        }
        v
    });
    let value = prop_oneof![
        3 => prop::sample::select(values),
        1 => arb_json(),
    ];
    let fields: Vec<&'static str> = event_fields.to_vec();
    let near_valid = prop::collection::vec(
        (
            if fields.is_empty() {
                Just("x").boxed()
            } else {
                prop::sample::select(fields).boxed()
            },
            value,
        ),
        0..5,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    prop_oneof![3 => near_valid, 3 => mutated, 1 => arb_json()].boxed()
}

#[derive(Debug, Clone)]
struct Request {
    socket: usize,
    event: String,
    payload: Value,
}

fn request(known: &Known, sockets: usize) -> BoxedStrategy<Request> {
    let mut by_event: Vec<BoxedStrategy<Request>> = Vec::new();
    for &(event, fields) in EVENTS {
        let name = event.to_owned();
        by_event.push(
            (0..sockets, payload(event, fields, known))
                .prop_map(move |(socket, payload)| Request {
                    // Identity switches happen on a socket of their own, so the others
                    // keep the identities they were opened with.
                    socket: if name == "session:authenticate" {
                        sockets
                    } else {
                        socket
                    },
                    event: name.clone(),
                    payload,
                })
                .boxed(),
        );
    }
    // Names outside the contract, including Socket.IO's reserved ones.
    let odd_names = prop_oneof![
        prop::sample::select(vec![
            "",
            "connect",
            "disconnect",
            "disconnecting",
            "connect_error",
            "error",
            "message",
            "newListener",
            "user:signup",
            "user:me",
            "stuff",
            ":",
            "stuff:list:x",
        ])
        .prop_map(str::to_owned),
        "[a-z:]{0,12}",
    ];
    by_event.push(
        (0..sockets, odd_names, arb_json())
            .prop_map(|(socket, event, payload)| Request {
                socket,
                event,
                payload,
            })
            .boxed(),
    );
    prop::strategy::Union::new(by_event).boxed()
}

/// The fuzzing targets: a system with some real data and sockets of every kind.
struct Target {
    sys: ProcSystem,
    stores: Stores,
    known: Known,
    sockets: Vec<SioClient>,
}

async fn target() -> Target {
    let sys = ProcSystem::start(ProcOptions {
        payment_order_wait_ms: 100,
        rpc_timeout_ms: 5000,
        admin_emails: "admin@example.com".into(),
        ..ProcOptions::default()
    })
    .await
    .unwrap();
    let (alice, _) = signup(&sys.url, "alice@example.com").await.unwrap();
    let (bob, _) = signup(&sys.url, "bob@example.com").await.unwrap();
    let (admin, _) = signup(&sys.url, "admin@example.com").await.unwrap();
    let seller = SioClient::connect(&sys.url, Some(&alice)).await.unwrap();
    let buyer = SioClient::connect(&sys.url, Some(&bob)).await.unwrap();
    let mut stuff = Vec::new();
    for title in ["free to buy", "held by bob"] {
        let a = ask(
            &seller,
            "stuff:create",
            json!({"secretNote": "the goods", "title": title, "priceCents": 1000}),
            T,
        )
        .await
        .unwrap();
        stuff.push(a.data().unwrap()["id"].as_str().unwrap().to_owned());
    }
    let order = ask(&buyer, "order:create", json!({"stuffId": stuff[1]}), T)
        .await
        .unwrap();
    let order = order.data().unwrap()["id"].as_str().unwrap().to_owned();
    let sockets = vec![
        SioClient::connect(&sys.url, None).await.unwrap(),
        seller,
        buyer,
        SioClient::connect(&sys.url, Some(&admin)).await.unwrap(),
        // Used by `session:authenticate` only.
        SioClient::connect(&sys.url, None).await.unwrap(),
    ];
    let stores = sys.stores().await.unwrap();
    settle(&sys, &stores, false, T * 3).await.unwrap();
    Target {
        sys,
        stores,
        known: Known {
            stuff,
            order,
            token: bob,
        },
        sockets,
    }
}

/// What a batch of answers may have changed: counts per (request, status).
#[derive(Debug, Default)]
struct Effects {
    /// `event status` → count, for writers that succeeded (or payments declined).
    writes: BTreeMap<String, i64>,
}

impl Effects {
    fn note(&mut self, event: &str, status: u64) {
        if WRITERS.contains(&event)
            && (status == 200 || (event == "payment:create" && status == 402))
        {
            *self.writes.entry(format!("{event} {status}")).or_default() += 1;
        }
    }
    fn get(&self, key: &str) -> i64 {
        self.writes.get(key).copied().unwrap_or(0)
    }
}

/// Checks what a batch did to the stores: nothing at all when nothing was accepted;
/// otherwise, once things settle, exactly the rows the accepted requests account for.
async fn check_writes(
    t: &Target,
    before: &Snapshot,
    effects: &Effects,
) -> anyhow::Result<Snapshot> {
    if effects.writes.is_empty() {
        let after = t.stores.snapshot().await?;
        anyhow::ensure!(
            &after == before,
            "refused requests wrote something:\nbefore {before:?}\nafter  {after:?}"
        );
        return Ok(after);
    }
    let w = settle(&t.sys, &t.stores, false, T * 3).await?;
    let after = w.snapshot();
    let checks = [
        (
            "stuff rows",
            after.stuff - before.stuff,
            effects.get("stuff:create 200"),
        ),
        (
            "orders",
            after.orders - before.orders,
            effects.get("order:create 200"),
        ),
        (
            "payments",
            after.payments - before.payments,
            effects.get("payment:create 200"),
        ),
        (
            "declines",
            after.failures - before.failures,
            effects.get("payment:create 402"),
        ),
        (
            "coupons",
            after.coupons - before.coupons,
            effects.get("coupon:create 200"),
        ),
        (
            "users",
            after.users - before.users,
            effects.get("user:signup 200"),
        ),
    ];
    for (what, delta, accepted) in checks {
        anyhow::ensure!(
            delta == accepted,
            "{what}: {delta} new rows for {accepted} accepted requests ({:?})",
            effects.writes
        );
    }
    Ok(after)
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// Leaves the system checked: up, answering, consistent, nothing panicked.
async fn final_checks(t: &mut Target) {
    let fresh = SioClient::connect(&t.sys.url, None).await.unwrap();
    let a = ask(&fresh, "stuff:list", json!({}), T).await.unwrap();
    assert!(a.data().is_some(), "{a:?}");
    settle(&t.sys, &t.stores, false, T * 3).await.unwrap();
    assert_eq!(t.sys.not_running(), Vec::<String>::new());
    assert_eq!(t.sys.panics(), Vec::<String>::new());
}

#[test]
fn random_payloads_for_every_socket_event_get_envelopes_and_write_nothing_when_refused() {
    let rt = runtime();
    let mut t = rt.block_on(target());
    let strategy = prop::collection::vec(request(&t.known, t.sockets.len() - 1), 1..6);
    let before = Mutex::new(rt.block_on(t.stores.snapshot()).unwrap());
    let seen = Mutex::new(BTreeMap::<String, u64>::new());
    let result = runner(cases(48)).run(&strategy, |batch| {
        rt.block_on(async {
            let answers = futures_util::future::join_all(
                batch
                    .iter()
                    .map(|r| t.sockets[r.socket].emit_with_ack(&r.event, r.payload.clone(), T)),
            )
            .await;
            let mut effects = Effects::default();
            for (r, answer) in batch.iter().zip(answers) {
                let v = answer
                    .map_err(|e| fail(format!("{} {} got no ack: {e}", r.event, r.payload)))?;
                if let Some(p) = envelope_problem(&v) {
                    return Err(fail(format!("{} {}: {p}", r.event, r.payload)));
                }
                let status = Ack::of(&v).status();
                *seen
                    .lock()
                    .unwrap()
                    .entry(format!("{} {status}", r.event))
                    .or_default() += 1;
                effects.note(&r.event, status);
            }
            let prev = before.lock().unwrap().clone();
            let after = check_writes(&t, &prev, &effects).await.map_err(fail)?;
            *before.lock().unwrap() = after;
            Ok(())
        })
    });
    eprintln!("socket fuzz: {:?}", seen.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(final_checks(&mut t));
}

fn frame() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "40",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "4-",
        "42/",
        "40/admin,",
        "421",
        "4299999999999999999999",
        "451-",
        "461-",
        "2probe",
        "3probe",
    ]);
    let suffix = prop_oneof![
        Just(String::new()),
        arb_json().prop_map(|v| v.to_string()),
        "\\PC{0,40}",
        Just("[\"stuff:get\",{\"_placeholder\":true,\"num\":0}]".to_owned()),
        Just("[\"stuff:list\",{}]".to_owned()),
        Just("[\"stuff:list\"".to_owned()),
        Just(format!("[\"stuff:list\",\"{}\"]", "x".repeat(70_000))),
    ];
    prop_oneof![
        4 => (prefix, suffix).prop_map(|(p, s)| format!("{p}{s}")),
        1 => "\\PC{0,60}",
    ]
}

#[test]
fn raw_engine_io_and_socket_io_frames_never_take_the_router_down() {
    let rt = runtime();
    let mut t = rt.block_on(target());
    let strategy = prop::collection::vec(frame(), 1..4);
    let outcomes = Mutex::new(BTreeMap::<String, u64>::new());
    let result = runner(cases(64)).run(&strategy, |frames| {
        rt.block_on(async {
            let c = SioClient::connect(&t.sys.url, None).await.map_err(fail)?;
            for f in &frames {
                if c.send_raw(f.clone()).is_err() {
                    break;
                }
            }
            // Either the socket still works (and answers in the envelope) or the server
            // dropped it; both are fine. A broken answer is not.
            let outcome = if c.is_connected() {
                match c
                    .emit_with_ack("stuff:list", json!({}), Duration::from_secs(2))
                    .await
                {
                    Ok(v) => {
                        if let Some(p) = envelope_problem(&v) {
                            return Err(fail(format!("after {frames:?}: {p}")));
                        }
                        "still answering"
                    }
                    Err(SioError::Disconnected) => "dropped",
                    Err(SioError::Timeout) => "silent",
                    Err(e) => return Err(fail(format!("after {frames:?}: {e}"))),
                }
            } else {
                "dropped"
            };
            *outcomes.lock().unwrap().entry(outcome.into()).or_default() += 1;
            let _ = c.disconnect().await;
            // The router itself is unharmed.
            let fresh = SioClient::connect(&t.sys.url, None).await.map_err(fail)?;
            let a = ask(&fresh, "stuff:list", json!({}), T)
                .await
                .map_err(fail)?;
            prop_assert!(a.data().is_some(), "after {frames:?}: {a:?}");
            let _ = fresh.disconnect().await;
            Ok(())
        })
    });
    eprintln!("raw frames: {:?}", outcomes.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(final_checks(&mut t));
}

/// A message body no consumer can decode.
fn bad_body() -> impl Strategy<Value = Vec<u8>> {
    let types = prop::sample::select(vec![
        "stuff.created",
        "stuff.updated",
        "order.created",
        "order.cancelled",
        "order.completed",
        "payment.created",
        "payment.failed",
        "user.created",
        "nope.nothing",
    ]);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..120),
        arb_json().prop_map(|v| v.to_string().into_bytes()),
        // Envelope-shaped, with a body that does not fit its type.
        (types, arb_json()).prop_map(|(ty, data)| json!({
            "id": "e1", "type": ty, "occurredAt": "2024-01-01T00:00:00Z",
            "correlationId": null, "data": data
        })
        .to_string()
        .into_bytes()),
        // A valid type and data with broken types.
        Just(br#"{"id":"e","type":"order.created","occurredAt":"x","data":{"id":1}}"#.to_vec()),
        Just(b"\xff\xfe\x00".to_vec()),
    ]
}

#[derive(Debug, Clone)]
enum Target2 {
    /// Straight into a service's events queue (or ms-order's expired-hold queue).
    Queue(Service, bool),
    /// Through the events exchange with this routing key.
    Exchange(&'static str),
}

/// Which services' queues a routing key reaches (their bindings).
fn bound(key: &str) -> Vec<Service> {
    match key {
        "stuff.updated" | "payment.failed" => vec![Service::Order],
        "order.cancelled" => vec![Service::Stuff, Service::Payment],
        _ => vec![],
    }
}

fn rpc_body(svc: Service, known: &Known) -> BoxedStrategy<Vec<u8>> {
    let actions: Vec<&'static str> = match svc {
        Service::User => vec![
            "user:signup",
            "user:signin",
            "user:refresh",
            "user:signout",
            "user:me",
            "user:jwks",
        ],
        Service::Stuff => vec!["stuff:list", "stuff:get", "stuff:create", "stuff:update"],
        Service::Order => vec!["order:create", "order:cancel", "order:list", "order:get"],
        Service::Payment => vec!["payment:create", "coupon:create", "coupon:list"],
    };
    let fields: Vec<&'static str> = vec![
        "email",
        "password",
        "refreshToken",
        "token",
        "id",
        "title",
        "priceCents",
        "stuffId",
        "orderId",
        "paymentMethod",
        "percentOff",
    ];
    let values = interesting(known);
    let payload = prop_oneof![
        arb_json(),
        prop::collection::vec(
            (prop::sample::select(fields), prop::sample::select(values)),
            0..4
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())),
    ];
    let token = prop_oneof![
        Just(Value::Null),
        Just(json!(known.token)),
        Just(json!("garbage")),
        any::<i64>().prop_map(|i| json!(i)),
        Just(json!(format!("{}x", known.token))),
    ];
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..80),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        4 => (
            prop_oneof![prop::sample::select(actions).prop_map(Value::from), arb_json()],
            token,
            payload
        )
            .prop_map(|(action, token, payload)| json!({
                "action": action, "token": token, "payload": payload
            })
            .to_string()
            .into_bytes()),
    ]
    .boxed()
}

#[test]
fn undecodable_events_are_dead_lettered_and_raw_rpc_garbage_is_answered_in_the_envelope() {
    let rt = runtime();
    let mut t = rt.block_on(target());
    let broker = rt.block_on(t.sys.env.broker()).unwrap();
    let names = t.sys.env.names();

    // Events: every consumer's queue, directly and through the exchange.
    let target_strategy = prop_oneof![
        prop::sample::select(vec![
            Target2::Queue(Service::Stuff, false),
            Target2::Queue(Service::Order, false),
            Target2::Queue(Service::Payment, false),
            Target2::Queue(Service::Order, true),
        ]),
        prop::sample::select(vec!["stuff.updated", "payment.failed", "order.cancelled"])
            .prop_map(Target2::Exchange),
    ];
    let expected = Mutex::new(BTreeMap::<&'static str, u32>::new());
    let result = runner(cases(48)).run(&(target_strategy, bad_body()), |(dest, body)| {
        rt.block_on(async {
            let (exchange, key, reached) = match &dest {
                Target2::Queue(svc, expired) => {
                    let q = if *expired {
                        format!("{}order.expired", t.sys.env.prefix)
                    } else {
                        names.events_queue(*svc)
                    };
                    (String::new(), q, vec![*svc])
                }
                Target2::Exchange(key) => (names.events_exchange(), (*key).to_owned(), bound(key)),
            };
            amqp::publish_raw(&broker, &exchange, &key, &body)
                .await
                .map_err(fail)?;
            let mut e = expected.lock().unwrap();
            for svc in reached {
                *e.entry(svc.as_str()).or_default() += 1;
            }
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let expected = expected.into_inner().unwrap();
    for svc in [Service::Stuff, Service::Order, Service::Payment] {
        let want = expected.get(svc.as_str()).copied().unwrap_or(0);
        let dlq = names.dead_letter_queue(svc);
        let letters = rt
            .block_on(async {
                ms_testkit::eventually(T * 3, &format!("{want} dead letters in {dlq}"), || async {
                    (amqp::depth(&broker, &dlq).await.ok()? >= want).then_some(())
                })
                .await?;
                amqp::drain(&broker, &dlq).await
            })
            .unwrap();
        assert_eq!(
            letters.len() as u32,
            want,
            "{dlq}: every undecodable event, once"
        );
        for l in &letters {
            let reason = l.header("x-death-reason").unwrap_or_default();
            assert!(
                reason.starts_with("invalid message"),
                "{dlq}: reason {reason:?} for {:?}",
                String::from_utf8_lossy(&l.body)
            );
        }
    }

    // RPC: garbage straight into every service's request queue gets an envelope reply.
    let mut rpc = rt.block_on(RawRpc::new(&broker)).unwrap();
    let rpc = tokio::sync::Mutex::new(&mut rpc);
    let before = Mutex::new(rt.block_on(t.stores.snapshot()).unwrap());
    let svc_strategy = prop::sample::select(Service::ALL.to_vec())
        .prop_flat_map(|svc| (Just(svc), rpc_body(svc, &t.known)));
    let seen = Mutex::new(BTreeMap::<String, u64>::new());
    let result = runner(cases(96)).run(&svc_strategy, |(svc, body)| {
        rt.block_on(async {
            let reply = rpc
                .lock()
                .await
                .call(&names.rpc_queue(svc), &body, T)
                .await
                .map_err(fail)?;
            let Some(v) = reply else {
                return Err(fail(format!(
                    "{}: no reply to {:?}",
                    svc.as_str(),
                    String::from_utf8_lossy(&body)
                )));
            };
            if let Some(p) = envelope_problem(&v) {
                return Err(fail(format!(
                    "{}: {p} for {:?}",
                    svc.as_str(),
                    String::from_utf8_lossy(&body)
                )));
            }
            let status = Ack::of(&v).status();
            let action = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b["action"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "-".into());
            *seen
                .lock()
                .unwrap()
                .entry(format!("{} {action} {status}", svc.as_str()))
                .or_default() += 1;
            let mut effects = Effects::default();
            effects.note(&action, status);
            let prev = before.lock().unwrap().clone();
            let after = check_writes(&t, &prev, &effects).await.map_err(fail)?;
            *before.lock().unwrap() = after;
            Ok(())
        })
    });
    eprintln!("raw rpc: {:?}", seen.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(broker.close());
    rt.block_on(final_checks(&mut t));
}

#[derive(Debug, Clone)]
struct HttpCase {
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    cookie: Option<String>,
    bearer: Option<String>,
    body: Vec<u8>,
}

fn http_case(known: &Known) -> BoxedStrategy<HttpCase> {
    let paths = prop_oneof![
        4 => prop::sample::select(vec![
            "/api/users/signup",
            "/api/users/signin",
            "/api/users/refresh",
            "/api/users/signout",
            "/api/users/me",
        ])
        .prop_map(str::to_owned),
        1 => "/api/[a-z/]{0,12}",
    ];
    let methods = prop_oneof![
        6 => Just("POST"),
        2 => Just("GET"),
        1 => prop::sample::select(vec!["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    ];
    let values = interesting(known);
    let body = prop_oneof![
        3 => prop::collection::vec(
            (
                prop::sample::select(vec!["email", "password", "refreshToken", "x"]),
                prop_oneof![
                    prop::sample::select(values),
                    Just(json!("fuzz@example.com")),
                    Just(json!("password123")),
                ],
            ),
            0..3
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            .to_string()
            .into_bytes()),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let token = known.token.clone();
    (
        methods,
        paths,
        prop::option::of(prop::sample::select(vec![
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
        ])),
        prop::option::of(prop_oneof![
            Just("refresh_token=garbage".to_owned()),
            Just("refresh_token=".to_owned()),
            "refresh_token=[a-zA-Z0-9]{0,40}",
        ]),
        prop::option::of(prop_oneof![
            Just(token),
            Just("garbage".to_owned()),
            "[ -~]{0,40}",
        ]),
        body,
    )
        .prop_map(
            |(method, path, content_type, cookie, bearer, body)| HttpCase {
                method,
                path,
                content_type,
                cookie,
                bearer,
                body,
            },
        )
        .boxed()
}

#[test]
fn random_http_requests_to_the_account_api_get_envelopes_and_write_nothing_when_refused() {
    let rt = runtime();
    let mut t = rt.block_on(target());
    let http = reqwest::Client::builder().timeout(T).build().unwrap();
    let before = Mutex::new(rt.block_on(t.stores.snapshot()).unwrap());
    let seen = Mutex::new(BTreeMap::<String, u64>::new());
    let result = runner(cases(96)).run(&http_case(&t.known), |c| {
        rt.block_on(async {
            let method = reqwest::Method::from_bytes(c.method.as_bytes()).map_err(fail)?;
            let mut req = http
                .request(method, format!("{}{}", t.sys.url, c.path))
                .body(c.body.clone());
            if let Some(ct) = c.content_type {
                req = req.header("content-type", ct);
            }
            if let Some(ck) = &c.cookie {
                req = req.header("cookie", ck);
            }
            if let Some(b) = &c.bearer
                && let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {b}"))
            {
                req = req.header("authorization", v);
            }
            let r = req.send().await.map_err(fail)?;
            let status = r.status().as_u16();
            let text = r.text().await.map_err(fail)?;
            *seen
                .lock()
                .unwrap()
                .entry(format!("{} {} {status}", c.method, c.path))
                .or_default() += 1;
            if status >= 400 && c.method != "HEAD" {
                let body: Value =
                    serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
                if let Some(p) = ms_chaos::client::error_body_problem(&body, false) {
                    return Err(fail(format!(
                        "{} {} answered {status} outside the error envelope: {p}",
                        c.method, c.path
                    )));
                }
            }
            prop_assert!(
                status < 500 || status == 503,
                "{} {} answered {status}: {text}",
                c.method,
                c.path
            );
            // Only a successful sign-up, sign-in or refresh may write.
            let wrote = (200..300).contains(&status)
                && [
                    "/api/users/signup",
                    "/api/users/signin",
                    "/api/users/refresh",
                    "/api/users/signout",
                ]
                .contains(&c.path.as_str());
            let prev = before.lock().unwrap().clone();
            let after = t.stores.snapshot().await.map_err(fail)?;
            if !wrote {
                prop_assert_eq!(
                    &after,
                    &prev,
                    "{} {} ({}) wrote something",
                    c.method,
                    c.path,
                    status
                );
            }
            *before.lock().unwrap() = after;
            Ok(())
        })
    });
    eprintln!("http fuzz: {:?}", seen.lock().unwrap());
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(final_checks(&mut t));
}
