//! The client contract (CONTRACT.md) as Rust types, and the JSON Schemas made from them.
//!
//! Every Socket.IO request payload and ack `data` that is not already a record of
//! [`crate::events`] is a type here, with the contract's limits as schema keywords. The
//! services still parse their input field by field (so every bad field is reported at
//! once); these types describe the wire, they are not the parsers.
//!
//! [`schemas`] turns them, the event catalogue and the error envelope into one JSON Schema
//! (draft-07, the base of AsyncAPI's schema format) per name. The files under
//! `docs/schemas/<Name>.json` are exactly [`schema_files`]'s output;
//! `ms-common/tests/schemas.rs` fails when they drift and rewrites them with
//! `UPDATE_SCHEMAS=1`. `docs/asyncapi.yaml` references them.
//!
//! Inputs are described with the deserialize contract (what a service accepts: optional
//! fields may be missing or `null`), outputs with the serialize contract (what is sent:
//! every field is present, `null` where the shape says so).

mod action;
pub mod limits;
mod service;
pub mod subscriptions;

pub use service::Service;

pub use action::{
    Action, ActionInfo, GATEWAY_REPLY_WAIT, OrderAction, PaymentAction, ServiceAction, StuffAction,
    UserAction, catalogue_file as action_catalogue_file,
};

use crate::error::{ApiError, ErrorDetail};
pub use crate::events::FileMeta;
use crate::events::{
    EventEnvelope, OrderRecord, PaymentFailure, PaymentRecord, ReviewRecord, Role, StuffRecord,
    StuffStatus, UserRecord,
};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use schemars::generate::{Contract, SchemaSettings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Every status a failure may carry (HTTP status or `status` of an ack).
pub const STATUS_CODES: [u16; 9] = [400, 401, 402, 403, 404, 409, 429, 500, 503];

/// 409 for buying (ms-order) or editing (ms-stuff) a stuff its seller withdrew.
pub const NOT_FOR_SALE: &str = "This stuff is no longer for sale";

/// The message of the 400 on field `email` for anything that is not an acceptable address.
pub const INVALID_EMAIL: &str = "Email must be valid";

/// An e-mail as every service compares it: trimmed and lowercased; `None` when it is longer
/// than [`limits::EMAIL_MAX`] bytes. Lowercasing never lowers the number of characters, so
/// anything over `EMAIL_MAX` characters is refused before it is copied.
pub fn normalize_email(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    if trimmed.chars().nth(limits::EMAIL_MAX).is_some() {
        return None;
    }
    let email = trimmed.to_lowercase();
    (email.len() <= limits::EMAIL_MAX).then_some(email)
}

/// The message of the 400 on field `displayName`.
pub const INVALID_DISPLAY_NAME: &str = "Display name must be 2 to 40 characters";

/// What a stuff shows as its seller's name while ms-stuff has not heard of the account
/// (a listing made before names existed, until its seller's next change or rename).
pub const UNKNOWN_SELLER_NAME: &str = "Seller";

/// What a sale or review shows as the buyer's name while ms-order has not heard of the
/// account (a buyer from before names existed, until their next rename).
pub const UNKNOWN_BUYER_NAME: &str = "A buyer";

/// The name of an account whose owner never chose one: the e-mail's local part, at most
/// [`limits::DISPLAY_NAME_MAX`] characters (never the domain: it often names the school
/// or employer).
pub fn default_display_name(email: &str) -> String {
    let local = email.split('@').next().unwrap_or_default();
    local.chars().take(limits::DISPLAY_NAME_MAX).collect()
}

/// A name a user chose to be shown as: trimmed, runs of spaces made one, 2–40 characters,
/// no control or text-direction characters (they could disguise a name in a listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses user input; the error names the `displayName` field.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::field("displayName", INVALID_DISPLAY_NAME);
        // Longer input is refused before it is copied.
        if raw.chars().nth(4 * limits::DISPLAY_NAME_MAX).is_some() {
            return Err(invalid());
        }
        let hidden = |c: char| {
            c.is_control()
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        };
        if raw.chars().any(hidden) {
            return Err(invalid());
        }
        let name = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = name.chars().count();
        if !(limits::DISPLAY_NAME_MIN..=limits::DISPLAY_NAME_MAX).contains(&n) {
            return Err(invalid());
        }
        Ok(Self(name))
    }
    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `PATCH /api/users/me` body (ms-user's `user:update` payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserRequest {
    /// The new name, 2–40 characters after trimming.
    #[schemars(length(min = limits::DISPLAY_NAME_MIN, max = limits::DISPLAY_NAME_MAX))]
    pub display_name: String,
}

/// Who sells a stuff, as buyers see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Seller {
    /// The seller's user id (as `sellerId`).
    pub id: String,
    /// Their display name (renames show within seconds).
    pub display_name: String,
}

/// How buyers rated a stuff, as a listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StuffRating {
    /// The mean rating rounded to one decimal (1.0–5.0); 0 without reviews.
    #[schemars(range(min = 0, max = limits::RATING_MAX))]
    pub average: f64,
    /// How many reviews.
    #[schemars(range(min = 0))]
    pub count: i64,
}

