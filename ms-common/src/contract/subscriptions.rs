//! Who consumes which events, declared once: each service's durable events queue
//! ([`consumed_by`]) and the router replicas' live pushes ([`LIVE_PUSHES`]).
//! `ServiceRuntime::connect` and the router's fan-out bind exactly these, and
//! `docs/events.json` is generated from them.

use super::Service;
use crate::events::EventKind;

/// The order events: everything that changes a stuff's hold or an order replica.
const ORDER_EVENTS: &[EventKind] = &[
    EventKind::OrderCreated,
    EventKind::OrderCancelled,
    EventKind::OrderCompleted,
    EventKind::OrderRefunded,
];

/// What the router replicas push to browsers (each on its own exclusive queue).
pub const LIVE_PUSHES: &[EventKind] = &[
    EventKind::StuffCreated,
    EventKind::StuffUpdated,
    EventKind::OrderCreated,
    EventKind::OrderCancelled,
    EventKind::OrderCompleted,
    EventKind::OrderRefunded,
    EventKind::DeliveryUpdated,
    EventKind::SaleCompleted,
];

/// The events a service's durable events queue is bound to.
pub const fn consumed_by(service: Service) -> &'static [EventKind] {
    match service {
        // Nobody's facts change an account.
        Service::User => &[],
        // Holds and sales change a stuff's status; accounts name its seller; reviews
        // make its rating.
        Service::Stuff => &[
            EventKind::OrderCreated,
            EventKind::OrderCancelled,
            EventKind::OrderCompleted,
            EventKind::OrderRefunded,
            EventKind::UserCreated,
            EventKind::UserUpdated,
            EventKind::ReviewCreated,
        ],
        // ms-order keeps a replica of the catalogue, completes paid orders, marks
        // refunded ones and cancels orders ms-stuff refused (priced at an old version);
        // it names buyers in reviews and sales from its replica of accounts.
        Service::Order => &[
            EventKind::StuffCreated,
            EventKind::StuffUpdated,
            EventKind::PaymentCreated,
            EventKind::PaymentFailed,
            EventKind::PaymentRefunded,
            EventKind::ReservationRefused,
            EventKind::UserCreated,
            EventKind::UserUpdated,
        ],
        // ms-payment keeps a replica of the orders (and refunds an order ms-order
        // refunded on its own, a late payment).
        Service::Payment => ORDER_EVENTS,
    }
}

/// `docs/events.json`: every event kind and who consumes it, as the AsyncAPI check reads
/// it (kept equal to the code by `ms-common/tests/schemas.rs`).
pub fn catalogue_file() -> String {
    let services: serde_json::Map<String, serde_json::Value> = Service::ALL
        .iter()
        .map(|s| {
            let keys: Vec<&str> = consumed_by(*s).iter().map(|k| k.routing_key()).collect();
            (s.as_str().to_owned(), serde_json::json!(keys))
        })
        .collect();
    let pushes: Vec<&str> = LIVE_PUSHES.iter().map(|k| k.routing_key()).collect();
    let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.routing_key()).collect();
    let doc = serde_json::json!({"kinds": kinds, "consumers": services, "routerPushes": pushes});
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    format!("{text}\n")
}
