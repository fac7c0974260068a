//! The reliability suite's harness: StuffMart's real binaries as child processes, each
//! test on its own broker prefix and data directory, with the tools to hurt them.
//!
//! - [`bins`]: finds (and builds, once per test process) `target/<profile>/ms-*`.
//! - [`procs`]: [`procs::ProcSystem`] runs ms-user, ms-stuff, ms-order, ms-payment and
//!   ms-router with SQLite under a temporary `DATA_DIR`, can `kill -9` and restart any of
//!   them, and cleans up (processes, queues, files) in `Drop`, also when a test fails.
//! - [`stores`]: reads the services' SQLite files read-only and checks that they agree
//!   (outboxes drained, replicas at the owner's versions, every stuff's status explained
//!   by its orders, versions equal to the number of published changes).
//! - [`amqp`]: queue depths, dead letters with their headers, raw publishes and raw RPC.
//! - [`client`]: sign-up over HTTP, Socket.IO requests, the contract's ack envelope.
//! - [`hooked`]: ms-order's and ms-payment's stores with a test's hook around chosen writes.
//! - [`cluster`]: a three-node RabbitMQ cluster of a test's own, nodes killed at will.
//! - [`silent`]: a proxy that keeps connections open but stops forwarding (a frozen broker).
//!
//! Every wait has a deadline; nothing sleeps for a fixed time to "let things settle".

pub mod amqp;
pub mod bins;
pub mod client;
pub mod cluster;
pub mod hooked;
pub mod procs;
pub mod silent;
pub mod stores;

pub use client::{Ack, envelope_problem};
pub use procs::{Backend, ProcOptions, ProcSystem};
pub use stores::{Snapshot, Stores};