impl StuffRating {
    /// The rating of `count` reviews whose ratings sum to `sum`.
    pub fn of(count: i64, sum: i64) -> Self {
        if count <= 0 {
            return Self {
                average: 0.0,
                count: 0,
            };
        }
        #[allow(clippy::cast_precision_loss)]
        let mean = sum as f64 / count as f64;
        Self {
            average: (mean * 10.0).round() / 10.0,
            count,
        }
    }
}

/// The contract's `Stuff` shape: a [`StuffRecord`] without the internal `orderId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stuff {
    /// Opaque id.
    pub id: String,
    /// Title, trimmed, 1–120 characters.
    #[schemars(length(min = 1, max = limits::TITLE_MAX))]
    pub title: String,
    /// Free text, at most 2000 characters (may be empty).
    #[schemars(length(max = limits::DESCRIPTION_MAX))]
    pub description: String,
    /// Price in cents, 1–100000000.
    #[schemars(range(min = limits::PRICE_MIN, max = limits::PRICE_MAX))]
    pub price_cents: i64,
    /// The seller's user id.
    pub seller_id: String,
    /// The seller, with the name they go by.
    pub seller: Seller,
    /// `available`, `reserved` (being checked out) or `sold`.
    pub status: StuffStatus,
    /// Record version: 1 at creation, +1 on every change (edit, reserve, release, sale).
    #[schemars(range(min = 1))]
    pub version: u64,
    /// Creation time (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339, UTC).
    pub updated_at: DateTime<Utc>,
    /// What a buyer gets: the files (never their bytes or a link).
    #[schemars(length(max = limits::FILES_MAX))]
    pub files: Vec<FileMeta>,
    /// True when the seller left a private note for buyers.
    pub has_secret_note: bool,
    /// The course it is for, upper-case (`CS 101`); `null` when none was named.
    #[schemars(length(min = limits::COURSE_MIN, max = limits::COURSE_MAX))]
    pub course: Option<String>,
    /// The URL of its cover thumbnail (JPEG, at most 480 px a side; cached for good), or
    /// `null`.
    pub cover_url: Option<String>,
    /// What its buyers' reviews say.
    pub rating: StuffRating,
}

impl From<StuffRecord> for Stuff {
    fn from(s: StuffRecord) -> Self {
        Self {
            id: s.id,
            title: s.title,
            description: s.description,
            price_cents: s.price_cents,
            seller: Seller {
                id: s.seller_id.clone(),
                display_name: s
                    .seller_name
                    .unwrap_or_else(|| UNKNOWN_SELLER_NAME.to_owned()),
            },
            seller_id: s.seller_id,
            status: s.status,
            version: s.version,
            created_at: s.created_at,
            updated_at: s.updated_at,
            files: s.files.into_iter().map(|f| f.meta).collect(),
            has_secret_note: s.has_secret_note,
            course: s.course,
            cover_url: s.cover.as_deref().and_then(crate::files::cover_url),
            rating: StuffRating::of(s.rating_count, s.rating_sum),
        }
    }
}

/// `stuff:list` ack data: one page of the catalogue, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StuffPage {
    /// The page's items.
    pub items: Vec<Stuff>,
    /// Opaque cursor for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The order of a `stuff:list` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StuffSort {
    /// Newest first (the default).
    #[default]
    Newest,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
    /// Best rated first (a confidence bound on the reviews).
    Rating,
}

impl StuffSort {
    /// Every sort, as the wire names them.
    pub const ALL: [StuffSort; 4] = [
        StuffSort::Newest,
        StuffSort::PriceAsc,
        StuffSort::PriceDesc,
        StuffSort::Rating,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StuffSort::Newest => "newest",
            StuffSort::PriceAsc => "priceAsc",
            StuffSort::PriceDesc => "priceDesc",
            StuffSort::Rating => "rating",
        }
    }
}

/// `stuff:list` payload; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StuffListRequest {
    /// Only stuff in this status (withdrawn stuff is never listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StuffStatus>,
    /// Only stuff for this course (compared upper-case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = limits::COURSE_MIN, max = limits::COURSE_MAX))]
    pub course: Option<String>,
    /// Only this seller's stuff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub seller_id: Option<String>,
    /// Words that must all match the title, description or course (a word also matches
    /// as the start of a longer one); best matches (all in the title) first unless `sort`
    /// is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::SEARCH_MAX))]
    pub q: Option<String>,
    /// The order (default `newest`, or best matches first with `q`); a cursor continues
    /// only the order it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<StuffSort>,
    /// Page size, 1–100 (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::PAGE_LIMIT_MAX))]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::CURSOR_MAX))]
    pub cursor: Option<String>,
}

/// `{id}`: the payload of `stuff:get`, `order:get` and `order:cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IdRequest {
    /// The record's id.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub id: String,
}

