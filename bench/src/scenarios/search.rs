//! `search`: finding stuff in a large catalogue (issue 16: `stuff:list` with `q` over
//! 100,000 stuff, p99 under 50 ms through the router with the whole stack running; the
//! same for `course` + `sort`). Seeds the catalogue through the router like sellers do
//! (`stuff:create`, pipelined over a few sellers' sockets; every stuff goes through
//! ms-stuff's store, its search index and outbox, and ms-order's replica), then measures
//! C clients × 1 request in flight of `stuff:list {q}` — one or two words, prefixes
//! included, matching from a few hundred to a few thousand stuff — and then of
//! `stuff:list {course, sort: "priceAsc"}`.

use super::{MEASURE, STOP, WARMUP, connect_signed_in, measured_window, phase};
use crate::procfs::round3;
use crate::sio::{self, Frame, Ws};
use crate::stats::Latency;
use crate::system::System;
use futures_util::{SinkExt, StreamExt};
use ms_testkit::packet;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// Subjects of the generated stuff (each title names one).
const SUBJECTS: &[&str] = &[
    "Linear algebra",
    "Calculus",
    "Thermodynamics",
    "Organic chemistry",
    "Microeconomics",
    "Data structures",
    "Operating systems",
    "Statistics",
    "Genetics",
    "Constitutional law",
    "Macroeconomics",
    "Quantum mechanics",
    "Discrete mathematics",
    "Cell biology",
    "Art history",
    "Compilers",
    "Probability",
    "Electromagnetism",
    "Neuroscience",
    "Accounting",
];

/// Kinds of stuff (each title names one).
const KINDS: &[&str] = &[
    "notes",
    "summary",
    "past exam solutions",
    "slides",
    "flashcards",
    "cheat sheet",
    "lab report",
    "study guide",
];

/// Course prefixes; with [`COURSE_NUMBERS`], 120 courses.
const COURSE_PREFIXES: &[&str] = &["CS", "MATH", "PHYS", "CHEM", "ECON", "BIO", "LAW", "HIST"];

/// Course numbers.
const COURSE_NUMBERS: &[u32] = &[
    101, 102, 110, 201, 202, 210, 220, 301, 310, 320, 330, 401, 410, 420, 499,
];

/// The searches clients send, in turn: whole words, prefixes, two words.
const QUERIES: &[&str] = &[
    "linear",
    "lin alg",
    "thermo",
    "exam solutions",
    "organic chem",
    "calculus week",
    "statistics 12",
    "operating sys",
    "genetics flash",
    "micro",
    "quantum",
    "cheat",
    "data struct notes",
    "probability",
    "art hist slides",
];

/// How the run is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// Stuff in the catalogue.
    pub stuff: usize,
    /// Connected clients, each with one request in flight.
    pub clients: usize,
    /// Unmeasured time before each measured phase.
    pub warmup: Duration,
    /// Measured time of each phase.
    pub duration: Duration,
}

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// The payloads sent, in turn.
    pub payloads: Vec<String>,
    /// Acks in the measured window.
    pub acks: u64,
    /// Acks that were not `{data}`.
    pub errors: u64,
    /// Acks per second.
    pub acks_per_sec: f64,
    /// Emit → ack.
    pub latency: Latency,
    /// Items per answered page, on average (a search that finds nothing measures nothing).
    pub mean_items: f64,
    /// ms-stuff CPU per request, µs.
    pub stuff_us_per_request: f64,
    /// Router CPU per request, µs.
    pub router_us_per_request: f64,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// Stuff in the catalogue.
    pub stuff: usize,
    /// Seconds the seeding took.
    pub seed_seconds: f64,
    /// Stuff created per second while seeding.
    pub seeded_per_sec: f64,
    /// Connected clients (one request in flight each).
    pub clients: usize,
    /// `stuff:list {q}`.
    pub search: PhaseResult,
    /// `stuff:list {course, sort: "priceAsc"}`.
    pub course_by_price: PhaseResult,
}

/// The `stuff:create` payload of stuff number `i`: deterministic, varied titles, courses,
/// prices and descriptions.
fn stuff_payload(i: usize) -> String {
    let subject = SUBJECTS[i % SUBJECTS.len()];
    let kind = KINDS[(i / SUBJECTS.len()) % KINDS.len()];
    let course = format!(
        "{} {}",
        COURSE_PREFIXES[(i / 7) % COURSE_PREFIXES.len()],
        COURSE_NUMBERS[(i / 3) % COURSE_NUMBERS.len()]
    );
    let week = 1 + i % 14;
    let price = 50 + (i * 37) % 5000;
    serde_json::json!({
        "title": format!("{subject} {kind}, week {week}"),
        "description": format!("{kind} for {subject}: lectures {week} to {}, worked examples", week + 1),
        "course": course,
        "priceCents": price,
        "secretNote": "bench",
    })
    .to_string()
}

