//! JWT verification for every process: EdDSA only, keys by `kid` from a key set.
//!
//! Only ms-user holds private keys. Everyone else fetches the public key set over RPC
//! (`user:jwks`) and refetches (rate limited) when a token names an unknown `kid`, so key
//! rotation needs no restart and no shared secret.

use crate::error::ApiError;
use crate::events::Role;
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The message for every token failure (no hint which check failed).
pub const NOT_AUTHORIZED: &str = "Not authorized";

/// Access token claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// E-mail at issue time.
    pub email: String,
    /// Role at issue time.
    pub role: Role,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthUser {
    /// User id.
    pub id: String,
    /// E-mail.
    pub email: String,
    /// Role.
    pub role: Role,
}

impl AuthUser {
    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("Admins only"))
        }
    }
}

/// One public key in JWK form (OKP / Ed25519).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// Key id, matched against the token header.
    pub kid: String,
    /// Base64url public key.
    pub x: String,
    /// Always `EdDSA`.
    pub alg: String,
}

impl PublicJwk {
    /// An Ed25519 public key (raw 32 bytes) as a JWK.
    pub fn ed25519(kid: &str, public_key: &[u8]) -> Self {
        use base64::Engine;
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: kid.into(),
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
            alg: "EdDSA".into(),
        }
    }
}

/// The key set ms-user publishes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// Current and recent public keys.
    pub keys: Vec<PublicJwk>,
}

/// Where public keys come from (RPC to ms-user, or ms-user's own store).
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The current key set.
    async fn fetch(&self) -> Result<JwkSet, ApiError>;
}

/// Turns a bearer token into the caller, or 401.
#[async_trait]
pub trait VerifyToken: Send + Sync + 'static {
    /// Verifies signature, algorithm, key id and expiry.
    async fn verify(&self, token: &str) -> Result<AuthUser, ApiError>;
}

/// Seconds of clock skew allowed on `exp`.
const LEEWAY_SECONDS: i64 = 5;

/// How many verified tokens a process remembers (about 400 bytes each).
pub const VERIFIED_CACHE_CAPACITY: usize = 10_000;

/// Tokens whose signature already checked out, so a busy client costs one Ed25519
/// verification per token instead of one per request (the profile's biggest item in
/// ms-stuff). An entry is only used until the token's own expiry and is dropped whenever
/// the key set changes; a token that failed any check is never stored.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: HashMap<String, (AuthUser, i64)>,
}

impl VerifiedTokens {
    /// The caller of a token verified earlier that is still valid at `now` (Unix seconds).
    pub fn get(&self, token: &str, now: i64) -> Option<AuthUser> {
        self.get_with_expiry(token, now).map(|(user, _)| user)
    }

    /// [`Self::get`] with the token's `exp` (Unix seconds).
    pub fn get_with_expiry(&self, token: &str, now: i64) -> Option<(AuthUser, i64)> {
        match self.entries.get(token) {
            Some((user, exp)) if now <= exp + LEEWAY_SECONDS => Some((user.clone(), *exp)),
            _ => None,
        }
    }

    /// Remembers a verified token; when full, expired entries go first, then everything.
    pub fn insert(&mut self, token: &str, user: AuthUser, exp: i64, now: i64) {
        if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
            self.entries.retain(|_, (_, e)| now <= *e + LEEWAY_SECONDS);
            if self.entries.len() >= VERIFIED_CACHE_CAPACITY {
                self.entries.clear();
            }
        }
        self.entries.insert(token.to_owned(), (user, exp));
    }

    /// Forgets everything (the key set changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of remembered tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Verifies EdDSA tokens against a cached key set, refetching for unknown key ids.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    /// Key id → (the JWK's `x`, the key).
    keys: tokio::sync::RwLock<HashMap<String, (String, DecodingKey)>>,
    /// When the last fetch ended (success or failure), held while one fetch runs.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    /// Fetches finished so far: a caller that waited for the lock while a fetch ran takes
    /// that fetch's outcome instead of starting another.
    fetches: std::sync::atomic::AtomicU64,
    min_refetch: Duration,
    verified: std::sync::Mutex<VerifiedTokens>,
}

impl TokenVerifier {
    /// A verifier that asks `source` for keys when it meets an unknown `kid`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            keys: tokio::sync::RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            fetches: std::sync::atomic::AtomicU64::new(0),
            min_refetch: Duration::from_secs(1),
            verified: std::sync::Mutex::new(VerifiedTokens::default()),
        }
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, VerifiedTokens> {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        use std::sync::atomic::Ordering;
        if let Some((_, k)) = self.keys.read().await.get(kid) {
            return Some(k.clone());
        }
        // Unknown kid: one fetch at a time, at most once per `min_refetch` whether it worked
        // or not (forged kids cannot flood ms-user, and a key source that is down costs the
        // callers of one burst one fetch's wait, not one each).
        let seen = self.fetches.load(Ordering::SeqCst);
        let mut last = self.last_fetch.lock().await;
        if self.fetches.load(Ordering::SeqCst) != seen {
            // A fetch ended while this caller waited: its key set is the answer.
            return self.keys.read().await.get(kid).map(|(_, k)| k.clone());
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            return None;
        }
        let fetched = self.source.fetch().await;
        *last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::SeqCst);
        match fetched {
            Ok(set) => {
                let mut map = HashMap::new();
                for jwk in set.keys {
                    if jwk.kty == "OKP"
                        && jwk.crv == "Ed25519"
                        && let Ok(k) = DecodingKey::from_ed_components(&jwk.x)
                    {
                        map.insert(jwk.kid, (jwk.x, k));
                    }
                }
                let found = map.get(kid).map(|(_, k)| k.clone());
                let mut keys = self.keys.write().await;
                let withdrawn = keys
                    .iter()
                    .any(|(kid, (x, _))| map.get(kid).is_none_or(|(nx, _)| nx != x));
                if withdrawn {
                    // Tokens signed with a withdrawn key must be checked again.
                    self.verified().clear();
                }
                *keys = map;
                found
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch the key set");
                None
            }
        }
    }
}

