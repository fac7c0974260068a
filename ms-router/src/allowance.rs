//! Socket allowances: what one client may ask of the router, so that one flooding socket
//! cannot slow down anybody else's requests.
//!
//! ```text
//! connect ─▶ client address (crate::client; IPv6 by its /64)
//!         ─▶ fewer than `max_per_address` sockets open from it ─▶ else connect_error
//!                                                                 `Too many connections`
//! event   ─▶ its cost: a write when its action changes state (`Action::mutates`), else a read
//!         ─▶ fewer than `max_in_flight` of this socket's requests await their ack
//!         ─▶ the socket's events bucket (and, for a write, its writes bucket)
//!         ─▶ signed in: the user's events (and writes) keys, shared by all their sockets
//!               everything within ─▶ recorded, relayed; the in-flight slot is held until
//!                                    the ack leaves
//!               anything over    ─▶ nothing recorded, a 429 ack at once
//! ```
//!
//! - **One limiter.** The buckets are [`crate::ratelimit`]'s GCRA allowances: a rate with a
//!   burst is `burst` events at once, then one every `1 / rate` seconds.
//! - **Bounded memory.** A socket's own buckets and in-flight count live in its extensions
//!   ([`SocketBudget`]) and go with it. The per-user keys are keyed hashes in a capped
//!   [`Throttle`]. A client address has a counter only while it has a socket open, so the
//!   counters never outnumber the open sockets.
//! - **Refusals are free.** A refused event spends no token and holds no slot, so a client
//!   that keeps flooding gets its allowance back as fast as one that stops.
//! - **Writes are stricter.** Every event spends from the events allowance; a write spends
//!   from the (smaller) writes allowance as well.
//!
//! In memory and per router replica.

use crate::client::address_key;
use crate::ratelimit::{Allowance, Bucket, Scope, Throttle};
use ms_common::ApiError;
use ms_common::config::env_parse;
use ms_common::contract::Action;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What an event costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Spends from the events allowance only.
    Read,
    /// Changes state: spends from the events and the writes allowance.
    Write,
}

impl Cost {
    /// A write when the action changes state; anything else (an unknown event,
    /// `session:authenticate`) is a read.
    pub fn of(action: Option<Action>) -> Self {
        match action {
            Some(a) if a.mutates() => Cost::Write,
            _ => Cost::Read,
        }
    }
}

/// The router's socket settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// `SOCKET_RATE` / `SOCKET_BURST` (20 a second, 60 at once): events per socket, and per
    /// user across all their sockets.
    pub events: Allowance,
    /// `SOCKET_WRITE_RATE` / `SOCKET_WRITE_BURST` (2 a second, 10 at once): writes per
    /// socket and per user, spent on top of the events allowance.
    pub writes: Allowance,
    /// `SOCKET_MAX_IN_FLIGHT` (16): requests of one socket that may await their ack.
    pub max_in_flight: usize,
    /// `MAX_CONNECTIONS_PER_ADDRESS` (100): sockets open at once from one client address.
    pub max_per_address: usize,
}

/// Parses a rate and a burst into an allowance, naming the variables when they are bad.
fn allowance(rate_var: &str, rate: f64, burst_var: &str, burst: u32) -> anyhow::Result<Allowance> {
    anyhow::ensure!(burst >= 1, "{burst_var} must be at least 1");
    Allowance::per_second(rate, burst)
        .ok_or_else(|| anyhow::anyhow!("{rate_var} must be a positive number of events a second"))
}

impl SocketLimits {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Self> {
        let events = allowance(
            "SOCKET_RATE",
            env_parse("SOCKET_RATE", 20.0f64)?,
            "SOCKET_BURST",
            env_parse("SOCKET_BURST", 60u32)?,
        )?;
        let writes = allowance(
            "SOCKET_WRITE_RATE",
            env_parse("SOCKET_WRITE_RATE", 2.0f64)?,
            "SOCKET_WRITE_BURST",
            env_parse("SOCKET_WRITE_BURST", 10u32)?,
        )?;
        let max_in_flight = env_parse("SOCKET_MAX_IN_FLIGHT", 16usize)?;
        anyhow::ensure!(
            max_in_flight >= 1,
            "SOCKET_MAX_IN_FLIGHT must be at least 1"
        );
        let max_per_address = env_parse("MAX_CONNECTIONS_PER_ADDRESS", 100usize)?;
        anyhow::ensure!(
            max_per_address >= 1,
            "MAX_CONNECTIONS_PER_ADDRESS must be at least 1"
        );
        Ok(Self {
            events,
            writes,
            max_in_flight,
            max_per_address,
        })
    }

    /// Limits no test reaches by accident (tests that are about something else).
    pub fn generous() -> Self {
        let plenty = Allowance {
            max: 1_000_000,
            window: Duration::from_secs(1),
        };
        Self {
            events: plenty,
            writes: plenty,
            max_in_flight: 100_000,
            max_per_address: 100_000,
        }
    }
}

