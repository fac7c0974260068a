//! Parse, don't validate: every input a client sends becomes a domain value here, or a 400
//! naming its field. A `StuffTitle`, `PriceCents` or `Cursor` that exists is valid.
//!
//! Payloads are read field by field from JSON (not derived), so a wrong type is a field
//! error like any other, every invalid field is reported at once, and unknown keys are
//! ignored. `null` counts as absent.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ms_common::ApiError;
use ms_common::contract::StuffSort;
use ms_common::events::{StuffRecord, StuffStatus};
use serde_json::{Map, Value};

use ms_common::contract::limits::{self, CURSOR_MAX, ID_MAX};
pub use ms_common::contract::limits::{
    DESCRIPTION_MAX, PAGE_LIMIT_DEFAULT as LIMIT_DEFAULT, PAGE_LIMIT_MAX as LIMIT_MAX, PRICE_MAX,
    PRICE_MIN, TITLE_MAX,
};
use ms_common::contract::{
    DeliveryRequest, FileAttachRequest, FileCheckRequest, FileOrphansRequest, FileRemoveRequest,
};
use ms_common::events::StoredFile;
use ms_common::messaging::parse_payload;

const TITLE_MESSAGE: &str = "Title must be between 1 and 120 characters";
const PRICE_MESSAGE: &str = "Price must be a whole number of cents between 50 and 100000000";
const DESCRIPTION_MESSAGE: &str = "Description must be text of at most 2000 characters";
const VERSION_MESSAGE: &str = "Version must be a positive whole number";
const ID_MESSAGE: &str = "Id must be a non-empty string";
const STATUS_MESSAGE: &str = "Status must be one of available, reserved, sold, withdrawn";
const LIMIT_MESSAGE: &str = "Limit must be a whole number between 1 and 100";
const CURSOR_MESSAGE: &str = "Cursor is invalid";
const COURSE_MESSAGE: &str = "Course must be 2 to 20 letters, digits, spaces or dashes";
const SELLER_MESSAGE: &str = "sellerId must be a valid id";
const SEARCH_MESSAGE: &str = "Search must be text of at most 100 characters";
const SORT_MESSAGE: &str = "Sort must be one of newest, priceAsc, priceDesc, rating";
const NOTE_MESSAGE: &str = "Secret note must be text of at most 10000 characters";

/// A stuff title: trimmed, 1–120 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuffTitle(String);

impl StuffTitle {
    /// Parses a JSON value; the error names the `title` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        let s = v
            .as_str()
            .map(str::trim)
            .ok_or_else(|| ApiError::field("title", TITLE_MESSAGE))?;
        let n = s.chars().count();
        if n == 0 || n > TITLE_MAX {
            return Err(ApiError::field("title", TITLE_MESSAGE));
        }
        Ok(Self(s.to_owned()))
    }
    /// The trimmed title.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price: a JSON integer of cents, 50–100000000 (Stripe cannot charge less) (floats, strings and negatives refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceCents(i64);

impl PriceCents {
    /// Parses a JSON value; the error names the `priceCents` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        // `as_i64` is `None` for floats (even `10.0`) and for integers beyond i64.
        match v.as_i64() {
            Some(n) if (PRICE_MIN..=PRICE_MAX).contains(&n) => Ok(Self(n)),
            _ => Err(ApiError::field("priceCents", PRICE_MESSAGE)),
        }
    }
    /// The amount in cents.
    pub fn cents(self) -> i64 {
        self.0
    }
}

/// Free text describing a stuff, at most 2000 characters (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    /// Parses a JSON value; the error names the `description` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        match v.as_str() {
            Some(s) if s.chars().count() <= DESCRIPTION_MAX => Ok(Self(s.to_owned())),
            _ => Err(ApiError::field("description", DESCRIPTION_MESSAGE)),
        }
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The private note a buyer gets with a stuff: 1–10,000 characters (empty means none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretNote(String);

impl SecretNote {
    /// Parses a JSON value: a string of at most 10,000 characters; `null` or an empty
    /// string is no note (`None`). The error names the `secretNote` field.
    pub fn parse(v: &Value) -> Result<Option<Self>, ApiError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) if s.chars().count() <= limits::SECRET_NOTE_MAX => {
                Ok(Some(Self(s.to_owned())))
            }
            _ => Err(ApiError::field("secretNote", NOTE_MESSAGE)),
        }
    }
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A record version a client read (optimistic concurrency): a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version(u64);

impl Version {
    /// Parses a JSON value; the error names the `version` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        match v.as_u64() {
            Some(n) if n >= 1 && i64::try_from(n).is_ok() => Ok(Self(n)),
            _ => Err(ApiError::field("version", VERSION_MESSAGE)),
        }
    }
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An opaque stuff id as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuffId(String);

