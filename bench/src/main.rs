//! `bench`: StuffMart's benchmarks. Starts the real release binaries (router and the four
//! services) as child processes on the local RabbitMQ under a unique `AMQP_PREFIX` and a
//! temporary `DATA_DIR`, drives them over Socket.IO/WebSocket, measures a raw broker
//! ceiling in the same run, accounts CPU per process from `/proc`, and writes JSON and a
//! PNG chart. Every scenario prints readable lines and then one JSON line.
//!
//! ```text
//! bench [--scenarios ceiling,rtt,fanout,contention,idle,files,flood,signup,search] [--clients rust,official] [--rtt 50x4,8x8,1x1]
//!       [--warmup S] [--duration S] [--viewers 1000,10000] [--node-procs N] [--rounds N] [--users U]
//!       [--race-rounds N] [--idle 10000,20000] [--file-mib N] [--uploads N]
//!       [--flood-window N] [--signups N] [--stuff N] [--search-clients C] [--deadline S] [--out DIR] [--bin-dir DIR] [--rust-log F] [--quick]
//! ```

mod chart;
mod official;
mod procfs;
mod report;
mod scenarios;
mod sio;
mod stats;
mod system;

use anyhow::{Context, bail};
use scenarios::ceiling::Variant;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use system::{SocketLimits, System, SystemOptions};
use tokio::time::Instant;

/// Command-line settings.
#[derive(Debug, Clone)]
struct Options {
    scenarios: Vec<String>,
    clients: Vec<official::Client>,
    rtt_points: Vec<(usize, usize)>,
    warmup: Duration,
    duration: Duration,
    viewers: Vec<usize>,
    node_procs: usize,
    rounds: usize,
    users: usize,
    race_rounds: usize,
    idle: Vec<usize>,
    file_mib: usize,
    uploads: usize,
    flood_window: usize,
    signups: usize,
    stuff: usize,
    search_clients: usize,
    deadline: Duration,
    out: PathBuf,
    bin_dir: PathBuf,
    rust_log: Option<String>,
}

const ALL: &[&str] = &[
    "ceiling",
    "rtt",
    "fanout",
    "contention",
    "idle",
    "files",
    "flood",
    "signup",
    "search",
];

fn list<T: std::str::FromStr>(s: &str) -> anyhow::Result<Vec<T>> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("bad list element {x:?}"))
        })
        .collect()
}

fn parse_points(s: &str) -> anyhow::Result<Vec<(usize, usize)>> {
    s.split(',')
        .map(|p| {
            let (c, i) = p
                .split_once('x')
                .with_context(|| format!("--rtt point {p:?} is not CxI"))?;
            Ok((c.trim().parse()?, i.trim().parse()?))
        })
        .collect()
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let exe_dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("target/release"));
        let mut o = Self {
            scenarios: ALL.iter().map(|s| (*s).to_owned()).collect(),
            clients: vec![official::Client::Rust, official::Client::Official],
            rtt_points: vec![(50, 4), (8, 8), (1, 1)],
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(15),
            viewers: vec![1000, 10_000],
            node_procs: 2,
            rounds: 40,
            users: 200,
            race_rounds: 5,
            idle: vec![10_000, 20_000],
            file_mib: 50,
            uploads: 20,
            flood_window: 1000,
            signups: 200,
            stuff: 100_000,
            search_clients: 8,
            deadline: Duration::from_secs(1500),
            out: PathBuf::from("bench/results"),
            bin_dir: exe_dir,
            rust_log: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut val = || args.next().with_context(|| format!("{a} needs a value"));
            match a.as_str() {
                "--scenarios" => o.scenarios = list(&val()?)?,
                "--clients" => o.clients = list(&val()?)?,
                "--rtt" => o.rtt_points = parse_points(&val()?)?,
                "--warmup" => o.warmup = Duration::from_secs_f64(val()?.parse()?),
                "--duration" => o.duration = Duration::from_secs_f64(val()?.parse()?),
                "--viewers" => o.viewers = list(&val()?)?,
                "--rounds" => o.rounds = val()?.parse()?,
                "--node-procs" => o.node_procs = val()?.parse()?,
                "--users" => o.users = val()?.parse()?,
                "--race-rounds" => o.race_rounds = val()?.parse()?,
                "--idle" => o.idle = list(&val()?)?,
                "--file-mib" => o.file_mib = val()?.parse()?,
                "--uploads" => o.uploads = val()?.parse()?,
                "--flood-window" => o.flood_window = val()?.parse()?,
                "--signups" => o.signups = val()?.parse()?,
                "--stuff" => o.stuff = val()?.parse()?,
                "--search-clients" => o.search_clients = val()?.parse()?,
                "--deadline" => o.deadline = Duration::from_secs_f64(val()?.parse()?),
                "--out" => o.out = PathBuf::from(val()?),
                "--bin-dir" => o.bin_dir = PathBuf::from(val()?),
                "--rust-log" => o.rust_log = Some(val()?),
                "--quick" => {
                    o.rtt_points = vec![(2, 2)];
                    o.warmup = Duration::from_secs(1);
                    o.duration = Duration::from_secs(3);
                    o.viewers = vec![100];
                    o.rounds = 4;
                    o.users = 20;
                    o.race_rounds = 2;
                    o.idle = vec![500];
                    o.file_mib = 5;
                    o.uploads = 4;
                    o.flood_window = 200;
                    o.signups = 20;
                    o.stuff = 2000;
                    o.search_clients = 2;
                }
                "-h" | "--help" => {
                    println!("{}", include_str!("usage.txt"));
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?} (see --help)"),
            }
        }
        for s in &o.scenarios {
            anyhow::ensure!(ALL.contains(&s.as_str()), "unknown scenario {s:?}");
        }
        // The router's default MAX_FILE_BYTES is 50 MiB.
        anyhow::ensure!(
            (1..=50).contains(&o.file_mib),
            "--file-mib must be between 1 and 50"
        );
        Ok(o)
    }

    fn wants(&self, s: &str) -> bool {
        self.scenarios.iter().any(|x| x == s)
    }
}

