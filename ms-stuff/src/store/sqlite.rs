//! SQLite backend of [`StuffStore`].
//!
//! Writes run in `BEGIN IMMEDIATE` transactions, so a read-decide-write sequence inside one
//! (order events, classifying a refused edit) sees no interleaved writer.

use super::{
    Edit, FileEdit, FileEdited, ListQuery, OrderChange, OrderOutcome, ReviewOutcome, Search,
    SearchScope, StoreError, StuffStore, created_event, delivery_event, edit_refusal, file_effect,
    order_effect, rated, refused_event, reservation_refusal, updated_event,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::contract::{CourseCount, StuffSort, UNKNOWN_SELLER_NAME};
use ms_common::events::{
    OrderRecord, OrderStatus, ReviewRecord, StuffRecord, UserRecord, VersionCheck,
};
use ms_common::storage::sqlite::{self, Db, Migration};
use ms_common::storage::{OutboxStore, db_version};
use ms_common::time::to_db;
use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};
use std::path::Path;
use std::sync::Arc;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "stuff, order versions",
        sql: "
CREATE TABLE stuff (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents BETWEEN 1 AND 100000000),
    seller_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'sold')),
    order_id TEXT,
    version INTEGER NOT NULL CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX stuff_newest ON stuff(created_at DESC, id DESC);
CREATE INDEX stuff_status_newest ON stuff(status, created_at DESC, id DESC);
-- The last applied version of every order we heard of, with what it said about its stuff.
CREATE TABLE order_versions (
    order_id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete')),
    version INTEGER NOT NULL CHECK (version >= 1)
);
CREATE INDEX order_versions_active ON order_versions(stuff_id, order_id) WHERE status = 'created';",
    },
    Migration {
        version: 2,
        name: "deliverables: files, secret note, buyers",
        sql: "
ALTER TABLE stuff ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
ALTER TABLE stuff ADD COLUMN secret_note TEXT;
ALTER TABLE order_versions ADD COLUMN user_id TEXT;",
    },
    Migration {
        version: 3,
        name: "refunded orders",
        sql: "
-- SQLite cannot change a CHECK: order_versions is rebuilt to allow 'refunded'.
CREATE TABLE order_versions_v3 (
    order_id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('created', 'cancelled', 'complete', 'refunded')),
    version INTEGER NOT NULL CHECK (version >= 1),
    user_id TEXT
);
INSERT INTO order_versions_v3 (order_id, stuff_id, status, version, user_id)
    SELECT order_id, stuff_id, status, version, user_id FROM order_versions;
DROP TABLE order_versions;
ALTER TABLE order_versions_v3 RENAME TO order_versions;
CREATE INDEX order_versions_active ON order_versions(stuff_id, order_id) WHERE status = 'created';",
    },
    Migration {
        version: 4,
        name: "withdrawn stuff, courses, a seller's stuff, price order",
        sql: "
-- SQLite cannot change a CHECK: stuff is rebuilt to allow 'withdrawn', indexes with it.
CREATE TABLE stuff_v4 (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents BETWEEN 1 AND 100000000),
    seller_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('available', 'reserved', 'sold', 'withdrawn')),
    order_id TEXT,
    version INTEGER NOT NULL CHECK (version >= 1),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    files TEXT NOT NULL DEFAULT '[]',
    secret_note TEXT,
    course TEXT
);
INSERT INTO stuff_v4 (id, title, description, price_cents, seller_id, status, order_id, version,
                      created_at, updated_at, files, secret_note)
    SELECT id, title, description, price_cents, seller_id, status, order_id, version,
           created_at, updated_at, files, secret_note FROM stuff;