/// `{}`: the payload of `order:list` and `coupon:list` (a Socket.IO payload must be an object).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// `stuff:create` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StuffCreateRequest {
    /// 1–120 characters after trimming.
    #[schemars(length(min = 1, max = limits::TITLE_MAX))]
    pub title: String,
    /// Whole cents, 1–100000000 (floats and strings are refused).
    #[schemars(range(min = limits::PRICE_MIN, max = limits::PRICE_MAX))]
    pub price_cents: i64,
    /// At most 2000 characters; empty when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::DESCRIPTION_MAX))]
    pub description: Option<String>,
    /// Private text for buyers only (a licence key, a link, instructions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::SECRET_NOTE_MAX))]
    pub secret_note: Option<String>,
    /// The course, 2–20 letters, digits, spaces or `-` (kept upper-case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = limits::COURSE_MIN, max = limits::COURSE_MAX))]
    pub course: Option<String>,
}

/// `stuff:update` payload: the id and at least one of `title`, `priceCents`,
/// `description`, `secretNote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("anyOf" = [
    {"required": ["title"]},
    {"required": ["priceCents"]},
    {"required": ["description"]},
    {"required": ["secretNote"]},
    {"required": ["course"]}
]))]
pub struct StuffUpdateRequest {
    /// Which stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub id: String,
    /// The version the client last read; a newer stored version is a 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub version: Option<u64>,
    /// New title, 1–120 characters after trimming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::TITLE_MAX))]
    pub title: Option<String>,
    /// New price, whole cents 1–100000000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = limits::PRICE_MIN, max = limits::PRICE_MAX))]
    pub price_cents: Option<i64>,
    /// New description, at most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::DESCRIPTION_MAX))]
    pub description: Option<String>,
    /// New private note for buyers; `null` or empty removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::SECRET_NOTE_MAX))]
    pub secret_note: Option<Option<String>>,
    /// New course; `null` or empty removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::COURSE_MAX))]
    pub course: Option<Option<String>>,
}

/// `delivery:get` payload: exactly one of `orderId` (the buyer) or `stuffId` (the seller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["orderId"]},
    {"required": ["stuffId"]}
]))]
pub struct DeliveryRequest {
    /// A complete order of the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: Option<String>,
    /// A stuff the caller sells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: Option<String>,
}

/// One downloadable file in a `delivery:get` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryFile {
    /// The file.
    #[serde(flatten)]
    pub meta: FileMeta,
    /// Signed path under `/api/files/`, usable without headers until `expiresAt`.
    pub url: String,
    /// When the link stops working (RFC 3339, UTC).
    pub expires_at: DateTime<Utc>,
}

/// `delivery:get` ack data: what the buyer (or the seller) gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The seller's private note, or `null`.
    pub secret_note: Option<String>,
    /// One link per file.
    pub files: Vec<DeliveryFile>,
}

/// The body of a successful upload (`201`) or new version (`200`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileReply {
    /// The stored file.
    pub file: FileMeta,
}

/// `delivery:updated` push: a purchase's files changed; fetch `delivery:get` again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryUpdated {
    /// The buyer's order.
    pub order_id: String,
}

/// A course in use and how many listings name it: an item of `stuff:courses`, which the
/// catalogue's course chips and the course field's suggestions are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CourseCount {
    /// The course, upper-case (e.g. `CS 101`).
    pub course: String,
    /// How many listings in the catalogue (not withdrawn) name it.
    #[schemars(range(min = 1))]
    pub count: u64,
}

/// One of my stuff that was paid for: an item of `order:sales`, and the `sale:completed`
/// push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sale {
    /// The order that was paid.
    pub order_id: String,
    /// What was sold.
    pub stuff_id: String,
    /// Its title when ordered.
    pub stuff_title: String,
    /// The buyer's display name.
    pub buyer_display_name: String,
    /// What the buyer was charged, after coupons.
    #[schemars(range(min = 0))]
    pub paid_cents: i64,
    /// The marketplace's share (`PLATFORM_FEE_PERCENT` of `paidCents`, rounded to the cent).
    #[schemars(range(min = 0))]
    pub fee_cents: i64,
    /// What the seller earns: `paidCents − feeCents`.
    #[schemars(range(min = 0))]
    pub earned_cents: i64,
    /// When the payment completed the order.
    pub paid_at: DateTime<Utc>,
}

impl From<crate::events::SaleRecord> for Sale {
    fn from(s: crate::events::SaleRecord) -> Self {
        Self {
            order_id: s.order_id,
            stuff_id: s.stuff_id,
            stuff_title: s.stuff_title,
            buyer_display_name: s.buyer_display_name,
            paid_cents: s.paid_cents,
            fee_cents: s.fee_cents,
            earned_cents: s.earned_cents,
            paid_at: s.paid_at,
        }
    }
}

/// `order:sales` ack data: what I sold, newest first, and everything I earned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sales {
    /// My paid orders, newest first (at most [`limits::SALES_MAX`]; refunded ones drop out).
    pub sales: Vec<Sale>,
    /// The sum of `earnedCents` over every sale, not only those listed.
    #[schemars(range(min = 0))]
    pub total_earned_cents: i64,
}

