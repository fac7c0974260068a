//! Sign-in throttling: at most N attempts per key (e-mail, address) in a sliding window.
//! In memory and per router replica; memory is bounded by pruning idle keys.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many tracked keys, idle ones are pruned on the next attempt.
const PRUNE_ABOVE: usize = 10_000;

/// A sliding-window attempt counter.
pub struct RateLimiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl RateLimiter {
    /// Allows `max` attempts per key per `window`.
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// Records an attempt for every key; false if any key is over its limit.
    pub fn attempt(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let Ok(mut hits) = self.hits.lock() else {
            return false;
        };
        if hits.len() > PRUNE_ABOVE {
            hits.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let mut allowed = true;
        for key in keys {
            let q = hits.entry(key.clone()).or_default();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                q.pop_front();
            }
            if q.len() >= self.max as usize {
                allowed = false;
            } else {
                q.push_back(now);
            }
        }
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_each_key() {
        let l = RateLimiter::new(2, Duration::from_secs(60));
        let a = vec!["email:a".to_owned(), "ip:1".to_owned()];
        assert!(l.attempt(&a));
        assert!(l.attempt(&a));
        assert!(!l.attempt(&a));
        assert!(
            !l.attempt(&["email:b".to_owned(), "ip:1".to_owned()]),
            "same address, other e-mail"
        );
        assert!(l.attempt(&["email:b".to_owned(), "ip:2".to_owned()]));
    }

    #[test]
    fn window_slides() {
        let l = RateLimiter::new(1, Duration::from_millis(1));
        assert!(l.attempt(&["k".to_owned()]));
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.attempt(&["k".to_owned()]));
    }
}