/// The course + price payloads clients send, in turn.
fn course_payloads() -> Vec<String> {
    COURSE_PREFIXES
        .iter()
        .zip(COURSE_NUMBERS.iter().cycle().skip(3))
        .map(|(p, n)| {
            serde_json::json!({"course": format!("{p} {n}"), "sort": "priceAsc"}).to_string()
        })
        .collect()
}

/// Sends `total` events over one socket, `inflight` at a time, payload `make(k)` for the
/// k-th; counts refusals. Pushes and pings are handled on the way.
async fn pipeline(
    ws: &mut Ws,
    event: &str,
    inflight: usize,
    total: usize,
    make: impl Fn(usize) -> String,
    deadline: Instant,
) -> anyhow::Result<u64> {
    // The k-th event (0-based) goes out with ack id k + 1.
    let frame = |k: usize| Message::text(packet::encode_event_json(k as u64 + 1, event, &make(k)));
    let (mut sent, mut answered, mut refused) = (0usize, 0usize, 0u64);
    while sent < total.min(inflight) {
        ws.send(frame(sent)).await?;
        sent += 1;
    }
    while answered < total {
        let msg = match timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("router closed a seeding socket"),
            Err(_) => anyhow::bail!("seeding did not finish before the deadline"),
        };
        let Message::Text(text) = msg else { continue };
        match sio::classify(text.as_str()) {
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Ack { status, .. } => {
                answered += 1;
                if status != 200 {
                    refused += 1;
                }
                if sent < total {
                    ws.send(frame(sent)).await?;
                    sent += 1;
                }
            }
            Frame::Closed => anyhow::bail!("router closed a seeding socket"),
            _ => {}
        }
    }
    Ok(refused)
}

