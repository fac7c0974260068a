//! Delivered files over HTTP: uploads streamed into the object store, downloads by signed
//! link.
//!
//! Bytes never travel through RabbitMQ. An upload asks ms-stuff first whether it may
//! happen (`stuff:file-check`, the same refusals the record would give), streams the
//! `file` part into a fresh object while it counts and hashes it, then asks ms-stuff to
//! record it (`stuff:file-attach`). Memory per upload is one object-store part (256 KiB
//! locally, 5 MiB on S3) whatever the file's size. A file over `MAX_FILE_BYTES`, a broken
//! body or a refused record leaves no object behind: the multipart upload is aborted, or
//! the object deleted. The streaming runs in its own task, so it ends the same way when
//! the client goes away mid-upload. A download checks the link's signature and expiry
//! (made by ms-stuff with the shared key) and streams the object, with `Range` support;
//! nobody else is asked, so downloads keep working while the services are busy.

use crate::AppState;
use crate::http::{BearerToken, CorrelationId};
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use ms_common::ApiError;
use ms_common::contract::{
    FileAttachRequest, FileChanged, FileCheckRequest, FileMeta, FileOrphans, FileOrphansRequest,
    FileRemoveRequest, FileReply, StuffAction, limits,
};
use ms_common::events::StoredFile;
use ms_common::files::{FilesConfig, LinkKey, Objects, hex_encode, new_object_key, preview_object};
use ms_common::shutdown::Shutdown;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// 413 for a file over `MAX_FILE_BYTES` (CONTRACT.md).
pub const TOO_LARGE: &str = "File too large";
/// 400 (field `file`) for an upload without a file part (CONTRACT.md).
pub const FILE_REQUIRED: &str = "A file is required";
/// 403 for an expired or altered download link (CONTRACT.md).
pub const LINK_EXPIRED: &str = "This download link has expired";
/// How long a refused upload's remaining body is read (and discarded) before the
/// connection is dropped.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);
/// How much of a local file a download reads at a time.
const DOWNLOAD_CHUNK: usize = 256 * 1024;
/// Room for the multipart framing and headers around the file's bytes.
const MULTIPART_SLACK: u64 = 64 * 1024;

/// What the file routes need: the settings and the object store.
#[derive(Clone, Debug)]
pub struct FilesState {
    /// Limits and the link key.
    pub cfg: Arc<FilesConfig>,
    /// Where the bytes live.
    pub objects: Objects,
}

impl FilesState {
    /// Opens the configured object store.
    pub fn open(cfg: FilesConfig) -> anyhow::Result<Self> {
        let objects = Objects::open(&cfg)?;
        Ok(Self {
            cfg: Arc::new(cfg),
            objects,
        })
    }

    fn key(&self) -> &LinkKey {
        &self.cfg.links.key
    }
}

/// The file routes, with a body limit that fits a whole file (the rest of the API keeps
/// `MAX_PAYLOAD_BYTES`).
pub fn routes(state: &AppState) -> Router<AppState> {
    let limit = state
        .files
        .cfg
        .max_file_bytes
        .saturating_add(MULTIPART_SLACK);
    Router::new()
        .route("/api/stuff/{id}/files", post(upload))
        .route(
            "/api/stuff/{id}/files/{file_id}",
            put(new_version).delete(remove),
        )
        .route("/api/files/{token}", get(download))
        .layer(DefaultBodyLimit::max(
            usize::try_from(limit).unwrap_or(usize::MAX),
        ))
}

fn too_large() -> ApiError {
    ApiError::new(413, TOO_LARGE)
}

fn file_required() -> ApiError {
    ApiError::field("file", FILE_REQUIRED)
}

/// A broken multipart body: over the body limit is a 413, the rest a 400.
fn multipart_error(e: &MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::field(
            "file",
            format!("The upload is malformed: {}", e.body_text()),
        )
    }
}

/// `POST /api/stuff/{id}/files`: a new file → 201 `{file}`.
async fn upload(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path(stuff_id): Path<String>,
    BearerToken(token): BearerToken,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let file = store_upload(&s, &cid.0, stuff_id, None, token, &headers, multipart).await?;
    Ok((StatusCode::CREATED, Json(FileReply { file })).into_response())
}

