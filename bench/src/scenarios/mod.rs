//! The scenarios and what they share: phases of a closed-loop run and a few requests
//! every scenario needs (create an item, wait until ms-order knows it).

pub mod ceiling;
pub mod contention;
pub mod fanout;
pub mod files;
pub mod flood;
pub mod idle;
pub mod rtt;
pub mod search;
pub mod signup;

use crate::procfs::{CpuReport, Tracked};
use crate::sio::{self, Ws};
use anyhow::{Context, bail};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Requests are sent and answered, but not counted yet.
pub const WARMUP: u8 = 0;
/// Requests answered now are counted.
pub const MEASURE: u8 = 1;
/// No new requests; outstanding ones are drained.
pub const STOP: u8 = 2;

/// Reads the phase.
pub fn phase(p: &AtomicU8) -> u8 {
    p.load(Ordering::Relaxed)
}

/// Drives a closed-loop run's phases on `flag` (`warmup` unmeasured, `duration` measured,
/// then stop) and returns the CPU each tracked process used in the measured window.
pub async fn measured_window(
    tracked: &Tracked,
    flag: &AtomicU8,
    warmup: Duration,
    duration: Duration,
) -> CpuReport {
    tokio::time::sleep(warmup).await;
    let before = tracked.sample();
    flag.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    flag.store(STOP, Ordering::Relaxed);
    let after = tracked.sample();
    CpuReport::between(&before, &after)
}

/// Connects `n` sockets, the i-th signed in as user `{label}-{i}`, `parallel` handshakes
/// at a time, all within `within`.
pub async fn connect_signed_in(
    sys: &crate::system::System,
    n: usize,
    label: &str,
    parallel: usize,
    within: Duration,
) -> anyhow::Result<Vec<Ws>> {
    let tokens: Vec<String> = (0..n)
        .map(|i| sys.token(&format!("{label}-{i}")))
        .collect::<anyhow::Result<_>>()?;
    sio::connect_many(
        sys.port,
        n,
        parallel,
        |i| tokens.get(i).cloned(),
        Instant::now() + within,
    )
    .await
}

/// An item created by the bench's seller: its id and current version.
#[derive(Debug, Clone)]
pub struct Item {
    /// Stuff id.
    pub id: String,
    /// Its version as created.
    pub version: u64,
}

/// Creates an item over `ws` (a seller's socket).
pub async fn create_stuff(ws: &mut Ws, ack_id: u64, title: &str) -> anyhow::Result<Item> {
    let payload = serde_json::json!({"title": title, "priceCents": 1999, "description": "bench", "secretNote": "bench"});
    let (status, body) = sio::request(
        ws,
        ack_id,
        "stuff:create",
        &payload.to_string(),
        Instant::now() + Duration::from_secs(10),
    )
    .await?;
    anyhow::ensure!(status == 200, "stuff:create gave {status}: {body}");
    let data = sio::ack_data(&body)?;
    Ok(Item {
        id: data
            .get("id")
            .and_then(|v| v.as_str())
            .context("stuff without id")?
            .to_owned(),
        version: data.get("version").and_then(|v| v.as_u64()).unwrap_or(1),
    })
}

/// Waits until ms-order has replicated `stuff_id`: the seller's own `order:create` is then
/// refused with 403 (before that it is a 404). Nothing is written either way.
pub async fn wait_replicated(
    seller: &mut Ws,
    next_ack: &mut u64,
    stuff_id: &str,
) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(10);
    let payload = serde_json::json!({ "stuffId": stuff_id }).to_string();
    loop {
        *next_ack += 1;
        let (status, body) = sio::request(
            seller,
            *next_ack,
            "order:create",
            &payload,
            Instant::now() + Duration::from_secs(5),
        )
        .await?;
        match status {
            403 => return Ok(()),
            404 if Instant::now() < until => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => bail!("waiting for ms-order to know {stuff_id}: {status} {body}"),
        }
    }
}
