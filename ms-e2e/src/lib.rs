//! Spins up StuffMart in one process for end-to-end tests: ms-user, ms-order (and the
//! other services as they land) and one or more ms-router instances on port 0, all on a
//! real RabbitMQ under a per-test prefix, with in-memory SQLite stores.

use ms_common::shutdown::Shutdown;
use ms_testkit::TestEnv;
use std::time::Duration;

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
    /// The routers' connect-handler delay (test hook, see `RouterConfig`).
    pub connect_handler_delay: Option<Duration>,
}

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            routers: 1,
            hold: Duration::from_secs(600),
            admin_emails: String::new(),
            signin_max_attempts: 50,
            connect_handler_delay: None,
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
}

impl System {
    /// Starts every service and the routers.
    pub async fn start(opts: SystemOptions) -> anyhow::Result<Self> {
        let env = TestEnv::new();
        let mut ucfg = ms_user::UserConfig::for_tests(&env.prefix);
        ucfg.admin_emails = ms_user::parse_admin_emails(&opts.admin_emails);
        let user = ms_user::start(ucfg).await?;
        let stuff = ms_stuff::start(ms_stuff::StuffConfig::for_tests(&env.prefix)).await?;
        let ocfg = ms_order::OrderConfig::for_tests(&env.prefix, opts.hold);
        let hold = ocfg.hold_topology();
        let order = ms_order::start(ocfg).await?;
        let payment = ms_payment::start(ms_payment::PaymentConfig::for_tests(&env.prefix)).await?;
        let mut urls = Vec::new();
        let mut routers = Vec::new();
        for _ in 0..opts.routers {
            let mut cfg = ms_router::RouterConfig::for_tests(&env.prefix);
            cfg.signin_max_attempts = opts.signin_max_attempts;
            cfg.connect_handler_delay = opts.connect_handler_delay;
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
        self.user.handle.stop().await;
        self.env.teardown(&self.extra_queues).await;
    }
}