/// `PUT /api/stuff/{id}/files/{fileId}`: a new version → 200 `{file}`.
async fn new_version(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path((stuff_id, file_id)): Path<(String, String)>,
    BearerToken(token): BearerToken,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let file = store_upload(
        &s,
        &cid.0,
        stuff_id,
        Some(file_id),
        token,
        &headers,
        multipart,
    )
    .await?;
    Ok((StatusCode::OK, Json(FileReply { file })).into_response())
}

/// `DELETE /api/stuff/{id}/files/{fileId}` → 204; the object goes once ms-stuff let go.
async fn remove(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path((stuff_id, file_id)): Path<(String, String)>,
    BearerToken(token): BearerToken,
) -> Result<StatusCode, ApiError> {
    let req = FileRemoveRequest { stuff_id, file_id };
    let reply = s
        .rpc
        .request(
            StuffAction::FileRemove,
            Some(token),
            to_value(&req)?,
            &cid.0,
        )
        .await?;
    let changed: FileChanged = serde_json::from_value(reply).map_err(ApiError::internal_from)?;
    delete_unreferenced(&s.files.objects, changed.unreferenced).await;
    Ok(StatusCode::NO_CONTENT)
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal_from)
}

/// Deletes an object no file points at any more, and its previews; a failure is logged
/// (the object is unreachable either way: no link can name it again, and the sweeper
/// finds what is left).
async fn delete_unreferenced(objects: &Objects, object: Option<String>) {
    let Some(object) = object else { return };
    crate::previews::delete_previews(objects, &object).await;
    if let Err(e) = objects.delete(&object).await {
        tracing::warn!(object, error = %e, "could not delete an unreferenced object");
    }
}

/// Check with ms-stuff, stream into a fresh object, record with ms-stuff.
async fn store_upload(
    s: &AppState,
    cid: &str,
    stuff_id: String,
    replaces: Option<String>,
    token: String,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<FileMeta, ApiError> {
    let max = s.files.cfg.max_file_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max.saturating_add(MULTIPART_SLACK)) {
        return Err(too_large());
    }
    let multipart = multipart.map_err(|_| file_required())?;
    let check = FileCheckRequest {
        stuff_id: stuff_id.clone(),
        file_id: replaces.clone(),
    };
    let checked = s
        .rpc
        .request(
            StuffAction::FileCheck,
            Some(token.clone()),
            to_value(&check)?,
            cid,
        )
        .await;
    if let Err(refused) = checked {
        drain(multipart).await;
        return Err(refused);
    }
    let file_id = replaces
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let objects = s.files.objects.clone();
    let streaming = tokio::spawn(stream_file(
        objects,
        max,
        stuff_id.clone(),
        file_id,
        multipart,
    ));
    let mut stored = streaming.await.map_err(ApiError::internal_from)??;
    crate::previews::add_preview(&s.files.objects, &mut stored).await;
    let attach = FileAttachRequest {
        stuff_id,
        file: stored.clone(),
        replace: replaces.is_some(),
    };
    let reply = s
        .rpc
        .request(
            StuffAction::FileAttach,
            Some(token),
            to_value(&attach)?,
            cid,
        )
        .await;
    match reply {
        Ok(v) => {
            let changed: FileChanged =
                serde_json::from_value(v).map_err(ApiError::internal_from)?;
            delete_unreferenced(&s.files.objects, changed.unreferenced).await;
            Ok(changed.file.unwrap_or(stored.meta))
        }
        Err(e) if e.status == 503 => {
            // ms-stuff may have recorded it before the reply was lost: keep the object.
            tracing::warn!(object = %stored.object, "attach outcome unknown; object kept");
            Err(e)
        }
        Err(e) => {
            delete_unreferenced(&s.files.objects, Some(stored.object)).await;
            Err(e)
        }
    }
}

