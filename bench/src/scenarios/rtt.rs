//! `rtt`: C signed-in clients × I requests in flight of `stuff:get` through
//! router → RabbitMQ → ms-stuff (JWT verified, store read) → reply → ack.

use super::{Item, MEASURE, STOP, WARMUP, connect_signed_in, create_stuff, measured_window, phase};
use crate::official::{Client, Node};
use crate::procfs::{CpuReport, round3};
use crate::sio::{self, Frame, Ws};
use crate::stats::Latency;
use crate::system::System;
use futures_util::{SinkExt, StreamExt};
use ms_testkit::packet;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU8;
use std::time::Duration;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// How the load is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// Connected clients.
    pub clients: usize,
    /// Requests each client keeps in flight.
    pub inflight: usize,
    /// Unmeasured time first.
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
}

/// What one `rtt` point measured.
#[derive(Debug, Clone, Serialize)]
pub struct RttResult {
    /// Which load generator.
    pub client: Client,
    /// Connected clients.
    pub clients: usize,
    /// Requests in flight per client.
    pub inflight_per_client: usize,
    /// Requests in flight in total (clients × per client).
    pub in_flight: usize,
    /// Acks received in the measured window.
    pub acks: u64,
    /// Acks that were not `{data}` (errors, 503s).
    pub errors: u64,
    /// Acks per second in the measured window.
    pub acks_per_sec: f64,
    /// Round-trip latency from emit to ack.
    pub latency: Latency,
    /// CPU seconds per process in the measured window.
    pub cpu: CpuReport,
    /// Router CPU time per relayed request, µs.
    pub router_us_per_request: f64,
    /// ms-stuff CPU time per request, µs.
    pub stuff_us_per_request: f64,
    /// Broker CPU time per request, µs.
    pub broker_us_per_request: f64,
    /// Load generator CPU time per request, µs.
    pub loadgen_us_per_request: f64,
}

/// Per-client tallies (the official client reports the same fields).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tally {
    latencies_us: Vec<u64>,
    acks: u64,
    errors: u64,
    /// Requests the official client gave up on (its ack timeout).
    #[serde(default)]
    timeouts: u64,
}

