//! `fanout`: V anonymous viewer sockets and one signed-in buyer who reserves
//! (`order:create`) and releases (`order:cancel`) an item. Each change is one round:
//! order → ms-order → `order.*` event → ms-stuff → `stuff.updated` → every router's
//! fan-out queue → `stuff:updated` pushed to every viewer. Per round we record when the
//! first, the median and the last viewer saw the matching version, measured from the
//! buyer's emit (end to end) and from the `updatedAt` ms-stuff stamped (event to viewer).

use super::{create_stuff, wait_replicated};
use crate::official::{Client, Node};
use crate::procfs::{CpuReport, round3};
use crate::sio::{self, Frame, Ws};
use crate::stats::Latency;
use crate::system::System;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How the fan-out is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// Viewer sockets.
    pub viewers: usize,
    /// Measured rounds (each a reserve or a release).
    pub rounds: usize,
    /// How long a round waits for the last viewer.
    pub round_timeout: Duration,
    /// Node.js processes the official client's viewers are spread over: one event loop
    /// parsing every viewer's push in turn would measure Node, not the router.
    pub node_procs: usize,
}

/// What one fan-out size measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
    /// Which load generator the viewers ran on.
    pub client: Client,
    /// Viewer sockets.
    pub viewers: usize,
    /// Measured rounds.
    pub rounds: usize,
    /// Seconds to connect all viewers.
    pub connect_seconds: f64,
    /// Viewer notifications that did not arrive within the round timeout.
    pub missed: u64,
    /// Buyer's emit → median viewer, over rounds.
    pub e2e_median_viewer: Latency,
    /// Buyer's emit → last viewer, over rounds.
    pub e2e_last_viewer: Latency,
    /// ms-stuff's write (`updatedAt`) → first viewer, over rounds: outbox + broker + router.
    pub event_first_viewer: Latency,
    /// ms-stuff's write (`updatedAt`) → median viewer, over rounds.
    pub event_median_viewer: Latency,
    /// ms-stuff's write (`updatedAt`) → last viewer, over rounds.
    pub event_last_viewer: Latency,
    /// First viewer → last viewer, over rounds: the router's fan-out (and the viewers' reading).
    pub spread_first_to_last: Latency,
    /// CPU over the measured rounds.
    pub cpu: CpuReport,
    /// Router CPU per pushed notification (one viewer, one update), µs.
    pub router_us_per_push: f64,
    /// Router CPU per update fanned out to all viewers, ms.
    pub router_ms_per_update: f64,
}

/// What a viewer reports: which viewer, which version, when (and viewer 0 adds `updatedAt`).
struct Seen {
    viewer: usize,
    version: u64,
    at: Instant,
    updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Update<'a> {
    #[serde(borrow)]
    id: &'a str,
    version: u64,
    #[serde(rename = "updatedAt", default)]
    updated_at: Option<&'a str>,
}

async fn viewer(
    mut ws: Ws,
    index: usize,
    stuff_id: Arc<str>,
    seen: mpsc::UnboundedSender<Seen>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let at = Instant::now();
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            _ => break,
        };
        match sio::classify(text.as_str()) {
            Frame::Ping if ws.send(Message::text("3")).await.is_err() => break,
            Frame::Event {
                name: "stuff:updated",
                payload,
            } => {
                if let Ok(u) = serde_json::from_str::<Update<'_>>(payload)
                    && u.id == &*stuff_id
                {
                    let _ = seen.send(Seen {
                        viewer: index,
                        version: u.version,
                        at,
                        updated_at: (index == 0).then(|| u.updated_at.unwrap_or("").to_owned()),
                    });
                }
            }
            Frame::Closed => break,
            _ => {}
        }
    }
    let _ = ws.close(None).await;
}

/// Converts an `Instant` to wall-clock time through a reference pair taken once.
struct Clock {
    instant: Instant,
    wall: SystemTime,
}

impl Clock {
    fn wall(&self, at: Instant) -> SystemTime {
        self.wall + at.duration_since(self.instant)
    }
}