/// Deletes, every `sweep_every`, the objects under `files/` older than `orphan_age` that
/// no file points at, and the previews of such uploads: what a crash between storing an
/// upload and recording it leaves behind. ms-stuff decides which are orphans
/// (`stuff:file-orphans`, in batches); several routers sweeping at once only delete the
/// same objects twice. A failed sweep is logged and tried again next time.
pub async fn sweep_orphans(state: AppState, stop: Shutdown) {
    let every = state.files.cfg.sweep_every;
    loop {
        match sweep_once(&state).await {
            Ok(0) => tracing::debug!("orphan sweep: nothing to delete"),
            Ok(deleted) => tracing::info!(deleted, "orphan sweep: deleted unreferenced objects"),
            Err(e) => tracing::warn!(error = %e, "orphan sweep failed; trying again later"),
        }
        tokio::select! {
            () = stop.token.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One sweep; the number of objects deleted.
async fn sweep_once(s: &AppState) -> anyhow::Result<usize> {
    let cid = format!("sweep-{}", uuid::Uuid::now_v7());
    let files = sweep_prefix(s, &cid, "files", |key| Some(key.to_owned())).await?;
    let previews = sweep_prefix(s, &cid, "previews", preview_object).await?;
    Ok(files + previews)
}

/// Sweeps the old objects under `prefix`, each judged by the file object `owner` names
/// for it (itself, or the upload a preview belongs to; a key naming none is left alone).
async fn sweep_prefix(
    s: &AppState,
    cid: &str,
    prefix: &str,
    owner: fn(&str) -> Option<String>,
) -> anyhow::Result<usize> {
    use futures_util::StreamExt;
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(s.files.cfg.orphan_age)?;
    let prefix = ObjectPath::from(prefix);
    let mut listing = s.files.objects.store().list(Some(&prefix));
    let mut batch = Vec::new();
    let mut deleted = 0;
    while let Some(meta) = listing.next().await {
        let meta = meta?;
        let key = meta.location.to_string();
        if meta.last_modified < cutoff
            && let Some(file) = owner(&key)
        {
            batch.push((key, file));
        }
        if batch.len() == limits::ORPHAN_BATCH_MAX {
            deleted += delete_orphans(s, cid, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        deleted += delete_orphans(s, cid, batch).await?;
    }
    Ok(deleted)
}

/// Asks ms-stuff which of the batch's file objects are orphans and deletes the keys
/// (`(key, file object)`) that belong to those.
async fn delete_orphans(
    s: &AppState,
    cid: &str,
    batch: Vec<(String, String)>,
) -> anyhow::Result<usize> {
    let mut objects: Vec<String> = batch.iter().map(|(_, file)| file.clone()).collect();
    objects.sort();
    objects.dedup();
    let req = serde_json::to_value(FileOrphansRequest { objects })?;
    let reply = s
        .rpc
        .request(StuffAction::FileOrphans, None, req, cid)
        .await
        .map_err(|e| anyhow::anyhow!("stuff:file-orphans: {e}"))?;
    let FileOrphans { orphans } = serde_json::from_value(reply)?;
    let mut deleted = 0;
    for (key, _) in batch.iter().filter(|(_, file)| orphans.contains(file)) {
        tracing::info!(object = key, "deleting an object no file points at");
        s.files.objects.delete(key).await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// Reads a refused upload's body to its end (no more than the route's body limit, for at
/// most [`DRAIN_TIME`]) and throws it away: a client still sending gets to read the
/// refusal instead of a reset connection.
async fn drain(mut multipart: Multipart) {
    let drained = tokio::time::timeout(DRAIN_TIME, async move {
        while let Ok(Some(mut field)) = multipart.next_field().await {
            while let Ok(Some(_)) = field.chunk().await {}
        }
    })
    .await;
    if drained.is_err() {
        tracing::debug!("a refused upload was still sending; connection dropped");
    }
}

/// Streams the `file` part into a new object, hashing and counting; on any failure the
/// multipart upload is aborted, so nothing is left.
async fn stream_file(
    objects: Objects,
    max: u64,
    stuff_id: String,
    file_id: String,
    mut multipart: Multipart,
) -> Result<StoredFile, ApiError> {
    let mut field = loop {
        match multipart.next_field().await {
            Ok(Some(f)) if f.name() == Some("file") => break f,
            // Other parts are skipped (and drained by the next call).
            Ok(Some(_)) => continue,
            Ok(None) => return Err(file_required()),
            Err(e) => return Err(multipart_error(&e)),
        }
    };
    let name = file_name(field.file_name());
    let content_type = content_type(field.content_type(), &name);
    let object = new_object_key(&stuff_id);
    let upload = objects
        .store()
        .put_multipart(&ObjectPath::from(object.as_str()))
        .await
        .map_err(ApiError::internal_from)?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, objects.part_bytes());
    let mut hasher = Sha256::new();
    let copied = copy(&mut field, &mut writer, &mut hasher, max).await;
    let size_bytes = match copied {
        Ok(n) => n,
        Err(e) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(object, error = %abort, "could not abort an upload");
            }
            return Err(e);
        }
    };
    writer.finish().await.map_err(ApiError::internal_from)?;
    tracing::info!(object, size_bytes, "file stored");
    Ok(StoredFile {
        meta: FileMeta {
            id: file_id,
            name,
            size_bytes,
            content_type,
            sha256: hex_encode(&hasher.finalize()),
            pages: None,
            preview_urls: Vec::new(),
        },
        object,
    })
}

/// Copies the part's chunks into the writer, at most one part in flight; the byte count.
async fn copy(
    field: &mut Field<'_>,
    writer: &mut WriteMultipart,
    hasher: &mut Sha256,
    max: u64,
) -> Result<u64, ApiError> {
    let mut size: u64 = 0;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e)),
        };
        size = size.saturating_add(chunk.len() as u64);
        if size > max {
            return Err(too_large());
        }
        hasher.update(&chunk);
        writer
            .wait_for_capacity(1)
            .await
            .map_err(ApiError::internal_from)?;
        writer.put(chunk);
    }
    if size == 0 {
        return Err(file_required());
    }
    Ok(size)
}