DROP TABLE stuff;
ALTER TABLE stuff_v4 RENAME TO stuff;
CREATE INDEX stuff_newest ON stuff(created_at DESC, id DESC);
CREATE INDEX stuff_status_newest ON stuff(status, created_at DESC, id DESC);
-- stuff:mine and stuff:list {sellerId}: a seller's stuff, newest first.
CREATE INDEX stuff_by_seller ON stuff(seller_id, created_at DESC, id DESC);
-- stuff:list {course}, newest first or by price; and by price over everything.
CREATE INDEX stuff_course_newest ON stuff(course, created_at DESC, id DESC) WHERE course IS NOT NULL;
CREATE INDEX stuff_course_price ON stuff(course, price_cents, id) WHERE course IS NOT NULL;
CREATE INDEX stuff_price ON stuff(price_cents, id);",
    },
    Migration {
        version: 5,
        name: "full-text search over title, description and course",
        sql: "
-- An external-content FTS5 index keyed by stuff's rowid, kept in step by triggers.
-- (stuff has no INTEGER PRIMARY KEY, so a VACUUM may renumber rowids: run
-- INSERT INTO stuff_fts(stuff_fts) VALUES('rebuild') after one.)
CREATE VIRTUAL TABLE stuff_fts USING fts5(
    title, description, course,
    content='stuff', content_rowid='rowid',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER stuff_fts_insert AFTER INSERT ON stuff BEGIN
    INSERT INTO stuff_fts(rowid, title, description, course)
        VALUES (new.rowid, new.title, new.description, new.course);
END;
CREATE TRIGGER stuff_fts_delete AFTER DELETE ON stuff BEGIN
    INSERT INTO stuff_fts(stuff_fts, rowid, title, description, course)
        VALUES ('delete', old.rowid, old.title, old.description, old.course);
END;
CREATE TRIGGER stuff_fts_update AFTER UPDATE OF title, description, course ON stuff BEGIN
    INSERT INTO stuff_fts(stuff_fts, rowid, title, description, course)
        VALUES ('delete', old.rowid, old.title, old.description, old.course);
    INSERT INTO stuff_fts(rowid, title, description, course)
        VALUES (new.rowid, new.title, new.description, new.course);
END;
INSERT INTO stuff_fts(stuff_fts) VALUES ('rebuild');",
    },
    Migration {
        version: 6,
        name: "sellers' names: the replica of accounts, and the name on each stuff",
        sql: "
CREATE TABLE user_names (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    version INTEGER NOT NULL
);
ALTER TABLE stuff ADD COLUMN seller_name TEXT;",
    },
    Migration {
        version: 7,
        name: "ratings from reviews, and the best rated first",
        sql: "
ALTER TABLE stuff ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stuff ADD COLUMN rating_sum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stuff ADD COLUMN rating_rank INTEGER NOT NULL DEFAULT 0;
-- stuff:list {sort: rating}: best rated first, ties newest first.
CREATE INDEX stuff_rating ON stuff(rating_rank DESC, created_at DESC, id DESC);
-- Every review counted, so a redelivered review.created counts once.
CREATE TABLE reviews_applied (
    review_id TEXT PRIMARY KEY,
    stuff_id TEXT NOT NULL,
    rating INTEGER NOT NULL
);",
    },
    Migration {
        version: 8,
        name: "covers: the object of each stuff's thumbnail",
        sql: "ALTER TABLE stuff ADD COLUMN cover TEXT;",
    },
];

/// An FTS5 query where every word must match (as itself or the start of a longer word),
/// in `column` or in any column. Words are letters and digits only, so quoting is safe.
fn fts_query(words: &[String], column: Option<&str>) -> String {
    words
        .iter()
        .map(|w| match column {
            Some(c) => format!("{c} : \"{w}\"*"),
            None => format!("\"{w}\"*"),
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// What a read returns: the record's fields (`has_secret_note` computed, the note never).
const COLUMNS: &str = "id, title, description, price_cents, seller_id, status, order_id, version, created_at, updated_at, files, secret_note IS NOT NULL AS has_secret_note, course, seller_name, rating_count, rating_sum, rating_rank, cover";

/// The catalogue in a SQLite database.
#[derive(Clone)]
pub struct SqliteStuffStore {
    db: Db,
}

impl SqliteStuffStore {
    /// Opens the file at `path` (or private memory for `None`) and migrates it.
    pub async fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self {
            db: sqlite::open(path, MIGRATIONS).await?,
        })
    }
}

/// The `files` column: the list as JSON text.
fn files_json(files: &[ms_common::events::StoredFile]) -> Result<String, StoreError> {
    serde_json::to_string(files).map_err(|e| StoreError::Other(e.into()))
}

async fn get_in(conn: &mut SqliteConnection, id: &str) -> Result<Option<StuffRecord>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM stuff WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(StuffRecord::from_row).transpose()?)
}

