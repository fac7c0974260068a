//! `flood`: one anonymous socket floods `stuff:list` while a victim, another anonymous
//! socket from another address, sends one `stuff:list` every 100 ms and measures each
//! round trip (issue 17: "other clients stay fast while one socket floods").
//!
//! ```text
//! victim alone for D ─▶ baseline latency
//! flooder: `window` events outstanding, another sent the moment one is answered
//!        + victim for D ─▶ latency under the flood; the flooder's answers by status
//! ```
//!
//! Run once with the router's default socket allowances and once with them off (what
//! the router did before issue 17). The victim's pace (10 a second) is within the default
//! allowance of 20 a second, so every one of its requests must be answered with data.

use super::create_stuff;
use crate::procfs::{CpuReport, round3};
use crate::sio::{self, Frame, Ws};
use crate::stats::Latency;
use crate::system::{SocketLimits, System};
use anyhow::bail;
use futures_util::{SinkExt, StreamExt};
use ms_testkit::packet;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

/// How the flood is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// The router's socket allowances.
    pub limits: SocketLimits,
    /// Events the flooder keeps unanswered.
    pub window: usize,
    /// How long the victim measures, alone and then under the flood.
    pub duration: Duration,
    /// Time between two of the victim's requests.
    pub victim_interval: Duration,
}

/// What one flood run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FloodResult {
    /// The router's socket allowances.
    pub limits: SocketLimits,
    /// Events the flooder kept unanswered.
    pub window: usize,
    /// The victim's round trips with nobody flooding.
    pub victim_alone: Latency,
    /// The victim's round trips while the flooder floods.
    pub victim_under_flood: Latency,
    /// The victim's first round trip after the flood started, ms.
    pub victim_first_under_flood_ms: f64,
    /// Victim answers that were not `{data}`, or did not come within 10 s (counted 10 s).
    pub victim_errors: u64,
    /// Events the flooder sent.
    pub flood_sent: u64,
    /// Flooder answers with `{data}`.
    pub flood_ok: u64,
    /// Flooder answers with 429.
    pub flood_refused: u64,
    /// Flooder answers with any other status.
    pub flood_other: u64,
    /// Flooder events still unanswered 2 s after it stopped.
    pub flood_unanswered: u64,
    /// Flooder answers per second.
    pub flood_answers_per_sec: f64,
    /// CPU during the flood.
    pub cpu: CpuReport,
}

/// The flooder's counts.
#[derive(Debug, Default)]
struct FloodTally {
    sent: u64,
    ok: u64,
    refused: u64,
    other: u64,
    unanswered: u64,
}

/// How long the flooder waits for an answer before it counts the rest as unanswered.
const QUIET: Duration = Duration::from_secs(2);

/// How long the victim waits for one answer.
const VICTIM_WAIT: Duration = Duration::from_secs(10);

