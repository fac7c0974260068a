//! Domain types that validate on construction: an `Email` or a `Password` that exists is valid.

use ms_common::ApiError;
use ms_common::contract::limits::{PASSWORD_MAX, PASSWORD_MIN};
use ms_common::contract::{INVALID_EMAIL, normalize_email};

/// A normalised (trimmed, lowercased) e-mail address with a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses user input; the error names the `email` field.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::field("email", INVALID_EMAIL);
        let s = normalize_email(raw).ok_or_else(invalid)?;
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(s))
    }
    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password within the contract's length limits (8–128 characters).
pub struct Password(String);

impl Password {
    /// Parses user input; the error names the `password` field.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let n = raw.chars().count();
        if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
            return Err(ApiError::field(
                "password",
                "Password must be between 8 and 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    /// The secret, only for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b.com.",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let local = "a".repeat(64);
        let at_limit = format!("{local}@{}.com", "b".repeat(254 - 64 - 1 - 4));
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok());
        assert!(
            Email::parse(&format!("{at_limit}x")).is_err(),
            "255 characters"
        );
        assert!(
            Email::parse(&format!("  {at_limit}  ")).is_ok(),
            "trimmed first"
        );
        let e = Email::parse("x").unwrap_err();
        assert_eq!(e.errors[0].field.as_deref(), Some("email"));
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("secret-password").unwrap()),
            "Password(***)"
        );
    }
}
