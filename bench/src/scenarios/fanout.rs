//! `fanout`: V anonymous viewer sockets and one signed-in buyer who reserves
//! (`order:create`) and releases (`order:cancel`) an item. Each change is one round:
//! order → ms-order → `order.*` event → ms-stuff → `stuff.updated` → every router's
//! fan-out queue → `stuff:updated` pushed to every viewer. Per round we record when the
//! first, the median and the last viewer saw the matching version, measured from the
//! buyer's emit (end to end) and from the `updatedAt` ms-stuff stamped (event to viewer).

use super::{create_stuff, wait_replicated};
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
}

/// What one fan-out size measured.
#[derive(Debug, Clone, Serialize)]
pub struct FanoutResult {
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

/// Waits until every viewer saw `version` (or the timeout), then records the round.
async fn collect(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    viewers: usize,
    version: u64,
    t0: Instant,
    timeout: Duration,
    clock: &Clock,
    out: Option<&mut Rounds>,
) {
    let until = t0 + timeout;
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
    let Some(out) = out else { return };
    out.missed += (viewers - times.len()) as u64;
    if times.is_empty() {
        return;
    }
    times.sort_unstable();
    let first = times[0];
    let median = times[(times.len() - 1) / 2];
    let last = times[times.len() - 1];
    let us = |a: Instant| a.duration_since(t0).as_micros() as u64;
    out.e2e_median.push(us(median));
    out.e2e_last.push(us(last));
    out.spread
        .push(last.duration_since(first).as_micros() as u64);
    if !updated_at.is_empty() {
        out.ev_first
            .push(micros_since(&updated_at, clock.wall(first)));
        out.ev_median
            .push(micros_since(&updated_at, clock.wall(median)));
        out.ev_last
            .push(micros_since(&updated_at, clock.wall(last)));
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

/// Runs one fan-out size.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<FanoutResult> {
    println!(
        "fanout: {} viewers, {} rounds (reserve/release of one item by one buyer)",
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
    let started = std::time::Instant::now();
    let sockets = sio::connect_many(
        sys.port,
        p.viewers,
        128,
        |_| None,
        (Instant::now() + Duration::from_secs(120)).min(deadline),
    )
    .await?;
    let connect_seconds = round3(started.elapsed().as_secs_f64());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let stuff_id: Arc<str> = item.id.clone().into();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| tokio::spawn(viewer(ws, i, stuff_id.clone(), tx.clone(), stop_rx.clone())))
        .collect();
    drop(tx);
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
            before = Some(sys.tracked.sample());
        }
        let (t0, order) = act(&mut buyer, &mut buyer_ack, "order:create", &create).await?;
        version += 1;
        let out = (i >= 2).then_some(&mut rounds);
        collect(
            &mut rx,
            p.viewers,
            version,
            t0,
            p.round_timeout,
            &clock,
            out,
        )
        .await;
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
        collect(
            &mut rx,
            p.viewers,
            version,
            t0,
            p.round_timeout,
            &clock,
            out,
        )
        .await;
        if i >= 2 {
            measured += 1;
        }
        i += 1;
    }
    let after = sys.tracked.sample();
    let cpu = CpuReport::between(&before.unwrap_or_else(|| after.clone()), &after);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    drop(buyer);
    let pushes = (measured * p.viewers) as f64;
    let router = cpu.of("router");
    let result = FanoutResult {
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