/// Microseconds from an RFC 3339 timestamp to a wall-clock time (0 if unreadable or negative).
fn micros_since(rfc3339: &str, later: SystemTime) -> u64 {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return 0;
    };
    let later: chrono::DateTime<chrono::Utc> = later.into();
    (later - t.with_timezone(&chrono::Utc))
        .num_microseconds()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(0)
}

/// Per-round measurements in µs.
#[derive(Default)]
struct Rounds {
    e2e_median: Vec<u64>,
    e2e_last: Vec<u64>,
    ev_first: Vec<u64>,
    ev_median: Vec<u64>,
    ev_last: Vec<u64>,
    spread: Vec<u64>,
    missed: u64,
}

impl Rounds {
    /// Records one round from when the first, median and last of `seen` viewers got the
    /// update (wall clock), the emit at `t0`, and ms-stuff's `updatedAt`.
    fn record(
        &mut self,
        viewers: usize,
        seen: usize,
        t0: SystemTime,
        at: [SystemTime; 3],
        updated_at: &str,
    ) {
        self.missed += viewers.saturating_sub(seen) as u64;
        if seen == 0 {
            return;
        }
        let [first, median, last] = at;
        let us = |later: SystemTime, earlier: SystemTime| {
            later
                .duration_since(earlier)
                .map_or(0, |d| d.as_micros() as u64)
        };
        self.e2e_median.push(us(median, t0));
        self.e2e_last.push(us(last, t0));
        self.spread.push(us(last, first));
        if !updated_at.is_empty() {
            self.ev_first.push(micros_since(updated_at, first));
            self.ev_median.push(micros_since(updated_at, median));
            self.ev_last.push(micros_since(updated_at, last));
        }
    }
}

/// The viewers of a fan-out run, on either load generator.
enum Viewers {
    /// One task per socket, each reporting what it saw on a channel.
    Rust {
        rx: mpsc::UnboundedReceiver<Seen>,
        stop: watch::Sender<bool>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    },
    /// The official client in Node.js processes, each reporting a version once all its
    /// viewers saw it.
    Official(Vec<Node>),
}

/// What one official client process reports for one version.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OfficialRound {
    version: u64,
    /// When each of its viewers saw it, wall-clock µs since the epoch.
    #[serde(default)]
    times_us: Vec<u64>,
    #[serde(default)]
    updated_at: Option<String>,
    /// Set when the version had been reported already (nothing new in this line).
    #[serde(default)]
    reported: bool,
}

impl Viewers {
    /// Connects `n` Rust viewers watching `stuff_id`; returns them and the seconds it took.
    async fn connect_rust(
        sys: &System,
        n: usize,
        stuff_id: &str,
        deadline: Instant,
    ) -> anyhow::Result<(Self, f64)> {
        let started = std::time::Instant::now();
        let sockets = sio::connect_many(sys.port, n, 128, |_| None, deadline).await?;
        let connect_seconds = round3(started.elapsed().as_secs_f64());
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let stuff_id: Arc<str> = stuff_id.into();
        let tasks = sockets
            .into_iter()
            .enumerate()
            .map(|(i, ws)| {
                tokio::spawn(viewer(ws, i, stuff_id.clone(), tx.clone(), stop_rx.clone()))
            })
            .collect();
        Ok((Self::Rust { rx, stop, tasks }, connect_seconds))
    }

