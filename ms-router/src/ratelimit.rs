//! Sign-up and sign-in throttles whose memory cannot be driven up from outside.
//!
//! ```text
//! request ─▶ keys: hash(secret, scope, value), value = normalised e-mail or client address
//!        ─▶ Throttle::attempt(every key with its allowance)
//!              every key within its allowance ─▶ all recorded, go on
//!              any key over                   ─▶ nothing recorded, 429
//! ```
//!
//! - **Fixed-size keys.** A key is 16 bytes of SHA-256 over a per-process random secret,
//!   the scope (sign-up or sign-in, e-mail or address) and the value, so a 64 KiB body
//!   costs no more than any other, and nobody can aim at a key from outside. E-mails
//!   longer than the contract allows are refused before any key is built (see `http.rs`).
//! - **One instant per key** (GCRA, the generic cell rate algorithm): an allowance of N per
//!   window W lets N through at once and then one every W/N. A key holds the instant its
//!   allowance is whole again (`full_at`); a key past it is the same as no key and is dropped.
//! - **A hard cap.** At most `cap` keys: a new key at the cap first drops every key past its
//!   `full_at`, then evicts the one whose `full_at` is nearest (the least owed). The map
//!   never grows past the cap.
//! - **Refusals are free.** A refused attempt records nothing and extends nothing, so
//!   hammering a refused key does not keep it refused, and cannot fill the map.
//!
//! In memory and per router replica.

use crate::client::address_key;
use ms_common::ApiError;
use ms_common::contract::{INVALID_EMAIL, normalize_email};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a key counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Scope {
    /// Sign-ins per e-mail.
    SigninEmail = 1,
    /// Sign-ins per client address.
    SigninAddress = 2,
    /// Sign-ups per e-mail.
    SignupEmail = 3,
    /// Sign-ups per client address.
    SignupAddress = 4,
    /// Socket events per user, across all their sockets.
    SocketUser = 5,
    /// Socket writes (actions that change state) per user, across all their sockets.
    SocketUserWrite = 6,
}

/// A throttle key: a truncated keyed hash, never the e-mail or address itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 16]);

/// N attempts per window: N at once, then one every `window / N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Attempts at once (at least 1).
    pub max: u32,
    /// The window in which `max` attempts are allowed again.
    pub window: Duration,
}

impl Allowance {
    /// A token bucket as an allowance: `burst` at once, refilled at `per_second` attempts a
    /// second (`window` = `burst / per_second`). `None` unless the rate is a positive,
    /// finite number and the window fits a `Duration`.
    pub fn per_second(per_second: f64, burst: u32) -> Option<Self> {
        let max = burst.max(1);
        if !(per_second.is_finite() && per_second > 0.0) {
            return None;
        }
        let window = Duration::try_from_secs_f64(f64::from(max) / per_second).ok()?;
        Some(Self { max, window })
    }

    /// The time one attempt costs.
    fn interval(&self) -> Duration {
        self.window / self.max.max(1)
    }

    /// GCRA: one more attempt at `now` on a key whose allowance is whole again at `full_at`
    /// (`None`: whole already). The key's next `full_at` when it fits, `None` when it is over.
    fn take(&self, full_at: Option<Instant>, now: Instant) -> Option<Instant> {
        let full_at = full_at.unwrap_or(now).max(now);
        // Allowed while the debt after this attempt fits in the window.
        let after = full_at.checked_add(self.interval())?;
        (after.duration_since(now) <= self.window).then_some(after)
    }
}

/// One key's allowance kept by its owner instead of in a [`Throttle`] (a socket keeps its
/// own, so it goes away with the socket): the instant the allowance is whole again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    full_at: Option<Instant>,
}

impl Bucket {
    /// The bucket after one more attempt at `now`, or `None` when it is over `allowance`
    /// (the bucket itself is not changed: commit the result with [`Self::set`]).
    pub fn peek(&self, allowance: Allowance, now: Instant) -> Option<Bucket> {
        allowance
            .take(self.full_at, now)
            .map(|at| Bucket { full_at: Some(at) })
    }

    /// One attempt at `now`: true, and recorded, within `allowance`; false, and nothing
    /// recorded, over it.
    pub fn attempt(&mut self, allowance: Allowance, now: Instant) -> bool {
        match self.peek(allowance, now) {
            Some(next) => {
                *self = next;
                true
            }
            None => false,
        }
    }

