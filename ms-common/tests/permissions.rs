//! Least privilege on a real broker: per-service users with the permissions of
//! `deploy/rabbitmq/definitions.json` (under this test's prefix) may publish only their own
//! events. The committed definitions file is the code's (regenerate with
//! `UPDATE_DEFINITIONS=1 cargo test -p ms-common --test permissions`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use ms_common::events::{Event, EventEnvelope, PaymentRecord};
use ms_common::messaging::permissions::{AmqpUser, definitions_file};
use ms_common::messaging::topology::declare_exchanges;
use ms_common::messaging::{Broker, Service};
use ms_testkit::{AmqpUsers, TestEnv};

#[test]
fn the_committed_definitions_file_is_the_codes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/rabbitmq/definitions.json");
    let expected = definitions_file();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != expected && std::env::var("UPDATE_DEFINITIONS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(
        on_disk == expected,
        "deploy/rabbitmq/definitions.json is stale. Regenerate with: \
         UPDATE_DEFINITIONS=1 cargo test -p ms-common --test permissions"
    );
}

fn payment_created() -> Vec<u8> {
    let env = EventEnvelope::new(
        Event::PaymentCreated(PaymentRecord {
            id: "p1".into(),
            order_id: "o1".into(),
            user_id: "u1".into(),
            amount_cents: 100,
            coupon_code: None,
            provider_id: "forged".into(),
            created_at: chrono::Utc::now(),
            refunded_at: None,
            currency: "eur".into(),
            fee_cents: Some(90),
        }),
        None,
    );
    serde_json::to_vec(&env).unwrap()
}

/// Publishes `payment.created` on the events exchange as `url`'s user, with confirms:
/// `Ok` once the broker confirmed it, the error text if it closed the channel.
async fn publish_payment_created(env: &TestEnv, url: &str) -> Result<(), String> {
    let b = Broker::new(url, &format!("{}forger", env.prefix));
    let ch = b.channel().await.map_err(|e| e.to_string())?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let res = async {
        ch.basic_publish(
            env.names().events_exchange().into(),
            "payment.created".into(),
            BasicPublishOptions::default(),
            &payment_created(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await?
        .await
    }
    .await;
    // A refusal closes the channel asynchronously: a later call on it fails with the
    // reason even when the publish itself looked sent.
    let res = match res {
        Ok(_) => ch
            .basic_qos(1, Default::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    b.close().await;
    res
}

#[tokio::test]
async fn only_ms_payment_may_publish_payment_created() {
    let env = TestEnv::new();
    let users = AmqpUsers::create(&env).await.unwrap();
    let admin = env.broker().await.unwrap();
    declare_exchanges(&admin.channel().await.unwrap(), &env.names())
        .await
        .unwrap();

    // The router may not write to the events exchange at all.
    let refused = publish_payment_created(&env, &users.url(AmqpUser::Router)).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("ACCESS_REFUSED") || e.contains("403")),
        "router: {refused:?}"
    );
    // ms-order may publish events, but not that routing key (topic permission).
    let refused =
        publish_payment_created(&env, &users.url(AmqpUser::Service(Service::Order))).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("ACCESS_REFUSED") || e.contains("403")),
        "ms-order: {refused:?}"
    );
    // ms-payment is its publisher.
    let allowed =
        publish_payment_created(&env, &users.url(AmqpUser::Service(Service::Payment))).await;
    assert_eq!(allowed, Ok(()), "ms-payment");

    users.delete().await;
    env.teardown(&[]).await;
}
