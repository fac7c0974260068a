//! Signing keys and tokens: EdDSA access tokens with a `kid`, opaque refresh tokens.
//!
//! Keys are generated on first start and kept in the store; the newest signs, the newest
//! [`PUBLISHED_KEYS`] are published so tokens signed just before a rotation stay valid.

use crate::store::{KeyRow, StoreError, UserStore};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ms_common::auth::{Claims, JwkSet, PublicJwk};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How many recent public keys stay in the key set after rotations.
pub const PUBLISHED_KEYS: usize = 3;

/// The keys in memory: one to sign with, several to publish.
#[derive(Clone)]
pub struct Keyring {
    kid: String,
    signing: EncodingKey,
    public: JwkSet,
}

fn decode_seed(row: &KeyRow) -> anyhow::Result<SigningKey> {
    let bytes = STANDARD.decode(&row.seed_b64)?;
    let seed: [u8; 32] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("signing key {} has a bad seed", row.kid))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A fresh random key row.
pub fn generate_key() -> KeyRow {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    KeyRow {
        kid: uuid::Uuid::new_v4().simple().to_string(),
        seed_b64: STANDARD.encode(seed),
        created_at: chrono::Utc::now(),
    }
}

impl Keyring {
    /// Builds the ring from stored keys (newest first); `None` when there are none yet.
    pub fn from_rows(rows: &[KeyRow]) -> anyhow::Result<Option<Self>> {
        let Some(newest) = rows.first() else {
            return Ok(None);
        };
        let sk = decode_seed(newest)?;
        let der = sk
            .to_pkcs8_der()
            .map_err(|e| anyhow::anyhow!("pkcs8: {e}"))?;
        let mut public = JwkSet::default();
        for row in rows.iter().take(PUBLISHED_KEYS) {
            let k = decode_seed(row)?;
            public
                .keys
                .push(PublicJwk::ed25519(&row.kid, k.verifying_key().as_bytes()));
        }
        Ok(Some(Self {
            kid: newest.kid.clone(),
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            public,
        }))
    }

    /// Loads the ring, generating and storing a first key if the store has none. The
    /// database decides which replica's first key wins ([`UserStore::add_first_signing_key`]);
    /// every replica then reads back the one stored set.
    pub async fn load_or_create(store: &dyn UserStore) -> anyhow::Result<Self> {
        if let Some(r) = Self::from_rows(&store.signing_keys().await?)? {
            return Ok(r);
        }
        store.add_first_signing_key(&generate_key()).await?;
        Self::from_rows(&store.signing_keys().await?)?
            .ok_or_else(|| anyhow::anyhow!("no signing key after creating one"))
    }

    /// Adds a new key that signs from now on; older ones stay published.
    pub async fn rotate(store: &dyn UserStore) -> Result<Self, StoreError> {
        let mut key = generate_key();
        // Strictly newer than any stored key, even within one clock tick.
        if let Some(newest) = store.signing_keys().await?.first()
            && newest.created_at >= key.created_at
        {
            key.created_at = newest.created_at + chrono::Duration::microseconds(1);
        }
        store.add_signing_key(&key).await?;
        Self::from_rows(&store.signing_keys().await?)?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("no key")))
    }

    /// The key set to publish.
    pub fn public(&self) -> &JwkSet {
        &self.public
    }

    /// The id of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs access-token claims.
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.signing)?)
    }
}

/// A new opaque refresh token (256 random bits, base64url).
pub fn new_refresh_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// What is stored for a refresh token: its SHA-256, hex.
pub fn hash_refresh_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::auth::{KeySource, TokenVerifier, VerifyToken};
    use ms_common::error::ApiError;
    use ms_common::events::Role;
    use std::sync::{Arc, Mutex};

    /// A key set the test changes at will, counting fetches.
    #[derive(Default)]
    struct Keys {
        set: Mutex<JwkSet>,
        fetches: Mutex<u32>,
    }

    #[async_trait::async_trait]
    impl KeySource for Keys {
        async fn fetch(&self) -> Result<JwkSet, ApiError> {
            *self.fetches.lock().unwrap() += 1;
            Ok(self.set.lock().unwrap().clone())
        }
    }

    fn claims(sub: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: sub.into(),
            email: format!("{sub}@example.com"),
            role: Role::User,
            iat: now,
            exp: now + 600,
        }
    }

    #[tokio::test]
    async fn verified_tokens_are_cached_until_their_key_is_withdrawn() {
        let a = Keyring::from_rows(&[generate_key()]).unwrap().unwrap();
        let b = Keyring::from_rows(&[generate_key()]).unwrap().unwrap();
        let keys = Arc::new(Keys::default());
        *keys.set.lock().unwrap() = a.public().clone();
        let v = TokenVerifier::new(keys.clone());
        let ta = a.sign(&claims("alice")).unwrap();
        assert_eq!(v.verify(&ta).await.unwrap().id, "alice");
        assert_eq!(v.verify(&ta).await.unwrap().id, "alice");
        // A token that fails never enters the cache, and a cached one does not vouch for
        // a tampered copy of itself.
        let tampered = format!("{}x", &ta[..ta.len() - 1]);
        assert_eq!(v.verify(&tampered).await.unwrap_err().status, 401);
        assert_eq!(v.verify(&tampered).await.unwrap_err().status, 401);
        assert_eq!(*keys.fetches.lock().unwrap(), 1);

        // Key a is withdrawn and b published: meeting b's kid refetches, which must also
        // forget every token a signed.
        *keys.set.lock().unwrap() = b.public().clone();
        let tb = b.sign(&claims("bob")).unwrap();
        // The refetch is rate limited (1 s); wait for it with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while v.verify(&tb).await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "b's key never fetched"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(v.verify(&ta).await.unwrap_err().status, 401);
    }
}
