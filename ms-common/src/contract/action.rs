//! Every request a client can make, named once.
//!
//! An [`Action`] is what a Socket.IO event or an account route asks a service to do. Its
//! wire name (`stuff:get`), its owner ([`Service`]), whether it changes state (its replies
//! are logged so a redelivered request is answered, not carried out, twice) and whether
//! the router relays it from a socket are all defined here and nowhere else: the router
//! routes by it, each service matches its own sub-enum exhaustively, and the AsyncAPI
//! document is checked against [`Action::ALL`]. To add an action, add a line to the
//! service's list below; the compiler then shows every place that must answer it.

use super::Service;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a caller waits for an action that calls the payment gateway: Stripe's client
/// gives up after 20 s (`STRIPE_TIMEOUT_MS`), and ms-payment may first wait 2 s for the
/// order's event, so a shorter wait would answer 503 while the charge goes on.
pub const GATEWAY_REPLY_WAIT: Duration = Duration::from_secs(30);

/// Defines one service's action enum from its wire names and flags.
macro_rules! service_actions {
    (
        $(#[$doc:meta])*
        $name:ident for $svc:ident {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, mutates: $mutates:literal, relayed: $relayed:literal; )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
        }

        impl $name {
            /// Every action of this service.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name, `<service>:<action>`.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// True when it changes state (its reply is logged against redelivery).
            pub const fn mutates(self) -> bool {
                match self { $($name::$variant => $mutates),+ }
            }

            /// True when a client may send it as a Socket.IO event (else HTTP or internal).
            pub const fn relayed(self) -> bool {
                match self { $($name::$variant => $relayed),+ }
            }
        }

        impl From<$name> for Action {
            fn from(a: $name) -> Action {
                Action::$svc(a)
            }
        }

        impl TryFrom<Action> for $name {
            type Error = Action;
            fn try_from(a: Action) -> Result<Self, Action> {
                match a {
                    Action::$svc(x) => Ok(x),
                    other => Err(other),
                }
            }
        }

        impl ServiceAction for $name {
            const SERVICE: Service = Service::$svc;
        }
    };
}

/// One service's actions: what its RPC handler matches on.
pub trait ServiceAction:
    Copy + Send + Sync + 'static + Into<Action> + TryFrom<Action, Error = Action>
{
    /// The service that answers them.
    const SERVICE: Service;
}

service_actions! {
    /// Accounts and tokens (reached over the router's HTTP routes, and `user:jwks` by
    /// every process that verifies tokens).
    UserAction for User {
        /// Create an account.
        Signup = "user:signup", mutates: true, relayed: false;
        /// Trade credentials for tokens.
        Signin = "user:signin", mutates: false, relayed: false;
        /// Rotate a refresh token.
        Refresh = "user:refresh", mutates: true, relayed: false;
        /// Revoke a refresh token.
        Signout = "user:signout", mutates: true, relayed: false;
        /// The caller's account.
        Me = "user:me", mutates: false, relayed: false;
        /// Change the caller's display name (`PATCH /api/users/me`).
        Update = "user:update", mutates: true, relayed: false;
        /// The public key set that verifies access tokens.
        Jwks = "user:jwks", mutates: false, relayed: false;
    }
}

service_actions! {
    /// The catalogue.
    StuffAction for Stuff {
        /// One page of the catalogue.
        List = "stuff:list", mutates: false, relayed: true;
        /// One stuff.
        Get = "stuff:get", mutates: false, relayed: true;
        /// Offer a new stuff.
        Create = "stuff:create", mutates: true, relayed: true;
        /// Edit one's own stuff.
        Update = "stuff:update", mutates: true, relayed: true;
        /// Take one's own stuff out of the catalogue for good.
        Withdraw = "stuff:withdraw", mutates: true, relayed: true;
        /// Every stuff the caller listed, in any status.
        Mine = "stuff:mine", mutates: false, relayed: true;
        /// The courses the catalogue's listings name, the most listed first.
        Courses = "stuff:courses", mutates: false, relayed: true;
        /// May the caller upload a file to this stuff? (router, before storing bytes)
        FileCheck = "stuff:file-check", mutates: false, relayed: false;
        /// Record an uploaded file or a new version (router, after storing bytes).
        FileAttach = "stuff:file-attach", mutates: true, relayed: false;
        /// Make a stored thumbnail the stuff's cover (router's `POST …/cover`).
        Cover = "stuff:cover", mutates: true, relayed: false;
        /// Take a file off a stuff (router's `DELETE`).
        FileRemove = "stuff:file-remove", mutates: true, relayed: false;
        /// Which of these stored objects does no file point at? (router's orphan sweeper)
        FileOrphans = "stuff:file-orphans", mutates: false, relayed: false;
        /// The note and signed download links for a buyer or the seller.
        Delivery = "delivery:get", mutates: false, relayed: true;
    }
}

