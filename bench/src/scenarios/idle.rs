//! `idle`: N idle anonymous connections held open (heartbeats answered); the router's
//! resident memory before and after, per connection.

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

/// Opens connections up to each count in `ladder` (ascending) and reads the router's RSS.
pub async fn run(
    sys: &System,
    ladder: &[usize],
    nofile: u64,
    settle: Duration,
    deadline: Instant,
) -> anyhow::Result<IdleResult> {
    println!("idle: connection ladder {ladder:?} (open-file limit {nofile})");
    let router = sys
        .router_pid()
        .ok_or_else(|| anyhow::anyhow!("no router pid"))?;
    tokio::time::sleep(settle).await;
    let baseline = rss_kib(router).unwrap_or(0);
    println!("  router RSS with no connections: {baseline} KiB");
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
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
        let started = std::time::Instant::now();
        let sockets = sio::connect_many(
            sys.port,
            new,
            128,
            |_| None,
            (Instant::now() + Duration::from_secs(180)).min(deadline),
        )
        .await?;
        let connect_seconds = round3(started.elapsed().as_secs_f64());
        for ws in sockets {
            tasks.push(tokio::spawn(hold(ws, stop_rx.clone())));
        }
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
            loadgen_rss_kib: rss_kib(std::process::id()).unwrap_or(0),
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
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    Ok(IdleResult {
        baseline_rss_kib: baseline,
        steps,
        skipped,
        cpu_idle_hold,
    })
}
