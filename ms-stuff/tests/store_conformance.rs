//! One conformance suite for every `StuffStore` backend: SQLite in memory and in a file
//! always, MongoDB when `MONGODB_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Duration, Utc};
use ms_common::contract::StuffSort;
use ms_common::events::{
    Event, EventEnvelope, FileMeta, OrderRecord, OrderStatus, ReviewRecord, StoredFile,
    StuffRecord, StuffStatus, UserRecord, rating_rank,
};
use ms_stuff::domain::{
    Cursor, Description, ListOrder, PriceCents, SecretNote, StuffPatch, StuffTitle,
};
use ms_stuff::store::{
    Edit, FileEdit, FileOp, ListQuery, OrderChange, OrderOutcome, ReviewOutcome, Search,
    SearchScope, StoreError, StuffStore,
};
use serde_json::json;
use std::sync::Arc;

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

fn stuff(seller: &str, title: &str, created_at: DateTime<Utc>) -> StuffRecord {
    StuffRecord {
        id: uuid::Uuid::now_v7().to_string(),
        title: title.into(),
        description: format!("about {title}"),
        price_cents: 1500,
        seller_id: seller.into(),
        status: StuffStatus::Available,
        order_id: None,
        version: 1,
        created_at,
        updated_at: created_at,
        files: vec![],
        has_secret_note: false,
        course: None,
        // The name recorded for a seller the replica has not heard of (a seller's id is
        // their name in these tests, so every stuff of one seller agrees).
        seller_name: Some(seller.into()),
        rating_count: 0,
        rating_sum: 0,
        rating_rank: 0,
        cover: None,
    }
}

fn order(id: &str, stuff_id: &str, status: OrderStatus, version: u64) -> OrderRecord {
    OrderRecord {
        id: id.into(),
        stuff_id: stuff_id.into(),
        user_id: "buyer".into(),
        status,
        expires_at: Utc::now() + Duration::minutes(15),
        price_cents: 1500,
        stuff_title: "Notes".into(),
        paid_cents: None,
        reviewed: false,
        stuff_version: None,
        seller_id: None,
        version,
        created_at: Utc::now(),
    }
}

fn title_patch(t: &str) -> StuffPatch {
    StuffPatch {
        title: Some(StuffTitle::parse(&json!(t)).unwrap()),
        ..StuffPatch::default()
    }
}

fn edit<'a>(id: &'a str, editor: &'a str, version: Option<u64>, patch: &'a StuffPatch) -> Edit<'a> {
    Edit {
        id,
        editor_id: editor,
        expected_version: version,
        patch,
        now: micros(Utc::now()),
        correlation_id: Some("conf"),
    }
}

/// The unsent outbox events, decoded, in order.
async fn outbox(store: &Arc<dyn StuffStore>) -> Vec<EventEnvelope> {
    store
        .outbox()
        .pending(1000)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.payload).unwrap())
        .collect()
}

/// Marks everything sent, so the next check sees only new events.
async fn drain(store: &Arc<dyn StuffStore>) {
    let ob = store.outbox();
    for r in ob.pending(1000).await.unwrap() {
        ob.mark_sent(&r.id).await.unwrap();
    }
}

fn updated(ev: &EventEnvelope) -> &StuffRecord {
    match &ev.event {
        Event::StuffUpdated(s) => s,
        other => panic!("expected stuff.updated, got {other:?}"),
    }
}

async fn apply(store: &Arc<dyn StuffStore>, change: OrderChange, o: &OrderRecord) -> OrderOutcome {
    store
        .apply_order(change, o, micros(Utc::now()), Some("conf"))
        .await
        .unwrap()
}