/// The marketplace's share of a payment of `paid_cents` at `percent` (0–100), rounded to
/// the nearest cent (halves up); the seller earns the rest.
pub fn platform_fee(paid_cents: i64, percent: u8) -> i64 {
    let paid = paid_cents.max(0);
    (paid.saturating_mul(i64::from(percent)) + 50) / 100
}

/// The 400 for a cover that is not an image StuffMart takes (CONTRACT.md).
pub const INVALID_COVER: &str = "Cover must be a PNG, JPEG or WebP image";

/// Internal (router → ms-stuff) `stuff:cover` payload: make the stored thumbnail `object`
/// the stuff's cover (the seller's, like `stuff:update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverSetRequest {
    /// The stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
    /// The thumbnail's object key (`covers/<stuffId>/<hash>.jpg`).
    #[schemars(length(min = 1, max = limits::OBJECT_KEY_MAX))]
    pub object: String,
}

/// Internal `stuff:cover` reply: the stuff with its new cover, and the object of the cover
/// it replaced (for the router to delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverSet {
    /// The stuff as it is now.
    pub stuff: Stuff,
    /// The previous cover's object, if it had another one.
    pub replaced: Option<String>,
}

/// `POST /api/stuff/{id}/cover` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoverReply {
    /// The new cover's URL.
    pub cover_url: String,
}

/// Internal (router → ms-stuff) `stuff:file-check` payload: may the caller upload to this
/// stuff (a new file, or a new version of `fileId`)? Asked before any byte is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileCheckRequest {
    /// The stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
    /// The file a new version replaces; absent for a new file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub file_id: Option<String>,
}

/// Internal `stuff:file-attach` payload: record an uploaded file (or a new version of
/// `file.id` when `replace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileAttachRequest {
    /// The stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
    /// The stored file.
    pub file: crate::events::StoredFile,
    /// True for a new version of an existing file.
    #[serde(default)]
    pub replace: bool,
}

/// Internal `stuff:file-remove` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileRemoveRequest {
    /// The stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
    /// The file.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub file_id: String,
}

/// Internal `stuff:file-orphans` payload: stored objects (`files/{stuffId}/…`) the
/// router's sweeper found older than an upload can take; which are no file's?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOrphansRequest {
    /// Object keys, as the object store lists them.
    #[schemars(length(max = limits::ORPHAN_BATCH_MAX), inner(length(min = 1, max = limits::OBJECT_KEY_MAX)))]
    pub objects: Vec<String>,
}

/// Internal reply of `stuff:file-orphans`: the objects no file of any stuff points at,
/// which the router deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileOrphans {
    /// A subset of the request's objects.
    pub orphans: Vec<String>,
}

/// Internal reply of `stuff:file-attach` and `stuff:file-remove`: the file now stored
/// (if any) and the object no longer referenced, which the router deletes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileChanged {
    /// The file as stored after the change (`None` after a removal).
    #[serde(default)]
    pub file: Option<FileMeta>,
    /// The object the change made unreachable (a replaced or removed version).
    #[serde(default)]
    pub unreferenced: Option<String>,
}

/// `order:create` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderCreateRequest {
    /// The stuff to buy (not your own).
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
}

/// `review:create` payload: the buyer of a complete order rates it, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewCreateRequest {
    /// The order reviewed (yours, status `complete`).
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: String,
    /// Whole stars, 1–5.
    #[schemars(range(min = limits::RATING_MIN, max = limits::RATING_MAX))]
    pub rating: i64,
    /// At most 1000 characters after trimming; empty when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::REVIEW_COMMENT_MAX))]
    pub comment: Option<String>,
}

/// `review:list` payload: whose reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewListRequest {
    /// The stuff.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub stuff_id: String,
}

/// The contract's `Review` shape (`review:create` ack data, items of `review:list`, which
/// answers at most [`limits::REVIEW_LIST_MAX`], newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Opaque id.
    pub id: String,
    /// The stuff reviewed.
    pub stuff_id: String,
    /// Whole stars, 1–5.
    #[schemars(range(min = limits::RATING_MIN, max = limits::RATING_MAX))]
    pub rating: i64,
    /// Trimmed text, at most 1000 characters (may be empty).
    #[schemars(length(max = limits::REVIEW_COMMENT_MAX))]
    pub comment: String,
    /// The buyer's display name as ms-order knows it now (renames show).
    pub buyer_display_name: String,
    /// When it was written (RFC 3339, UTC).
    pub created_at: DateTime<Utc>,
}

impl Review {
    /// The review of `record`, naming its buyer `buyer` (`None`: an account not heard of).
    pub fn new(record: ReviewRecord, buyer: Option<String>) -> Self {
        Self {
            id: record.id,
            stuff_id: record.stuff_id,
            rating: record.rating,
            comment: record.comment,
            buyer_display_name: buyer.unwrap_or_else(|| UNKNOWN_BUYER_NAME.to_owned()),
            created_at: record.created_at,
        }
    }
}

