//! PDF previews: an uploaded PDF's page count and JPEG images of its first pages
//! ([`limits::PREVIEW_PAGES`]), public at `GET /api/previews/{stuffId}/{name}` so a visitor
//! can judge notes before buying. The file itself is still only ever delivered by a
//! signed link to its buyer.
//!
//! Rendering uses poppler's `pdfinfo` and `pdftoppm` (Debian's `poppler-utils`, installed
//! by the run and test scripts and in the image) rather than a Rust crate: poppler is the
//! renderer Linux desktops trust with arbitrary PDFs, where the pure-Rust renderers still
//! miss fonts and features, and the binding crates (pdfium, mupdf) need a native library
//! built or downloaded anyway. Poppler runs as a separate process with a memory and CPU
//! limit (`prlimit`) and a deadline, in a private temporary directory, one render at a
//! time per router: a hostile PDF can fail its own preview, nothing else. A preview that
//! cannot be made (poppler missing, not a PDF, a broken one) leaves `pages` null and no
//! images; the upload itself never fails for it.
//!
//! Images are named after the upload's object ([`preview_key`]), so they never change
//! (cached for good), are deleted with their file, and the orphan sweeper finds those of
//! an upload that was never recorded.

use crate::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use futures_util::StreamExt;
use ms_common::ApiError;
use ms_common::contract::limits;
use ms_common::events::StoredFile;
use ms_common::files::{Objects, preview_key, preview_object, preview_urls};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use std::path::{Path as FsPath, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// The longer side of a preview image, in pixels: a page of notes stays legible.
pub const PREVIEW_SIDE: u32 = 800;

/// How long poppler may take for one step (counting, rendering) before it is killed.
const TOOL_DEADLINE: Duration = Duration::from_secs(30);

/// The address space poppler may take (bytes) when `prlimit` is there to set it.
const TOOL_MEMORY: u64 = 1024 * 1024 * 1024;

/// CPU seconds poppler may use for one step when `prlimit` is there to set it.
const TOOL_CPU_SECONDS: u64 = 30;

/// One render at a time per router: rendering is CPU-bound and uploads are rare.
static RENDERING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(1));

/// Set once the "poppler is missing" warning was logged.
static MISSING_LOGGED: AtomicBool = AtomicBool::new(false);

/// Whether `prlimit` (util-linux) can be started, to bound poppler's memory and CPU.
static PRLIMIT: LazyLock<bool> = LazyLock::new(|| installed("prlimit", "--version"));

/// Whether poppler's two tools can be started (checked once, at the first PDF).
static POPPLER: LazyLock<bool> =
    LazyLock::new(|| installed("pdfinfo", "-v") && installed("pdftoppm", "-v"));

/// The preview route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/previews/{stuff}/{name}", get(serve_preview))
}

/// `GET /api/previews/{stuffId}/{name}`: anyone; a name belongs to one upload, so the
/// answer may be cached for good.
async fn serve_preview(
    State(s): State<AppState>,
    Path((stuff, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = format!("previews/{stuff}/{name}");
    if preview_object(&key).is_none() {
        return Err(ApiError::not_found("Preview not found"));
    }
    crate::covers::serve_jpeg(&s, &key, &name, "Preview not found").await
}

/// Whether a stored file is worth trying as a PDF (its type or its name says so; the
/// bytes are checked before poppler sees them).
fn looks_like_pdf(file: &StoredFile) -> bool {
    file.meta.content_type == "application/pdf"
        || file
            .meta
            .name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("pdf"))
}

/// Sets `pages` and `preview_urls` of a freshly stored PDF, storing its preview images;
/// leaves them empty when no preview can be made.
pub async fn add_preview(objects: &Objects, file: &mut StoredFile) {
    if !looks_like_pdf(file) {
        return;
    }
    let Ok(_turn) = RENDERING.acquire().await else {
        return;
    };
    let dir = match WorkDir::new() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "no room for a preview");
            return;
        }
    };
    match render(objects, &file.object, &dir).await {
        Ok(Some((pages, images))) => {
            file.meta.pages = Some(pages);
            match store_images(objects, &file.object, &images).await {
                Ok(shown) => file.meta.preview_urls = preview_urls(&file.object, shown),
                Err(e) => {
                    tracing::warn!(object = %file.object, error = %e, "could not store a preview");
                    delete_previews(objects, &file.object).await;
                }
            }
        }
        Ok(None) => {}
        Err(e) => tracing::info!(object = %file.object, error = %e, "no preview for this PDF"),
    }
}

/// Deletes the preview images of the upload stored under `object` (all it may have).
pub async fn delete_previews(objects: &Objects, object: &str) {
    for page in 1..=limits::PREVIEW_PAGES {
        if let Some(key) = preview_key(object, page)
            && let Err(e) = objects.delete(&key).await
        {
            tracing::warn!(key, error = %e, "could not delete a preview");
        }
    }
}