    /// Replaces the bucket with one that [`Self::peek`] returned.
    pub fn set(&mut self, next: Bucket) {
        *self = next;
    }
}

#[derive(Default)]
struct Entries {
    /// Key → the instant its allowance is whole again.
    full_at: HashMap<Key, Instant>,
    /// The same entries ordered by that instant: the first ones are dropped first.
    by_time: BTreeSet<(Instant, Key)>,
}

impl Entries {
    fn set(&mut self, key: Key, at: Instant) {
        if let Some(old) = self.full_at.insert(key, at) {
            self.by_time.remove(&(old, key));
        }
        self.by_time.insert((at, key));
    }

    /// Drops every key whose allowance is whole again (the same as no entry).
    fn drop_expired(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.by_time.first() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            self.full_at.remove(&key);
        }
    }

    /// Drops the key whose allowance is nearest to whole.
    fn evict_one(&mut self) {
        if let Some((_, key)) = self.by_time.pop_first() {
            self.full_at.remove(&key);
        }
    }
}

/// Attempt counters for many keys in bounded memory.
pub struct Throttle {
    secret: [u8; 32],
    cap: usize,
    entries: Mutex<Entries>,
}

impl Throttle {
    /// A throttle holding at most `cap` keys (at least 16).
    pub fn new(cap: usize) -> Self {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        Self {
            secret,
            cap: cap.max(16),
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The key of `value` (normalised e-mail, client address bytes) in `scope`.
    pub fn key(&self, scope: Scope, value: &[u8]) -> Key {
        let digest = Sha256::new()
            .chain_update(self.secret)
            .chain_update([scope as u8])
            .chain_update(value)
            .finalize();
        let mut k = [0u8; 16];
        k.copy_from_slice(&digest[..16]);
        Key(k)
    }

    /// One attempt against every key: true, and recorded on each, when all are within their
    /// allowance; false, and nothing recorded, when any is over.
    pub fn attempt(&self, keys: &[(Key, Allowance)]) -> bool {
        self.attempt_at(Instant::now(), keys)
    }

    /// [`Self::attempt`] at a given instant (tests move time by hand).
    pub fn attempt_at(&self, now: Instant, keys: &[(Key, Allowance)]) -> bool {
        // Entries stay consistent at every step, so a panic elsewhere leaves them usable.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.drop_expired(now);
        let mut next = Vec::with_capacity(keys.len());
        for (key, allowance) in keys {
            let Some(after) = allowance.take(entries.full_at.get(key).copied(), now) else {
                return false;
            };
            next.push((*key, after));
        }
        for (key, after) in next {
            while !entries.full_at.contains_key(&key) && entries.full_at.len() >= self.cap {
                entries.evict_one();
            }
            entries.set(key, after);
        }
        true
    }

    /// How many keys are held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .full_at
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which account request an attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAction {
    /// `POST /api/users/signup`.
    Signup,
    /// `POST /api/users/signin`.
    Signin,
}

/// The sign-up and sign-in allowances over one [`Throttle`].
pub struct AuthThrottle {
    throttle: Throttle,
    signup: Allowance,
    signin: Allowance,
}

impl AuthThrottle {
    /// Each action's allowance per e-mail and per client address; at most `cap` keys in all.
    pub fn new(cap: usize, signup: Allowance, signin: Allowance) -> Self {
        Self {
            throttle: Throttle::new(cap),
            signup,
            signin,
        }
    }

    /// Counts one attempt of `action` by `client` for `email` (the body's raw `email`, when
    /// it is a string). An e-mail longer than the contract allows is a 400 on `email`
    /// before any key is built; over an allowance, a 429 and nothing recorded.
    pub fn attempt(
        &self,
        action: AuthAction,
        email: Option<&str>,
        client: IpAddr,
    ) -> Result<(), ApiError> {
        let email = match email {
            Some(raw) => {
                Some(normalize_email(raw).ok_or_else(|| ApiError::field("email", INVALID_EMAIL))?)
            }
            None => None,
        };
        let (allowance, by_email, by_address) = match action {
            AuthAction::Signup => (self.signup, Scope::SignupEmail, Scope::SignupAddress),
            AuthAction::Signin => (self.signin, Scope::SigninEmail, Scope::SigninAddress),
        };
        let mut keys = vec![(
            self.throttle.key(by_address, &address_key(client)),
            allowance,
        )];
        if let Some(e) = email.filter(|e| !e.is_empty()) {
            keys.push((self.throttle.key(by_email, e.as_bytes()), allowance));
        }
        if self.throttle.attempt(&keys) {
            Ok(())
        } else {
            // Debug, not warn: refusals are what an attacker makes, one line each would flood.
            tracing::debug!(?action, "auth throttle: 429");
            Err(ApiError::too_many_requests())
        }
    }

    /// How many keys are held now.
    pub fn len(&self) -> usize {
        self.throttle.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.throttle.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn per_minute(max: u32) -> Allowance {
        Allowance {
            max,
            window: MINUTE,
        }
    }

    #[test]
    fn limits_each_key_and_records_nothing_for_a_refusal() {
        let t = Throttle::new(100);
        let now = Instant::now();
        let a = per_minute(2);
        let email_a = t.key(Scope::SigninEmail, b"a@x.com");
        let email_b = t.key(Scope::SigninEmail, b"b@x.com");
        let addr_1 = t.key(Scope::SigninAddress, &[1, 2, 3, 4]);
        let addr_2 = t.key(Scope::SigninAddress, &[5, 6, 7, 8]);
        assert!(t.attempt_at(now, &[(email_a, a), (addr_1, a)]));
        assert!(t.attempt_at(now, &[(email_a, a), (addr_1, a)]));
        assert!(!t.attempt_at(now, &[(email_a, a), (addr_1, a)]));
        assert!(
            !t.attempt_at(now, &[(email_b, a), (addr_1, a)]),
            "same address, other e-mail"
        );
        assert!(
            t.attempt_at(now, &[(email_b, a), (addr_2, a)]),
            "the refusal above recorded nothing for b@x.com"
        );
        assert!(t.attempt_at(now, &[(email_b, a)]));
        assert!(!t.attempt_at(now, &[(email_b, a)]));
    }

    #[test]
    fn a_rate_with_a_burst_is_an_allowance_and_a_bucket_keeps_one() {
        let a = Allowance::per_second(20.0, 60).unwrap();
        assert_eq!((a.max, a.window), (60, Duration::from_secs(3)));
        let slow = Allowance::per_second(0.5, 1).unwrap();
        assert_eq!(slow.window, Duration::from_secs(2));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Allowance::per_second(bad, 10).is_none(), "{bad}");
        }
        let mut b = Bucket::default();
        let now = Instant::now();
        for _ in 0..60 {
            assert!(b.attempt(a, now));
        }
        assert!(!b.attempt(a, now), "the burst is spent");
        assert!(b.peek(a, now + Duration::from_millis(49)).is_none());
        assert!(
            b.attempt(a, now + Duration::from_millis(50)),
            "one more every 1/20 s"
        );
    }

    #[test]
    fn scopes_and_secrets_make_different_keys() {
        let t = Throttle::new(100);
        assert_ne!(
            t.key(Scope::SignupEmail, b"a@x.com"),
            t.key(Scope::SigninEmail, b"a@x.com")
        );
        assert_eq!(
            t.key(Scope::SignupEmail, b"a@x.com"),
            t.key(Scope::SignupEmail, b"a@x.com")
        );
        assert_ne!(
            Throttle::new(100).key(Scope::SignupEmail, b"a@x.com"),
            t.key(Scope::SignupEmail, b"a@x.com"),
            "a per-process secret"
        );
    }

    #[test]
    fn refused_attempts_do_not_extend_the_wait() {
        let t = Throttle::new(100);
        let k = t.key(Scope::SigninEmail, b"victim@x.com");
        let a = per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.attempt_at(start, &[(k, a)]));
        }
        // Hammered once a second for 19 s: every attempt refused.
        for s in 1..20 {
            assert!(!t.attempt_at(start + Duration::from_secs(s), &[(k, a)]));
        }
        // One attempt's worth of time (60 s / 3) after the burst, one more goes through,
        // however many were refused in between.
        assert!(t.attempt_at(start + Duration::from_secs(20), &[(k, a)]));
        assert!(!t.attempt_at(start + Duration::from_secs(21), &[(k, a)]));
        // A whole window of quiet: the whole allowance again, and the key is gone.
        let later = start + Duration::from_secs(20) + MINUTE;
        t.attempt_at(later, &[]);
        assert_eq!(t.len(), 0, "a key with its whole allowance is no entry");
        for _ in 0..3 {
            assert!(t.attempt_at(later, &[(k, a)]));
        }
    }