/// `payment:create` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentCreateRequest {
    /// The order to pay (yours, status `created`).
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: String,
    /// Stripe payment method id such as `pm_card_visa`; needed unless a coupon makes it free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::PAYMENT_METHOD_MAX))]
    pub payment_method: Option<String>,
    /// Coupon code (case-insensitive, letters and digits); empty means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::COUPON_CODE_MAX))]
    pub coupon_code: Option<String>,
}

/// `payment:intent` payload: the card payment of one of your orders, for Stripe's Payment
/// Element in the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentIntentRequest {
    /// The order to pay (yours, status `created`).
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: String,
    /// Coupon code (case-insensitive, letters and digits); empty means none. It is
    /// redeemed now and given back if the intent is replaced, cancelled or declined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::COUPON_CODE_MAX))]
    pub coupon_code: Option<String>,
}

/// `payment:intent` ack data: what the browser needs to confirm the payment itself. The
/// order completes when the gateway reports the payment (Stripe's webhook), never on the
/// browser's word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentIntent {
    /// The PaymentIntent's client secret, for `<Elements options={{clientSecret}}>`.
    #[schemars(length(min = 1))]
    pub client_secret: String,
    /// What will be charged, in cents, after the coupon (at least the smallest charge).
    #[schemars(range(min = limits::PRICE_MIN))]
    pub amount_cents: i64,
    /// `CURRENCY`: the ISO 4217 code (lower-case) of the amount.
    #[schemars(length(min = 3, max = 3))]
    pub currency: String,
    /// Stripe's publishable key (`STRIPE_PUBLISHABLE_KEY`); `null` with the built-in test
    /// gateway, whose test methods confirm through `payment:create`.
    pub publishable_key: Option<String>,
}

/// `payment:refund` payload (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefundRequest {
    /// The paid order whose money goes back.
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: String,
}

/// `payout:onboard` ack data: where to send the seller's browser to set up payouts
/// (Stripe's hosted onboarding; with the built-in gateway, the app's own return page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutLink {
    /// An absolute URL, good for a few minutes; ask again when it expired.
    #[schemars(length(min = 1))]
    pub url: String,
}

/// `payout:status` ack data: how the caller gets paid and what is waiting for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayoutStatus {
    /// Onboarding began (a connected account exists).
    pub started: bool,
    /// Payouts go to the seller's account: new sales are paid to it directly.
    pub onboarded: bool,
    /// Earnings (after the fee, refunds excluded) the ledger keeps until onboarding ends.
    #[schemars(range(min = 0))]
    pub held_cents: i64,
    /// Earnings sent to the seller's account (direct charges and ledger transfers), less
    /// refunds.
    #[schemars(range(min = 0))]
    pub paid_out_cents: i64,
    /// `CURRENCY`: the ISO 4217 code (lower-case) of the amounts.
    #[schemars(length(min = 3, max = 3))]
    pub currency: String,
}

/// `GET /api/config` body: what the web client needs of the server before it shows a
/// price, read at run time so one build of the client serves any deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// `CURRENCY`: the ISO 4217 code (lower-case) every `priceCents` and charge is in.
    #[schemars(length(min = 3, max = 3))]
    pub currency: String,
}

/// `payment:webhook` payload: what Stripe posted to `POST /api/payments/stripe-webhook`,
/// untouched, so ms-payment (which alone holds `STRIPE_WEBHOOK_SECRET`) can verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeWebhookRequest {
    /// The raw request body (the signature covers its exact bytes).
    #[schemars(length(max = limits::WEBHOOK_BODY_MAX))]
    pub payload: String,
    /// The `Stripe-Signature` header.
    #[schemars(length(max = limits::WEBHOOK_SIGNATURE_MAX))]
    pub signature: String,
}

/// `payment:webhook` reply and the webhook route's 200 body: Stripe stops retrying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceived {
    /// Always `true`: the event was handled now or before.
    pub received: bool,
}

/// `coupon:check` payload: try a code on one of your open orders before paying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CouponCheckRequest {
    /// The order (yours, status `created`).
    #[schemars(length(min = 1, max = limits::ID_MAX))]
    pub order_id: String,
    /// The code typed (case-insensitive, letters and digits).
    #[schemars(length(min = 1, max = limits::COUPON_CODE_MAX))]
    pub coupon_code: String,
}

/// `coupon:check` ack data: what paying with the coupon would charge. The coupon is only
/// looked at: `payment:create` redeems it, and may still find it used up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CouponCheck {
    /// What would be charged, in cents: 0 (free) or at least the smallest charge.
    #[schemars(range(min = 0))]
    pub amount_cents: i64,
    /// What the coupon takes off the order's price, in cents.
    #[schemars(range(min = 0))]
    pub discount_cents: i64,
}