impl StuffId {
    /// Parses a JSON value; the error names the `id` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        match v.as_str() {
            Some(s) if !s.is_empty() && s.len() <= ID_MAX => Ok(Self(s.to_owned())),
            _ => Err(ApiError::field("id", ID_MESSAGE)),
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A page size for `stuff:list`: 1–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimit(u32);

impl ListLimit {
    /// Parses a JSON value; the error names the `limit` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (1..=LIMIT_MAX).contains(&n) => Ok(Self(n)),
            _ => Err(ApiError::field("limit", LIMIT_MESSAGE)),
        }
    }
    /// The page size.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for ListLimit {
    fn default() -> Self {
        Self(LIMIT_DEFAULT)
    }
}

/// How a page is ordered: a client's `sort`, or best matches first for a search without
/// one. Best matches are the stuff whose title has every word (phase 0), then the rest
/// (phase 1), each newest first: a stuff's phase depends only on its own text, so inserts
/// never shift a page (a corpus-wide score such as BM25 would).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListOrder {
    /// The client's `sort`.
    Sort(StuffSort),
    /// Best matches first (a search without `sort`).
    Relevance,
}

impl ListOrder {
    fn as_str(self) -> &'static str {
        match self {
            ListOrder::Sort(s) => s.as_str(),
            ListOrder::Relevance => "relevance",
        }
    }
    fn parse(name: &str) -> Option<Self> {
        if name == "relevance" {
            return Some(ListOrder::Relevance);
        }
        StuffSort::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .map(ListOrder::Sort)
    }
}

/// Where the next page starts: strictly after the last item of the previous one, in the
/// order the list was sorted by (keyset pagination: an insert never shifts a page).
///
/// On the wire it is opaque: base64url of
/// `<order>|<phase>|<createdAt RFC 3339>|<key>|<id>`, where the key is the item's price
/// (its rating rank in the `rating` order). It continues only the order it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The order it continues.
    pub order: ListOrder,
    /// For [`ListOrder::Relevance`]: 0 while in the title matches, 1 after them.
    pub phase: u8,
    /// Creation time of the last item of the previous page.
    pub created_at: DateTime<Utc>,
    /// That item's sort key: its `ratingRank` in the `rating` order, else its price (only
    /// the price orders read it).
    pub key: i64,
    /// Id of that item (breaks ties between equal times or prices).
    pub id: String,
}

impl Cursor {
    /// The cursor after `last`, in `order` (and `phase` of a relevance order).
    pub fn after(order: ListOrder, phase: u8, last: &StuffRecord) -> Self {
        Self {
            order,
            phase,
            created_at: last.created_at,
            key: match order {
                ListOrder::Sort(StuffSort::Rating) => last.rating_rank,
                _ => last.price_cents,
            },
            id: last.id.clone(),
        }
    }
    /// The opaque string sent to clients.
    pub fn encode(&self) -> String {
        let raw = format!(
            "{}|{}|{}|{}|{}",
            self.order.as_str(),
            self.phase,
            ms_common::time::to_db(&self.created_at),
            self.key,
            self.id
        );
        URL_SAFE_NO_PAD.encode(raw.as_bytes())
    }
    /// Parses a JSON value; the error names the `cursor` field.
    pub fn parse(v: &Value) -> Result<Self, ApiError> {
        let invalid = || ApiError::field("cursor", CURSOR_MESSAGE);
        let s = v
            .as_str()
            .filter(|s| s.len() <= CURSOR_MAX)
            .ok_or_else(invalid)?;
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(5, '|');
        let (Some(order), Some(phase), Some(time), Some(key), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        let order = ListOrder::parse(order).ok_or_else(invalid)?;
        let phase = match phase {
            "0" => 0,
            "1" if order == ListOrder::Relevance => 1,
            _ => return Err(invalid()),
        };
        if id.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            order,
            phase,
            created_at: ms_common::time::from_db(time).map_err(|_| invalid())?,
            key: key.parse().map_err(|_| invalid())?,
            id: id.to_owned(),
        })
    }
}

/// What `q` searches for: its words (runs of letters and digits, lower-case), every one of
/// which must match; none when `q` has no word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWords(Vec<String>);