    #[test]
    fn the_cap_holds_under_100k_distinct_keys() {
        let cap = 1_000;
        let t = Throttle::new(cap);
        let now = Instant::now();
        let a = per_minute(5);
        for i in 0..100_000u32 {
            let k = t.key(Scope::SignupEmail, &i.to_be_bytes());
            assert!(t.attempt_at(now, &[(k, a)]), "a fresh key is allowed");
            assert!(t.len() <= cap, "{} keys after {i}", t.len());
        }
        assert_eq!(t.len(), cap);
    }

    #[test]
    fn at_the_cap_expired_keys_go_first_then_the_least_owed() {
        let t = Throttle::new(16);
        let start = Instant::now();
        let a = per_minute(2);
        let keys: Vec<Key> = (0..16u8).map(|i| t.key(Scope::SigninEmail, &[i])).collect();
        // Key 0 spends its whole allowance (owed for a minute); the others one attempt each
        // (owed 30 s), key 1 a little later than the rest.
        assert!(t.attempt_at(start, &[(keys[0], a)]));
        assert!(t.attempt_at(start, &[(keys[0], a)]));
        for k in &keys[2..] {
            assert!(t.attempt_at(start, &[(*k, a)]));
        }
        assert!(t.attempt_at(start + Duration::from_secs(10), &[(keys[1], a)]));
        assert_eq!(t.len(), 16);
        // A new key at the cap evicts one of the least owed, never key 0 nor key 1.
        let new = t.key(Scope::SigninEmail, b"new");
        assert!(t.attempt_at(start + Duration::from_secs(11), &[(new, a)]));
        assert_eq!(t.len(), 16);
        assert!(
            !t.attempt_at(start + Duration::from_secs(11), &[(keys[0], a)]),
            "the most owed key survived"
        );
        // 31 s on, keys 2.. are whole again and dropped first; key 0 and key 1 stay.
        assert!(t.attempt_at(start + Duration::from_secs(31), &[]));
        assert_eq!(t.len(), 3, "key 0, key 1, the new key");
    }