/// `coupon:create` payload (admins only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CouponCreateRequest {
    /// Whole percent, 1–100 (100 makes the stuff free).
    #[schemars(range(min = limits::PERCENT_OFF_MIN, max = limits::PERCENT_OFF_MAX))]
    pub percent_off: i64,
    /// How many times it can be redeemed, at least 1; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = limits::MAX_REDEMPTIONS_MAX))]
    pub max_redemptions: Option<i64>,
    /// RFC 3339 time in the future; never expires when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// The contract's `Payment` shape (`payment:create` and `payment:refund` ack data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// Opaque id.
    pub id: String,
    /// The order paid for.
    pub order_id: String,
    /// What was charged, in cents (0 with a 100% coupon).
    #[schemars(range(min = 0))]
    pub amount_cents: i64,
    /// The coupon used, or `null`.
    pub coupon_code: Option<String>,
    /// Gateway reference (Stripe PaymentIntent id, or a coupon marker).
    pub provider_id: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When the money went back, or `null`.
    pub refunded_at: Option<DateTime<Utc>>,
    /// `CURRENCY` when it was charged: the ISO 4217 code (lower-case) of the amounts.
    pub currency: String,
    /// The marketplace's share of `amountCents` (`PLATFORM_FEE_PERCENT`); the seller
    /// earns the rest.
    #[schemars(range(min = 0))]
    pub fee_cents: i64,
}

impl From<PaymentRecord> for Payment {
    fn from(p: PaymentRecord) -> Self {
        Self {
            id: p.id,
            order_id: p.order_id,
            amount_cents: p.amount_cents,
            coupon_code: p.coupon_code,
            provider_id: p.provider_id,
            created_at: p.created_at,
            refunded_at: p.refunded_at,
            currency: p.currency,
            fee_cents: p.fee_cents.unwrap_or(0),
        }
    }
}

/// The contract's `Coupon` shape (`coupon:create` ack data, items of `coupon:list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Coupon {
    /// The code to type at checkout.
    pub code: String,
    /// Whole percent, 1–100.
    #[schemars(range(min = limits::PERCENT_OFF_MIN, max = limits::PERCENT_OFF_MAX))]
    pub percent_off: i64,
    /// Redemption limit, `null` = unlimited.
    pub max_redemptions: Option<i64>,
    /// Redemptions so far.
    #[schemars(range(min = 0))]
    pub redemptions: i64,
    /// Expiry, `null` = never.
    pub expires_at: Option<DateTime<Utc>>,
    /// The admin's user id.
    pub created_by: String,
}

/// The contract's `user` shape: `{id, email, role}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PublicUser {
    /// Opaque id.
    pub id: String,
    /// Normalised (trimmed, lowercased) e-mail.
    pub email: String,
    /// `user`, or `admin` for accounts granted it (`ms-user admin grant EMAIL`).
    pub role: Role,
    /// The name others see (default: the e-mail's local part).
    #[serde(rename = "displayName")]
    pub display_name: String,
}

impl From<UserRecord> for PublicUser {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id,
            email: u.email,
            role: u.role,
            display_name: u.display_name,
        }
    }
}

/// Body of sign-up (201), sign-in and refresh (200); the refresh token is in a cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The account.
    pub user: PublicUser,
    /// EdDSA JWT for `Authorization: Bearer` and the Socket.IO `auth.token` (15 minutes).
    pub access_token: String,
}

/// ms-user's RPC reply to `user:signup`, `user:signin`, `user:refresh` (the router moves
/// `refreshToken` into the HttpOnly cookie and answers with [`Session`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RpcSession {
    /// The account.
    pub user: PublicUser,
    /// EdDSA JWT access token.
    pub access_token: String,
    /// Opaque rotating refresh token.
    pub refresh_token: String,
    /// Seconds the refresh token lives (`REFRESH_TOKEN_SECONDS`): the cookie's `Max-Age`.
    pub refresh_token_max_age: u64,
}

/// `{user}`: body of `GET /api/users/me` and `session:authenticate` ack data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CurrentUser {
    /// The account the token belongs to.
    pub user: PublicUser,
}

/// Sign-up and sign-in body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Credentials {
    /// E-mail address (trimmed and lowercased by ms-user).
    #[schemars(length(min = limits::EMAIL_MIN, max = limits::EMAIL_MAX))]
    pub email: String,
    /// 8–128 characters.
    #[schemars(length(min = limits::PASSWORD_MIN, max = limits::PASSWORD_MAX))]
    pub password: String,
}

/// ms-user's `user:refresh` and `user:signout` RPC payload (the router reads the cookie).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token from the `refresh_token` cookie.
    #[schemars(length(min = 1, max = limits::REFRESH_TOKEN_MAX))]
    pub refresh_token: String,
}

/// The Socket.IO handshake `auth` object; no token (or none at all) browses anonymously.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct HandshakeAuth {
    /// Access token; an invalid or expired one fails the connection with `Not authorized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `session:authenticate` payload: switch the socket to a fresh access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuthenticateRequest {
    /// The new access token.
    #[schemars(length(min = 1))]
    pub token: String,
}

/// Payload of a refused connection (`connect_error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectError {
    /// `Not authorized` (bad token) or `Too many connections` (`MAX_CONNECTIONS`).
    pub message: String,
}

/// The HTTP error body: `{"errors":[{"message","field?"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorEnvelope {
    /// At least one error; several for multi-field validation failures.
    #[schemars(length(min = 1))]
    pub errors: Vec<ErrorDetail>,
}

