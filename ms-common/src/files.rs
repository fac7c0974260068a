//! Delivered files: where their bytes live and the signed links that let a buyer fetch them.
//!
//! Bytes never travel through RabbitMQ: ms-router streams an upload into the object store
//! ([`Objects`], the `object_store` crate: a local directory by default, S3-compatible for
//! `OBJECT_STORE_URL=s3://bucket[/prefix]`), ms-stuff records the file's metadata and signs
//! download links ([`LinkKey::sign`]), and ms-router serves a link after checking its
//! signature ([`LinkKey::verify`]) without asking anyone.

use crate::config::{env_opt, env_parse};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where download links are served: `{LINK_PATH}/{token}`.
pub const LINK_PATH: &str = "/api/files";
/// The file under `DATA_DIR` that keeps the generated link key.
const KEY_FILE: &str = "download-link.key";
/// Shortest accepted link key, in bytes.
const KEY_MIN_BYTES: usize = 32;
/// Part size for S3 multipart uploads (S3's minimum for every part but the last).
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
/// Part size for the local directory (no minimum; smaller keeps memory per upload low).
const LOCAL_PART_BYTES: usize = 256 * 1024;

/// How download links are made and checked: ms-stuff signs them, ms-router verifies them,
/// so both read these settings (and only ms-router reads the rest of [`FilesConfig`]).
#[derive(Clone)]
pub struct LinkConfig {
    /// `DOWNLOAD_LINK_SECONDS`: how long a download link works.
    pub ttl: Duration,
    /// Signs and checks download links.
    pub key: LinkKey,
}

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LinkConfig {
    /// Reads `DOWNLOAD_LINK_SECONDS` and `DOWNLOAD_LINK_KEY` (else the key kept in
    /// `data_dir`, generated on first use).
    pub fn from_env(data_dir: &Path) -> anyhow::Result<Self> {
        let key = match env_opt("DOWNLOAD_LINK_KEY") {
            Some(k) => LinkKey::from_text(&k).context("DOWNLOAD_LINK_KEY")?,
            None => LinkKey::load_or_create(data_dir)?,
        };
        let seconds = env_parse("DOWNLOAD_LINK_SECONDS", 300u64)?;
        anyhow::ensure!(seconds > 0, "DOWNLOAD_LINK_SECONDS must be positive");
        Ok(Self {
            ttl: Duration::from_secs(seconds),
            key,
        })
    }

    /// Test settings: a fixed key shared by every process of a test, 5-minute links.
    pub fn for_tests() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            key: LinkKey(Arc::new(vec![7; KEY_MIN_BYTES])),
        }
    }
}

/// ms-router's delivery settings: where the bytes go, how large they may be, the links.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// `OBJECT_STORE_URL`: `file:///dir` or `s3://bucket[/prefix]`.
    pub object_store_url: String,
    /// Extra S3 settings (`aws_endpoint`, …) on top of the `AWS_*` environment; tests use
    /// them to point at their own server without touching the process environment.
    pub s3_options: Vec<(String, String)>,
    /// `MAX_FILE_BYTES`: the largest file a seller may upload.
    pub max_file_bytes: u64,
    /// `ORPHAN_SWEEP_SECONDS`: how often the router looks for objects no file points at
    /// (left by a crash between storing an upload and recording it).
    pub sweep_every: Duration,
    /// How old such an object must be before it is deleted: longer than any upload takes
    /// from its first byte to its record (`ORPHAN_SWEEP_SECONDS` too).
    pub orphan_age: Duration,
    /// Checks download links.
    pub links: LinkConfig,
}

impl FilesConfig {
    /// Reads `OBJECT_STORE_URL`, `MAX_FILE_BYTES`, `ORPHAN_SWEEP_SECONDS` and the
    /// [`LinkConfig`] settings.
    pub fn from_env(data_dir: &Path) -> anyhow::Result<Self> {
        let object_store_url = match env_opt("OBJECT_STORE_URL") {
            Some(u) => u,
            None => file_url(&data_dir.join("objects"))?,
        };
        let max_file_bytes = env_parse("MAX_FILE_BYTES", 52_428_800u64)?;
        anyhow::ensure!(max_file_bytes > 0, "MAX_FILE_BYTES must be positive");
        let sweep = env_parse("ORPHAN_SWEEP_SECONDS", 3600u64)?;
        anyhow::ensure!(sweep >= 60, "ORPHAN_SWEEP_SECONDS must be at least 60");
        Ok(Self {
            object_store_url,
            s3_options: Vec::new(),
            max_file_bytes,
            sweep_every: Duration::from_secs(sweep),
            orphan_age: Duration::from_secs(sweep),
            links: LinkConfig::from_env(data_dir)?,
        })
    }

