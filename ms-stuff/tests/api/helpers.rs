//! A fresh ms-user + ms-stuff per test, an RPC client, and an observer queue bound to
//! `stuff.*` and `reservation.refused` on the events exchange.

use chrono::{Duration as ChronoDuration, Utc};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::ApiError;
use ms_common::events::{Event, EventEnvelope, OrderRecord, OrderStatus};
use ms_common::messaging::{Broker, Outgoing, Publisher, RpcClient, RpcRequest, Service};
use ms_stuff::store::StuffStore;
use ms_testkit::{TestEnv, eventually};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct App {
    pub env: TestEnv,
    pub broker: Broker,
    pub rpc: RpcClient,
    pub user: Option<ms_user::RunningUser>,
    pub stuff: Option<ms_stuff::RunningStuff>,
    publisher: Publisher,
    observer: String,
}

impl App {
    pub async fn spawn() -> App {
        let env = TestEnv::new();
        let user = ms_user::start(ms_user::UserConfig::for_tests(&env.prefix))
            .await
            .unwrap();
        let stuff = ms_stuff::start(ms_stuff::StuffConfig::for_tests(&env.prefix))
            .await
            .unwrap();
        let broker = env.broker().await.unwrap();
        let rpc = RpcClient::new(broker.clone(), env.names(), Duration::from_secs(5));
        let observer = format!("{}observer", env.prefix);
        let ch = broker.channel().await.unwrap();
        ch.queue_declare(
            observer.clone().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
        for key in ["stuff.*", "reservation.refused"] {
            ch.queue_bind(
                observer.clone().into(),
                env.names().events_exchange().into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        App {
            publisher: Publisher::new(broker.clone()),
            env,
            broker,
            rpc,
            user: Some(user),
            stuff: Some(stuff),
            observer,
        }
    }

    pub async fn call(
        &self,
        action: &str,
        token: Option<&str>,
        payload: Value,
    ) -> Result<Value, ApiError> {
        let req = RpcRequest {
            action: action.into(),
            token: token.map(str::to_owned),
            payload,
        };
        self.rpc.call(Service::Stuff, &req, "test").await
    }

    /// Signs a user up through ms-user; returns (access token, user id).
    pub async fn signup(&self, email: &str) -> (String, String) {
        let req = RpcRequest {
            action: "user:signup".into(),
            token: None,
            payload: json!({"email": email, "password": "password123"}),
        };
        let s = self.rpc.call(Service::User, &req, "test").await.unwrap();
        (
            s["accessToken"].as_str().unwrap().to_owned(),
            s["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a stuff as `token`'s user.
    pub async fn create(&self, token: &str, title: &str, price: i64) -> Value {
        self.call(
            "stuff:create",
            Some(token),
            json!({"title": title, "priceCents": price}),
        )
        .await
        .unwrap()
    }

    pub async fn get(&self, id: &str) -> Result<Value, ApiError> {
        self.call("stuff:get", None, json!({"id": id})).await
    }

    /// Waits until `stuff:get` shows `status` at `version`.
    pub async fn wait_for(&self, id: &str, status: &str, version: u64) -> Value {
        eventually(WAIT, &format!("{id} {status} v{version}"), || async {
            let s = self.get(id).await.ok()?;
            (s["status"] == status && s["version"] == version).then_some(s)
        })
        .await
        .unwrap()
    }

    /// Publishes an order event to the events exchange, as ms-order's relay would.
    pub async fn publish(&self, event: Event) {
        let env = EventEnvelope::new(event, Some("order-test".into()));
        self.publisher
            .publish(Outgoing {
                exchange: self.env.names().events_exchange(),
                routing_key: env.event.routing_key().to_owned(),
                payload: serde_json::to_vec(&env).unwrap(),
                message_id: Some(env.id.clone()),
                correlation_id: env.correlation_id.clone(),
                ..Outgoing::default()
            })
            .await
            .unwrap();
    }

    /// The next `stuff.*` event the service published.
    pub async fn next_event(&self) -> EventEnvelope {
        eventually(WAIT, "a stuff event", || async {
            let msg = self
                .broker
                .channel()
                .await
                .ok()?
                .basic_get(
                    self.observer.clone().into(),
                    BasicGetOptions { no_ack: true },
                )
                .await
                .ok()??;
            Some(serde_json::from_slice(&msg.delivery.data).unwrap())
        })
        .await
        .unwrap()
    }

    /// Messages ready in a queue (passive declare; the queue must exist).
    pub async fn queue_len(&self, queue: &str) -> u32 {
        let ch = self.broker.channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = ch.close(200, "done".into()).await;
        q.message_count()
    }

    /// Stops ms-stuff, draining in-flight messages; its store stays readable.
    pub async fn stop_stuff(&mut self) -> Arc<dyn StuffStore> {
        let running = self.stuff.take().unwrap();
        running.handle.stop().await;
        running.store
    }

    /// Waits until ms-stuff took every event sent to it (also one that changes nothing
    /// visible; stopping drains only what is taken), stops it and checks every queue
    /// settled; its store.
    pub async fn stop_when_drained(&mut self) -> Arc<dyn StuffStore> {
        // An event may be waiting out a retry or a deferral on any rung of the retry
        // ladder; it comes back to the events queue after that.
        let names = self.env.names();
        let mut queues = vec![names.events_queue(Service::Stuff)];
        for delay in self.env.common.retry_policy().rungs() {
            queues.push(names.retry_queue(Service::Stuff, delay));
        }
        eventually(WAIT, "every event taken", || async {
            for q in &queues {
                if self.queue_len(q).await != 0 {
                    return None;
                }
            }
            Some(())
        })
        .await
        .unwrap();
        let store = self.stop_stuff().await;
        self.assert_queues_settled().await;
        store
    }

    /// After the service stopped: its events and retry queues are empty and nothing was
    /// dead-lettered.
    pub async fn assert_queues_settled(&self) {
        let names = self.env.names();
        let retry = names.retry_queue(Service::Stuff, self.env.common.retry_delay);
        assert_eq!(
            self.queue_len(&names.events_queue(Service::Stuff)).await,
            0,
            "events queue"
        );
        assert_eq!(self.queue_len(&retry).await, 0, "retry queue");
        assert_eq!(
            self.queue_len(&names.dead_letter_queue(Service::Stuff))
                .await,
            0,
            "dead-letter queue"
        );
    }

    pub async fn done(mut self) {
        if let Some(s) = self.stuff.take() {
            s.handle.stop().await;
        }
        if let Some(u) = self.user.take() {
            u.handle.stop().await;
        }
        self.broker.close().await;
        self.env.teardown(&[self.observer.clone()]).await;
    }
}

/// An order record as ms-order would publish it.
pub fn order(id: &str, stuff_id: &str, status: OrderStatus, version: u64) -> OrderRecord {
    OrderRecord {
        id: id.into(),
        stuff_id: stuff_id.into(),
        user_id: "buyer".into(),
        status,
        expires_at: Utc::now() + ChronoDuration::minutes(15),
        price_cents: 1000,
        stuff_title: "Notes".into(),
        paid_cents: None,
        reviewed: false,
        stuff_version: None,
        seller_id: None,
        version,
        created_at: Utc::now(),
    }
}

/// The fields named by an error, in order.
pub fn fields(e: &ApiError) -> Vec<&str> {
    e.errors.iter().filter_map(|d| d.field.as_deref()).collect()
}

/// The record carried by a `stuff.*` event.
pub fn record(ev: &EventEnvelope) -> (&'static str, &ms_common::events::StuffRecord) {
    match &ev.event {
        Event::StuffCreated(s) => ("stuff.created", s),
        Event::StuffUpdated(s) => ("stuff.updated", s),
        other => panic!("not a stuff event: {other:?}"),
    }
}
