//! End-to-end tests through ms-router: one test binary, one module per flow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod catalogue;
mod contract_pins;
mod delivery;
mod orders;
mod payments;
mod refunds;
mod router;
