//! The hold sweeper: a safety net under the TTL queue.
//!
//! Every `HOLD_SWEEP_SECONDS` each ms-order replica asks its store for `created` orders
//! whose `expiresAt` passed more than [`SWEEP_GRACE`] ago and expires them through the same
//! [`OrderService::expire`] the `order.expired` consumer uses. The cancel is a
//! compare-and-set on status `created`, so the sweeper, the TTL path and other replicas
//! can all reach the same order: it is cancelled once and `order.cancelled` is published
//! once. The sweeper catches holds whose TTL message was lost (purged queue, a broker
//! node lost with a classic queue, a dead-lettered expiry).

use crate::service::OrderService;
use ms_common::messaging::HandleError;
use ms_common::shutdown::Shutdown;
use std::sync::Arc;
use std::time::Duration;

/// How long after `expiresAt` the sweeper leaves an order to its TTL expiry first.
pub const SWEEP_GRACE: Duration = Duration::from_secs(5);

/// Overdue orders read per store query.
const PAGE: u32 = 100;

/// Pages per sweep: the rest waits for the next round, so one sweep stays short.
const MAX_PAGES: usize = 20;

impl OrderService {
    /// Expires every order overdue by more than [`SWEEP_GRACE`] (up to a bound per call);
    /// says how many it cancelled.
    pub async fn sweep_holds(&self) -> anyhow::Result<usize> {
        let before = chrono::Utc::now() - chrono::Duration::from_std(SWEEP_GRACE)?;
        let mut cancelled = 0;
        for _ in 0..MAX_PAGES {
            let ids = self.store.overdue_holds(before, PAGE).await?;
            let full = ids.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
            let mut progressed = false;
            for id in ids {
                match self.expire_hold(&id, None).await {
                    Ok(moved) => {
                        progressed = true;
                        cancelled += usize::from(moved);
                    }
                    Err(HandleError::Defer(_)) => {}
                    Err(e) => {
                        tracing::warn!(order_id = %id, error = %e, "sweeper could not expire an order; next round")
                    }
                }
            }
            if !full || !progressed {
                break;
            }
        }
        Ok(cancelled)
    }
}

/// Sweeps every `every` until shutdown.
pub async fn run(svc: Arc<OrderService>, every: Duration, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.token.cancelled() => return,
        }
        match svc.sweep_holds().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(cancelled = n, "sweeper expired holds the TTL queue missed"),
            Err(e) => tracing::warn!(error = %e, "hold sweep failed; next round"),
        }
    }
}
