//! The services' SQLite files, read-only, and the cross-service invariants the suite checks.
//!
//! [`World`] is one read of every store; [`World::problems`] lists every way the stores
//! disagree (empty = consistent). Reading while the services run is safe (WAL readers do
//! not block writers), so tests poll until the problems are gone or a deadline passes.

use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Read-only pools on the four databases.
#[derive(Clone)]
pub struct Stores {
    /// ms-user's `user.db`.
    pub user: SqlitePool,
    /// ms-stuff's `stuff.db`.
    pub stuff: SqlitePool,
    /// ms-order's `order.db`.
    pub order: SqlitePool,
    /// ms-payment's `payment.db`.
    pub payment: SqlitePool,
}

async fn open_ro(path: &Path) -> anyhow::Result<SqlitePool> {
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await?)
}

/// A stuff as ms-stuff stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuffRow {
    /// Id.
    pub id: String,
    /// Seller.
    pub seller_id: String,
    /// Title.
    pub title: String,
    /// `available`, `reserved`, `sold`.
    pub status: String,
    /// The holding / buying order.
    pub order_id: Option<String>,
    /// Record version.
    pub version: i64,
}

/// An order as ms-order stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// Id.
    pub id: String,
    /// The stuff.
    pub stuff_id: String,
    /// The buyer.
    pub user_id: String,
    /// `created`, `cancelled`, `complete`.
    pub status: String,
    /// Record version.
    pub version: i64,
}

/// A replicated record: status and version as a consumer holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Status.
    pub status: String,
    /// Version.
    pub version: i64,
}

/// One outbox row, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Event type.
    pub routing_key: String,
    /// The record the event is about (`data.id`, or `data.orderId` for payments).
    pub record_id: String,
    /// `data.version`, when the record has one.
    pub version: Option<i64>,
    /// Published and marked sent.
    pub sent: bool,
}

/// Counts that must not move when a request is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Accounts.
    pub users: i64,
    /// Refresh tokens.
    pub refresh_tokens: i64,
    /// Stuff rows.
    pub stuff: i64,
    /// Sum of stuff versions (every change bumps one).
    pub stuff_versions: i64,
    /// Orders.
    pub orders: i64,
    /// Sum of order versions.
    pub order_versions: i64,
    /// Payments.
    pub payments: i64,
    /// Declined payments.
    pub failures: i64,
    /// Coupons.
    pub coupons: i64,
    /// Sum of coupon redemptions.
    pub redemptions: i64,
    /// Outbox rows of user, stuff, order, payment.
    pub outboxes: [i64; 4],
    /// Replica rows: ms-stuff's order versions, ms-order's stuff, ms-payment's orders.
    pub replicas: [i64; 3],
}

/// Everything the suite compares, read once from every store.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// ms-user: accounts.
    pub users: i64,
    /// ms-user: refresh tokens.
    pub refresh_tokens: i64,
    /// ms-user: outbox.
    pub user_outbox: Vec<OutboxRow>,
    /// ms-stuff: the catalogue.
    pub stuff: BTreeMap<String, StuffRow>,
    /// ms-stuff: the last applied version of each order (with the stuff id).
    pub stuff_order_versions: BTreeMap<String, (String, Replica)>,
    /// ms-stuff: outbox.
    pub stuff_outbox: Vec<OutboxRow>,
    /// ms-order: orders.
    pub orders: BTreeMap<String, OrderRow>,
    /// ms-order: the stuff replica.
    pub order_stuff_replica: BTreeMap<String, Replica>,
    /// ms-order: outbox.
    pub order_outbox: Vec<OutboxRow>,
    /// ms-payment: the order replica.
    pub payment_orders: BTreeMap<String, Replica>,
    /// ms-payment: payments, order id → payment id.
    pub payments: BTreeMap<String, String>,
    /// ms-payment: declined orders.
    pub failures: BTreeSet<String>,
    /// ms-payment: coupons.
    pub coupons: i64,
    /// ms-payment: sum of redemptions.
    pub redemptions: i64,
    /// ms-payment: outbox.
    pub payment_outbox: Vec<OutboxRow>,
}

