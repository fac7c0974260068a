//! Spins up StuffMart in one process for end-to-end tests: ms-user, ms-order (and the
//! other services as they land) and one or more ms-router instances on port 0, all on a
//! real RabbitMQ under a per-test prefix, with in-memory SQLite stores.

use ms_common::messaging::Service;
use ms_common::messaging::permissions::AmqpUser;
use ms_common::shutdown::Shutdown;
use ms_testkit::TestEnv;
use std::time::Duration;

/// A gateway ms-payment charges through instead of the built-in one (a test's slow or
/// counting gateway).
#[derive(Clone)]
pub struct Gateway(pub std::sync::Arc<dyn ms_payment::gateway::PaymentGateway>);

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gateway(..)")
    }
}

/// Which parts to start and how.
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// How many routers (each with its own port and fan-out queue).
    pub routers: usize,
    /// The order hold.
    pub hold: Duration,
    /// Accounts that become admins.
    pub admin_emails: String,
    /// Sign-in attempts allowed per window (rate limit).
    pub signin_max_attempts: u32,
    /// Sign-ups allowed per e-mail and per address per window (rate limit).
    pub signup_max_attempts: u32,
    /// ms-user's argon2 concurrency and wait (default: `UserConfig::for_tests`).
    pub argon2: Option<ms_user::password::Argon2Limits>,
    /// The routers' connect-handler delay (test hook, see `RouterConfig`).
    pub connect_handler_delay: Option<Duration>,
    /// Where the routers keep files (default: a directory of this test under the temp dir).
    pub files: Option<ms_common::files::FilesConfig>,
    /// The routers' orphan sweep: `(every, age)` (default: hourly, hour-old objects).
    pub orphan_sweep: Option<(Duration, Duration)>,
    /// The routers' usual RPC wait (`RPC_TIMEOUT_MS`; default: `CommonConfig::for_tests`).
    pub rpc_timeout: Option<Duration>,
    /// ms-payment's gateway (default: the built-in test gateway).
    pub gateway: Option<Gateway>,
    /// ms-payment's `STRIPE_WEBHOOK_SECRET` (default: none, webhooks refused).
    pub webhook_secret: Option<String>,
    /// The routers' `CURRENCY` (default: `eur`).
    pub currency: Option<ms_common::money::Currency>,
    /// The routers' socket allowances (default: `SocketLimits::generous`, out of the way).
    pub socket: Option<ms_router::allowance::SocketLimits>,
    /// Each service connects as its own AMQP user with the deployment's permissions
    /// (`deploy/rabbitmq/definitions.json` under the test's prefix) instead of guest.
    pub amqp_users: bool,
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            routers: 1,
            hold: Duration::from_secs(600),
            admin_emails: String::new(),
            signin_max_attempts: 50,
            signup_max_attempts: 1000,
            argon2: None,
            connect_handler_delay: None,
            files: None,
            orphan_sweep: None,
            rpc_timeout: None,
            gateway: None,
            webhook_secret: None,
            currency: None,
            socket: None,
            amqp_users: false,
        }
    }
}

/// A running system.
pub struct System {
    /// The broker slice of this test.
    pub env: TestEnv,
    /// Base URLs of the routers, e.g. `http://127.0.0.1:41234`.
    pub urls: Vec<String>,
    /// ms-user (tests mint edge-case tokens with its key).
    pub user: ms_user::RunningUser,
    /// ms-stuff.
    pub stuff: Option<ms_stuff::RunningStuff>,
    /// ms-order (tests inspect its store).
    pub order: Option<ms_order::RunningOrder>,
    /// ms-payment (built-in test gateway).
    pub payment: Option<ms_payment::RunningPayment>,
    routers: Vec<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    extra_queues: Vec<String>,
    /// The per-service AMQP users when `SystemOptions::amqp_users` asked for them.
    amqp_users: Option<ms_testkit::AmqpUsers>,
}

