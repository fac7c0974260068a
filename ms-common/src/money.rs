//! The one currency of every price and charge (`CURRENCY`), read the same way by the
//! router (which tells the web client) and ms-payment (which charges in it).

use crate::config::env_or;

/// `CURRENCY` when unset: the marketplace starts in the euro area.
pub const DEFAULT_CURRENCY: &str = "eur";

/// An ISO 4217 code, lower-case as Stripe wants it (`eur`, `usd`); a value that exists is
/// three ASCII letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    /// Accepts any case and surrounding spaces; anything but three letters is an error.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let c = raw.trim().to_ascii_lowercase();
        if c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(c))
        } else {
            Err(format!("{raw:?} is not a three-letter currency code"))
        }
    }

    /// `CURRENCY`, default [`DEFAULT_CURRENCY`]; a malformed value stops the process.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(&env_or("CURRENCY", DEFAULT_CURRENCY))
            .map_err(|e| anyhow::anyhow!("CURRENCY={e}"))
    }

    /// The lower-case code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self(DEFAULT_CURRENCY.to_owned())
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `PLATFORM_FEE_PERCENT` when unset: the marketplace's share of each sale.
pub const DEFAULT_FEE_PERCENT: u8 = 10;

/// The marketplace's share of each sale, 0–100 percent (`PLATFORM_FEE_PERCENT`): read by
/// ms-payment, which pins it on each payment, and by ms-order for payments from before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePercent(u8);

impl FeePercent {
    /// A share of `percent`; over 100 is an error.
    pub fn new(percent: u8) -> Result<Self, String> {
        if percent <= 100 {
            Ok(Self(percent))
        } else {
            Err(format!("{percent} is over 100"))
        }
    }

    /// `PLATFORM_FEE_PERCENT`, default [`DEFAULT_FEE_PERCENT`]; a bad value stops the
    /// process.
    pub fn from_env() -> anyhow::Result<Self> {
        let raw: u8 = crate::config::env_parse("PLATFORM_FEE_PERCENT", DEFAULT_FEE_PERCENT)?;
        Self::new(raw).map_err(|e| anyhow::anyhow!("PLATFORM_FEE_PERCENT={e}"))
    }

    /// The fee on a payment of `paid_cents` (rounded to the nearest cent).
    pub fn of(self, paid_cents: i64) -> i64 {
        crate::contract::platform_fee(paid_cents, self.0)
    }
}

impl Default for FeePercent {
    fn default() -> Self {
        Self(DEFAULT_FEE_PERCENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_three_letters_lower_cased() {
        assert_eq!(Currency::parse(" EUR ").unwrap().as_str(), "eur");
        assert_eq!(Currency::default().as_str(), "eur");
        for bad in ["", "eu", "euro", "e1r", "€"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }
}
