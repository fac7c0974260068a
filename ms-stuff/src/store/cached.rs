//! A read cache in front of the SQLite store, for `stuff:get` (the most frequent request).
//!
//! With SQLite, this process is the catalogue's only writer (the file is its own), so a
//! stuff read once can be served from memory until this process changes it. That saves
//! the two thread hand-offs of a sqlx SQLite query (to its worker thread and back), which
//! were most of ms-stuff's CPU per `stuff:get` (docs/benchmarks.md). MongoDB may be shared
//! by several replicas, so its store is never wrapped.
//!
//! Coherence: every write goes through this wrapper, which forgets what it changes after
//! the write returned (committed) and moves the epoch on. A read that raced with a write
//! may have read the old row; it stores what it read only if no write finished since it
//! started (same epoch), so an old row never outlives the write that replaced it.

use super::{
    Edit, FileEdit, FileEdited, ListQuery, OrderChange, OrderOutcome, ReviewOutcome, StoreError,
    StuffStore,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::contract::CourseCount;
use ms_common::events::{OrderRecord, ReviewRecord, StuffRecord, UserRecord};
use ms_common::storage::OutboxStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// How many stuff are kept; past it the cache starts over (memory stays bounded whatever
/// is asked for).
const CAPACITY: usize = 4096;

/// The cached stuff and the count of writes finished so far.
#[derive(Default)]
struct Cache {
    epoch: u64,
    entries: HashMap<String, StuffRecord>,
}

/// [`StuffStore`] with `get` served from memory for stuff this process has not changed
/// since it last read them.
pub struct CachedStore {
    inner: Arc<dyn StuffStore>,
    cache: Mutex<Cache>,
}

impl CachedStore {
    /// Wraps the only writer's store (SQLite).
    pub fn new(inner: Arc<dyn StuffStore>) -> Self {
        Self {
            inner,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic while holding the lock cannot leave the map half-changed in a way that
        // matters: entries are whole records, and forgetting still works.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a write: forgets `id` (every stuff when `None`) and moves the epoch on.
    fn forget(&self, id: Option<&str>) {
        let mut c = self.cache();
        match id {
            Some(id) => {
                c.entries.remove(id);
            }
            None => c.entries.clear(),
        }
        c.epoch += 1;
    }
}

#[async_trait]
impl StuffStore for CachedStore {
    async fn create(
        &self,
        stuff: &StuffRecord,
        secret_note: Option<&str>,
        correlation_id: Option<&str>,
    ) -> Result<StuffRecord, StoreError> {
        // A new id: nothing cached can describe it (misses are not cached).
        self.inner.create(stuff, secret_note, correlation_id).await
    }

    async fn apply_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let result = self.inner.apply_user(user).await;
        // A new seller name may be on any number of stuff.
        self.forget(None);
        result
    }

    async fn get(&self, id: &str) -> Result<Option<StuffRecord>, StoreError> {
        let epoch = {
            let c = self.cache();
            if let Some(rec) = c.entries.get(id) {
                return Ok(Some(rec.clone()));
            }
            c.epoch
        };
        let found = self.inner.get(id).await?;
        if let Some(rec) = &found {
            let mut c = self.cache();
            if c.epoch == epoch {
                if c.entries.len() >= CAPACITY {
                    c.entries.clear();
                }
                c.entries.insert(id.to_owned(), rec.clone());
            }
        }
        Ok(found)
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<StuffRecord>, StoreError> {
        self.inner.list(q).await
    }

    async fn by_seller(&self, seller_id: &str, limit: u32) -> Result<Vec<StuffRecord>, StoreError> {
        self.inner.by_seller(seller_id, limit).await
    }

    async fn courses(&self, limit: u32) -> Result<Vec<CourseCount>, StoreError> {
        self.inner.courses(limit).await
    }

    async fn edit(&self, edit: &Edit<'_>) -> Result<StuffRecord, StoreError> {
        let result = self.inner.edit(edit).await;
        self.forget(Some(edit.id));
        result
    }

    async fn edit_files(&self, edit: &FileEdit<'_>) -> Result<FileEdited, StoreError> {
        let result = self.inner.edit_files(edit).await;
        self.forget(Some(edit.stuff_id));
        result
    }

    async fn get_with_note(
        &self,
        id: &str,
    ) -> Result<Option<(StuffRecord, Option<String>)>, StoreError> {
        self.inner.get_with_note(id).await
    }

    async fn apply_order(
        &self,
        change: OrderChange,
        order: &OrderRecord,
        now: DateTime<Utc>,
        correlation_id: Option<&str>,
    ) -> Result<OrderOutcome, StoreError> {
        let result = self
            .inner
            .apply_order(change, order, now, correlation_id)
            .await;
        self.forget(Some(&order.stuff_id));
        result
    }

    async fn apply_review(&self, review: &ReviewRecord) -> Result<ReviewOutcome, StoreError> {
        let result = self.inner.apply_review(review).await;
        self.forget(Some(&review.stuff_id));
        result
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        self.inner.outbox()
    }
}