/// The uploaded name without directories or control characters, at most
/// `FILE_NAME_MAX` characters (the extension kept), `file` when nothing is left.
pub fn file_name(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    if clean.is_empty() {
        return "file".to_owned();
    }
    let count = clean.chars().count();
    if count <= limits::FILE_NAME_MAX {
        return clean.to_owned();
    }
    let ext: String = match clean.rsplit_once('.') {
        Some((_, e)) if e.chars().count() <= 16 => format!(".{e}"),
        _ => String::new(),
    };
    let keep = limits::FILE_NAME_MAX - ext.chars().count();
    clean.chars().take(keep).collect::<String>() + &ext
}

/// The part's content type when it is a plain `type/subtype`, else one guessed from the
/// extension, else `application/octet-stream`. Downloads are attachments with `nosniff`,
/// so a wrong type cannot make a browser run the file.
pub fn content_type(declared: Option<&str>, name: &str) -> String {
    let sane = |t: &str| {
        let (ty, sub) = t.split_once('/').unwrap_or_default();
        !ty.is_empty()
            && !sub.is_empty()
            && t.len() <= limits::CONTENT_TYPE_MAX
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/.+-_".contains(&b))
    };
    let declared = declared
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|t| sane(t) && t != "application/octet-stream");
    if let Some(t) = declared {
        return t;
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "epub" => "application/epub+zip",
        _ => "application/octet-stream",
    }
    .to_owned()
}