async fn client_loop(
    mut ws: Ws,
    inflight: usize,
    payload: Arc<str>,
    phase_flag: Arc<AtomicU8>,
    hard_stop: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut sent: HashMap<u64, Instant> = HashMap::with_capacity(inflight * 2);
    let mut next_id: u64 = 1;
    let send = |id: u64| Message::text(packet::encode_event_json(id, "stuff:get", &payload));
    for _ in 0..inflight {
        sent.insert(next_id, Instant::now());
        ws.send(send(next_id)).await?;
        next_id += 1;
    }
    while !sent.is_empty() {
        let msg = match timeout_at(hard_stop, ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => anyhow::bail!("router closed a client socket"),
            Err(_) => break,
        };
        let Message::Text(text) = msg else { continue };
        match sio::classify(text.as_str()) {
            Frame::Ping => ws.send(Message::text("3")).await?,
            Frame::Ack { id, status, .. } => {
                let now = Instant::now();
                let p = phase(&phase_flag);
                if let Some(t0) = sent.remove(&id)
                    && p == MEASURE
                {
                    tally.acks += 1;
                    tally
                        .latencies_us
                        .push(now.duration_since(t0).as_micros() as u64);
                    if status != 200 {
                        tally.errors += 1;
                    }
                }
                if p != STOP {
                    sent.insert(next_id, Instant::now());
                    ws.send(send(next_id)).await?;
                    next_id += 1;
                }
            }
            Frame::Closed => anyhow::bail!("router closed a client socket"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(tally)
}

/// Runs one point with `client`: creates an item, connects the clients, warms up, measures.
pub async fn run(
    sys: &System,
    p: Params,
    client: Client,
    deadline: Instant,
) -> anyhow::Result<RttResult> {
    println!(
        "rtt ({client:?} client): {} clients x {} in flight = {} requests in flight of stuff:get (warmup {:?}, measure {:?})",
        p.clients,
        p.inflight,
        p.clients * p.inflight,
        p.warmup,
        p.duration
    );
    let mut seller = sio::connect(
        sys.port,
        sio::source_for(0),
        Some(&sys.token("bench-rtt-seller")?),
        Instant::now() + Duration::from_secs(10),
    )
    .await?;
    let item = create_stuff(&mut seller, 1, "rtt item").await?;
    let (cpu, mut all) = match client {
        Client::Rust => load_rust(sys, p, &item, deadline).await?,
        Client::Official => load_official(sys, p, &item, deadline).await?,
    };
    drop(seller);
    let secs = cpu.wall_seconds.max(1e-9);
    let per_req = |names: &[&str]| {
        if all.acks == 0 {
            0.0
        } else {
            let cpu: f64 = names.iter().map(|n| cpu.of(n)).sum();
            round3(cpu * 1e6 / all.acks as f64)
        }
    };
    let result = RttResult {
        client,
        clients: p.clients,
        inflight_per_client: p.inflight,
        in_flight: p.clients * p.inflight,
        acks: all.acks,
        errors: all.errors,
        acks_per_sec: round3(all.acks as f64 / secs),
        latency: Latency::from_micros(&mut all.latencies_us),
        router_us_per_request: per_req(&["router"]),
        stuff_us_per_request: per_req(&["stuff"]),
        broker_us_per_request: per_req(&["rabbitmq"]),
        loadgen_us_per_request: per_req(&["loadgen", "node"]),
        cpu,
    };
    println!(
        "  {:.0} acks/s ({} acks, {} errors); {}",
        result.acks_per_sec,
        result.acks,
        result.errors,
        result.latency.line()
    );
    result.cpu.print("rtt");
    println!(
        "  CPU per request: router {:.1} us, ms-stuff {:.1} us, broker {:.1} us, load generator {:.1} us",
        result.router_us_per_request,
        result.stuff_us_per_request,
        result.broker_us_per_request,
        result.loadgen_us_per_request
    );
    Ok(result)
}

/// The lean Rust client: one task per socket, phases through a shared flag.
async fn load_rust(
    sys: &System,
    p: Params,
    item: &Item,
    deadline: Instant,
) -> anyhow::Result<(CpuReport, Tally)> {
    let sockets =
        connect_signed_in(sys, p.clients, "bench-rtt", 64, Duration::from_secs(30)).await?;
    let payload: Arc<str> = serde_json::json!({ "id": item.id }).to_string().into();
    let phase_flag = Arc::new(AtomicU8::new(WARMUP));
    let hard_stop =
        (Instant::now() + p.warmup + p.duration + Duration::from_secs(15)).min(deadline);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| {
            tokio::spawn(client_loop(
                ws,
                p.inflight,
                payload.clone(),
                phase_flag.clone(),
                hard_stop,
            ))
        })
        .collect();
    let cpu = measured_window(&sys.tracked, &phase_flag, p.warmup, p.duration).await;
    let mut all = Tally::default();
    for t in tasks {
        let tally = t.await??;
        all.acks += tally.acks;
        all.errors += tally.errors;
        all.latencies_us.extend(tally.latencies_us);
    }
    Ok((cpu, all))
}

/// The official client in a Node.js process: it keeps the requests in flight; the bench
/// tells it when the measured window starts and ends, and samples CPU around it.
async fn load_official(
    sys: &System,
    p: Params,
    item: &Item,
    deadline: Instant,
) -> anyhow::Result<(CpuReport, Tally)> {
    let tokens: Vec<String> = (0..p.clients)
        .map(|i| sys.token(&format!("bench-rtt-{i}")))
        .collect::<anyhow::Result<_>>()?;
    let config = serde_json::json!({
        "mode": "rtt", "port": sys.port, "tokens": tokens, "inflight": p.inflight,
        "stuffId": item.id, "timeoutMs": 10_000,
    });
    let (mut node, _) = Node::start(config, Instant::now() + Duration::from_secs(60)).await?;
    let mut tracked = sys.tracked.clone();
    if let Some(pid) = node.pid() {
        tracked.add("node", pid);
    }
    tokio::time::sleep(p.warmup).await;
    let before = tracked.sample();
    node.send("measure").await?;
    tokio::time::sleep(p.duration).await;
    node.send("stop").await?;
    let after = tracked.sample();
    let until = (Instant::now() + Duration::from_secs(15)).min(deadline);
    let mut tally: Tally = node.recv(until).await?;
    // A request the client gave up on counts as an answered error, as a 503 would.
    tally.errors += tally.timeouts;
    tally.acks += tally.timeouts;
    node.exit().await;
    Ok((CpuReport::between(&before, &after), tally))
}
