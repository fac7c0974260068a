//! Graceful shutdown: a token every task watches, and a tracker to drain in-flight work.

use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Handles shared by every long-running task of a process.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the process should stop taking new work.
    pub token: CancellationToken,
    /// Every in-flight message handler is spawned here so it can be awaited.
    pub tracker: TaskTracker,
}

impl Shutdown {
    /// A fresh, not yet triggered shutdown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers shutdown, then waits (bounded) for in-flight handlers to finish.
    pub async fn drain(&self, limit: Duration) {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: in-flight work did not finish in {limit:?}");
        }
    }

    /// Resolves once SIGINT or SIGTERM arrives (or the token is cancelled).
    pub async fn signalled(&self) {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
            _ = term => tracing::info!("SIGTERM received, shutting down"),
            _ = self.token.cancelled() => {},
        }
    }
}
