//! ms-order over a real RabbitMQ and SQLite: checkout rules, the single-winner race,
//! expiry through the TTL queue (also across a restart), payments, and idempotency.
//! Stuff and payment facts are published as events, the way ms-stuff and ms-payment do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::ApiError;
use ms_common::auth::Claims;
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, PaymentFailure, PaymentRecord, Role,
    StuffRecord, StuffStatus,
};
use ms_common::messaging::{Broker, Outgoing, Publisher, RpcClient, RpcRequest, Service};
use ms_order::store::{CreateError, OrderStore, StuffReplica};
use ms_order::{OrderConfig, RunningOrder};
use ms_testkit::{TestEnv, eventually};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Ctx {
    env: TestEnv,
    broker: Broker,
    rpc: RpcClient,
    publisher: Publisher,
    user: ms_user::RunningUser,
    order: Option<RunningOrder>,
    observer: String,
    hold: Duration,
}

async fn setup(hold: Duration) -> Ctx {
    setup_with(hold, |_| {}, None).await
}

/// [`setup`] with adjusted settings and, optionally, a store of the test's own.
async fn setup_with(
    hold: Duration,
    tweak: impl FnOnce(&mut OrderConfig),
    store: Option<Arc<dyn OrderStore>>,
) -> Ctx {
    let env = TestEnv::new();
    let user = ms_user::start(ms_user::UserConfig::for_tests(&env.prefix))
        .await
        .unwrap();
    let mut cfg = OrderConfig::for_tests(&env.prefix, hold);
    tweak(&mut cfg);
    let order = match store {
        Some(store) => ms_order::start_with_store(cfg, store).await.unwrap(),
        None => ms_order::start(cfg).await.unwrap(),
    };
    let broker = env.broker().await.unwrap();
    // Observe every order event the service publishes.
    let observer = format!("{}observer", env.prefix);
    let ch = broker.channel().await.unwrap();
    ch.queue_declare(
        observer.clone().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        observer.clone().into(),
        env.names().events_exchange().into(),
        "order.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let rpc = RpcClient::new(broker.clone(), env.names(), Duration::from_secs(5));
    let publisher = Publisher::new(broker.clone());
    Ctx {
        env,
        broker,
        rpc,
        publisher,
        user,
        order: Some(order),
        observer,
        hold,
    }
}

impl Ctx {
    /// A valid token for a made-up user id (signed by the real ms-user key).
    async fn token(&self, user_id: &str) -> String {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.into(),
            email: format!("{user_id}@example.com"),
            role: Role::User,
            iat: now,
            exp: now + 600,
        };
        self.user.service.sign(&claims).await.unwrap()
    }

    async fn call(&self, action: &str, token: &str, payload: Value) -> Result<Value, ApiError> {
        let req = RpcRequest {
            action: action.into(),
            token: Some(token.into()),
            payload,
        };
        self.rpc.call(Service::Order, &req, "test").await
    }

    async fn publish(&self, event: Event) {
        let env = EventEnvelope::new(event, Some("test".into()));
        self.publisher
            .publish(Outgoing {
                exchange: self.env.names().events_exchange(),
                routing_key: env.event.routing_key().into(),
                payload: serde_json::to_vec(&env).unwrap(),
                ..Outgoing::default()
            })
            .await
            .unwrap();
    }

    /// Lists a stuff in ms-order's replica and waits until it is there.
    async fn stuff(&self, seller: &str, status: StuffStatus, version: u64) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.put_stuff(&id, seller, status, version).await;
        id
    }

    async fn put_stuff(&self, id: &str, seller: &str, status: StuffStatus, version: u64) {
        let now = Utc::now();
        let rec = StuffRecord {
            id: id.into(),
            title: "Notes".into(),
            description: String::new(),
            price_cents: 1250,
            seller_id: seller.into(),
            status,
            order_id: None,
            version,
            created_at: now,
            updated_at: now,
            files: vec![],
            has_secret_note: true,
            course: None,
            seller_name: None,
            rating_count: 0,
            rating_sum: 0,
            rating_rank: 0,
            cover: None,
        };
        let ev = if version == 1 {
            Event::StuffCreated(rec)
        } else {
            Event::StuffUpdated(rec)
        };
        self.publish(ev).await;
    }

    async fn wait_replica(&self, id: &str, version: u64) {
        let store = self.order.as_ref().unwrap().store.clone();
        eventually(Duration::from_secs(10), "the stuff replica", || async {
            (store.stuff(id).await.ok()??.version == version).then_some(())
        })
        .await
        .unwrap();
    }

    /// Order events observed so far, in order.
    /// The events published so far. A change is visible in the store a moment before the
    /// relay has published its event, so this first waits for ms-order's outbox to drain.
    async fn observed(&self) -> Vec<EventEnvelope> {
        if let Some(order) = self.order.as_ref() {
            let outbox = order.store.outbox();
            eventually(
                Duration::from_secs(10),
                "ms-order's outbox to drain",
                || async { (outbox.unsent_count().await.ok()? == 0).then_some(()) },
            )
            .await
            .unwrap();
        }
        let ch = self.broker.channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(
                self.observer.clone().into(),
                BasicGetOptions { no_ack: true },
            )
            .await
            .unwrap()
        {
            out.push(serde_json::from_slice(&m.delivery.data).unwrap());
        }
        out
    }

    async fn order_status(&self, id: &str, want: OrderStatus, within: Duration) -> OrderRecord {
        let store = self.order.as_ref().unwrap().store.clone();
        eventually(within, &format!("order {id} to be {want:?}"), || async {
            store.order(id).await.ok()?.filter(|o| o.status == want)
        })
        .await
        .unwrap()
    }

    async fn done(mut self) {
        if let Some(o) = self.order.take() {
            o.handle.stop().await;
        }
        let hold = self.order_cfg().hold_topology();
        self.user.handle.stop().await;
        self.env
            .teardown(&[
                self.observer.clone(),
                hold.hold_queue(),
                hold.expired_queue(),
            ])
            .await;
    }

    fn order_cfg(&self) -> OrderConfig {
        OrderConfig::for_tests(&self.env.prefix, self.hold)
    }
}

