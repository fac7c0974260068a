//! `files`: a large file through the router. Upload throughput (multipart `POST`, streamed
//! into the local object store while hashed), download throughput (a signed link from
//! `delivery:get`, streamed back and checked byte for byte by SHA-256), and the router's
//! resident memory while many such uploads run at once: it must grow by a few MiB per
//! upload in flight, not by the file's size.

use crate::procfs::{round3, rss_kib};
use crate::scenarios::create_stuff;
use crate::sio::{self, Ws};
use crate::system::System;
use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Chunk size the load generator sends the body in (what a browser's fetch roughly does).
const SEND_CHUNK: usize = 256 * 1024;
/// Files one stuff may carry (the contract's limit).
const FILES_PER_STUFF: usize = ms_common::contract::limits::FILES_MAX;
/// How often the router's RSS is read during the concurrent uploads.
const RSS_EVERY: Duration = Duration::from_millis(10);

/// The run's sizes.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Bytes per file.
    pub file_bytes: usize,
    /// Sequential uploads (and downloads) timed one by one.
    pub repeats: usize,
    /// Uploads started at once for the memory measure.
    pub concurrent: usize,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct FilesResult {
    /// Bytes per file.
    pub file_bytes: u64,
    /// Each sequential upload's throughput, MiB/s (request start → 201).
    pub upload_mib_per_sec: Vec<f64>,
    /// Each sequential download's throughput, MiB/s (request start → last byte).
    pub download_mib_per_sec: Vec<f64>,
    /// Uploads run at once.
    pub concurrent_uploads: usize,
    /// Seconds until the last of them got its 201.
    pub concurrent_seconds: f64,
    /// Their aggregate throughput, MiB/s.
    pub concurrent_mib_per_sec: f64,
    /// Router `VmRSS` just before they started, KiB.
    pub router_rss_before_kib: u64,
    /// Highest router `VmRSS` while they ran, KiB.
    pub router_rss_peak_kib: u64,
    /// (peak − before) / uploads, MiB: memory per upload in flight.
    pub peak_growth_per_upload_mib: f64,
    /// Router `VmRSS` a few seconds after they finished, KiB.
    pub router_rss_after_kib: u64,
}

fn mib_per_sec(bytes: usize, d: Duration) -> f64 {
    round3(bytes as f64 / 1_048_576.0 / d.as_secs_f64().max(1e-9))
}

/// Deterministic, incompressible-looking content.
fn content(n: usize) -> Bytes {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    Bytes::from(v)
}

/// `POST /api/stuff/{id}/files` with `data` as the `file` part, sent in chunks.
async fn upload(
    http: &reqwest::Client,
    port: u16,
    token: &str,
    stuff: &str,
    data: Bytes,
) -> anyhow::Result<Duration> {
    let len = data.len();
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..len)
        .step_by(SEND_CHUNK)
        .map(|at| Ok(data.slice(at..(at + SEND_CHUNK).min(len))))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let part = reqwest::multipart::Part::stream_with_length(body, len as u64)
        .file_name("bench.bin")
        .mime_str("application/octet-stream")?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let started = std::time::Instant::now();
    let r = http
        .post(format!("http://127.0.0.1:{port}/api/stuff/{stuff}/files"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    anyhow::ensure!(status.as_u16() == 201, "upload gave {status}: {text}");
    Ok(started.elapsed())
}

/// The seller's download links of `stuff`, in file order.
async fn links(ws: &mut Ws, ack: &mut u64, stuff: &str) -> anyhow::Result<Vec<String>> {
    *ack += 1;
    let payload = serde_json::json!({ "stuffId": stuff }).to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = sio::request(ws, *ack, "delivery:get", &payload, deadline).await?;
    anyhow::ensure!(status == 200, "delivery:get gave {status}: {body}");
    let data = sio::ack_data(&body)?;
    data.get("files")
        .and_then(|f| f.as_array())
        .context("delivery without files")?
        .iter()
        .map(|f| {
            f.get("url")
                .and_then(|u| u.as_str())
                .map(str::to_owned)
                .context("file without url")
        })
        .collect()
}

/// Downloads `path` and checks its SHA-256; the time to the last byte.
async fn download(
    http: &reqwest::Client,
    port: u16,
    path: &str,
    expected: &[u8],
) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    let r = http
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 200, "download gave {}", r.status());
    let mut hasher = Sha256::new();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    let took = started.elapsed();
    anyhow::ensure!(
        hasher.finalize()[..] == *expected,
        "downloaded bytes differ"
    );
    Ok(took)
}

