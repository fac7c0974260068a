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

/// Verifies EdDSA tokens against a cached key set, refetching for unknown key ids.
pub struct TokenVerifier {
    source: Arc<dyn KeySource>,
    keys: tokio::sync::RwLock<HashMap<String, DecodingKey>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    min_refetch: Duration,
}

impl TokenVerifier {
    /// A verifier that asks `source` for keys when it meets an unknown `kid`.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self {
            source,
            keys: tokio::sync::RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refetch: Duration::from_secs(1),
        }
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(k) = self.keys.read().await.get(kid) {
            return Some(k.clone());
        }
        {
            // Unknown kid: refetch, at most once per `min_refetch` (forged kids cannot flood ms-user).
            let mut last = self.last_fetch.lock().await;
            if let Some(k) = self.keys.read().await.get(kid) {
                return Some(k.clone());
            }
            if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
                return None;
            }
            match self.source.fetch().await {
                Ok(set) => {
                    let mut map = HashMap::new();
                    for jwk in set.keys {
                        if jwk.kty == "OKP"
                            && jwk.crv == "Ed25519"
                            && let Ok(k) = DecodingKey::from_ed_components(&jwk.x)
                        {
                            map.insert(jwk.kid, k);
                        }
                    }
                    *self.keys.write().await = map;
                    *last = Some(Instant::now());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not fetch the key set");
                    return None;
                }
            }
        }
        self.keys.read().await.get(kid).cloned()
    }
}

#[async_trait]
impl VerifyToken for TokenVerifier {
    async fn verify(&self, token: &str) -> Result<AuthUser, ApiError> {
        let denied = || ApiError::unauthorized(NOT_AUTHORIZED);
        let header = jsonwebtoken::decode_header(token).map_err(|_| denied())?;
        if header.alg != Algorithm::EdDSA {
            return Err(denied());
        }
        let kid = header.kid.ok_or_else(denied)?;
        let key = self.key(&kid).await.ok_or_else(denied)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|_| denied())?;
        Ok(AuthUser {
            id: data.claims.sub,
            email: data.claims.email,
            role: data.claims.role,
        })
    }
}

/// Fetches ms-user's key set over RPC.
pub struct RpcKeySource {
    client: crate::messaging::RpcClient,
}

impl RpcKeySource {
    /// A key source that calls `user:jwks`.
    pub fn new(client: crate::messaging::RpcClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl KeySource for RpcKeySource {
    async fn fetch(&self) -> Result<JwkSet, ApiError> {
        let req = crate::messaging::RpcRequest {
            action: "user:jwks".into(),
            token: None,
            payload: serde_json::json!({}),
        };
        let v = self
            .client
            .call(crate::messaging::Service::User, &req, "jwks")
            .await?;
        serde_json::from_value(v).map_err(ApiError::internal_from)
    }
}