fn msg(e: &ApiError) -> (u16, &str) {
    (e.status, e.first_message())
}

const HELD: &str = "The stuff is being checked out by someone else, please come back later";

#[tokio::test]
async fn create_get_list_cancel_and_the_rules() {
    let c = setup(Duration::from_secs(600)).await;
    let (seller, buyer, other) = (
        c.token("seller").await,
        c.token("buyer").await,
        c.token("other").await,
    );
    let stuff = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&stuff, 1).await;

    assert_eq!(
        msg(&c
            .call("order:create", &seller, json!({"stuffId": stuff}))
            .await
            .unwrap_err()),
        (403, "You cannot buy your own stuff")
    );
    assert_eq!(
        msg(&c
            .call("order:create", &buyer, json!({"stuffId": "nope"}))
            .await
            .unwrap_err()),
        (404, "Stuff not found")
    );
    let e = c
        .call("order:create", &buyer, json!({"stuffId": 42}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.errors[0].field.as_deref()),
        (400, Some("stuffId"))
    );
    let anon = c
        .rpc
        .call(
            Service::Order,
            &RpcRequest {
                action: "order:create".into(),
                token: None,
                payload: json!({"stuffId": stuff}),
            },
            "t",
        )
        .await
        .unwrap_err();
    assert_eq!(anon.status, 401);

    let o = c
        .call("order:create", &buyer, json!({"stuffId": stuff}))
        .await
        .unwrap();
    assert_eq!(
        (
            o["status"].as_str(),
            o["priceCents"].as_i64(),
            o["version"].as_u64()
        ),
        (Some("created"), Some(1250), Some(1))
    );
    assert_eq!(o["userId"], "buyer");
    let expires = chrono::DateTime::parse_from_rfc3339(o["expiresAt"].as_str().unwrap()).unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(o["createdAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 600);
    let id = o["id"].as_str().unwrap().to_owned();

    assert_eq!(
        msg(&c
            .call("order:create", &other, json!({"stuffId": stuff}))
            .await
            .unwrap_err()),
        (409, HELD)
    );
    // The holder asking again (a retry after a lost reply) gets their own hold back.
    assert_eq!(
        c.call("order:create", &buyer, json!({"stuffId": stuff}))
            .await
            .unwrap(),
        o
    );
    assert_eq!(
        c.call("order:get", &buyer, json!({"id": id}))
            .await
            .unwrap(),
        o
    );
    assert_eq!(
        msg(&c
            .call("order:get", &other, json!({"id": id}))
            .await
            .unwrap_err()),
        (403, "You do not own this order")
    );
    assert_eq!(
        c.call("order:get", &buyer, json!({"id": "missing"}))
            .await
            .unwrap_err()
            .status,
        404
    );
    assert_eq!(
        c.call("order:list", &buyer, json!({})).await.unwrap(),
        json!([o])
    );
    assert_eq!(
        c.call("order:list", &other, json!({})).await.unwrap(),
        json!([])
    );

    assert_eq!(
        c.call("order:cancel", &other, json!({"id": id}))
            .await
            .unwrap_err()
            .status,
        403
    );
    let cancelled = c
        .call("order:cancel", &buyer, json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["version"].as_u64()),
        (Some("cancelled"), Some(2))
    );
    let again = c
        .call("order:cancel", &buyer, json!({"id": id}))
        .await
        .unwrap();
    assert_eq!(again, cancelled, "cancel is idempotent");

    // Released: someone else may now order; a second order is newest first in the list.
    let o2 = c
        .call("order:create", &buyer, json!({"stuffId": stuff}))
        .await
        .unwrap();
    let list = c.call("order:list", &buyer, json!({})).await.unwrap();
    assert_eq!(list[0]["id"], o2["id"]);
    assert_eq!(list[1]["id"].as_str(), Some(id.as_str()));

    // Sold stuff (as announced by ms-stuff) is refused with the contract's message.
    let sold = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&sold, 1).await;
    c.put_stuff(&sold, "seller", StuffStatus::Sold, 2).await;
    c.wait_replica(&sold, 2).await;
    assert_eq!(
        msg(&c
            .call("order:create", &buyer, json!({"stuffId": sold}))
            .await
            .unwrap_err()),
        (409, "This stuff has already been sold")
    );
    // So is stuff its seller withdrew.
    c.put_stuff(&sold, "seller", StuffStatus::Withdrawn, 3)
        .await;
    c.wait_replica(&sold, 3).await;
    assert_eq!(
        msg(&c
            .call("order:create", &buyer, json!({"stuffId": sold}))
            .await
            .unwrap_err()),
        (409, "This stuff is no longer for sale")
    );

    let kinds: Vec<_> = c
        .observed()
        .await
        .into_iter()
        .map(|e| e.event.routing_key())
        .collect();
    assert_eq!(
        kinds,
        vec!["order.created", "order.cancelled", "order.created"]
    );
    c.done().await;
}

