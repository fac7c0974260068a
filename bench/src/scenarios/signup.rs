//! `signup`: a burst of N concurrent sign-ups from one client (issue 17: 200 of them once
//! drove ms-user to 2.5 GB and 113 answers of 503). Counts the answers by status (201,
//! 429 and 503 expected at most), times the burst, and samples ms-user's RSS from procfs
//! every 10 ms for its peak. The router's sign-up throttle is off in the bench (its
//! `SIGNUP_MAX_ATTEMPTS` is raised) so that the burst reaches ms-user: this measures
//! argon2's semaphore (`ARGON2_MAX_CONCURRENT`), not the per-address throttle.

use crate::procfs::{round3, rss_kib};
use crate::stats::Latency;
use crate::system::System;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Barrier;
use tokio::time::Instant;

/// How often ms-user's RSS is read during the burst.
const RSS_EVERY: Duration = Duration::from_millis(10);

/// How the burst is shaped.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Params {
    /// Sign-ups sent at once (each a distinct e-mail, all from 127.0.0.1).
    pub signups: usize,
}

/// What the burst measured.
#[derive(Debug, Clone, Serialize)]
pub struct SignupResult {
    /// Sign-ups sent at once.
    pub signups: usize,
    /// Answers by HTTP status (0: no answer, a transport error).
    pub statuses: BTreeMap<u16, usize>,
    /// 201 answers.
    pub created: usize,
    /// 429 answers (argon2 busy, or a throttle).
    pub too_many: usize,
    /// 503 answers (no reply within `RPC_TIMEOUT_MS`): the failure issue 17 is about.
    pub unavailable: usize,
    /// From the common start to the last answer, seconds.
    pub seconds: f64,
    /// Latency of every answer.
    pub latency: Latency,
    /// ms-user's RSS before the burst, KiB.
    pub user_rss_before_kib: u64,
    /// ms-user's peak RSS during the burst, KiB.
    pub user_rss_peak_kib: u64,
    /// ms-user's RSS 3 s after the burst, KiB.
    pub user_rss_after_kib: u64,
}

/// Runs the burst; fails only when a request could not be sent at all.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<SignupResult> {
    println!("signup: {} concurrent sign-ups from one client", p.signups);
    anyhow::ensure!(
        Instant::now() < deadline,
        "global deadline reached in signup"
    );
    let user = sys
        .tracked
        .pid("user")
        .context("ms-user's pid is unknown")?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.signups)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("http://127.0.0.1:{}/api/users/signup", sys.port);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let before = rss_kib(user).unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(user) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_EVERY).await;
            }
        })
    };
    let barrier = Arc::new(Barrier::new(p.signups + 1));
    let tasks: Vec<_> = (0..p.signups)
        .map(|i| {
            let (http, url, barrier) = (http.clone(), url.clone(), barrier.clone());
            let body = serde_json::json!({
                "email": format!("burst-{}-{i}@bench.example", &run_id[..8]),
                "password": "password123",
            });
            tokio::spawn(async move {
                barrier.wait().await;
                let t0 = Instant::now();
                let status = match http.post(&url).json(&body).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                (status, t0.elapsed())
            })
        })
        .collect();
    let start = Instant::now();
    barrier.wait().await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut latencies = Vec::new();
    for t in tasks {
        let (status, took) = t.await?;
        *statuses.entry(status).or_default() += 1;
        latencies.push(took.as_micros() as u64);
    }
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak = peak.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(user).unwrap_or(0);
    let count = |s: u16| statuses.get(&s).copied().unwrap_or(0);
    let result = SignupResult {
        signups: p.signups,
        created: count(201),
        too_many: count(429),
        unavailable: count(503),
        statuses: statuses.clone(),
        seconds: round3(seconds),
        latency: Latency::from_micros(&mut latencies),
        user_rss_before_kib: before,
        user_rss_peak_kib: peak,
        user_rss_after_kib: after,
    };
    println!(
        "  statuses: {:?} in {:.2} s",
        result.statuses, result.seconds
    );
    println!("  latency: {}", result.latency.line());
    println!(
        "  ms-user RSS {} → peak {} KiB ({:.1} MiB), {} KiB 3 s after",
        before,
        peak,
        peak as f64 / 1024.0,
        after
    );
    Ok(result)
}