    /// Waits until every viewer saw `version` (or the timeout), then records the round in
    /// `out` (a warm-up round passes `None`).
    async fn collect(
        &mut self,
        viewers: usize,
        version: u64,
        t0: Instant,
        timeout: Duration,
        clock: &Clock,
        out: Option<&mut Rounds>,
    ) -> anyhow::Result<()> {
        let until = t0 + timeout;
        // When each viewer saw `version`, in whatever order they arrived.
        let (mut times, updated_at): (Vec<SystemTime>, String) = match self {
            Self::Rust { rx, .. } => {
                let mut times: Vec<Instant> = Vec::with_capacity(viewers);
                let mut seen = vec![false; viewers];
                let mut updated_at = String::new();
                while times.len() < viewers {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(s)) => {
                            if s.version != version || seen[s.viewer] {
                                continue;
                            }
                            seen[s.viewer] = true;
                            times.push(s.at);
                            if let Some(u) = s.updated_at {
                                updated_at = u;
                            }
                        }
                        _ => break,
                    }
                }
                (
                    times.into_iter().map(|t| clock.wall(t)).collect(),
                    updated_at,
                )
            }
            Self::Official(nodes) => {
                let mut times: Vec<u64> = Vec::with_capacity(viewers);
                let mut updated_at = None;
                for node in nodes.iter_mut() {
                    let round = match official_round(node, version, until).await {
                        Ok(r) => r,
                        Err(_) => {
                            // Not everyone saw it in time: ask for what arrived so far.
                            node.send(&format!("report {version}")).await?;
                            let by = Instant::now() + Duration::from_secs(5);
                            official_round(node, version, by).await?
                        }
                    };
                    times.extend(round.times_us);
                    updated_at = updated_at.or(round.updated_at);
                }
                let wall = |us: u64| SystemTime::UNIX_EPOCH + Duration::from_micros(us);
                (
                    times.into_iter().map(wall).collect(),
                    updated_at.unwrap_or_default(),
                )
            }
        };
        times.sort_unstable();
        let seen = times.len();
        let pick = |i: usize| times.get(i).copied().unwrap_or_else(|| clock.wall(t0));
        let at = [
            pick(0),
            pick(seen.saturating_sub(1) / 2),
            pick(seen.saturating_sub(1)),
        ];
        if let Some(out) = out {
            out.record(viewers, seen, clock.wall(t0), at, &updated_at);
        }
        Ok(())
    }

    /// Closes every viewer.
    async fn close(self) {
        match self {
            Self::Rust { stop, tasks, .. } => {
                let _ = stop.send(true);
                for t in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
                }
            }
            Self::Official(nodes) => {
                futures_util::future::join_all(nodes.into_iter().map(Node::exit)).await;
            }
        }
    }
}

/// Reads the official client's lines until the one for `version` (older rounds' late
/// reports are skipped).
async fn official_round(
    node: &mut Node,
    version: u64,
    until: Instant,
) -> anyhow::Result<OfficialRound> {
    loop {
        let round: OfficialRound = node.recv(until).await?;
        if round.version == version && !round.reported {
            return Ok(round);
        }
    }
}