service_actions! {
    /// Orders and holds.
    OrderAction for Order {
        /// Hold a stuff for checkout.
        Create = "order:create", mutates: true, relayed: true;
        /// Give a hold up.
        Cancel = "order:cancel", mutates: true, relayed: true;
        /// The caller's orders.
        List = "order:list", mutates: false, relayed: true;
        /// One of the caller's orders.
        Get = "order:get", mutates: false, relayed: true;
        /// What the caller sold, with fees and earnings.
        Sales = "order:sales", mutates: false, relayed: true;
        /// Review what one bought (the buyer of a complete order, once).
        ReviewCreate = "review:create", mutates: true, relayed: true;
        /// A stuff's reviews, newest first.
        ReviewList = "review:list", mutates: false, relayed: true;
    }
}

service_actions! {
    /// Payments and coupons.
    PaymentAction for Payment {
        /// Pay for a held order.
        PaymentCreate = "payment:create", mutates: true, relayed: true;
        /// Open (or reuse) the order's PaymentIntent for Stripe's Payment Element.
        Intent = "payment:intent", mutates: true, relayed: true;
        /// Make a coupon (admins).
        CouponCreate = "coupon:create", mutates: true, relayed: true;
        /// Every coupon (admins).
        CouponList = "coupon:list", mutates: false, relayed: true;
        /// Give a paid order's money back (admins).
        Refund = "payment:refund", mutates: true, relayed: true;
        /// What a coupon would take off an order, before paying.
        CouponCheck = "coupon:check", mutates: false, relayed: true;
        /// A Stripe event from the router's webhook route (verified by ms-payment).
        Webhook = "payment:webhook", mutates: true, relayed: false;
        /// Where the caller sets up payouts (Stripe Connect onboarding).
        PayoutOnboard = "payout:onboard", mutates: true, relayed: true;
        /// How the caller gets paid and what the ledger holds for them.
        PayoutStatus = "payout:status", mutates: false, relayed: true;
    }
}

/// Any action of any service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Owned by ms-user.
    User(UserAction),
    /// Owned by ms-stuff.
    Stuff(StuffAction),
    /// Owned by ms-order.
    Order(OrderAction),
    /// Owned by ms-payment.
    Payment(PaymentAction),
}

impl Action {
    /// Every action, service by service.
    pub fn all() -> impl Iterator<Item = Action> {
        let user = UserAction::ALL.iter().map(|a| Action::from(*a));
        let stuff = StuffAction::ALL.iter().map(|a| Action::from(*a));
        let order = OrderAction::ALL.iter().map(|a| Action::from(*a));
        let payment = PaymentAction::ALL.iter().map(|a| Action::from(*a));
        user.chain(stuff).chain(order).chain(payment)
    }

