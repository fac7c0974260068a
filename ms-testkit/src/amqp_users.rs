//! One test's per-service AMQP users: the permissions of `deploy/rabbitmq/definitions.json`
//! under the test's prefix, for users named `<prefix>ms-<service>`, imported with
//! `rabbitmqctl import_definitions` and deleted at the end.

use crate::env::{TestEnv, eventually};
use ms_common::messaging::Broker;
use ms_common::messaging::permissions::{AmqpUser, definitions};
use std::time::Duration;

/// The users of one test and their connection URLs.
pub struct AmqpUsers {
    /// `(user, name, password)` for every [`AmqpUser`] plus the operator account.
    names: Vec<String>,
    passwords: Vec<(AmqpUser, String, String)>,
    /// `amqp://host:port/vhost` part of the test's own URL, without credentials.
    host: String,
}

/// Runs `rabbitmqctl` with `args`; its output on failure.
async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl AmqpUsers {
    /// Creates the users of `env`'s prefix on the test broker (vhost `/`) and waits until
    /// each can connect.
    pub async fn create(env: &TestEnv) -> anyhow::Result<Self> {
        let url = &env.common.amqp_url;
        let rest = url
            .split_once("://")
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow::anyhow!("AMQP_URL without scheme: {url}"))?;
        let host = match rest.rsplit_once('@') {
            Some((_, h)) => h.to_owned(),
            None => rest.to_owned(),
        };
        let mut defs = definitions(&env.names(), "/", &env.prefix);
        let mut passwords = Vec::new();
        let mut names = Vec::new();
        if let Some(users) = defs["users"].as_array_mut() {
            for u in users.iter_mut() {
                let name = u["name"].as_str().unwrap_or_default().to_owned();
                let password = uuid::Uuid::new_v4().simple().to_string();
                u["password"] = serde_json::Value::String(password.clone());
                if let Some(who) = AmqpUser::ALL
                    .into_iter()
                    .find(|a| name == format!("{}{}", env.prefix, a.name()))
                {
                    passwords.push((who, name.clone(), password));
                }
                names.push(name);
            }
        }
        // The test broker's "/" exists already; importing it again changes nothing.
        let file = std::env::temp_dir().join(format!("{}definitions.json", env.prefix));
        std::fs::write(&file, serde_json::to_vec(&defs)?)?;
        let imported = rabbitmqctl(&["import_definitions", &file.to_string_lossy()]).await;
        let _ = std::fs::remove_file(&file);
        imported?;
        let me = Self {
            names,
            passwords,
            host: format!("amqp://{host}"),
        };
        // The import runs asynchronously: wait until every user can log in.
        for (who, _, _) in &me.passwords {
            let url = me.url(*who);
            eventually(Duration::from_secs(20), "the AMQP users", || {
                let url = url.clone();
                async move {
                    let b = Broker::new(&url, "amqp-users-probe");
                    let ok = b.connection().await.is_ok();
                    b.close().await;
                    ok.then_some(())
                }
            })
            .await?;
        }
        Ok(me)
    }

    /// The URL `who` connects with (its own name and password, the test broker).
    pub fn url(&self, who: AmqpUser) -> String {
        let (name, password) = self
            .passwords
            .iter()
            .find(|(w, _, _)| *w == who)
            .map(|(_, n, p)| (n.as_str(), p.as_str()))
            .unwrap_or(("missing", "missing"));
        let (scheme, rest) = self.host.split_once("://").unwrap_or(("amqp", ""));
        format!("{scheme}://{}:{password}@{rest}", percent(name))
    }

    /// Deletes the users (and so their permissions).
    pub async fn delete(&self) {
        let list: Vec<String> = self.names.iter().map(|n| format!("<<\"{n}\">>")).collect();
        let expr = format!(
            "[rabbit_auth_backend_internal:delete_user(U, <<\"test\">>) || U <- [{}]].",
            list.join(",")
        );
        if let Err(e) = rabbitmqctl(&["eval", &expr]).await {
            tracing::warn!("deleting the test's AMQP users failed: {e:#}");
        }
    }
}

/// Percent-encodes a user name for the URL's user-info part.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
