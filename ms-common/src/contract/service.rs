//! The services of StuffMart: who owns an RPC queue, an events queue and a database.

/// The services that own an RPC queue and an events queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// Accounts and tokens.
    User,
    /// The catalogue.
    Stuff,
    /// Orders and holds.
    Order,
    /// Payments and coupons.
    Payment,
}

impl Service {
    /// Every service, for tests and teardown.
    pub const ALL: [Service; 4] = [
        Service::User,
        Service::Stuff,
        Service::Order,
        Service::Payment,
    ];

    /// The short name used in queue names and event prefixes.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::User => "user",
            Service::Stuff => "stuff",
            Service::Order => "order",
            Service::Payment => "payment",
        }
    }
}
