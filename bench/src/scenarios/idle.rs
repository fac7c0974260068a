//! `idle`: N idle anonymous connections held open (heartbeats answered); the router's
//! resident memory before and after, per connection.

use crate::official::{Client, Node};
use crate::procfs::{CpuReport, round3, rss_kib};
use crate::sio::{self, Frame, Ws};
use crate::system::System;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// One step of the ladder.
#[derive(Debug, Clone, Serialize)]
pub struct IdleStep {
    /// Connections open at this step.
    pub connections: usize,
    /// Router `VmRSS` at this step, KiB.
    pub router_rss_kib: u64,
    /// (RSS now − RSS with no connections) / connections, bytes.
    pub bytes_per_connection: f64,
    /// (RSS now − RSS at the previous step) / new connections, bytes.
    pub marginal_bytes_per_connection: f64,
    /// Seconds to open this step's new connections.
    pub connect_seconds: f64,
    /// Load generator `VmRSS`, KiB (the clients' side, for scale).
    pub loadgen_rss_kib: u64,
}

/// What the ladder measured.
#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    /// Which load generator held the connections.
    pub client: Client,
    /// Router `VmRSS` before any benchmark connection, KiB.
    pub baseline_rss_kib: u64,
    /// One entry per connection count.
    pub steps: Vec<IdleStep>,
    /// Counts that were capped by the open-file limit, with what ran instead.
    pub skipped: Vec<String>,
    /// CPU while holding the largest count idle.
    pub cpu_idle_hold: CpuReport,
}

async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>) {
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        match msg {
            Some(Ok(Message::Text(t))) => match sio::classify(t.as_str()) {
                Frame::Ping if ws.send(Message::text("3")).await.is_err() => break,
                Frame::Closed => break,
                _ => {}
            },
            Some(Ok(_)) => {}
            _ => break,
        }
    }
}

/// Who holds the idle connections.
enum Holders {
    /// One task per socket, stopped through `stop`.
    Rust {
        stop: watch::Sender<bool>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    },
    /// The official client in a Node.js process.
    Official(Box<Node>),
}

/// What the official client says after opening more sockets.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Opened {
    open: usize,
    connect_seconds: f64,
}

impl Holders {
    /// Opens `new` more connections; returns the seconds it took.
    async fn open(&mut self, port: u16, new: usize, deadline: Instant) -> anyhow::Result<f64> {
        let started = std::time::Instant::now();
        match self {
            Self::Rust { stop, tasks } => {
                let sockets = sio::connect_many(port, new, 128, |_| None, deadline).await?;
                for ws in sockets {
                    tasks.push(tokio::spawn(hold(ws, stop.subscribe())));
                }
                Ok(round3(started.elapsed().as_secs_f64()))
            }
            Self::Official(node) => {
                node.send(&format!("open {new}")).await?;
                let opened: Opened = node.recv(deadline).await?;
                anyhow::ensure!(opened.open > 0, "the official client holds no sockets");
                Ok(round3(opened.connect_seconds))
            }
        }
    }

    /// The load generator's resident memory, KiB.
    fn rss_kib(&self) -> u64 {
        let pid = match self {
            Self::Rust { .. } => Some(std::process::id()),
            Self::Official(node) => node.pid(),
        };
        pid.and_then(rss_kib).unwrap_or(0)
    }

    /// Closes every connection.
    async fn close(self) {
        match self {
            Self::Rust { stop, tasks } => {
                let _ = stop.send(true);
                for t in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
                }
            }
            Self::Official(node) => (*node).exit().await,
        }
    }
}

/// Opens connections on `client` up to each count in `ladder` (ascending) and reads the
/// router's RSS.
pub async fn run(
    sys: &System,
    client: Client,
    ladder: &[usize],
    nofile: u64,
    settle: Duration,
    deadline: Instant,
) -> anyhow::Result<IdleResult> {
    println!("idle ({client:?} client): connection ladder {ladder:?} (open-file limit {nofile})");
    let router = sys
        .router_pid()
        .ok_or_else(|| anyhow::anyhow!("no router pid"))?;
    tokio::time::sleep(settle).await;
    let baseline = rss_kib(router).unwrap_or(0);
    println!("  router RSS with no connections: {baseline} KiB");
    let mut holders = match client {
        Client::Rust => Holders::Rust {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        },
        Client::Official => {
            let config = serde_json::json!({ "mode": "idle", "port": sys.port });
            let (node, _) = Node::start(config, Instant::now() + Duration::from_secs(30)).await?;
            Holders::Official(Box::new(node))
        }
    };
    let mut steps: Vec<IdleStep> = Vec::new();
    let mut skipped = Vec::new();
    let mut open = 0usize;
    let mut prev_rss = baseline;
    // Leave room for the process's own files and the broker connection.
    let max_conns = usize::try_from(nofile.saturating_sub(512)).unwrap_or(usize::MAX);
    for &wanted in ladder {
        // Above the open-file limit: go as far as it allows, in whole thousands.
        let target = if wanted > max_conns {
            let capped = max_conns / 1000 * 1000;
            println!("  {wanted} exceeds the open-file limit {nofile}; using {capped}");
            skipped.push(format!("{wanted} (open-file limit {nofile}; ran {capped})"));
            capped
        } else {
            wanted
        };
        if target <= open {
            continue;
        }
        anyhow::ensure!(Instant::now() < deadline, "global deadline reached in idle");
        let new = target - open;
        let connect_seconds = holders
            .open(
                sys.port,
                new,
                (Instant::now() + Duration::from_secs(180)).min(deadline),
            )
            .await?;
        open = target;
        tokio::time::sleep(settle).await;
        let rss = rss_kib(router).unwrap_or(0);
        let step = IdleStep {
            connections: open,
            router_rss_kib: rss,
            bytes_per_connection: round3(
                rss.saturating_sub(baseline) as f64 * 1024.0 / open as f64,
            ),
            marginal_bytes_per_connection: round3(
                rss.saturating_sub(prev_rss) as f64 * 1024.0 / new as f64,
            ),
            connect_seconds,
            loadgen_rss_kib: holders.rss_kib(),
        };
        println!(
            "  {} connections: router RSS {} KiB, {:.0} bytes per connection ({:.0} marginal)",
            step.connections,
            step.router_rss_kib,
            step.bytes_per_connection,
            step.marginal_bytes_per_connection
        );
        prev_rss = rss;
        steps.push(step);
    }
    let before = sys.tracked.sample();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = sys.tracked.sample();
    let cpu_idle_hold = CpuReport::between(&before, &after);
    cpu_idle_hold.print(&format!("idle, {open} connections held"));
    holders.close().await;
    Ok(IdleResult {
        client,
        baseline_rss_kib: baseline,
        steps,
        skipped,
        cpu_idle_hold,
    })
}
