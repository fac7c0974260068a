//! ms-stuff's RPC actions: the catalogue (`stuff:list`, `stuff:get`, `stuff:create`,
//! `stuff:update`), the files the router uploads and sweeps (`stuff:file-*`) and what a
//! buyer gets (`delivery:get`); order events are applied by [`crate::events`].
//!
//! Each action: payload → domain input ([`crate::domain`]) → store → the contract's
//! `Stuff` shape. Store refusals become the contract's messages in one place,
//! [`api_error`].

use crate::domain::{
    Cursor, DeliveryFor, FileAttach, FileCheck, FileOrphans, FileRemove, GetStuff, ListOrder,
    ListStuff, NewStuff, StuffPatch, UpdateStuff,
};
use crate::store::{
    Edit, FileEdit, FileOp, ListQuery, Search, SearchScope, StoreError, StuffStore, file_refusal,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ms_common::ApiError;
use ms_common::contract::{
    self, Delivery, DeliveryFile, FileChanged, IdRequest, OrderAction, StuffAction, StuffSort,
    default_display_name,
};
use ms_common::events::{OrderRecord, OrderStatus, StoredFile, StuffRecord, StuffStatus};
use ms_common::files::{LinkClaims, LinkKey, object_stuff};
use ms_common::messaging::{RpcClient, RpcContext, RpcHandler};
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
/// 409 for an 11th file (CONTRACT.md).
pub const TOO_MANY_FILES: &str = "A stuff can have at most 10 files";
/// 404 for a file id the stuff does not have.
pub const FILE_NOT_FOUND: &str = "File not found";
/// How many listings `stuff:mine` answers with (like `order:list`, one bounded reply).
const MINE_MAX: u32 = 500;
/// 403 for `delivery:get` on an order that is not the caller's complete order (CONTRACT.md).
pub const PAY_FIRST: &str = "Pay for this order to get the stuff";

/// Maps a store failure to what the client sees; unexpected ones are logged as 500s.
pub fn api_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(NOT_FOUND),
        StoreError::NotOwner => ApiError::forbidden(NOT_OWNER),
        StoreError::Reserved => ApiError::conflict(RESERVED),
        StoreError::Sold => ApiError::conflict(SOLD),
        StoreError::Withdrawn => ApiError::conflict(contract::NOT_FOR_SALE),
        StoreError::VersionConflict => ApiError::conflict(STALE_VERSION),
        StoreError::TooManyFiles => ApiError::conflict(TOO_MANY_FILES),
        StoreError::FileNotFound => ApiError::not_found(FILE_NOT_FOUND),
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

/// How ms-stuff hands out download links.
#[derive(Clone)]
pub struct Links {
    /// Signs them (ms-router checks them with the same key).
    pub key: LinkKey,
    /// How long one works.
    pub ttl: std::time::Duration,
    /// Asks ms-order whether the caller's order is complete (ms-order owns that fact).
    pub orders: RpcClient,
}

/// The catalogue's state and RPC actions.
pub struct StuffService {
    store: Arc<dyn StuffStore>,
    links: Links,
}

impl StuffService {
    /// The service over a store (whose commits wake the outbox relay).
    pub fn new(store: Arc<dyn StuffStore>, links: Links) -> Self {
        Self { store, links }
    }

    async fn existing(&self, id: &str) -> Result<StuffRecord, ApiError> {
        self.store
            .get(id)
            .await
            .map_err(api_error)?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))
    }

    /// `stuff:list`: one page in the asked order and filters, with the cursor of the next
    /// page or `null`. Best matches first is two keyset-paged lists, one after the other:
    /// the stuff with every word in its title, then the other matches.
    #[tracing::instrument(skip_all)]
    async fn list(&self, payload: &Value) -> Result<Value, ApiError> {
        let input = ListStuff::parse(payload)?;
        let limit = input.limit.get() as usize;
        let base = ListQuery {
            status: input.status,
            course: input.course.map(|c| c.as_str().to_owned()),
            seller_id: input.seller_id,
            ..ListQuery::default()
        };
        let words = input.search.map(|s| s.words().to_vec());
        // Each row with its phase (see `ListOrder::Relevance`); one extra row tells
        // whether another page follows.
        let mut rows: Vec<(u8, StuffRecord)> = Vec::new();
        match (input.order, words) {
            (ListOrder::Relevance, Some(words)) => {
                let from = input.cursor.as_ref().map_or(0, |c| c.phase);
                for (phase, scope) in [(0, SearchScope::Title), (1, SearchScope::NotTitle)] {
                    if phase < from || rows.len() > limit {
                        continue;
                    }
                    let wanted =
                        u32::try_from(limit + 1 - rows.len()).map_err(ApiError::internal_from)?;
                    let found = self
                        .store
                        .list(&ListQuery {
                            search: Some(Search {
                                words: words.clone(),
                                scope,
                            }),
                            after: input.cursor.clone().filter(|c| c.phase == phase),
                            limit: wanted,
                            ..base.clone()
                        })
                        .await
                        .map_err(api_error)?;
                    rows.extend(found.into_iter().map(|s| (phase, s)));
                }
            }
            (order, words) => {
                let sort = match order {
                    ListOrder::Sort(sort) => sort,
                    ListOrder::Relevance => StuffSort::Newest,
                };
                let found = self
                    .store
                    .list(&ListQuery {
                        search: words.map(|words| Search {
                            words,
                            scope: SearchScope::Anywhere,
                        }),
                        sort,
                        after: input.cursor,
                        limit: u32::try_from(limit + 1).map_err(ApiError::internal_from)?,
                        ..base
                    })
                    .await
                    .map_err(api_error)?;
                rows.extend(found.into_iter().map(|s| (0, s)));
            }
        }
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|(phase, s)| Cursor::after(input.order, *phase, s).encode())
        } else {
            None
        };
        let items = rows
            .iter()
            .map(|(_, s)| stuff_json(s))
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
            files: Vec::new(),
            has_secret_note: input.secret_note.is_some(),
            course: input.course.as_ref().map(|c| c.as_str().to_owned()),
            // The name to show if no account event told ms-stuff of this seller yet.
            seller_name: Some(default_display_name(&caller.email)),
            cover: None,
            rating_count: 0,
            rating_sum: 0,
            rating_rank: 0,
        };
        let note = input.secret_note.as_ref().map(|n| n.as_str());
        let rec = self
            .store
            .create(&rec, note, ctx.correlation_id.as_deref())
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

    /// `stuff:withdraw`: the seller takes an available stuff out of the catalogue; one
    /// already withdrawn is answered as it is.
    #[tracing::instrument(skip_all)]
    async fn withdraw(&self, ctx: &RpcContext, payload: &Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = GetStuff::parse(payload)?;
        let patch = StuffPatch::withdrawal();
        let edited = self
            .store
            .edit(&Edit {
                id: input.id.as_str(),
                editor_id: &caller.id,
                expected_version: None,
                patch: &patch,
                now: now(),
                correlation_id: ctx.correlation_id.as_deref(),
            })
            .await;
        let rec = match edited {
            Ok(rec) => {
                tracing::info!(stuff_id = %rec.id, version = rec.version, "stuff withdrawn");
                rec
            }
            Err(StoreError::Withdrawn) => self.existing(input.id.as_str()).await?,
            Err(e) => return Err(api_error(e)),
        };
        stuff_json(&rec)
    }

    /// `stuff:cover` (router, after the thumbnail is stored): the seller makes it the
    /// cover. An edit like `stuff:update` (same refusals), a compare-and-set on the version
    /// read so the reply names exactly the cover it replaced (for the router to delete).
    #[tracing::instrument(skip_all)]
    async fn cover(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input: contract::CoverSetRequest = ms_common::messaging::parse_payload(payload)?;
        if ms_common::files::cover_stuff(&input.object) != Some(input.stuff_id.as_str()) {
            return Err(ApiError::field("object", "Not a cover of this stuff"));
        }
        let patch = StuffPatch {
            cover: Some(input.object.clone()),
            ..StuffPatch::default()
        };
        for _ in 0..3 {
            let before = self.existing(&input.stuff_id).await?;
            let edited = self
                .store
                .edit(&Edit {
                    id: &input.stuff_id,
                    editor_id: &caller.id,
                    expected_version: Some(before.version),
                    patch: &patch,
                    now: now(),
                    correlation_id: ctx.correlation_id.as_deref(),
                })
                .await;
            match edited {
                Ok(rec) => {
                    tracing::info!(stuff_id = %rec.id, version = rec.version, "cover set");
                    let replaced = before.cover.filter(|old| *old != input.object);
                    return serde_json::to_value(contract::CoverSet {
                        stuff: contract::Stuff::from(rec),
                        replaced,
                    })
                    .map_err(ApiError::internal_from);
                }
                Err(StoreError::VersionConflict) => continue,
                Err(e) => return Err(api_error(e)),
            }
        }
        Err(api_error(StoreError::VersionConflict))
    }

    /// `stuff:mine`: the caller's listings in every status, newest first.
    #[tracing::instrument(skip_all)]
    async fn mine(&self, ctx: &RpcContext) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let items = self
            .store
            .by_seller(&caller.id, MINE_MAX)
            .await
            .map_err(api_error)?;
        let items = items
            .iter()
            .map(stuff_json)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Array(items))
    }

    /// `stuff:courses`: the courses in use, for the catalogue's chips and suggestions.
    #[tracing::instrument(skip_all)]
    async fn courses(&self) -> Result<Value, ApiError> {
        let courses = self
            .store
            .courses(contract::limits::COURSES_MAX)
            .await
            .map_err(api_error)?;
        serde_json::to_value(courses).map_err(ApiError::internal_from)
    }

    /// `stuff:file-check` (router, before an upload): the same refusals the attach would
    /// give, so no byte is stored for an upload that cannot be recorded.
    #[tracing::instrument(skip_all)]
    async fn file_check(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = FileCheck::parse(payload)?;
        let stuff = self.existing(&input.stuff_id).await?;
        match file_refusal(&stuff, &caller.id, input.replaces.as_deref(), false) {
            Some(refused) => Err(api_error(refused)),
            None => Ok(json!({})),
        }
    }

    /// `stuff:file-attach` (router, after the bytes are stored): records the file.
    #[tracing::instrument(skip_all)]
    async fn file_attach(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = FileAttach::parse(payload)?;
        let op = if input.replace {
            FileOp::Replace(&input.file)
        } else {
            FileOp::Add(&input.file)
        };
        self.edit_files(ctx, &caller.id, &input.stuff_id, op, Some(&input.file))
            .await
    }

    /// `stuff:file-remove` (router's `DELETE`).
    #[tracing::instrument(skip_all)]
    async fn file_remove(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let input = FileRemove::parse(payload)?;
        let op = FileOp::Remove(&input.file_id);
        self.edit_files(ctx, &caller.id, &input.stuff_id, op, None)
            .await
    }

    /// `stuff:file-orphans` (the router's sweeper): which of the listed objects no file
    /// of their stuff points at. Keys are grouped by the stuff they name, so each stuff
    /// is read once; a key of no stuff's shape is never called an orphan.
    #[tracing::instrument(skip_all)]
    async fn file_orphans(&self, payload: Value) -> Result<Value, ApiError> {
        let input = FileOrphans::parse(payload)?;
        let mut by_stuff: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
        for key in &input.objects {
            if let Some(stuff) = object_stuff(key) {
                by_stuff.entry(stuff).or_default().push(key);
            }
        }
        let mut orphans = Vec::new();
        for (stuff_id, keys) in by_stuff {
            let stuff = self.store.get(stuff_id).await.map_err(api_error)?;
            let files = stuff.map(|s| s.files).unwrap_or_default();
            orphans.extend(
                keys.into_iter()
                    .filter(|k| !files.iter().any(|f| &f.object == *k))
                    .cloned(),
            );
        }
        serde_json::to_value(contract::FileOrphans { orphans }).map_err(ApiError::internal_from)
    }

    async fn edit_files(
        &self,
        ctx: &RpcContext,
        editor: &str,
        stuff_id: &str,
        op: FileOp<'_>,
        file: Option<&StoredFile>,
    ) -> Result<Value, ApiError> {
        let edited = self
            .store
            .edit_files(&FileEdit {
                stuff_id,
                editor_id: editor,
                op,
                now: now(),
                correlation_id: ctx.correlation_id.as_deref(),
            })
            .await
            .map_err(api_error)?;
        tracing::info!(
            stuff_id,
            version = edited.stuff.version,
            ?op,
            "files changed"
        );
        let reply = FileChanged {
            file: file.map(|f| f.meta.clone()),
            unreferenced: edited.unreferenced,
        };
        serde_json::to_value(reply).map_err(ApiError::internal_from)
    }

    /// `delivery:get`: the note and a signed link per file, for the buyer of a complete
    /// order (ms-order says so, on the caller's own token) or for the seller.
    #[tracing::instrument(skip_all)]
    async fn delivery(&self, ctx: &RpcContext, payload: Value) -> Result<Value, ApiError> {
        let caller = ctx.require_user()?;
        let (stuff_id, order_id) = match DeliveryFor::parse(payload)? {
            DeliveryFor::Stuff(id) => (id, None),
            DeliveryFor::Order(id) => {
                let order = self.complete_order(ctx, &id).await?;
                (order.stuff_id, Some(order.id))
            }
        };
        let (stuff, note) = self
            .store
            .get_with_note(&stuff_id)
            .await
            .map_err(api_error)?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        if order_id.is_none() && stuff.seller_id != caller.id {
            return Err(ApiError::forbidden(NOT_OWNER));
        }
        let expires = Utc::now()
            + chrono::Duration::from_std(self.links.ttl).map_err(ApiError::internal_from)?;
        let files = stuff
            .files
            .into_iter()
            .map(|f| {
                let url = self.links.key.sign(&LinkClaims {
                    file_id: f.meta.id.clone(),
                    object: f.object,
                    name: f.meta.name.clone(),
                    content_type: f.meta.content_type.clone(),
                    sha256: f.meta.sha256.clone(),
                    size_bytes: f.meta.size_bytes,
                    order_id: order_id.clone(),
                    user_id: caller.id.clone(),
                    expires: expires.timestamp(),
                });
                DeliveryFile {
                    meta: f.meta,
                    url,
                    expires_at: expires,
                }
            })
            .collect();
        let delivery = Delivery {
            secret_note: note,
            files,
        };
        serde_json::to_value(delivery).map_err(ApiError::internal_from)
    }

    /// The caller's order `id` if ms-order says it is complete; else the contract's 403.
    async fn complete_order(&self, ctx: &RpcContext, id: &str) -> Result<OrderRecord, ApiError> {
        let reply = self
            .links
            .orders
            .request(
                OrderAction::Get,
                ctx.token.clone(),
                json!(IdRequest { id: id.to_owned() }),
                ctx.correlation_id.as_deref().unwrap_or("-"),
            )
            .await;
        let order: OrderRecord = match reply {
            Ok(v) => serde_json::from_value(v).map_err(ApiError::internal_from)?,
            // Someone else's or no such order: the same answer as an unpaid one.
            Err(e) if e.status == 404 || e.status == 403 => {
                return Err(ApiError::forbidden(PAY_FIRST));
            }
            // ms-order names its field `id`; the caller sent `orderId`.
            Err(mut e) if e.status == 400 => {
                for d in &mut e.errors {
                    d.field = Some("orderId".to_owned());
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let caller = ctx.require_user()?;
        if order.status != OrderStatus::Complete || order.user_id != caller.id {
            return Err(ApiError::forbidden(PAY_FIRST));
        }
        Ok(order)
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
            StuffAction::Withdraw => self.withdraw(&ctx, &payload).await,
            StuffAction::Mine => self.mine(&ctx).await,
            StuffAction::Courses => self.courses().await,
            StuffAction::FileCheck => self.file_check(&ctx, payload).await,
            StuffAction::FileAttach => self.file_attach(&ctx, payload).await,
            StuffAction::FileRemove => self.file_remove(&ctx, payload).await,
            StuffAction::Cover => self.cover(&ctx, payload).await,
            StuffAction::FileOrphans => self.file_orphans(payload).await,
            StuffAction::Delivery => self.delivery(&ctx, payload).await,
        }
    }

    fn replies(&self) -> Option<Arc<dyn ReplyLog>> {
        Some(self.store.outbox())
    }
}
