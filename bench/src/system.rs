//! Starts StuffMart from the release binaries as child processes (one per service plus
//! the router) under a unique `AMQP_PREFIX` and a temporary `DATA_DIR`, mints access
//! tokens with ms-user's own signing key, and tears everything down again.

use crate::procfs::Tracked;
use crate::sio;
use anyhow::{Context, bail};
use ms_common::auth::Claims;
use ms_common::config::StorageConfig;
use ms_common::events::Role;
use ms_common::messaging::{Broker, Names};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// The services, in start order; the router comes last.
pub const SERVICES: &[&str] = &["ms-user", "ms-stuff", "ms-order", "ms-payment"];

/// How the system is started.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// Where `ms-router`, `ms-user`, … are (normally `target/release`).
    pub bin_dir: PathBuf,
    /// `AMQP_URL` for every process.
    pub amqp_url: String,
    /// `RUST_LOG` for the children (`None`: the binaries' default, `info`).
    pub rust_log: Option<String>,
}

/// The router's socket allowances (issue 17) during a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SocketLimits {
    /// Out of the way: the load scenarios send far more than one client may (thousands of
    /// requests a second per socket, 1,250 sockets per loopback address).
    Off,
    /// The router's defaults (`SOCKET_RATE`, `SOCKET_BURST`, … unset).
    RouterDefaults,
}

/// What [`SocketLimits::Off`] sets.
const SOCKET_LIMITS_OFF: &[(&str, &str)] = &[
    ("SOCKET_RATE", "1000000"),
    ("SOCKET_BURST", "1000000"),
    ("SOCKET_WRITE_RATE", "1000000"),
    ("SOCKET_WRITE_BURST", "1000000"),
    ("SOCKET_MAX_IN_FLIGHT", "1000000"),
    ("MAX_CONNECTIONS_PER_ADDRESS", "1000000"),
];