impl SearchWords {
    /// Parses `q`: text of at most 100 characters; `None` when it holds no word.
    pub fn parse(v: &Value) -> Result<Option<Self>, ApiError> {
        let invalid = || ApiError::field("q", SEARCH_MESSAGE);
        let text = v.as_str().ok_or_else(invalid)?;
        if text.chars().nth(limits::SEARCH_MAX).is_some() {
            return Err(invalid());
        }
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !c.is_alphanumeric()) {
            let word = word.to_lowercase();
            if !word.is_empty() && !words.contains(&word) {
                words.push(word);
            }
        }
        Ok((!words.is_empty()).then_some(Self(words)))
    }
    /// The words, lower-case, letters and digits only.
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

/// A course name: trimmed, runs of spaces made one, upper-case; 2–20 letters, digits,
/// spaces or `-` (`cs  101` and `CS 101` are one course).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Course(String);

impl Course {
    /// Parses a JSON string; the error names `field`.
    pub fn parse_as(v: &Value, field: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::field(field, COURSE_MESSAGE);
        let raw = v.as_str().ok_or_else(invalid)?;
        // Bounded before any copy: a longer input cannot become a valid course.
        if raw.chars().nth(limits::COURSE_MAX * 4).is_some() {
            return Err(invalid());
        }
        let course = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        let n = course.chars().count();
        let allowed = course
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-');
        if !(limits::COURSE_MIN..=limits::COURSE_MAX).contains(&n) || !allowed {
            return Err(invalid());
        }
        Ok(Self(course))
    }
    /// A `course` field: `null` or an empty string is no course (`None`).
    pub fn parse_optional(v: &Value) -> Result<Option<Self>, ApiError> {
        match v {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            other => Self::parse_as(other, "course").map(Some),
        }
    }
    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a `sort`; the error names the `sort` field.
pub fn parse_sort(v: &Value) -> Result<StuffSort, ApiError> {
    v.as_str()
        .and_then(|name| StuffSort::ALL.into_iter().find(|s| s.as_str() == name))
        .ok_or_else(|| ApiError::field("sort", SORT_MESSAGE))
}

/// Parses a status filter; the error names the `status` field.
pub fn parse_status(v: &Value) -> Result<StuffStatus, ApiError> {
    v.as_str()
        .and_then(StuffStatus::parse)
        .ok_or_else(|| ApiError::field("status", STATUS_MESSAGE))
}

/// The fields of a payload object, `null` treated as absent.
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn of(payload: &'a Value) -> Result<Self, ApiError> {
        payload
            .as_object()
            .map(Fields)
            .ok_or_else(|| ApiError::bad_request("Invalid payload"))
    }
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }
    /// Parses an optional field with `parse`, collecting its error.
    fn optional<T>(
        &self,
        name: &str,
        parse: impl Fn(&Value) -> Result<T, ApiError>,
        errors: &mut Vec<ApiError>,
    ) -> Option<T> {
        Self::parsed(self.get(name), parse, errors)
    }
    /// Like [`Fields::optional`], but a present `null` is parsed too (a field whose
    /// `null` means "remove it").
    fn nullable<T>(
        &self,
        name: &str,
        parse: impl Fn(&Value) -> Result<T, ApiError>,
        errors: &mut Vec<ApiError>,
    ) -> Option<T> {
        Self::parsed(self.0.get(name), parse, errors)
    }
    fn parsed<T>(
        value: Option<&Value>,
        parse: impl Fn(&Value) -> Result<T, ApiError>,
        errors: &mut Vec<ApiError>,
    ) -> Option<T> {
        match value.map(parse) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(e)) => {
                errors.push(e);
                None
            }
        }
    }
    /// Parses a required field; a missing one is reported with `missing`.
    fn required<T>(
        &self,
        name: &str,
        parse: impl Fn(&Value) -> Result<T, ApiError>,
        missing: &str,
        errors: &mut Vec<ApiError>,
    ) -> Option<T> {
        if self.get(name).is_none() {
            errors.push(ApiError::field(name, missing));
            return None;
        }
        self.optional(name, parse, errors)
    }
}

/// Every collected error as one 400, or the value when there were none.
fn finish<T>(errors: Vec<ApiError>, value: impl FnOnce() -> Option<T>) -> Result<T, ApiError> {
    if let Some(e) = ApiError::merge(errors) {
        return Err(e);
    }
    value().ok_or_else(|| ApiError::bad_request("Invalid payload"))
}

/// `stuff:create` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStuff {
    /// Title.
    pub title: StuffTitle,
    /// Price.
    pub price: PriceCents,
    /// Description (empty when not given).
    pub description: Description,
    /// The buyer's private note, if any.
    pub secret_note: Option<SecretNote>,
    /// The course it is for, if any.
    pub course: Option<Course>,
}

