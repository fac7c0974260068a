//! The end of a run: comparison with the targets, the JSON file and the chart.

use crate::chart::{self, Group, Panel};
use serde_json::{Value, json};
use std::path::Path;

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_f64()
}

/// The load generator a result was measured with (`rust` or `official`).
fn client(v: &Value) -> &str {
    v.get("client").and_then(Value::as_str).unwrap_or("rust")
}

/// The idle results, one per client (older result files hold one object).
fn idle_runs(results: &Value) -> Vec<&Value> {
    match results.get("idle") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

fn arr<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The lapin ceiling at `in_flight`, round trips per second.
fn ceiling_at(results: &Value, in_flight: f64, variant: &str) -> Option<f64> {
    arr(results, "ceiling")
        .into_iter()
        .find(|c| {
            f(c, &["in_flight"]) == Some(in_flight)
                && c.get("variant").and_then(Value::as_str) == Some(variant)
        })
        .and_then(|c| f(c, &["per_sec"]))
}

fn check(
    name: &str,
    target: &str,
    measured: Option<f64>,
    unit: &str,
    ok: impl Fn(f64) -> bool,
) -> Value {
    let pass = measured.map(&ok);
    json!({"target": name, "goal": target, "measured": measured, "unit": unit, "pass": pass})
}

/// Compares the results with the targets of issue 18 (and issue 17's flood and sign-up).
pub fn targets(results: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for r in arr(results, "rtt") {
        let who = client(r);
        let n = f(r, &["in_flight"]).unwrap_or(0.0);
        let ratio = match (f(r, &["acks_per_sec"]), ceiling_at(results, n, "lapin")) {
            (Some(a), Some(c)) if c > 0.0 => Some((a / c * 1000.0).round() / 1000.0),
            _ => None,
        };
        out.push(check(
            &format!("{who} client: relay / raw lapin ceiling at {n} in flight"),
            ">= 0.75",
            ratio,
            "ratio",
            |x| x >= 0.75,
        ));
        // CPU per request is judged where the router batches: many requests in flight.
        if n >= 64.0 {
            out.push(check(
                &format!("{who} client: router CPU per relayed stuff:get ({n} in flight)"),
                "<= 15 us",
                f(r, &["router_us_per_request"]),
                "us",
                |x| x <= 15.0,
            ));
            out.push(check(
                &format!("{who} client: ms-stuff CPU per stuff:get ({n} in flight)"),
                "<= 25 us",
                f(r, &["stuff_us_per_request"]),
                "us",
                |x| x <= 25.0,
            ));
        }
        if who == "official"
            && f(r, &["clients"]) == Some(50.0)
            && f(r, &["inflight_per_client"]) == Some(4.0)
        {
            out.push(check(
                "official client: acks/s with 50 clients x 4 in flight",
                ">= 12000",
                f(r, &["acks_per_sec"]),
                "acks/s",
                |x| x >= 12_000.0,
            ));
        }
    }
    for fan in arr(results, "fanout") {
        let who = client(fan);
        let v = f(fan, &["viewers"]).unwrap_or(0.0);
        if v == 1000.0 {
            out.push(check(
                &format!("{who} client: fan-out to 1,000 viewers, emit -> last viewer p99"),
                if who == "official" {
                    "<= 15 ms"
                } else {
                    "(reported)"
                },
                f(fan, &["e2e_last_viewer", "p99_ms"]),
                "ms",
                |x| who != "official" || x <= 15.0,
            ));
        }
        if v == 10_000.0 {
            out.push(check(
                &format!("{who} client: fan-out to 10,000 viewers, write -> last viewer p99"),
                "<= 60 ms",
                f(fan, &["event_last_viewer", "p99_ms"]),
                "ms",
                |x| x <= 60.0,
            ));
        }
        out.push(check(
            &format!("{who} client: fan-out to {v} viewers, missed notifications"),
            "0",
            f(fan, &["missed"]),
            "",
            |x| x == 0.0,
        ));
    }
    for idle in idle_runs(results) {
        let who = client(idle);
        let steps = arr(idle, "steps");
        let largest = steps.len().saturating_sub(1);
        for (i, step) in steps.into_iter().enumerate() {
            let n = f(step, &["connections"]).unwrap_or(0.0);
            let judged = i == largest;
            out.push(check(
                &format!("{who} client: router RSS per idle connection at {n}"),
                if judged { "<= 4096 B" } else { "(reported)" },
                f(step, &["bytes_per_connection"]),
                "bytes",
                |x| !judged || x <= 4096.0,
            ));
        }
    }
    if let Some(files) = results.get("files") {
        let n = f(files, &["concurrent_uploads"]).unwrap_or(0.0);
        let mib = f(files, &["file_bytes"]).unwrap_or(0.0) / 1_048_576.0;
        out.push(check(
            &format!("router RSS growth per upload in flight ({n} concurrent {mib} MiB uploads)"),
            "<= 8 MiB",
            f(files, &["peak_growth_per_upload_mib"]),
            "MiB",
            |x| x <= 8.0,
        ));
    }
    for fl in arr(results, "flood") {
        if fl.get("limits").and_then(Value::as_str) == Some("routerDefaults") {
            out.push(check(
                "flood (issue 17): victim p99 while one socket floods, default allowances",
                "< 250 ms",
                f(fl, &["victim_under_flood", "p99_ms"]),
                "ms",
                |x| x < 250.0,
            ));
            out.push(check(
                "flood (issue 17): victim errors, default allowances",
                "0",
                f(fl, &["victim_errors"]),
                "",
                |x| x == 0.0,
            ));
        } else {
            out.push(check(
                "flood (issue 17): victim p99 while one socket floods, allowances off",
                "(reported)",
                f(fl, &["victim_under_flood", "p99_ms"]),
                "ms",
                |_| true,
            ));
        }
    }
    if let Some(s) = results.get("signup") {
        let n = f(s, &["signups"]).unwrap_or(0.0);
        out.push(check(
            &format!("signup (issue 17): ms-user peak RSS through {n} concurrent sign-ups"),
            "< 300 MiB",
            f(s, &["user_rss_peak_kib"]).map(|k| (k / 102.4).round() / 10.0),
            "MiB",
            |x| x < 300.0,
        ));
        out.push(check(
            &format!("signup (issue 17): 503 answers of {n} concurrent sign-ups"),
            "0",
            f(s, &["unavailable"]),
            "",
            |x| x == 0.0,
        ));
    }
    if let Some(c) = results.get("contention") {
        let ok = c
            .get("winners_per_round")
            .and_then(Value::as_array)
            .is_some_and(|w| w.iter().all(|x| x.as_u64() == Some(1)));
        out.push(json!({"target": "contention: exactly one winner per round", "goal": "1", "measured": c.get("winners_per_round"), "unit": "", "pass": ok}));
    }
    out
}

fn panels(results: &Value) -> Vec<Panel> {
    let mut throughput = Vec::new();
    for r in arr(results, "rtt") {
        let n = f(r, &["in_flight"]).unwrap_or(0.0);
        throughput.push(Group {
            name: format!("{} {n} in flight", client(r)),
            values: vec![
                f(r, &["acks_per_sec"]).unwrap_or(0.0),
                ceiling_at(results, n, "lapin").unwrap_or(0.0),
                ceiling_at(results, n, "lib").unwrap_or(0.0),
            ],
        });
    }
    let mut latency = Vec::new();
    let pct = |v: &Value, key: &str| -> Vec<f64> {
        ["p50_ms", "p90_ms", "p99_ms"]
            .iter()
            .map(|p| f(v, &[key, p]).unwrap_or(0.0))
            .collect()
    };
    for r in arr(results, "rtt") {
        latency.push(Group {
            name: format!("{}@{}", client(r), f(r, &["in_flight"]).unwrap_or(0.0)),
            values: pct(r, "latency"),
        });
    }
    for c in arr(results, "ceiling") {
        if c.get("variant").and_then(Value::as_str) == Some("lapin") {
            latency.push(Group {
                name: format!("lapin@{}", f(c, &["in_flight"]).unwrap_or(0.0)),
                values: pct(c, "latency"),
            });
        }
    }
    for fan in arr(results, "fanout") {
        latency.push(Group {
            name: format!(
                "{} fan {}",
                client(fan),
                f(fan, &["viewers"]).unwrap_or(0.0)
            ),
            values: pct(fan, "event_last_viewer"),
        });
    }
    if let Some(c) = results.get("contention") {
        latency.push(Group {
            name: "409s".into(),
            values: pct(c, "conflict_latency"),
        });
    }
    let mut memory = Vec::new();
    for idle in idle_runs(results) {
        for step in arr(idle, "steps") {
            memory.push(Group {
                name: format!(
                    "{} {}",
                    client(idle),
                    f(step, &["connections"]).unwrap_or(0.0)
                ),
                values: vec![
                    f(step, &["bytes_per_connection"]).unwrap_or(0.0),
                    f(step, &["marginal_bytes_per_connection"]).unwrap_or(0.0),
                ],
            });
        }
    }
    vec![
        Panel {
            title: "Throughput (requests/s)".into(),
            y_label: "round trips per second".into(),
            series: vec![
                "relay (Socket.IO)".into(),
                "lapin ceiling".into(),
                "ms-common RPC".into(),
            ],
            groups: throughput,
            target: None,
        },
        Panel {
            title: "Latency percentiles (ms)".into(),
            y_label: "milliseconds".into(),
            series: vec!["p50".into(), "p90".into(), "p99".into()],
            groups: latency,
            target: Some((15.0, "fan-out target 15 ms".into())),
        },
        Panel {
            title: "Router RSS per idle connection".into(),
            y_label: "bytes".into(),
            series: vec!["average".into(), "marginal".into()],
            groups: memory,
            target: Some((4096.0, "target 4 KiB".into())),
        },
    ]
}

/// Adds the target comparison, writes `bench-<time>.json/.png` and `latest.json/.png`
/// under `dir`, and prints the comparison.
pub fn finish(dir: &Path, mut results: Value) -> anyhow::Result<()> {
    let checks = targets(&results);
    println!();
    println!("targets (issues 17 and 18):");
    for c in &checks {
        let pass = match c.get("pass").and_then(Value::as_bool) {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a ",
        };
        println!(
            "  [{pass}] {}: {} {} (goal {})",
            c.get("target").and_then(Value::as_str).unwrap_or(""),
            c.get("measured").map(|m| m.to_string()).unwrap_or_default(),
            c.get("unit").and_then(Value::as_str).unwrap_or(""),
            c.get("goal").and_then(Value::as_str).unwrap_or("")
        );
    }
    results["targets"] = json!(checks);
    std::fs::create_dir_all(dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let text = serde_json::to_string_pretty(&results)?;
    let json_path = dir.join(format!("bench-{stamp}.json"));
    std::fs::write(&json_path, &text)?;
    std::fs::write(dir.join("latest.json"), &text)?;
    let png_path = dir.join(format!("bench-{stamp}.png"));
    let title = format!(
        "StuffMart benchmarks {stamp} ({} CPUs, RabbitMQ {})",
        f(&results, &["machine", "cpus"]).unwrap_or(0.0),
        results["machine"]["rabbitmq"].as_str().unwrap_or("?")
    );
    match chart::draw(&png_path, &title, &panels(&results)) {
        Ok(with_text) => {
            let _ = std::fs::copy(&png_path, dir.join("latest.png"));
            if !with_text {
                println!("note: no TrueType font found (set BENCH_FONT); the chart has no text");
            }
            println!("chart:   {}", png_path.display());
        }
        Err(e) => println!("chart not drawn: {e:#}"),
    }
    println!("results: {}", json_path.display());
    Ok(())
}
