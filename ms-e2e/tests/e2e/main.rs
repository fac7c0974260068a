//! End-to-end tests through ms-router: one test binary, one module per flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod allowances;
mod catalogue;
mod contract_pins;
mod delivery;
mod marketplace;
mod orders;
mod payments;
mod privilege;
mod refunds;
mod reviews;
mod router;

use ms_testkit::SioClient;
use serde_json::Value;
use std::time::Duration;

/// How long a test waits for an ack or a push before it fails.
pub(crate) const T: Duration = Duration::from_secs(15);

/// Emits `event` and returns its ack.
pub(crate) async fn ask(c: &SioClient, event: &str, payload: Value) -> Value {
    c.emit_with_ack(event, payload, T).await.unwrap()
}

/// An error ack's status and first message (`(0, "")` for a success).
pub(crate) fn err(ack: &Value) -> (u64, &str) {
    (
        ack["status"].as_u64().unwrap_or(0),
        ack["errors"][0]["message"].as_str().unwrap_or(""),
    )
}