#[async_trait]
impl VerifyToken for TokenVerifier {
    async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        self.verify_with_expiry(token).await.map(|(user, _)| user)
    }
}

impl TokenVerifier {
    /// [`VerifyToken::verify`] that also returns the token's `exp` (Unix seconds), for
    /// holders of a long-lived connection that must act when the token runs out.
    pub async fn verify_with_expiry(&self, token: &str) -> Result<(AuthUser, i64), ApiError> {
        let denied = || ApiError::unauthorized(NOT_AUTHORIZED);
        let now = chrono::Utc::now().timestamp();
        if let Some(hit) = self.verified().get_with_expiry(token, now) {
            return Ok(hit);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| denied())?;
        if header.alg != Algorithm::EdDSA {
            return Err(denied());
        }
        let kid = header.kid.ok_or_else(denied)?;
        let key = self.key(&kid).await.ok_or_else(denied)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECONDS.unsigned_abs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|_| denied())?;
        let user = AuthUser {
            id: data.claims.sub,
            email: data.claims.email,
            role: data.claims.role,
        };
        self.verified()
            .insert(token, user.clone(), data.claims.exp, now);
        Ok((user, data.claims.exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> AuthUser {
        AuthUser {
            id: id.into(),
            email: format!("{id}@example.com"),
            role: Role::User,
        }
    }

    #[test]
    fn a_verified_token_is_remembered_until_its_expiry_plus_leeway() {
        let mut c = VerifiedTokens::default();
        c.insert("t1", user("a"), 1_000, 900);
        assert_eq!(c.get("t1", 900), Some(user("a")));
        assert_eq!(c.get("t1", 1_000 + LEEWAY_SECONDS), Some(user("a")));
        assert_eq!(c.get("t1", 1_001 + LEEWAY_SECONDS), None, "expired");
        assert_eq!(c.get("t2", 900), None, "never verified");
        c.clear();
        assert_eq!(c.get("t1", 900), None, "cleared");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let mut c = VerifiedTokens::default();
        for i in 0..VERIFIED_CACHE_CAPACITY - 1 {
            c.insert(&format!("old{i}"), user("a"), 100, 50);
        }
        c.insert("live", user("b"), 10_000, 50);
        assert_eq!(c.len(), VERIFIED_CACHE_CAPACITY);
        c.insert("new", user("c"), 10_000, 5_000);
        assert_eq!(c.len(), 2, "only the unexpired entries stay");
        assert_eq!(c.get("live", 5_000), Some(user("b")));
        for i in 0..VERIFIED_CACHE_CAPACITY {
            c.insert(&format!("live{i}"), user("d"), 10_000, 5_000);
        }
        assert!(c.len() <= VERIFIED_CACHE_CAPACITY, "bounded: {}", c.len());
        assert_eq!(
            c.get("live0", 5_000),
            None,
            "emptied when nothing had expired"
        );
    }

    /// A key source that is down: each fetch waits, then fails; counts the fetches.
    struct SlowFailingSource {
        fetches: std::sync::atomic::AtomicUsize,
        release: tokio::sync::Notify,
    }

    #[async_trait]
    impl KeySource for SlowFailingSource {
        async fn fetch(&self) -> Result<JwkSet, ApiError> {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.release.notified().await;
            Err(ApiError::unavailable())
        }
    }

    #[tokio::test]
    async fn a_burst_of_unknown_kids_waits_for_one_failed_fetch_not_one_each() {
        let source = Arc::new(SlowFailingSource {
            fetches: std::sync::atomic::AtomicUsize::new(0),
            release: tokio::sync::Notify::new(),
        });
        let verifier = Arc::new(TokenVerifier::new(source.clone()));
        let callers: Vec<_> = (0..20)
            .map(|i| {
                let v = verifier.clone();
                tokio::spawn(async move { v.key(&format!("forged-{i}")).await.is_none() })
            })
            .collect();
        // Wait until one fetch is under way and the others queue behind it.
        while source.fetches.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        source.release.notify_one();
        for c in callers {
            assert!(c.await.unwrap(), "no key for a forged kid");
        }
        assert_eq!(
            source.fetches.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the callers that waited took the failed fetch's outcome"
        );
        // Straight after a failure the rate limit still holds: no new fetch.
        assert!(verifier.key("forged-again").await.is_none());
        assert_eq!(source.fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
