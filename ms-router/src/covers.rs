//! Cover images: `POST /api/stuff/{id}/cover` makes a thumbnail of the seller's image and
//! `GET /api/covers/{stuffId}/{name}` serves it to anyone, cached for good.
//!
//! The upload (at most `COVER_MAX_BYTES`) is decoded to prove it is a PNG, JPEG or WebP
//! image — whatever its name or declared type says — with the decoder's size limits set
//! so a small file that declares a huge canvas is refused before anything is allocated.
//! It is scaled to fit `COVER_SIDE` pixels, flattened onto white and stored as a JPEG
//! named by the hash of its bytes (a URL never changes its image, so browsers and CDNs may
//! keep it). ms-stuff then records it (`stuff:cover`, the seller's edit, with the same
//! refusals as `stuff:update`) and names the cover it replaced, which is deleted. A
//! refused record deletes the new thumbnail. Decoding runs on the blocking pool, at most
//! [`DECODING_AT_ONCE`] at a time.

use crate::AppState;
use crate::http::{BearerToken, CorrelationId};
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use ms_common::ApiError;
use ms_common::contract::{
    CoverReply, CoverSet, CoverSetRequest, INVALID_COVER, StuffAction, limits,
};
use ms_common::files::{cover_key, cover_stuff, hex_encode};
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::sync::LazyLock;
use tokio::sync::Semaphore;

/// How many covers this process decodes at once (each may take tens of milliseconds of
/// CPU and a few tens of MiB).
pub const DECODING_AT_ONCE: usize = 2;

/// The most memory the decoder may take for one image.
const DECODE_ALLOC_MAX: u64 = 256 * 1024 * 1024;

/// JPEG quality of a stored thumbnail.
const JPEG_QUALITY: u8 = 85;

/// Room for the multipart framing around the image.
const MULTIPART_SLACK: usize = 64 * 1024;

static DECODING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(DECODING_AT_ONCE));

/// The cover routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/stuff/{id}/cover", post(upload_cover))
        .route("/api/covers/{stuff}/{name}", get(serve_cover))
        .layer(DefaultBodyLimit::max(
            limits::COVER_MAX_BYTES + MULTIPART_SLACK,
        ))
}

fn invalid() -> ApiError {
    ApiError::field("file", INVALID_COVER)
}

/// The `file` part's bytes, at most `COVER_MAX_BYTES` (more is not a cover StuffMart
/// takes).
async fn cover_bytes(mut multipart: Multipart) -> Result<Vec<u8>, ApiError> {
    let malformed = |_| invalid();
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() != Some("file") {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if bytes.len() + chunk.len() > limits::COVER_MAX_BYTES {
                return Err(invalid());
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(bytes);
    }
    Err(ApiError::field("file", crate::files::FILE_REQUIRED))
}

/// Why an upload is not a cover.
#[derive(Debug, thiserror::Error)]
pub enum CoverError {
    /// Not one of the formats taken, by its bytes.
    #[error("not a PNG, JPEG or WebP image")]
    Format,
    /// The decoder refused it (broken, or over the size limits).
    #[error("undecodable: {0}")]
    Decode(#[from] image::ImageError),
    /// Its first bytes could not be read to tell the format.
    #[error("unreadable: {0}")]
    Read(#[from] std::io::Error),
}

/// Decodes `bytes` as a PNG, JPEG or WebP image (by content) within the size limits, and
/// makes the thumbnail: at most `COVER_SIDE` a side, alpha flattened onto white, JPEG.
pub fn thumbnail(bytes: &[u8]) -> Result<Vec<u8>, CoverError> {
    let mut reader = image::io::Reader::new(Cursor::new(bytes)).with_guessed_format()?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)
    ) {
        return Err(CoverError::Format);
    }
    let mut limits = image::io::Limits::default();
    limits.max_image_width = Some(limits::COVER_DECODE_SIDE_MAX);
    limits.max_image_height = Some(limits::COVER_DECODE_SIDE_MAX);
    limits.max_alloc = Some(DECODE_ALLOC_MAX);
    reader.limits(limits);
    let image = reader.decode()?;
    // Shrunk to fit, never enlarged.
    let side = limits::COVER_SIDE;
    let small = if image.width() > side || image.height() > side {
        image.thumbnail(side, side)
    } else {
        image
    };
    let rgb = on_white(&small);
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&DynamicImage::ImageRgb8(rgb))?;
    Ok(out.into_inner())
}

/// The image's pixels over a white background (JPEG has no transparency).
fn on_white(image: &DynamicImage) -> RgbImage {
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| {
            let c = u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a));
            u8::try_from(c / 255).unwrap_or(u8::MAX)
        };
        Rgb([over(r), over(g), over(b)])
    })
}

