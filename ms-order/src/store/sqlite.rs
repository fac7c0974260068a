//! SQLite backend of [`OrderStore`].

use super::{
    CreateError, NamedReview, OrderStore, Paid, ReviewError, SalesPage, StuffReplica, event_for,
    review_event, sale_of,
};
use async_trait::async_trait;
use ms_common::events::{
    Event, EventEnvelope, OrderRecord, OrderStatus, ReviewRecord, SaleRecord, StuffStatus,
    UserRecord, VersionCheck,
};
use ms_common::storage::sqlite::{self, Db, Migration, is_unique_violation};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::to_db;
use sqlx::{FromRow, Row};
use std::path::Path;
use std::sync::Arc;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "orders and the stuff replica",
        sql: "
CREATE TABLE stuff_replica (
    id TEXT PRIMARY KEY,
    seller_id TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete')),
    expires_at TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
-- At most one active order per stuff: the database decides who wins a checkout race.
CREATE UNIQUE INDEX orders_one_active_per_stuff ON orders(stuff_id) WHERE status = 'created';
CREATE INDEX orders_by_user ON orders(user_id, created_at);",
    },
    Migration {
        version: 2,
        name: "stuff replica: deliverable",
        sql: "ALTER TABLE stuff_replica ADD COLUMN deliverable INTEGER NOT NULL DEFAULT 0;",
    },
    Migration {
        version: 3,
        name: "one taker per stuff: created or complete",
        sql: "
-- A stuff has at most one order that holds or bought it: a late payment can no longer
-- complete a cancelled order while another order holds the stuff, nor after it sold.
DROP INDEX orders_one_active_per_stuff;
CREATE UNIQUE INDEX orders_one_taker_per_stuff ON orders(stuff_id)
    WHERE status IN ('created', 'complete');",
    },
    Migration {
        version: 4,
        name: "refunded orders",
        sql: "
-- SQLite cannot change a CHECK: the table is rebuilt to allow 'refunded', and its
-- indexes with it. A refunded order is not a taker: it frees the stuff.
CREATE TABLE orders_v4 (
    id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete', 'refunded')),
    expires_at TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
INSERT INTO orders_v4 (id, stuff_id, user_id, status, expires_at, price_cents, version, created_at)
    SELECT id, stuff_id, user_id, status, expires_at, price_cents, version, created_at FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v4 RENAME TO orders;
CREATE UNIQUE INDEX orders_one_taker_per_stuff ON orders(stuff_id)
    WHERE status IN ('created', 'complete');
CREATE INDEX orders_by_user ON orders(user_id, created_at);",
    },
    Migration {
        version: 5,
        name: "holds by expiry, for the sweeper",
        sql: "CREATE INDEX orders_created_by_expiry ON orders(expires_at) WHERE status = 'created';",
    },
    Migration {
        version: 6,
        name: "orders: the stuff version they were priced at",
        sql: "ALTER TABLE orders ADD COLUMN stuff_version INTEGER;",
    },
    Migration {
        version: 7,
        name: "what an order bought and paid: the stuff's title, the amount charged",
        sql: "
ALTER TABLE stuff_replica ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN stuff_title TEXT NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN paid_cents INTEGER;",
    },
    Migration {
        version: 8,
        name: "the replica of account names (buyers in reviews and sales)",
        sql: "
CREATE TABLE user_names (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    version INTEGER NOT NULL
);",
    },
    Migration {
        version: 9,
        name: "reviews by verified buyers, and the orders they reviewed",
        sql: "
CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    stuff_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- One review per order: the database decides a second one.
CREATE UNIQUE INDEX reviews_one_per_order ON reviews(order_id);
-- review:list: a stuff's reviews, newest first.
CREATE INDEX reviews_by_stuff ON reviews(stuff_id, created_at DESC, id DESC);
ALTER TABLE orders ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0;",
    },
    Migration {
        version: 10,
        name: "sales: each order's seller, the fee and when it was paid",
        sql: "
ALTER TABLE orders ADD COLUMN seller_id TEXT;
ALTER TABLE orders ADD COLUMN fee_cents INTEGER;
ALTER TABLE orders ADD COLUMN paid_at TEXT;
UPDATE orders SET seller_id = (SELECT seller_id FROM stuff_replica WHERE stuff_replica.id = orders.stuff_id);
-- Orders paid before this was recorded: paid when ordered, near enough.
UPDATE orders SET paid_at = created_at WHERE status = 'complete';
-- order:sales: a seller's complete orders, newest paid first.
CREATE INDEX orders_sales ON orders(seller_id, paid_at DESC, id DESC) WHERE status = 'complete';",
    },
];