impl NewStuff {
    /// Parses `{title, priceCents, description?}`.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let f = Fields::of(payload)?;
        let mut errors = Vec::new();
        let title = f.required("title", StuffTitle::parse, TITLE_MESSAGE, &mut errors);
        let price = f.required("priceCents", PriceCents::parse, PRICE_MESSAGE, &mut errors);
        let description = f.optional("description", Description::parse, &mut errors);
        let secret_note = f.optional("secretNote", SecretNote::parse, &mut errors);
        let course = f.optional("course", Course::parse_optional, &mut errors);
        finish(errors, || {
            Some(Self {
                title: title?,
                price: price?,
                description: description.unwrap_or_default(),
                secret_note: secret_note.flatten(),
                course: course.flatten(),
            })
        })
    }
}

/// The fields an edit changes; `None` keeps the stored value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StuffPatch {
    /// New title.
    pub title: Option<StuffTitle>,
    /// New price.
    pub price: Option<PriceCents>,
    /// New description.
    pub description: Option<Description>,
    /// New note (`Some(None)` removes it).
    pub secret_note: Option<Option<SecretNote>>,
    /// New course (`Some(None)` removes it).
    pub course: Option<Option<Course>>,
    /// Take it out of the catalogue (`stuff:withdraw`): an edit like any other, allowed on
    /// the same terms (the seller's, while available), that sets the status `withdrawn`.
    pub withdraw: bool,
    /// New cover thumbnail: its object key (`stuff:cover`, checked by the service).
    pub cover: Option<String>,
}

impl StuffPatch {
    /// True when the edit would change nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.price.is_none()
            && self.description.is_none()
            && self.secret_note.is_none()
            && self.course.is_none()
            && !self.withdraw
            && self.cover.is_none()
    }

    /// The patch of `stuff:withdraw`.
    pub fn withdrawal() -> Self {
        Self {
            withdraw: true,
            ..Self::default()
        }
    }
}

/// `stuff:update` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStuff {
    /// Which stuff.
    pub id: StuffId,
    /// The version the client last read; when given, a newer stored version is a conflict.
    pub version: Option<Version>,
    /// What to change.
    pub patch: StuffPatch,
}

impl UpdateStuff {
    /// Parses `{id, version?, title?, priceCents?, description?, secretNote?}` (at least
    /// one change).
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let f = Fields::of(payload)?;
        let mut errors = Vec::new();
        let id = f.required("id", StuffId::parse, ID_MESSAGE, &mut errors);
        let version = f.optional("version", Version::parse, &mut errors);
        let patch = StuffPatch {
            title: f.optional("title", StuffTitle::parse, &mut errors),
            price: f.optional("priceCents", PriceCents::parse, &mut errors),
            description: f.optional("description", Description::parse, &mut errors),
            // Present (even as `null`) means change it; `null` or "" removes the note.
            secret_note: f.nullable("secretNote", SecretNote::parse, &mut errors),
            course: f.nullable("course", Course::parse_optional, &mut errors),
            withdraw: false,
            cover: None,
        };
        let nothing = errors.is_empty() && id.is_some() && patch.is_empty();
        if nothing {
            return Err(ApiError::bad_request(
                "Nothing to change: give title, priceCents, description, secretNote or course",
            ));
        }
        finish(errors, || {
            Some(Self {
                id: id?,
                version,
                patch,
            })
        })
    }
}

/// `stuff:get` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetStuff {
    /// Which stuff.
    pub id: StuffId,
}

impl GetStuff {
    /// Parses `{id}`.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let f = Fields::of(payload)?;
        let mut errors = Vec::new();
        let id = f.required("id", StuffId::parse, ID_MESSAGE, &mut errors);
        finish(errors, || Some(Self { id: id? }))
    }
}

/// An id from a request: 1–`ID_MAX` bytes, else a 400 naming `field`.
fn id_of(s: String, field: &str) -> Result<String, ApiError> {
    if s.is_empty() || s.len() > ID_MAX {
        return Err(ApiError::field(
            field,
            format!("{field} must be a valid id"),
        ));
    }
    Ok(s)
}

/// `delivery:get` input: whose delivery the caller asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFor {
    /// The buyer, by their order.
    Order(String),
    /// The seller, by their stuff.
    Stuff(String),
}

impl DeliveryFor {
    /// Parses `{orderId}` or `{stuffId}` (exactly one).
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        let req: DeliveryRequest = parse_payload(payload)?;
        match (req.order_id, req.stuff_id) {
            (Some(o), None) => Ok(Self::Order(id_of(o, "orderId")?)),
            (None, Some(s)) => Ok(Self::Stuff(id_of(s, "stuffId")?)),
            _ => Err(ApiError::field("orderId", "Give either orderId or stuffId")),
        }
    }
}