/// `Content-Disposition: attachment` with an ASCII fallback name and the UTF-8 original.
pub fn attachment(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The byte range to serve: `None` for the whole file (no or unusable `Range`, or an
/// `If-Range` for another version), `Err` when the range lies outside the file.
fn wanted_range(
    headers: &HeaderMap,
    etag: &str,
    size: u64,
) -> Result<Option<std::ops::RangeInclusive<u64>>, ()> {
    let Some(raw) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && if_range.as_bytes() != etag.as_bytes()
    {
        return Ok(None);
    }
    let Ok(parsed) = http_range_header::parse_range_header(raw) else {
        return Ok(None);
    };
    match parsed.validate(size) {
        // One range is served as asked; several are served as the whole file.
        Ok(ranges) if ranges.len() == 1 => Ok(ranges.into_iter().next()),
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}

/// `GET /api/files/{token}`: the bytes a signed link grants.
async fn download(
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = s
        .files
        .key()
        .verify(&token, now)
        .map_err(|_| ApiError::forbidden(LINK_EXPIRED))?;
    let etag = format!("\"{}\"", claims.sha256);
    let mut out = HeaderMap::new();
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal_from)?;
    out.insert(header::ETAG, etag_value);
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=0, must-revalidate"),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if not_modified {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let size = claims.size_bytes;
    let Ok(range) = wanted_range(&headers, &etag, size) else {
        let all =
            HeaderValue::from_str(&format!("bytes */{size}")).map_err(ApiError::internal_from)?;
        out.insert(header::CONTENT_RANGE, all);
        let err = ApiError::new(416, "The requested range is outside the file");
        return Ok((StatusCode::RANGE_NOT_SATISFIABLE, out, err).into_response());
    };
    let opts = GetOptions {
        range: range
            .clone()
            .map(|r| GetRange::Bounded(*r.start()..r.end() + 1)),
        ..GetOptions::default()
    };
    let got = s
        .files
        .objects
        .store()
        .get_opts(&ObjectPath::from(claims.object.as_str()), opts)
        .await;
    let got = match got {
        Ok(g) => g,
        // A replaced or removed version: the buyer's library has a fresh link.
        Err(object_store::Error::NotFound { .. }) => {
            return Err(ApiError::not_found("This file has a newer version; reload"));
        }
        Err(e) => return Err(ApiError::internal_from(e)),
    };
    let served = got.range.end - got.range.start;
    let ct = HeaderValue::from_str(&claims.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    out.insert(header::CONTENT_TYPE, ct);
    if let Ok(v) = HeaderValue::from_str(&attachment(&claims.name)) {
        out.insert(header::CONTENT_DISPOSITION, v);
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(served));
    let status = match range {
        Some(r) => {
            let v = format!("bytes {}-{}/{size}", r.start(), r.end());
            out.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&v).map_err(ApiError::internal_from)?,
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    tracing::info!(file_id = %claims.file_id, user_id = %claims.user_id, served, "download");
    let body = match got.payload {
        // A local file: read it in large chunks (object_store's own stream reads 8 KiB per
        // blocking call, which caps a download far below the disk's speed).
        GetResultPayload::File(file, _) => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut file = tokio::fs::File::from_std(file);
            file.seek(std::io::SeekFrom::Start(got.range.start))
                .await
                .map_err(ApiError::internal_from)?;
            let reader = file.take(served);
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                reader,
                DOWNLOAD_CHUNK,
            ))
        }
        GetResultPayload::Stream(stream) => Body::from_stream(stream),
    };
    Ok((status, out, body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_directories_and_control_characters() {
        assert_eq!(file_name(Some("C:\\x\\notes.pdf")), "notes.pdf");
        assert_eq!(file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(file_name(Some("a\u{0}b\n.txt")), "ab.txt");
        assert_eq!(file_name(Some("..")), "file");
        assert_eq!(file_name(None), "file");
        let long = format!("{}.pdf", "x".repeat(400));
        let short = file_name(Some(&long));
        assert_eq!(short.chars().count(), limits::FILE_NAME_MAX);
        assert!(short.ends_with(".pdf"));
    }

    #[test]
    fn content_types_are_plain_or_guessed() {
        assert_eq!(
            content_type(Some("application/pdf"), "x"),
            "application/pdf"
        );
        assert_eq!(
            content_type(Some("Text/Plain; charset=utf-8"), "x"),
            "text/plain"
        );
        assert_eq!(content_type(Some("bad type"), "a.PDF"), "application/pdf");
        assert_eq!(
            content_type(Some("application/octet-stream"), "a.zip"),
            "application/zip"
        );
        assert_eq!(content_type(None, "a"), "application/octet-stream");
    }

    #[test]
    fn attachments_name_the_file_safely() {
        assert_eq!(
            attachment("notes.pdf"),
            "attachment; filename=\"notes.pdf\"; filename*=UTF-8''notes.pdf"
        );
        let v = attachment("Über \"x\".pdf");
        assert!(v.contains("filename=\"_ber _x_.pdf\""), "{v}");
        assert!(
            v.contains("filename*=UTF-8''%C3%9Cber%20%22x%22.pdf"),
            "{v}"
        );
    }

    #[test]
    fn ranges() {
        let mut h = HeaderMap::new();
        assert_eq!(wanted_range(&h, "\"e\"", 10), Ok(None));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-4"));
        assert_eq!(wanted_range(&h, "\"e\"", 10), Ok(Some(2..=4)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert_eq!(wanted_range(&h, "\"e\"", 10), Ok(Some(7..=9)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=20-"));
        assert_eq!(wanted_range(&h, "\"e\"", 10), Err(()));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1,5-6"));
        assert_eq!(wanted_range(&h, "\"e\"", 10), Ok(None));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-4"));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert_eq!(wanted_range(&h, "\"e\"", 10), Ok(None));
    }
}