/// Creates `n` stuff over `sellers` sockets; seconds taken.
async fn seed(sys: &System, n: usize, deadline: Instant) -> anyhow::Result<f64> {
    const SELLERS: usize = 8;
    const IN_FLIGHT: usize = 16;
    let sockets = connect_signed_in(
        sys,
        SELLERS,
        "bench-search-seller",
        SELLERS,
        Duration::from_secs(30),
    )
    .await?;
    let started = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(s, mut ws)| {
            let share = n / SELLERS + usize::from(s < n % SELLERS);
            tokio::spawn(async move {
                let refused = pipeline(
                    &mut ws,
                    "stuff:create",
                    IN_FLIGHT,
                    share,
                    |k| stuff_payload(k * SELLERS + s),
                    deadline,
                )
                .await;
                let _ = ws.close(None).await;
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for t in tasks {
        refused += t.await??;
    }
    anyhow::ensure!(refused == 0, "{refused} stuff:create refused while seeding");
    Ok(started.elapsed().as_secs_f64())
}

/// Per-client tallies of a measured phase.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    acks: u64,
    errors: u64,
    items: u64,
}

/// The number of items in a `stuff:list` ack body (`[{"data":{"items":[…]…}}]`).
fn items_in(body: &str) -> u64 {
    sio::ack_data(body)
        .ok()
        .and_then(|d| d.get("items").and_then(|i| i.as_array()).map(Vec::len))
        .unwrap_or(0) as u64
}

/// One client: one request in flight, payloads in turn from `start`.
async fn client_loop(
    mut ws: Ws,
    payloads: Arc<Vec<String>>,
    start: usize,
    phase_flag: Arc<AtomicU8>,
    hard_stop: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut k = start;
    let mut next = |ws_id: u64| {
        k += 1;
        Message::text(packet::encode_event_json(
            ws_id,
            "stuff:list",
            &payloads[k % payloads.len()],
        ))
    };
    let mut id = 1;
    let mut t0 = Instant::now();
    ws.send(next(id)).await?;
    loop {
        let msg = match timeout_at(hard_stop, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("router closed a client socket"),
            Err(_) => break,
        };
        let Message::Text(text) = msg else { continue };
        match sio::classify(text.as_str()) {
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Ack {
                id: got,
                status,
                body,
            } if got == id => {
                let p = phase(&phase_flag);
                if p == MEASURE {
                    tally.acks += 1;
                    tally.latencies_us.push(t0.elapsed().as_micros() as u64);
                    if status == 200 {
                        tally.items += items_in(body);
                    } else {
                        tally.errors += 1;
                    }
                }
                if p == STOP {
                    break;
                }
                id += 1;
                t0 = Instant::now();
                ws.send(next(id)).await?;
            }
            Frame::Closed => anyhow::bail!("router closed a client socket"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(tally)
}

/// Measures one phase: `clients` sockets sending `payloads` in turn.
async fn measure(
    sys: &System,
    p: Params,
    name: &str,
    payloads: Vec<String>,
    deadline: Instant,
) -> anyhow::Result<PhaseResult> {
    let label = format!("bench-search-{name}");
    let sockets = connect_signed_in(sys, p.clients, &label, 16, Duration::from_secs(30)).await?;
    let shared = Arc::new(payloads);
    let phase_flag = Arc::new(AtomicU8::new(WARMUP));
    let hard_stop =
        (Instant::now() + p.warmup + p.duration + Duration::from_secs(15)).min(deadline);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, ws)| {
            tokio::spawn(client_loop(
                ws,
                shared.clone(),
                i * 7,
                phase_flag.clone(),
                hard_stop,
            ))
        })
        .collect();
    let cpu = measured_window(&sys.tracked, &phase_flag, p.warmup, p.duration).await;
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await??;
        all.acks += t.acks;
        all.errors += t.errors;
        all.items += t.items;
        all.latencies_us.extend(t.latencies_us);
    }
    let answered = all.acks.saturating_sub(all.errors).max(1);
    let per_req = |who: &str| {
        if all.acks == 0 {
            0.0
        } else {
            round3(cpu.of(who) * 1e6 / all.acks as f64)
        }
    };
    let result = PhaseResult {
        payloads: shared.as_ref().clone(),
        acks: all.acks,
        errors: all.errors,
        acks_per_sec: round3(all.acks as f64 / cpu.wall_seconds.max(1e-9)),
        latency: Latency::from_micros(&mut all.latencies_us),
        mean_items: round3(all.items as f64 / answered as f64),
        stuff_us_per_request: per_req("stuff"),
        router_us_per_request: per_req("router"),
    };
    println!(
        "  {name}: {:.0} acks/s ({} acks, {} errors, {:.1} items a page); {}; ms-stuff {:.0} us, router {:.0} us per request",
        result.acks_per_sec,
        result.acks,
        result.errors,
        result.mean_items,
        result.latency.line(),
        result.stuff_us_per_request,
        result.router_us_per_request
    );
    Ok(result)
}

/// Seeds the catalogue, then measures both phases.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<SearchResult> {
    println!(
        "search: {} stuff, then {} clients x 1 in flight of stuff:list (warmup {:?}, measure {:?} per phase)",
        p.stuff, p.clients, p.warmup, p.duration
    );
    let seed_seconds = seed(sys, p.stuff, deadline).await?;
    println!(
        "  seeded {} stuff in {seed_seconds:.1}s ({:.0}/s)",
        p.stuff,
        p.stuff as f64 / seed_seconds.max(1e-9)
    );
    let queries = QUERIES
        .iter()
        .map(|q| serde_json::json!({ "q": q }).to_string())
        .collect();
    let search = measure(sys, p, "q", queries, deadline).await?;
    let course_by_price = measure(sys, p, "course+priceAsc", course_payloads(), deadline).await?;
    Ok(SearchResult {
        stuff: p.stuff,
        seed_seconds: round3(seed_seconds),
        seeded_per_sec: round3(p.stuff as f64 / seed_seconds.max(1e-9)),
        clients: p.clients,
        search,
        course_by_price,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_stuff_is_valid_and_varied() {
        let a: serde_json::Value = serde_json::from_str(&stuff_payload(0)).unwrap();
        let b: serde_json::Value = serde_json::from_str(&stuff_payload(161)).unwrap();
        assert_ne!(a["title"], b["title"]);
        for i in 0..2000 {
            let v: serde_json::Value = serde_json::from_str(&stuff_payload(i)).unwrap();
            let price = v["priceCents"].as_u64().unwrap();
            assert!((50..=5050).contains(&price));
            assert!(v["title"].as_str().unwrap().len() <= 120);
            assert!(v["course"].as_str().unwrap().len() <= 20);
        }
        assert_eq!(course_payloads().len(), COURSE_PREFIXES.len());
    }
}