async fn create_get_and_list(store: &Arc<dyn StuffStore>) {
    let base = micros(Utc::now()) - Duration::hours(1);
    let first = stuff("ann", "Lamp", base);
    store.create(&first, None, Some("c1")).await.unwrap();
    let got = store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(got, first, "round trip, times to the microsecond");
    assert!(store.get("no-such-id").await.unwrap().is_none());

    let events = outbox(store).await;
    assert_eq!(events.len(), 1, "the create wrote its event");
    assert_eq!(events[0].correlation_id.as_deref(), Some("c1"));
    match &events[0].event {
        Event::StuffCreated(s) => assert_eq!(s, &first),
        other => panic!("unexpected {other:?}"),
    }
    drain(store).await;

    // Ten more, two of them sharing a creation time (the id breaks the tie).
    let mut all = vec![first.clone()];
    for i in 1..=10 {
        let t = if i == 10 {
            base + Duration::seconds(9)
        } else {
            base + Duration::seconds(i)
        };
        let s = stuff(
            if i % 2 == 0 { "ann" } else { "bob" },
            &format!("Item {i}"),
            t,
        );
        store.create(&s, None, None).await.unwrap();
        all.push(s);
    }
    assert_eq!(outbox(store).await.len(), 10);
    drain(store).await;
    all.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

    // Pages of 3 walk the whole list newest first, with no gaps or repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(&ListQuery {
                status: None,
                after: after.clone(),
                limit: 3,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(Cursor::after(ListOrder::Sort(StuffSort::Newest), 0, last));
        seen.extend(page);
    }
    assert_eq!(
        seen.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        all.iter().map(|s| s.id.as_str()).collect::<Vec<_>>()
    );

    // Status filter.
    let none_sold = store
        .list(&ListQuery {
            status: Some(StuffStatus::Sold),
            after: None,
            limit: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert!(none_sold.is_empty());
    let available = store
        .list(&ListQuery {
            status: Some(StuffStatus::Available),
            after: None,
            limit: 5,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(available.len(), 5);
    assert_eq!(available[0].id, all[0].id);
}

async fn edits_compare_and_set(store: &Arc<dyn StuffStore>) {
    let s = stuff("ann", "Desk", micros(Utc::now()));
    store.create(&s, None, None).await.unwrap();
    drain(store).await;

    let patch = StuffPatch {
        title: Some(StuffTitle::parse(&json!("Oak desk")).unwrap()),
        price: Some(PriceCents::parse(&json!(2500)).unwrap()),
        description: Some(Description::parse(&json!("")).unwrap()),
        secret_note: None,
        course: None,
        withdraw: false,
        cover: None,
    };
    let e = edit(&s.id, "ann", Some(1), &patch);
    let v2 = store.edit(&e).await.unwrap();
    assert_eq!(
        (
            v2.title.as_str(),
            v2.price_cents,
            v2.description.as_str(),
            v2.version
        ),
        ("Oak desk", 2500, "", 2)
    );
    assert_eq!(v2.created_at, s.created_at);
    assert_eq!(v2.updated_at, e.now);
    assert_eq!(store.get(&s.id).await.unwrap().unwrap(), v2);
    let events = outbox(store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(updated(&events[0]), &v2);
    assert_eq!(events[0].correlation_id.as_deref(), Some("conf"));
    drain(store).await;

    // Only the given fields change.
    let price_only = StuffPatch {
        price: Some(PriceCents::parse(&json!(99)).unwrap()),
        ..StuffPatch::default()
    };
    let v3 = store
        .edit(&edit(&s.id, "ann", None, &price_only))
        .await
        .unwrap();
    assert_eq!(
        (v3.title.as_str(), v3.price_cents, v3.version),
        ("Oak desk", 99, 3)
    );
    drain(store).await;

    // Refusals change nothing and write no event.
    let p = title_patch("Nope");
    for (e, expected) in [
        (edit(&s.id, "ann", Some(2), &p), "version"),
        (edit(&s.id, "bob", Some(3), &p), "owner"),
        (edit(&s.id, "bob", None, &p), "owner"),
        (edit("missing", "ann", None, &p), "missing"),
    ] {
        let err = store.edit(&e).await.unwrap_err();
        let ok = matches!(
            (&err, expected),
            (StoreError::VersionConflict, "version")
                | (StoreError::NotOwner, "owner")
                | (StoreError::NotFound, "missing")
        );
        assert!(ok, "{expected}: got {err:?}");
    }
    assert_eq!(store.get(&s.id).await.unwrap().unwrap(), v3);
    assert!(outbox(store).await.is_empty());

    // Concurrent edits from one read version: exactly one wins.
    let tries = (0..12).map(|i| {
        let store = store.clone();
        let id = s.id.clone();
        async move {
            let p = title_patch(&format!("Racer {i}"));
            store.edit(&edit(&id, "ann", Some(3), &p)).await
        }
    });
    let results = futures_util::future::join_all(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::VersionConflict))
    );
    let winner = results.into_iter().find_map(Result::ok).unwrap();
    assert_eq!(winner.version, 4);
    assert_eq!(store.get(&s.id).await.unwrap().unwrap(), winner);
    assert_eq!(outbox(store).await.len(), 1, "one event for one change");
    drain(store).await;
}

async fn order_events(store: &Arc<dyn StuffStore>) {
    let s = stuff("ann", "Bike", micros(Utc::now()));
    store.create(&s, None, None).await.unwrap();
    drain(store).await;

    // A gap heals: o0's created v1 was lost, its cancelled v2 applies (recorded; the stuff
    // was never reserved by it, so nothing changes), and v1 arriving late is stale rather
    // than reserving the stuff for a cancelled order.
    let o0_cancelled = order("o0", &s.id, OrderStatus::Cancelled, 2);
    assert_eq!(
        apply(store, OrderChange::Cancelled, &o0_cancelled).await,
        OrderOutcome::Applied(None)
    );
    let o0 = order("o0", &s.id, OrderStatus::Created, 1);
    assert_eq!(
        apply(store, OrderChange::Created, &o0).await,
        OrderOutcome::Stale
    );
    assert_eq!(store.get(&s.id).await.unwrap().unwrap().version, 1);
    assert!(outbox(store).await.is_empty());
    let o1_cancelled = order("o1", &s.id, OrderStatus::Cancelled, 2);

    // Apply created v1: reserved by o1, version 2, one event without the order id.
    let o1 = order("o1", &s.id, OrderStatus::Created, 1);
    let OrderOutcome::Applied(Some(r)) = apply(store, OrderChange::Created, &o1).await else {
        panic!("created v1 should apply");
    };
    assert_eq!(
        (r.status, r.order_id.as_deref(), r.version),
        (StuffStatus::Reserved, Some("o1"), 2)
    );
    assert_eq!(store.get(&s.id).await.unwrap().unwrap(), r);
    let events = outbox(store).await;
    assert_eq!(events.len(), 1);
    let ev = updated(&events[0]);
    assert_eq!(
        (ev.status, ev.version, ev.order_id.as_deref()),
        (StuffStatus::Reserved, 2, None)
    );
    drain(store).await;

    // Duplicate: stale, nothing changes, no event.
    assert_eq!(
        apply(store, OrderChange::Created, &o1).await,
        OrderOutcome::Stale
    );
    assert!(outbox(store).await.is_empty());

    // Edits are refused while reserved.
    let p = title_patch("x");
    assert!(matches!(
        store.edit(&edit(&s.id, "ann", None, &p)).await,
        Err(StoreError::Reserved)
    ));

    // A second order while o1 holds it is recorded, not applied to the stuff...
    let o2 = order("o2", &s.id, OrderStatus::Created, 1);
    assert_eq!(
        apply(store, OrderChange::Created, &o2).await,
        OrderOutcome::Applied(None)
    );
    assert_eq!(store.get(&s.id).await.unwrap().unwrap().version, 2);
    assert_eq!(
        apply(store, OrderChange::Created, &o2).await,
        OrderOutcome::Stale
    );
    // ...and takes over when o1 is cancelled (events of different orders may interleave).
    let OrderOutcome::Applied(Some(r)) = apply(store, OrderChange::Cancelled, &o1_cancelled).await
    else {
        panic!("cancelled v2 should apply now");
    };
    assert_eq!(
        (r.status, r.order_id.as_deref(), r.version),
        (StuffStatus::Reserved, Some("o2"), 3)
    );
    assert_eq!(
        apply(store, OrderChange::Cancelled, &o1_cancelled).await,
        OrderOutcome::Stale
    );
    // o2 cancelled: available again.
    let o2_cancelled = order("o2", &s.id, OrderStatus::Cancelled, 2);
    let OrderOutcome::Applied(Some(r)) = apply(store, OrderChange::Cancelled, &o2_cancelled).await
    else {
        panic!("o2 cancelled should apply");
    };
    assert_eq!(
        (r.status, r.order_id.as_deref(), r.version),
        (StuffStatus::Available, None, 4)
    );
    // o3 created then completed: sold.
    let o3 = order("o3", &s.id, OrderStatus::Created, 1);
    apply(store, OrderChange::Created, &o3).await;
    let o3_done = order("o3", &s.id, OrderStatus::Complete, 2);
    let OrderOutcome::Applied(Some(r)) = apply(store, OrderChange::Completed, &o3_done).await
    else {
        panic!("o3 completed should apply");
    };
    assert_eq!(
        (r.status, r.order_id.as_deref(), r.version),
        (StuffStatus::Sold, Some("o3"), 6)
    );
    let kinds: Vec<(StuffStatus, u64)> = outbox(store)
        .await
        .iter()
        .map(|e| (updated(e).status, updated(e).version))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (StuffStatus::Reserved, 3),
            (StuffStatus::Available, 4),
            (StuffStatus::Reserved, 5),
            (StuffStatus::Sold, 6)
        ],
        "one event per stuff change, in order"
    );
    drain(store).await;
    assert!(matches!(
        store.edit(&edit(&s.id, "ann", None, &p)).await,
        Err(StoreError::Sold)
    ));

    // A late cancel of a sold stuff's order changes nothing.
    let o3_late = order("o3", &s.id, OrderStatus::Cancelled, 3);
    assert_eq!(
        apply(store, OrderChange::Cancelled, &o3_late).await,
        OrderOutcome::Applied(None)
    );
    assert_eq!(
        store.get(&s.id).await.unwrap().unwrap().status,
        StuffStatus::Sold
    );

    // A refund of another order (a late payment) leaves the sold stuff alone; the
    // refund of the order that bought it makes it available again, with its event.
    let o4 = order("o4", &s.id, OrderStatus::Created, 1);
    apply(store, OrderChange::Created, &o4).await;
    apply(
        store,
        OrderChange::Cancelled,
        &order("o4", &s.id, OrderStatus::Cancelled, 2),
    )
    .await;
    assert_eq!(
        apply(
            store,
            OrderChange::Refunded,
            &order("o4", &s.id, OrderStatus::Refunded, 3)
        )
        .await,
        OrderOutcome::Applied(None)
    );
    assert_eq!(
        store.get(&s.id).await.unwrap().unwrap().status,
        StuffStatus::Sold
    );
    let o3_refunded = order("o3", &s.id, OrderStatus::Refunded, 4);
    let OrderOutcome::Applied(Some(r)) = apply(store, OrderChange::Refunded, &o3_refunded).await
    else {
        panic!("o3 refunded should apply");
    };
    assert_eq!(
        (r.status, r.order_id.as_deref(), r.version),
        (StuffStatus::Available, None, 7)
    );
    assert_eq!(
        apply(store, OrderChange::Refunded, &o3_refunded).await,
        OrderOutcome::Stale
    );
    let events = outbox(store).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (updated(e).status, updated(e).version))
            .collect::<Vec<_>>(),
        vec![(StuffStatus::Available, 7)]
    );
    drain(store).await;

    // An order for a stuff never listed here.
    let ghost = order("o9", "no-such-stuff", OrderStatus::Created, 1);
    assert_eq!(
        apply(store, OrderChange::Created, &ghost).await,
        OrderOutcome::UnknownStuff
    );
    assert!(outbox(store).await.is_empty());
}