    fn auth(max: u32) -> AuthThrottle {
        AuthThrottle::new(1000, per_minute(max), per_minute(max))
    }

    #[test]
    fn an_email_over_the_limit_is_a_400_before_any_key_is_built() {
        let t = auth(5);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        for long in ["a".repeat(255), format!("{}@x.com", "a".repeat(65_000))] {
            for action in [AuthAction::Signup, AuthAction::Signin] {
                let e = t.attempt(action, Some(&long), ip).unwrap_err();
                assert_eq!(e, ApiError::field("email", INVALID_EMAIL));
            }
        }
        assert!(t.is_empty(), "no key built, not even the address's");
        let at_limit = format!("{}@x.com", "a".repeat(254 - 6));
        assert!(t.attempt(AuthAction::Signup, Some(&at_limit), ip).is_ok());
        assert_eq!(t.len(), 2, "the address and the e-mail");
    }

    #[test]
    fn signups_and_signins_have_their_own_allowances_per_email_and_per_address() {
        let t = AuthThrottle::new(1000, per_minute(2), per_minute(3));
        let home: IpAddr = "198.51.100.1".parse().unwrap();
        let cafe: IpAddr = "198.51.100.2".parse().unwrap();
        assert!(t.attempt(AuthAction::Signup, Some("a@x.com"), home).is_ok());
        assert!(t.attempt(AuthAction::Signup, Some("b@x.com"), home).is_ok());
        let e = t
            .attempt(AuthAction::Signup, Some("c@x.com"), home)
            .unwrap_err();
        assert_eq!(e, ApiError::too_many_requests());
        // Sign-ins still have their whole allowance at that address.
        for _ in 0..3 {
            assert!(t.attempt(AuthAction::Signin, Some("a@x.com"), home).is_ok());
        }
        // Per e-mail, whatever the address: " A@X.com" is a@x.com.
        assert!(
            t.attempt(AuthAction::Signin, Some(" A@X.com"), cafe)
                .is_err()
        );
        // No e-mail in the body: the address alone.
        assert!(t.attempt(AuthAction::Signup, None, cafe).is_ok());
    }
}