    /// Test settings: objects in `dir` (absolute), 1 MiB files, hourly sweeps of
    /// hour-old orphans, [`LinkConfig::for_tests`].
    pub fn for_tests(dir: &Path) -> Self {
        Self {
            object_store_url: format!("file://{}", dir.display()),
            s3_options: Vec::new(),
            max_file_bytes: 1024 * 1024,
            sweep_every: Duration::from_secs(3600),
            orphan_age: Duration::from_secs(3600),
            links: LinkConfig::for_tests(),
        }
    }
}

/// `file://` URL of a directory, made absolute.
fn file_url(dir: &Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(dir).with_context(|| format!("{}", dir.display()))?;
    Ok(format!("file://{}", abs.display()))
}

/// The object store holding delivered files, with the part size that suits it.
#[derive(Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    part_bytes: usize,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects({})", self.store)
    }
}

impl Objects {
    /// Opens the store the configuration names (creating a local directory if missing).
    pub fn open(cfg: &FilesConfig) -> anyhow::Result<Self> {
        let url = cfg.object_store_url.as_str();
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
            let store = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
            return Ok(Self {
                store: Arc::new(store),
                part_bytes: LOCAL_PART_BYTES,
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            anyhow::ensure!(!bucket.is_empty(), "OBJECT_STORE_URL names no bucket");
            // The S3 client's TLS needs a process-wide crypto provider; ring is the one the
            // workspace builds (an error means one is installed already, which is fine).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
            for (k, v) in &cfg.s3_options {
                let key: AmazonS3ConfigKey = k.parse().with_context(|| format!("S3 option {k}"))?;
                builder = builder.with_config(key, v);
            }
            let s3 = builder.build()?;
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(PrefixStore::new(s3, prefix))
            };
            return Ok(Self {
                store,
                part_bytes: S3_PART_BYTES,
            });
        }
        anyhow::bail!("OBJECT_STORE_URL must start with file:// or s3://, got {url:?}")
    }

    /// The store itself.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// How many bytes an upload buffers before it sends a part.
    pub fn part_bytes(&self) -> usize {
        self.part_bytes
    }

    /// Deletes an object; a missing one is not an error (deletes are retried and raced).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A fresh object key for one upload of a file of `stuff_id`: every upload (a new version
/// too) gets its own object, so a refused or failed one never touches a delivered one.
pub fn new_object_key(stuff_id: &str) -> String {
    let safe: String = stuff_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    format!("files/{safe}/{}", uuid::Uuid::now_v7().simple())
}

/// Where a stuff's cover thumbnail lives: named by the hash of its bytes, so a URL never
/// shows other bytes than the first time and may be cached for good.
pub fn cover_key(stuff_id: &str, sha256_hex: &str) -> String {
    let hash: String = sha256_hex.chars().take(32).collect();
    format!("covers/{stuff_id}/{hash}.jpg")
}

/// The stuff a key made by [`cover_key`] belongs to; `None` for anything else (a key that
/// does not have exactly that shape is never recorded or served).
pub fn cover_stuff(key: &str) -> Option<&str> {
    let (stuff, name) = key.strip_prefix("covers/")?.split_once('/')?;
    let hash = name.strip_suffix(".jpg")?;
    let stuff_ok = stuff_id_ok(stuff);
    let hash_ok = hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit());
    (stuff_ok && hash_ok).then_some(stuff)
}

/// The public URL of a cover stored under `key` (`/api/covers/…`, served by ms-router).
pub fn cover_url(key: &str) -> Option<String> {
    cover_stuff(key)?;
    key.strip_prefix("covers/")
        .map(|rest| format!("/api/covers/{rest}"))
}

/// The stuff an object key made by [`new_object_key`] belongs to; `None` for any other
/// key (which is then nobody's to sweep).
pub fn object_stuff(key: &str) -> Option<&str> {
    let (stuff, upload) = key.strip_prefix("files/")?.split_once('/')?;
    (!stuff.is_empty() && !upload.is_empty() && !upload.contains('/')).then_some(stuff)
}

