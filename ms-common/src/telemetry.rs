//! Tracing setup shared by every binary: env-filtered, JSON with `LOG_FORMAT=json`.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls are ignored (tests call it freely).
/// (`lapin::channels` is silenced by default: it reports every connection close, even our
/// own at shutdown, as an error; reconnects are logged by our own code.)
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,lapin=warn,lapin::channels=off,socketioxide=warn,engineioxide=warn")
    });
    let json = crate::config::env_opt("LOG_FORMAT").is_some_and(|v| v == "json");
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(fmt::layer().json().with_current_span(true))
            .try_init()
    } else {
        registry.with(fmt::layer().compact()).try_init()
    };
    if result.is_ok() {
        tracing::debug!(service, "tracing initialised");
    }
}

/// For tests: logs only when `TEST_LOG` is set, so test output stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init("test");
    }
}

/// A new correlation id for a request that came without one: unique across processes (a
/// random prefix per process) and cheap per request (a counter, no random bytes or
/// syscall), in the characters a client-given id may use.
pub fn new_correlation_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string());
    format!("{prefix}-{:x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    #[test]
    fn correlation_ids_differ_and_stay_short() {
        let a = super::new_correlation_id();
        let b = super::new_correlation_id();
        assert_ne!(a, b);
        assert!(a.len() <= 64 && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
}
