//! The reliability suite: real services as processes (or in-process with failing stores),
//! crashed, cut off the broker, fuzzed and attacked. One test binary, one module per fault.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod broker;
mod cluster;
mod crash;
mod fuzz;
mod load;
mod races;
mod redelivery;
mod security;
mod store_failure;
