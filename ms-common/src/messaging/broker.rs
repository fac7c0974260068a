//! One AMQP connection per process, re-established after a broker restart.
//!
//! Components ask for channels; if the connection is gone the broker reconnects (once per
//! call, the caller's loop backs off) and re-runs every registered declaration first.
//! `AMQP_URL` may name several nodes of a cluster, separated by commas: a (re)connection
//! tries them in turn, starting after the node that was last in use, so a process moves
//! to a live node when its node dies.

use super::migrate::{is_argument_mismatch, move_to_quorum};
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
    /// One URL per broker node (`AMQP_URL` split at commas).
    urls: Vec<String>,
    /// Index into `urls` of the node to try first at the next (re)connection.
    next: std::sync::atomic::AtomicUsize,
    name: String,
    conn: Mutex<Option<Arc<Connection>>>,
    current: std::sync::RwLock<Option<Arc<Connection>>>,
    declarations: std::sync::Mutex<Vec<Arc<dyn Declare>>>,
    /// Connections made with [`Broker::sibling`], closed with this one.
    siblings: std::sync::Mutex<Vec<Broker>>,
}

impl Broker {
    /// A broker handle that connects lazily; `name` shows in the management UI. `url`
    /// may list several nodes, separated by commas.
    pub fn new(url: &str, name: &str) -> Self {
        Self::with_nodes(split_urls(url), name.to_owned(), 0)
    }

    fn with_nodes(urls: Vec<String>, name: String, next: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                urls,
                next: std::sync::atomic::AtomicUsize::new(next),
                name,
                conn: Mutex::new(None),
                current: std::sync::RwLock::new(None),
                declarations: std::sync::Mutex::new(Vec::new()),
                siblings: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Another connection to the same nodes, without declarations, named after this one
    /// plus `role`: for traffic whose failure must not take this connection down.
    pub fn sibling(&self, role: &str) -> Self {
        let sibling = Self::with_nodes(
            self.inner.urls.clone(),
            format!("{}.{role}", self.inner.name),
            self.inner.next.load(std::sync::atomic::Ordering::Relaxed),
        );
        if let Ok(mut v) = self.inner.siblings.lock() {
            v.push(sibling.clone());
        }
        sibling
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
        let conn = self.connection().await?;
        declare_or_move(&conn, std::slice::from_ref(&d)).await
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
        let conn = Arc::new(self.connect_any().await?);
        let decls: Vec<Arc<dyn Declare>> = self
            .inner
            .declarations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        declare_or_move(&conn, &decls).await?;
        tracing::info!(name = %self.inner.name, "connected to RabbitMQ");
        *guard = Some(conn.clone());
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = Some(conn.clone());
        }
        Ok(conn)
    }

    /// Connects to the first node that answers, starting after the one last used; the
    /// error of the last node tried when none does.
    async fn connect_any(&self) -> lapin::Result<Connection> {
        use std::sync::atomic::Ordering;
        let urls = &self.inner.urls;
        let start = self.inner.next.load(Ordering::Relaxed);
        let mut last_err = None;
        for i in 0..urls.len() {
            let at = (start + i) % urls.len();
            let props = ConnectionProperties::default()
                .with_connection_name(self.inner.name.clone().into());
            match Connection::connect(&urls[at], props).await {
                Ok(conn) => {
                    // The next reconnection starts with the node after this one: when this
                    // node dies, its clients spread over the others.
                    self.inner
                        .next
                        .store((at + 1) % urls.len(), Ordering::Relaxed);
                    if urls.len() > 1 {
                        tracing::info!(name = %self.inner.name, node = at, "connected to broker node");
                    }
                    return Ok(conn);
                }
                Err(e) => {
                    tracing::warn!(name = %self.inner.name, node = at, error = %e, "broker node unreachable");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            lapin::Error::from(lapin::ErrorKind::InvalidConnectionState(
                lapin::ConnectionState::Closed,
            ))
        }))
    }

    /// A new channel consuming `queue` with `prefetch` unacknowledged deliveries. A
    /// `basic.consume` that gets no answer within [`CONSUME_TIMEOUT`] fails, with its
    /// channel closed, so that the caller's loop subscribes again instead of waiting for
    /// good (a precaution for a queue whose leader is being elected).
    pub async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> lapin::Result<(Channel, lapin::Consumer)> {
        use lapin::options::{BasicConsumeOptions, BasicQosOptions};
        let ch = self.channel().await?;
        let subscribe = async {
            ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
            ch.basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                lapin::types::FieldTable::default(),
            )
            .await
        };
        match tokio::time::timeout(CONSUME_TIMEOUT, subscribe).await {
            Ok(Ok(consumer)) => Ok((ch, consumer)),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                tracing::warn!(queue, "basic.consume unanswered; subscribing again");
                let closing = ch.clone();
                tokio::spawn(async move {
                    let _ = closing.close(200, "consume timed out".into()).await;
                });
                Err(lapin::Error::from(lapin::ErrorKind::InvalidChannelState(
                    lapin::ChannelState::Error,
                    "basic.consume timed out",
                )))
            }
        }
    }

    /// Closes the connection and its siblings' (shutdown); later calls reconnect.
    pub async fn close(&self) {
        let siblings = self
            .inner
            .siblings
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default();
        for s in siblings {
            Box::pin(s.close()).await;
        }
        let conn = self.inner.conn.lock().await.take();
        if let Ok(mut cur) = self.inner.current.write() {
            *cur = None;
        }
        if let Some(c) = conn {
            let _ = c.close(200, "bye".into()).await;
        }
    }
}

/// How long a subscription may wait for the broker's `consume-ok`.
pub const CONSUME_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every declaration on one fresh channel.
async fn declare_all(conn: &Connection, decls: &[Arc<dyn Declare>]) -> lapin::Result<()> {
    if decls.is_empty() {
        return Ok(());
    }
    let ch = conn.create_channel().await?;
    for d in decls {
        d.declare(&ch).await?;
    }
    let _ = ch.close(200, "declared".into()).await;
    Ok(())
}

/// Runs every declaration; when one finds a classic queue left by a version from before
/// quorum queues, moves each of their queues over ([`move_to_quorum`]) and declares again.
async fn declare_or_move(conn: &Connection, decls: &[Arc<dyn Declare>]) -> lapin::Result<()> {
    match declare_all(conn, decls).await {
        Err(e) if is_argument_mismatch(&e) => {
            for q in decls.iter().flat_map(|d| d.queues()) {
                move_to_quorum(conn, &q).await?;
            }
            declare_all(conn, decls).await
        }
        other => other,
    }
}

/// The node URLs of an `AMQP_URL` (comma-separated; blanks ignored; never empty).
fn split_urls(url: &str) -> Vec<String> {
    let urls: Vec<String> = url
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        vec![url.to_owned()]
    } else {
        urls
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

#[cfg(test)]
mod tests {
    use super::split_urls;

    #[test]
    fn an_amqp_url_may_name_several_nodes() {
        assert_eq!(
            split_urls("amqp://a:1@h1:5672/%2f, amqp://a:1@h2:5673/%2f,"),
            vec!["amqp://a:1@h1:5672/%2f", "amqp://a:1@h2:5673/%2f"]
        );
        assert_eq!(split_urls("amqp://h"), vec!["amqp://h"]);
    }
}