impl System {
    /// Starts every service and the routers.
    pub async fn start(opts: SystemOptions) -> anyhow::Result<Self> {
        let env = TestEnv::new();
        let amqp_users = if opts.amqp_users {
            Some(ms_testkit::AmqpUsers::create(&env).await?)
        } else {
            None
        };
        let url_of = |who: AmqpUser| match &amqp_users {
            Some(users) => users.url(who),
            None => env.common.amqp_url.clone(),
        };
        let mut ucfg = ms_user::UserConfig::for_tests(&env.prefix);
        ucfg.common.amqp_url = url_of(AmqpUser::Service(Service::User));
        ucfg.admin_emails = ms_user::parse_admin_emails(&opts.admin_emails);
        if let Some(limits) = opts.argon2 {
            ucfg.argon2 = limits;
        }
        let user = ms_user::start(ucfg).await?;
        let mut scfg = ms_stuff::StuffConfig::for_tests(&env.prefix);
        scfg.common.amqp_url = url_of(AmqpUser::Service(Service::Stuff));
        let stuff = ms_stuff::start(scfg).await?;
        let mut ocfg = ms_order::OrderConfig::for_tests(&env.prefix, opts.hold);
        ocfg.common.amqp_url = url_of(AmqpUser::Service(Service::Order));
        let hold = ocfg.hold_topology();
        let order = ms_order::start(ocfg).await?;
        let mut pcfg = ms_payment::PaymentConfig::for_tests(&env.prefix);
        pcfg.common.amqp_url = url_of(AmqpUser::Service(Service::Payment));
        pcfg.webhook_secret = opts
            .webhook_secret
            .as_deref()
            .and_then(ms_payment::webhook::WebhookSecret::new);
        let payment = match &opts.gateway {
            None => ms_payment::start(pcfg).await?,
            Some(Gateway(gateway)) => {
                let store = ms_payment::store::open(&pcfg.storage).await?;
                ms_payment::start_with(pcfg, store, gateway.clone()).await?
            }
        };
        let mut urls = Vec::new();
        let mut routers = Vec::new();
        for _ in 0..opts.routers {
            let mut cfg = ms_router::RouterConfig::for_tests(&env.prefix);
            cfg.common.amqp_url = url_of(AmqpUser::Router);
            cfg.signin_max_attempts = opts.signin_max_attempts;
            cfg.signup_max_attempts = opts.signup_max_attempts;
            cfg.connect_handler_delay = opts.connect_handler_delay;
            if let Some(wait) = opts.rpc_timeout {
                cfg.common.rpc_timeout = wait;
            }
            if let Some(currency) = &opts.currency {
                cfg.currency = currency.clone();
            }
            if let Some(limits) = opts.socket {
                cfg.socket = limits;
            }
            if let Some(files) = &opts.files {
                cfg.files = files.clone();
            }
            if let Some((every, age)) = opts.orphan_sweep {
                cfg.files.sweep_every = every;
                cfg.files.orphan_age = age;
            }
            let shutdown = Shutdown::new();
            let app = ms_router::Application::build(cfg, shutdown.clone()).await?;
            urls.push(format!("http://127.0.0.1:{}", app.port()));
            routers.push((shutdown, tokio::spawn(app.run_until_stopped())));
        }
        Ok(Self {
            env,
            urls,
            user,
            stuff: Some(stuff),
            order: Some(order),
            payment: Some(payment),
            routers,
            extra_queues: vec![hold.hold_queue(), hold.expired_queue()],
            amqp_users,
        })
    }

    /// Signs up through the first router's HTTP API; returns `(accessToken, userId)`.
    pub async fn signup(&self, email: &str) -> anyhow::Result<(String, String)> {
        let r = reqwest::Client::new()
            .post(format!("{}/api/users/signup", self.url()))
            .json(&serde_json::json!({"email": email, "password": "password123"}))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().as_u16() == 201,
            "signup of {email} gave {}",
            r.status()
        );
        let body: serde_json::Value = r.json().await?;
        let token = body["accessToken"].as_str().unwrap_or_default().to_owned();
        let id = body["user"]["id"].as_str().unwrap_or_default().to_owned();
        Ok((token, id))
    }

    /// A valid access token for a made-up user (signed with ms-user's real key), for tests
    /// that need many distinct users quickly.
    pub async fn token_for(&self, user_id: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = ms_common::auth::Claims {
            sub: user_id.into(),
            email: format!("{user_id}@example.com"),
            role: ms_common::events::Role::User,
            iat: now,
            exp: now + 900,
        };
        self.user.service.sign(&claims).await
    }

    /// A Socket.IO client on router `i`.
    pub async fn socket(
        &self,
        i: usize,
        token: Option<&str>,
    ) -> anyhow::Result<ms_testkit::SioClient> {
        Ok(ms_testkit::SioClient::connect(&self.urls[i], token).await?)
    }

    /// The first router's base URL.
    pub fn url(&self) -> &str {
        &self.urls[0]
    }

    /// Stops everything and deletes the test's queues.
    pub async fn stop(mut self) {
        for (s, task) in self.routers.drain(..) {
            s.token.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        if let Some(p) = self.payment.take() {
            p.handle.stop().await;
        }
        if let Some(o) = self.order.take() {
            o.handle.stop().await;
        }
        if let Some(s) = self.stuff.take() {
            s.handle.stop().await;
        }
        let files_dir = self.files_dir();
        self.user.handle.stop().await;
        self.env.teardown(&self.extra_queues).await;
        if let Some(users) = self.amqp_users.take() {
            users.delete().await;
        }
        let _ = std::fs::remove_dir_all(files_dir);
    }

    /// The directory the routers keep files in unless `SystemOptions::files` says otherwise.
    pub fn files_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(&self.env.prefix).join("objects")
    }
}

/// A real S3-compatible server for one test: moto's server (PyPI `moto[server]`, which
/// `scripts/test.sh` installs) on a free port, stopped when dropped.
pub struct S3Server {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl S3Server {
    /// Starts the server and waits (up to 60 s) until it answers.
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start moto's S3 server (pip install 'moto[server]'): {e}")
            })?;
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if reqwest::get(&server.endpoint).await.is_ok() {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!("moto's S3 server exited with {status} (is moto[server] installed?)");
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "moto's S3 server did not answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let r = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await?;
        anyhow::ensure!(
            r.status().is_success(),
            "create bucket {name}: {}",
            r.status()
        );
        Ok(())
    }

    /// The S3 settings that point `object_store` at this server.
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}