/// A running system.
pub struct System {
    /// The broker prefix of this run, e.g. `bench3f9a1c2e.`.
    pub prefix: String,
    /// The router's port on 127.0.0.1.
    pub port: u16,
    /// Processes whose CPU time is accounted (router, services, broker, load generator).
    pub tracked: Tracked,
    data_dir: PathBuf,
    amqp_url: String,
    children: Vec<(String, Child)>,
    keyring: ms_user::tokens::Keyring,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn spawn(
    opts: &SystemOptions,
    name: &str,
    envs: &[(&str, String)],
    logs: &Path,
) -> anyhow::Result<Child> {
    let bin = opts.bin_dir.join(name);
    anyhow::ensure!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p {name}`",
        bin.display()
    );
    let out = std::fs::File::create(logs.join(format!("{name}.log")))?;
    let err = out.try_clone()?;
    // Profiling hook: BENCH_ROUTER_WRAPPER="valgrind --tool=callgrind" (or "env K=V")
    // runs the router under that command; the wrapper must exec it in the same process.
    let wrapper: Vec<String> = if name == "ms-router" {
        std::env::var("BENCH_ROUTER_WRAPPER")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(&bin);
            c
        }
        None => Command::new(&bin),
    };
    cmd.envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    cmd.spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

impl System {
    /// Starts every service and the router with the socket allowances off, and waits until
    /// a signed-in socket gets a `stuff:list` answer (router, ms-user's keys and ms-stuff
    /// all up).
    pub async fn start(opts: &SystemOptions, deadline: Instant) -> anyhow::Result<Self> {
        Self::start_with(opts, deadline, SocketLimits::Off).await
    }

    /// [`Self::start`] with the given socket allowances.
    pub async fn start_with(
        opts: &SystemOptions,
        deadline: Instant,
        limits: SocketLimits,
    ) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("bench{}.", &id[..8]);
        let data_dir = std::env::temp_dir().join(format!("stuffmart-bench-{}", &id[..8]));
        std::fs::create_dir_all(&data_dir)?;
        let port = free_port()?;
        let mut envs: Vec<(&str, String)> = vec![
            ("AMQP_URL", opts.amqp_url.clone()),
            ("AMQP_PREFIX", prefix.clone()),
            ("DATA_DIR", data_dir.display().to_string()),
            ("PORT", port.to_string()),
            ("BIND_ADDR", "127.0.0.1".into()),
            ("MAX_CONNECTIONS", "1000000".into()),
            ("SIGNIN_MAX_ATTEMPTS", "1000000".into()),
            ("SIGNUP_MAX_ATTEMPTS", "1000000".into()),
        ];
        if let Some(l) = &opts.rust_log {
            envs.push(("RUST_LOG", l.clone()));
        }
        if limits == SocketLimits::Off {
            envs.extend(SOCKET_LIMITS_OFF.iter().map(|(k, v)| (*k, (*v).to_owned())));
        }
        let mut tracked = Tracked::default();
        tracked.add("loadgen", std::process::id());
        if let Some(pid) = crate::procfs::broker_pid() {
            tracked.add("rabbitmq", pid);
        }
        let mut children = Vec::new();
        for name in SERVICES.iter().chain(["ms-router"].iter()) {
            let child = spawn(opts, name, &envs, &data_dir)?;
            if let Some(pid) = child.id() {
                tracked.add(name.trim_start_matches("ms-"), pid);
            }
            children.push(((*name).to_owned(), child));
        }
        let mut system = Self {
            prefix,
            port,
            tracked,
            data_dir: data_dir.clone(),
            amqp_url: opts.amqp_url.clone(),
            children,
            // Replaced right below; a started system always has ms-user's real key.
            keyring: placeholder_keyring()?,
        };
        match system.wait_ready(deadline).await {
            Ok(()) => Ok(system),
            Err(e) => {
                let logs = system.data_dir.display().to_string();
                system.stop_keep_logs().await;
                Err(e.context(format!("system did not start; logs in {logs}")))
            }
        }
    }

    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        let ready_by = (Instant::now() + Duration::from_secs(60)).min(deadline);
        self.keyring = read_keyring(&self.data_dir.join("user.db"), ready_by).await?;
        let token = self.token("bench-probe")?;
        loop {
            self.check_children()?;
            let attempt = async {
                let mut ws = sio::connect(
                    self.port,
                    sio::source_for(0),
                    Some(&token),
                    Instant::now() + Duration::from_secs(5),
                )
                .await?;
                let (status, body) = sio::request(
                    &mut ws,
                    0,
                    "stuff:list",
                    "{}",
                    Instant::now() + Duration::from_secs(5),
                )
                .await?;
                anyhow::ensure!(status == 200, "stuff:list gave {status}: {body}");
                anyhow::Ok(())
            };
            match attempt.await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > ready_by => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Fails when a child has exited.
    pub fn check_children(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{name} exited: {status}");
            }
        }
        Ok(())
    }

    /// A valid access token for a made-up user, signed with ms-user's real key.
    pub fn token(&self, user_id: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        self.keyring.sign(&Claims {
            sub: user_id.into(),
            email: format!("{user_id}@bench.example"),
            role: Role::User,
            iat: now,
            exp: now + 3600,
        })
    }

    /// The router's pid.
    pub fn router_pid(&self) -> Option<u32> {
        self.tracked.pid("router")
    }

    /// Stops the children (SIGTERM, then SIGKILL after 5 s), deletes the run's queues and
    /// exchanges and its data directory.
    pub async fn stop(self) {
        let dir = self.data_dir.clone();
        self.stop_keep_logs().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn stop_keep_logs(mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
        }
        for (name, child) in self.children.iter_mut().rev() {
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                eprintln!("  {name} did not stop on SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        teardown(&self.amqp_url, &self.prefix).await;
    }
}

/// Deletes every queue and exchange of a prefix (including ms-order's hold queues).
pub async fn teardown(amqp_url: &str, prefix: &str) {
    let names = Names::new(prefix.to_owned());
    let hold = ms_order::hold::HoldTopology {
        names: names.clone(),
        hold: Duration::from_secs(900),
        retry: ms_common::config::CommonConfig::for_tests(prefix).retry_policy(),
    };
    let b = Broker::new(amqp_url, &format!("{prefix}bench-teardown"));
    let work = async {
        if let Ok(ch) = b.channel().await {
            ms_common::messaging::topology::teardown(
                &ch,
                &names,
                &[hold.hold_queue(), hold.expired_queue()],
            )
            .await;
        }
        b.close().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(20), work).await;
}

/// Reads ms-user's signing keys from its SQLite file once ms-user has created them.
async fn read_keyring(path: &Path, until: Instant) -> anyhow::Result<ms_user::tokens::Keyring> {
    loop {
        if path.exists() {
            let attempt = async {
                let store =
                    ms_user::store::open(&StorageConfig::SqliteFile(path.to_owned())).await?;
                let rows = store.signing_keys().await?;
                ms_user::tokens::Keyring::from_rows(&rows)
            };
            if let Ok(Some(ring)) = attempt.await {
                return Ok(ring);
            }
        }
        if Instant::now() > until {
            bail!("ms-user created no signing key in {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A throw-away key ring used only until ms-user's real one is read.
fn placeholder_keyring() -> anyhow::Result<ms_user::tokens::Keyring> {
    ms_user::tokens::Keyring::from_rows(&[ms_user::tokens::generate_key()])?
        .context("no placeholder key")
}