async fn flooder(mut ws: Ws, window: usize, stop: Arc<AtomicBool>) -> anyhow::Result<FloodTally> {
    let mut t = FloodTally::default();
    let mut outstanding = 0usize;
    let mut next_id: u64 = 1;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if !stopping {
            while outstanding < window {
                let frame = packet::encode_event_json(next_id, "stuff:list", "{}");
                ws.feed(Message::text(frame)).await?;
                next_id += 1;
                outstanding += 1;
                t.sent += 1;
            }
            ws.flush().await?;
        } else if outstanding == 0 {
            break;
        }
        let msg = match timeout(QUIET, ws.next()).await {
            Err(_) => {
                // Nothing for a while: the rest is not coming (dropped by a full buffer).
                t.unanswered += outstanding as u64;
                outstanding = 0;
                continue;
            }
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("the router closed the flooder's socket"),
        };
        let Message::Text(text) = msg else { continue };
        match sio::classify(text.as_str()) {
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Ack { status, .. } => {
                outstanding = outstanding.saturating_sub(1);
                match status {
                    200 => t.ok += 1,
                    429 => t.refused += 1,
                    _ => t.other += 1,
                }
            }
            Frame::Closed => bail!("the router closed the flooder's socket"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(t)
}

/// The victim's paced requests for `duration`: round trips in µs and the errors.
async fn victim(
    ws: &mut Ws,
    next_id: &mut u64,
    interval: Duration,
    duration: Duration,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let end = Instant::now() + duration;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut samples, mut errors, mut failed_in_a_row) = (Vec::new(), 0u64, 0u32);
    while Instant::now() < end {
        ticker.tick().await;
        *next_id += 1;
        let t0 = Instant::now();
        match sio::request(ws, *next_id, "stuff:list", "{}", t0 + VICTIM_WAIT).await {
            Ok((status, _)) => {
                samples.push(t0.elapsed().as_micros() as u64);
                failed_in_a_row = 0;
                if status != 200 {
                    errors += 1;
                }
            }
            Err(e) => {
                samples.push(VICTIM_WAIT.as_micros() as u64);
                errors += 1;
                failed_in_a_row += 1;
                if failed_in_a_row >= 3 {
                    return Err(e.context("the victim got no answer three times in a row"));
                }
            }
        }
    }
    Ok((samples, errors))
}

/// Runs one flood against a system started with `p.limits`.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<FloodResult> {
    println!(
        "flood ({:?}): one socket keeps {} stuff:list unanswered; a victim sends one every {:?} (alone {:?}, then under the flood {:?})",
        p.limits, p.window, p.victim_interval, p.duration, p.duration
    );
    anyhow::ensure!(
        Instant::now() + p.duration * 2 + Duration::from_secs(30) < deadline,
        "no time left for the flood before the global deadline"
    );
    // Something to list: ten items from two sellers (within the default writes burst).
    for s in 0..2 {
        let mut seller = sio::connect(
            sys.port,
            sio::source_for(2 + s),
            Some(&sys.token(&format!("bench-flood-seller-{s}"))?),
            Instant::now() + Duration::from_secs(10),
        )
        .await?;
        for i in 0..5u64 {
            create_stuff(&mut seller, i + 1, &format!("flood item {s}-{i}")).await?;
        }
    }
    let connect = |i| {
        sio::connect(
            sys.port,
            sio::source_for(i),
            None,
            Instant::now() + Duration::from_secs(10),
        )
    };
    let mut victim_ws = connect(1).await?;
    let flood_ws = connect(0).await?;
    let mut victim_id = 0u64;
    let (mut alone, alone_errors) = victim(
        &mut victim_ws,
        &mut victim_id,
        p.victim_interval,
        p.duration,
    )
    .await?;

    let before = sys.tracked.sample();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = tokio::spawn(flooder(flood_ws, p.window, stop.clone()));
    let under = victim(
        &mut victim_ws,
        &mut victim_id,
        p.victim_interval,
        p.duration,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let after = sys.tracked.sample();
    let tally = flood.await??;
    let (mut under, under_errors) = under?;
    let cpu = CpuReport::between(&before, &after);
    let first_ms = under.first().map_or(0.0, |us| round3(*us as f64 / 1000.0));
    let answers = tally.ok + tally.refused + tally.other;
    let result = FloodResult {
        limits: p.limits,
        window: p.window,
        victim_alone: Latency::from_micros(&mut alone),
        victim_under_flood: Latency::from_micros(&mut under),
        victim_first_under_flood_ms: first_ms,
        victim_errors: alone_errors + under_errors,
        flood_sent: tally.sent,
        flood_ok: tally.ok,
        flood_refused: tally.refused,
        flood_other: tally.other,
        flood_unanswered: tally.unanswered,
        flood_answers_per_sec: round3(answers as f64 / cpu.wall_seconds.max(1e-9)),
        cpu,
    };
    println!("  victim alone:        {}", result.victim_alone.line());
    println!(
        "  victim under flood:  {} (first {:.2} ms, {} errors)",
        result.victim_under_flood.line(),
        result.victim_first_under_flood_ms,
        result.victim_errors
    );
    println!(
        "  flooder: {} sent, {} data, {} x 429, {} other, {} unanswered ({:.0} answers/s)",
        result.flood_sent,
        result.flood_ok,
        result.flood_refused,
        result.flood_other,
        result.flood_unanswered,
        result.flood_answers_per_sec
    );
    result.cpu.print("flood");
    Ok(result)
}