    /// The action with this wire name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::all().find(|a| a.name() == name)
    }

    /// The action a client may send as this Socket.IO event.
    pub fn relayed_event(name: &str) -> Option<Action> {
        Action::from_name(name).filter(|a| a.relayed())
    }

    /// The wire name, `<service>:<action>`.
    pub const fn name(self) -> &'static str {
        match self {
            Action::User(a) => a.name(),
            Action::Stuff(a) => a.name(),
            Action::Order(a) => a.name(),
            Action::Payment(a) => a.name(),
        }
    }

    /// The service whose RPC queue answers it.
    pub const fn service(self) -> Service {
        match self {
            Action::User(_) => Service::User,
            Action::Stuff(_) => Service::Stuff,
            Action::Order(_) => Service::Order,
            Action::Payment(_) => Service::Payment,
        }
    }

    /// True when it changes state (its reply is logged against redelivery).
    pub const fn mutates(self) -> bool {
        match self {
            Action::User(a) => a.mutates(),
            Action::Stuff(a) => a.mutates(),
            Action::Order(a) => a.mutates(),
            Action::Payment(a) => a.mutates(),
        }
    }

    /// True when a client may send it as a Socket.IO event.
    pub const fn relayed(self) -> bool {
        match self {
            Action::User(a) => a.relayed(),
            Action::Stuff(a) => a.relayed(),
            Action::Order(a) => a.relayed(),
            Action::Payment(a) => a.relayed(),
        }
    }

    /// How long a caller waits for the reply, given its usual wait: actions that call the
    /// payment gateway wait at least [`GATEWAY_REPLY_WAIT`].
    pub fn reply_wait(self, usual: Duration) -> Duration {
        match self {
            Action::Payment(
                PaymentAction::PaymentCreate
                | PaymentAction::Intent
                | PaymentAction::Refund
                | PaymentAction::PayoutOnboard
                | PaymentAction::PayoutStatus,
            ) => usual.max(GATEWAY_REPLY_WAIT),
            _ => usual,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Action::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown action {name}")))
    }
}

/// One row of the action catalogue (`docs/actions.json`), read by the AsyncAPI check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionInfo {
    /// Wire name.
    pub name: &'static str,
    /// Owning service (`user`, `stuff`, …): its RPC queue is `rpc.<service>`.
    pub service: &'static str,
    /// Changes state.
    pub mutates: bool,
    /// Sent by clients as a Socket.IO event.
    pub relayed: bool,
}

/// The action catalogue, in declaration order.
pub fn catalogue() -> Vec<ActionInfo> {
    Action::all()
        .map(|a| ActionInfo {
            name: a.name(),
            service: a.service().as_str(),
            mutates: a.mutates(),
            relayed: a.relayed(),
        })
        .collect()
}

/// `docs/actions.json`: the catalogue as the AsyncAPI check reads it (kept equal to the
/// code by `ms-common/tests/schemas.rs`).
pub fn catalogue_file() -> String {
    let text = serde_json::to_string_pretty(&catalogue()).unwrap_or_default();
    format!("{text}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_by_their_service_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::all() {
            assert!(seen.insert(a.name()), "duplicate {a}");
            let (svc, _) = a.name().split_once(':').unwrap_or_default();
            let owner = a.service().as_str();
            // Coupons and payouts belong to the payment service, deliveries to the
            // catalogue, reviews to the orders (ms-order knows who bought what).
            assert!(
                svc == owner
                    || (svc == "coupon" && owner == "payment")
                    || (svc == "payout" && owner == "payment")
                    || (svc == "delivery" && owner == "stuff")
                    || (svc == "review" && owner == "order"),
                "{a}"
            );
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        assert_eq!(Action::from_name("stuff:nope"), None);
        assert_eq!(Action::relayed_event("user:signin"), None, "HTTP only");
        assert_eq!(
            Action::relayed_event("coupon:list").map(Action::service),
            Some(Service::Payment)
        );
        assert_eq!(
            Action::relayed_event("review:create").map(Action::service),
            Some(Service::Order)
        );
        assert_eq!(
            StuffAction::try_from(Action::Order(OrderAction::Get)).ok(),
            None
        );
    }

    #[test]
    fn gateway_actions_wait_longer() {
        let usual = Duration::from_secs(5);
        let pay = Action::Payment(PaymentAction::PaymentCreate);
        assert_eq!(pay.reply_wait(usual), GATEWAY_REPLY_WAIT);
        assert_eq!(
            pay.reply_wait(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        let check = Action::Payment(PaymentAction::CouponCheck);
        assert_eq!(check.reply_wait(usual), usual);
    }
}