/// `stuff:file-check` input (from the router, before it stores any byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    /// The stuff.
    pub stuff_id: String,
    /// The file a new version replaces; `None` for a new file.
    pub replaces: Option<String>,
}

impl FileCheck {
    /// Parses `{stuffId, fileId?}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        let req: FileCheckRequest = parse_payload(payload)?;
        Ok(Self {
            stuff_id: id_of(req.stuff_id, "stuffId")?,
            replaces: req.file_id.map(|f| id_of(f, "fileId")).transpose()?,
        })
    }
}

/// `stuff:file-attach` input: a stored file whose metadata is checked again here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttach {
    /// The stuff.
    pub stuff_id: String,
    /// The file (a new version keeps the id of the one it replaces).
    pub file: StoredFile,
    /// True for a new version.
    pub replace: bool,
}

impl FileAttach {
    /// Parses `{stuffId, file, replace}`; the metadata must be what the router can have
    /// produced (a name, a SHA-256, an object of this stuff).
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        let req: FileAttachRequest = parse_payload(payload)?;
        let stuff_id = id_of(req.stuff_id, "stuffId")?;
        let f = &req.file;
        let sane = !f.meta.id.is_empty()
            && f.meta.id.len() <= ID_MAX
            && !f.meta.name.is_empty()
            && f.meta.name.chars().count() <= limits::FILE_NAME_MAX
            && !f.meta.name.contains(['/', '\\'])
            && f.meta.content_type.len() <= limits::CONTENT_TYPE_MAX
            && f.meta.sha256.len() == 64
            && f.meta.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && f.object.starts_with("files/")
            && !f.object.contains("..")
            && previews_sane(f);
        if !sane {
            return Err(ApiError::field("file", "File metadata is invalid"));
        }
        Ok(Self {
            stuff_id,
            file: req.file,
            replace: req.replace,
        })
    }
}

/// A file's page count and previews are what the router can have made: previews only of
/// a PDF whose pages were counted, no more than it has or [`limits::PREVIEW_PAGES`], at the
/// URLs of this very upload.
fn previews_sane(f: &StoredFile) -> bool {
    let shown = f.meta.preview_urls.len();
    let pages_ok = f
        .meta
        .pages
        .is_none_or(|n| (1..=limits::PDF_PAGES_MAX).contains(&n));
    let count_ok = u32::try_from(shown)
        .is_ok_and(|n| n <= f.meta.pages.unwrap_or(0).min(limits::PREVIEW_PAGES));
    pages_ok
        && count_ok
        && u32::try_from(shown)
            .is_ok_and(|n| ms_common::files::preview_urls(&f.object, n) == f.meta.preview_urls)
}

/// `stuff:file-remove` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRemove {
    /// The stuff.
    pub stuff_id: String,
    /// The file.
    pub file_id: String,
}

impl FileRemove {
    /// Parses `{stuffId, fileId}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        let req: FileRemoveRequest = parse_payload(payload)?;
        Ok(Self {
            stuff_id: id_of(req.stuff_id, "stuffId")?,
            file_id: id_of(req.file_id, "fileId")?,
        })
    }
}

/// `stuff:file-orphans` input: stored object keys, at most
/// [`limits::ORPHAN_BATCH_MAX`] of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOrphans {
    /// The keys, as the object store lists them.
    pub objects: Vec<String>,
}

impl FileOrphans {
    /// Parses `{objects: [key]}`.
    pub fn parse(payload: Value) -> Result<Self, ApiError> {
        let req: FileOrphansRequest = parse_payload(payload)?;
        let fits = |k: &String| !k.is_empty() && k.len() <= limits::OBJECT_KEY_MAX;
        if req.objects.len() > limits::ORPHAN_BATCH_MAX || !req.objects.iter().all(fits) {
            return Err(ApiError::field(
                "objects",
                format!(
                    "Give at most {} object keys of 1 to {} bytes",
                    limits::ORPHAN_BATCH_MAX,
                    limits::OBJECT_KEY_MAX
                ),
            ));
        }
        Ok(Self {
            objects: req.objects,
        })
    }
}

/// `stuff:list` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStuff {
    /// Only stuff in this status.
    pub status: Option<StuffStatus>,
    /// Only stuff for this course.
    pub course: Option<Course>,
    /// Only this seller's stuff (a user id).
    pub seller_id: Option<String>,
    /// Only stuff matching every word.
    pub search: Option<SearchWords>,
    /// The order.
    pub order: ListOrder,
    /// Page size.
    pub limit: ListLimit,
    /// Continue after this item (a cursor of the same `sort`).
    pub cursor: Option<Cursor>,
}