/// Runs the scenario against a started system.
pub async fn run(sys: &System, p: Params, deadline: Instant) -> anyhow::Result<FilesResult> {
    println!(
        "files: {} MiB per file, {} sequential, {} concurrent",
        p.file_bytes / 1_048_576,
        p.repeats,
        p.concurrent
    );
    let router = sys.router_pid().context("no router pid")?;
    let token = sys.token("bench-seller")?;
    let mut ws = sio::connect(
        sys.port,
        sio::source_for(0),
        Some(&token),
        Instant::now() + Duration::from_secs(10),
    )
    .await?;
    let mut ack = 0;
    let stuffs_needed = 1 + p.concurrent.div_ceil(FILES_PER_STUFF);
    let mut stuffs = Vec::new();
    for i in 0..stuffs_needed {
        ack += 1;
        stuffs.push(
            create_stuff(&mut ws, ack, &format!("bench files {i}"))
                .await?
                .id,
        );
    }
    let data = content(p.file_bytes);
    let digest = Sha256::digest(&data).to_vec();
    let http = reqwest::Client::new();

    let mut upload_mib_per_sec = Vec::new();
    for _ in 0..p.repeats.min(FILES_PER_STUFF) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "global deadline reached in files"
        );
        let took = upload(&http, sys.port, &token, &stuffs[0], data.clone()).await?;
        upload_mib_per_sec.push(mib_per_sec(p.file_bytes, took));
    }
    println!("  upload MiB/s: {upload_mib_per_sec:?}");
    let mut download_mib_per_sec = Vec::new();
    for url in links(&mut ws, &mut ack, &stuffs[0]).await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "global deadline reached in files"
        );
        let took = download(&http, sys.port, &url, &digest).await?;
        download_mib_per_sec.push(mib_per_sec(p.file_bytes, took));
    }
    println!("  download MiB/s: {download_mib_per_sec:?}");

    // Let the allocator settle, then the concurrent uploads with the RSS sampled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_kib(router).unwrap_or(0);
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(router) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_EVERY).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let uploads = (0..p.concurrent).map(|i| {
        let stuff = stuffs[1 + i / FILES_PER_STUFF].clone();
        let (http, token, data) = (http.clone(), token.clone(), data.clone());
        let port = sys.port;
        tokio::spawn(async move { upload(&http, port, &token, &stuff, data).await })
    });
    let outcomes = futures_util::future::join_all(uploads).await;
    let concurrent_took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    for o in outcomes {
        o??;
    }
    let peak = peak.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(router).unwrap_or(0);
    let per_upload = peak.saturating_sub(before) as f64 / 1024.0 / p.concurrent.max(1) as f64;
    println!(
        "  {} concurrent uploads in {:.2} s; router RSS {} → peak {} KiB ({:.2} MiB per upload), {} KiB after",
        p.concurrent,
        concurrent_took.as_secs_f64(),
        before,
        peak,
        per_upload,
        after
    );
    Ok(FilesResult {
        file_bytes: p.file_bytes as u64,
        upload_mib_per_sec,
        download_mib_per_sec,
        concurrent_uploads: p.concurrent,
        concurrent_seconds: round3(concurrent_took.as_secs_f64()),
        concurrent_mib_per_sec: mib_per_sec(p.file_bytes * p.concurrent, concurrent_took),
        router_rss_before_kib: before,
        router_rss_peak_kib: peak,
        peak_growth_per_upload_mib: round3(per_upload),
        router_rss_after_kib: after,
    })
}
