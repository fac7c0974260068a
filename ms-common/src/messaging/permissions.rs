//! Least privilege on the broker: one AMQP user per process kind, allowed only the names
//! its code declares, publishes and consumes.
//!
//! ```text
//!  user        configure (declare/delete)      write (publish, bind to)        read (consume, bind from)
//!  ms-router   shared exchanges, amq.gen-*     amq.default, amq.gen-*,         shared exchanges, amq.gen-*
//!                                              stuffmart.unrouted
//!  ms-<svc>    shared exchanges, its own       amq.default, shared exchanges,  shared exchanges, its own
//!              queues (rpc, events, retry      its own queues                  queues
//!              rungs, dlq; ms-order: hold,
//!              expired)
//!
//!  topic permissions on stuffmart.events:
//!    write = the routing keys the user publishes ([`published_by`]); the router: none
//!    read  = the routing keys it binds (`contract::subscriptions`, plus ms-order's hold)
//! ```
//!
//! Why each shared name is there: every process declares the shared exchanges on connect
//! (configure); declaring `stuffmart.events` with its alternate exchange needs read on it
//! and write on `stuffmart.unrouted`; binding the unrouted queue needs write on it;
//! declaring a work queue with its dead-letter exchange needs read on the queue and
//! write on `stuffmart.dlx` (retry rungs: on `amq.default`, the default exchange's name
//! for permissions). RPC requests, replies and retries go through the default exchange,
//! whose routing keys RabbitMQ cannot restrict (topic permissions apply to topic
//! exchanges only), so `amq.default` is writable by all.
//!
//! [`definitions`] renders the whole set as a RabbitMQ definitions file
//! (`deploy/rabbitmq/definitions.json`, passwords filled in at deploy time); tests apply
//! the same rules under their own prefix ([`Permissions::for_user`]).

use super::Names;
use crate::contract::Service;
use crate::contract::subscriptions::{LIVE_PUSHES, consumed_by};
use crate::events::EventKind;
use serde_json::{Value, json};

/// Who connects to the broker: each service, or a router replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmqpUser {
    /// A backend service (`ms-user`, `ms-stuff`, `ms-order`, `ms-payment`).
    Service(Service),
    /// `ms-router`.
    Router,
}

impl AmqpUser {
    /// Every user, in the order the definitions file lists them.
    pub const ALL: [AmqpUser; 5] = [
        AmqpUser::Service(Service::User),
        AmqpUser::Service(Service::Stuff),
        AmqpUser::Service(Service::Order),
        AmqpUser::Service(Service::Payment),
        AmqpUser::Router,
    ];

    /// The user name (the binary's name): `ms-user` … `ms-router`.
    pub fn name(self) -> String {
        match self {
            AmqpUser::Service(s) => format!("ms-{}", s.as_str()),
            AmqpUser::Router => "ms-router".to_owned(),
        }
    }
}

/// Which service publishes an event kind: the only user allowed that routing key.
pub const fn published_by(kind: EventKind) -> Service {
    match kind {
        EventKind::UserCreated | EventKind::UserUpdated => Service::User,
        EventKind::StuffCreated
        | EventKind::StuffUpdated
        | EventKind::DeliveryUpdated
        | EventKind::ReservationRefused => Service::Stuff,
        EventKind::OrderCreated
        | EventKind::OrderCancelled
        | EventKind::OrderCompleted
        | EventKind::OrderRefunded
        | EventKind::SaleCompleted
        | EventKind::ReviewCreated => Service::Order,
        EventKind::PaymentCreated | EventKind::PaymentFailed | EventKind::PaymentRefunded => {
            Service::Payment
        }
    }
}

/// One user's permissions in a vhost, as `rabbitmqctl set_permissions` and
/// `set_topic_permissions` take them (Erlang regular expressions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Declare and delete these queues and exchanges.
    pub configure: String,
    /// Publish to these exchanges, bind these queues.
    pub write: String,
    /// Consume from these queues, bind from these exchanges.
    pub read: String,
    /// The topic exchange the topic permissions apply to (`stuffmart.events`).
    pub topic_exchange: String,
    /// Routing keys this user may publish on the topic exchange.
    pub topic_write: String,
    /// Routing keys this user may bind its queues to.
    pub topic_read: String,
}

/// Escapes a name for an Erlang regular expression.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `^(a|b|c)$`, or a pattern no name matches when there is nothing to allow.
fn any_of(parts: &[String]) -> String {
    if parts.is_empty() {
        "^$".to_owned()
    } else {
        format!("^({})$", parts.join("|"))
    }
}

fn keys(kinds: impl IntoIterator<Item = EventKind>) -> String {
    let mut ks: Vec<String> = kinds.into_iter().map(|k| escape(k.routing_key())).collect();
    ks.sort();
    ks.dedup();
    any_of(&ks)
}

/// A retry rung's suffix (`<queue>.retry.<ms>ms`, see `topology::retry_queue_for`).
const RETRY_RUNGS: &str = r"(\.retry\.[0-9]+ms)?";

