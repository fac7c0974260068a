//! What `/proc` says about processes: CPU time, resident memory, the broker's pid, the
//! machine, and the open-file limit.

use serde::Serialize;
use std::collections::BTreeMap;

/// Clock ticks per second of `utime`/`stime` in `/proc/<pid>/stat` (100 on Linux/x86_64).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far; `None` when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of the full line, utime 14 and stime 15 → indices 11, 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

/// Resident memory of a process in KiB (`VmRSS`), `None` when it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The pid of the RabbitMQ node (`beam.smp` running `rabbit boot`), if it runs here.
pub fn broker_pid() -> Option<u32> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains("beam.smp") && text.contains("rabbit boot") {
            return Some(pid);
        }
    }
    None
}

/// Busy and total CPU seconds of the whole machine so far (from `/proc/stat`).
pub fn machine_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((
        total.saturating_sub(idle) as f64 / TICKS_PER_SECOND,
        total as f64 / TICKS_PER_SECOND,
    ))
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A set of named processes whose CPU time is sampled together.
#[derive(Debug, Clone, Default)]
pub struct Tracked {
    procs: Vec<(String, u32)>,
}

impl Tracked {
    /// Adds a process under a display name (processes under one name count together).
    pub fn add(&mut self, name: &str, pid: u32) {
        self.procs.push((name.to_owned(), pid));
    }

    /// The pid registered under `name`.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.iter().find(|(n, _)| n == name).map(|(_, p)| *p)
    }

    /// Samples every process and the machine now.
    pub fn sample(&self) -> Sample {
        let mut cpu = BTreeMap::new();
        for (n, p) in &self.procs {
            *cpu.entry(n.clone()).or_insert(0.0) += cpu_seconds(*p).unwrap_or(0.0);
        }
        Sample {
            at: std::time::Instant::now(),
            cpu,
            machine: machine_cpu_seconds().unwrap_or((0.0, 0.0)),
        }
    }
}

/// CPU counters at one instant.
#[derive(Debug, Clone)]
pub struct Sample {
    at: std::time::Instant,
    cpu: BTreeMap<String, f64>,
    machine: (f64, f64),
}

/// CPU used between two samples.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// Wall-clock seconds between the samples.
    pub wall_seconds: f64,
    /// CPU seconds per tracked process (user + system).
    pub seconds: BTreeMap<String, f64>,
    /// CPU seconds the whole machine was busy.
    pub machine_busy_seconds: f64,
    /// Busy CPU seconds of processes we did not start (other builds and tests): the load.
    pub other_seconds: f64,
    /// Machine capacity in CPU seconds over the window (cores × wall).
    pub capacity_seconds: f64,
}

impl CpuReport {
    /// The difference `after - before`.
    pub fn between(before: &Sample, after: &Sample) -> Self {
        let seconds: BTreeMap<String, f64> = after
            .cpu
            .iter()
            .map(|(n, a)| {
                let b = before.cpu.get(n).copied().unwrap_or(0.0);
                (n.clone(), round3((a - b).max(0.0)))
            })
            .collect();
        let ours: f64 = seconds.values().sum();
        let busy = (after.machine.0 - before.machine.0).max(0.0);
        Self {
            wall_seconds: round3(after.at.duration_since(before.at).as_secs_f64()),
            machine_busy_seconds: round3(busy),
            other_seconds: round3((busy - ours).max(0.0)),
            capacity_seconds: round3((after.machine.1 - before.machine.1).max(0.0)),
            seconds,
        }
    }

    /// CPU seconds of one process in this window.
    pub fn of(&self, name: &str) -> f64 {
        self.seconds.get(name).copied().unwrap_or(0.0)
    }

    /// Human-readable lines.
    pub fn print(&self, label: &str) {
        let per: Vec<String> = self
            .seconds
            .iter()
            .map(|(n, s)| format!("{n} {s:.2}s"))
            .collect();
        println!(
            "  [{label}] CPU over {:.1}s wall: {}; others on the machine {:.2}s (machine busy {:.2}s of {:.2}s)",
            self.wall_seconds,
            per.join(", "),
            self.other_seconds,
            self.machine_busy_seconds,
            self.capacity_seconds
        );
    }
}

/// Rounds to three decimals (JSON readability).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Raises this process's open-file limit (children inherit it); returns the soft limit now.
pub fn raise_nofile(wanted: u64) -> u64 {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().unwrap_or((1024, 1024));
    if soft >= wanted {
        return soft;
    }
    // As root the hard limit can be raised too; otherwise go as high as it allows.
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return wanted;
    }
    let target = wanted.min(hard);
    if Resource::NOFILE.set(target, hard).is_ok() {
        target
    } else {
        soft
    }
}

/// Facts about the machine for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cpus: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// `uname -sr`-like kernel string.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// RabbitMQ version, from the broker's install path or `rabbitmqctl`.
    pub rabbitmq: String,
    /// 1-minute load average when the run started.
    pub loadavg_at_start: f64,
}

impl Machine {
    /// Reads what it can; unknown parts stay empty.
    pub fn probe() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_default();
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_mib,
            kernel,
            cpu_model,
            rabbitmq: rabbitmq_version(),
            loadavg_at_start: loadavg().unwrap_or(0.0),
        }
    }
}

fn rabbitmq_version() -> String {
    if let Some(pid) = broker_pid()
        && let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline"))
    {
        let text = String::from_utf8_lossy(&cmdline);
        if let Some(i) = text.find("rabbitmq_server-") {
            let v: String = text[i + "rabbitmq_server-".len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            if !v.is_empty() {
                return v;
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/usr/lib/rabbitmq/lib") {
        for e in dir.flatten() {
            if let Some(v) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("rabbitmq_server-"))
            {
                return v.to_owned();
            }
        }
    }
    std::process::Command::new("rabbitmqctl")
        .args(["version"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
