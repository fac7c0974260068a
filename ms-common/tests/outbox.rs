//! The transactional outbox: an event commits (or rolls back) with its change, and the
//! relay publishes it once the broker is reachable, marking it sent exactly once.
//! The store conformance part runs on SQLite always and on MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use futures_util::FutureExt;
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::events::{Event, EventEnvelope, Role, UserRecord};
use ms_common::messaging::{Broker, OutboxRelay, Publisher, Service, ServiceTopology};
use ms_common::shutdown::Shutdown;
use ms_common::storage::OutboxStore;
use ms_common::storage::sqlite::{self, Db, Migration, open};
use ms_testkit::{TcpProxy, TestEnv, eventually};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// A service's own table; the outbox comes with every database.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "things",
    sql: "CREATE TABLE things (id TEXT PRIMARY KEY);",
}];

fn event(n: u64) -> EventEnvelope {
    EventEnvelope::new(
        Event::UserCreated(UserRecord {
            id: format!("u{n}"),
            email: format!("u{n}@example.com"),
            role: Role::User,
            display_name: format!("u{n}"),
            version: 1,
        }),
        Some(format!("cid-{n}")),
    )
}

async fn change_with_event(db: &Db, id: &str, env: &EventEnvelope, commit: bool) {
    let mut tx = db.begin_write().await.unwrap();
    sqlx::query("INSERT INTO things (id) VALUES (?)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlite::enqueue(&mut tx, env).await.unwrap();
    if commit {
        tx.commit().await.unwrap();
    } else {
        drop(tx); // rolls back
    }
}

async fn things(db: &Db) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM things")
        .fetch_one(db.pool())
        .await
        .unwrap()
        .get(0)
}

/// What every outbox backend must do, given a way to write events transactionally.
async fn outbox_conformance(store: &dyn OutboxStore, write: impl AsyncFn(&EventEnvelope)) {
    assert_eq!(store.unsent_count().await.unwrap(), 0);
    let (a, b, c) = (event(1), event(2), event(3));
    write(&a).await;
    write(&b).await;
    write(&c).await;
    let pending = store.pending(10).await.unwrap();
    let ids: Vec<_> = pending.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        ids,
        vec![a.id.clone(), b.id.clone(), c.id.clone()],
        "oldest first"
    );
    assert_eq!(pending[0].routing_key, "user.created");
    assert_eq!(pending[0].correlation_id.as_deref(), Some("cid-1"));
    let back: EventEnvelope = serde_json::from_str(&pending[0].payload).unwrap();
    assert_eq!(back, a);
    assert_eq!(store.pending(2).await.unwrap().len(), 2, "limit");
    store.mark_sent(&b.id).await.unwrap();
    let ids: Vec<_> = store
        .pending(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![a.id.clone(), c.id.clone()]);
    assert_eq!(store.unsent_count().await.unwrap(), 2);
}

#[tokio::test]
async fn sqlite_outbox_conformance_and_atomicity() {
    let pool = open(None, MIGRATIONS).await.unwrap();
    let store = pool.outbox();
    let n = std::sync::atomic::AtomicU32::new(0);
    outbox_conformance(store.as_ref(), async |e: &EventEnvelope| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        change_with_event(&pool, &format!("t{i}"), e, true).await;
    })
    .await;
    // A rolled-back change leaves no event behind.
    let before = store.unsent_count().await.unwrap();
    change_with_event(&pool, "rolled-back", &event(9), false).await;
    assert_eq!(store.unsent_count().await.unwrap(), before);
    assert_eq!(things(&pool).await, 3);
}