/// Prints the one JSON line of a scenario.
fn emit(scenario: &str, value: &serde_json::Value) {
    println!("{}", json!({ "scenario": scenario, "result": value }));
}

async fn run(o: Options, deadline: Instant, nofile: u64) -> anyhow::Result<serde_json::Value> {
    let amqp_url = ms_common::config::env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    let sys_opts = SystemOptions {
        bin_dir: o.bin_dir.clone(),
        amqp_url: amqp_url.clone(),
        rust_log: o.rust_log.clone(),
    };
    let machine = procfs::Machine::probe();
    println!(
        "machine: {} CPUs ({}), {} MiB, {}, RabbitMQ {}, load average {:.2}",
        machine.cpus,
        machine.cpu_model,
        machine.memory_mib,
        machine.kernel,
        machine.rabbitmq,
        machine.loadavg_at_start
    );
    let mut results = json!({
        "startedAt": chrono::Utc::now().to_rfc3339(),
        "machine": machine,
        "options": {
            "scenarios": o.scenarios, "clients": o.clients, "rttPoints": o.rtt_points.iter().map(|(c, i)| format!("{c}x{i}")).collect::<Vec<_>>(),
            "warmupSeconds": o.warmup.as_secs_f64(), "durationSeconds": o.duration.as_secs_f64(),
            "viewers": o.viewers, "nodeProcs": o.node_procs, "rounds": o.rounds, "users": o.users, "raceRounds": o.race_rounds,
            "idle": o.idle, "fileMib": o.file_mib, "uploads": o.uploads, "floodWindow": o.flood_window, "signups": o.signups, "stuff": o.stuff, "searchClients": o.search_clients, "openFileLimit": nofile, "rustLog": o.rust_log,
        },
    });
    let in_flights: Vec<usize> = {
        let mut v: Vec<usize> = o.rtt_points.iter().map(|(c, i)| c * i).collect();
        v.dedup();
        v
    };
    if o.wants("ceiling") {
        let mut out = Vec::new();
        for &n in &in_flights {
            for variant in [Variant::Lapin, Variant::Lib] {
                anyhow::ensure!(Instant::now() < deadline, "global deadline reached");
                let r =
                    scenarios::ceiling::run(&amqp_url, variant, n, o.warmup, o.duration).await?;
                let v = serde_json::to_value(&r)?;
                emit("ceiling", &v);
                out.push(v);
            }
        }
        results["ceiling"] = json!(out);
    }
    if o.wants("rtt") {
        let sys = System::start(&sys_opts, deadline).await?;
        let mut out = Vec::new();
        let mut failure = None;
        let points = o
            .clients
            .iter()
            .flat_map(|&c| o.rtt_points.iter().map(move |&p| (c, p)));
        for (client, (clients, inflight)) in points {
            let p = scenarios::rtt::Params {
                clients,
                inflight,
                warmup: o.warmup,
                duration: o.duration,
            };
            match scenarios::rtt::run(&sys, p, client, deadline).await {
                Ok(r) => {
                    let v = serde_json::to_value(&r)?;
                    emit("rtt", &v);
                    out.push(v);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        sys.stop().await;
        if let Some(e) = failure {
            return Err(e.context("rtt"));
        }
        results["rtt"] = json!(out);
    }
    if o.wants("fanout") {
        let sys = System::start(&sys_opts, deadline).await?;
        let mut out = Vec::new();
        let mut failure = None;
        let sizes = o
            .clients
            .iter()
            .flat_map(|&c| o.viewers.iter().map(move |&v| (c, v)));
        for (client, viewers) in sizes {
            let p = scenarios::fanout::Params {
                viewers,
                rounds: o.rounds,
                round_timeout: Duration::from_secs(5),
                node_procs: o.node_procs,
            };
            match scenarios::fanout::run(&sys, p, client, deadline).await {
                Ok(r) => {
                    let v = serde_json::to_value(&r)?;
                    emit("fanout", &v);
                    out.push(v);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        sys.stop().await;
        if let Some(e) = failure {
            return Err(e.context("fanout"));
        }
        results["fanout"] = json!(out);
    }
    if o.wants("contention") {
        let sys = System::start(&sys_opts, deadline).await?;
        let p = scenarios::contention::Params {
            users: o.users,
            rounds: o.race_rounds,
        };
        let r = scenarios::contention::run(&sys, p, deadline).await;
        sys.stop().await;
        let v = serde_json::to_value(r.context("contention")?)?;
        emit("contention", &v);
        results["contention"] = v;
    }
    if o.wants("idle") {
        let mut ladder = o.idle.clone();
        ladder.sort_unstable();
        let mut out = Vec::new();
        // A fresh router per client: memory the first run freed stays with the allocator.
        for &client in &o.clients {
            let sys = System::start(&sys_opts, deadline).await?;
            let settle = Duration::from_secs(3);
            let r = scenarios::idle::run(&sys, client, &ladder, nofile, settle, deadline).await;
            sys.stop().await;
            let v = serde_json::to_value(r.context("idle")?)?;
            emit("idle", &v);
            out.push(v);
        }
        results["idle"] = json!(out);
    }
    if o.wants("files") {
        let sys = System::start(&sys_opts, deadline).await?;
        let p = scenarios::files::Params {
            file_bytes: o.file_mib * 1_048_576,
            repeats: 3,
            concurrent: o.uploads,
        };
        let r = scenarios::files::run(&sys, p, deadline).await;
        sys.stop().await;
        let v = serde_json::to_value(r.context("files")?)?;
        emit("files", &v);
        results["files"] = v;
    }
    if o.wants("flood") {
        let mut out = Vec::new();
        for limits in [SocketLimits::RouterDefaults, SocketLimits::Off] {
            let sys = System::start_with(&sys_opts, deadline, limits).await?;
            let p = scenarios::flood::Params {
                limits,
                window: o.flood_window,
                duration: o.duration,
                victim_interval: Duration::from_millis(100),
            };
            let r = scenarios::flood::run(&sys, p, deadline).await;
            sys.stop().await;
            let v = serde_json::to_value(r.context("flood")?)?;
            emit("flood", &v);
            out.push(v);
        }
        results["flood"] = json!(out);
    }
    if o.wants("signup") {
        let sys = System::start(&sys_opts, deadline).await?;
        let p = scenarios::signup::Params { signups: o.signups };
        let r = scenarios::signup::run(&sys, p, deadline).await;
        sys.stop().await;
        let v = serde_json::to_value(r.context("signup")?)?;
        emit("signup", &v);
        results["signup"] = v;
    }
    if o.wants("search") {
        let sys = System::start(&sys_opts, deadline).await?;
        let p = scenarios::search::Params {
            stuff: o.stuff,
            clients: o.search_clients,
            warmup: o.warmup,
            duration: o.duration,
        };
        let r = scenarios::search::run(&sys, p, deadline).await;
        sys.stop().await;
        let v = serde_json::to_value(r.context("search")?)?;
        emit("search", &v);
        results["search"] = v;
    }
    Ok(results)
}

fn main() -> std::process::ExitCode {
    let o = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // 10,000+ sockets here and in the router (children inherit the limit).
    let wanted = o
        .idle
        .iter()
        .chain(o.viewers.iter())
        .copied()
        .max()
        .unwrap_or(0) as u64
        + 4096;
    let nofile = procfs::raise_nofile(wanted.max(65_536));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let deadline = Instant::now() + o.deadline;
        let out_dir = o.out.clone();
        // The scenarios stop themselves at the deadline; this is the hard stop behind it
        // (dropping the run kills every child process).
        let hard = o.deadline + Duration::from_secs(60);
        let outcome = tokio::select! {
            r = tokio::time::timeout(hard, run(o, deadline, nofile)) => match r {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("global deadline of {hard:?} reached")),
            },
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        match outcome {
            Ok(results) => match report::finish(&out_dir, results) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bench: could not write results: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("bench FAILED: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    });
    // Don't wait for lingering socket tasks.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}
