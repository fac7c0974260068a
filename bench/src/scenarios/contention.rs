//! `contention`: U signed-in users race `order:create` on one fresh item per round.
//! Exactly one must win; everyone else must get the contract's 409. Anything else fails
//! the run loudly.

use super::{connect_signed_in, create_stuff, wait_replicated};
use crate::procfs::{CpuReport, round3};
use crate::sio::{self, Ws};
use crate::stats::Latency;
use crate::system::System;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::time::Instant;

/// How the race is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// Racing users (one socket each).
    pub users: usize,
    /// Rounds, each on a new item.
    pub rounds: usize,
}

/// What the races measured.
#[derive(Debug, Clone, Serialize)]
pub struct ContentionResult {
    /// Racing users.
    pub users: usize,
    /// Rounds run.
    pub rounds: usize,
    /// Winners per round (each must be 1).
    pub winners_per_round: Vec<usize>,
    /// How many answers of each status, over all rounds.
    pub statuses: BTreeMap<u16, usize>,
    /// Latency of the 409 answers.
    pub conflict_latency: Latency,
    /// Latency of the winning answers.
    pub winner_latency: Latency,
    /// From the common start to the last answer of a round.
    pub round_duration: Latency,
    /// CPU over the races.
    pub cpu: CpuReport,
    /// Router CPU per relayed `order:create`, µs.
    pub router_us_per_request: f64,
}

/// Runs the races; fails unless every round has exactly one winner and only 409s besides.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<ContentionResult> {
    println!(
        "contention: {} users race order:create on one item, {} rounds",
        p.users, p.rounds
    );
    let mut seller = sio::connect(
        sys.port,
        sio::source_for(0),
        Some(&sys.token("bench-race-seller")?),
        Instant::now() + Duration::from_secs(10),
    )
    .await?;
    let mut sockets: Vec<Ws> =
        connect_signed_in(sys, p.users, "bench-racer", 64, Duration::from_secs(60)).await?;
    let mut seller_ack = 0;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut winners_per_round = Vec::new();
    let (mut conflicts, mut wins, mut durations) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_total: Option<CpuReport> = None;
    for round in 0..p.rounds {
        anyhow::ensure!(
            Instant::now() < deadline,
            "global deadline reached in contention"
        );
        seller_ack += 1;
        let item = create_stuff(&mut seller, seller_ack, &format!("race item {round}")).await?;
        wait_replicated(&mut seller, &mut seller_ack, &item.id).await?;
        let payload: Arc<str> = serde_json::json!({ "stuffId": item.id }).to_string().into();
        let ack_ids = round as u64 + 1;
        let barrier = Arc::new(Barrier::new(p.users + 1));
        let before = sys.tracked.sample();
        let tasks: Vec<_> = sockets
            .drain(..)
            .map(|mut ws| {
                let barrier = barrier.clone();
                let payload = payload.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let t0 = Instant::now();
                    let r = sio::request(
                        &mut ws,
                        ack_ids,
                        "order:create",
                        &payload,
                        Instant::now() + Duration::from_secs(20),
                    )
                    .await;
                    (ws, r.map(|(status, _)| status), t0.elapsed())
                })
            })
            .collect();
        let start = Instant::now();
        barrier.wait().await;
        let mut winners = 0;
        for t in tasks {
            let (ws, status, took) = t.await?;
            sockets.push(ws);
            let status = status?;
            *statuses.entry(status).or_default() += 1;
            let us = took.as_micros() as u64;
            match status {
                200 => {
                    winners += 1;
                    wins.push(us);
                }
                409 => conflicts.push(us),
                _ => {}
            }
        }
        durations.push(start.elapsed().as_micros() as u64);
        let after = sys.tracked.sample();
        let cpu = CpuReport::between(&before, &after);
        cpu_total = Some(match cpu_total {
            None => cpu,
            Some(mut acc) => {
                for (k, v) in cpu.seconds {
                    *acc.seconds.entry(k).or_default() += v;
                }
                acc.wall_seconds += cpu.wall_seconds;
                acc.machine_busy_seconds += cpu.machine_busy_seconds;
                acc.other_seconds += cpu.other_seconds;
                acc.capacity_seconds += cpu.capacity_seconds;
                acc
            }
        });
        println!("  round {round}: {winners} winner(s)");
        winners_per_round.push(winners);
    }
    drop(seller);
    drop(sockets);
    let mut cpu = cpu_total.context("no rounds were run")?;
    for v in cpu.seconds.values_mut() {
        *v = round3(*v);
    }
    cpu.wall_seconds = round3(cpu.wall_seconds);
    cpu.machine_busy_seconds = round3(cpu.machine_busy_seconds);
    cpu.other_seconds = round3(cpu.other_seconds);
    cpu.capacity_seconds = round3(cpu.capacity_seconds);
    let requests = (p.users * p.rounds) as f64;
    let result = ContentionResult {
        users: p.users,
        rounds: p.rounds,
        router_us_per_request: round3(cpu.of("router") * 1e6 / requests.max(1.0)),
        winners_per_round,
        statuses,
        conflict_latency: Latency::from_micros(&mut conflicts),
        winner_latency: Latency::from_micros(&mut wins),
        round_duration: Latency::from_micros(&mut durations),
        cpu,
    };
    println!("  statuses: {:?}", result.statuses);
    println!("  409 latency:    {}", result.conflict_latency.line());
    println!("  winner latency: {}", result.winner_latency.line());
    result.cpu.print("contention");
    let bad_rounds = result.winners_per_round.iter().filter(|&&w| w != 1).count();
    let others = result
        .statuses
        .iter()
        .filter(|(s, _)| **s != 200 && **s != 409)
        .map(|(_, n)| n)
        .sum::<usize>();
    anyhow::ensure!(
        bad_rounds == 0 && others == 0,
        "CONTENTION FAILED: winners per round {:?}, statuses {:?} (exactly one 200 and only 409s expected)",
        result.winners_per_round,
        result.statuses
    );
    Ok(result)
}
