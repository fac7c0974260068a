//! SQLite backend of [`PaymentStore`].

use super::{
    CouponRow, FailureRow, LedgerStore, OrderReplica, PaymentRow, PaymentStore, PayoutAccount,
    PayoutTotals, PendingCharge, Redemption, StoreError, group_by_transfer,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::events::{EventEnvelope, VersionCheck};
use ms_common::storage::sqlite::{self, Db, Migration, is_unique_violation};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::{from_db, to_db};
use sqlx::{FromRow, Row, SqliteConnection};
use std::path::Path;
use std::sync::Arc;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "order replica, payments, coupons",
        sql: "
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete')),
    expires_at TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
    coupon_code TEXT,
    provider_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE coupons (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    code TEXT NOT NULL UNIQUE,
    percent_off INTEGER NOT NULL CHECK (percent_off BETWEEN 1 AND 100),
    max_redemptions INTEGER CHECK (max_redemptions IS NULL OR max_redemptions >= 1),
    redemptions INTEGER NOT NULL DEFAULT 0 CHECK (redemptions >= 0),
    expires_at TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE payment_failures (
    order_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TEXT NOT NULL
);",
    },
    Migration {
        version: 2,
        name: "refunds: refunded orders, payments' refunded_at",
        sql: "
-- SQLite cannot change a CHECK: the order replica is rebuilt to allow 'refunded'.
CREATE TABLE orders_v2 (
    id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete', 'refunded')),
    expires_at TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    version INTEGER NOT NULL
);
INSERT INTO orders_v2 (id, stuff_id, user_id, status, expires_at, price_cents, version)
    SELECT id, stuff_id, user_id, status, expires_at, price_cents, version FROM orders;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
ALTER TABLE payments ADD COLUMN refunded_at TEXT;",
    },
    Migration {
        version: 3,
        name: "Stripe webhook: handled events, payments by PaymentIntent",
        sql: "
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    handled_at TEXT NOT NULL
);
CREATE INDEX payments_provider ON payments (provider_id);",
    },
    Migration {
        version: 4,
        name: "pending charges for reconciliation",
        sql: "
CREATE TABLE pending_charges (
    order_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    coupon_code TEXT,
    started_at TEXT NOT NULL
);
CREATE INDEX pending_charges_started ON pending_charges (started_at);",
    },
    Migration {
        version: 5,
        name: "pending charges: the PaymentIntent opened for the browser",
        sql: "
ALTER TABLE pending_charges ADD COLUMN intent_key TEXT;
ALTER TABLE pending_charges ADD COLUMN intent_id TEXT;",
    },
    Migration {
        version: 6,
        name: "sellers paid: fees, the ledger, connected accounts",
        sql: "
ALTER TABLE orders ADD COLUMN seller_id TEXT;
ALTER TABLE payments ADD COLUMN currency TEXT NOT NULL DEFAULT '';
ALTER TABLE payments ADD COLUMN fee_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN seller_id TEXT;
ALTER TABLE payments ADD COLUMN payout TEXT NOT NULL DEFAULT 'held'
    CHECK (payout IN ('held', 'direct', 'transferred', 'reversed'));
ALTER TABLE payments ADD COLUMN transfer_key TEXT;
ALTER TABLE payments ADD COLUMN transfer_id TEXT;
CREATE INDEX payments_by_seller_payout ON payments (seller_id, payout);
CREATE INDEX payments_by_transfer ON payments (transfer_key);
ALTER TABLE pending_charges ADD COLUMN fee_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pending_charges ADD COLUMN destination TEXT;
CREATE TABLE payout_accounts (
    seller_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL UNIQUE,
    onboarded INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);",
    },
];

/// Orders, payments and coupons in a SQLite database.
#[derive(Clone)]
pub struct SqlitePaymentStore {
    db: Db,
}

impl SqlitePaymentStore {
    /// Opens the file at `path` (or private memory for `None`) and migrates it.
    pub async fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            db: sqlite::open(path, MIGRATIONS).await?,
        })
    }
}

fn version_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

const COUPON_COLUMNS: &str =
    "code, percent_off, max_redemptions, redemptions, expires_at, created_by, created_at";