impl Permissions {
    /// What `user` may do under `names`' prefix.
    pub fn for_user(names: &Names, user: AmqpUser) -> Self {
        let shared = [
            escape(&names.events_exchange()),
            escape(&names.unrouted_exchange()),
            escape(&names.dead_letter_exchange()),
        ];
        let topic_exchange = names.events_exchange();
        match user {
            AmqpUser::Router => {
                // Server-named exclusive fan-out queue.
                let server_named = r"amq\.gen-.*".to_owned();
                let mut configure = shared.to_vec();
                configure.push(server_named.clone());
                Self {
                    configure: any_of(&configure),
                    write: any_of(&[
                        "amq\\.default".to_owned(),
                        server_named.clone(),
                        escape(&names.unrouted_exchange()),
                    ]),
                    read: any_of(&configure),
                    topic_exchange,
                    topic_write: "^$".to_owned(),
                    topic_read: keys(LIVE_PUSHES.iter().copied()),
                }
            }
            AmqpUser::Service(svc) => {
                let mut own = vec![
                    escape(&names.rpc_queue(svc)),
                    format!("{}{RETRY_RUNGS}", escape(&names.events_queue(svc))),
                    escape(&names.dead_letter_queue(svc)),
                ];
                let mut binds: Vec<EventKind> = consumed_by(svc).to_vec();
                if svc == Service::Order {
                    // The hold (`ms-order/src/hold.rs`): the TTL queue bound to
                    // `order.created`, and the queue its expiries arrive in.
                    let p = escape(names.prefix());
                    own.push(format!(r"{p}order\.hold\.[0-9]+ms"));
                    own.push(format!(r"{p}order\.expired{RETRY_RUNGS}"));
                    binds.push(EventKind::OrderCreated);
                }
                let mut configure = shared.to_vec();
                configure.extend(own);
                let mut write = configure.clone();
                write.push("amq\\.default".to_owned());
                Self {
                    configure: any_of(&configure),
                    write: any_of(&write),
                    read: any_of(&configure),
                    topic_exchange,
                    topic_write: keys(
                        EventKind::ALL
                            .into_iter()
                            .filter(|k| published_by(*k) == svc),
                    ),
                    topic_read: keys(binds),
                }
            }
        }
    }
}

/// The RabbitMQ definitions for `names`' prefix in `vhost`: the vhost, one user per
/// [`AmqpUser`] (named `<user_prefix><user>`) with a `password` placeholder
/// (`@PASSWORD:<user>@`, filled in by `deploy/rabbitmq/render-definitions.sh`, or by a
/// test), an operator account, and every permission.
pub fn definitions(names: &Names, vhost: &str, user_prefix: &str) -> Value {
    let operator = format!("{user_prefix}{OPERATOR}");
    let users: Vec<Value> = AmqpUser::ALL
        .iter()
        .map(|u| format!("{user_prefix}{}", u.name()))
        .chain(std::iter::once(operator.clone()))
        .map(|name| {
            let tags = if name == operator {
                "administrator"
            } else {
                ""
            };
            json!({"name": name, "password": format!("@PASSWORD:{name}@"), "tags": tags})
        })
        .collect();
    let mut permissions: Vec<Value> = AmqpUser::ALL
        .iter()
        .map(|u| {
            let p = Permissions::for_user(names, *u);
            json!({"user": format!("{user_prefix}{}", u.name()), "vhost": vhost,
                   "configure": p.configure, "write": p.write, "read": p.read})
        })
        .collect();
    permissions.push(json!({"user": operator, "vhost": vhost, "configure": ".*",
                            "write": ".*", "read": ".*"}));
    let topic_permissions: Vec<Value> = AmqpUser::ALL
        .iter()
        .map(|u| {
            let p = Permissions::for_user(names, *u);
            json!({"user": format!("{user_prefix}{}", u.name()), "vhost": vhost,
                   "exchange": p.topic_exchange, "write": p.topic_write, "read": p.topic_read})
        })
        .collect();
    json!({
        "vhosts": [{"name": vhost}],
        "users": users,
        "permissions": permissions,
        "topic_permissions": topic_permissions,
    })
}

/// The operator's account in the definitions file (management UI, `rabbitmqctl`-free
/// inspection); the services never use it.
pub const OPERATOR: &str = "stuffmart-admin";

/// `deploy/rabbitmq/definitions.json` as committed (kept equal to the code by
/// `ms-common/tests/permissions.rs`).
pub fn definitions_file() -> String {
    let mut s =
        serde_json::to_string_pretty(&definitions(&Names::new(""), "/", "")).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_has_one_publisher_and_only_it_may_send_it() {
        let names = Names::new("");
        for kind in EventKind::ALL {
            let allowed: Vec<AmqpUser> = AmqpUser::ALL
                .into_iter()
                .filter(|u| {
                    Permissions::for_user(&names, *u)
                        .topic_write
                        .contains(&escape(kind.routing_key()))
                })
                .collect();
            assert_eq!(
                allowed,
                vec![AmqpUser::Service(published_by(kind))],
                "{kind:?}"
            );
        }
    }

    #[test]
    fn names_are_escaped_and_prefixed() {
        let p = Permissions::for_user(&Names::new("t1."), AmqpUser::Service(Service::Payment));
        assert!(p.configure.contains(r"t1\.rpc\.payment"), "{}", p.configure);
        assert!(
            p.configure
                .contains(r"t1\.payment\.events(\.retry\.[0-9]+ms)?")
        );
        assert!(!p.configure.contains("order"), "{}", p.configure);
        assert_eq!(p.topic_exchange, "t1.stuffmart.events");
        assert_eq!(
            p.topic_write,
            r"^(payment\.created|payment\.failed|payment\.refunded)$"
        );
        let r = Permissions::for_user(&Names::new("t1."), AmqpUser::Router);
        assert_eq!(r.topic_write, "^$");
        assert!(!r.write.contains("events"), "{}", r.write);
    }
}