async fn outbox(pool: &SqlitePool) -> anyhow::Result<Vec<OutboxRow>> {
    let rows = sqlx::query(
        "SELECT routing_key, payload, sent_at IS NOT NULL AS sent FROM outbox ORDER BY seq",
    )
    .fetch_all(pool)
    .await?;
    let mut v = Vec::new();
    for r in rows {
        let payload: String = r.get("payload");
        let json: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let data = &json["data"];
        let record_id = data["id"]
            .as_str()
            .filter(|_| !r.get::<String, _>("routing_key").starts_with("payment."))
            .or_else(|| data["orderId"].as_str())
            .unwrap_or_default()
            .to_owned();
        v.push(OutboxRow {
            routing_key: r.get("routing_key"),
            record_id,
            version: data["version"].as_i64(),
            sent: r.get::<bool, _>("sent"),
        });
    }
    Ok(v)
}

async fn count(pool: &SqlitePool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query(sql).fetch_one(pool).await?.get::<i64, _>(0))
}

impl Stores {
    /// Opens `user.db`, `stuff.db`, `order.db`, `payment.db` under `dir`, read-only.
    pub async fn open(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            user: open_ro(&dir.join("user.db")).await?,
            stuff: open_ro(&dir.join("stuff.db")).await?,
            order: open_ro(&dir.join("order.db")).await?,
            payment: open_ro(&dir.join("payment.db")).await?,
        })
    }

    /// Reads every store.
    pub async fn world(&self) -> anyhow::Result<World> {
        let mut w = World {
            users: count(&self.user, "SELECT COUNT(*) FROM users").await?,
            refresh_tokens: count(&self.user, "SELECT COUNT(*) FROM refresh_tokens").await?,
            user_outbox: outbox(&self.user).await?,
            stuff_outbox: outbox(&self.stuff).await?,
            order_outbox: outbox(&self.order).await?,
            payment_outbox: outbox(&self.payment).await?,
            coupons: count(&self.payment, "SELECT COUNT(*) FROM coupons").await?,
            redemptions: count(
                &self.payment,
                "SELECT COALESCE(SUM(redemptions), 0) FROM coupons",
            )
            .await?,
            ..World::default()
        };
        for r in sqlx::query("SELECT id, seller_id, title, status, order_id, version FROM stuff")
            .fetch_all(&self.stuff)
            .await?
        {
            let s = StuffRow {
                id: r.get("id"),
                seller_id: r.get("seller_id"),
                title: r.get("title"),
                status: r.get("status"),
                order_id: r.get("order_id"),
                version: r.get("version"),
            };
            w.stuff.insert(s.id.clone(), s);
        }
        for r in sqlx::query("SELECT order_id, stuff_id, status, version FROM order_versions")
            .fetch_all(&self.stuff)
            .await?
        {
            w.stuff_order_versions.insert(
                r.get("order_id"),
                (
                    r.get("stuff_id"),
                    Replica {
                        status: r.get("status"),
                        version: r.get("version"),
                    },
                ),
            );
        }
        for r in sqlx::query("SELECT id, stuff_id, user_id, status, version FROM orders")
            .fetch_all(&self.order)
            .await?
        {
            let o = OrderRow {
                id: r.get("id"),
                stuff_id: r.get("stuff_id"),
                user_id: r.get("user_id"),
                status: r.get("status"),
                version: r.get("version"),
            };
            w.orders.insert(o.id.clone(), o);
        }
        for r in sqlx::query("SELECT id, status, version FROM stuff_replica")
            .fetch_all(&self.order)
            .await?
        {
            w.order_stuff_replica.insert(
                r.get("id"),
                Replica {
                    status: r.get("status"),
                    version: r.get("version"),
                },
            );
        }
        for r in sqlx::query("SELECT id, status, version FROM orders")
            .fetch_all(&self.payment)
            .await?
        {
            w.payment_orders.insert(
                r.get("id"),
                Replica {
                    status: r.get("status"),
                    version: r.get("version"),
                },
            );
        }
        for r in sqlx::query("SELECT order_id, id FROM payments")
            .fetch_all(&self.payment)
            .await?
        {
            w.payments.insert(r.get("order_id"), r.get("id"));
        }
        for r in sqlx::query("SELECT order_id FROM payment_failures")
            .fetch_all(&self.payment)
            .await?
        {
            w.failures.insert(r.get("order_id"));
        }
        Ok(w)
    }

    /// The counts of [`Snapshot`].
    pub async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        Ok(self.world().await?.snapshot())
    }
}

