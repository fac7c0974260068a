//! One fixed timestamp format for storage, so text columns sort chronologically.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// The current time at storage precision (microseconds), so a record read back equals the
/// record returned when it was created.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Formats as RFC 3339 UTC with microseconds, e.g. `2026-11-23T20:00:00.123456Z`.
pub fn to_db(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses any RFC 3339 timestamp into UTC.
pub fn from_db(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)?.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sorts_as_text() {
        let a = chrono::Utc::now();
        let b = a + chrono::Duration::microseconds(1);
        assert!(super::to_db(&a) < super::to_db(&b));
        assert_eq!(
            super::from_db(&super::to_db(&a))
                .unwrap()
                .timestamp_micros(),
            a.timestamp_micros()
        );
    }
}
