//! Per-test isolation on the shared broker: a unique prefix for every queue and exchange,
//! cleaned up at the end, plus helpers to wait for conditions and to force-close a
//! process's broker connections the way an operator would.

use ms_common::config::CommonConfig;
use ms_common::messaging::{Broker, Names};
use std::future::Future;
use std::time::{Duration, Instant};

/// One test's slice of the broker. Dropped without [`TestEnv::teardown`] (a failed test),
/// it still deletes its standard queues and exchanges.
pub struct TestEnv {
    /// Unique prefix, e.g. `t3f9a1c2e.`.
    pub prefix: String,
    /// Shared settings under that prefix (short retry delay, short timeouts).
    pub common: CommonConfig,
    torn_down: std::sync::atomic::AtomicBool,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh prefix; logs on when `TEST_LOG` is set.
    pub fn new() -> Self {
        ms_common::telemetry::init_for_tests();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}.", &id[..10]);
        Self {
            common: CommonConfig::for_tests(&prefix),
            prefix,
            torn_down: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The name scheme under this prefix.
    pub fn names(&self) -> Names {
        Names::new(self.prefix.clone())
    }

    /// A broker handle for the test's own publishing and inspection.
    pub async fn broker(&self) -> anyhow::Result<Broker> {
        let b = Broker::new(&self.common.amqp_url, &format!("{}test", self.prefix));
        b.connection().await?;
        Ok(b)
    }

    /// Deletes every queue and exchange under the prefix (plus `extra_queues`).
    pub async fn teardown(&self, extra_queues: &[String]) {
        self.torn_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Self::delete_all(&self.common.amqp_url, &self.prefix, extra_queues).await;
    }

    async fn delete_all(url: &str, prefix: &str, extra_queues: &[String]) {
        let names = Names::new(prefix.to_owned());
        let b = Broker::new(url, &format!("{prefix}teardown"));
        if let Ok(ch) = b.channel().await {
            ms_common::messaging::topology::teardown(&ch, &names, extra_queues).await;
        }
        b.close().await;
    }

    /// Force-closes (as `rabbitmqctl close_connection` does) every broker connection whose
    /// name contains `needle` (connections are named `<prefix>ms-<service>` etc.).
    /// Returns how many were closed.
    pub async fn close_connections(&self, needle: &str) -> anyhow::Result<usize> {
        let out = tokio::process::Command::new("rabbitmqctl")
            .args([
                "list_connections",
                "pid",
                "client_properties",
                "--no-table-headers",
                "-q",
            ])
            .output()
            .await?;
        anyhow::ensure!(out.status.success(), "rabbitmqctl list_connections failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut closed = 0;
        for line in text.lines().filter(|l| l.contains(needle)) {
            let Some(pid) = line.split_whitespace().next() else {
                continue;
            };
            let st = tokio::process::Command::new("rabbitmqctl")
                .args(["close_connection", pid, "forced by test", "-q"])
                .status()
                .await?;
            if st.success() {
                closed += 1;
            }
        }
        Ok(closed)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if self.torn_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // A test that panicked: clean up on a thread of our own (we may be inside a runtime).
        let (url, prefix) = (self.common.amqp_url.clone(), self.prefix.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        Self::delete_all(&url, &prefix, &[]),
                    )
                    .await;
                });
            }
        });
        let _ = cleanup.join();
    }
}

/// Messages ready in `queue`, `None` when it does not exist (asked with a passive declare on
/// a throwaway channel: the broker closes the channel of a passive declare that fails).
pub async fn queue_ready(broker: &Broker, queue: &str) -> anyhow::Result<Option<u32>> {
    use lapin::options::QueueDeclareOptions;
    let ch = broker.channel().await?;
    let res = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await;
    let _ = ch.close(200, "done".into()).await;
    Ok(res.ok().map(|q| q.message_count()))
}

/// Polls `check` until it yields `Some`, or fails after `timeout` with `what` in the message.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