/// Emits `event` until it is accepted (a just-released item may still look held to
/// ms-order for a moment); returns the emit time and the ack's data.
async fn act(
    buyer: &mut Ws,
    next_ack: &mut u64,
    event: &str,
    payload: &str,
) -> anyhow::Result<(Instant, serde_json::Value)> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        *next_ack += 1;
        let t0 = Instant::now();
        let (status, body) = sio::request(
            buyer,
            *next_ack,
            event,
            payload,
            Instant::now() + Duration::from_secs(10),
        )
        .await?;
        if status == 200 {
            return Ok((t0, sio::ack_data(&body)?));
        }
        if status != 409 || Instant::now() > until {
            anyhow::bail!("{event} gave {status}: {body}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs one fan-out size with the viewers on `client`.
pub async fn run(
    sys: &System,
    p: Params,
    client: Client,
    deadline: Instant,
) -> anyhow::Result<FanoutResult> {
    println!(
        "fanout ({client:?} client): {} viewers, {} rounds (reserve/release of one item by one buyer)",
        p.viewers, p.rounds
    );
    let short = || Instant::now() + Duration::from_secs(10);
    let mut seller = sio::connect(
        sys.port,
        sio::source_for(0),
        Some(&sys.token("bench-fan-seller")?),
        short(),
    )
    .await?;
    let mut buyer = sio::connect(
        sys.port,
        sio::source_for(1),
        Some(&sys.token("bench-fan-buyer")?),
        short(),
    )
    .await?;
    let mut seller_ack = 1;
    let item = create_stuff(&mut seller, seller_ack, "fanout item").await?;
    wait_replicated(&mut seller, &mut seller_ack, &item.id).await?;
    // The seller's socket would only pile up pushes from here on.
    drop(seller);
    let connect_by = (Instant::now() + Duration::from_secs(120)).min(deadline);
    let (mut viewers, connect_seconds) = match client {
        Client::Rust => Viewers::connect_rust(sys, p.viewers, &item.id, connect_by).await?,
        Client::Official => {
            let procs = p.node_procs.clamp(1, p.viewers.max(1));
            let starts = (0..procs).map(|k| {
                // An even share each, the remainder to the first ones.
                let share = p.viewers / procs + usize::from(k < p.viewers % procs);
                let config = serde_json::json!({
                    "mode": "fanout", "port": sys.port, "viewers": share, "stuffId": item.id,
                });
                Node::start(config, connect_by)
            });
            let started = futures_util::future::try_join_all(starts).await?;
            let secs = started.iter().map(|(_, s)| *s).fold(0.0, f64::max);
            let nodes = started.into_iter().map(|(n, _)| n).collect();
            (Viewers::Official(nodes), round3(secs))
        }
    };
    let mut tracked = sys.tracked.clone();
    if let Viewers::Official(nodes) = &viewers {
        for pid in nodes.iter().filter_map(Node::pid) {
            tracked.add("node", pid);
        }
    }
    let clock = Clock {
        instant: Instant::now(),
        wall: SystemTime::now(),
    };
    let create = serde_json::json!({ "stuffId": item.id }).to_string();
    let mut buyer_ack = 0;
    let mut version = item.version;
    let mut rounds = Rounds::default();
    // One unmeasured reserve/release first (warm caches, connections, JIT-free but lazy paths).
    let mut before = None;
    let total = p.rounds + 2;
    let mut measured = 0;
    let mut i = 0;
    while i < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "global deadline reached in fanout"
        );
        if i == 2 {
            before = Some(tracked.sample());
        }
        let (t0, order) = act(&mut buyer, &mut buyer_ack, "order:create", &create).await?;
        version += 1;
        let out = (i >= 2).then_some(&mut rounds);
        viewers
            .collect(p.viewers, version, t0, p.round_timeout, &clock, out)
            .await?;
        if i >= 2 {
            measured += 1;
        }
        i += 1;
        let order_id = order
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let cancel = serde_json::json!({ "id": order_id }).to_string();
        let (t0, _) = act(&mut buyer, &mut buyer_ack, "order:cancel", &cancel).await?;
        version += 1;
        let out = (i >= 2).then_some(&mut rounds);
        viewers
            .collect(p.viewers, version, t0, p.round_timeout, &clock, out)
            .await?;
        if i >= 2 {
            measured += 1;
        }
        i += 1;
    }
    let after = tracked.sample();
    let cpu = CpuReport::between(&before.unwrap_or_else(|| after.clone()), &after);
    viewers.close().await;
    drop(buyer);
    let pushes = (measured * p.viewers) as f64;
    let router = cpu.of("router");
    let result = FanoutResult {
        client,
        viewers: p.viewers,
        rounds: measured,
        connect_seconds,
        missed: rounds.missed,
        e2e_median_viewer: Latency::from_micros(&mut rounds.e2e_median),
        e2e_last_viewer: Latency::from_micros(&mut rounds.e2e_last),
        event_first_viewer: Latency::from_micros(&mut rounds.ev_first),
        event_median_viewer: Latency::from_micros(&mut rounds.ev_median),
        event_last_viewer: Latency::from_micros(&mut rounds.ev_last),
        spread_first_to_last: Latency::from_micros(&mut rounds.spread),
        router_us_per_push: if pushes > 0.0 {
            round3(router * 1e6 / pushes)
        } else {
            0.0
        },
        router_ms_per_update: if measured > 0 {
            round3(router * 1e3 / measured as f64)
        } else {
            0.0
        },
        cpu,
    };
    println!(
        "  {} rounds, {} missed notifications",
        result.rounds, result.missed
    );
    println!(
        "  emit -> median viewer: {}",
        result.e2e_median_viewer.line()
    );
    println!("  emit -> last viewer:   {}", result.e2e_last_viewer.line());
    println!(
        "  event -> first viewer: {}",
        result.event_first_viewer.line()
    );
    println!(
        "  event -> last viewer:  {}",
        result.event_last_viewer.line()
    );
    println!(
        "  first -> last viewer:  {}",
        result.spread_first_to_last.line()
    );
    result.cpu.print("fanout");
    println!(
        "  router CPU: {:.2} us per push, {:.2} ms per update to {} viewers",
        result.router_us_per_push, result.router_ms_per_update, p.viewers
    );
    Ok(result)
}
