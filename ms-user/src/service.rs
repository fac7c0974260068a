//! ms-user's RPC actions: `user:signup`, `user:signin`, `user:refresh`, `user:signout`,
//! `user:me`, `user:update`, `user:jwks`.

use crate::domain::{Email, Password};
use crate::password::Argon2Pool;
use crate::store::{RefreshRow, StoreError, UserRow, UserStore};
use crate::tokens::{Keyring, hash_refresh_token, new_refresh_token};
use async_trait::async_trait;
use chrono::Utc;
use ms_common::ApiError;
use ms_common::auth::{Claims, JwkSet, KeySource};
use ms_common::contract::{CurrentUser, DisplayName, PublicUser, RpcSession, UserAction};
use ms_common::events::{Event, EventEnvelope, Role};
use ms_common::messaging::{RpcContext, RpcHandler, parse_payload};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;

/// The message for any failed sign-in, whichever part was wrong.
pub const INVALID_CREDENTIALS: &str = "Invalid credentials";

/// The account service's state and actions.
pub struct UserService {
    store: Arc<dyn UserStore>,
    keys: RwLock<Keyring>,
    admin_emails: HashSet<String>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    /// How long after a rotation the previous refresh token may be exchanged once more
    /// (the client never got the reply); see [`UserService::refresh`].
    refresh_grace: Duration,
    /// Every argon2 run takes one of its permits (429 when none comes in time).
    argon2: Argon2Pool,
}

/// Sign-up and sign-in input; fields optional so a missing one is a field error.
#[derive(Deserialize)]
struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

/// `user:update` input; optional so a missing name is a field error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateInput {
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshInput {
    refresh_token: Option<String>,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal_from(e)
}

fn store_err(e: StoreError) -> ApiError {
    ApiError::internal_from(e)
}

fn public_user(u: &UserRow) -> PublicUser {
    PublicUser::from(u.record())
}

fn reply(body: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(internal)
}

impl UserService {
    /// Builds the service over a store, loading (or creating) the signing keys.
    pub async fn new(
        store: Arc<dyn UserStore>,
        admin_emails: HashSet<String>,
        access_ttl: Duration,
        refresh_ttl: Duration,
        refresh_grace: Duration,
        argon2: Argon2Pool,
    ) -> anyhow::Result<Self> {
        let keys = Keyring::load_or_create(store.as_ref()).await?;
        Ok(Self {
            store,
            keys: RwLock::new(keys),
            admin_emails,
            access_ttl,
            refresh_ttl,
            refresh_grace,
            argon2,
        })
    }

    /// Makes a new key the signing key (old ones stay published).
    pub async fn rotate_signing_key(&self) -> anyhow::Result<String> {
        let ring = Keyring::rotate(self.store.as_ref()).await?;
        let kid = ring.kid().to_owned();
        *self.keys.write().await = ring;
        Ok(kid)
    }

