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

/// `#[serde(with = "ms_common::time::db")]`: a time in a MongoDB document as [`to_db`] text,
/// the format the stores' string comparisons and sorts rely on (serde's own differs).
pub mod db {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes [`super::to_db`] text.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_db(t))
    }

    /// Reads any RFC 3339 text ([`super::from_db`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        super::from_db(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// [`db`] for an optional time: `None` is stored as `null` (pair with `#[serde(default)]` to
/// also read a missing field as `None`).
pub mod db_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes [`super::to_db`] text or `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::db::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads RFC 3339 text or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::from_db(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
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
