//! The whole system as child processes of the test, on one broker prefix and one data dir.

use crate::bins;
use crate::stores::Stores;
use ms_testkit::TestEnv;
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The four backend services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// ms-user.
    User,
    /// ms-stuff.
    Stuff,
    /// ms-order.
    Order,
    /// ms-payment.
    Payment,
}

impl Backend {
    /// Every backend, in start order.
    pub const ALL: [Backend; 4] = [
        Backend::User,
        Backend::Stuff,
        Backend::Order,
        Backend::Payment,
    ];

    /// `user`, `stuff`, …
    pub fn name(self) -> &'static str {
        match self {
            Backend::User => "user",
            Backend::Stuff => "stuff",
            Backend::Order => "order",
            Backend::Payment => "payment",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Backend::User => "ms-user",
            Backend::Stuff => "ms-stuff",
            Backend::Order => "ms-order",
            Backend::Payment => "ms-payment",
        }
    }
}

/// How the system is configured.
#[derive(Debug, Clone)]
pub struct ProcOptions {
    /// `ORDER_HOLD_SECONDS`.
    pub hold_seconds: u64,
    /// `RPC_TIMEOUT_MS` for every process.
    pub rpc_timeout_ms: u64,
    /// `MAX_RETRIES`.
    pub max_retries: u32,
    /// `PAYMENT_ORDER_WAIT_MS`.
    pub payment_order_wait_ms: u64,
    /// `ADMIN_EMAILS`.
    pub admin_emails: String,
    /// `SIGNIN_MAX_ATTEMPTS` (router).
    pub signin_max_attempts: u32,
    /// `SIGNUP_MAX_ATTEMPTS` (router).
    pub signup_max_attempts: u32,
    /// `MAX_CONNECTIONS` (router), when set.
    pub max_connections: Option<usize>,
    /// `MAX_PAYLOAD_BYTES` (router), when set.
    pub max_payload_bytes: Option<usize>,
    /// Anything else, for every process.
    pub extra_env: Vec<(String, String)>,
    /// Another broker (a cluster's node list) instead of the test machine's RabbitMQ.
    pub amqp_url: Option<String>,
}

impl Default for ProcOptions {
    fn default() -> Self {
        Self {
            hold_seconds: 600,
            rpc_timeout_ms: 2000,
            max_retries: 5,
            payment_order_wait_ms: 2000,
            admin_emails: String::new(),
            signin_max_attempts: 1000,
            signup_max_attempts: 1000,
            max_connections: None,
            max_payload_bytes: None,
            extra_env: Vec::new(),
            amqp_url: None,
        }
    }
}

/// One child process and how to start it again.
struct Proc {
    name: String,
    bin: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// The variable naming the port it serves `/readyz` on (`PORT`, `HEALTH_PORT`).
    port_var: &'static str,
    /// That port.
    port: u16,
}

