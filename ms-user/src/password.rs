//! Argon2id hashing with explicit parameters, off the async threads.
//!
//! Unknown e-mails are checked against a dummy hash so they cost the same as a wrong
//! password and the two cannot be told apart by timing.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use std::sync::LazyLock;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A PHC string for a password nobody knows, computed once.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking("dummy password for timing").unwrap_or_default());

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let hash = hasher()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match hasher() {
        Ok(h) => h.verify_password(password.as_bytes(), phc).is_ok(),
        Err(_) => false,
    }
}

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Checks a password against a stored hash, or against the dummy when there is none.
pub async fn verify(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    let known = phc.is_some();
    let ok = tokio::task::spawn_blocking(move || {
        let target = phc.unwrap_or_else(|| DUMMY_HASH.clone());
        verify_blocking(&password, &target)
    })
    .await?;
    Ok(known && ok)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn round_trip() {
        let h = super::hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            super::verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!super::verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(
            !super::verify("dummy password for timing".into(), None)
                .await
                .unwrap()
        );
    }
}