/// Where the preview image of page `page` (1-based) of the file stored under `object`
/// lives: named after that upload, so it never shows other bytes (it may be cached for
/// good) and goes with its file. `None` when `object` is not a file object or `page` is
/// out of `1..=PREVIEW_PAGES`.
pub fn preview_key(object: &str, page: u32) -> Option<String> {
    let stuff = object_stuff(object)?;
    let upload = object.rsplit('/').next()?;
    let upload_ok = !upload.is_empty()
        && upload.len() <= 64
        && upload.bytes().all(|b| b.is_ascii_alphanumeric());
    let page_ok = (1..=crate::contract::limits::PREVIEW_PAGES).contains(&page);
    (upload_ok && page_ok && stuff_id_ok(stuff))
        .then(|| format!("previews/{stuff}/{upload}-{page}.jpg"))
}

/// The public URLs (`/api/previews/…`, served by ms-router) of the first `count` pages'
/// previews of the file stored under `object`: what `FileMeta.previewUrls` must be.
pub fn preview_urls(object: &str, count: u32) -> Vec<String> {
    (1..=count)
        .filter_map(|page| preview_key(object, page))
        .filter_map(|key| {
            key.strip_prefix("previews/")
                .map(|rest| format!("/api/previews/{rest}"))
        })
        .collect()
}

/// The file object a key made by [`preview_key`] belongs to; `None` for any other key
/// (which is then never served, nor swept).
pub fn preview_object(key: &str) -> Option<String> {
    let (stuff, name) = key.strip_prefix("previews/")?.split_once('/')?;
    let (upload, page) = name.strip_suffix(".jpg")?.rsplit_once('-')?;
    let page: u32 = page.parse().ok()?;
    let object = format!("files/{stuff}/{upload}");
    (preview_key(&object, page).as_deref() == Some(key)).then_some(object)
}

/// A stuff id as it may appear in an object key.
fn stuff_id_ok(stuff: &str) -> bool {
    !stuff.is_empty()
        && stuff.len() <= crate::contract::limits::ID_MAX
        && stuff.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// What a download link grants: one stored object, to one user, until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The file's id (stable across versions).
    #[serde(rename = "f")]
    pub file_id: String,
    /// The object holding this version's bytes.
    #[serde(rename = "k")]
    pub object: String,
    /// The original file name (for `Content-Disposition`).
    #[serde(rename = "n")]
    pub name: String,
    /// The content type recorded at upload.
    #[serde(rename = "t")]
    pub content_type: String,
    /// SHA-256 of the bytes, hex (the `ETag`).
    #[serde(rename = "h")]
    pub sha256: String,
    /// Size in bytes.
    #[serde(rename = "z")]
    pub size_bytes: u64,
    /// The order that bought it; `None` for the seller's own link.
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Who the link was made for.
    #[serde(rename = "u")]
    pub user_id: String,
    /// Unix seconds after which the link is refused.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a link was refused (every case answers the same 403 to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a token this key made, or changed since.
    #[error("bad link signature")]
    Altered,
    /// Past its `expires`.
    #[error("link expired")]
    Expired,
}

/// The HMAC-SHA256 key that signs download links (shared by ms-stuff and ms-router).
#[derive(Clone)]
pub struct LinkKey(Arc<Vec<u8>>);

