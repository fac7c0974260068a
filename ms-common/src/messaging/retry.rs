//! How consumers space their retries: exponential backoff with jitter over a ladder of
//! fixed-TTL retry queues, given up after a time budget longer than a database failover.
//!
//! ```text
//! retry 1 ─▶ {queue}.retry.{base}ms     waits base/2 … base
//! retry 2 ─▶ {queue}.retry.{2·base}ms   waits base … 2·base
//! retry n ─▶ {queue}.retry.{min(2ⁿ⁻¹·base, max)}ms
//! ```
//! Each rung is a queue whose `x-message-ttl` is its delay (the upper bound); a message on
//! it also carries a per-message `expiration` drawn from `[delay/2, delay]` ("equal
//! jitter"), so messages that failed together (a store outage) come back spread out. A
//! message waiting behind a longer one on the same rung still leaves within the rung's TTL,
//! so the bound holds. The original is acked once the retry copy is confirmed, so a failing
//! message never occupies a prefetch slot while it waits.
//!
//! A message is dead-lettered once `budget` has passed since its first failure (the header
//! [`FIRST_FAILURE_HEADER`]) or after `max_retries` retries, whichever comes first. A
//! deferral ([`super::HandleError::Defer`], "not due yet") waits on the rung that covers
//! its wait and counts against neither.

use std::time::Duration;

/// Header with the Unix time in milliseconds of a message's first failed attempt; the
/// retry budget runs from it.
pub const FIRST_FAILURE_HEADER: &str = "x-first-failure-ms";

/// The most rungs a ladder has (a guard against a tiny base and a huge cap).
const MAX_RUNGS: usize = 24;

/// The retry settings of a consumer (`RETRY_DELAY_MS`, `RETRY_MAX_DELAY_MS`,
/// `RETRY_BUDGET_SECONDS`, `MAX_RETRIES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry; each later one doubles it.
    pub base: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// Time after the first failure past which a message is dead-lettered.
    pub budget: Duration,
    /// Retries past which a message is dead-lettered even within the budget.
    pub max_retries: u32,
}

impl RetryPolicy {
    /// The delays of the retry queues, shortest first: `base`, doubling, capped at
    /// `max_delay` (at least 1 ms each).
    pub fn rungs(&self) -> Vec<Duration> {
        let base = self.base.max(Duration::from_millis(1));
        let max = self.max_delay.max(base);
        let mut rungs = vec![base];
        let mut next = base;
        while rungs.len() < MAX_RUNGS {
            next = (next * 2).min(max);
            if rungs.last() == Some(&next) {
                break;
            }
            rungs.push(next);
        }
        rungs
    }

    /// The nominal (longest) delay before retry number `retry` (1 for the first).
    pub fn delay_for(&self, retry: u32) -> Duration {
        let rungs = self.rungs();
        let at = usize::try_from(retry.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(rungs.len() - 1);
        rungs[at]
    }

    /// The shortest rung that covers `wait` (the longest rung when none does).
    pub fn rung_covering(&self, wait: Duration) -> Duration {
        let rungs = self.rungs();
        rungs
            .iter()
            .copied()
            .find(|r| *r >= wait)
            .unwrap_or(rungs[rungs.len() - 1])
    }

    /// Whether a message that has been retried `retries` times, first failing `elapsed`
    /// ago, has used up its allowance.
    pub fn exhausted(&self, retries: u32, elapsed: Duration) -> bool {
        retries >= self.max_retries || elapsed >= self.budget
    }
}

/// A wait drawn from `[delay/2, delay]`, so retries of messages that failed together
/// spread out.
pub fn jittered(delay: Duration) -> Duration {
    use rand::Rng;
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX).max(1);
    let low = (ms / 2).max(1);
    Duration::from_millis(rand::rng().random_range(low..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(base: u64, max: u64) -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(base),
            max_delay: Duration::from_millis(max),
            budget: Duration::from_secs(300),
            max_retries: 100,
        }
    }

    #[test]
    fn rungs_double_up_to_the_cap() {
        let ms =
            |p: RetryPolicy| -> Vec<u128> { p.rungs().iter().map(|d| d.as_millis()).collect() };
        assert_eq!(
            ms(policy(1000, 30_000)),
            vec![1000, 2000, 4000, 8000, 16_000, 30_000]
        );
        assert_eq!(ms(policy(100, 800)), vec![100, 200, 400, 800]);
        // A cap below the base is the base.
        assert_eq!(ms(policy(500, 100)), vec![500]);
        assert_eq!(policy(0, 0).rungs(), vec![Duration::from_millis(1)]);
        assert!(policy(1, u64::MAX / 4).rungs().len() <= MAX_RUNGS);
    }

    #[test]
    fn delays_grow_then_stay_at_the_cap() {
        let p = policy(1000, 30_000);
        assert_eq!(p.delay_for(1), Duration::from_secs(1));
        assert_eq!(p.delay_for(3), Duration::from_secs(4));
        assert_eq!(p.delay_for(6), Duration::from_secs(30));
        assert_eq!(p.delay_for(60), Duration::from_secs(30));
        assert_eq!(
            p.rung_covering(Duration::from_millis(2500)),
            Duration::from_secs(4)
        );
        assert_eq!(
            p.rung_covering(Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        assert_eq!(p.rung_covering(Duration::ZERO), Duration::from_secs(1));
    }

    #[test]
    fn the_default_budget_outlasts_a_database_failover() {
        // Defaults: 1 s doubling to 30 s, for 300 s. A MongoDB election takes ~10–30 s;
        // the old policy (5 × 1 s) gave up after ~5 s.
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            budget: Duration::from_secs(300),
            max_retries: 100,
        };
        let mut waited = Duration::ZERO;
        let mut retries = 0;
        while !p.exhausted(retries, waited) {
            retries += 1;
            // The shortest jittered wait: the budget, not the count, ends it.
            waited += p.delay_for(retries) / 2;
        }
        assert!(waited >= Duration::from_secs(300));
        assert!(retries < 100);
    }

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..200 {
            let d = jittered(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_millis(1000));
        }
        assert_eq!(jittered(Duration::ZERO), Duration::from_millis(1));
    }
}
