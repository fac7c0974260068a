//! The JSON Schemas checked in under `docs/schemas/` are generated from the Rust types
//! (`ms_common::contract::schemas`); this test fails when they drift apart, and checks that
//! real values serialize to JSON the schemas accept (and that bad input is refused).
//!
//! After changing a contract type, event or the error envelope, regenerate the files with
//!
//! ```sh
//! UPDATE_SCHEMAS=1 cargo nextest run --workspace -E 'binary(schemas)'
//! ```
//!
//! and review the diff (docs/asyncapi.yaml and docs/contract.md may need the change too;
//! `scripts/validate-asyncapi.sh` checks that every schema file is referenced).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use ms_common::ApiError;
use ms_common::contract::{self, AckError, AckReply, Coupon, ErrorEnvelope, Payment, Stuff};
use ms_common::error::Reply;
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, PaymentFailure, PaymentRecord, Role,
    StuffRecord, StuffStatus, UserRecord,
};
use ms_common::messaging::RpcRequest;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas")
}

/// A one-hunk line diff: common head and tail kept as context, the middle as -/+ lines.
fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let ctx = 3;
    let start = head.saturating_sub(ctx);
    let (a_end, b_end) = (a.len() - tail, b.len() - tail);
    let mut out = format!(
        "@@ -{},{} +{},{} @@\n",
        start + 1,
        (a_end + ctx).min(a.len()) - start,
        start + 1,
        (b_end + ctx).min(b.len()) - start
    );
    let mut lines: Vec<String> = Vec::new();
    lines.extend(a[start..head].iter().map(|l| format!(" {l}")));
    lines.extend(a[head..a_end].iter().map(|l| format!("-{l}")));
    lines.extend(b[head..b_end].iter().map(|l| format!("+{l}")));
    lines.extend(
        a[a_end..(a_end + ctx).min(a.len())]
            .iter()
            .map(|l| format!(" {l}")),
    );
    let shown = lines.len().min(120);
    for l in &lines[..shown] {
        out.push_str(l);
        out.push('\n');
    }
    if shown < lines.len() {
        out.push_str(&format!("... ({} more lines)\n", lines.len() - shown));
    }
    out
}

/// Compares a generated file under `docs/` with what the code generates now; rewrites it
/// with `UPDATE_SCHEMAS=1`.
fn check_generated(file: &str, expected: &str, source: &str) {
    let path = schema_dir().join("..").join(file);
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != expected && std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, expected).unwrap();
        eprintln!("wrote docs/{file}");
        return;
    }
    assert!(
        on_disk == expected,
        "docs/{file} differs from {source}:\n{}\n\
         Regenerate with: UPDATE_SCHEMAS=1 cargo test -p ms-common --test schemas",
        diff(&on_disk, expected)
    );
}

#[test]
fn the_checked_in_action_catalogue_matches_the_action_enum() {
    check_generated(
        "actions.json",
        &contract::action_catalogue_file(),
        "contract::Action",
    );
}

#[test]
fn the_checked_in_event_catalogue_matches_the_event_kinds() {
    check_generated(
        "events.json",
        &contract::subscriptions::catalogue_file(),
        "contract::subscriptions",
    );
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let dir = schema_dir();
    let expected: BTreeMap<String, String> = contract::schema_files().into_iter().collect();
    let on_disk: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .map(|n| {
                    let text = std::fs::read_to_string(dir.join(&n)).unwrap_or_default();
                    (n, text)
                })
                .collect()
        })
        .unwrap_or_default();

    if std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &expected {
            if on_disk.get(name) != Some(text) {
                std::fs::write(dir.join(name), text).unwrap();
                eprintln!("wrote docs/schemas/{name}");
            }
        }
        for name in on_disk.keys().filter(|n| !expected.contains_key(*n)) {
            std::fs::remove_file(dir.join(name)).unwrap();
            eprintln!("removed docs/schemas/{name}");
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, text) in &expected {
        match on_disk.get(name) {
            None => problems.push(format!("missing: docs/schemas/{name}\n")),
            Some(old) if old != text => problems.push(format!(
                "differs: docs/schemas/{name} (- checked in, + generated)\n{}",
                diff(old, text)
            )),
            Some(_) => {}
        }
    }
    for name in on_disk.keys().filter(|n| !expected.contains_key(*n)) {
        problems.push(format!(
            "extra: docs/schemas/{name} (no Rust type generates it)\n"
        ));
    }
    assert!(
        problems.is_empty(),
        "docs/schemas/ is out of date with the Rust types:\n\n{}\n\
         Regenerate with: UPDATE_SCHEMAS=1 cargo test -p ms-common --test schemas",
        problems.join("\n")
    );
}

