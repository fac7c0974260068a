//! Argon2id hashing with explicit parameters, off the async threads, a few at a time.
//!
//! Every hash and every verification takes a permit of one [`Argon2Pool`] first:
//!
//! ```text
//! sign-up / sign-in ─▶ permit (wait at most `ARGON2_WAIT_MS`) ─▶ spawn_blocking(argon2)
//!                            │ none in time
//!                            ▼
//!                      429 Too many requests (never a 503: the caller is told at once)
//! ```
//!
//! Each argon2id run holds 19 MiB; without the permits up to `PREFETCH` (64) ran at once
//! and a burst of sign-ups took ms-user from 20 MB to 2.5 GB (issue 17). The permit moves
//! into the blocking task, so it is held until the hash is done even when the request that
//! asked has given up.
//!
//! Unknown e-mails are checked against a dummy hash so they cost the same as a wrong
//! password and the two cannot be told apart by timing.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use ms_common::ApiError;
use rand::RngCore;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory set aside per concurrent hash when the default is worked out: argon2's 19 MiB,
/// plus what the allocator keeps around it, with room to spare for the rest of the service.
pub const MEMORY_PER_HASH: u64 = 64 * 1024 * 1024;

/// How long a request waits for a permit by default (`ARGON2_WAIT_MS`), in milliseconds.
pub const DEFAULT_WAIT_MS: u64 = 2000;

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

/// Why a hash or a verification did not happen.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// No permit within the wait: the caller gets 429.
    #[error("argon2 is busy")]
    Busy,
    /// Anything else (a failed blocking task, bad parameters): a 500.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::too_many_requests(),
            HashError::Failed(e) => ApiError::internal_from(format!("{e:#}")),
        }
    }
}

/// How many hashes may run at once and how long a request waits for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Limits {
    /// `ARGON2_MAX_CONCURRENT`, at least 1 (default: [`default_max_concurrent`]).
    pub max_concurrent: usize,
    /// `ARGON2_WAIT_MS` (2000): a request without a permit after this gets 429.
    pub wait: Duration,
}

impl Argon2Limits {
    /// The defaults worked out from this machine.
    pub fn from_machine() -> Self {
        Self {
            max_concurrent: default_max_concurrent(),
            wait: Duration::from_millis(DEFAULT_WAIT_MS),
        }
    }
}

/// `ARGON2_MAX_CONCURRENT`'s default: `max(1, min(cpus, memory / 64 MiB))`, where `cpus` is
/// [`std::thread::available_parallelism`] (which follows a cgroup CPU quota) and `memory`
/// is the smaller of `MemAvailable` (`/proc/meminfo`) and the cgroup's memory limit
/// (`memory.max`, or v1's `memory.limit_in_bytes`), whichever of them can be read.
pub fn default_max_concurrent() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    concurrency_for(cpus, available_memory())
}

/// The formula of [`default_max_concurrent`] for given CPUs and memory (unknown: CPUs only).
pub fn concurrency_for(cpus: usize, memory: Option<u64>) -> usize {
    let by_memory = memory.map_or(usize::MAX, |m| {
        usize::try_from(m / MEMORY_PER_HASH).unwrap_or(usize::MAX)
    });
    cpus.min(by_memory).max(1)
}

/// The memory this process may still use, as far as the system tells.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib.saturating_mul(1024))
    });
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    // "max" (no limit) does not parse; v1's "no limit" is a huge number, which min() ignores.
    .and_then(|s| s.trim().parse::<u64>().ok());
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The permits every argon2 run takes; cheap to clone.
#[derive(Clone, Debug)]
pub struct Argon2Pool {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Argon2Pool {
    /// A pool with `limits.max_concurrent` permits (at least one).
    pub fn new(limits: Argon2Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            wait: limits.wait,
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, HashError> {
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(HashError::Failed(closed.into())),
            Err(_) => {
                tracing::warn!(wait = ?self.wait, "argon2 busy: 429");
                Err(HashError::Busy)
            }
        }
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(&password)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(HashError::Failed)
    }

    /// Checks a password against a stored hash, or against the dummy when there is none.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        let known = phc.is_some();
        let permit = self.permit().await?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let target = phc.unwrap_or_else(|| DUMMY_HASH.clone());
            verify_blocking(&password, &target)
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_concurrent: usize, wait_ms: u64) -> Argon2Pool {
        Argon2Pool::new(Argon2Limits {
            max_concurrent,
            wait: Duration::from_millis(wait_ms),
        })
    }

    #[tokio::test]
    async fn round_trip() {
        let p = pool(2, 10_000);
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            p.verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong horse".into(), Some(h)).await.unwrap());
        assert!(
            !p.verify("dummy password for timing".into(), None)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hash_and_verify_without_a_permit_in_time_are_busy_and_a_429() {
        let p = pool(1, 50);
        let held = p.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            p.hash("correct horse".into()).await,
            Err(HashError::Busy)
        ));
        assert!(matches!(
            p.verify("correct horse".into(), None).await,
            Err(HashError::Busy)
        ));
        assert_eq!(
            ApiError::from(HashError::Busy),
            ApiError::too_many_requests()
        );
        drop(held);
        assert!(p.hash("correct horse".into()).await.is_ok());
    }

    #[test]
    fn the_default_is_bounded_by_cpus_and_memory_and_at_least_one() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(concurrency_for(8, Some(512 * MIB)), 8);
        assert_eq!(concurrency_for(8, Some(256 * MIB)), 4);
        assert_eq!(concurrency_for(2, Some(16 * 1024 * MIB)), 2);
        assert_eq!(concurrency_for(4, Some(10 * MIB)), 1);
        assert_eq!(concurrency_for(4, None), 4);
        assert!(default_max_concurrent() >= 1);
    }
}