/// Copies the object next to poppler, counts its pages and renders the first ones: the
/// page count and the images in page order, or `None` when it is not a PDF or poppler is
/// missing.
async fn render(
    objects: &Objects,
    object: &str,
    dir: &WorkDir,
) -> anyhow::Result<Option<(u32, Vec<PathBuf>)>> {
    let pdf = dir.0.join("in.pdf");
    copy_out(objects, object, &pdf).await?;
    if !starts_with_pdf_magic(&pdf).await? {
        return Ok(None);
    }
    let Some(info) = run_tool("pdfinfo", &[pdf.as_os_str()]).await? else {
        return Ok(None);
    };
    let pages = page_count(&info).ok_or_else(|| anyhow::anyhow!("pdfinfo named no page count"))?;
    let last = pages.min(limits::PREVIEW_PAGES).to_string();
    let side = PREVIEW_SIDE.to_string();
    let out = dir.0.join("page");
    let args = [
        "-jpeg".as_ref(),
        "-jpegopt".as_ref(),
        "quality=80".as_ref(),
        "-scale-to".as_ref(),
        side.as_ref(),
        "-f".as_ref(),
        "1".as_ref(),
        "-l".as_ref(),
        last.as_ref(),
        pdf.as_os_str(),
        out.as_os_str(),
    ];
    if run_tool("pdftoppm", &args).await?.is_none() {
        return Ok(None);
    }
    Ok(Some((pages, rendered_pages(&dir.0).await?)))
}

/// Streams an object into a local file.
async fn copy_out(objects: &Objects, object: &str, to: &FsPath) -> anyhow::Result<()> {
    let got = objects.store().get(&ObjectPath::from(object)).await?;
    let mut stream = got.into_stream();
    let mut file = tokio::fs::File::create(to).await?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await?;
    }
    file.flush().await?;
    Ok(())
}

/// Whether a file starts the way every PDF does.
async fn starts_with_pdf_magic(path: &FsPath) -> anyhow::Result<bool> {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 5];
    let mut f = tokio::fs::File::open(path).await?;
    let n = f.read(&mut head).await?;
    Ok(n == head.len() && &head == b"%PDF-")
}

/// The `Pages:` line of `pdfinfo`'s report.
fn page_count(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=limits::PDF_PAGES_MAX).contains(n))
}

/// The images `pdftoppm` wrote (`page-1.jpg`, or `page-01.jpg` for longer documents), in
/// page order.
async fn rendered_pages(dir: &FsPath) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let name = e.file_name();
        let page = name
            .to_str()
            .and_then(|n| n.strip_prefix("page-"))
            .and_then(|n| n.strip_suffix(".jpg"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(page) = page {
            found.push((page, e.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Stores the images as pages 1, 2, …; how many were stored.
async fn store_images(objects: &Objects, object: &str, images: &[PathBuf]) -> anyhow::Result<u32> {
    let mut stored = 0;
    for (page, image) in (1..=limits::PREVIEW_PAGES).zip(images) {
        let key = preview_key(object, page)
            .ok_or_else(|| anyhow::anyhow!("{object} is not a file object"))?;
        let bytes = tokio::fs::read(image).await?;
        objects
            .store()
            .put(&ObjectPath::from(key.as_str()), bytes.into())
            .await?;
        stored = page;
    }
    Ok(stored)
}

/// Runs a poppler tool under the limits; its standard output, or `None` when the tool is
/// not installed. A failure, a kill or the deadline is an error.
async fn run_tool(tool: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<Option<String>> {
    if !*POPPLER {
        if !MISSING_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!("poppler-utils is not installed: PDFs get no page count or preview");
        }
        return Ok(None);
    }
    let mut cmd = if *PRLIMIT {
        let mut c = tokio::process::Command::new("prlimit");
        c.arg(format!("--as={TOOL_MEMORY}"))
            .arg(format!("--cpu={TOOL_CPU_SECONDS}"))
            .arg("--")
            .arg(tool);
        c
    } else {
        tokio::process::Command::new(tool)
    };
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn()?;
    let out = tokio::time::timeout(TOOL_DEADLINE, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("{tool} took longer than {TOOL_DEADLINE:?}"))??;
    anyhow::ensure!(
        out.status.success(),
        "{tool} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .chars()
            .take(300)
            .collect::<String>()
    );
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Whether `tool` starts at all (it is installed), asked with a harmless `flag`.
fn installed(tool: &str, flag: &str) -> bool {
    std::process::Command::new(tool)
        .arg(flag)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// A private temporary directory, removed with everything in it when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "stuffmart-preview-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove a preview's work directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_count_is_read_from_pdfinfo() {
        let info = "Title:          x\nPages:          12\nEncrypted:      no\n";
        assert_eq!(page_count(info), Some(12));
        assert_eq!(page_count("Pages: 0\n"), None);
        assert_eq!(page_count("Pages: lots\n"), None);
        assert_eq!(page_count("Title: Pages: 3\n"), None);
    }

    #[test]
    fn only_pdfs_by_type_or_name_are_tried() {
        let file = |name: &str, ty: &str| StoredFile {
            meta: ms_common::events::FileMeta {
                id: "f".into(),
                name: name.into(),
                size_bytes: 1,
                content_type: ty.into(),
                sha256: "0".repeat(64),
                pages: None,
                preview_urls: vec![],
            },
            object: "files/s/x".into(),
        };
        assert!(looks_like_pdf(&file("notes.bin", "application/pdf")));
        assert!(looks_like_pdf(&file(
            "NOTES.PDF",
            "application/octet-stream"
        )));
        assert!(!looks_like_pdf(&file("notes.zip", "application/zip")));
    }
}
