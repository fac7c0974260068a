//! Seeds demo data into a running StuffMart (started with `scripts/run.sh`): a few users,
//! signed up through ms-user (or signed in when they already exist), and a few digital
//! items each — notes, summaries, past-exam solutions, slides, code — created through
//! ms-stuff with their tokens, each with a small generated file uploaded through the
//! router's HTTP API (bytes never go through RabbitMQ) and a private note. Items a user
//! already lists under the same title are skipped, so running it twice adds nothing.
//!
//! ```text
//! cargo run -p ms-stuff --bin seed
//! ```
//!
//! Environment: `AMQP_URL`, `AMQP_PREFIX` (as the services), `RPC_TIMEOUT_MS`,
//! `ROUTER_URL` (default `http://127.0.0.1:$PORT`, `PORT` 3000), `SEED_PASSWORD`
//! (default `password123`), `SEED_WAIT_SECONDS` (default 30: how long to keep retrying
//! while the services are still starting).

use anyhow::Context;
use ms_common::ApiError;
use ms_common::config::{CommonConfig, env_or, env_parse};
use ms_common::contract::{Action, StuffAction, UserAction};
use ms_common::messaging::{Broker, Names, RpcClient};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A demo item: title, price in cents, description, the file a buyer gets, the note, the
/// course.
struct Item {
    title: &'static str,
    course: &'static str,
    price: i64,
    description: &'static str,
    file: &'static str,
    note: &'static str,
}

/// Demo sellers and what each lists.
const DEMO: &[(&str, &[Item])] = &[
    (
        "ann@example.com",
        &[
            Item {
                title: "Linear Algebra — complete lecture notes (MATH 201)",
                course: "MATH 201",
                price: 1200,
                description: "All 24 lectures, typed up: vector spaces, eigenvalues, SVD, with worked examples.",
                file: "linear-algebra-notes.pdf",
                note: "Errata and updates: ask me in the course forum, thread 'ann-notes'.",
            },
            Item {
                title: "Intro to Algorithms — chapter summaries 1–15",
                course: "CS 161",
                price: 900,
                description: "Two pages per chapter: the idea, the pseudo-code, the running time.",
                file: "algorithms-summaries.md",
                note: "Pairs well with the past exams from the CS 161 archive.",
            },
        ],
    ),
    (
        "bob@example.com",
        &[
            Item {
                title: "Databases 2025 — past exam with full solutions",
                course: "CS 145",
                price: 700,
                description: "Every question solved step by step: SQL, normal forms, transactions.",
                file: "databases-2025-solutions.pdf",
                note: "Solutions checked against the official marking scheme.",
            },
            Item {
                title: "React + TypeScript starter with auth",
                course: "CS 142",
                price: 1500,
                description: "A small, tested project template: routing, forms, sign-in, CI.",
                file: "react-starter-README.md",
                note: "Licence key for the bundled icon set: DEMO-ICONS-2026",
            },
            Item {
                title: "Thermodynamics slides, annotated",
                course: "PHYS 113",
                price: 500,
                description: "The lecturer's slides with my margin notes and the exam hints.",
                file: "thermo-slides-annotated.pdf",
                note: "",
            },
        ],
    ),
    (
        "cleo@example.com",
        &[Item {
            title: "Organic Chemistry — 300 flashcards (CSV)",
            course: "CHEM 33",
            price: 400,
            description: "Reactions, mechanisms and reagents; imports into Anki.",
            file: "organic-chemistry-flashcards.csv",
            note: "Anki import: File → Import, comma separated, first line is the header.",
        }],
    ),
];

/// A small file for the item: a one-page PDF, Markdown or CSV with its title in it.
fn demo_file(item: &Item) -> (Vec<u8>, &'static str) {
    if item.file.ends_with(".pdf") {
        (pdf(item.title, item.description), "application/pdf")
    } else if item.file.ends_with(".csv") {
        let mut csv = String::from("front,back\n");
        for i in 1..=300 {
            csv.push_str(&format!(
                "\"Reaction {i}\",\"Mechanism and reagent for reaction {i}\"\n"
            ));
        }
        (csv.into_bytes(), "text/csv")
    } else {
        let md = format!(
            "# {}\n\n{}\n\n(StuffMart demo file.)\n",
            item.title, item.description
        );
        (md.into_bytes(), "text/markdown")
    }
}

/// A one-page PDF showing `title` and `text`.
fn pdf(title: &str, text: &str) -> Vec<u8> {
    use ms_common::pdf::{TextLine, text_pdf};
    text_pdf(&[vec![
        TextLine {
            size: 18,
            y: 800,
            text: title,
        },
        TextLine {
            size: 11,
            y: 770,
            text,
        },
        TextLine {
            size: 9,
            y: 60,
            text: "StuffMart demo file",
        },
    ]])
}

/// Uploads an item's file through the router (`POST /api/stuff/{id}/files`).
async fn upload(router: &str, token: &str, stuff_id: &str, item: &Item) -> anyhow::Result<()> {
    let (bytes, content_type) = demo_file(item);
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(item.file)
        .mime_str(content_type)?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = reqwest::Client::new()
        .post(format!("{router}/api/stuff/{stuff_id}/files"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .with_context(|| {
            format!(
                "uploading {} to {router} (is the router running?)",
                item.file
            )
        })?;
    let status = r.status();
    anyhow::ensure!(
        status.as_u16() == 201,
        "uploading {} gave {status}: {}",
        item.file,
        r.text().await.unwrap_or_default()
    );
    Ok(())
}

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
    let router = env_or(
        "ROUTER_URL",
        &format!("http://127.0.0.1:{}", env_or("PORT", "3000")),
    );
    let (mut created, mut skipped) = (0, 0);
    for ((email, items), (token, seller_id)) in DEMO.iter().zip(&accounts) {
        for item in *items {
            let title = item.title;
            if listed.contains(&(seller_id.clone(), title.to_owned())) {
                println!("skip  \"{title}\" (already listed by {email})");
                skipped += 1;
                continue;
            }
            let mut payload =
                json!({"title": title, "priceCents": item.price, "description": item.description});
            if !item.note.is_empty() {
                payload["secretNote"] = json!(item.note);
            }
            if !item.course.is_empty() {
                payload["course"] = json!(item.course);
            }
            let s = seeder
                .call(Action::Stuff(StuffAction::Create), Some(token), payload)
                .await
                .with_context(|| format!("creating \"{title}\" for {email}"))?;
            let id = s["id"]
                .as_str()
                .context("no id in the stuff:create reply")?;
            upload(&router, token, id, item).await?;
            println!(
                "stuff \"{title}\" {}.{:02} by {email} ({id}, with {})",
                item.price / 100,
                item.price % 100,
                item.file
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