impl LinkKey {
    /// A key from raw bytes (at least 32).
    pub fn from_bytes(bytes: Vec<u8>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            bytes.len() >= KEY_MIN_BYTES,
            "a download link key needs at least {KEY_MIN_BYTES} bytes"
        );
        Ok(Self(Arc::new(bytes)))
    }

    /// A key written as hex or base64 (as `DOWNLOAD_LINK_KEY` or the key file hold it).
    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        let bytes = hex_decode(t)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .context("not hex or base64")?;
        Self::from_bytes(bytes)
    }

    /// The key kept in `dir` (`download-link.key`), created with fresh random bytes when
    /// missing. Several processes starting at once agree: the file appears complete or not
    /// at all (written aside, then hard-linked into place, which fails if one exists).
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Self::from_text(&text).with_context(|| format!("{}", path.display()));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        let bytes: [u8; KEY_MIN_BYTES] = rand::random();
        let tmp = dir.join(format!("{KEY_FILE}.{}", uuid::Uuid::new_v4().simple()));
        write_private(&tmp, &hex_encode(&bytes))?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Self::from_bytes(bytes.to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path)?;
                Self::from_text(&text)
            }
            Err(e) => Err(e).with_context(|| format!("{}", path.display())),
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// The link for these claims: `{LINK_PATH}/{payload}.{signature}`, both base64url.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{LINK_PATH}/{payload}.{sig}")
    }

    /// The claims of a token (the path part after `LINK_PATH/`), if this key signed it
    /// (constant-time compare) and it has not expired at `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: i64) -> Result<LinkClaims, LinkError> {
        let (payload, sig) = token.split_once('.').ok_or(LinkError::Altered)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| LinkError::Altered)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig).map_err(|_| LinkError::Altered)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Altered)?;
        let claims: LinkClaims = serde_json::from_slice(&json).map_err(|_| LinkError::Altered)?;
        if claims.expires <= now {
            return Err(LinkError::Expired);
        }
        Ok(claims)
    }
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Lower-case hex of bytes (SHA-256 digests, the key file).
pub fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_are_named_after_their_upload_and_lead_back_to_it() {
        let object = new_object_key("stuff-1");
        let key = preview_key(&object, 2).unwrap();
        assert!(
            key.starts_with("previews/stuff-1/") && key.ends_with("-2.jpg"),
            "{key}"
        );
        assert_eq!(preview_object(&key), Some(object.clone()));
        let urls = preview_urls(&object, 3);
        assert_eq!(urls.len(), 3);
        assert_eq!(urls[1], format!("/api/{key}"));
        // Out of range pages, other objects and forged keys name nothing.
        assert_eq!(preview_key(&object, 0), None);
        assert_eq!(preview_key(&object, limits_pages() + 1), None);
        assert_eq!(preview_key("covers/s/x.jpg", 1), None);
        for forged in [
            "previews/s/../x-1.jpg",
            "previews/s/abc-1.png",
            "previews/s/abc-01.jpg",
            "previews/s/abc-9.jpg",
            "previews/s/a/b-1.jpg",
            "previews/s/abc.jpg",
            "files/s/abc",
        ] {
            assert_eq!(preview_object(forged), None, "{forged}");
        }
    }

    fn limits_pages() -> u32 {
        crate::contract::limits::PREVIEW_PAGES
    }

    fn claims(expires: i64) -> LinkClaims {
        LinkClaims {
            file_id: "f1".into(),
            object: "files/s1/abc".into(),
            name: "notes.pdf".into(),
            content_type: "application/pdf".into(),
            sha256: "00".repeat(32),
            size_bytes: 10,
            order_id: Some("o1".into()),
            user_id: "u1".into(),
            expires,
        }
    }

    #[test]
    fn links_verify_only_unchanged_and_unexpired() {
        let key = LinkKey::from_bytes(vec![1; 32]).unwrap();
        let url = key.sign(&claims(100));
        let token = url.strip_prefix("/api/files/").unwrap();
        assert_eq!(key.verify(token, 99), Ok(claims(100)));
        assert_eq!(key.verify(token, 100), Err(LinkError::Expired));
        let other = LinkKey::from_bytes(vec![2; 32]).unwrap();
        assert_eq!(other.verify(token, 0), Err(LinkError::Altered));
        // Any change to the payload (say, another buyer) breaks the signature.
        let (payload, sig) = token.split_once('.').unwrap();
        let mut forged = claims(100);
        forged.user_id = "u2".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_ne!(payload, forged_payload);
        assert_eq!(
            key.verify(&format!("{forged_payload}.{sig}"), 0),
            Err(LinkError::Altered)
        );
        assert_eq!(key.verify("garbage", 0), Err(LinkError::Altered));
        assert_eq!(key.verify("a.b", 0), Err(LinkError::Altered));
    }

    #[test]
    fn keys_are_created_once_and_shared() {
        let dir = std::env::temp_dir().join(format!("linkkey-{}", uuid::Uuid::new_v4()));
        let a = LinkKey::load_or_create(&dir).unwrap();
        let b = LinkKey::load_or_create(&dir).unwrap();
        assert_eq!(a.0, b.0);
        let text = std::fs::read_to_string(dir.join(KEY_FILE)).unwrap();
        assert_eq!(LinkKey::from_text(&text).unwrap().0, a.0);
        assert!(LinkKey::from_text("abcd").is_err(), "too short");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn object_keys_are_fresh_and_path_safe() {
        let a = new_object_key("../x/y");
        assert!(a.starts_with("files/xy/"), "{a}");
        assert_ne!(new_object_key("s"), new_object_key("s"));
        assert_eq!(hex_encode(&[0, 255]), "00ff");
        assert_eq!(hex_decode("00ff"), Some(vec![0, 255]));
    }
}
