//! `ms-user admin grant|revoke EMAIL` on the store a running ms-user uses: the role
//! changes with a version bump, the running service's relay publishes `user.updated`, and
//! the account's next token carries the role. SQLite file always; MongoDB when
//! `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use ms_common::config::StorageConfig;
use ms_common::events::{Event, EventEnvelope, Role};
use ms_common::messaging::{RpcClient, RpcRequest, Service};
use ms_testkit::{TestEnv, eventually};
use ms_user::admin::{AdminCommand, AdminError, AdminOutcome};
use serde_json::json;
use std::time::Duration;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn the_command_line_is_parsed_strictly() {
    assert_eq!(
        AdminCommand::parse(&args(&["grant", " Boss@Example.com "])),
        Ok(AdminCommand::Grant("boss@example.com".into()))
    );
    assert_eq!(
        AdminCommand::parse(&args(&["revoke", "boss@example.com"])),
        Ok(AdminCommand::Revoke("boss@example.com".into()))
    );
    for bad in [
        &["grant"][..],
        &["promote", "boss@example.com"],
        &["grant", "not-an-email"],
        &["grant", "a@example.com", "b@example.com"],
    ] {
        assert!(AdminCommand::parse(&args(bad)).is_err(), "{bad:?}");
    }
}

async fn grant_and_revoke_on(storage: StorageConfig) {
    let env = TestEnv::new();
    let mut cfg = ms_user::UserConfig::for_tests(&env.prefix);
    cfg.storage = storage.clone();
    let user = ms_user::start(cfg).await.unwrap();
    let broker = env.broker().await.unwrap();
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
        "user.updated".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let rpc = RpcClient::new(broker.clone(), env.names(), Duration::from_secs(5));
    let call = |action: &str, payload: serde_json::Value| {
        let req = RpcRequest {
            action: action.into(),
            token: None,
            payload,
        };
        let rpc = rpc.clone();
        async move { rpc.call(Service::User, &req, "test").await }
    };
    let s = call(
        "user:signup",
        json!({"email": "boss@example.com", "password": "password123"}),
    )
    .await
    .unwrap();
    assert_eq!(s["user"]["role"], "user");
    let id = s["user"]["id"].as_str().unwrap().to_owned();

    // The operator's command opens its own connection to the same database.
    let admin_store = ms_user::store::open(&storage).await.unwrap();
    let grant = AdminCommand::Grant("boss@example.com".into());
    match ms_user::admin::run(admin_store.as_ref(), &grant)
        .await
        .unwrap()
    {
        AdminOutcome::Changed(u) => assert_eq!((u.role, u.version), (Role::Admin, 2)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        ms_user::admin::run(admin_store.as_ref(), &grant)
            .await
            .unwrap(),
        AdminOutcome::Unchanged(_)
    ));
    assert!(matches!(
        ms_user::admin::run(
            admin_store.as_ref(),
            &AdminCommand::Grant("nobody@example.com".into())
        )
        .await,
        Err(AdminError::NoSuchUser(_))
    ));

    // The running service's relay publishes the change.
    let next_event = || async {
        let msg = eventually(Duration::from_secs(10), "user.updated", || async {
            broker
                .channel()
                .await
                .ok()?
                .basic_get(q.clone().into(), BasicGetOptions { no_ack: true })
                .await
                .ok()?
        })
        .await
        .unwrap();
        let ev: EventEnvelope = serde_json::from_slice(&msg.delivery.data).unwrap();
        match ev.event {
            Event::UserUpdated(u) => u,
            other => panic!("unexpected {other:?}"),
        }
    };
    let u = next_event().await;
    assert_eq!(
        (u.id.as_str(), u.role, u.version),
        (id.as_str(), Role::Admin, 2)
    );

    // The next token (a refresh reads the role from the store) says admin.
    let refreshed = call(
        "user:refresh",
        json!({"refreshToken": s["refreshToken"].as_str().unwrap()}),
    )
    .await
    .unwrap();
    assert_eq!(refreshed["user"]["role"], "admin");

    match ms_user::admin::run(
        admin_store.as_ref(),
        &AdminCommand::Revoke("boss@example.com".into()),
    )
    .await
    .unwrap()
    {
        AdminOutcome::Changed(u) => assert_eq!((u.role, u.version), (Role::User, 3)),
        other => panic!("unexpected {other:?}"),
    }
    let u = next_event().await;
    assert_eq!((u.role, u.version), (Role::User, 3));
    let signed_in = call(
        "user:signin",
        json!({"email": "boss@example.com", "password": "password123"}),
    )
    .await
    .unwrap();
    assert_eq!(signed_in["user"]["role"], "user");

    user.handle.stop().await;
    env.teardown(std::slice::from_ref(&q)).await;
}

#[tokio::test]
async fn admin_grant_and_revoke_change_the_role_and_publish_user_updated_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("stuffmart-admin-{}", uuid::Uuid::new_v4()));
    grant_and_revoke_on(StorageConfig::SqliteFile(dir.join("user.db"))).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn admin_grant_and_revoke_change_the_role_and_publish_user_updated_on_mongodb_when_configured()
 {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB admin command skipped");
        return;
    };
    let database = format!("stuffmart_user_{}", uuid::Uuid::new_v4().simple());
    grant_and_revoke_on(StorageConfig::Mongo {
        url: url.clone(),
        database: database.clone(),
    })
    .await;
    ms_common::storage::mongo::connect(&url, &database)
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
}