impl World {
    /// The counts that a refused request must leave alone.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            users: self.users,
            refresh_tokens: self.refresh_tokens,
            stuff: self.stuff.len() as i64,
            stuff_versions: self.stuff.values().map(|s| s.version).sum(),
            orders: self.orders.len() as i64,
            order_versions: self.orders.values().map(|o| o.version).sum(),
            payments: self.payments.len() as i64,
            failures: self.failures.len() as i64,
            coupons: self.coupons,
            redemptions: self.redemptions,
            outboxes: [
                self.user_outbox.len() as i64,
                self.stuff_outbox.len() as i64,
                self.order_outbox.len() as i64,
                self.payment_outbox.len() as i64,
            ],
            replicas: [
                self.stuff_order_versions.len() as i64,
                self.order_stuff_replica.len() as i64,
                self.payment_orders.len() as i64,
            ],
        }
    }

    /// Every way the stores disagree with each other; empty when the system is at rest
    /// and consistent.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        self.outboxes_drained(&mut p);
        self.events_carry_every_version(&mut p);
        self.stuff_replica_at_stuff_versions(&mut p);
        self.order_replicas_at_order_versions(&mut p);
        self.stuff_status_explained_by_orders(&mut p);
        self.payments_match_orders(&mut p);
        self.payment_events_match_payments(&mut p);
        self.signups_match_accounts(&mut p);
        p
    }

    /// Outboxes drained: every committed change was published (with a confirm).
    fn outboxes_drained(&self, p: &mut Vec<String>) {
        for (svc, ob) in [
            ("user", &self.user_outbox),
            ("stuff", &self.stuff_outbox),
            ("order", &self.order_outbox),
            ("payment", &self.payment_outbox),
        ] {
            let unsent = ob.iter().filter(|r| !r.sent).count();
            if unsent > 0 {
                p.push(format!("ms-{svc}: {unsent} outbox rows not sent"));
            }
        }
    }

    /// Versions equal the number of changes: the events of each record carry exactly
    /// the versions 1..=current, once each.
    fn events_carry_every_version(&self, p: &mut Vec<String>) {
        check_event_versions(
            p,
            "stuff",
            self.stuff.values().map(|s| (&s.id, s.version)),
            &self.stuff_outbox,
        );
        check_event_versions(
            p,
            "order",
            self.orders.values().map(|o| (&o.id, o.version)),
            &self.order_outbox,
        );
    }

    /// ms-order's replica of every stuff is at ms-stuff's version and status.
    fn stuff_replica_at_stuff_versions(&self, p: &mut Vec<String>) {
        for s in self.stuff.values() {
            match self.order_stuff_replica.get(&s.id) {
                None => p.push(format!("ms-order has no replica of stuff {}", s.id)),
                Some(r) if r.version != s.version || r.status != s.status => p.push(format!(
                    "ms-order's replica of stuff {} is {} v{}, ms-stuff has {} v{}",
                    s.id, r.status, r.version, s.status, s.version
                )),
                Some(_) => {}
            }
        }
        for id in self.order_stuff_replica.keys() {
            if !self.stuff.contains_key(id) {
                p.push(format!(
                    "ms-order replicates stuff {id} that ms-stuff lacks"
                ));
            }
        }
    }

    /// ms-payment's and ms-stuff's view of every order is at ms-order's version.
    fn order_replicas_at_order_versions(&self, p: &mut Vec<String>) {
        for o in self.orders.values() {
            match self.payment_orders.get(&o.id) {
                None => p.push(format!("ms-payment has no replica of order {}", o.id)),
                Some(r) if r.version != o.version || r.status != o.status => p.push(format!(
                    "ms-payment's replica of order {} is {} v{}, ms-order has {} v{}",
                    o.id, r.status, r.version, o.status, o.version
                )),
                Some(_) => {}
            }
            match self.stuff_order_versions.get(&o.id) {
                None => p.push(format!("ms-stuff never applied order {}", o.id)),
                Some((stuff, r)) if r.version != o.version || r.status != o.status => {
                    p.push(format!(
                        "ms-stuff applied order {} (stuff {stuff}) up to {} v{}, ms-order has {} v{}",
                        o.id, r.status, r.version, o.status, o.version
                    ))
                }
                Some(_) => {}
            }
            if !self.stuff.contains_key(&o.stuff_id) {
                p.push(format!("order {} names unknown stuff {}", o.id, o.stuff_id));
            }
        }
        for id in self.payment_orders.keys() {
            if !self.orders.contains_key(id) {
                p.push(format!(
                    "ms-payment replicates order {id} that ms-order lacks"
                ));
            }
        }
    }

    /// Every stuff's status is explained by its orders.
    fn stuff_status_explained_by_orders(&self, p: &mut Vec<String>) {
        for s in self.stuff.values() {
            let mine: Vec<&OrderRow> = self
                .orders
                .values()
                .filter(|o| o.stuff_id == s.id)
                .collect();
            let active: Vec<&&OrderRow> = mine.iter().filter(|o| o.status == "created").collect();
            let complete: Vec<&&OrderRow> =
                mine.iter().filter(|o| o.status == "complete").collect();
            if active.len() > 1 {
                p.push(format!("stuff {} has {} active orders", s.id, active.len()));
            }
            if complete.len() > 1 {
                p.push(format!("stuff {} was sold {} times", s.id, complete.len()));
            }
            if !complete.is_empty() && !active.is_empty() {
                p.push(format!("stuff {} is sold and also held by an order", s.id));
            }
            let expected = if let Some(o) = complete.first() {
                ("sold", Some(o.id.clone()))
            } else if let Some(o) = active.first() {
                ("reserved", Some(o.id.clone()))
            } else {
                ("available", None)
            };
            if s.status != expected.0 || s.order_id != expected.1 {
                p.push(format!(
                    "stuff {} is {} (order {:?}) but its orders say {} (order {:?})",
                    s.id, s.status, s.order_id, expected.0, expected.1
                ));
            }
        }
    }

    /// Payments: one per complete order, none for others; a decline cancelled its order.
    fn payments_match_orders(&self, p: &mut Vec<String>) {
        for o in self.orders.values() {
            let paid = self.payments.contains_key(&o.id);
            if o.status == "complete" && !paid {
                p.push(format!("order {} is complete without a payment", o.id));
            }
            if o.status != "complete" && paid {
                p.push(format!("order {} is {} but was paid", o.id, o.status));
            }
            if self.failures.contains(&o.id) && o.status == "created" {
                p.push(format!("order {} was declined but is still active", o.id));
            }
        }
        for id in self.payments.keys().chain(self.failures.iter()) {
            if !self.orders.contains_key(id) {
                p.push(format!("ms-payment has a payment for unknown order {id}"));
            }
        }
    }

    /// ms-payment published one `payment.created` per payment and one `payment.failed` per
    /// decline.
    fn payment_events_match_payments(&self, p: &mut Vec<String>) {
        let created = self
            .payment_outbox
            .iter()
            .filter(|r| r.routing_key == "payment.created")
            .count();
        let failed = self
            .payment_outbox
            .iter()
            .filter(|r| r.routing_key == "payment.failed")
            .count();
        if created != self.payments.len() || failed != self.failures.len() {
            p.push(format!(
                "ms-payment: {created} payment.created / {failed} payment.failed events for {} payments / {} declines",
                self.payments.len(),
                self.failures.len()
            ));
        }
    }

    /// ms-user published one `user.created` per account.
    fn signups_match_accounts(&self, p: &mut Vec<String>) {
        let signups = self
            .user_outbox
            .iter()
            .filter(|r| r.routing_key == "user.created")
            .count() as i64;
        if signups != self.users {
            p.push(format!(
                "ms-user: {signups} user.created events for {} accounts",
                self.users
            ));
        }
    }
}