#[test]
fn every_schema_is_a_valid_draft_07_schema() {
    for (name, schema) in contract::schemas() {
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{name}: not a valid JSON Schema: {e}");
        }
        jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{name}: cannot compile: {e}"));
    }
}

fn schema(name: &str) -> Value {
    contract::schemas()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no schema named {name}"))
}

#[track_caller]
fn assert_valid(name: &str, value: &Value) {
    let s = schema(name);
    let v = jsonschema::validator_for(&s).unwrap();
    let errors: Vec<String> = v
        .iter_errors(value)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{value}\ndoes not match schema {name}:\n{}",
        errors.join("\n")
    );
}

#[track_caller]
fn assert_invalid(name: &str, value: &Value) {
    let s = schema(name);
    let v = jsonschema::validator_for(&s).unwrap();
    assert!(
        !v.is_valid(value),
        "{value}\nshould not match schema {name}"
    );
}

fn to_json(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap()
}

fn stuff(status: StuffStatus, order_id: Option<&str>) -> StuffRecord {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    StuffRecord {
        id: "0192-s".into(),
        title: "Lecture notes".into(),
        description: "".into(),
        price_cents: 1500,
        seller_id: "0192-u".into(),
        status,
        order_id: order_id.map(str::to_owned),
        version: 2,
        created_at: t,
        updated_at: t,
        files: vec![],
        has_secret_note: false,
        course: None,
        seller_name: None,
        rating_count: 0,
        rating_sum: 0,
        rating_rank: 0,
        cover: None,
    }
}

fn order(status: OrderStatus) -> OrderRecord {
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    OrderRecord {
        id: "0192-o".into(),
        stuff_id: "0192-s".into(),
        user_id: "0192-b".into(),
        status,
        expires_at: t + chrono::Duration::minutes(15),
        price_cents: 1500,
        stuff_title: "Linear algebra notes".into(),
        paid_cents: None,
        reviewed: false,
        stuff_version: Some(1),
        seller_id: None,
        version: 1,
        created_at: t,
    }
}

fn payment(coupon: Option<&str>) -> PaymentRecord {
    PaymentRecord {
        id: "0192-p".into(),
        order_id: "0192-o".into(),
        user_id: "0192-b".into(),
        amount_cents: 1050,
        coupon_code: coupon.map(str::to_owned),
        provider_id: "pi_123".into(),
        created_at: Utc::now(),
        refunded_at: None,
        currency: "eur".into(),
        fee_cents: Some(90),
    }
}

