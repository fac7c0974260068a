//! One conformance suite for every `UserStore` backend: SQLite in memory and in a file
//! always, MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Utc;
use ms_common::events::{Event, EventEnvelope, Role, UserRecord};
use ms_user::store::{RefreshRow, StoreError, UserRow, UserStore};
use ms_user::tokens::generate_key;
use std::sync::Arc;

fn user(email: &str) -> (UserRow, EventEnvelope) {
    let u = UserRow {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.into(),
        password_hash: "$argon2id$fake".into(),
        role: Role::User,
        version: 1,
        created_at: Utc::now(),
    };
    let ev = EventEnvelope::new(
        Event::UserCreated(UserRecord {
            id: u.id.clone(),
            email: u.email.clone(),
            role: u.role,
            version: 1,
        }),
        None,
    );
    (u, ev)
}

fn refresh(hash: &str, family: &str, user_id: &str) -> RefreshRow {
    RefreshRow {
        token_hash: hash.into(),
        family_id: family.into(),
        user_id: user_id.into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        rotated: false,
        revoked: false,
    }
}

async fn conformance(store: Arc<dyn UserStore>) {
    // Users: create, find, unique e-mail decided by the database, event with the change.
    let (u, ev) = user("ann@example.com");
    store.create_user(&u, &ev).await.unwrap();
    let by_email = store
        .user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (by_email.id.as_str(), by_email.password_hash.as_str()),
        (u.id.as_str(), "$argon2id$fake")
    );
    let found = store.user_by_id(&u.id).await.unwrap().unwrap();
    assert_eq!(
        (found.email.as_str(), found.role, found.version),
        ("ann@example.com", Role::User, 1)
    );
    assert_eq!(
        found.created_at.timestamp_micros(),
        u.created_at.timestamp_micros()
    );
    assert!(
        store
            .user_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    let (dup, dup_ev) = user("ann@example.com");
    assert!(matches!(
        store.create_user(&dup, &dup_ev).await,
        Err(StoreError::EmailTaken)
    ));
    let outbox = store.outbox();
    let pending = outbox.pending(10).await.unwrap();
    assert_eq!(pending.len(), 1, "only the committed user has an event");
    assert_eq!(pending[0].id, ev.id);

    // Concurrent sign-ups with one e-mail: exactly one wins.
    let tries = (0..8).map(|_| {
        let store = store.clone();
        async move {
            let (u, ev) = user("race@example.com");
            store.create_user(&u, &ev).await
        }
    });
    let results = futures_util::future::join_all(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter(|r| r.is_err())
            .all(|r| matches!(r, Err(StoreError::EmailTaken)))
    );

    // Refresh tokens: rotate once (compare-and-set), revoke a family.
    store
        .add_refresh(&refresh("h1", "f1", &u.id))
        .await
        .unwrap();
    let r = store.refresh_by_hash("h1").await.unwrap().unwrap();
    assert!(!r.rotated && !r.revoked);
    assert!(
        store
            .rotate_refresh("h1", &refresh("h2", "f1", &u.id))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rotate_refresh("h1", &refresh("h3", "f1", &u.id))
            .await
            .unwrap(),
        "second rotation loses"
    );
    assert!(
        store.refresh_by_hash("h3").await.unwrap().is_none(),
        "loser wrote nothing"
    );
    assert!(store.refresh_by_hash("h1").await.unwrap().unwrap().rotated);
    store
        .add_refresh(&refresh("other", "f2", &u.id))
        .await
        .unwrap();
    store.revoke_family("f1").await.unwrap();
    assert!(store.refresh_by_hash("h2").await.unwrap().unwrap().revoked);
    assert!(
        !store
            .refresh_by_hash("other")
            .await
            .unwrap()
            .unwrap()
            .revoked,
        "other families untouched"
    );
    assert!(
        !store
            .rotate_refresh("h2", &refresh("h4", "f1", &u.id))
            .await
            .unwrap(),
        "revoked cannot rotate"
    );

    // Signing keys, newest first.
    assert!(store.signing_keys().await.unwrap().is_empty());
    let k1 = generate_key();
    let mut k2 = generate_key();
    k2.created_at = k1.created_at + chrono::Duration::seconds(1);
    store.add_signing_key(&k1).await.unwrap();
    store.add_signing_key(&k2).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec![k2.kid.as_str(), k1.kid.as_str()]
    );
    assert_eq!(keys[0].seed_b64, k2.seed_b64);
}

#[tokio::test]
async fn sqlite_in_memory() {
    conformance(Arc::new(
        ms_user::store::sqlite::SqliteUserStore::open(None)
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("stuffmart-user-{}", uuid::Uuid::new_v4()));
    let path = dir.join("user.db");
    conformance(Arc::new(
        ms_user::store::sqlite::SqliteUserStore::open(Some(&path))
            .await
            .unwrap(),
    ))
    .await;
    // Reopening keeps the data and does not re-run migrations.
    let again = ms_user::store::sqlite::SqliteUserStore::open(Some(&path))
        .await
        .unwrap();
    assert!(
        again
            .user_by_email("ann@example.com")
            .await
            .unwrap()
            .is_some()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongodb_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB user store conformance skipped");
        return;
    };
    let db = format!("stuffmart_user_{}", uuid::Uuid::new_v4().simple());
    let store = ms_user::store::mongo::MongoUserStore::open(&url, &db)
        .await
        .unwrap();
    conformance(Arc::new(store)).await;
    ms_common::storage::mongo::connect(&url, &db)
        .await
        .unwrap()
        .drop()
        .await
        .unwrap();
}
