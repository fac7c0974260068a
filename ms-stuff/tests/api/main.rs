//! ms-stuff over a real RabbitMQ with real tokens from an in-process ms-user: the RPC
//! actions as the router calls them, concurrency, and the order events it consumes.
//! One test binary (faster to build); each test has its own broker prefix and database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browse;
mod catalogue;
mod concurrency;
mod helpers;
mod order_events;
mod selling;