fn every_event() -> Vec<Event> {
    vec![
        Event::UserCreated(UserRecord {
            id: "0192-u".into(),
            email: "ann@example.com".into(),
            role: Role::Admin,
            display_name: "ann".into(),
            version: 1,
        }),
        Event::UserUpdated(UserRecord {
            id: "0192-u".into(),
            email: "ann@example.com".into(),
            role: Role::User,
            display_name: "Ann Smith".into(),
            version: 2,
        }),
        Event::StuffCreated(stuff(StuffStatus::Available, None)),
        Event::StuffUpdated(stuff(StuffStatus::Reserved, Some("0192-o"))),
        Event::OrderCreated(order(OrderStatus::Created)),
        Event::OrderCancelled(order(OrderStatus::Cancelled)),
        Event::OrderCompleted(order(OrderStatus::Complete)),
        Event::OrderRefunded(order(OrderStatus::Refunded)),
        Event::PaymentCreated(payment(Some("SAVE30"))),
        Event::PaymentRefunded(PaymentRecord {
            refunded_at: Some(Utc::now()),
            ..payment(None)
        }),
        Event::PaymentFailed(PaymentFailure {
            order_id: "0192-o".into(),
            user_id: "0192-b".into(),
            reason: "card declined".into(),
        }),
        Event::ReservationRefused(ms_common::events::ReservationRefusal {
            order_id: "0192-o".into(),
            user_id: "0192-b".into(),
            stuff_id: "0192-s".into(),
            priced_version: 1,
            stuff_version: 2,
            reason: "order priced at version 1, stuff is at version 2".into(),
        }),
        Event::ReviewCreated(ms_common::events::ReviewRecord {
            id: "0192-r".into(),
            order_id: "0192-o".into(),
            stuff_id: "0192-s".into(),
            user_id: "0192-b".into(),
            rating: 4,
            comment: "Clear notes".into(),
            created_at: Utc::now(),
        }),
    ]
}

#[test]
fn every_event_envelope_matches_its_schema() {
    let events = every_event();
    let mut keys: Vec<&str> = events.iter().map(Event::routing_key).collect();
    keys.dedup();
    assert_eq!(keys.len(), 13, "one sample per Event variant");
    for (i, event) in events.into_iter().enumerate() {
        let cid = (i % 2 == 0).then(|| "c0ffee".to_owned());
        let env = EventEnvelope::new(event, cid);
        let v = to_json(&env);
        assert_eq!(v["type"], env.event.routing_key());
        assert_valid("EventEnvelope", &v);
        let record = match env.event.routing_key() {
            "user.created" | "user.updated" => "UserRecord",
            "stuff.created" | "stuff.updated" => "StuffRecord",
            "payment.created" | "payment.refunded" => "PaymentRecord",
            "payment.failed" => "PaymentFailure",
            "reservation.refused" => "ReservationRefusal",
            "review.created" => "ReviewRecord",
            _ => "Order",
        };
        assert_valid(record, &v["data"]);
    }
    // A type the catalogue does not know, or data of the wrong shape, is refused.
    let mut bad = to_json(EventEnvelope::new(every_event().remove(0), None));
    bad["type"] = json!("user.deleted");
    assert_invalid("EventEnvelope", &bad);
    let mut bad = to_json(EventEnvelope::new(every_event().remove(3), None));
    bad["data"]["status"] = json!("shipped");
    assert_invalid("EventEnvelope", &bad);
}