    /// Signs claims with the current key (sessions use it; tests mint edge-case tokens).
    pub async fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        self.keys.read().await.sign(claims)
    }

    /// The published key set.
    pub async fn jwks(&self) -> JwkSet {
        self.keys.read().await.public().clone()
    }

    fn credentials(payload: Value) -> Result<(Email, Password), ApiError> {
        let c: Credentials = parse_payload(payload)?;
        let email = Email::parse(c.email.as_deref().unwrap_or(""));
        let password = Password::parse(c.password.as_deref().unwrap_or(""));
        match (email, password) {
            (Ok(e), Ok(p)) => Ok((e, p)),
            (e, p) => Err(
                ApiError::merge([e.err(), p.err()].into_iter().flatten().collect())
                    .unwrap_or_else(|| ApiError::bad_request("Invalid payload")),
            ),
        }
    }

    async fn session_for(
        &self,
        user: &UserRow,
        family_id: Option<String>,
    ) -> Result<(String, RefreshRow, String), ApiError> {
        let now = Utc::now();
        let ttl = chrono::Duration::from_std(self.access_ttl).map_err(internal)?;
        let claims = Claims {
            sub: user.id.clone(),
            email: user.email.clone(),
            role: user.role,
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
        };
        let access = self.sign(&claims).await.map_err(internal)?;
        let refresh = new_refresh_token();
        let row = RefreshRow {
            token_hash: hash_refresh_token(&refresh),
            family_id: family_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            user_id: user.id.clone(),
            expires_at: now + chrono::Duration::from_std(self.refresh_ttl).map_err(internal)?,
            rotated: false,
            revoked: false,
            rotated_at: None,
            successor: None,
        };
        Ok((access, row, refresh))
    }

    fn session_body(&self, user: &UserRow, access: &str, refresh: &str) -> RpcSession {
        RpcSession {
            user: public_user(user),
            access_token: access.to_owned(),
            refresh_token: refresh.to_owned(),
            refresh_token_max_age: self.refresh_ttl.as_secs(),
        }
    }

    /// `user:signup`: validates, hashes, stores the user and `user.created` together.
    async fn signup(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let (email, password) = Self::credentials(payload)?;
        let hash = self
            .argon2
            .hash(password.expose().to_owned(), ctx.remaining())
            .await?;
        let role = if self.admin_emails.contains(email.as_str()) {
            Role::Admin
        } else {
            Role::User
        };
        let user = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.as_str().to_owned(),
            password_hash: hash,
            role,
            display_name: None,
            version: 1,
            created_at: ms_common::time::now(),
        };
        let event = EventEnvelope::new(
            Event::UserCreated(user.record()),
            ctx.correlation_id.clone(),
        );
        match self.store.create_user(&user, &event).await {
            Err(StoreError::EmailTaken) => return Err(ApiError::field("email", "Email in use")),
            Err(e) => return Err(store_err(e)),
            Ok(()) => {}
        }
        let (access, row, refresh) = self.session_for(&user, None).await?;
        self.store.add_refresh(&row).await.map_err(store_err)?;
        tracing::info!(user_id = %user.id, "signed up");
        reply(&self.session_body(&user, &access, &refresh))
    }

    /// `user:signin`: the same 401 (and similar time) for unknown e-mail and wrong password.
    async fn signin(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let (email, password) = Self::credentials(payload)?;
        let user = self
            .store
            .user_by_email(email.as_str())
            .await
            .map_err(store_err)?;
        let ok = self
            .argon2
            .verify(
                password.expose().to_owned(),
                user.as_ref().map(|u| u.password_hash.clone()),
                ctx.remaining(),
            )
            .await?;
        let user = match (ok, user) {
            (true, Some(u)) => u,
            _ => return Err(ApiError::unauthorized(INVALID_CREDENTIALS)),
        };
        let (access, row, refresh) = self.session_for(&user, None).await?;
        self.store.add_refresh(&row).await.map_err(store_err)?;
        reply(&self.session_body(&user, &access, &refresh))
    }

    /// `user:refresh`: rotates the token; reuse of a rotated token revokes its family.
    ///
    /// Grace window: a rotation may commit after the client stopped waiting for its reply
    /// (RPC timeout, lost connection), so the client still holds only the previous token.
    /// For `refresh_grace` after a rotation the previous token is accepted once more *if
    /// its successor was never used*: a fresh successor is issued and the unseen one is
    /// revoked in the same transaction, so a family never has two live tokens. Once the
    /// successor has been used, or after the window, presenting the previous token is
    /// reuse (theft) as before and revokes the family. The successor itself is never
    /// returned again: only hashes are stored.
    async fn refresh(&self, payload: Value) -> Result<Value, ApiError> {
        let denied = || ApiError::unauthorized(ms_common::auth::NOT_AUTHORIZED);
        let input: RefreshInput = parse_payload(payload)?;
        let token = input
            .refresh_token
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(denied)?;
        let hash = hash_refresh_token(&token);
        let row = self
            .store
            .refresh_by_hash(&hash)
            .await
            .map_err(store_err)?
            .ok_or_else(denied)?;
        if row.revoked {
            return Err(denied());
        }
        let now = Utc::now();
        if row.expires_at <= now && !row.rotated {
            return Err(denied());
        }
        let grace = chrono::Duration::from_std(self.refresh_grace).map_err(internal)?;
        if row.rotated {
            if let (Some(at), Some(successor)) = (row.rotated_at, row.successor.as_deref())
                && now < at + grace
                && row.expires_at > now
            {
                let user = self
                    .store
                    .user_by_id(&row.user_id)
                    .await
                    .map_err(store_err)?
                    .ok_or_else(denied)?;
                let (access, new_row, refresh) =
                    self.session_for(&user, Some(row.family_id.clone())).await?;
                if self
                    .store
                    .regrant_refresh(&hash, successor, &new_row, now - grace)
                    .await
                    .map_err(store_err)?
                {
                    tracing::info!(family = %row.family_id, "refresh retried within the grace window");
                    return reply(&self.session_body(&user, &access, &refresh));
                }
            }
            tracing::warn!(family = %row.family_id, "refresh token reuse: revoking the family");
            self.store
                .revoke_family(&row.family_id)
                .await
                .map_err(store_err)?;
            return Err(denied());
        }
        let user = self
            .store
            .user_by_id(&row.user_id)
            .await
            .map_err(store_err)?
            .ok_or_else(denied)?;
        let (access, new_row, refresh) =
            self.session_for(&user, Some(row.family_id.clone())).await?;
        if !self
            .store
            .rotate_refresh(&hash, &new_row, now)
            .await
            .map_err(store_err)?
        {
            // Someone exchanged it a moment ago: that is reuse too.
            self.store
                .revoke_family(&row.family_id)
                .await
                .map_err(store_err)?;
            return Err(denied());
        }
        reply(&self.session_body(&user, &access, &refresh))
    }

    /// `user:signout`: revokes the token's family; unknown tokens are fine (idempotent).
    async fn signout(&self, payload: Value) -> Result<Value, ApiError> {
        let input: RefreshInput = parse_payload(payload)?;
        if let Some(token) = input
            .refresh_token
            .filter(|t| !t.is_empty() && t.len() <= 256)
            && let Some(row) = self
                .store
                .refresh_by_hash(&hash_refresh_token(&token))
                .await
                .map_err(store_err)?
        {
            self.store
                .revoke_family(&row.family_id)
                .await
                .map_err(store_err)?;
        }
        Ok(json!({}))
    }

    /// `user:update`: the caller renames themself; the new name and a version bump are
    /// written with `user.updated` (which carries it to every listing and review) as a
    /// compare-and-set, retried when another change came in between. The same name again
    /// changes nothing and publishes nothing.
    async fn update(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input: UpdateInput = parse_payload(payload)?;
        let name = DisplayName::parse(input.display_name.as_deref().unwrap_or(""))?;
        for _ in 0..5 {
            let user = self
                .store
                .user_by_id(&caller.id)
                .await
                .map_err(store_err)?
                .ok_or_else(|| ApiError::unauthorized(ms_common::auth::NOT_AUTHORIZED))?;
            if user.display_name.as_deref() == Some(name.as_str()) {
                return reply(&CurrentUser {
                    user: public_user(&user),
                });
            }
            let changed = UserRow {
                display_name: Some(name.as_str().to_owned()),
                version: user.version + 1,
                ..user.clone()
            };
            let event = EventEnvelope::new(
                Event::UserUpdated(changed.record()),
                ctx.correlation_id.clone(),
            );
            if self
                .store
                .update_user(&changed, user.version, &event)
                .await
                .map_err(store_err)?
            {
                tracing::info!(user_id = %changed.id, version = changed.version, "display name changed");
                return reply(&CurrentUser {
                    user: public_user(&changed),
                });
            }
        }
        Err(ApiError::conflict(
            "Your account changed meanwhile, please try again",
        ))
    }

    /// `user:me`: the current account, read fresh from the store.
    async fn me(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let user = self
            .store
            .user_by_id(&caller.id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ApiError::unauthorized(ms_common::auth::NOT_AUTHORIZED))?;
        reply(&CurrentUser {
            user: public_user(&user),
        })
    }
}

#[async_trait]
// No reply log here: sign-up, sign-in and refresh replies carry fresh credentials, which
// are never stored in clear. A redelivered request fails closed instead: sign-up answers
// "email in use", a refresh looks like token reuse and revokes the session (sign in again).
impl RpcHandler for UserService {
    type Action = UserAction;

    async fn handle(
        &self,
        ctx: RpcContext,
        action: UserAction,
        payload: Value,
    ) -> Result<Value, ApiError> {
        match action {
            UserAction::Signup => self.signup(&ctx, payload).await,
            UserAction::Signin => self.signin(&ctx, payload).await,
            UserAction::Refresh => self.refresh(payload).await,
            UserAction::Signout => self.signout(payload).await,
            UserAction::Me => self.me(&ctx).await,
            UserAction::Update => self.update(&ctx, payload).await,
            UserAction::Jwks => serde_json::to_value(self.jwks().await).map_err(internal),
        }
    }
}

/// ms-user verifies tokens against its own key ring (no RPC to itself).
pub struct LocalKeys(pub Arc<UserService>);

#[async_trait]
impl KeySource for LocalKeys {
    async fn fetch(&self) -> Result<JwkSet, ApiError> {
        Ok(self.0.jwks().await)
    }
}
