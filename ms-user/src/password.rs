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
//! Each argon2id run needs 19 MiB; without the permits up to `PREFETCH` (64) ran at once
//! and a burst of sign-ups took ms-user from 20 MB to 2.5 GB (issue 17). Each permit comes
//! with a 19 MiB buffer that is reused, never freed, so the memory of a burst is bounded by
//! the number of permits. The permit moves into the blocking task, so it is held until the
//! hash is done even when the request that asked has given up.
//!
//! Unknown e-mails are checked against a dummy hash so they cost the same as a wrong
//! password and the two cannot be told apart by timing.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ms_common::ApiError;
use rand::RngCore;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Memory set aside per concurrent hash when the default is worked out: argon2's 19 MiB,
/// plus what the allocator keeps around it, with room to spare for the rest of the service.
pub const MEMORY_PER_HASH: u64 = 64 * 1024 * 1024;

/// How long a request waits for a permit by default (`ARGON2_WAIT_MS`), in milliseconds.
pub const DEFAULT_WAIT_MS: u64 = 2000;

/// Of the time a caller still waits, this much is kept for the hash itself and the reply.
pub const RESERVE_FOR_HASH: Duration = Duration::from_millis(500);

/// argon2's working memory for one run (19 MiB), kept and reused from run to run.
type Memory = Vec<Block>;

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
fn params() -> anyhow::Result<Params> {
    Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))
}

