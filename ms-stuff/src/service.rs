//! ms-stuff's RPC actions (`stuff:list`, `stuff:get`, `stuff:create`, `stuff:update`);
//! order events are applied by [`crate::events`].
//!
//! Each action: payload → domain input ([`crate::domain`]) → store → the contract's
//! `Stuff` shape. Store refusals become the contract's messages in one place,
//! [`api_error`].

use crate::domain::{Cursor, GetStuff, ListStuff, NewStuff, UpdateStuff};
use crate::store::{Edit, ListQuery, StoreError, StuffStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::ApiError;
use ms_common::contract::{self, StuffAction};
use ms_common::events::{StuffRecord, StuffStatus};
use ms_common::messaging::{RpcContext, RpcHandler};
use ms_common::storage::ReplyLog;
use serde_json::{Value, json};
use std::sync::Arc;

/// 404 for an unknown stuff id.
pub const NOT_FOUND: &str = "Stuff not found";
/// 403 for an edit by someone other than the seller.
pub const NOT_OWNER: &str = "You do not own this stuff";
/// 409 for an edit while an order holds the stuff (CONTRACT.md).
pub const RESERVED: &str = "Cannot edit a stuff while it is being checked out";
/// 409 for an edit of a sold stuff (same words as `order:create` on sold stuff).
pub const SOLD: &str = "This stuff has already been sold";
/// 409 for an edit based on a stale `version` (CONTRACT.md).
pub const STALE_VERSION: &str = "This stuff was changed by someone else";

/// Maps a store failure to what the client sees; unexpected ones are logged as 500s.
pub fn api_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(NOT_FOUND),
        StoreError::NotOwner => ApiError::forbidden(NOT_OWNER),
        StoreError::Reserved => ApiError::conflict(RESERVED),
        StoreError::Sold => ApiError::conflict(SOLD),
        StoreError::VersionConflict => ApiError::conflict(STALE_VERSION),
        StoreError::Other(e) => ApiError::internal_from(format!("{e:#}")),
    }
}

/// The current time at the precision the stores keep, so a reply and a later read agree.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// A record in the contract's `Stuff` shape (no holding order).
fn stuff_json(rec: &StuffRecord) -> Result<Value, ApiError> {
    serde_json::to_value(contract::Stuff::from(rec.clone())).map_err(ApiError::internal_from)
}

/// The catalogue's state and RPC actions.
pub struct StuffService {
    store: Arc<dyn StuffStore>,
}

impl StuffService {
    /// The service over a store (whose commits wake the outbox relay).
    pub fn new(store: Arc<dyn StuffStore>) -> Self {
        Self { store }
    }

    /// `stuff:list`: one page, newest first, with the cursor of the next page or `null`.
    #[tracing::instrument(skip_all)]
    async fn list(&self, payload: &Value) -> Result<Value, ApiError> {
        let input = ListStuff::parse(payload)?;
        let limit = input.limit.get();
        // One extra row tells whether another page follows.
        let mut items = self
            .store
            .list(&ListQuery {
                status: input.status,
                after: input.cursor,
                limit: limit + 1,
            })
            .await
            .map_err(api_error)?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|s| {
                Cursor {
                    created_at: s.created_at,
                    id: s.id.clone(),
                }
                .encode()
            })
        } else {
            None
        };
        let items = items
            .iter()
            .map(stuff_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"items": items, "nextCursor": next_cursor}))
    }

    /// `stuff:get`.
    #[tracing::instrument(skip_all)]
    async fn get(&self, payload: &Value) -> Result<Value, ApiError> {
        let input = GetStuff::parse(payload)?;
        let rec = self
            .store
            .get(input.id.as_str())
            .await
            .map_err(api_error)?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        stuff_json(&rec)
    }

    /// `stuff:create`: signed-in callers list a stuff as its seller.
    #[tracing::instrument(skip_all)]
    async fn create(&self, ctx: &RpcContext, payload: &Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = NewStuff::parse(payload)?;
        let now = now();
        let rec = StuffRecord {
            id: uuid::Uuid::now_v7().to_string(),
            title: input.title.as_str().to_owned(),
            description: input.description.as_str().to_owned(),
            price_cents: input.price.cents(),
            seller_id: caller.id.clone(),
            status: StuffStatus::Available,
            order_id: None,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store
            .create(&rec, ctx.correlation_id.as_deref())
            .await
            .map_err(api_error)?;
        tracing::info!(stuff_id = %rec.id, seller_id = %rec.seller_id, "stuff created");
        stuff_json(&rec)
    }

    /// `stuff:update`: the seller edits an available stuff, optionally at a known version.
    #[tracing::instrument(skip_all)]
    async fn update(&self, ctx: &RpcContext, payload: &Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = UpdateStuff::parse(payload)?;
        let rec = self
            .store
            .edit(&Edit {
                id: input.id.as_str(),
                editor_id: &caller.id,
                expected_version: input.version.map(|v| v.get()),
                patch: &input.patch,
                now: now(),
                correlation_id: ctx.correlation_id.as_deref(),
            })
            .await
            .map_err(api_error)?;
        tracing::info!(stuff_id = %rec.id, version = rec.version, "stuff updated");
        stuff_json(&rec)
    }
}

#[async_trait]
impl RpcHandler for StuffService {
    type Action = StuffAction;

    async fn handle(
        &self,
        ctx: RpcContext,
        action: StuffAction,
        payload: Value,
    ) -> Result<Value, ApiError> {
        match action {
            StuffAction::List => self.list(&payload).await,
            StuffAction::Get => self.get(&payload).await,
            StuffAction::Create => self.create(&ctx, &payload).await,
            StuffAction::Update => self.update(&ctx, &payload).await,
        }
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}