#[test]
fn shapes_match_their_schemas() {
    let s = Stuff::from(stuff(StuffStatus::Reserved, Some("0192-o")));
    let sv = to_json(&s);
    assert!(sv.get("orderId").is_none(), "orderId is internal");
    assert_valid("Stuff", &sv);
    assert_valid(
        "StuffPage",
        &to_json(contract::StuffPage {
            items: vec![s.clone()],
            next_cursor: Some("MjAyNnxpZA".into()),
        }),
    );
    assert_valid(
        "StuffPage",
        &to_json(contract::StuffPage {
            items: vec![],
            next_cursor: None,
        }),
    );
    assert_valid("Order", &to_json(order(OrderStatus::Created)));
    let review = contract::Review::new(
        ms_common::events::ReviewRecord {
            id: "0192-r".into(),
            order_id: "0192-o".into(),
            stuff_id: "0192-s".into(),
            user_id: "0192-b".into(),
            rating: 5,
            comment: String::new(),
            created_at: Utc::now(),
        },
        None,
    );
    let rv = to_json(&review);
    assert_eq!(rv["buyerDisplayName"], contract::UNKNOWN_BUYER_NAME);
    assert_valid("Review", &rv);
    let mut bad = rv.clone();
    bad["rating"] = json!(6);
    assert_invalid("Review", &bad);
    assert_valid("Payment", &to_json(Payment::from(payment(None))));
    assert_valid("Payment", &to_json(Payment::from(payment(Some("FREE")))));
    let coupon = Coupon {
        code: "ABCDEFGHJKMN".into(),
        percent_off: 100,
        max_redemptions: None,
        redemptions: 0,
        expires_at: None,
        created_by: "0192-a".into(),
    };
    assert_valid("Coupon", &to_json(&coupon));
    let user = contract::PublicUser {
        id: "0192-u".into(),
        email: "ann@example.com".into(),
        role: Role::User,
        display_name: "ann".into(),
    };
    assert_valid(
        "Session",
        &to_json(contract::Session {
            user: user.clone(),
            access_token: "eyJ.x.y".into(),
        }),
    );
    assert_valid("CurrentUser", &json!({"user": to_json(&user)}));
    assert_valid(
        "PublicUser",
        &json!({"id": "u", "email": "a@b.c", "role": "admin", "displayName": "a"}),
    );
    assert_invalid(
        "PublicUser",
        &json!({"id": "u", "email": "a@b.c", "role": "root"}),
    );
    assert_valid(
        "ConnectError",
        &json!({"message": ms_common::auth::NOT_AUTHORIZED}),
    );
    // A Stuff with the internal field, or a stale shape, is not the contract's.
    let mut too_cheap = sv.clone();
    too_cheap["priceCents"] = json!(0);
    assert_invalid("Stuff", &too_cheap);
    let mut missing = sv;
    missing.as_object_mut().unwrap().remove("version");
    assert_invalid("Stuff", &missing);
}

#[test]
fn error_envelopes_match_their_schemas() {
    let cases = [
        ApiError::field("email", "Email must be valid"),
        ApiError::merge(vec![
            ApiError::field("title", "Title must be between 1 and 120 characters"),
            ApiError::field("priceCents", "Price must be a whole number"),
        ])
        .unwrap(),
        ApiError::unauthorized("Invalid credentials"),
        ApiError::payment_required("Your card was declined"),
        ApiError::conflict(
            "The stuff is being checked out by someone else, please come back later",
        ),
        ApiError::too_many_requests(),
        ApiError::unavailable(),
        ApiError::internal(),
    ];
    for e in &cases {
        // HTTP body and the contract type agree.
        assert_eq!(e.body(), to_json(ErrorEnvelope::from(e)));
        assert_valid("ErrorEnvelope", &e.body());
        // Ack and RPC reply forms.
        let ack = Reply::Error(e.clone()).to_value();
        assert_eq!(ack, to_json(AckError::from(e)));
        assert_valid("AckError", &ack);
        assert_valid("RpcReply", &ack);
    }
    assert_valid(
        "RpcReply",
        &Reply::Data(json!({"any": ["thing"]})).to_value(),
    );
    assert_valid(
        "RpcReply",
        &to_json(AckReply::<Value>::from(Ok(json!(null)))),
    );
    assert_invalid(
        "AckError",
        &json!({"status": 418, "errors": [{"message": "x"}]}),
    );
    assert_invalid("AckError", &json!({"status": 400, "errors": []}));
    assert_invalid("ErrorEnvelope", &json!({"errors": [{"field": "x"}]}));
    assert_invalid("RpcReply", &json!({"status": 404}));
}

#[test]
fn rpc_requests_match_their_schema() {
    let req = RpcRequest {
        action: "stuff:get".into(),
        token: Some("eyJ.x.y".into()),
        payload: json!({"id": "0192-s"}),
    };
    assert_valid("RpcRequest", &to_json(&req));
    let anonymous = RpcRequest {
        action: "user:signin".into(),
        token: None,
        payload: json!({"email": "a@b.c", "password": "password123"}),
    };
    assert_valid("RpcRequest", &to_json(&anonymous));
    assert_invalid("RpcRequest", &json!({"action": "GET /x", "payload": {}}));
}