#[tokio::test]
async fn sqlite_file_migrations_are_idempotent() {
    let dir = std::env::temp_dir().join(format!("stuffmart-outbox-{}", uuid::Uuid::new_v4()));
    let path = dir.join("svc.db");
    {
        let pool = open(Some(&path), MIGRATIONS).await.unwrap();
        change_with_event(&pool, "a", &event(1), true).await;
        pool.pool().close().await;
    }
    let pool = open(Some(&path), MIGRATIONS).await.unwrap();
    assert_eq!(
        things(&pool).await,
        1,
        "data survives a reopen; migrations not re-run"
    );
    assert_eq!(pool.outbox().unsent_count().await.unwrap(), 1);
    pool.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongo_outbox_conformance_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB outbox conformance skipped");
        return;
    };
    let dbname = format!("stuffmart_outbox_{}", uuid::Uuid::new_v4().simple());
    let db = ms_common::storage::mongo::connect(&url, &dbname)
        .await
        .unwrap();
    let store = db.outbox();
    let woken = store.committed();
    outbox_conformance(store.as_ref(), async |e: &EventEnvelope| {
        let done = db
            .transaction((&db, e), |s, ctx| {
                let (db, e) = *ctx;
                async move {
                    ms_common::storage::mongo::enqueue(db, s, e).await?;
                    Ok(Ok::<(), ()>(()))
                }
                .boxed()
            })
            .await
            .unwrap();
        assert_eq!(done, Ok(()));
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), woken.notified())
        .await
        .expect("a commit wakes the relay");
    // A refusal aborts the transaction: no event, and the refusal comes back as it is.
    let before = store.unsent_count().await.unwrap();
    let ev = event(9);
    let refused = db
        .transaction((&db, &ev), |s, ctx| {
            let (db, e) = *ctx;
            async move {
                ms_common::storage::mongo::enqueue(db, s, e).await?;
                Ok(Err::<(), _>("refused"))
            }
            .boxed()
        })
        .await
        .unwrap();
    assert_eq!(refused, Err("refused"));
    assert_eq!(store.unsent_count().await.unwrap(), before);
    db.drop().await.unwrap();
}

#[tokio::test]
async fn relay_publishes_after_the_broker_comes_back_exactly_once() {
    let env = TestEnv::new();
    // Topology and an observer queue, declared directly.
    let direct = env.broker().await.unwrap();
    direct
        .declare(Arc::new(ServiceTopology {
            names: env.names(),
            service: Service::User,
            bindings: vec![],
            retry: env.common.retry_policy(),
            rpc: false,
        }))
        .await
        .unwrap();
    let observer = format!("{}observer", env.prefix);
    let ch = direct.channel().await.unwrap();
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
        "user.created".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    // The relay reaches the broker only through a proxy we can cut.
    let proxy = TcpProxy::start("127.0.0.1:5672").await.unwrap();
    proxy.cut();
    let pool = open(None, MIGRATIONS).await.unwrap();
    let store = pool.outbox();
    let via_proxy = Broker::new(&proxy.amqp_url(), &format!("{}relay", env.prefix));
    let relay = OutboxRelay {
        store: store.clone(),
        publisher: Arc::new(Publisher::new(via_proxy.clone())),
        exchange: env.names().events_exchange(),
    };
    let ev = event(1);
    change_with_event(&pool, "t1", &ev, true).await;
    assert!(
        relay.flush().await.is_err(),
        "broker is down: nothing can be published"
    );
    assert_eq!(
        store.unsent_count().await.unwrap(),
        1,
        "the event waits in the outbox"
    );

    proxy.restore();
    let shutdown = Shutdown::new();
    // The relay looks at the outbox as soon as it starts.
    tokio::spawn(relay.run(shutdown.clone()));
    eventually(Duration::from_secs(15), "the outbox to drain", || async {
        (store.unsent_count().await.ok()? == 0).then_some(())
    })
    .await
    .unwrap();
    let got = eventually(Duration::from_secs(5), "the published event", || async {
        direct
            .channel()
            .await
            .ok()?
            .basic_get(observer.clone().into(), BasicGetOptions { no_ack: true })
            .await
            .ok()?
    })
    .await
    .unwrap();
    let back: EventEnvelope = serde_json::from_slice(&got.delivery.data).unwrap();
    assert_eq!(back.id, ev.id);
    assert_eq!(
        got.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str().to_owned()),
        Some(ev.id.clone())
    );
    let n = direct
        .channel()
        .await
        .unwrap()
        .queue_declare(
            observer.clone().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count();
    assert_eq!(n, 0, "published exactly once");
    let sent: i64 = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")
        .fetch_one(pool.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(sent, 1);
    shutdown.drain(Duration::from_secs(2)).await;
    env.teardown(&[observer]).await;
}
