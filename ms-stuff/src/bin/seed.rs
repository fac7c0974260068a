//! Seeds demo data into a running StuffMart (started with `scripts/run.sh`): a few users,
//! signed up through ms-user (or signed in when they already exist), and a few items each,
//! created through ms-stuff with their tokens. Items a user already lists under the same
//! title are skipped, so running it twice adds nothing.
//!
//! ```text
//! cargo run -p ms-stuff --bin seed
//! ```
//!
//! Environment: `AMQP_URL`, `AMQP_PREFIX` (as the services), `RPC_TIMEOUT_MS`,
//! `SEED_PASSWORD` (default `password123`), `SEED_WAIT_SECONDS` (default 30: how long to
//! keep retrying while the services are still starting).

use anyhow::Context;
use ms_common::ApiError;
use ms_common::config::{CommonConfig, env_or, env_parse};
use ms_common::contract::{Action, StuffAction, UserAction};
use ms_common::messaging::{Broker, Names, RpcClient};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A demo item: (title, price in cents, description).
type Item = (&'static str, i64, &'static str);

/// Demo sellers and what each lists.
const DEMO: &[(&str, &[Item])] = &[
    (
        "ann@example.com",
        &[
            (
                "Desk lamp",
                1999,
                "LED, three brightness levels, barely used.",
            ),
            (
                "Intro to Algorithms (4th ed.)",
                4500,
                "Some pencil notes in chapter 15.",
            ),
        ],
    ),
    (
        "bob@example.com",
        &[
            ("Road bike", 25000, "56 cm frame, new tyres."),
            ("Graphing calculator", 3500, "TI-84, works perfectly."),
            ("Mini fridge", 6000, ""),
        ],
    ),
    (
        "cleo@example.com",
        &[(
            "Acoustic guitar",
            12000,
            "Comes with a soft case and spare strings.",
        )],
    ),
];

/// Talks to the services over RPC, retrying while they are not answering yet.
struct Seeder {
    rpc: RpcClient,
    wait: Duration,
}

impl Seeder {
    async fn call(
        &self,
        action: Action,
        token: Option<&str>,
        payload: Value,
    ) -> Result<Value, ApiError> {
        let deadline = Instant::now() + self.wait;
        loop {
            let token = token.map(str::to_owned);
            match self
                .rpc
                .request(action, token, payload.clone(), "seed")
                .await
            {
                Err(e) if e.status == 503 && Instant::now() < deadline => {
                    eprintln!("seed: {action} not answered yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// Signs up, or signs in when the e-mail is taken; returns (token, user id, what happened).
    async fn account(
        &self,
        email: &str,
        password: &str,
    ) -> anyhow::Result<(String, String, &'static str)> {
        let creds = json!({"email": email, "password": password});
        let (session, how) = match self
            .call(Action::User(UserAction::Signup), None, creds.clone())
            .await
        {
            Ok(s) => (s, "signed up"),
            Err(e) if e.status == 400 && e.first_message() == "Email in use" => {
                let s = self
                    .call(Action::User(UserAction::Signin), None, creds)
                    .await
                    .with_context(|| {
                        format!("{email} exists but signing in failed (other password?)")
                    })?;
                (s, "already existed, signed in")
            }
            Err(e) => return Err(e).with_context(|| format!("signing up {email}")),
        };
        let token = session["accessToken"]
            .as_str()
            .context("no accessToken in the sign-up reply")?;
        let id = session["user"]["id"]
            .as_str()
            .context("no user id in the sign-up reply")?;
        Ok((token.to_owned(), id.to_owned(), how))
    }

    /// Every (seller id, title) already listed.
    async fn listed(&self) -> anyhow::Result<HashSet<(String, String)>> {
        let mut seen = HashSet::new();
        let mut cursor = Value::Null;
        loop {
            let page = self
                .call(
                    Action::Stuff(StuffAction::List),
                    None,
                    json!({"limit": 100, "cursor": cursor}),
                )
                .await
                .context("listing stuff")?;
            for s in page["items"].as_array().into_iter().flatten() {
                if let (Some(seller), Some(title)) = (s["sellerId"].as_str(), s["title"].as_str()) {
                    seen.insert((seller.to_owned(), title.to_owned()));
                }
            }
            cursor = page["nextCursor"].clone();
            if cursor.is_null() {
                return Ok(seen);
            }
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let common = CommonConfig::from_env()?;
    let password = env_or("SEED_PASSWORD", "password123");
    let wait = Duration::from_secs(env_parse("SEED_WAIT_SECONDS", 30u64)?);
    let broker = Broker::new(&common.amqp_url, &format!("{}seed", common.amqp_prefix));
    broker
        .connection()
        .await
        .with_context(|| format!("connecting to RabbitMQ at {}", common.amqp_url))?;
    let seeder = Seeder {
        rpc: RpcClient::new(
            broker.clone(),
            Names::new(common.amqp_prefix.clone()),
            common.rpc_timeout,
        ),
        wait,
    };

    let mut accounts = Vec::new();
    for (email, _) in DEMO {
        let (token, id, how) = seeder.account(email, &password).await?;
        println!("user  {email} ({id}) {how}");
        accounts.push((token, id));
    }
    let listed = seeder.listed().await?;
    let (mut created, mut skipped) = (0, 0);
    for ((email, items), (token, seller_id)) in DEMO.iter().zip(&accounts) {
        for (title, price, description) in *items {
            if listed.contains(&(seller_id.clone(), (*title).to_owned())) {
                println!("skip  \"{title}\" (already listed by {email})");
                skipped += 1;
                continue;
            }
            let s = seeder
                .call(
                    Action::Stuff(StuffAction::Create),
                    Some(token),
                    json!({"title": title, "priceCents": price, "description": description}),
                )
                .await
                .with_context(|| format!("creating \"{title}\" for {email}"))?;
            println!(
                "stuff \"{title}\" {}.{:02} by {email} ({})",
                price / 100,
                price % 100,
                s["id"].as_str().unwrap_or("?")
            );
            created += 1;
        }
    }
    println!(
        "seeded: {} users (password {password:?}), {created} items created, {skipped} already there",
        accounts.len()
    );
    broker.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Quiet by default (it prints what it did); RUST_LOG turns the usual logs on.
    if ms_common::config::env_opt("RUST_LOG").is_some() {
        ms_common::telemetry::init("seed");
    }
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