fn file(id: &str, object: &str) -> StoredFile {
    StoredFile {
        meta: FileMeta {
            id: id.into(),
            name: format!("{id}.pdf"),
            size_bytes: 42,
            content_type: "application/pdf".into(),
            sha256: "ab".repeat(32),
            pages: None,
            preview_urls: Vec::new(),
        },
        object: object.into(),
    }
}

fn file_edit<'a>(stuff_id: &'a str, editor: &'a str, op: FileOp<'a>) -> FileEdit<'a> {
    FileEdit {
        stuff_id,
        editor_id: editor,
        op,
        now: micros(Utc::now()),
        correlation_id: Some("conf"),
    }
}

/// The stuff's secret note as `get_with_note` reads it.
async fn note(store: &Arc<dyn StuffStore>, id: &str) -> Option<String> {
    store.get_with_note(id).await.unwrap().and_then(|(_, n)| n)
}

async fn files_and_notes(store: &Arc<dyn StuffStore>) {
    let s = stuff("ann", "Notes", micros(Utc::now()));
    store.create(&s, Some("KEY-1"), None).await.unwrap();
    assert!(store.get(&s.id).await.unwrap().unwrap().has_secret_note);
    assert_eq!(note(store, &s.id).await.as_deref(), Some("KEY-1"));
    drain(store).await;

    // Files: added in order, each change one version and one stuff.updated.
    let (a, b) = (file("a", "files/s/1"), file("b", "files/s/2"));
    let one = store
        .edit_files(&file_edit(&s.id, "ann", FileOp::Add(&a)))
        .await
        .unwrap();
    assert_eq!(
        (one.stuff.files.clone(), one.stuff.version, one.unreferenced),
        (vec![a.clone()], 2, None)
    );
    let two = store
        .edit_files(&file_edit(&s.id, "ann", FileOp::Add(&b)))
        .await
        .unwrap();
    assert_eq!(two.stuff.files, vec![a.clone(), b.clone()]);
    assert_eq!(store.get(&s.id).await.unwrap().unwrap(), two.stuff);
    let events = outbox(store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(updated(&events[1]), &two.stuff);
    drain(store).await;
    assert!(matches!(
        store
            .edit_files(&file_edit(&s.id, "bob", FileOp::Add(&b)))
            .await,
        Err(StoreError::NotOwner)
    ));
    assert!(matches!(
        store
            .edit_files(&file_edit("nope", "ann", FileOp::Add(&b)))
            .await,
        Err(StoreError::NotFound)
    ));
    let a2 = file("a", "files/s/3");
    let replaced = store
        .edit_files(&file_edit(&s.id, "ann", FileOp::Replace(&a2)))
        .await
        .unwrap();
    assert_eq!(replaced.unreferenced.as_deref(), Some("files/s/1"));
    assert_eq!(replaced.stuff.files, vec![a2.clone(), b.clone()]);
    let removed = store
        .edit_files(&file_edit(&s.id, "ann", FileOp::Remove("b")))
        .await
        .unwrap();
    assert_eq!(
        (removed.stuff.files.clone(), removed.unreferenced.as_deref()),
        (vec![a2.clone()], Some("files/s/2"))
    );
    drain(store).await;

    // The note: replaced, then removed (`Some(None)`); never in an event.
    let patch = StuffPatch {
        secret_note: Some(SecretNote::parse(&json!("KEY-2")).unwrap()),
        ..StuffPatch::default()
    };
    store.edit(&edit(&s.id, "ann", None, &patch)).await.unwrap();
    assert_eq!(note(store, &s.id).await.as_deref(), Some("KEY-2"));
    let clear = StuffPatch {
        secret_note: Some(None),
        ..StuffPatch::default()
    };
    let cleared = store.edit(&edit(&s.id, "ann", None, &clear)).await.unwrap();
    assert!(!cleared.has_secret_note);
    assert_eq!(note(store, &s.id).await, None);
    for ev in outbox(store).await {
        assert!(
            !serde_json::to_string(&ev).unwrap().contains("KEY-"),
            "{ev:?}"
        );
    }
    drain(store).await;

    // Sold to an order: only a new version, which tells the buyer (`delivery.updated`).
    let o = order("o-files", &s.id, OrderStatus::Complete, 1);
    apply(store, OrderChange::Completed, &o).await;
    drain(store).await;
    assert!(matches!(
        store
            .edit_files(&file_edit(&s.id, "ann", FileOp::Add(&b)))
            .await,
        Err(StoreError::Sold)
    ));
    let a3 = file("a", "files/s/4");
    store
        .edit_files(&file_edit(&s.id, "ann", FileOp::Replace(&a3)))
        .await
        .unwrap();
    let events = outbox(store).await;
    let change = events.iter().find_map(|e| match &e.event {
        Event::DeliveryUpdated(d) => Some(d.clone()),
        _ => None,
    });
    let change = change.expect("a delivery.updated event");
    assert_eq!(
        (
            change.order_id.as_str(),
            change.user_id.as_str(),
            change.stuff_id.as_str()
        ),
        ("o-files", o.user_id.as_str(), s.id.as_str())
    );
    drain(store).await;
}

/// An order priced at another version of the stuff may not reserve it; the refusal is an
/// event in the same transaction, and the refused order never takes the stuff later.
async fn price_pins(store: &Arc<dyn StuffStore>) {
    let s = stuff("ann", "Tent", micros(Utc::now()));
    store.create(&s, None, None).await.unwrap();
    let p = title_patch("Tent, 2 persons");
    store.edit(&edit(&s.id, "ann", None, &p)).await.unwrap();
    drain(store).await;
    let stale = OrderRecord {
        stuff_version: Some(1),
        seller_id: None,
        ..order("p1", &s.id, OrderStatus::Created, 1)
    };
    let OrderOutcome::Refused(r) = apply(store, OrderChange::Created, &stale).await else {
        panic!("a reservation priced at v1 of a v2 stuff should be refused");
    };
    assert_eq!((r.priced_version, r.stuff_version), (1, 2));
    let events = outbox(store).await;
    assert_eq!(events.len(), 1, "the refusal, and no stuff change");
    assert!(matches!(&events[0].event, Event::ReservationRefused(e) if e == &r));
    assert_eq!(store.get(&s.id).await.unwrap().unwrap().version, 2);
    drain(store).await;
    // Its duplicate is stale; it is not passed the hold when another order lets go.
    assert_eq!(
        apply(store, OrderChange::Created, &stale).await,
        OrderOutcome::Stale
    );
    let current = OrderRecord {
        stuff_version: Some(2),
        seller_id: None,
        ..order("p2", &s.id, OrderStatus::Created, 1)
    };
    let OrderOutcome::Applied(Some(held)) = apply(store, OrderChange::Created, &current).await
    else {
        panic!("a reservation priced at the current version should apply");
    };
    assert_eq!(held.order_id.as_deref(), Some("p2"));
    let released = apply(
        store,
        OrderChange::Cancelled,
        &order("p2", &s.id, OrderStatus::Cancelled, 2),
    )
    .await;
    let OrderOutcome::Applied(Some(after)) = released else {
        panic!("p2 cancelled should release");
    };
    assert_eq!(
        (after.status, after.order_id),
        (StuffStatus::Available, None),
        "the refused p1 does not take over"
    );
    // An order with no priced version (made before orders recorded one) is not checked.
    let unpinned = order("p3", &s.id, OrderStatus::Created, 1);
    assert!(matches!(
        apply(store, OrderChange::Created, &unpinned).await,
        OrderOutcome::Applied(Some(_))
    ));
    drain(store).await;
}

/// A cancel that passes the hold on and a create that waits for it, applied at the same
/// time, many times: whichever commits first, the new order ends up holding the stuff.
/// (MongoDB's snapshot isolation allowed both to commit without seeing each other — the
/// release missed the waiting order and left the stuff available while it held it —
/// until every order event wrote the stuff document; SQLite serialises them with
/// `BEGIN IMMEDIATE`.)
async fn concurrent_cancel_and_create(store: &Arc<dyn StuffStore>) {
    for round in 0..20 {
        let s = stuff("ann", &format!("Race {round}"), micros(Utc::now()));
        store.create(&s, None, None).await.unwrap();
        let (a, b) = (format!("race-{round}-a"), format!("race-{round}-b"));
        apply(
            store,
            OrderChange::Created,
            &order(&a, &s.id, OrderStatus::Created, 1),
        )
        .await;
        let a_cancelled = order(&a, &s.id, OrderStatus::Cancelled, 2);
        let b_created = order(&b, &s.id, OrderStatus::Created, 1);
        let (x, y) = tokio::join!(
            apply(store, OrderChange::Cancelled, &a_cancelled),
            apply(store, OrderChange::Created, &b_created),
        );
        assert!(matches!(x, OrderOutcome::Applied(_)), "{x:?}");
        assert!(matches!(y, OrderOutcome::Applied(_)), "{y:?}");
        let held = store.get(&s.id).await.unwrap().unwrap();
        assert_eq!(
            (held.status, held.order_id.as_deref()),
            (StuffStatus::Reserved, Some(b.as_str())),
            "round {round}: the waiting order must end up holding the stuff"
        );
    }
    drain(store).await;
}

/// `stuff:withdraw` is an edit that sets `withdrawn`: the seller's, while available; the
/// catalogue stops listing it; `by_seller` still shows it, newest first, only theirs.
async fn withdrawals_and_sellers(store: &Arc<dyn StuffStore>) {
    let seller = format!("wanda-{}", uuid::Uuid::now_v7());
    let base = micros(Utc::now()) + Duration::hours(2);
    let older = stuff(&seller, "Old notes", base);
    let newer = stuff(&seller, "New notes", base + Duration::seconds(1));
    let other = stuff("someone-else", "Theirs", base + Duration::seconds(2));
    for s in [&older, &newer, &other] {
        store.create(s, None, None).await.unwrap();
    }
    drain(store).await;
    let ids = |v: Vec<StuffRecord>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.by_seller(&seller, 10).await.unwrap()),
        vec![newer.id.clone(), older.id.clone()]
    );
    assert_eq!(
        ids(store.by_seller(&seller, 1).await.unwrap()),
        vec![newer.id.clone()]
    );

    let withdrawal = StuffPatch::withdrawal();
    assert!(matches!(
        store
            .edit(&edit(&older.id, "someone-else", None, &withdrawal))
            .await,
        Err(StoreError::NotOwner)
    ));
    let w = store
        .edit(&edit(&older.id, &seller, None, &withdrawal))
        .await
        .unwrap();
    assert_eq!((w.status, w.version), (StuffStatus::Withdrawn, 2));
    assert_eq!(w.title, "Old notes", "a withdrawal changes nothing else");
    let events = outbox(store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(updated(&events[0]), &w);
    drain(store).await;
    // Once withdrawn: no second withdrawal, no edit, no file.
    assert!(matches!(
        store
            .edit(&edit(&older.id, &seller, None, &withdrawal))
            .await,
        Err(StoreError::Withdrawn)
    ));
    assert!(matches!(
        store
            .edit(&edit(&older.id, &seller, None, &title_patch("Again")))
            .await,
        Err(StoreError::Withdrawn)
    ));
    let f = file("f-w", "objects/w");
    assert!(matches!(
        store
            .edit_files(&file_edit(&older.id, &seller, FileOp::Add(&f)))
            .await,
        Err(StoreError::Withdrawn)
    ));
    assert!(outbox(store).await.is_empty());

    // Never listed, whatever the filter; still there by id and for its seller.
    let listed = |q: ListQuery| async move { ids(store.list(&q).await.unwrap()) };
    let all = listed(ListQuery {
        status: None,
        after: None,
        limit: 1000,
        ..ListQuery::default()
    })
    .await;
    assert!(!all.contains(&older.id) && all.contains(&newer.id));
    let withdrawn = listed(ListQuery {
        status: Some(StuffStatus::Withdrawn),
        after: None,
        limit: 1000,
        ..ListQuery::default()
    })
    .await;
    assert!(withdrawn.is_empty());
    assert_eq!(store.get(&older.id).await.unwrap().unwrap(), w);
    let mine = store.by_seller(&seller, 10).await.unwrap();
    assert_eq!(
        mine.iter().map(|s| s.status).collect::<Vec<_>>(),
        vec![StuffStatus::Available, StuffStatus::Withdrawn]
    );

    // An order ms-order took before it heard of the withdrawal is refused, not a hold.
    let late = order("o-withdrawn", &older.id, OrderStatus::Created, 1);
    match apply(store, OrderChange::Created, &late).await {
        OrderOutcome::Refused(r) => assert_eq!(r.reason, "the seller withdrew the stuff"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        store.get(&older.id).await.unwrap().unwrap().status,
        StuffStatus::Withdrawn
    );
    drain(store).await;
}

/// `stuff:list` by course and seller, newest first or by price, paged by keyset cursors
/// that neither repeat nor skip an item.
async fn filters_and_sorts(store: &Arc<dyn StuffStore>) {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let course = format!("C-{}", &run[run.len() - 8..]).to_uppercase();
    let (sam, tom) = (format!("sam-{run}"), format!("tom-{run}"));
    let base = micros(Utc::now()) + Duration::hours(3);
    let mut made = Vec::new();
    // Prices repeat, so ties are broken by id.
    for (i, (seller, price, with_course)) in [
        (&sam, 900, true),
        (&tom, 300, true),
        (&sam, 300, false),
        (&sam, 1200, true),
        (&tom, 900, true),
        (&sam, 50, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = stuff(
            seller,
            &format!("item {i}"),
            base + Duration::seconds(i as i64),
        );
        s.price_cents = price;
        s.course = with_course.then(|| course.clone());
        store.create(&s, None, None).await.unwrap();
        made.push(s);
    }
    drain(store).await;
    // Every page of `limit` in that order, followed by cursors, as ids.
    let walk = |q: ListQuery| async move {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(&ListQuery {
                    after: after.clone(),
                    ..q.clone()
                })
                .await
                .unwrap();
            assert!(page.len() <= q.limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(Cursor::after(ListOrder::Sort(q.sort), 0, last));
            seen.extend(page.into_iter().map(|s| s.id));
        }
        seen
    };
    let expect =
        |keep: &dyn Fn(&StuffRecord) -> bool,
         order: &dyn Fn(&StuffRecord, &StuffRecord) -> std::cmp::Ordering| {
            let mut v: Vec<&StuffRecord> = made.iter().filter(|s| keep(s)).collect();
            v.sort_by(|a, b| order(a, b));
            v.into_iter().map(|s| s.id.clone()).collect::<Vec<_>>()
        };
    let in_course = |s: &StuffRecord| s.course.as_deref() == Some(course.as_str());
    let newest =
        |a: &StuffRecord, b: &StuffRecord| (b.created_at, &b.id).cmp(&(a.created_at, &a.id));
    let cheapest =
        |a: &StuffRecord, b: &StuffRecord| (a.price_cents, &a.id).cmp(&(b.price_cents, &b.id));
    let dearest =
        |a: &StuffRecord, b: &StuffRecord| (b.price_cents, &b.id).cmp(&(a.price_cents, &a.id));
    for (sort, order) in [
        (
            StuffSort::Newest,
            &newest as &dyn Fn(&StuffRecord, &StuffRecord) -> std::cmp::Ordering,
        ),
        (StuffSort::PriceAsc, &cheapest),
        (StuffSort::PriceDesc, &dearest),
    ] {
        let by_course = ListQuery {
            course: Some(course.clone()),
            sort,
            limit: 2,
            ..ListQuery::default()
        };
        assert_eq!(walk(by_course).await, expect(&in_course, order), "{sort:?}");
        let sams = ListQuery {
            seller_id: Some(sam.clone()),
            sort,
            limit: 3,
            ..ListQuery::default()
        };
        assert_eq!(
            walk(sams).await,
            expect(&|s: &StuffRecord| s.seller_id == sam, order),
            "{sort:?}"
        );
        let both = ListQuery {
            course: Some(course.clone()),
            seller_id: Some(tom.clone()),
            sort,
            limit: 1,
            ..ListQuery::default()
        };
        assert_eq!(
            walk(both).await,
            expect(&|s: &StuffRecord| in_course(s) && s.seller_id == tom, order),
            "{sort:?}"
        );
    }
    // A course edit moves the stuff between courses; removing it takes it out of both.
    let moved = &made[2];
    let to_course = StuffPatch {
        course: Some(Some(
            ms_stuff::domain::Course::parse_optional(&json!(course.to_lowercase()))
                .unwrap()
                .unwrap(),
        )),
        ..StuffPatch::default()
    };
    let v2 = store
        .edit(&edit(&moved.id, &sam, None, &to_course))
        .await
        .unwrap();
    assert_eq!(v2.course.as_deref(), Some(course.as_str()));
    let clear = StuffPatch {
        course: Some(None),
        ..StuffPatch::default()
    };
    let v3 = store
        .edit(&edit(&moved.id, &sam, None, &clear))
        .await
        .unwrap();
    assert_eq!((v3.course, v3.version), (None, 3));
    assert_eq!(store.get(&moved.id).await.unwrap().unwrap().course, None);
    drain(store).await;
}

/// Full-text search: every word must match the title, description or course, as a word
/// or the start of one, case-insensitive; the scopes split best matches
/// (every word in the title) from the rest; edits and withdrawals reach the index.
async fn searches(store: &Arc<dyn StuffStore>) {
    let run = uuid::Uuid::now_v7().simple().to_string();
    // A word no other test uses, so the suite's other stuff never matches.
    let tag = format!("zq{}", &run[run.len() - 10..]);
    let seller = format!("sid-{run}");
    let base = micros(Utc::now()) + Duration::hours(4);
    let texts = [
        (
            format!("Linear algebra {tag}"),
            "Complete notes".to_owned(),
            None,
        ),
        (
            "Calculus summaries".to_owned(),
            format!("with {tag} algebra exercises"),
            None,
        ),
        (
            format!("Ökonomie {tag}"),
            "Mikro".to_owned(),
            Some("ECON 1"),
        ),
        (
            "Unrelated".to_owned(),
            "nothing here".to_owned(),
            Some("ALGEBRA 2"),
        ),
    ];
    let mut made = Vec::new();
    for (i, (title, description, course)) in texts.iter().enumerate() {
        let mut s = stuff(&seller, title, base + Duration::seconds(i as i64));
        s.description = description.to_string();
        s.course = course.map(str::to_owned);
        store.create(&s, None, None).await.unwrap();
        made.push(s);
    }
    drain(store).await;
    let find = |words: &[&str], scope: SearchScope| {
        let q = ListQuery {
            search: Some(Search {
                words: words.iter().map(|w| (*w).to_owned()).collect(),
                scope,
            }),
            limit: 100,
            ..ListQuery::default()
        };
        async move {
            store
                .list(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.title)
                .collect::<Vec<_>>()
        }
    };
    let title = |i: usize| made[i].title.clone();
    // Whole words and prefixes, newest first; every word must match.
    assert_eq!(
        find(&[&tag], SearchScope::Anywhere).await,
        vec![title(2), title(1), title(0)]
    );
    assert_eq!(
        find(&[&tag[..6], "alg"], SearchScope::Anywhere).await,
        vec![title(1), title(0)]
    );
    assert_eq!(
        find(&[&tag, "nothing"], SearchScope::Anywhere).await,
        Vec::<String>::new()
    );
    // The course is searched too; case does not matter.
    assert_eq!(
        find(&["econ", "ökonomie"], SearchScope::Anywhere).await,
        vec![title(2)]
    );
    // A word inside another word is not a match.
    assert_eq!(
        find(&["gebra", &tag], SearchScope::Anywhere).await,
        Vec::<String>::new()
    );
    // Best matches (all words in the title), then the rest.
    assert_eq!(
        find(&[&tag, "algebra"], SearchScope::Title).await,
        vec![title(0)]
    );
    assert_eq!(
        find(&[&tag, "algebra"], SearchScope::NotTitle).await,
        vec![title(1)]
    );
    // Edits reach the index: the old words stop matching, the new ones start.
    let renamed = StuffPatch {
        title: Some(StuffTitle::parse(&json!(format!("Geometry {tag}"))).unwrap()),
        ..StuffPatch::default()
    };
    store
        .edit(&edit(&made[0].id, &seller, None, &renamed))
        .await
        .unwrap();
    assert_eq!(
        find(&["linear", &tag], SearchScope::Anywhere).await,
        Vec::<String>::new()
    );
    assert_eq!(
        find(&["geom", &tag], SearchScope::Title).await,
        vec![format!("Geometry {tag}")]
    );
    // Withdrawn stuff is never found.
    store
        .edit(&edit(&made[2].id, &seller, None, &StuffPatch::withdrawal()))
        .await
        .unwrap();
    assert_eq!(
        find(&[&tag], SearchScope::Anywhere).await,
        vec![title(1), format!("Geometry {tag}")]
    );
    drain(store).await;
}

/// Account events rename a seller on every stuff, newer versions only, without changing
/// the stuff (no version, no event); a new stuff gets the replica's name.
async fn seller_names(store: &Arc<dyn StuffStore>) {
    drain(store).await;
    let t = micros(Utc::now());
    let first = store
        .create(&stuff("cleo", "Poems", t), None, None)
        .await
        .unwrap();
    assert_eq!(first.seller_name.as_deref(), Some("cleo"));
    let unnamed = StuffRecord {
        seller_name: None,
        rating_count: 0,
        rating_sum: 0,
        rating_rank: 0,
        ..stuff("dora", "Maps", t)
    };
    let unnamed = store.create(&unnamed, None, None).await.unwrap();
    assert_eq!(
        unnamed.seller_name.as_deref(),
        Some(ms_common::contract::UNKNOWN_SELLER_NAME)
    );
    drain(store).await;
    let user = |version: u64, name: &str| UserRecord {
        id: "cleo".into(),
        email: "cleo@example.com".into(),
        role: ms_common::events::Role::User,
        display_name: name.into(),
        version,
    };
    assert!(store.apply_user(&user(2, "Cleo P")).await.unwrap());
    assert!(
        !store.apply_user(&user(2, "Cleo P")).await.unwrap(),
        "a duplicate"
    );
    assert!(
        !store.apply_user(&user(1, "cleo")).await.unwrap(),
        "an older one"
    );
    let got = store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(
        (got.seller_name.as_deref(), got.version),
        (Some("Cleo P"), first.version)
    );
    assert!(
        outbox(store).await.is_empty(),
        "a rename is not a stuff change"
    );
    let later = store
        .create(&stuff("cleo", "Odes", t), None, None)
        .await
        .unwrap();
    assert_eq!(later.seller_name.as_deref(), Some("Cleo P"));
    match &outbox(store).await[0].event {
        Event::StuffCreated(s) => assert_eq!(s.seller_name.as_deref(), Some("Cleo P")),
        other => panic!("unexpected {other:?}"),
    }
    // A newer version with the same name is recorded and changes nothing shown.
    assert!(!store.apply_user(&user(3, "Cleo P")).await.unwrap());
    assert!(store.apply_user(&user(4, "Cleo")).await.unwrap());
    let page = store
        .list(&ListQuery {
            seller_id: Some("cleo".into()),
            limit: 10,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(
        page.iter()
            .all(|s| s.seller_name.as_deref() == Some("Cleo"))
    );
    drain(store).await;
}

fn review_of(stuff_id: &str, rating: i64) -> ReviewRecord {
    ReviewRecord {
        id: uuid::Uuid::now_v7().to_string(),
        order_id: uuid::Uuid::now_v7().to_string(),
        stuff_id: stuff_id.into(),
        user_id: "buyer".into(),
        rating,
        comment: String::new(),
        created_at: Utc::now(),
    }
}

async fn rate(store: &Arc<dyn StuffStore>, review: &ReviewRecord) -> ReviewOutcome {
    store.apply_review(review).await.unwrap()
}

/// Ratings: a review counts once (a redelivery changes nothing), without a version bump or
/// an event; `rating` lists the best rated first (the Wilson bound: many 4.8s beat one 5),
/// ties newest first, and pages by cursor.
async fn ratings(store: &Arc<dyn StuffStore>) {
    let seller = format!("rater-{}", uuid::Uuid::now_v7());
    let base = micros(Utc::now());
    let mut made = Vec::new();
    for i in 0..5 {
        let s = stuff(&seller, &format!("rated {i}"), base + Duration::seconds(i));
        store.create(&s, None, None).await.unwrap();
        made.push(s);
    }
    drain(store).await;
    let ids: Vec<&str> = made.iter().map(|s| s.id.as_str()).collect();

    let five = review_of(ids[0], 5);
    let ReviewOutcome::Applied(rated) = rate(store, &five).await else {
        panic!("first application counts");
    };
    assert_eq!(
        (rated.rating_count, rated.rating_sum, rated.rating_rank),
        (1, 5, rating_rank(1, 5))
    );
    assert_eq!(rated.version, 1, "a rating is not a change of the stuff");
    assert_eq!(rated.updated_at, made[0].updated_at);
    // Redelivered: counted once.
    assert_eq!(rate(store, &five).await, ReviewOutcome::Duplicate);
    let got = store.get(ids[0]).await.unwrap().unwrap();
    assert_eq!((got.rating_count, got.rating_sum, got.version), (1, 5, 1));
    let shown = ms_common::contract::Stuff::from(got);
    assert_eq!((shown.rating.average, shown.rating.count), (5.0, 1));
    // 40 reviews averaging 4.8 (32 fives and 8 fours).
    for i in 0..40 {
        let r = review_of(ids[1], if i < 32 { 5 } else { 4 });
        assert!(matches!(rate(store, &r).await, ReviewOutcome::Applied(_)));
    }
    rate(store, &review_of(ids[2], 3)).await;
    assert!(
        outbox(store).await.is_empty(),
        "no stuff event for a rating"
    );
    assert_eq!(
        rate(store, &review_of("no-such-stuff", 4)).await,
        ReviewOutcome::UnknownStuff
    );
    let forty = store.get(ids[1]).await.unwrap().unwrap();
    assert_eq!((forty.rating_count, forty.rating_sum), (40, 192));

    // Best rated first, then the unrated newest first; every page size walks it alike.
    let expected = vec![ids[1], ids[0], ids[2], ids[4], ids[3]];
    for limit in [1, 2, 5, 10] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(&ListQuery {
                    seller_id: Some(seller.clone()),
                    sort: StuffSort::Rating,
                    after: after.clone(),
                    limit,
                    ..ListQuery::default()
                })
                .await
                .unwrap();
            assert!(page.len() <= limit as usize);
            let Some(last) = page.last() else { break };
            after = Some(Cursor::after(ListOrder::Sort(StuffSort::Rating), 0, last));
            seen.extend(page.into_iter().map(|s| s.id));
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    // Over the whole catalogue too (stuff from other checks is unrated: it follows).
    let top = store
        .list(&ListQuery {
            sort: StuffSort::Rating,
            limit: 3,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    let top: Vec<&str> = top.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(top, vec![ids[1], ids[0], ids[2]]);
}

async fn conformance(store: Arc<dyn StuffStore>) {
    create_get_and_list(&store).await;
    seller_names(&store).await;
    edits_compare_and_set(&store).await;
    order_events(&store).await;
    price_pins(&store).await;
    concurrent_cancel_and_create(&store).await;
    files_and_notes(&store).await;
    withdrawals_and_sellers(&store).await;
    filters_and_sorts(&store).await;
    searches(&store).await;
    ratings(&store).await;
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = ms_stuff::store::sqlite::SqliteStuffStore::open(None)
        .await
        .unwrap();
    conformance(Arc::new(store)).await;
}

#[tokio::test]
async fn sqlite_file() {
    let dir = std::env::temp_dir().join(format!("stuffmart-stuff-{}", uuid::Uuid::new_v4()));
    let path = dir.join("stuff.db");
    let store = ms_stuff::store::sqlite::SqliteStuffStore::open(Some(&path))
        .await
        .unwrap();
    // As the service opens it: behind the read cache, which every check must see through.
    let cached = ms_stuff::store::cached::CachedStore::new(Arc::new(store));
    conformance(Arc::new(cached)).await;
    // Reopening keeps the data and does not re-run migrations.
    let again = ms_stuff::store::sqlite::SqliteStuffStore::open(Some(&path))
        .await
        .unwrap();
    let page = again
        .list(&ListQuery {
            status: None,
            after: None,
            limit: 100,
            ..ListQuery::default()
        })
        .await
        .unwrap();
    // Every stuff the suite created but the two it withdrew.
    assert_eq!(page.len(), 54);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn mongodb_when_configured() {
    let Some(url) = std::env::var("MONGODB_URL").ok().filter(|s| !s.is_empty()) else {
        eprintln!("MONGODB_URL not set: MongoDB stuff store conformance skipped");
        return;
    };
    let db = format!("stuffmart_stuff_{}", uuid::Uuid::new_v4().simple());
    let store = ms_stuff::store::mongo::MongoStuffStore::open(&url, &db)
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

/// A SQLite store whose `get` reads its row, then waits to be let go before returning it:
/// a read that started before a write and ends after it.
struct SlowReads {
    inner: Arc<dyn StuffStore>,
    read: tokio::sync::Notify,
    go: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl StuffStore for SlowReads {
    async fn create(
        &self,
        s: &StuffRecord,
        note: Option<&str>,
        cid: Option<&str>,
    ) -> Result<StuffRecord, StoreError> {
        self.inner.create(s, note, cid).await
    }
    async fn apply_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        self.inner.apply_user(user).await
    }
    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError> {
        let row = self.inner.get(id).await;
        self.read.notify_one();
        self.go.notified().await;
        row
    }
    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError> {
        self.inner.list(q).await
    }
    async fn by_seller(&self, seller: &str, limit: u32) -> Result<Vec<StuffRecord>, StoreError> {
        self.inner.by_seller(seller, limit).await
    }
    async fn courses(
        &self,
        limit: u32,
    ) -> Result<Vec<ms_common::contract::CourseCount>, StoreError> {
        self.inner.courses(limit).await
    }
    async fn edit(&self, e: &Edit<'_>) -> Result<StuffRecord, StoreError> {
        self.inner.edit(e).await
    }
    async fn edit_files(
        &self,
        e: &FileEdit<'_>,
    ) -> Result<ms_stuff::store::FileEdited, StoreError> {
        self.inner.edit_files(e).await
    }
    async fn get_with_note(
        &self,
        id: &str,
    ) -> Result<Option<(StuffRecord, Option<String>)>, StoreError> {
        self.inner.get_with_note(id).await
    }
    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        cid: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        self.inner.apply_order(change, order, now, cid).await
    }
    async fn apply_review(&self, review: &ReviewRecord) -> Result<ReviewOutcome, StoreError> {
        self.inner.apply_review(review).await
    }
    fn outbox(&self) -> Arc<dyn ms_common::storage::OutboxStore> {
        self.inner.outbox()
    }
}

/// The read cache never keeps a row that a write replaced while it was being read: the
/// read that raced the write answers what it read, and the next read sees the write.
#[tokio::test]
async fn the_read_cache_never_keeps_a_row_a_write_replaced() {
    let sqlite = ms_stuff::store::sqlite::SqliteStuffStore::open(None)
        .await
        .unwrap();
    let slow = Arc::new(SlowReads {
        inner: Arc::new(sqlite),
        read: tokio::sync::Notify::new(),
        go: tokio::sync::Notify::new(),
    });
    let cached = Arc::new(ms_stuff::store::cached::CachedStore::new(slow.clone()));
    let t = micros(Utc::now());
    let created = cached
        .create(&stuff("erin", "Old title", t), None, None)
        .await
        .unwrap();
    let id = created.id.clone();
    // A read starts and has read the old row...
    let racing = tokio::spawn({
        let cached = cached.clone();
        let id = id.clone();
        async move { cached.get(&id).await.unwrap().unwrap() }
    });
    slow.read.notified().await;
    // ...a write replaces it and returns...
    let patch = title_patch("New title");
    let edited = cached.edit(&edit(&id, "erin", None, &patch)).await.unwrap();
    assert_eq!(edited.title, "New title");
    // ...then the read returns what it read.
    slow.go.notify_one();
    assert_eq!(racing.await.unwrap().title, "Old title");
    // The next read must see the write (it reads the store: the old row was not kept).
    let next = tokio::spawn({
        let cached = cached.clone();
        async move { cached.get(&id).await.unwrap().unwrap() }
    });
    // Fails (instead of hanging) when the old row was kept and this read never reaches
    // the store.
    tokio::time::timeout(std::time::Duration::from_secs(5), slow.read.notified())
        .await
        .expect("the read after the write must go to the store, not to a row kept from before");
    slow.go.notify_one();
    let next = next.await.unwrap();
    assert_eq!(next.title, "New title");
    assert_eq!(next.version, edited.version);
    // And that read is kept: the one after it is served from memory (no store read, so
    // nothing waits at the gate).
    let again = tokio::time::timeout(std::time::Duration::from_secs(5), cached.get(&next.id))
        .await
        .expect("a cached read does not reach the store")
        .unwrap()
        .unwrap();
    assert_eq!(again, next);
}