#[tokio::test]
async fn two_hundred_simultaneous_buyers_exactly_one_wins() {
    let c = setup(Duration::from_secs(600)).await;
    let stuff = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&stuff, 1).await;
    let mut tokens = Vec::new();
    for i in 0..200 {
        tokens.push(c.token(&format!("buyer{i}")).await);
    }
    let attempts = tokens
        .iter()
        .map(|t| c.call("order:create", t, json!({"stuffId": stuff})));
    let results = futures_util::future::join_all(attempts).await;
    let wins: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let losses: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(wins.len(), 1, "exactly one winner");
    assert_eq!(losses.len(), 199);
    assert!(
        losses.iter().all(|e| msg(e) == (409, HELD)),
        "{:?}",
        losses.iter().find(|e| msg(e) != (409, HELD))
    );
    assert_eq!(
        c.order
            .as_ref()
            .unwrap()
            .store
            .active_count(&stuff)
            .await
            .unwrap(),
        1
    );
    let store = c.order.as_ref().unwrap().store.clone();
    eventually(Duration::from_secs(5), "outbox drained", || async {
        (store.outbox().unsent_count().await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    let created: Vec<_> = c
        .observed()
        .await
        .into_iter()
        .filter(|e| e.event.routing_key() == "order.created")
        .collect();
    assert_eq!(created.len(), 1, "one order.created published");
    c.done().await;
}

#[tokio::test]
async fn a_hold_expires_through_the_ttl_queue_and_the_stuff_can_be_bought_again() {
    let c = setup(Duration::from_millis(1500)).await;
    let (a, b) = (c.token("a").await, c.token("b").await);
    let stuff = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&stuff, 1).await;
    let o = c
        .call("order:create", &a, json!({"stuffId": stuff}))
        .await
        .unwrap();
    let id = o["id"].as_str().unwrap().to_owned();
    assert_eq!(
        msg(&c
            .call("order:create", &b, json!({"stuffId": stuff}))
            .await
            .unwrap_err()),
        (409, HELD)
    );
    let cancelled = c
        .order_status(&id, OrderStatus::Cancelled, Duration::from_secs(10))
        .await;
    assert!(
        Utc::now() >= cancelled.expires_at,
        "not cancelled before expiresAt"
    );
    assert_eq!(cancelled.version, 2);
    // ms-stuff would announce the release; the order service itself already lets B buy.
    c.call("order:create", &b, json!({"stuffId": stuff}))
        .await
        .unwrap();
    let kinds: Vec<_> = c
        .observed()
        .await
        .into_iter()
        .map(|e| e.event.routing_key())
        .collect();
    assert_eq!(
        &kinds[..3],
        &["order.created", "order.cancelled", "order.created"]
    );
    c.done().await;
}

#[tokio::test]
async fn expiry_survives_a_restart_of_ms_order() {
    let mut c = setup(Duration::from_millis(1500)).await;
    let dir = std::env::temp_dir().join(format!("stuffmart-order-{}", uuid::Uuid::new_v4()));
    let path = dir.join("order.db");
    // Restart the service on a file database so the order outlives the process.
    c.order.take().unwrap().handle.stop().await;
    let mut cfg = c.order_cfg();
    cfg.storage = ms_common::config::StorageConfig::SqliteFile(path.clone());
    c.order = Some(ms_order::start(cfg.clone()).await.unwrap());
    let a = c.token("a").await;
    let stuff = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&stuff, 1).await;
    let o = c
        .call("order:create", &a, json!({"stuffId": stuff}))
        .await
        .unwrap();
    let id = o["id"].as_str().unwrap().to_owned();
    let store = c.order.as_ref().unwrap().store.clone();
    eventually(
        Duration::from_secs(5),
        "order.created published",
        || async { (store.outbox().unsent_count().await.ok()? == 0).then_some(()) },
    )
    .await
    .unwrap();
    c.order.take().unwrap().handle.stop().await;
    drop(store);

    // While ms-order is down the hold runs out; the expiry waits in the broker.
    let hold = cfg.hold_topology();
    let ch = c.broker.channel().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the expired hold to wait in order.expired",
        || async {
            let q = ch
                .queue_declare(
                    hold.expired_queue().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .ok()?;
            (q.message_count() >= 1).then_some(())
        },
    )
    .await
    .unwrap();

    c.order = Some(ms_order::start(cfg).await.unwrap());
    let cancelled = c
        .order_status(&id, OrderStatus::Cancelled, Duration::from_secs(10))
        .await;
    assert_eq!(cancelled.version, 2);
    let kinds: Vec<_> = c
        .observed()
        .await
        .into_iter()
        .map(|e| e.event.routing_key())
        .collect();
    assert_eq!(kinds, vec!["order.created", "order.cancelled"]);
    c.done().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn payment(order_id: &str, user_id: &str) -> PaymentRecord {
    PaymentRecord {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: order_id.into(),
        user_id: user_id.into(),
        amount_cents: 1250,
        coupon_code: None,
        provider_id: "pi_test".into(),
        created_at: Utc::now(),
        refunded_at: None,
        currency: "eur".into(),
        fee_cents: Some(125),
    }
}

#[tokio::test]
async fn payments_complete_or_cancel_orders_once() {
    let c = setup(Duration::from_secs(600)).await;
    let a = c.token("a").await;
    let s1 = c.stuff("seller", StuffStatus::Available, 1).await;
    let s2 = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&s1, 1).await;
    c.wait_replica(&s2, 1).await;
    let o1 = c
        .call("order:create", &a, json!({"stuffId": s1}))
        .await
        .unwrap();
    let o2 = c
        .call("order:create", &a, json!({"stuffId": s2}))
        .await
        .unwrap();
    let (id1, id2) = (
        o1["id"].as_str().unwrap().to_owned(),
        o2["id"].as_str().unwrap().to_owned(),
    );

    // The order names what it bought; nothing is paid yet.
    assert_eq!(
        (&o1["stuffTitle"], &o1["paidCents"], &o1["priceCents"]),
        (&json!("Notes"), &Value::Null, &json!(1250))
    );
    // Paid with a coupon: the order records what was charged, not the list price.
    let paid = PaymentRecord {
        amount_cents: 625,
        coupon_code: Some("HALF".into()),
        ..payment(&id1, "a")
    };
    c.publish(Event::PaymentCreated(paid.clone())).await;
    c.publish(Event::PaymentCreated(paid)).await; // duplicate delivery
    let done = c
        .order_status(&id1, OrderStatus::Complete, Duration::from_secs(10))
        .await;
    assert_eq!(done.version, 2);
    assert_eq!((done.paid_cents, done.price_cents), (Some(625), 1250));
    let got = c.call("order:get", &a, json!({"id": id1})).await.unwrap();
    assert_eq!(
        (&got["paidCents"], &got["stuffTitle"]),
        (&json!(625), &json!("Notes"))
    );
    assert_eq!(
        msg(&c
            .call("order:cancel", &a, json!({"id": id1}))
            .await
            .unwrap_err()),
        (409, "A complete order cannot be cancelled")
    );
    assert_eq!(
        msg(&c
            .call("order:create", &c.token("b").await, json!({"stuffId": s1}))
            .await
            .unwrap_err()),
        (409, "This stuff has already been sold")
    );

    let failure = PaymentFailure {
        order_id: id2.clone(),
        user_id: "a".into(),
        reason: "card_declined".into(),
    };
    c.publish(Event::PaymentFailed(failure.clone())).await;
    c.publish(Event::PaymentFailed(failure)).await;
    c.order_status(&id2, OrderStatus::Cancelled, Duration::from_secs(10))
        .await;

    // Duplicate expiry of a finished order: nothing changes, nothing is published.
    let hold = c.order_cfg().hold_topology();
    let created = EventEnvelope::new(
        Event::OrderCreated(serde_json::from_value::<OrderRecord>(o1).unwrap()),
        None,
    );
    for _ in 0..2 {
        c.publisher
            .publish(Outgoing {
                exchange: String::new(),
                routing_key: hold.expired_queue(),
                payload: serde_json::to_vec(&created).unwrap(),
                ..Outgoing::default()
            })
            .await
            .unwrap();
    }
    let store = c.order.as_ref().unwrap().store.clone();
    eventually(
        Duration::from_secs(10),
        "duplicates consumed and outbox drained",
        || async {
            let ch = c.broker.channel().await.ok()?;
            let events = ch
                .queue_declare(
                    c.env.names().events_queue(Service::Order).into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .ok()?;
            let expired = ch
                .queue_declare(
                    hold.expired_queue().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .ok()?;
            (events.message_count() == 0
                && expired.message_count() == 0
                && store.outbox().unsent_count().await.ok()? == 0)
                .then_some(())
        },
    )
    .await
    .unwrap();
    let kinds: Vec<_> = c
        .observed()
        .await
        .into_iter()
        .map(|e| e.event.routing_key())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "order.completed").count(), 1);
    assert_eq!(kinds.iter().filter(|k| **k == "order.cancelled").count(), 1);
    assert_eq!(store.order(&id1).await.unwrap().unwrap().version, 2);
    c.done().await;
}