/// From how many matches on a search reads the list's own index in its order, checking
/// each stuff against the matches, instead of sorting every match. With `m` matches among
/// `n` stuff, sorting costs about `m` row reads and walking the index about `21 * n / m`:
/// past a thousand the walk is the cheaper, and a bounded one (docs/benchmarks.md).
const DENSE_MATCHES: i64 = 1000;

/// The full-text expression a search filters by first (the title part's own, or every
/// match).
fn search_expr(search: &Search) -> String {
    match search.scope {
        SearchScope::Title => fts_query(&search.words, Some("title")),
        SearchScope::Anywhere | SearchScope::NotTitle => fts_query(&search.words, None),
    }
}

/// The statement of one catalogue page, after `prefix` (`EXPLAIN QUERY PLAN ` in the test
/// that checks every form uses an index). Only the filters given are in it, so the
/// planner picks their index. A search with `dense` matches (at least [`DENSE_MATCHES`])
/// keeps the planner off the matches' rowids (`+rowid`), so it walks the list's index in
/// order and stops at the page's end; a sparse one reads the matches and sorts them.
fn list_sql(q: &ListQuery, prefix: &str, dense: bool) -> QueryBuilder<Sqlite> {
    let mut sql = QueryBuilder::<Sqlite>::new(format!(
        "{prefix}SELECT {COLUMNS} FROM stuff WHERE status <> 'withdrawn'"
    ));
    if let Some(status) = q.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(course) = &q.course {
        sql.push(" AND course = ").push_bind(course.clone());
    }
    if let Some(seller) = &q.seller_id {
        sql.push(" AND seller_id = ").push_bind(seller.clone());
    }
    if let Some(search) = &q.search {
        let matching = if dense {
            " AND +rowid IN (SELECT rowid FROM stuff_fts WHERE stuff_fts MATCH "
        } else {
            " AND rowid IN (SELECT rowid FROM stuff_fts WHERE stuff_fts MATCH "
        };
        let anywhere = fts_query(&search.words, None);
        let in_title = fts_query(&search.words, Some("title"));
        match search.scope {
            SearchScope::Anywhere => {
                sql.push(matching).push_bind(anywhere).push(")");
            }
            SearchScope::Title => {
                sql.push(matching).push_bind(in_title).push(")");
            }
            SearchScope::NotTitle => {
                sql.push(matching).push_bind(anywhere).push(")");
                sql.push(" AND rowid NOT IN (SELECT rowid FROM stuff_fts WHERE stuff_fts MATCH ")
                    .push_bind(in_title)
                    .push(")");
            }
        }
    }
    // Keyset pagination: strictly after the cursor's item in the list's order.
    if q.sort == StuffSort::Rating {
        // Best rated first, ties newest first: three keys, all descending.
        if let Some(c) = &q.after {
            let at = to_db(&c.created_at);
            sql.push(" AND (rating_rank < ")
                .push_bind(c.key)
                .push(" OR (rating_rank = ")
                .push_bind(c.key)
                .push(" AND (created_at < ")
                .push_bind(at.clone())
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(c.id.clone())
                .push("))))");
        }
        sql.push(" ORDER BY rating_rank DESC, created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        return sql;
    }
    let (key, order) = match q.sort {
        StuffSort::Newest | StuffSort::Rating => ("created_at", "DESC"),
        StuffSort::PriceAsc => ("price_cents", "ASC"),
        StuffSort::PriceDesc => ("price_cents", "DESC"),
    };
    if let Some(c) = &q.after {
        let beyond = if order == "DESC" { "<" } else { ">" };
        let bind_key = |sql: &mut QueryBuilder<Sqlite>| {
            if key == "created_at" {
                sql.push_bind(to_db(&c.created_at));
            } else {
                sql.push_bind(c.key);
            }
        };
        sql.push(format!(" AND ({key} {beyond} "));
        bind_key(&mut sql);
        sql.push(format!(" OR ({key} = "));
        bind_key(&mut sql);
        sql.push(format!(" AND id {beyond} "))
            .push_bind(c.id.clone())
            .push("))");
    }
    sql.push(format!(" ORDER BY {key} {order}, id {order} LIMIT "))
        .push_bind(i64::from(q.limit));
    sql
}

#[async_trait]
impl StuffStore for SqliteStuffStore {
    async fn create(
        &self,
        s: &StuffRecord,
        note: Option<&str>,
        cid: Option<&str>,
    ) -> Result<StuffRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let fallback = s.seller_name.as_deref().unwrap_or(UNKNOWN_SELLER_NAME);
        let name = sqlite::user_name_or(&mut tx, &s.seller_id, fallback).await?;
        let s = &StuffRecord {
            seller_name: Some(name),
            ..s.clone()
        };
        sqlx::query(
            "INSERT INTO stuff (id, title, description, price_cents, seller_id, status, order_id,
                                version, created_at, updated_at, files, secret_note, course, seller_name)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.title)
        .bind(&s.description)
        .bind(s.price_cents)
        .bind(&s.seller_id)
        .bind(s.status.as_str())
        .bind(&s.order_id)
        .bind(db_version(s.version))
        .bind(to_db(&s.created_at))
        .bind(to_db(&s.updated_at))
        .bind(files_json(&s.files)?)
        .bind(note)
        .bind(&s.course)
        .bind(&s.seller_name)
        .execute(&mut *tx)
        .await?;
        sqlite::enqueue(&mut tx, &created_event(s, cid)).await?;
        tx.commit().await?;
        Ok(s.clone())
    }

    async fn apply_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        if !sqlite::apply_user_name(&mut tx, user).await? {
            return Ok(false);
        }
        // By the `stuff_by_seller` index; the search index is not touched (no trigger on
        // this column).
        sqlx::query("UPDATE stuff SET seller_name = ? WHERE seller_id = ?")
            .bind(&user.display_name)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError> {
        let mut conn = self.db.pool().acquire().await?;
        get_in(&mut conn, id).await
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError> {
        let dense = match &q.search {
            // Counting stops at the threshold: a fraction of a millisecond.
            Some(search) => {
                let matches: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT rowid FROM stuff_fts WHERE stuff_fts MATCH ? LIMIT ?)",
                )
                .bind(search_expr(search))
                .bind(DENSE_MATCHES)
                .fetch_one(self.db.pool())
                .await?;
                matches >= DENSE_MATCHES
            }
            None => false,
        };
        let rows = list_sql(q, "", dense)
            .build()
            .fetch_all(self.db.pool())
            .await?;
        Ok(rows
            .iter()
            .map(StuffRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn by_seller(&self, seller_id: &str, limit: u32) -> Result<Vec<StuffRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM stuff WHERE seller_id = ?
             ORDER BY created_at DESC, id DESC LIMIT ?"
        )))
        .bind(seller_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .iter()
            .map(StuffRecord::from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn courses(&self, limit: u32) -> Result<Vec<CourseCount>, StoreError> {
        // Reads the course index in course order; only the groups are sorted.
        let rows = sqlx::query(
            "SELECT course, COUNT(*) AS n FROM stuff
             WHERE course IS NOT NULL AND status != 'withdrawn'
             GROUP BY course ORDER BY n DESC, course LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CourseCount {
                    course: sqlx::Row::try_get(r, "course")?,
                    count: u64::try_from(sqlx::Row::try_get::<i64, _>(r, "n")?).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn edit(&self, e: &Edit<'_>) -> Result<StuffRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        // The compare-and-set: every condition is in the WHERE clause, so a stale or
        // refused edit changes nothing, whatever ran concurrently.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE stuff SET
                 title = COALESCE(?1, title),
                 price_cents = COALESCE(?2, price_cents),
                 description = COALESCE(?3, description),
                 secret_note = CASE WHEN ?8 THEN ?9 ELSE secret_note END,
                 status = CASE WHEN ?10 THEN 'withdrawn' ELSE status END,
                 course = CASE WHEN ?11 THEN ?12 ELSE course END,
                 cover = COALESCE(?13, cover),
                 version = version + 1,
                 updated_at = ?4
             WHERE id = ?5 AND seller_id = ?6 AND status = 'available'
               AND (?7 IS NULL OR version = ?7)
             RETURNING {COLUMNS}"
        )))
        .bind(e.patch.title.as_ref().map(|t| t.as_str().to_owned()))
        .bind(e.patch.price.map(|p| p.cents()))
        .bind(e.patch.description.as_ref().map(|d| d.as_str().to_owned()))
        .bind(to_db(&e.now))
        .bind(e.id)
        .bind(e.editor_id)
        .bind(e.expected_version.map(db_version))
        .bind(e.patch.secret_note.is_some())
        .bind(
            e.patch
                .secret_note
                .as_ref()
                .and_then(|n| n.as_ref().map(|n| n.as_str().to_owned())),
        )
        .bind(e.patch.withdraw)
        .bind(e.patch.course.is_some())
        .bind(
            e.patch
                .course
                .as_ref()
                .and_then(|c| c.as_ref().map(|c| c.as_str().to_owned())),
        )
        .bind(e.patch.cover.as_deref())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            let current = get_in(&mut tx, e.id).await?;
            return Err(edit_refusal(current.as_ref(), e));
        };
        let updated = StuffRecord::from_row(&row)?;
        sqlite::enqueue(&mut tx, &updated_event(&updated, e.correlation_id)).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        cid: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let held: Option<i64> =
            sqlx::query_scalar("SELECT version FROM order_versions WHERE order_id = ?")
                .bind(&order.id)
                .fetch_optional(&mut *tx)
                .await?;
        let held = held.map(|v| u64::try_from(v).unwrap_or(0));
        // Any newer version applies: the event is the whole order, so a lost one in
        // between heals instead of holding every later one back.
        if VersionCheck::of(held, order.version) != VersionCheck::Apply {
            return Ok(OrderOutcome::Stale);
        }
        let Some(stuff) = get_in(&mut tx, &order.stuff_id).await? else {
            return Ok(OrderOutcome::UnknownStuff);
        };
        let refusal = reservation_refusal(change, order, &stuff);
        // A refused order never holds the stuff: recorded as cancelled, it is not passed
        // the hold when another order lets go.
        let recorded = match refusal {
            Some(_) => OrderStatus::Cancelled,
            None => change.status(),
        };
        sqlx::query(
            "INSERT INTO order_versions (order_id, stuff_id, status, version, user_id)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(order_id) DO UPDATE SET status = excluded.status, version = excluded.version,
                                                 user_id = excluded.user_id",
        )
        .bind(&order.id)
        .bind(&order.stuff_id)
        .bind(recorded.as_str())
        .bind(db_version(order.version))
        .bind(&order.user_id)
        .execute(&mut *tx)
        .await?;
        if let Some(refusal) = refusal {
            sqlite::enqueue(&mut tx, &refused_event(&refusal, cid)).await?;
            tx.commit().await?;
            return Ok(OrderOutcome::Refused(refusal));
        }
        let next_active: Option<String> = sqlx::query_scalar(
            "SELECT order_id FROM order_versions
             WHERE stuff_id = ? AND status = 'created' AND order_id <> ?
             ORDER BY order_id LIMIT 1",
        )
        .bind(&order.stuff_id)
        .bind(&order.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(holding) = order_effect(change, &order.id, &stuff, next_active.as_deref()) else {
            tx.commit().await?;
            return Ok(OrderOutcome::Applied(None));
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE stuff SET status = ?, order_id = ?, version = version + 1, updated_at = ?
             WHERE id = ? AND version = ?
             RETURNING {COLUMNS}"
        )))
        .bind(holding.status.as_str())
        .bind(&holding.order_id)
        .bind(to_db(&now))
        .bind(&stuff.id)
        .bind(db_version(stuff.version))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("stuff {} changed inside a write transaction", stuff.id))?;
        let updated = StuffRecord::from_row(&row)?;
        sqlite::enqueue(&mut tx, &updated_event(&updated, cid)).await?;
        tx.commit().await?;
        Ok(OrderOutcome::Applied(Some(updated)))
    }

    async fn edit_files(&self, e: &FileEdit<'_>) -> Result<FileEdited, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let Some(stuff) = get_in(&mut tx, e.stuff_id).await? else {
            return Err(StoreError::NotFound);
        };
        let (files, unreferenced) = file_effect(&stuff, e.editor_id, e.op)?;
        // BEGIN IMMEDIATE holds the write lock since the read: the version still matches.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE stuff SET files = ?, version = version + 1, updated_at = ?
             WHERE id = ? AND version = ?
             RETURNING {COLUMNS}"
        )))
        .bind(files_json(&files)?)
        .bind(to_db(&e.now))
        .bind(&stuff.id)
        .bind(db_version(stuff.version))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| anyhow::anyhow!("stuff {} changed inside a write transaction", stuff.id))?;
        let updated = StuffRecord::from_row(&row)?;
        sqlite::enqueue(&mut tx, &updated_event(&updated, e.correlation_id)).await?;
        let buyer: Option<String> = match &updated.order_id {
            Some(order) => {
                sqlx::query_scalar("SELECT user_id FROM order_versions WHERE order_id = ?")
                    .bind(order)
                    .fetch_optional(&mut *tx)
                    .await?
                    .flatten()
            }
            None => None,
        };
        if let Some(ev) = delivery_event(&updated, e.op, buyer.as_deref(), e.correlation_id) {
            sqlite::enqueue(&mut tx, &ev).await?;
        }
        tx.commit().await?;
        Ok(FileEdited {
            stuff: updated,
            unreferenced,
        })
    }

    async fn get_with_note(
        &self,
        id: &str,
    ) -> Result<Option<(StuffRecord, Option<String>)>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, secret_note FROM stuff WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let note: Option<String> = sqlx::Row::try_get(&row, "secret_note")?;
        Ok(Some((StuffRecord::from_row(&row)?, note)))
    }

    async fn apply_review(&self, review: &ReviewRecord) -> Result<ReviewOutcome, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let recorded = sqlx::query(
            "INSERT INTO reviews_applied (review_id, stuff_id, rating) VALUES (?, ?, ?)
             ON CONFLICT(review_id) DO NOTHING",
        )
        .bind(&review.id)
        .bind(&review.stuff_id)
        .bind(review.rating)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if recorded == 0 {
            return Ok(ReviewOutcome::Duplicate);
        }
        let Some(stuff) = get_in(&mut tx, &review.stuff_id).await? else {
            // Dropping the transaction forgets the review id too.
            return Ok(ReviewOutcome::UnknownStuff);
        };
        let (count, sum, rank) = rated(&stuff, review.rating);
        // Not a change of the stuff: its version and `updatedAt` stay.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE stuff SET rating_count = ?, rating_sum = ?, rating_rank = ? WHERE id = ?
             RETURNING {COLUMNS}"
        )))
        .bind(count)
        .bind(sum)
        .bind(rank)
        .bind(&stuff.id)
        .fetch_one(&mut *tx)
        .await?;
        let updated = StuffRecord::from_row(&row)?;
        tx.commit().await?;
        Ok(ReviewOutcome::Applied(Box::new(updated)))
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.db.outbox()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ms_common::events::StuffStatus;
    use sqlx::Row;

    /// `EXPLAIN QUERY PLAN` of one page request, its lines joined.
    async fn plan(store: &SqliteStuffStore, q: &ListQuery, dense: bool) -> String {
        let rows = list_sql(q, "EXPLAIN QUERY PLAN ", dense)
            .build()
            .fetch_all(store.db.pool())
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join(" / ")
    }

    /// Every form of `stuff:list` reads an index in its order (no full scan, no sort of
    /// the whole table). The plans are in docs/benchmarks.md; run with `--nocapture` to
    /// print them.
    #[tokio::test]
    async fn every_list_form_reads_an_index_in_its_order() {
        let store = SqliteStuffStore::open(None).await.unwrap();
        let page = |f: fn(&mut ListQuery)| {
            let mut q = ListQuery {
                limit: 21,
                ..ListQuery::default()
            };
            f(&mut q);
            q
        };
        let words = || vec!["linear".to_owned(), "alg".to_owned()];
        let cases: Vec<(&str, ListQuery, &str)> = vec![
            ("newest", page(|_| {}), "stuff_newest"),
            (
                "status",
                page(|q| q.status = Some(StuffStatus::Available)),
                "stuff_status_newest",
            ),
            (
                "course",
                page(|q| q.course = Some("CS 101".into())),
                "stuff_course_newest",
            ),
            (
                "course, priceAsc",
                page(|q| {
                    q.course = Some("CS 101".into());
                    q.sort = StuffSort::PriceAsc;
                }),
                "stuff_course_price",
            ),
            (
                "seller",
                page(|q| q.seller_id = Some("u1".into())),
                "stuff_by_seller",
            ),
            (
                "priceDesc",
                page(|q| q.sort = StuffSort::PriceDesc),
                "stuff_price",
            ),
            (
                "rating",
                page(|q| q.sort = StuffSort::Rating),
                "stuff_rating",
            ),
            (
                "rating, next page",
                page(|q| {
                    q.sort = StuffSort::Rating;
                    q.after = Some(crate::domain::Cursor {
                        order: crate::domain::ListOrder::Sort(StuffSort::Rating),
                        phase: 0,
                        created_at: Utc::now(),
                        key: 500_000,
                        id: "s".into(),
                    });
                }),
                "stuff_rating",
            ),
            (
                "q",
                ListQuery {
                    search: Some(Search {
                        words: words(),
                        scope: crate::store::SearchScope::Anywhere,
                    }),
                    ..page(|_| {})
                },
                "VIRTUAL TABLE INDEX",
            ),
        ];
        for (name, q, index) in cases {
            let p = plan(&store, &q, false).await;
            println!("{name}: {p}");
            assert!(p.contains(index), "{name}: {p}");
            assert!(
                !p.contains("SCAN stuff\u{20}/") && !p.ends_with("SCAN stuff"),
                "{name}: {p}"
            );
            if name != "q" {
                assert!(!p.contains("TEMP B-TREE"), "{name} sorts: {p}");
            }
        }
        // A search with many matches walks the list's own index in its order instead.
        let search = |sort, course: Option<&str>| ListQuery {
            search: Some(Search {
                words: words(),
                scope: crate::store::SearchScope::Title,
            }),
            sort,
            course: course.map(Into::into),
            ..page(|_| {})
        };
        for (name, q, index) in [
            ("q dense", search(StuffSort::Newest, None), "stuff_newest"),
            (
                "q dense, course, priceAsc",
                search(StuffSort::PriceAsc, Some("CS 101")),
                "stuff_course_price",
            ),
            (
                "q dense, rating",
                search(StuffSort::Rating, None),
                "stuff_rating",
            ),
        ] {
            let p = plan(&store, &q, true).await;
            println!("{name}: {p}");
            assert!(p.contains(&format!("USING INDEX {index}")), "{name}: {p}");
            assert!(!p.contains("TEMP B-TREE"), "{name} sorts: {p}");
        }
    }

    #[tokio::test]
    async fn a_search_reads_the_same_page_whichever_plan_it_takes() {
        let store = SqliteStuffStore::open(None).await.unwrap();
        // 1,500 notes (every third on linear algebra), each a second newer than the last.
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
             INSERT INTO stuff (id, title, description, price_cents, seller_id, status, version,
                                created_at, updated_at)
             SELECT printf('s%04d', i),
                    CASE WHEN i % 3 = 0 THEN 'Linear algebra notes' ELSE 'Calculus notes' END,
                    'week ' || i, 100 + (i * 37) % 900, 'u' || (i % 4), 'available', 1,
                    printf('2026-12-01T00:%02d:%02d.000000Z', i / 60, i % 60),
                    printf('2026-12-01T00:%02d:%02d.000000Z', i / 60, i % 60)
             FROM n",
        )
        .execute(store.db.pool())
        .await
        .unwrap();
        let ids = |q: &ListQuery, dense: bool| {
            let sql = list_sql(q, "", dense);
            let pool = store.db.pool().clone();
            async move {
                let mut sql = sql;
                sql.build()
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>("id"))
                    .collect::<Vec<_>>()
            }
        };
        for (word, sort) in [
            ("notes", StuffSort::Newest),
            ("notes", StuffSort::PriceAsc),
            ("notes", StuffSort::Rating),
            ("linear", StuffSort::PriceDesc),
            ("linear", StuffSort::Newest),
        ] {
            let q = ListQuery {
                search: Some(Search {
                    words: vec![word.to_owned()],
                    scope: crate::store::SearchScope::Anywhere,
                }),
                sort,
                limit: 21,
                ..ListQuery::default()
            };
            let sorted = ids(&q, false).await;
            assert_eq!(sorted.len(), 21, "{word} {sort:?}");
            assert_eq!(sorted, ids(&q, true).await, "{word} {sort:?}");
            // And the store takes the plan its count of matches calls for, same page.
            let listed: Vec<String> = store
                .list(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            assert_eq!(listed, sorted, "{word} {sort:?}");
        }
    }
}