impl From<&ApiError> for ErrorEnvelope {
    fn from(e: &ApiError) -> Self {
        Self {
            errors: e.errors.clone(),
        }
    }
}

/// A failed ack (and a failed RPC reply): `{status, errors}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AckError {
    /// HTTP-like status: 400, 401, 402, 403, 404, 409, 429, 500 or 503.
    #[schemars(extend("enum" = [400, 401, 402, 403, 404, 409, 429, 500, 503]))]
    pub status: u16,
    /// At least one error; `field` only on 400s about one input field.
    #[schemars(length(min = 1))]
    pub errors: Vec<ErrorDetail>,
}

impl From<&ApiError> for AckError {
    fn from(e: &ApiError) -> Self {
        Self {
            status: e.status,
            errors: e.errors.clone(),
        }
    }
}

/// A successful ack (and a successful RPC reply): `{data}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ack<T> {
    /// The event's result.
    pub data: T,
}

/// Either ack form: `{data}` or `{status, errors}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AckReply<T> {
    /// Success.
    Data(Ack<T>),
    /// Failure.
    Error(AckError),
}

impl<T> From<Result<T, ApiError>> for AckReply<T> {
    fn from(r: Result<T, ApiError>) -> Self {
        match r {
            Ok(data) => AckReply::Data(Ack { data }),
            Err(e) => AckReply::Error(AckError::from(&e)),
        }
    }
}

/// An RPC reply body on the wire (data of any shape).
pub type RpcReply = AckReply<Value>;

/// An RPC request body (`messaging::RpcRequest` on the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RpcRequestBody {
    /// `<service>:<action>`, the Socket.IO event name (e.g. `stuff:get`) or a `user:*` action.
    #[schemars(regex(pattern = r"^[a-z]+:[a-z]+(-[a-z]+)*$"))]
    pub action: String,
    /// The caller's access token, verified by the receiving service itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The action's input as the client sent it.
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// One JSON Schema (draft-07) for `T`, for inputs (`Contract::Deserialize`) or outputs.
fn schema_of<T: JsonSchema>(name: &'static str, contract: Contract) -> (&'static str, Value) {
    let mut settings = SchemaSettings::draft07();
    settings.contract = contract;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), Value::String(name.to_owned()));
    }
    (name, canonical(schema))
}

fn input<T: JsonSchema>(name: &'static str) -> (&'static str, Value) {
    schema_of::<T>(name, Contract::Deserialize)
}

fn output<T: JsonSchema>(name: &'static str) -> (&'static str, Value) {
    schema_of::<T>(name, Contract::Serialize)
}

/// Every schema of the contract, by file name (without `.json`), sorted by name.
pub fn schemas() -> Vec<(&'static str, Value)> {
    let mut all = vec![
        // Socket.IO request payloads and handshake.
        input::<HandshakeAuth>("HandshakeAuth"),
        input::<AuthenticateRequest>("AuthenticateRequest"),
        input::<StuffListRequest>("StuffListRequest"),
        input::<IdRequest>("IdRequest"),
        input::<Empty>("Empty"),
        input::<StuffCreateRequest>("StuffCreateRequest"),
        input::<StuffUpdateRequest>("StuffUpdateRequest"),
        input::<OrderCreateRequest>("OrderCreateRequest"),
        input::<PaymentCreateRequest>("PaymentCreateRequest"),
        input::<PaymentIntentRequest>("PaymentIntentRequest"),
        input::<PaymentRefundRequest>("PaymentRefundRequest"),
        input::<CouponCreateRequest>("CouponCreateRequest"),
        input::<CouponCheckRequest>("CouponCheckRequest"),
        input::<StripeWebhookRequest>("StripeWebhookRequest"),
        output::<WebhookReceived>("WebhookReceived"),
        input::<DeliveryRequest>("DeliveryRequest"),
        input::<ReviewCreateRequest>("ReviewCreateRequest"),
        input::<ReviewListRequest>("ReviewListRequest"),
        // HTTP bodies and ms-user's RPC payloads.
        input::<Credentials>("Credentials"),
        input::<RefreshRequest>("RefreshRequest"),
        output::<Session>("Session"),
        output::<RpcSession>("RpcSession"),
        output::<CurrentUser>("CurrentUser"),
        output::<PublicUser>("PublicUser"),
        input::<UpdateUserRequest>("UpdateUserRequest"),
        output::<Seller>("Seller"),
        output::<ClientConfig>("ClientConfig"),
        // Shapes (ack data and pushes).
        output::<Stuff>("Stuff"),
        output::<StuffPage>("StuffPage"),
        output::<OrderRecord>("Order"),
        output::<Payment>("Payment"),
        output::<Coupon>("Coupon"),
        output::<CouponCheck>("CouponCheck"),
        output::<PaymentIntent>("PaymentIntent"),
        output::<PayoutLink>("PayoutLink"),
        output::<PayoutStatus>("PayoutStatus"),
        output::<Delivery>("Delivery"),
        output::<Review>("Review"),
        output::<StuffRating>("StuffRating"),
        output::<DeliveryUpdated>("DeliveryUpdated"),
        output::<Sale>("Sale"),
        output::<CourseCount>("CourseCount"),
        input::<CoverSetRequest>("CoverSetRequest"),
        output::<CoverSet>("CoverSet"),
        output::<CoverReply>("CoverReply"),
        output::<Sales>("Sales"),
        output::<crate::events::SaleRecord>("SaleRecord"),
        output::<FileReply>("FileReply"),
        // Errors and ack forms.
        output::<ErrorEnvelope>("ErrorEnvelope"),
        output::<AckError>("AckError"),
        output::<ConnectError>("ConnectError"),
        // RabbitMQ bodies.
        output::<EventEnvelope>("EventEnvelope"),
        output::<UserRecord>("UserRecord"),
        output::<StuffRecord>("StuffRecord"),
        output::<PaymentRecord>("PaymentRecord"),
        output::<PaymentFailure>("PaymentFailure"),
        output::<ReviewRecord>("ReviewRecord"),
        output::<crate::events::DeliveryChange>("DeliveryChange"),
        output::<crate::events::ReservationRefusal>("ReservationRefusal"),
        input::<FileCheckRequest>("FileCheckRequest"),
        input::<FileAttachRequest>("FileAttachRequest"),
        input::<FileRemoveRequest>("FileRemoveRequest"),
        output::<FileChanged>("FileChanged"),
        input::<FileOrphansRequest>("FileOrphansRequest"),
        output::<FileOrphans>("FileOrphans"),
        input::<RpcRequestBody>("RpcRequest"),
        output::<RpcReply>("RpcReply"),
    ];
    all.sort_by(|a, b| a.0.cmp(b.0));
    all
}

