//! `ms-user admin grant|revoke EMAIL`: the way an operator makes an account an admin.
//!
//! It opens ms-user's own store (the same `DATA_DIR` / `MONGODB_URL` the service uses),
//! writes the new role with a version bump and its `user.updated` event in one
//! transaction, and exits; the running service's outbox relay publishes the event. The
//! account's next access token carries the role: a refresh reads the role from the
//! store, and tokens already issued keep the old one until they expire
//! (`ACCESS_TOKEN_SECONDS`). `ADMIN_EMAILS` remains for development only.

use crate::domain::Email;
use crate::store::{UserRow, UserStore};
use ms_common::events::{Event, EventEnvelope, Role};

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `grant EMAIL`: role `admin`.
    Grant(String),
    /// `revoke EMAIL`: role `user`.
    Revoke(String),
}

/// The usage line printed on a malformed command.
pub const USAGE: &str = "usage: ms-user admin grant|revoke EMAIL";

impl AdminCommand {
    /// Parses the arguments after `admin`; the error is the message to print.
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let [verb, email] = args else {
            return Err(USAGE.to_owned());
        };
        let email = Email::parse(email)
            .map_err(|_| format!("not an e-mail address: {email:?}"))?
            .as_str()
            .to_owned();
        match verb.as_str() {
            "grant" => Ok(Self::Grant(email)),
            "revoke" => Ok(Self::Revoke(email)),
            _ => Err(USAGE.to_owned()),
        }
    }

    fn target(&self) -> (&str, Role) {
        match self {
            Self::Grant(e) => (e, Role::Admin),
            Self::Revoke(e) => (e, Role::User),
        }
    }
}

/// What the command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOutcome {
    /// The role changed; `user.updated` is in the outbox.
    Changed(UserRow),
    /// The account already had that role: nothing written.
    Unchanged(UserRow),
}

/// Why the command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No account has that e-mail (it must sign up first).
    #[error("no account with e-mail {0}")]
    NoSuchUser(String),
    /// The store failed, or the account kept changing under us.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Applies `cmd` to the store: a compare-and-set on the account's version, retried a few
/// times if another writer changed it in between.
pub async fn run(store: &dyn UserStore, cmd: &AdminCommand) -> Result<AdminOutcome, AdminError> {
    let (email, role) = cmd.target();
    for _ in 0..5 {
        let user = store
            .user_by_email(email)
            .await
            .map_err(anyhow::Error::from)?
            .ok_or_else(|| AdminError::NoSuchUser(email.to_owned()))?;
        if user.role == role {
            return Ok(AdminOutcome::Unchanged(user));
        }
        let changed = UserRow {
            role,
            version: user.version + 1,
            ..user.clone()
        };
        let event = EventEnvelope::new(Event::UserUpdated(changed.record()), None);
        if store
            .update_user(&changed, user.version, &event)
            .await
            .map_err(anyhow::Error::from)?
        {
            return Ok(AdminOutcome::Changed(changed));
        }
    }
    Err(anyhow::anyhow!("the account of {email} kept changing; try again").into())
}

/// The whole subcommand as `main` runs it: configuration from the environment, the
/// store, the change; returns the line to print.
pub async fn main(args: &[String]) -> anyhow::Result<String> {
    let cmd = AdminCommand::parse(args).map_err(anyhow::Error::msg)?;
    let cfg = crate::UserConfig::from_env()?;
    let store = crate::store::open(&cfg.storage).await?;
    Ok(match run(store.as_ref(), &cmd).await? {
        AdminOutcome::Changed(u) => format!(
            "{} is now {} (version {})",
            u.email,
            u.role.as_str(),
            u.version
        ),
        AdminOutcome::Unchanged(u) => format!("{} was already {}", u.email, u.role.as_str()),
    })
}
