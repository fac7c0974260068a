//! ms-payment over a real RabbitMQ with real SQLite: one test binary, one `TestEnv` (broker
//! prefix) per test. ms-user runs in-process to mint real tokens; order events are published
//! the way ms-order publishes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod coupons;
mod events;
mod helpers;
mod intents;
mod payments;
mod payouts;
mod reconcile;
mod refunds;
mod stripe;
mod webhooks;