impl ListStuff {
    /// Parses `{status?, course?, sellerId?, q?, sort?, limit?, cursor?}`.
    pub fn parse(payload: &Value) -> Result<Self, ApiError> {
        let f = Fields::of(payload)?;
        let mut errors = Vec::new();
        let status = f.optional("status", parse_status, &mut errors);
        let course = f.optional("course", |v| Course::parse_as(v, "course"), &mut errors);
        let seller_id = f.optional(
            "sellerId",
            |v| match v.as_str() {
                Some(id) if !id.is_empty() && id.len() <= ID_MAX => Ok(id.to_owned()),
                _ => Err(ApiError::field("sellerId", SELLER_MESSAGE)),
            },
            &mut errors,
        );
        let search = f.optional("q", SearchWords::parse, &mut errors).flatten();
        let order = match f.optional("sort", parse_sort, &mut errors) {
            Some(sort) => ListOrder::Sort(sort),
            None if search.is_some() => ListOrder::Relevance,
            None => ListOrder::Sort(StuffSort::Newest),
        };
        let limit = f.optional("limit", ListLimit::parse, &mut errors);
        let cursor = f
            .optional("cursor", Cursor::parse, &mut errors)
            .filter(|c| {
                let fits = c.order == order;
                if !fits {
                    errors.push(ApiError::field("cursor", CURSOR_MESSAGE));
                }
                fits
            });
        finish(errors, || {
            Some(Self {
                status,
                course,
                seller_id,
                search,
                order,
                limit: limit.unwrap_or_default(),
                cursor,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(e: &ApiError) -> Vec<&str> {
        e.errors.iter().filter_map(|d| d.field.as_deref()).collect()
    }

    #[test]
    fn an_attached_file_carries_only_the_previews_its_upload_can_have() {
        let object = "files/s1/0190aa";
        let attach = |pages: Value, previews: Vec<String>| {
            FileAttach::parse(json!({
                "stuffId": "s1",
                "replace": false,
                "file": {
                    "id": "f1", "name": "notes.pdf", "sizeBytes": 10,
                    "contentType": "application/pdf", "sha256": "ab".repeat(32),
                    "pages": pages, "previewUrls": previews, "object": object,
                },
            }))
        };
        let urls = |n| ms_common::files::preview_urls(object, n);
        assert_eq!(
            attach(json!(12), urls(3)).unwrap().file.meta.pages,
            Some(12)
        );
        assert!(attach(json!(2), urls(2)).is_ok());
        assert!(attach(Value::Null, vec![]).is_ok());
        // An old record's shape (neither field) still parses.
        let old = FileAttach::parse(json!({
            "stuffId": "s1", "replace": false,
            "file": {"id": "f1", "name": "a.zip", "sizeBytes": 1, "contentType": "application/zip",
                     "sha256": "ab".repeat(32), "object": object},
        }))
        .unwrap();
        assert_eq!(
            (old.file.meta.pages, old.file.meta.preview_urls.len()),
            (None, 0)
        );
        for (pages, previews) in [
            (json!(1), urls(2)),    // more previews than pages
            (Value::Null, urls(1)), // previews of an uncounted file
            (json!(0), vec![]),     // no PDF has no pages
            (json!(12), vec!["/api/previews/s1/other-1.jpg".to_owned()]),
            (
                json!(12),
                ms_common::files::preview_urls("files/s2/0190aa", 1),
            ),
        ] {
            let e = attach(pages.clone(), previews.clone()).unwrap_err();
            assert_eq!(fields(&e), vec!["file"], "{pages} {previews:?}");
        }
    }

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(
            StuffTitle::parse(&json!("  Lamp ")).unwrap().as_str(),
            "Lamp"
        );
        assert!(StuffTitle::parse(&json!("x".repeat(120))).is_ok());
        assert!(StuffTitle::parse(&json!(format!("  {}  ", "é".repeat(120)))).is_ok());
        for bad in [json!(""), json!("   "), json!("x".repeat(121)), json!(5)] {
            let e = StuffTitle::parse(&bad).unwrap_err();
            assert_eq!(fields(&e), vec!["title"], "{bad}");
        }
    }

    #[test]
    fn prices_are_integer_cents_in_range() {
        assert_eq!(PriceCents::parse(&json!(50)).unwrap().cents(), 50);
        assert_eq!(
            PriceCents::parse(&json!(100_000_000)).unwrap().cents(),
            100_000_000
        );
        for bad in [
            json!(0),
            json!(1),
            json!(49),
            json!(-5),
            json!(100_000_001),
            json!(10.5),
            json!(10.0),
            json!("100"),
            json!(true),
            json!(u64::MAX),
        ] {
            let e = PriceCents::parse(&bad).unwrap_err();
            assert_eq!(fields(&e), vec!["priceCents"], "{bad}");
        }
    }

    #[test]
    fn descriptions_are_bounded() {
        assert!(Description::parse(&json!("")).is_ok());
        assert!(Description::parse(&json!("d".repeat(2000))).is_ok());
        assert!(Description::parse(&json!("d".repeat(2001))).is_err());
        assert!(Description::parse(&json!(["x"])).is_err());
    }

    #[test]
    fn create_reports_every_field_at_once() {
        let e = NewStuff::parse(&json!({"title": " ", "priceCents": 1.5, "description": 3}))
            .unwrap_err();
        assert_eq!(e.status, 400);
        assert_eq!(fields(&e), vec!["title", "priceCents", "description"]);
        let e = NewStuff::parse(&json!({})).unwrap_err();
        assert_eq!(fields(&e), vec!["title", "priceCents"]);
        let ok = NewStuff::parse(&json!({"title": " A ", "priceCents": 50, "extra": {}})).unwrap();
        assert_eq!(
            (ok.title.as_str(), ok.price.cents(), ok.description.as_str()),
            ("A", 50, "")
        );
        assert_eq!(NewStuff::parse(&json!([1])).unwrap_err().status, 400);
    }

    #[test]
    fn update_needs_an_id_and_a_change() {
        let e = UpdateStuff::parse(&json!({"title": "x"})).unwrap_err();
        assert_eq!(fields(&e), vec!["id"]);
        let e = UpdateStuff::parse(&json!({"id": "a"})).unwrap_err();
        assert_eq!(e.status, 400);
        let e = UpdateStuff::parse(&json!({"id": 4, "version": 0, "priceCents": "1"})).unwrap_err();
        assert_eq!(fields(&e), vec!["id", "version", "priceCents"]);
        let u = UpdateStuff::parse(&json!({"id": "a", "version": 3, "description": ""})).unwrap();
        assert_eq!(u.version.map(Version::get), Some(3));
        assert_eq!(u.patch.description.unwrap().as_str(), "");
    }

    #[test]
    fn list_input_and_cursors() {
        let l = ListStuff::parse(&json!({})).unwrap();
        assert_eq!(
            (l.status, l.limit.get(), l.cursor, l.order),
            (None, 20, None, ListOrder::Sort(StuffSort::Newest))
        );
        let e =
            ListStuff::parse(&json!({"status": "gone", "limit": 101, "cursor": "%%"})).unwrap_err();
        assert_eq!(fields(&e), vec!["status", "limit", "cursor"]);
        for bad in [json!(0), json!(2.5), json!("5")] {
            assert!(ListLimit::parse(&bad).is_err());
        }
        let c = Cursor {
            order: ListOrder::Sort(StuffSort::PriceDesc),
            phase: 0,
            created_at: Utc::now(),
            key: 1250,
            id: "0192-id|with-bar".into(),
        };
        let back = Cursor::parse(&json!(c.encode())).unwrap();
        assert_eq!(
            (back.order, back.key, back.id.as_str()),
            (c.order, 1250, c.id.as_str())
        );
        assert_eq!(
            back.created_at.timestamp_micros(),
            c.created_at.timestamp_micros()
        );
        // A cursor continues only the order it came from.
        let l = ListStuff::parse(&json!({"sort": "priceDesc", "cursor": c.encode()})).unwrap();
        assert_eq!(l.cursor.map(|c| c.id), Some("0192-id|with-bar".to_owned()));
        let e = ListStuff::parse(&json!({"sort": "priceAsc", "cursor": c.encode()})).unwrap_err();
        assert_eq!(fields(&e), vec!["cursor"]);
        let e = ListStuff::parse(&json!({"cursor": c.encode()})).unwrap_err();
        assert_eq!(fields(&e), vec!["cursor"]);
        for bad in [
            json!(URL_SAFE_NO_PAD.encode("no-separator")),
            json!(URL_SAFE_NO_PAD.encode("newest|0|yesterday|1|id")),
            json!(URL_SAFE_NO_PAD.encode("newest|0|2026-01-01T00:00:00Z|1|")),
            json!(URL_SAFE_NO_PAD.encode("newest|0|2026-01-01T00:00:00Z|cheap|id")),
            json!(URL_SAFE_NO_PAD.encode("newest|1|2026-01-01T00:00:00Z|1|id")),
            json!(URL_SAFE_NO_PAD.encode("relevance|2|2026-01-01T00:00:00Z|1|id")),
            json!(URL_SAFE_NO_PAD.encode("oldest|0|2026-01-01T00:00:00Z|1|id")),
            json!(URL_SAFE_NO_PAD.encode("2026-01-01T00:00:00Z|id")),
            json!(7),
        ] {
            assert_eq!(
                fields(&Cursor::parse(&bad).unwrap_err()),
                vec!["cursor"],
                "{bad}"
            );
        }
    }

    #[test]
    fn courses_are_normalized_and_bounded() {
        let c = |v: Value| Course::parse_optional(&v).map(|c| c.map(|c| c.as_str().to_owned()));
        assert_eq!(c(json!("  cs   101 ")).unwrap().as_deref(), Some("CS 101"));
        assert_eq!(c(json!("math-2b")).unwrap().as_deref(), Some("MATH-2B"));
        assert_eq!(
            c(json!("Ökonomie 1")).unwrap().as_deref(),
            Some("ÖKONOMIE 1")
        );
        assert_eq!(c(json!(null)).unwrap(), None);
        assert_eq!(c(json!("  ")).unwrap(), None);
        for bad in [
            json!("x"),
            json!("a".repeat(21)),
            json!("CS_101"),
            json!("CS/101"),
            json!("<b>CS</b>"),
            json!(101),
            json!(" ".repeat(10_000) + "CS"),
        ] {
            let e = Course::parse_optional(&bad).unwrap_err();
            assert_eq!(fields(&e), vec!["course"], "{bad}");
        }
        let n =
            NewStuff::parse(&json!({"title": "t", "priceCents": 100, "course": "cs 101"})).unwrap();
        assert_eq!(n.course.map(|c| c.0), Some("CS 101".to_owned()));
        let u = UpdateStuff::parse(&json!({"id": "a", "course": null})).unwrap();
        assert_eq!(u.patch.course, Some(None));
        let l =
            ListStuff::parse(&json!({"course": "cs 101", "sellerId": "u1", "sort": "priceAsc"}))
                .unwrap();
        assert_eq!(
            (l.course.map(|c| c.0), l.seller_id.as_deref(), l.order),
            (
                Some("CS 101".to_owned()),
                Some("u1"),
                ListOrder::Sort(StuffSort::PriceAsc)
            )
        );
        let e = ListStuff::parse(&json!({"course": "", "sellerId": "", "sort": "cheapest"}))
            .unwrap_err();
        assert_eq!(fields(&e), vec!["course", "sellerId", "sort"]);
    }

    #[test]
    fn search_words_and_their_order() {
        let w = |v: Value| SearchWords::parse(&v).map(|w| w.map(|w| w.0));
        assert_eq!(
            w(json!("  Linear-ALGEBRA, linear (MATH 201)!")).unwrap(),
            Some(vec![
                "linear".to_owned(),
                "algebra".to_owned(),
                "math".to_owned(),
                "201".to_owned()
            ])
        );
        assert_eq!(w(json!("\"*:^")).unwrap(), None, "no word, no search");
        assert_eq!(
            w(json!("Ökonomie")).unwrap(),
            Some(vec!["ökonomie".to_owned()])
        );
        for bad in [json!("x".repeat(101)), json!(5), json!(["a"])] {
            assert_eq!(fields(&SearchWords::parse(&bad).unwrap_err()), vec!["q"]);
        }
        assert!(SearchWords::parse(&json!("x".repeat(100))).is_ok());
        // A search is ordered by best match unless a sort is given; its cursor says so.
        let l = ListStuff::parse(&json!({"q": "algebra"})).unwrap();
        assert_eq!(l.order, ListOrder::Relevance);
        let l = ListStuff::parse(&json!({"q": "algebra", "sort": "priceAsc"})).unwrap();
        assert_eq!(l.order, ListOrder::Sort(StuffSort::PriceAsc));
        let l = ListStuff::parse(&json!({"q": "!!"})).unwrap();
        assert_eq!(
            (l.search, l.order),
            (None, ListOrder::Sort(StuffSort::Newest))
        );
        let c = Cursor {
            order: ListOrder::Relevance,
            phase: 1,
            created_at: Utc::now(),
            key: 50,
            id: "i".into(),
        };
        let l = ListStuff::parse(&json!({"q": "algebra", "cursor": c.encode()})).unwrap();
        assert_eq!(l.cursor.map(|c| c.phase), Some(1));
        let e = ListStuff::parse(&json!({"cursor": c.encode()})).unwrap_err();
        assert_eq!(fields(&e), vec!["cursor"]);
    }
}