/// `POST /api/stuff/{id}/cover` (the seller; multipart part `file`) → 200 `{coverUrl}`.
async fn upload_cover(
    State(s): State<AppState>,
    Extension(cid): Extension<CorrelationId>,
    Path(stuff_id): Path<String>,
    BearerToken(token): BearerToken,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<CoverReply>, ApiError> {
    let multipart = multipart.map_err(|_| ApiError::field("file", crate::files::FILE_REQUIRED))?;
    let bytes = cover_bytes(multipart).await?;
    let thumb = {
        let _permit = DECODING.acquire().await.map_err(ApiError::internal_from)?;
        tokio::task::spawn_blocking(move || thumbnail(&bytes))
            .await
            .map_err(ApiError::internal_from)?
            .map_err(|e| {
                tracing::info!(error = %e, "cover refused");
                invalid()
            })?
    };
    let key = cover_key(&stuff_id, &hex_encode(&Sha256::digest(&thumb)));
    if cover_stuff(&key) != Some(stuff_id.as_str()) {
        // An id no stuff can have (ms-stuff would say the same).
        return Err(ApiError::not_found("Stuff not found"));
    }
    let objects = &s.files.objects;
    objects
        .store()
        .put(&ObjectPath::from(key.as_str()), thumb.into())
        .await
        .map_err(ApiError::internal_from)?;
    let req = CoverSetRequest {
        stuff_id,
        object: key.clone(),
    };
    let req = serde_json::to_value(req).map_err(ApiError::internal_from)?;
    let set = match s
        .rpc
        .request(StuffAction::Cover, Some(token), req, &cid.0)
        .await
    {
        Ok(reply) => serde_json::from_value::<CoverSet>(reply).map_err(ApiError::internal_from)?,
        // The record may have been written before the reply was lost: keep the image.
        Err(e) if e.status == 503 => return Err(e),
        Err(e) => {
            if let Err(del) = objects.delete(&key).await {
                tracing::warn!(object = key, error = %del, "could not delete a refused cover");
            }
            return Err(e);
        }
    };
    if let Some(old) = set.replaced
        && let Err(e) = objects.delete(&old).await
    {
        tracing::warn!(object = old, error = %e, "could not delete a replaced cover");
    }
    let cover_url = set.stuff.cover_url.ok_or_else(ApiError::internal)?;
    Ok(Json(CoverReply { cover_url }))
}

/// `GET /api/covers/{stuffId}/{name}`: anyone; the name is the hash of the bytes, so the
/// answer may be cached for good.
async fn serve_cover(
    State(s): State<AppState>,
    Path((stuff, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = format!("covers/{stuff}/{name}");
    if cover_stuff(&key).is_none() {
        return Err(ApiError::not_found("Cover not found"));
    }
    serve_jpeg(&s, &key, &name, "Cover not found").await
}

/// Serves a stored JPEG whose key never names other bytes (a cover, a PDF preview):
/// cached for good, with the name as its `ETag`; 404 `missing` when it is not there.
pub(crate) async fn serve_jpeg(
    s: &AppState,
    key: &str,
    name: &str,
    missing: &'static str,
) -> Result<Response, ApiError> {
    let got = match s.files.objects.store().get(&ObjectPath::from(key)).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => return Err(ApiError::not_found(missing)),
        Err(e) => return Err(ApiError::internal_from(e)),
    };
    let bytes = got.bytes().await.map_err(ApiError::internal_from)?;
    let etag = HeaderValue::from_str(&format!("\"{name}\"")).map_err(ApiError::internal_from)?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgba, RgbaImage};

    fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn thumbnails_fit_the_side_keep_the_shape_and_are_jpeg() {
        let wide =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(1200, 600, Rgba([0, 0, 255, 255])));
        for format in [ImageFormat::Png, ImageFormat::Jpeg] {
            let source = if format == ImageFormat::Jpeg {
                DynamicImage::ImageRgb8(wide.to_rgb8())
            } else {
                wide.clone()
            };
            let thumb = thumbnail(&encoded(&source, format)).unwrap();
            let back = image::load_from_memory(&thumb).unwrap();
            assert_eq!(image::guess_format(&thumb).unwrap(), ImageFormat::Jpeg);
            assert_eq!((back.width(), back.height()), (480, 240), "{format:?}");
        }
        // Small images are not enlarged.
        let small = DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 30, Rgba([1, 2, 3, 255])));
        let back = image::load_from_memory(&thumbnail(&encoded(&small, ImageFormat::Png)).unwrap())
            .unwrap();
        assert_eq!((back.width(), back.height()), (40, 30));
    }

    #[test]
    fn transparency_becomes_white() {
        let clear: RgbaImage = ImageBuffer::from_pixel(8, 8, Rgba([0, 0, 0, 0]));
        let thumb =
            thumbnail(&encoded(&DynamicImage::ImageRgba8(clear), ImageFormat::Png)).unwrap();
        let back = image::load_from_memory(&thumb).unwrap().to_rgb8();
        assert!(
            back.pixels().all(|p| p.0.iter().all(|c| *c > 245)),
            "white, not black"
        );
    }

    #[test]
    fn anything_else_is_refused_whatever_it_claims() {
        assert!(matches!(
            thumbnail(b"GIF89a not really"),
            Err(CoverError::Format | CoverError::Decode(_))
        ));
        assert!(thumbnail(b"%PDF-1.7 a document").is_err());
        assert!(thumbnail(b"").is_err());
        let gif = encoded(
            &DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, Rgba([9, 9, 9, 255]))),
            ImageFormat::Png,
        );
        // A PNG cut short is broken.
        assert!(thumbnail(&gif[..gif.len() / 2]).is_err());
    }

    #[test]
    fn a_small_file_declaring_a_huge_canvas_is_refused_before_decoding() {
        // A valid PNG header (IHDR) that declares 100000 x 100000 pixels.
        let mut png = Vec::new();
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(b"IHDR");
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&100_000u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
        assert!(matches!(thumbnail(&png), Err(CoverError::Decode(_))));
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