fn check_event_versions<'a>(
    p: &mut Vec<String>,
    kind: &str,
    records: impl Iterator<Item = (&'a String, i64)>,
    outbox: &[OutboxRow],
) {
    let mut versions: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for r in outbox.iter().filter(|r| r.routing_key.starts_with(kind)) {
        versions
            .entry(r.record_id.as_str())
            .or_default()
            .push(r.version.unwrap_or(-1));
    }
    let mut known = BTreeSet::new();
    for (id, version) in records {
        known.insert(id.as_str());
        let mut got = versions.get(id.as_str()).cloned().unwrap_or_default();
        got.sort_unstable();
        let want: Vec<i64> = (1..=version).collect();
        if got != want {
            p.push(format!(
                "{kind} {id} is at v{version} but its events carry versions {got:?}"
            ));
        }
    }
    for id in versions.keys() {
        if !known.contains(id) {
            p.push(format!("{kind} events for {id}, which is not stored"));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn ev(key: &str, id: &str, version: Option<i64>) -> OutboxRow {
        OutboxRow {
            routing_key: key.into(),
            record_id: id.into(),
            version,
            sent: true,
        }
    }

    fn rep(status: &str, version: i64) -> Replica {
        Replica {
            status: status.into(),
            version,
        }
    }

    /// One stuff sold through one paid order, everything replicated.
    fn consistent() -> World {
        let mut w = World {
            users: 2,
            user_outbox: vec![
                ev("user.created", "u1", Some(1)),
                ev("user.created", "u2", Some(1)),
            ],
            ..World::default()
        };
        w.stuff.insert(
            "s".into(),
            StuffRow {
                id: "s".into(),
                seller_id: "u1".into(),
                title: "t".into(),
                status: "sold".into(),
                order_id: Some("o".into()),
                version: 3,
            },
        );
        w.stuff_outbox = vec![
            ev("stuff.created", "s", Some(1)),
            ev("stuff.updated", "s", Some(2)),
            ev("stuff.updated", "s", Some(3)),
        ];
        w.orders.insert(
            "o".into(),
            OrderRow {
                id: "o".into(),
                stuff_id: "s".into(),
                user_id: "u2".into(),
                status: "complete".into(),
                version: 2,
            },
        );
        w.order_outbox = vec![
            ev("order.created", "o", Some(1)),
            ev("order.completed", "o", Some(2)),
        ];
        w.order_stuff_replica.insert("s".into(), rep("sold", 3));
        w.stuff_order_versions
            .insert("o".into(), ("s".into(), rep("complete", 2)));
        w.payment_orders.insert("o".into(), rep("complete", 2));
        w.payments.insert("o".into(), "p".into());
        w.payment_outbox = vec![ev("payment.created", "o", None)];
        w
    }

    #[test]
    fn a_consistent_world_has_no_problems() {
        assert_eq!(consistent().problems(), Vec::<String>::new());
    }

    #[test]
    fn every_kind_of_disagreement_is_reported() {
        type Break = Box<dyn Fn(&mut World)>;
        let cases: Vec<(&str, Break)> = vec![
            ("unsent", Box::new(|w| w.order_outbox[1].sent = false)),
            (
                "replica behind",
                Box::new(|w| {
                    w.order_stuff_replica.insert("s".into(), rep("reserved", 2));
                }),
            ),
            (
                "payment replica behind",
                Box::new(|w| {
                    w.payment_orders.insert("o".into(), rep("created", 1));
                }),
            ),
            (
                "event applied twice",
                Box::new(|w| w.stuff_outbox.push(ev("stuff.updated", "s", Some(3)))),
            ),
            (
                "change without event",
                Box::new(|w| w.stuff.get_mut("s").unwrap().version = 4),
            ),
            (
                "sold without order",
                Box::new(|w| w.orders.get_mut("o").unwrap().status = "cancelled".into()),
            ),
            (
                "paid twice in events",
                Box::new(|w| w.payment_outbox.push(ev("payment.created", "o", None))),
            ),
            (
                "no payment",
                Box::new(|w| {
                    w.payments.clear();
                }),
            ),
        ];
        for (name, break_it) in cases {
            let mut w = consistent();
            break_it(&mut w);
            assert!(!w.problems().is_empty(), "{name} went unnoticed");
        }
    }
}