#[test]
fn request_payloads_follow_the_contract_limits() {
    // Valid payloads, as the web client sends them.
    assert_valid("StuffListRequest", &json!({}));
    assert_valid(
        "StuffListRequest",
        &json!({"status": "available", "limit": 20, "cursor": null}),
    );
    assert_valid("IdRequest", &json!({"id": "0192-s"}));
    assert_valid("Empty", &json!({}));
    assert_valid(
        "StuffCreateRequest",
        &json!({"title": "x".repeat(120), "priceCents": 100_000_000}),
    );
    assert_valid(
        "StuffCreateRequest",
        &json!({"title": "Lamp", "priceCents": 50, "description": "d".repeat(2000)}),
    );
    assert_valid(
        "StuffUpdateRequest",
        &json!({"id": "s", "version": 3, "description": ""}),
    );
    assert_valid("OrderCreateRequest", &json!({"stuffId": "0192-s"}));
    assert_valid(
        "PaymentCreateRequest",
        &json!({"orderId": "o", "paymentMethod": "pm_card_visa", "couponCode": "save30"}),
    );
    assert_valid("PaymentCreateRequest", &json!({"orderId": "o"}));
    assert_valid(
        "PaymentIntentRequest",
        &json!({"orderId": "o", "couponCode": "save30"}),
    );
    assert_valid(
        "PaymentIntent",
        &json!({"clientSecret": "pi_1_secret_2", "amountCents": 50, "currency": "eur", "publishableKey": null}),
    );
    assert_valid(
        "CouponCreateRequest",
        &json!({"percentOff": 100, "maxRedemptions": 5, "expiresAt": "2030-01-01T00:00:00Z"}),
    );
    assert_valid(
        "Credentials",
        &json!({"email": "ann@example.com", "password": "password123"}),
    );
    assert_valid("AuthenticateRequest", &json!({"token": "eyJ.x.y"}));
    assert_valid("HandshakeAuth", &json!({}));
    assert_valid("RefreshRequest", &json!({"refreshToken": "r"}));

    // The limits of CONTRACT.md.
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "x".repeat(121), "priceCents": 500}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "", "priceCents": 500}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": 0}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": 49}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": 100_000_001}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": 1.5}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": "5"}),
    );
    assert_invalid(
        "StuffCreateRequest",
        &json!({"title": "a", "priceCents": 500, "description": "d".repeat(2001)}),
    );
    assert_invalid("StuffCreateRequest", &json!({"priceCents": 500}));
    assert_invalid("StuffUpdateRequest", &json!({"id": "s"}));
    assert_invalid(
        "StuffUpdateRequest",
        &json!({"id": "s", "version": 0, "title": "x"}),
    );
    assert_invalid("StuffListRequest", &json!({"limit": 101}));
    assert_invalid("StuffListRequest", &json!({"status": "gone"}));
    assert_invalid("IdRequest", &json!({"id": ""}));
    assert_invalid("OrderCreateRequest", &json!({}));
    assert_invalid(
        "PaymentCreateRequest",
        &json!({"paymentMethod": "pm_card_visa"}),
    );
    assert_invalid("PaymentIntentRequest", &json!({"couponCode": "save30"}));
    assert_invalid(
        "PaymentIntent",
        &json!({"clientSecret": "pi_1_secret_2", "amountCents": 0, "currency": "eur", "publishableKey": null}),
    );
    assert_invalid("CouponCreateRequest", &json!({"percentOff": 0}));
    assert_invalid("CouponCreateRequest", &json!({"percentOff": 101}));
    assert_invalid(
        "CouponCreateRequest",
        &json!({"percentOff": 10, "maxRedemptions": 0}),
    );
    assert_invalid(
        "Credentials",
        &json!({"email": "ann@example.com", "password": "short"}),
    );
    assert_invalid(
        "Credentials",
        &json!({"email": "ann@example.com", "password": "p".repeat(129)}),
    );
}
