//! The official `socket.io-client` as the bench's second load generator: a Node.js
//! process running `bench/node/load.mjs`, driven over its stdin and stdout with one JSON
//! object per line. Browsers and the web client use that client, so its cost and its
//! latencies are what users see; the lean Rust client ([`crate::sio`]) shows the router's
//! own limit.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{Instant, timeout_at};

/// Which load generator a scenario runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Client {
    /// The lean Rust client: one task per socket, no JSON parse on the hot path.
    Rust,
    /// The official `socket.io-client` on Node.js, as browsers run it.
    Official,
}

impl std::str::FromStr for Client {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "rust" => Ok(Self::Rust),
            "official" => Ok(Self::Official),
            other => bail!("unknown client {other:?} (rust or official)"),
        }
    }
}

/// Where `load.mjs` and its `node_modules` are (`BENCH_NODE_DIR` overrides).
fn script_dir() -> PathBuf {
    std::env::var_os("BENCH_NODE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/node")))
}

/// The `ready` line every mode prints once its sockets are connected.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Ready {
    connect_seconds: f64,
}

/// A running `load.mjs`; killed when dropped.
pub struct Node {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Node {
    /// Starts `load.mjs` with `config` and waits (until `deadline`) for its sockets.
    /// Returns the process and the seconds it took to connect them.
    pub async fn start(
        config: serde_json::Value,
        deadline: Instant,
    ) -> anyhow::Result<(Self, f64)> {
        let dir = script_dir();
        anyhow::ensure!(
            dir.join("node_modules/socket.io-client").is_dir(),
            "{} has no node_modules: run `npm ci --prefix {}` (scripts/bench.sh does)",
            dir.display(),
            dir.display()
        );
        let mut child = Command::new("node")
            // 19,000 clients take more than Node's default heap.
            .arg("--max-old-space-size=8192")
            .arg(dir.join("load.mjs"))
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (the official client's load generator)")?;
        let stdin = child.stdin.take().context("node without stdin")?;
        let stdout = child.stdout.take().context("node without stdout")?;
        let mut node = Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        };
        let ready: Ready = node.recv(deadline).await.context("official client start")?;
        Ok((node, ready.connect_seconds))
    }

    /// The Node process's pid, for CPU accounting.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Sends one command line.
    pub async fn send(&mut self, command: &str) -> anyhow::Result<()> {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Reads the next line as `T`; an `{"error"}` line or the end of output is an error.
    pub async fn recv<T: DeserializeOwned>(&mut self, deadline: Instant) -> anyhow::Result<T> {
        let line = timeout_at(deadline, self.lines.next_line())
            .await
            .context("the official client did not answer in time")??
            .context("the official client exited")?;
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(&line)
            && let Some(e) = o.get("error")
        {
            bail!("the official client failed: {e}");
        }
        serde_json::from_str(&line).with_context(|| format!("official client said {line:?}"))
    }

    /// Asks the process to close its sockets and exit, then waits for it briefly.
    pub async fn exit(mut self) {
        let _ = self.send("exit").await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.child.wait()).await;
    }
}
