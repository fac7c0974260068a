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

/// Compares the results with the targets of issue 8.
pub fn targets(results: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let rtt = arr(results, "rtt");
    // The throughput point is the one with the most requests in flight.
    let main = rtt
        .iter()
        .max_by(|a, b| {
            f(a, &["in_flight"])
                .unwrap_or(0.0)
                .total_cmp(&f(b, &["in_flight"]).unwrap_or(0.0))
        })
        .copied();
    for r in &rtt {
        let n = f(r, &["in_flight"]).unwrap_or(0.0);
        let ratio = match (f(r, &["acks_per_sec"]), ceiling_at(results, n, "lapin")) {
            (Some(a), Some(c)) if c > 0.0 => Some((a / c * 1000.0).round() / 1000.0),
            _ => None,
        };
        out.push(check(
            &format!("relay / raw lapin ceiling at {n} in flight"),
            ">= 0.75",
            ratio,
            "ratio",
            |x| x >= 0.75,
        ));
    }
    if let Some(m) = main {
        out.push(check(
            &format!(
                "router CPU per relayed request ({} in flight)",
                f(m, &["in_flight"]).unwrap_or(0.0)
            ),
            "<= 15 us",
            f(m, &["router_us_per_request"]),
            "us",
            |x| x <= 15.0,
        ));
    }
    for fan in arr(results, "fanout") {
        let v = f(fan, &["viewers"]).unwrap_or(0.0);
        if v == 1000.0 {
            out.push(check(
                "fan-out to 1,000 viewers: last viewer p99 (ms-stuff's write -> last viewer)",
                "< 20 ms",
                f(fan, &["event_last_viewer", "p99_ms"]),
                "ms",
                |x| x < 20.0,
            ));
            out.push(check(
                "fan-out to 1,000 viewers: last viewer p99 (buyer's emit -> last viewer)",
                "(reported)",
                f(fan, &["e2e_last_viewer", "p99_ms"]),
                "ms",
                |_| true,
            ));
        } else {
            out.push(check(
                &format!("fan-out to {v} viewers: last viewer p99 (write -> last viewer)"),
                "measured",
                f(fan, &["event_last_viewer", "p99_ms"]),
                "ms",
                |_| true,
            ));
        }
        out.push(check(
            &format!("fan-out to {v} viewers: missed notifications"),
            "0",
            f(fan, &["missed"]),
            "",
            |x| x == 0.0,
        ));
    }
    if let Some(idle) = results.get("idle") {
        for step in arr(idle, "steps") {
            let n = f(step, &["connections"]).unwrap_or(0.0);
            let goal = if n == 10_000.0 {
                "<= 4096 B"
            } else {
                "(reported)"
            };
            out.push(check(
                &format!("router RSS per idle connection at {n}"),
                goal,
                f(step, &["bytes_per_connection"]),
                "bytes",
                |x| n != 10_000.0 || x <= 4096.0,
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
            name: format!("{n} in flight"),
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
            name: format!("relay@{}", f(r, &["in_flight"]).unwrap_or(0.0)),
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
            name: format!("fan {} last", f(fan, &["viewers"]).unwrap_or(0.0)),
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
    if let Some(idle) = results.get("idle") {
        for step in arr(idle, "steps") {
            memory.push(Group {
                name: format!("{} conns", f(step, &["connections"]).unwrap_or(0.0)),
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
            target: Some((20.0, "fan-out target 20 ms".into())),
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
    println!("targets (issues 8 and 17):");
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
