//! One AMQP connection per process, re-established after a broker restart.
//!
//! Components ask for channels; if the connection is gone the broker reconnects (once per
//! call, the caller's loop backs off) and re-runs every registered declaration first.

use super::topology::Declare;
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Shared handle to the process's AMQP connection.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    name: String,
    conn: Mutex<Option<Arc<Connection>>>,
    current: std::sync::RwLock<Option<Arc<Connection>>>,
    declarations: std::sync::Mutex<Vec<Arc<dyn Declare>>>,
}

impl Broker {
    /// A broker handle that connects lazily; `name` shows in the management UI.
    pub fn new(url: &str, name: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                name: name.to_owned(),
                conn: Mutex::new(None),
                current: std::sync::RwLock::new(None),
                declarations: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Connects now and runs the declarations (fails fast at start-up if the broker is down).
    pub async fn connect(
        url: &str,
        name: &str,
        decls: Vec<Arc<dyn Declare>>,
    ) -> lapin::Result<Self> {
        let b = Self::new(url, name);
        for d in decls {
            b.register(d);
        }
        b.channel().await?;
        Ok(b)
    }

    /// Adds a declaration run on every (re)connection.
    pub fn register(&self, d: Arc<dyn Declare>) {
        if let Ok(mut v) = self.inner.declarations.lock() {
            v.push(d);
        }
    }

    /// Declares `d` now on a fresh channel and on every later reconnection.
    pub async fn declare(&self, d: Arc<dyn Declare>) -> lapin::Result<()> {
        self.register(d.clone());
        let ch = self.channel().await?;
        d.declare(&ch).await?;
        let _ = ch.close(200, "declared".into()).await;
        Ok(())
    }

    /// True while the connection is up (for `/readyz`).
    pub fn is_connected(&self) -> bool {
        self.inner
            .current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|c| c.status().connected()))
            .unwrap_or(false)
    }

    /// A new channel on a live connection, reconnecting first if needed.
    pub async fn channel(&self) -> lapin::Result<Channel> {
        let conn = self.connection().await?;
        conn.create_channel().await
    }

    /// The live connection, (re)connecting and re-declaring if it is gone.
    pub async fn connection(&self) -> lapin::Result<Arc<Connection>> {
        let mut guard = self.inner.conn.lock().await;
        if let Some(c) = guard.as_ref()
            && c.status().connected()
        {
            return Ok(c.clone());
        }
        let props =
            ConnectionProperties::default().with_connection_name(self.inner.name.clone().into());
        let conn = Arc::new(Connection::connect(&self.inner.url, props).await?);
        let decls: Vec<Arc<dyn Declare>> = self
            .inner
            .declarations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        if !decls.is_empty() {
            let ch = conn.create_channel().await?;
            for d in decls {
                d.declare(&ch).await?;
            }
            let _ = ch.close(200, "declared".into()).await;
        }
        tracing::info!(name = %self.inner.name, "connected to RabbitMQ");
        *guard = Some(conn.clone());
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = Some(conn.clone());
        }
        Ok(conn)
    }

    /// Closes the connection (shutdown); later calls reconnect.
    pub async fn close(&self) {
        let conn = self.inner.conn.lock().await.take();
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = None;
        }
        if let Some(c) = conn {
            let _ = c.close(200, "bye".into()).await;
        }
    }
}

/// Exponential backoff for reconnect loops: 100 ms doubling to 5 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The delay to wait now; the next one doubles.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        d
    }
    /// After a success, start small again.
    pub fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }
}
