//! The outbox relay: publishes the events a service's transactions wrote into its outbox,
//! in order, with publisher confirms, and marks them sent.
//!
//! A crash between publish and mark re-publishes the event (at-least-once); consumers are
//! idempotent by record version, so the store sees each event applied exactly once.

use crate::messaging::{Outgoing, Publisher};
use crate::shutdown::Shutdown;
use crate::storage::{OUTBOX_PRUNE_EVERY, OUTBOX_RETENTION, OutboxStore};
use std::sync::Arc;
use std::time::Duration;

/// Publishes outbox events in order until shutdown; the store wakes it on every commit
/// ([`OutboxStore::committed`]), and it looks again every half second regardless.
pub struct OutboxRelay {
    /// Where events wait.
    pub store: Arc<dyn OutboxStore>,
    /// Confirming publisher.
    pub publisher: Arc<Publisher>,
    /// The events exchange.
    pub exchange: String,
}

impl OutboxRelay {
    /// Runs until shutdown; broker or store failures back off and retry.
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = crate::messaging::Backoff::default();
        let committed = self.store.committed();
        let mut next_prune = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_prune {
                next_prune += OUTBOX_PRUNE_EVERY;
                self.prune().await;
            }
            match self.flush().await {
                Ok(0) => {
                    backoff.reset();
                    tokio::select! {
                        _ = committed.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.token.cancelled() => return,
                    }
                }
                Ok(_) => backoff.reset(),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay: will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                        _ = shutdown.token.cancelled() => return,
                    }
                }
            }
        }
    }

    /// Deletes events sent more than [`OUTBOX_RETENTION`] ago; a failure waits for the next
    /// time.
    pub async fn prune(&self) {
        match self
            .store
            .prune_sent(chrono::Utc::now() - OUTBOX_RETENTION)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "outbox: old sent events deleted"),
            Err(e) => tracing::warn!(error = %e, "outbox: could not delete old sent events"),
        }
    }

    /// Publishes everything pending now; returns how many went out.
    pub async fn flush(&self) -> anyhow::Result<usize> {
        let mut sent = 0;
        loop {
            let batch = self.store.pending(100).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for rec in batch {
                self.publisher
                    .publish(Outgoing {
                        exchange: self.exchange.clone(),
                        routing_key: rec.routing_key.clone(),
                        payload: rec.payload.clone().into_bytes(),
                        correlation_id: rec.correlation_id.clone(),
                        message_id: Some(rec.id.clone()),
                        ..Outgoing::default()
                    })
                    .await?;
                self.store.mark_sent(&rec.id).await?;
                sent += 1;
            }
        }
    }
}