#[tokio::test]
async fn stuff_events_apply_in_version_order_even_when_they_arrive_out_of_order() {
    let c = setup(Duration::from_secs(600)).await;
    let id = uuid::Uuid::now_v7().to_string();
    c.put_stuff(&id, "seller", StuffStatus::Reserved, 2).await; // early
    c.put_stuff(&id, "seller", StuffStatus::Available, 1).await;
    c.put_stuff(&id, "seller", StuffStatus::Available, 1).await; // duplicate
    c.wait_replica(&id, 2).await;
    let s = c
        .order
        .as_ref()
        .unwrap()
        .store
        .stuff(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, StuffStatus::Reserved);
    // Nothing was dead-lettered on this path.
    let ch = c.broker.channel().await.unwrap();
    let dlq = ch
        .queue_declare(
            c.env.names().dead_letter_queue(Service::Order).into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(dlq.message_count(), 0);
    c.done().await;
}

#[tokio::test]
async fn the_hold_queue_name_carries_the_hold_time() {
    let a = OrderConfig::for_tests("p.", Duration::from_secs(900)).hold_topology();
    let b = OrderConfig::for_tests("p.", Duration::from_secs(30)).hold_topology();
    assert_eq!(a.hold_queue(), "p.order.hold.900000ms");
    assert_ne!(a.hold_queue(), b.hold_queue());
    assert_eq!(a.expired_queue(), "p.order.expired");
    let _ = Arc::new(a);
}

#[tokio::test]
async fn a_refunded_payment_refunds_the_order_and_a_late_payment_for_taken_stuff_is_refunded() {
    let c = setup(Duration::from_secs(600)).await;
    let (a, b) = (c.token("a").await, c.token("b").await);
    let s1 = c.stuff("seller", StuffStatus::Available, 1).await;
    c.wait_replica(&s1, 1).await;

    // Paid, then refunded: complete → refunded once, and the stuff can be ordered again.
    let o1 = c
        .call("order:create", &a, json!({"stuffId": s1}))
        .await
        .unwrap();
    let id1 = o1["id"].as_str().unwrap().to_owned();
    let paid = payment(&id1, "a");
    c.publish(Event::PaymentCreated(paid.clone())).await;
    c.order_status(&id1, OrderStatus::Complete, Duration::from_secs(10))
        .await;
    let refunded = PaymentRecord {
        refunded_at: Some(Utc::now()),
        ..paid.clone()
    };
    c.publish(Event::PaymentRefunded(refunded.clone())).await;
    c.publish(Event::PaymentRefunded(refunded)).await; // duplicate delivery
    let done = c
        .order_status(&id1, OrderStatus::Refunded, Duration::from_secs(10))
        .await;
    assert_eq!(done.version, 3);
    // A payment.created redelivered after the refund changes nothing.
    c.publish(Event::PaymentCreated(paid)).await;

    // b holds the stuff now; a's second order was cancelled and its payment lands late.
    let o2 = c
        .call("order:create", &a, json!({"stuffId": s1}))
        .await
        .unwrap();
    let id2 = o2["id"].as_str().unwrap().to_owned();
    c.call("order:cancel", &a, json!({"id": id2}))
        .await
        .unwrap();
    let o3 = c
        .call("order:create", &b, json!({"stuffId": s1}))
        .await
        .unwrap();
    let id3 = o3["id"].as_str().unwrap().to_owned();
    c.publish(Event::PaymentCreated(payment(&id2, "a"))).await;
    let late = c
        .order_status(&id2, OrderStatus::Refunded, Duration::from_secs(10))
        .await;
    assert_eq!(late.version, 3);
    assert_eq!(
        c.order
            .as_ref()
            .unwrap()
            .store
            .order(&id1)
            .await
            .unwrap()
            .unwrap()
            .version,
        3,
        "the first order did not move again"
    );
    let holder = c
        .order
        .as_ref()
        .unwrap()
        .store
        .order(&id3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.status, OrderStatus::Created);
    c.done().await;
}

// ---- Holds can't be lost (issue 17, item 3) ----

impl Ctx {
    /// Messages waiting in `queue`.
    async fn depth(&self, queue: &str) -> u32 {
        let ch = self.broker.channel().await.unwrap();
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
    }

    /// Waits until ms-order's outbox is published (`order.created` is in the hold queue).
    async fn published(&self) {
        let outbox = self.order.as_ref().unwrap().store.outbox();
        eventually(Duration::from_secs(10), "the outbox to drain", || async {
            (outbox.unsent_count().await.ok()? == 0).then_some(())
        })
        .await
        .unwrap();
    }

    /// Loses the hold's TTL message, as a lost broker node or a purge would.
    async fn lose_hold_messages(&self) -> u32 {
        self.published().await;
        let ch = self.broker.channel().await.unwrap();
        ch.queue_purge(
            self.order_cfg().hold_topology().hold_queue().into(),
            lapin::options::QueuePurgeOptions::default(),
        )
        .await
        .unwrap()
    }

    /// Buys a fresh stuff as `buyer`; the order's id.
    async fn buy(&self, buyer: &str) -> OrderRecord {
        let token = self.token(buyer).await;
        let stuff = self.stuff("seller", StuffStatus::Available, 1).await;
        self.wait_replica(&stuff, 1).await;
        let o = self
            .call("order:create", &token, json!({"stuffId": stuff}))
            .await
            .unwrap();
        serde_json::from_value(o).unwrap()
    }

    /// Sends an order's expiry straight to `order.expired`, as the TTL queue does.
    async fn send_expiry(&self, order: &OrderRecord) {
        let created = EventEnvelope::new(Event::OrderCreated(order.clone()), None);
        self.publisher
            .publish(Outgoing {
                exchange: String::new(),
                routing_key: self.order_cfg().hold_topology().expired_queue(),
                payload: serde_json::to_vec(&created).unwrap(),
                ..Outgoing::default()
            })
            .await
            .unwrap();
    }

    /// How many events of `kind` were published about `order_id`.
    async fn count_events(&self, kind: &str, order_id: &str) -> usize {
        self.observed()
            .await
            .into_iter()
            .filter(|e| e.event.routing_key() == kind)
            .filter(|e| match &e.event {
                Event::OrderCancelled(o) | Event::OrderCreated(o) => o.id == order_id,
                _ => false,
            })
            .count()
    }
}

/// ms-order's store during a database failover: until `down_until`, reading and moving
/// orders fail.
struct Failover {
    inner: Arc<dyn OrderStore>,
    down_until: std::sync::Mutex<Option<std::time::Instant>>,
    failures: std::sync::atomic::AtomicU32,
}

impl Failover {
    fn check(&self) -> anyhow::Result<()> {
        let until = *self.down_until.lock().unwrap();
        if until.is_some_and(|u| std::time::Instant::now() < u) {
            self.failures
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            anyhow::bail!("injected outage: no primary (election in progress)");
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl OrderStore for Failover {
    async fn apply_stuff(
        &self,
        s: &StuffReplica,
    ) -> anyhow::Result<ms_common::events::VersionCheck> {
        self.inner.apply_stuff(s).await
    }
    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>> {
        self.inner.stuff(id).await
    }
    async fn create_order(&self, o: &OrderRecord, cid: Option<String>) -> Result<(), CreateError> {
        self.inner.create_order(o, cid).await
    }
    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>> {
        self.check()?;
        self.inner.order(id).await
    }
    async fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<OrderRecord>> {
        self.inner.orders_of(user_id).await
    }
    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<ms_order::store::Paid>,
        cid: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>> {
        self.check()?;
        self.inner.transition(id, from, to, paid, cid).await
    }
    async fn sales_of(
        &self,
        seller_id: &str,
        limit: u32,
    ) -> anyhow::Result<ms_order::store::SalesPage> {
        self.inner.sales_of(seller_id, limit).await
    }
    async fn overdue_holds(
        &self,
        before: chrono::DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<String>> {
        self.check()?;
        self.inner.overdue_holds(before, limit).await
    }
    async fn stuff_taken(&self, stuff_id: &str, except: &str) -> anyhow::Result<bool> {
        self.inner.stuff_taken(stuff_id, except).await
    }
    async fn apply_user(&self, user: &ms_common::events::UserRecord) -> anyhow::Result<bool> {
        self.inner.apply_user(user).await
    }
    async fn create_review(
        &self,
        review: &ms_common::events::ReviewRecord,
        fallback_name: &str,
        cid: Option<String>,
    ) -> Result<ms_order::store::NamedReview, ms_order::store::ReviewError> {
        self.inner.create_review(review, fallback_name, cid).await
    }
    async fn reviews_of(
        &self,
        stuff_id: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<ms_order::store::NamedReview>> {
        self.inner.reviews_of(stuff_id, limit).await
    }
    async fn active_count(&self, stuff_id: &str) -> anyhow::Result<u64> {
        self.inner.active_count(stuff_id).await
    }
    fn outbox(&self) -> Arc<dyn ms_common::storage::OutboxStore> {
        self.inner.outbox()
    }
}

#[tokio::test]
async fn an_expiry_outlives_a_store_outage_longer_than_its_retry_count_times_the_delay() {
    // 10 retries: at a fixed 100 ms (the old policy) they are spent in 1 s; doubling
    // from 100 ms to 800 ms they span at least 3.15 s (jitter takes up to half of each),
    // more than the 2 s outage.
    let retries = 10;
    let failover = Arc::new(Failover {
        inner: ms_order::store::open(&ms_common::config::StorageConfig::SqliteMemory)
            .await
            .unwrap(),
        down_until: std::sync::Mutex::new(None),
        failures: std::sync::atomic::AtomicU32::new(0),
    });
    let c = setup_with(
        Duration::from_secs(1),
        |cfg| cfg.common.max_retries = retries,
        Some(failover.clone()),
    )
    .await;
    let order = c.buy("a").await;
    c.published().await;
    // The database is unavailable from now until 2 s after the hold ends.
    *failover.down_until.lock().unwrap() =
        Some(std::time::Instant::now() + c.hold + Duration::from_secs(2));
    eventually(
        Duration::from_secs(10),
        "the expiry to hit the outage",
        || async {
            (failover.failures.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
        },
    )
    .await
    .unwrap();
    let cancelled = c
        .order_status(&order.id, OrderStatus::Cancelled, Duration::from_secs(20))
        .await;
    assert_eq!(cancelled.version, 2);
    assert_eq!(
        c.depth(&c.env.names().dead_letter_queue(Service::Order))
            .await,
        0,
        "the expiry was not dead-lettered"
    );
    assert_eq!(c.count_events("order.cancelled", &order.id).await, 1);
    c.done().await;
}

#[tokio::test]
async fn an_early_expiry_is_deferred_until_expires_at_not_dropped() {
    // A 3 s hold whose TTL message is lost; an expiry for it arrives at once (clock skew
    // between replicas, or a leftover queue of a shorter hold).
    let c = setup(Duration::from_secs(3)).await;
    let order = c.buy("a").await;
    assert_eq!(c.lose_hold_messages().await, 1);
    c.send_expiry(&order).await;
    let cancelled = c
        .order_status(&order.id, OrderStatus::Cancelled, Duration::from_secs(20))
        .await;
    assert!(
        Utc::now() >= cancelled.expires_at,
        "cancelled before its expiresAt"
    );
    // Deferrals (3 s over 800 ms rungs, more than MAX_RETRIES of them) are not failures.
    assert_eq!(
        c.depth(&c.env.names().dead_letter_queue(Service::Order))
            .await,
        0
    );
    assert_eq!(c.count_events("order.cancelled", &order.id).await, 1);
    c.done().await;
}

#[tokio::test]
async fn the_sweeper_cancels_a_hold_whose_ttl_message_was_lost_once_across_replicas() {
    let c = setup_with(
        Duration::from_secs(1),
        |cfg| cfg.sweep_every = Duration::from_secs(1),
        None,
    )
    .await;
    // A second replica on the same database sweeps too.
    let store = c.order.as_ref().unwrap().store.clone();
    let mut cfg2 = c.order_cfg();
    cfg2.sweep_every = Duration::from_secs(1);
    let second = ms_order::start_with_store(cfg2, store.clone())
        .await
        .unwrap();
    let order = c.buy("a").await;
    assert_eq!(c.lose_hold_messages().await, 1, "the TTL message is gone");
    let cancelled = c
        .order_status(&order.id, OrderStatus::Cancelled, Duration::from_secs(30))
        .await;
    assert_eq!(cancelled.version, 2);
    assert!(Utc::now() >= cancelled.expires_at);
    // The TTL path arriving after all (a redelivery) changes nothing either.
    c.send_expiry(&order).await;
    eventually(
        Duration::from_secs(10),
        "the late expiry consumed",
        || async {
            (c.depth(&c.order_cfg().hold_topology().expired_queue())
                .await
                == 0)
                .then_some(())
        },
    )
    .await
    .unwrap();
    second.handle.stop().await;
    assert_eq!(c.count_events("order.cancelled", &order.id).await, 1);
    assert_eq!(store.order(&order.id).await.unwrap().unwrap().version, 2);
    c.done().await;
}

#[tokio::test]
async fn a_lost_stuff_update_does_not_stall_the_replica() {
    let c = setup(Duration::from_secs(600)).await;
    let id = uuid::Uuid::now_v7().to_string();
    c.put_stuff(&id, "seller", StuffStatus::Available, 1).await;
    c.wait_replica(&id, 1).await;
    // v2 was dead-lettered somewhere upstream and never arrives; v3 is the full record.
    c.put_stuff(&id, "seller", StuffStatus::Reserved, 3).await;
    c.wait_replica(&id, 3).await;
    c.put_stuff(&id, "seller", StuffStatus::Available, 4).await;
    c.wait_replica(&id, 4).await;
    // The late v2 is stale now.
    c.put_stuff(&id, "seller", StuffStatus::Reserved, 2).await;
    let events_q = c.env.names().events_queue(Service::Order);
    eventually(Duration::from_secs(10), "the late v2 consumed", || async {
        (c.depth(&events_q).await == 0).then_some(())
    })
    .await
    .unwrap();
    let store = c.order.as_ref().unwrap().store.clone();
    let held = store.stuff(&id).await.unwrap().unwrap();
    assert_eq!((held.version, held.status), (4, StuffStatus::Available));
    let token = c.token("buyer").await;
    c.call("order:create", &token, json!({"stuffId": id}))
        .await
        .unwrap();
    assert_eq!(
        c.depth(&c.env.names().dead_letter_queue(Service::Order))
            .await,
        0
    );
    c.done().await;
}

#[tokio::test]
async fn an_order_records_the_stuff_version_it_priced_and_a_refusal_cancels_it() {
    let c = setup(Duration::from_secs(600)).await;
    let token = c.token("a").await;
    let id = uuid::Uuid::now_v7().to_string();
    c.put_stuff(&id, "seller", StuffStatus::Available, 1).await;
    c.put_stuff(&id, "seller", StuffStatus::Available, 3).await;
    c.wait_replica(&id, 3).await;
    let o: OrderRecord = serde_json::from_value(
        c.call("order:create", &token, json!({"stuffId": id}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(o.stuff_version, Some(3));
    let store = c.order.as_ref().unwrap().store.clone();
    assert_eq!(
        store.order(&o.id).await.unwrap().unwrap().stuff_version,
        Some(3)
    );
    // ms-stuff had moved on to v4 (an edit this replica had not seen): it refuses.
    let refusal = ms_common::events::ReservationRefusal {
        order_id: o.id.clone(),
        user_id: "a".into(),
        stuff_id: id.clone(),
        priced_version: 3,
        stuff_version: 4,
        reason: "order priced at version 3, stuff is at version 4".into(),
    };
    c.publish(Event::ReservationRefused(refusal.clone())).await;
    c.publish(Event::ReservationRefused(refusal)).await; // duplicate delivery
    let cancelled = c
        .order_status(&o.id, OrderStatus::Cancelled, Duration::from_secs(10))
        .await;
    assert_eq!(cancelled.version, 2);
    assert_eq!(c.count_events("order.cancelled", &o.id).await, 1);
    c.done().await;
}