impl Proc {
    fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/readyz", self.port)
    }

    /// Moves to another port (the old one was taken meanwhile).
    fn new_port(&mut self) -> anyhow::Result<()> {
        self.port = free_port()?;
        let (var, port) = (self.port_var, self.port.to_string());
        self.env.retain(|(k, _)| k != var);
        self.env.push((var.to_owned(), port));
        Ok(())
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let err = log.try_clone()?;
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .envs(std::env::vars().filter(|(k, _)| k == "PATH" || k == "HOME"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        self.child = Some(cmd.spawn()?);
        Ok(())
    }

    /// SIGKILL and reap.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

/// A port that is free now, below the kernel's ephemeral range (so no outgoing connection
/// takes it before the process binds it), picked at random so parallel tests rarely meet.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let n = u16::try_from(uuid::Uuid::new_v4().as_u128() % 12_000).unwrap_or(0);
        let port = 20_000 + n;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port found")
}

/// The running system. Dropping it kills every process, deletes the test's queues and,
/// unless the test is failing (then the logs are kept and their tails printed), its files.
pub struct ProcSystem {
    /// The broker slice of this test.
    pub env: TestEnv,
    /// The router's base URL.
    pub url: String,
    /// `DATA_DIR` (SQLite files and process logs).
    pub dir: PathBuf,
    /// The settings it runs with.
    pub opts: ProcOptions,
    procs: HashMap<String, Proc>,
    http: reqwest::Client,
}

/// How long a process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

impl ProcSystem {
    /// Builds the binaries if needed, starts every process and waits until all are ready.
    pub async fn start(opts: ProcOptions) -> anyhow::Result<Self> {
        tokio::task::spawn_blocking(bins::ensure_built).await??;
        let mut env = TestEnv::new();
        if let Some(url) = &opts.amqp_url {
            env.common.amqp_url = url.clone();
        }
        let dir = std::env::temp_dir().join(format!(
            "stuffmart-chaos-{}",
            env.prefix.trim_end_matches('.')
        ));
        std::fs::create_dir_all(&dir)?;
        let mut sys = Self {
            env,
            url: String::new(),
            dir,
            opts,
            procs: HashMap::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        // From here on, `Drop` cleans up whatever was started.
        let common = sys.common_env();
        for b in Backend::ALL {
            let mut env = common.clone();
            if b == Backend::Order {
                env.push((
                    "ORDER_HOLD_SECONDS".into(),
                    sys.opts.hold_seconds.to_string(),
                ));
            }
            if b == Backend::Payment {
                env.push((
                    "PAYMENT_ORDER_WAIT_MS".into(),
                    sys.opts.payment_order_wait_ms.to_string(),
                ));
            }
            if b == Backend::User {
                env.push(("ADMIN_EMAILS".into(), sys.opts.admin_emails.clone()));
            }
            sys.add(b.name(), b.binary(), env, "HEALTH_PORT")?;
        }
        // Socket allowances out of the way of tests about something else (first, so
        // `extra_env` can set them).
        let mut env: Vec<(String, String)> = [
            ("SOCKET_RATE", "1000000"),
            ("SOCKET_BURST", "1000000"),
            ("SOCKET_WRITE_RATE", "1000000"),
            ("SOCKET_WRITE_BURST", "1000000"),
            ("SOCKET_MAX_IN_FLIGHT", "100000"),
            ("MAX_CONNECTIONS_PER_ADDRESS", "1000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        env.extend(common);
        env.push(("BIND_ADDR".into(), "127.0.0.1".into()));
        env.push((
            "SIGNIN_MAX_ATTEMPTS".into(),
            sys.opts.signin_max_attempts.to_string(),
        ));
        env.push((
            "SIGNUP_MAX_ATTEMPTS".into(),
            sys.opts.signup_max_attempts.to_string(),
        ));
        if let Some(n) = sys.opts.max_connections {
            env.push(("MAX_CONNECTIONS".into(), n.to_string()));
        }
        if let Some(n) = sys.opts.max_payload_bytes {
            env.push(("MAX_PAYLOAD_BYTES".into(), n.to_string()));
        }
        sys.add("router", "ms-router", env, "PORT")?;
        for name in ["user", "stuff", "order", "payment", "router"] {
            sys.wait_ready(name).await?;
        }
        let port = sys.proc_mut("router")?.port;
        sys.url = format!("http://127.0.0.1:{port}");
        Ok(sys)
    }

    fn common_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("AMQP_URL".into(), self.env.common.amqp_url.clone()),
            ("AMQP_PREFIX".into(), self.env.prefix.clone()),
            ("DATA_DIR".into(), self.dir.display().to_string()),
            ("RETRY_DELAY_MS".into(), "100".into()),
            // Backoff doubles from 100 ms; capped low so dead-lettering stays quick here.
            ("RETRY_MAX_DELAY_MS".into(), "400".into()),
            ("MAX_RETRIES".into(), self.opts.max_retries.to_string()),
            (
                "RPC_TIMEOUT_MS".into(),
                self.opts.rpc_timeout_ms.to_string(),
            ),
            ("PREFETCH".into(), "32".into()),
            (
                "RUST_LOG".into(),
                std::env::var("CHAOS_LOG").unwrap_or_else(|_| {
                    "warn,lapin=error,socketioxide=error,engineioxide=error".into()
                }),
            ),
        ];
        v.extend(self.opts.extra_env.iter().cloned());
        v
    }

    fn add(
        &mut self,
        name: &str,
        bin: &str,
        env: Vec<(String, String)>,
        port_var: &'static str,
    ) -> anyhow::Result<()> {
        let mut p = Proc {
            name: name.into(),
            bin: bins::binary(bin)?,
            env,
            log: self.dir.join(format!("{name}.log")),
            child: None,
            port_var,
            port: 0,
        };
        p.new_port()?;
        p.spawn()?;
        self.procs.insert(name.into(), p);
        Ok(())
    }

    fn proc_mut(&mut self, name: &str) -> anyhow::Result<&mut Proc> {
        self.procs
            .get_mut(name)
            .ok_or_else(|| anyhow::anyhow!("no process {name}"))
    }

    /// Waits until `name` answers `/readyz` with 200 (connected to RabbitMQ). A process
    /// that could not bind its port (taken meanwhile by someone else) gets another one.
    pub async fn wait_ready(&mut self, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut port_changes = 0;
        loop {
            let url = {
                let p = self.proc_mut(name)?;
                if !p.running() {
                    let log = tail(&p.log, 30);
                    if log.contains("Address already in use") && port_changes < 3 {
                        port_changes += 1;
                        p.new_port()?;
                        p.spawn()?;
                        continue;
                    }
                    anyhow::bail!("{name} exited while starting; log tail:\n{log}");
                }
                p.ready_url()
            };
            if let Ok(r) = self.http.get(&url).send().await
                && r.status().as_u16() == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("{name} not ready after {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True when `/readyz` of `name` says 200 right now.
    pub async fn is_ready(&self, name: &str) -> bool {
        let Some(p) = self.procs.get(name) else {
            return false;
        };
        matches!(self.http.get(p.ready_url()).send().await, Ok(r) if r.status().as_u16() == 200)
    }

    /// `kill -9` one process.
    pub fn kill9(&mut self, name: &str) -> anyhow::Result<()> {
        self.proc_mut(name)?.kill9();
        Ok(())
    }

    /// Starts a killed process again (same environment, same data) and waits until ready.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let p = self.proc_mut(name)?;
        p.kill9();
        p.spawn()?;
        self.wait_ready(name).await
    }

    /// Names of processes that are not running (crashed or killed and not restarted).
    pub fn not_running(&mut self) -> Vec<String> {
        let mut v: Vec<String> = self
            .procs
            .values_mut()
            .filter_map(|p| (!p.running()).then(|| p.name.clone()))
            .collect();
        v.sort();
        v
    }

    /// Log lines of every process that mention a panic.
    pub fn panics(&self) -> Vec<String> {
        let mut found = Vec::new();
        for p in self.procs.values() {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            for line in text.lines().filter(|l| l.contains("panicked")) {
                found.push(format!("{}: {line}", p.name));
            }
        }
        found
    }

    /// The whole log of one process.
    pub fn log(&self, name: &str) -> String {
        self.procs
            .get(name)
            .map(|p| std::fs::read_to_string(&p.log).unwrap_or_default())
            .unwrap_or_default()
    }

    /// The SQLite file of a backend.
    pub fn db_path(&self, b: Backend) -> PathBuf {
        self.dir.join(format!("{}.db", b.name()))
    }

    /// Read-only handles on every backend's SQLite file.
    pub async fn stores(&self) -> anyhow::Result<Stores> {
        Stores::open(&self.dir).await
    }

    /// The hold queues ms-order declared (for teardown and inspection).
    pub fn hold_queues(&self) -> Vec<String> {
        vec![
            format!(
                "{}order.hold.{}ms",
                self.env.prefix,
                self.opts.hold_seconds * 1000
            ),
            format!("{}order.expired", self.env.prefix),
        ]
    }

    /// Every queue whose messages mean "not handled yet or failed": events, retries, dead
    /// letters and the expired-hold queue of each backend.
    pub fn work_queues(&self) -> Vec<String> {
        let n = self.env.names();
        let mut v = Vec::new();
        for svc in ms_common::messaging::Service::ALL {
            if svc != ms_common::messaging::Service::User {
                v.push(n.events_queue(svc));
                v.push(n.retry_queue(svc, Duration::from_millis(100)));
            }
            v.push(n.dead_letter_queue(svc));
        }
        let expired = format!("{}order.expired", self.env.prefix);
        v.push(ms_common::messaging::topology::retry_queue_for(
            &expired,
            Duration::from_millis(100),
        ));
        v.push(expired);
        v
    }

    /// Kills everything now (the stores can then be read at rest).
    pub fn kill_all(&mut self) {
        for p in self.procs.values_mut() {
            p.kill9();
        }
    }

    fn cleanup(&mut self) {
        self.kill_all();
        let failing = std::thread::panicking();
        if failing {
            eprintln!(
                "chaos: test failed; logs and databases kept in {}",
                self.dir.display()
            );
            let mut names: Vec<&String> = self.procs.keys().collect();
            names.sort();
            for name in names {
                if let Some(p) = self.procs.get(name) {
                    eprintln!("---- {name} (last lines) ----\n{}", tail(&p.log, 15));
                }
            }
        }
        // Queue teardown needs a runtime; Drop may run inside one, so use a thread of our own.
        let extra = self.hold_queues();
        let env = &self.env;
        std::thread::scope(|s| {
            s.spawn(|| {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async {
                        let _ = tokio::time::timeout(Duration::from_secs(15), env.teardown(&extra))
                            .await;
                    });
                }
            });
        });
        if !failing && std::env::var_os("CHAOS_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for ProcSystem {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