/// One socket's buckets.
#[derive(Debug, Default, Clone, Copy)]
struct SocketBuckets {
    events: Bucket,
    writes: Bucket,
}

/// One socket's own allowance state, kept in its extensions and gone with it.
#[derive(Debug, Default)]
pub struct SocketBudget {
    buckets: Mutex<SocketBuckets>,
    in_flight: AtomicUsize,
}

impl SocketBudget {
    /// How many of this socket's requests await their ack.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// A request in flight on one socket; its slot is given back when this is dropped (the
/// request was answered or gave up).
#[derive(Debug)]
pub struct InFlight(Arc<SocketBudget>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Open sockets per client address (the key is [`address_key`]); an address with none
/// has no entry.
type AddressCounts = Arc<Mutex<HashMap<Vec<u8>, usize>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent, so a panic elsewhere leaves it usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One open socket of a client address; the count goes down when this is dropped.
#[derive(Debug)]
pub struct AddressSlot {
    key: Vec<u8>,
    counts: AddressCounts,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Which allowance refused an event (for the debug log; the client sees one 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The socket has `max_in_flight` requests awaiting their ack.
    InFlight,
    /// The socket's events bucket.
    SocketEvents,
    /// The socket's writes bucket.
    SocketWrites,
    /// The user's buckets, shared by all their sockets.
    User,
}

/// The allowances shared by every socket of this router: the per-user buckets and the
/// per-address connection counts.
pub struct Allowances {
    limits: SocketLimits,
    users: Throttle,
    addresses: AddressCounts,
}

impl Allowances {
    /// Allowances with these limits; the per-user buckets remember at most `max_users`
    /// keys (two per user: events and writes).
    pub fn new(limits: SocketLimits, max_users: usize) -> Self {
        Self {
            limits,
            users: Throttle::new(max_users),
            addresses: Arc::default(),
        }
    }

    /// The settings.
    pub fn limits(&self) -> SocketLimits {
        self.limits
    }

    /// One event of the socket whose state is `socket`, signed in as `user` (`None`:
    /// anonymous): its in-flight slot, or a 429 with nothing recorded.
    pub fn admit(
        &self,
        socket: &Arc<SocketBudget>,
        user: Option<&str>,
        cost: Cost,
    ) -> Result<InFlight, ApiError> {
        self.admit_at(socket, user, cost, Instant::now())
            .map_err(|over| {
                // Debug, not warn: refusals are what a flood makes, one line each would flood.
                tracing::debug!(?over, ?cost, "socket allowance: 429");
                ApiError::too_many_requests()
            })
    }

    /// [`Self::admit`] at a given instant (tests move time by hand), saying which
    /// allowance refused.
    pub fn admit_at(
        &self,
        socket: &Arc<SocketBudget>,
        user: Option<&str>,
        cost: Cost,
        now: Instant,
    ) -> Result<InFlight, Over> {
        let before = socket.in_flight.fetch_add(1, Ordering::SeqCst);
        // From here on, dropping the ticket gives the slot back, on every path.
        let ticket = InFlight(socket.clone());
        if before >= self.limits.max_in_flight {
            return Err(Over::InFlight);
        }
        let mut buckets = lock(&socket.buckets);
        let events = buckets
            .events
            .peek(self.limits.events, now)
            .ok_or(Over::SocketEvents)?;
        let writes = match cost {
            Cost::Read => None,
            Cost::Write => Some(
                buckets
                    .writes
                    .peek(self.limits.writes, now)
                    .ok_or(Over::SocketWrites)?,
            ),
        };
        if let Some(id) = user {
            let mut keys = vec![(
                self.users.key(Scope::SocketUser, id.as_bytes()),
                self.limits.events,
            )];
            if cost == Cost::Write {
                keys.push((
                    self.users.key(Scope::SocketUserWrite, id.as_bytes()),
                    self.limits.writes,
                ));
            }
            // Records on the user's keys only when every one of them is within.
            if !self.users.attempt_at(now, &keys) {
                return Err(Over::User);
            }
        }
        buckets.events.set(events);
        if let Some(w) = writes {
            buckets.writes.set(w);
        }
        Ok(ticket)
    }

    /// A connection slot for a socket from `client`, or `None` when that address (an IPv6
    /// one by its /64) has `max_per_address` sockets open already.
    pub fn connect(&self, client: IpAddr) -> Option<AddressSlot> {
        let key = address_key(client);
        let mut counts = lock(&self.addresses);
        let n = counts.entry(key.clone()).or_insert(0);
        if *n >= self.limits.max_per_address {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            key,
            counts: self.addresses.clone(),
        })
    }

    /// How many client addresses have a socket open.
    pub fn addresses(&self) -> usize {
        lock(&self.addresses).len()
    }

    /// How many per-user keys are held.
    pub fn users(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ms_common::contract::{OrderAction, StuffAction};

    fn limits(events: (u32, u64), writes: (u32, u64), in_flight: usize) -> SocketLimits {
        SocketLimits {
            events: Allowance {
                max: events.0,
                window: Duration::from_secs(events.1),
            },
            writes: Allowance {
                max: writes.0,
                window: Duration::from_secs(writes.1),
            },
            max_in_flight: in_flight,
            max_per_address: 2,
        }
    }

    #[test]
    fn writes_are_the_actions_that_change_state() {
        assert_eq!(Cost::of(Some(StuffAction::Create.into())), Cost::Write);
        assert_eq!(Cost::of(Some(OrderAction::Create.into())), Cost::Write);
        assert_eq!(Cost::of(Some(StuffAction::List.into())), Cost::Read);
        assert_eq!(Cost::of(None), Cost::Read);
    }

    #[test]
    fn a_socket_gets_its_burst_then_its_rate_and_a_refusal_costs_nothing() {
        // 3 at once, then one a second.
        let a = Allowances::new(limits((3, 3), (100, 1), 100), 100);
        let s = Arc::new(SocketBudget::default());
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(a.admit_at(&s, None, Cost::Read, t0).unwrap());
        }
        for ms in [0, 100, 500, 900] {
            let at = t0 + Duration::from_millis(ms);
            assert_eq!(
                a.admit_at(&s, None, Cost::Read, at).unwrap_err(),
                Over::SocketEvents
            );
        }
        assert_eq!(s.in_flight(), 0, "refused events hold no slot");
        // A second after the burst, one more, however many were refused in between.
        assert!(
            a.admit_at(&s, None, Cost::Read, t0 + Duration::from_secs(1))
                .is_ok()
        );
        // Another socket has its own burst.
        let other = Arc::new(SocketBudget::default());
        assert!(a.admit_at(&other, None, Cost::Read, t0).is_ok());
    }

    #[test]
    fn writes_run_out_before_reads() {
        let a = Allowances::new(limits((100, 1), (2, 60), 100), 100);
        let s = Arc::new(SocketBudget::default());
        let now = Instant::now();
        assert!(a.admit_at(&s, None, Cost::Write, now).is_ok());
        assert!(a.admit_at(&s, None, Cost::Write, now).is_ok());
        assert_eq!(
            a.admit_at(&s, None, Cost::Write, now).unwrap_err(),
            Over::SocketWrites
        );
        assert!(a.admit_at(&s, None, Cost::Read, now).is_ok(), "reads go on");
    }

    #[test]
    fn a_users_sockets_share_one_allowance() {
        let a = Allowances::new(limits((2, 60), (100, 1), 100), 100);
        let now = Instant::now();
        let (s1, s2, s3) = (
            Arc::new(SocketBudget::default()),
            Arc::new(SocketBudget::default()),
            Arc::new(SocketBudget::default()),
        );
        assert!(a.admit_at(&s1, Some("ann"), Cost::Read, now).is_ok());
        assert!(a.admit_at(&s2, Some("ann"), Cost::Read, now).is_ok());
        assert_eq!(
            a.admit_at(&s3, Some("ann"), Cost::Read, now).unwrap_err(),
            Over::User
        );
        // The refusal recorded nothing on s3's own bucket: anonymous, it has its burst.
        assert!(a.admit_at(&s3, None, Cost::Read, now).is_ok());
        assert!(a.admit_at(&s3, None, Cost::Read, now).is_ok());
        assert!(a.admit_at(&s1, Some("bob"), Cost::Read, now).is_ok());
        assert_eq!(a.users(), 2, "one events key per user");
    }

    #[test]
    fn requests_in_flight_are_capped_and_their_slots_come_back() {
        let a = Allowances::new(limits((100, 1), (100, 1), 2), 100);
        let s = Arc::new(SocketBudget::default());
        let now = Instant::now();
        let first = a.admit_at(&s, None, Cost::Read, now).unwrap();
        let _second = a.admit_at(&s, None, Cost::Read, now).unwrap();
        assert_eq!(
            a.admit_at(&s, None, Cost::Read, now).unwrap_err(),
            Over::InFlight
        );
        assert_eq!(s.in_flight(), 2);
        drop(first);
        assert!(a.admit_at(&s, None, Cost::Read, now).is_ok());
    }

    #[test]
    fn connections_are_counted_per_address_and_forgotten_when_closed() {
        let a = Allowances::new(limits((1, 1), (1, 1), 1), 100);
        let home: IpAddr = "198.51.100.1".parse().unwrap();
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let one = a.connect(home).unwrap();
        let _two = a.connect(home).unwrap();
        assert!(a.connect(home).is_none());
        let x = a.connect(v6a).unwrap();
        let y = a.connect(v6b).unwrap();
        assert!(a.connect(v6a).is_none(), "one /64 is one client");
        drop(one);
        assert!(a.connect(home).is_some());
        drop(x);
        drop(y);
        assert_eq!(a.addresses(), 1, "an address with no socket has no entry");
    }
}