/// Every schema as `(<Name>.json, pretty JSON text with a trailing newline)`.
pub fn schema_files() -> Vec<(String, String)> {
    schemas()
        .into_iter()
        .map(|(name, schema)| {
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            (format!("{name}.json"), format!("{text}\n"))
        })
        .collect()
}

/// The value with every object's keys in sorted order, whatever serde_json's map keeps.
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_to_the_cent() {
        assert_eq!(platform_fee(1000, 10), 100);
        assert_eq!(platform_fee(1005, 10), 101, "100.5 rounds up");
        assert_eq!(platform_fee(1004, 10), 100);
        assert_eq!(platform_fee(0, 10), 0);
        assert_eq!(platform_fee(999, 0), 0);
        assert_eq!(platform_fee(999, 100), 999);
        assert_eq!(platform_fee(-5, 10), 0);
    }

    #[test]
    fn display_names() {
        let ok = |raw: &str| DisplayName::parse(raw).map(|n| n.as_str().to_owned());
        assert_eq!(
            ok("  Ada   Lovelace ").ok().as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(ok("Jo").ok().as_deref(), Some("Jo"));
        assert_eq!(ok("Zoë Ångström").ok().as_deref(), Some("Zoë Ångström"));
        let forty = "é".repeat(40);
        assert_eq!(ok(&forty).ok(), Some(forty.clone()));
        for bad in [
            "",
            "A",
            "  A  ",
            "Ada\u{202E}evil",
            "Ada\u{200B}",
            "Ada\nLovelace",
            "Ada\u{0}",
        ] {
            let e = DisplayName::parse(bad).unwrap_err();
            assert_eq!(e.errors[0].field.as_deref(), Some("displayName"), "{bad:?}");
            assert_eq!(e.errors[0].message, INVALID_DISPLAY_NAME);
        }
        assert!(DisplayName::parse(&format!("{forty}x")).is_err());
        assert!(DisplayName::parse(&"x ".repeat(10_000)).is_err());
        assert_eq!(default_display_name("ada.l@uni.example"), "ada.l");
        assert_eq!(
            default_display_name(&format!("{}@x.com", "a".repeat(64))),
            "a".repeat(40)
        );
    }

    #[test]
    fn ratings_average_to_one_decimal() {
        let r = StuffRating::of(3, 13);
        assert_eq!((r.average, r.count), (4.3, 3));
        assert_eq!(StuffRating::of(0, 0).average, 0.0);
        assert_eq!(StuffRating::of(1, 4).average, 4.0);
        assert_eq!(
            serde_json::to_value(StuffRating::of(1, 4)).unwrap(),
            serde_json::json!({"average": 4.0, "count": 1})
        );
    }

    #[test]
    fn names_are_unique_and_titled() {
        let all = schemas();
        let mut names: Vec<_> = all.iter().map(|(n, _)| *n).collect();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for (name, schema) in &all {
            assert_eq!(schema["title"], *name);
            assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
        }
    }

    #[test]
    fn ack_forms() {
        let ok: AckReply<u8> = Ok(3).into();
        assert_eq!(
            serde_json::to_value(ok).unwrap(),
            serde_json::json!({"data": 3})
        );
        let err: AckReply<u8> = Err(ApiError::conflict("x")).into();
        assert_eq!(
            serde_json::to_value(err).unwrap(),
            serde_json::json!({"status": 409, "errors": [{"message": "x"}]})
        );
    }
}