/// Runs argon2 in `memory` (grown to the parameters' size the first time), into `out`.
fn run(
    memory: &mut Memory,
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> anyhow::Result<()> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// A PHC string for a password nobody knows, computed once.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_in(&mut Memory::new(), "dummy password for timing").unwrap_or_default());

/// Hashes `password` with a fresh salt into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
fn hash_in(memory: &mut Memory, password: &str) -> anyhow::Result<String> {
    let params = params()?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let phc_params = ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("{e}"))?;
    run(
        memory,
        Algorithm::Argon2id,
        Version::V0x13,
        params,
        password.as_bytes(),
        &salt,
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: phc_params,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow::anyhow!("{e}"))?),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("{e}"))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a PHC string with the parameters it names; anything unreadable
/// is a mismatch. The outputs are compared in constant time (`Output`'s equality).
fn verify_in(memory: &mut Memory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    run(
        memory,
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt,
        &mut out,
    )
    .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
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

/// The permits every argon2 run takes, and the memory of each; cheap to clone.
///
/// A run holds a permit and one [`Memory`] from the pool, so at most `max_concurrent`
/// buffers of 19 MiB ever exist and none is given back to the allocator: a burst costs no
/// more than `max_concurrent` hashes, whichever threads run them (freed 19 MiB blocks
/// stayed in glibc's per-thread arenas: 2 permits still grew to ~690 MB before this).
#[derive(Clone, Debug)]
pub struct Argon2Pool {
    permits: Arc<Semaphore>,
    memory: Arc<Mutex<Vec<Memory>>>,
    wait: Duration,
}

impl Argon2Pool {
    /// A pool with `limits.max_concurrent` permits (at least one).
    pub fn new(limits: Argon2Limits) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limits.max_concurrent.max(1))),
            memory: Arc::new(Mutex::new(Vec::new())),
            wait: limits.wait,
        }
    }

    /// A permit within `ARGON2_WAIT_MS`, or sooner when the caller's remaining time (less
    /// [`RESERVE_FOR_HASH`]) is shorter; a free permit is taken even with no time left.
    async fn permit(&self, remaining: Option<Duration>) -> Result<OwnedSemaphorePermit, HashError> {
        let wait = remaining.map_or(self.wait, |r| {
            self.wait.min(r.saturating_sub(RESERVE_FOR_HASH))
        });
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(HashError::Failed(closed.into())),
            Err(_) => {
                tracing::warn!(?wait, "argon2 busy: 429");
                Err(HashError::Busy)
            }
        }
    }

    /// Runs `f` on a blocking thread with a permit and a pooled [`Memory`]; both are given
    /// back when `f` is done, even if the caller has stopped waiting.
    async fn run<T: Send + 'static>(
        &self,
        remaining: Option<Duration>,
        f: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.permit(remaining).await?;
        let pool = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            let taken = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut memory = taken.unwrap_or_default();
            let result = f(&mut memory);
            pool.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            drop(permit);
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.into()))
    }

    /// Hashes a password into a PHC string; `remaining` is how long the caller still waits
    /// (`RpcContext::remaining`), `None` when unknown.
    pub async fn hash(
        &self,
        password: String,
        remaining: Option<Duration>,
    ) -> Result<String, HashError> {
        self.run(remaining, move |memory| hash_in(memory, &password))
            .await?
            .map_err(HashError::Failed)
    }

    /// Checks a password against a stored hash, or against the dummy when there is none;
    /// `remaining` as for [`Self::hash`].
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
        remaining: Option<Duration>,
    ) -> Result<bool, HashError> {
        let known = phc.is_some();
        let ok = self
            .run(remaining, move |memory| match phc {
                Some(phc) => verify_in(memory, &password, &phc),
                None => verify_in(memory, &password, &DUMMY_HASH),
            })
            .await?;
        Ok(known && ok)
    }

    /// How many 19 MiB buffers the pool holds now (at most `max_concurrent`).
    pub fn buffers(&self) -> usize {
        self.memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
        let h = p.hash("correct horse".into(), None).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            p.verify("correct horse".into(), Some(h.clone()), None)
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong horse".into(), Some(h), None).await.unwrap());
        assert!(
            !p.verify("dummy password for timing".into(), None, None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        let mut memory = Memory::new();
        // Ours, checked by the argon2 crate's own verifier.
        let ours = hash_in(&mut memory, "correct horse").unwrap();
        assert!(
            standard
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        // The crate's (how every stored hash so far was made), checked in our reused memory.
        let theirs = standard
            .hash_password_with_salt(b"correct horse", b"0123456789abcdef")
            .unwrap()
            .to_string();
        assert!(verify_in(&mut memory, "correct horse", &theirs));
        assert!(!verify_in(&mut memory, "correct horsf", &theirs));
        assert!(!verify_in(
            &mut memory,
            "correct horse",
            "$argon2id$garbage"
        ));
        assert!(!verify_in(&mut memory, "correct horse", ""));
        assert_eq!(memory.len(), 19 * 1024, "one run's blocks, reused");
    }

    #[tokio::test]
    async fn a_burst_uses_at_most_one_buffer_per_permit() {
        let p = pool(2, 60_000);
        let runs: Vec<_> = (0..6)
            .map(|i| {
                let p = p.clone();
                tokio::spawn(async move { p.hash(format!("password {i}"), None).await })
            })
            .collect();
        for r in runs {
            assert!(r.await.unwrap().is_ok());
        }
        assert!((1..=2).contains(&p.buffers()), "{} buffers", p.buffers());
        assert_eq!(p.permits.available_permits(), 2, "every permit returned");
    }

    #[tokio::test]
    async fn hash_and_verify_without_a_permit_in_time_are_busy_and_a_429() {
        let p = pool(1, 50);
        let held = p.permits.clone().acquire_owned().await.unwrap();
        assert!(matches!(
            p.hash("correct horse".into(), None).await,
            Err(HashError::Busy)
        ));
        assert!(matches!(
            p.verify("correct horse".into(), None, None).await,
            Err(HashError::Busy)
        ));
        assert_eq!(
            ApiError::from(HashError::Busy),
            ApiError::too_many_requests()
        );
        // A caller with little time left is answered at once, whatever ARGON2_WAIT_MS says.
        let patient = pool(1, 60_000);
        let _held = patient.permits.clone().acquire_owned().await.unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            patient
                .hash("correct horse".into(), Some(Duration::from_millis(600)))
                .await,
            Err(HashError::Busy)
        ));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited {:?}",
            started.elapsed()
        );
        drop(held);
        assert!(p.hash("correct horse".into(), None).await.is_ok());
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