fn pending_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<PendingCharge, StoreError> {
    Ok(PendingCharge {
        order_id: r.get("order_id"),
        user_id: r.get("user_id"),
        amount_cents: r.get("amount_cents"),
        coupon_code: r.get("coupon_code"),
        started_at: from_db(&r.get::<String, _>("started_at"))?,
        intent_key: r.get("intent_key"),
        intent_id: r.get("intent_id"),
        fee_cents: r.get("fee_cents"),
        destination: r.get("destination"),
    })
}

fn account_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<PayoutAccount, StoreError> {
    Ok(PayoutAccount {
        seller_id: r.get("seller_id"),
        account_id: r.get("account_id"),
        onboarded: r.get("onboarded"),
        created_at: from_db(&r.get::<String, _>("created_at"))?,
    })
}

fn payments_from(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<PaymentRow>, StoreError> {
    Ok(rows
        .iter()
        .map(PaymentRow::from_row)
        .collect::<Result<_, _>>()?)
}

async fn release(conn: &mut SqliteConnection, code: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE coupons SET redemptions = redemptions - 1 WHERE code = ? AND redemptions > 0",
    )
    .bind(code)
    .execute(conn)
    .await?;
    Ok(())
}

#[async_trait]
impl PaymentStore for SqlitePaymentStore {
    async fn apply_order(&self, o: &OrderReplica) -> Result<VersionCheck, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let held: Option<i64> = sqlx::query_scalar("SELECT version FROM orders WHERE id = ?")
            .bind(&o.id)
            .fetch_optional(&mut *tx)
            .await?;
        let check = VersionCheck::of(held.map(version_of), o.version);
        if check != VersionCheck::Apply {
            return Ok(check);
        }
        match held {
            None => {
                sqlx::query(
                    "INSERT INTO orders (id, stuff_id, user_id, status, expires_at, price_cents, version, seller_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&o.id)
                .bind(&o.stuff_id)
                .bind(&o.user_id)
                .bind(o.status.as_str())
                .bind(to_db(&o.expires_at))
                .bind(o.price_cents)
                .bind(db_version(o.version))
                .bind(&o.seller_id)
                .execute(&mut *tx)
                .await?;
            }
            Some(v) => {
                sqlx::query(
                    "UPDATE orders SET stuff_id = ?, user_id = ?, status = ?, expires_at = ?, price_cents = ?, version = ?,
                        seller_id = COALESCE(?, seller_id) WHERE id = ? AND version = ?",
                )
                .bind(&o.stuff_id)
                .bind(&o.user_id)
                .bind(o.status.as_str())
                .bind(to_db(&o.expires_at))
                .bind(o.price_cents)
                .bind(db_version(o.version))
                .bind(&o.seller_id)
                .bind(&o.id)
                .bind(v)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(VersionCheck::Apply)
    }

    async fn order(&self, id: &str) -> Result<Option<OrderReplica>, StoreError> {
        let row = sqlx::query("SELECT * FROM orders WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(OrderReplica::from_row).transpose()?)
    }

    async fn payment_for_order(&self, order_id: &str) -> Result<Option<PaymentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM payments WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(PaymentRow::from_row).transpose()?)
    }

    async fn record_payment(
        &self,
        p: &PaymentRow,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let res = sqlx::query(
            "INSERT INTO payments (id, order_id, user_id, amount_cents, coupon_code, provider_id, created_at,
                                   currency, fee_cents, seller_id, payout)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.order_id)
        .bind(&p.user_id)
        .bind(p.amount_cents)
        .bind(&p.coupon_code)
        .bind(&p.provider_id)
        .bind(to_db(&p.created_at))
        .bind(&p.currency)
        .bind(p.fee_cents)
        .bind(&p.seller_id)
        .bind(p.payout.as_str())
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => return Err(StoreError::AlreadyPaid),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        sqlite::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_refund(
        &self,
        order_id: &str,
        refunded_at: DateTime<Utc>,
        event: &EventEnvelope,
    ) -> Result<Option<PaymentRow>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "UPDATE payments SET refunded_at = ? WHERE order_id = ? AND refunded_at IS NULL RETURNING *",
        )
        .bind(to_db(&refunded_at))
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let payment = PaymentRow::from_row(&row)?;
        sqlite::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(Some(payment))
    }

    async fn record_failure(
        &self,
        f: &FailureRow,
        coupon: Option<&str>,
        event: &EventEnvelope,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO payment_failures (order_id, user_id, reason, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&f.order_id)
        .bind(&f.user_id)
        .bind(&f.reason)
        .bind(to_db(&f.created_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A failure told twice (the decline answer, then Stripe's webhook) gives the
        // redemption back once.
        if inserted == 0 {
            return Ok(());
        }
        if let Some(code) = coupon {
            release(&mut tx, code).await?;
        }
        sqlite::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn failure_for_order(&self, order_id: &str) -> Result<Option<FailureRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM payment_failures WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?;
        row.map(|r| {
            Ok(FailureRow {
                order_id: r.get("order_id"),
                user_id: r.get("user_id"),
                reason: r.get("reason"),
                created_at: from_db(&r.get::<String, _>("created_at"))?,
            })
        })
        .transpose()
    }

    async fn create_coupon(&self, c: &CouponRow) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO coupons (code, percent_off, max_redemptions, redemptions, expires_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.code)
        .bind(c.percent_off)
        .bind(c.max_redemptions)
        .bind(c.redemptions)
        .bind(c.expires_at.as_ref().map(to_db))
        .bind(&c.created_by)
        .bind(to_db(&c.created_at))
        .execute(self.db.pool())
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => Err(StoreError::CodeTaken),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    async fn coupon(&self, code: &str) -> Result<Option<CouponRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COUPON_COLUMNS} FROM coupons WHERE code = ?"
        )))
        .bind(code)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.as_ref().map(CouponRow::from_row).transpose()?)
    }

    async fn coupons(&self) -> Result<Vec<CouponRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COUPON_COLUMNS} FROM coupons ORDER BY created_at DESC, seq DESC"
        )))
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(CouponRow::from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn redeem_coupon(
        &self,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StoreError> {
        // One statement: the row lock makes the check and the increment indivisible.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE coupons SET redemptions = redemptions + 1
             WHERE code = ?
               AND (max_redemptions IS NULL OR redemptions < max_redemptions)
               AND (expires_at IS NULL OR expires_at > ?)
             RETURNING {COUPON_COLUMNS}"
        )))
        .bind(code)
        .bind(to_db(&now))
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            Some(r) => Ok(Redemption::Redeemed(CouponRow::from_row(&r)?)),
            None => Ok(Redemption::why_not(self.coupon(code).await?, now)),
        }
    }

    async fn payment_by_provider(
        &self,
        provider_id: &str,
    ) -> Result<Option<PaymentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM payments WHERE provider_id = ?")
            .bind(provider_id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(row.as_ref().map(PaymentRow::from_row).transpose()?)
    }

    async fn webhook_handled(&self, id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM webhook_events WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(found.is_some())
    }

    async fn record_webhook(
        &self,
        id: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhook_events (id, kind, handled_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(to_db(&at))
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn begin_charge(&self, c: &PendingCharge) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let earlier: Option<Option<String>> =
            sqlx::query_scalar("SELECT coupon_code FROM pending_charges WHERE order_id = ?")
                .bind(&c.order_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(Some(code)) = earlier
            && Some(&code) != c.coupon_code.as_ref()
        {
            release(&mut tx, &code).await?;
        }
        sqlx::query(
            "INSERT INTO pending_charges (order_id, user_id, amount_cents, coupon_code, started_at, intent_key, intent_id,
                                          fee_cents, destination)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (order_id) DO UPDATE SET user_id = excluded.user_id, amount_cents = excluded.amount_cents,
                 coupon_code = excluded.coupon_code, started_at = excluded.started_at,
                 intent_key = excluded.intent_key, intent_id = excluded.intent_id,
                 fee_cents = excluded.fee_cents, destination = excluded.destination",
        )
        .bind(&c.order_id)
        .bind(&c.user_id)
        .bind(c.amount_cents)
        .bind(&c.coupon_code)
        .bind(to_db(&c.started_at))
        .bind(&c.intent_key)
        .bind(&c.intent_id)
        .bind(c.fee_cents)
        .bind(&c.destination)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_charge_intent(
        &self,
        order_id: &str,
        intent_key: &str,
        intent_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE pending_charges SET intent_id = ? WHERE order_id = ? AND intent_key = ?",
        )
        .bind(intent_id)
        .bind(order_id)
        .bind(intent_key)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn abandon_charge(&self, order_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let gone: Option<Option<String>> = sqlx::query_scalar(
            "DELETE FROM pending_charges WHERE order_id = ? RETURNING coupon_code",
        )
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(coupon) = gone else {
            return Ok(false);
        };
        if let Some(code) = coupon {
            release(&mut tx, &code).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn pending_charge(&self, order_id: &str) -> Result<Option<PendingCharge>, StoreError> {
        let row = sqlx::query("SELECT * FROM pending_charges WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(pending_from_row).transpose()
    }

    async fn pending_charges(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingCharge>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM pending_charges WHERE started_at < ? ORDER BY started_at LIMIT ?",
        )
        .bind(to_db(&before))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(pending_from_row).collect()
    }

    async fn end_charge(&self, order_id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_charges WHERE order_id = ?")
            .bind(order_id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn release_coupon(&self, code: &str) -> Result<(), StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        release(&mut conn, code).await
    }

    fn ledger(&self) -> Arc<dyn LedgerStore> {
        Arc::new(self.clone())
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[async_trait]
impl LedgerStore for SqlitePaymentStore {
    async fn payout_account(&self, seller_id: &str) -> Result<Option<PayoutAccount>, StoreError> {
        let row = sqlx::query("SELECT * FROM payout_accounts WHERE seller_id = ?")
            .bind(seller_id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn add_payout_account(&self, a: &PayoutAccount) -> Result<PayoutAccount, StoreError> {
        sqlx::query(
            "INSERT INTO payout_accounts (seller_id, account_id, onboarded, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (seller_id) DO NOTHING",
        )
        .bind(&a.seller_id)
        .bind(&a.account_id)
        .bind(a.onboarded)
        .bind(to_db(&a.created_at))
        .execute(self.db.pool())
        .await?;
        self.payout_account(&a.seller_id)
            .await?
            .ok_or_else(|| StoreError::Other(anyhow::anyhow!("payout account not stored")))
    }

    async fn set_onboarded(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE payout_accounts SET onboarded = 1 WHERE account_id = ? RETURNING seller_id",
        )
        .bind(account_id)
        .fetch_optional(self.db.pool())
        .await?)
    }

    async fn claim_held(&self, seller_id: &str, key: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE payments SET payout = 'transferred', transfer_key = ?
             WHERE seller_id = ? AND payout = 'held' AND refunded_at IS NULL",
        )
        .bind(key)
        .bind(seller_id)
        .execute(self.db.pool())
        .await?
        .rows_affected())
    }

    async fn unsent_transfers(
        &self,
        seller_id: &str,
    ) -> Result<Vec<(String, Vec<PaymentRow>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM payments WHERE seller_id = ? AND payout = 'transferred'
               AND transfer_id IS NULL AND transfer_key IS NOT NULL ORDER BY transfer_key, id",
        )
        .bind(seller_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(group_by_transfer(payments_from(&rows)?))
    }

    async fn set_transfer_id(&self, key: &str, transfer_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE payments SET transfer_id = ? WHERE transfer_key = ?")
            .bind(transfer_id)
            .bind(key)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    async fn payout_sellers(&self, limit: u32) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT p.seller_id FROM payments p
             JOIN payout_accounts a ON a.seller_id = p.seller_id AND a.onboarded = 1
             WHERE (p.payout = 'held' AND p.refunded_at IS NULL)
                OR (p.payout = 'transferred' AND p.transfer_id IS NULL)
             LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?)
    }

    async fn reversals_due(&self, limit: u32) -> Result<Vec<PaymentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM payments WHERE payout = 'transferred' AND transfer_id IS NOT NULL
               AND refunded_at IS NOT NULL LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        payments_from(&rows)
    }

    async fn set_reversed(&self, order_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE payments SET payout = 'reversed' WHERE order_id = ? AND payout = 'transferred'",
        )
        .bind(order_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    async fn payout_totals(&self, seller_id: &str) -> Result<PayoutTotals, StoreError> {
        let row = sqlx::query(
            "SELECT
                COALESCE(SUM(CASE WHEN payout = 'held' THEN MAX(amount_cents - fee_cents, 0) END), 0) AS held,
                COALESCE(SUM(CASE WHEN payout IN ('direct', 'transferred') THEN MAX(amount_cents - fee_cents, 0) END), 0) AS paid_out
             FROM payments WHERE seller_id = ? AND refunded_at IS NULL",
        )
        .bind(seller_id)
        .fetch_one(self.db.pool())
        .await?;
        Ok(PayoutTotals {
            held_cents: row.get("held"),
            paid_out_cents: row.get("paid_out"),
        })
    }
}