/// A complete order with what makes it a sale: its seller, fee, payment time (columns of
/// `orders`) and its buyer's name (the replica of accounts).
const SALES_SQL: &str = "SELECT o.*, n.display_name AS buyer_name
    FROM orders o LEFT JOIN user_names n ON n.id = o.user_id";

/// The sale a row of [`SALES_SQL`] is; `None` for an order whose seller was never known
/// (made before sales were recorded, for a stuff the replica did not have).
fn sale_from(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<Option<SaleRecord>> {
    let order = OrderRecord::from_row(row)?;
    let Some(seller_id) = row.try_get::<Option<String>, _>("seller_id")? else {
        return Ok(None);
    };
    let fee = row.try_get::<Option<i64>, _>("fee_cents")?.unwrap_or(0);
    let paid_at = match row.try_get::<Option<String>, _>("paid_at")? {
        Some(t) => ms_common::time::from_db(&t)?,
        None => order.created_at,
    };
    let buyer = row.try_get::<Option<String>, _>("buyer_name")?;
    Ok(Some(sale_of(&order, seller_id, fee, paid_at, buyer)))
}

/// A `reviews` row joined with its buyer's name.
fn named_review(r: &sqlx::sqlite::SqliteRow) -> anyhow::Result<NamedReview> {
    Ok(NamedReview {
        review: ReviewRecord {
            id: r.try_get("id")?,
            order_id: r.try_get("order_id")?,
            stuff_id: r.try_get("stuff_id")?,
            user_id: r.try_get("user_id")?,
            rating: r.try_get("rating")?,
            comment: r.try_get("comment")?,
            created_at: r.try_get("created_at")?,
        },
        buyer_name: r.try_get("display_name")?,
    })
}

/// A review and its buyer's current name (an account not heard of has none).
const REVIEW_SELECT: &str = "SELECT r.id, r.order_id, r.stuff_id, r.user_id, r.rating, r.comment,
        r.created_at, n.display_name
 FROM reviews r LEFT JOIN user_names n ON n.id = r.user_id";

/// Orders in a SQLite database.
#[derive(Clone)]
pub struct SqliteOrderStore {
    db: Db,
}

impl SqliteOrderStore {
    /// Opens the file at `path` (or private memory for `None`) and migrates it.
    pub async fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            db: sqlite::open(path, MIGRATIONS).await?,
        })
    }
}

#[async_trait]
impl OrderStore for SqliteOrderStore {
    async fn apply_stuff(&self, s: &StuffReplica) -> anyhow::Result<VersionCheck> {
        let mut tx = self.db.begin_write().await?;
        let held: Option<i64> = sqlx::query("SELECT version FROM stuff_replica WHERE id = ?")
            .bind(&s.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get(0));
        let check = VersionCheck::of(held.map(|h| u64::try_from(h).unwrap_or(0)), s.version);
        if check == VersionCheck::Apply {
            sqlx::query(
                "INSERT INTO stuff_replica (id, seller_id, title, price_cents, status, version, deliverable)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(id) DO UPDATE SET seller_id = excluded.seller_id, title = excluded.title,
                 price_cents = excluded.price_cents, status = excluded.status, version = excluded.version,
                 deliverable = excluded.deliverable",
            )
            .bind(&s.id)
            .bind(&s.seller_id)
            .bind(&s.title)
            .bind(s.price_cents)
            .bind(s.status.as_str())
            .bind(db_version(s.version))
            .bind(s.deliverable)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(check)
    }

    async fn stuff(&self, id: &str) -> anyhow::Result<Option<StuffReplica>> {
        let row = sqlx::query("SELECT * FROM stuff_replica WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| {
            let status: String = r.get("status");
            Ok(StuffReplica {
                id: r.get("id"),
                seller_id: r.get("seller_id"),
                title: r.get("title"),
                price_cents: r.get("price_cents"),
                status: StuffStatus::parse(&status)
                    .ok_or_else(|| anyhow::anyhow!("bad stuff status {status}"))?,
                version: u64::try_from(r.get::<i64, _>("version"))?,
                deliverable: r.get("deliverable"),
            })
        })
        .transpose()
    }

    async fn create_order(&self, o: &OrderRecord, cid: Option<String>) -> Result<(), CreateError> {
        let mut tx = self.db.begin_write().await.map_err(anyhow::Error::from)?;
        let sold: Option<i64> =
            sqlx::query("SELECT 1 FROM orders WHERE stuff_id = ? AND status = 'complete' LIMIT 1")
                .bind(&o.stuff_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(anyhow::Error::from)?
                .map(|r| r.get(0));
        if sold.is_some() {
            return Err(CreateError::Sold);
        }
        let res = sqlx::query(
            "INSERT INTO orders (id, stuff_id, user_id, status, expires_at, price_cents, stuff_title,
                                 paid_cents, stuff_version, version, created_at, seller_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                     (SELECT seller_id FROM stuff_replica WHERE id = ?))",
        )
        .bind(&o.id)
        .bind(&o.stuff_id)
        .bind(&o.user_id)
        .bind(o.status.as_str())
        .bind(to_db(&o.expires_at))
        .bind(o.price_cents)
        .bind(&o.stuff_title)
        .bind(o.paid_cents)
        .bind(o.stuff_version.map(db_version))
        .bind(db_version(o.version))
        .bind(to_db(&o.created_at))
        .bind(&o.stuff_id)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(CreateError::Held),
            Err(e) => return Err(CreateError::Other(e.into())),
            Ok(_) => {}
        }
        sqlite::enqueue(&mut tx, &event_for(o, cid)).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(())
    }

    async fn order(&self, id: &str) -> anyhow::Result<Option<OrderRecord>> {
        let row = sqlx::query("SELECT * FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(OrderRecord::from_row).transpose()?)
    }

    async fn orders_of(&self, user_id: &str) -> anyhow::Result<Vec<OrderRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM orders WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT 500",
        )
        .bind(user_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(OrderRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn transition(
        &self,
        id: &str,
        from: OrderStatus,
        to: OrderStatus,
        paid: Option<Paid>,
        cid: Option<String>,
    ) -> anyhow::Result<Option<OrderRecord>> {
        let mut tx = self.db.begin_write().await?;
        let paid_at = (to == OrderStatus::Complete).then(|| to_db(&ms_common::time::now()));
        let changed = sqlx::query(
            "UPDATE orders SET status = ?, paid_cents = COALESCE(?, paid_cents),
                    fee_cents = COALESCE(?, fee_cents), paid_at = COALESCE(?, paid_at),
                    version = version + 1
             WHERE id = ? AND status = ?",
        )
        .bind(to.as_str())
        .bind(paid.map(|p| p.cents))
        .bind(paid.map(|p| p.fee_cents))
        .bind(&paid_at)
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await;
        let changed = match changed {
            // Completing a cancelled order while another became active for the stuff.
            Err(e) if is_unique_violation(&e) => return Ok(None),
            other => other?.rows_affected(),
        };
        if changed != 1 {
            return Ok(None);
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SALES_SQL} WHERE o.id = ?")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let order = OrderRecord::from_row(&row)?;
        sqlite::enqueue(&mut tx, &event_for(&order, cid.clone())).await?;
        if order.status == OrderStatus::Complete
            && let Some(sale) = sale_from(&row)?
        {
            let ev = EventEnvelope::new(Event::SaleCompleted(sale), cid);
            sqlite::enqueue(&mut tx, &ev).await?;
        }
        tx.commit().await?;
        Ok(Some(order))
    }

    async fn sales_of(&self, seller_id: &str, limit: u32) -> anyhow::Result<SalesPage> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SALES_SQL} WHERE o.seller_id = ? AND o.status = 'complete'
             ORDER BY o.paid_at DESC, o.id DESC LIMIT ?"
        )))
        .bind(seller_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        let mut sales = Vec::with_capacity(rows.len());
        for row in &rows {
            sales.extend(sale_from(row)?);
        }
        let total: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(COALESCE(paid_cents, 0) - COALESCE(fee_cents, 0)), 0)
             FROM orders WHERE seller_id = ? AND status = 'complete'",
        )
        .bind(seller_id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(SalesPage {
            sales,
            total_earned_cents: total,
        })
    }

    async fn overdue_holds(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'created' AND expires_at < ?
             ORDER BY expires_at, id LIMIT ?",
        )
        .bind(to_db(&before))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?)
    }

    async fn apply_user(&self, user: &UserRecord) -> anyhow::Result<bool> {
        let mut tx = self.db.begin_write().await?;
        let changed = sqlite::apply_user_name(&mut tx, user).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn create_review(
        &self,
        review: &ReviewRecord,
        fallback_name: &str,
        cid: Option<String>,
    ) -> Result<NamedReview, ReviewError> {
        let mut tx = self.db.begin_write().await.map_err(anyhow::Error::from)?;
        let inserted = sqlx::query(
            "INSERT INTO reviews (id, order_id, stuff_id, user_id, rating, comment, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&review.id)
        .bind(&review.order_id)
        .bind(&review.stuff_id)
        .bind(&review.user_id)
        .bind(review.rating)
        .bind(&review.comment)
        .bind(to_db(&review.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(ReviewError::AlreadyReviewed),
            other => other.map_err(anyhow::Error::from)?,
        };
        // Not a change of the order: no version bump, no order event.
        let marked = sqlx::query(
            "UPDATE orders SET reviewed = 1
             WHERE id = ? AND user_id = ? AND stuff_id = ? AND status = 'complete'",
        )
        .bind(&review.order_id)
        .bind(&review.user_id)
        .bind(&review.stuff_id)
        .execute(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?
        .rows_affected();
        if marked != 1 {
            // Dropping the transaction rolls the review back.
            return Err(ReviewError::NotComplete);
        }
        sqlite::user_name_or(&mut tx, &review.user_id, fallback_name)
            .await
            .map_err(anyhow::Error::from)?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REVIEW_SELECT} WHERE r.id = ?"
        )))
        .bind(&review.id)
        .fetch_one(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?;
        let named = named_review(&row)?;
        sqlite::enqueue(&mut tx, &review_event(review, cid)).await?;
        tx.commit().await.map_err(anyhow::Error::from)?;
        Ok(named)
    }

    async fn reviews_of(&self, stuff_id: &str, limit: u32) -> anyhow::Result<Vec<NamedReview>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{REVIEW_SELECT} WHERE r.stuff_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
        )))
        .bind(stuff_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(named_review).collect()
    }

    async fn stuff_taken(&self, stuff_id: &str, except: &str) -> anyhow::Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM orders WHERE stuff_id = ? AND id != ? AND status IN ('created', 'complete') LIMIT 1",
        )
        .bind(stuff_id)
        .bind(except)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    async fn active_count(&self, stuff_id: &str) -> anyhow::Result<u64> {
        let n: i64 =
            sqlx::query("SELECT COUNT(*) FROM orders WHERE stuff_id = ? AND status = 'created'")
                .bind(stuff_id)
                .fetch_one(self.db.pool())
                .await?
                .get(0);
        Ok(u64::try_from(n)?)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}
