//! Shareable stuff pages: `GET /stuff/{id}` answers the web client's `index.html` with the
//! stuff in its head (`<title>`, Open Graph tags, a JSON-LD `Product` with price and
//! availability), so a link pasted into a chat or found by a search engine shows what it
//! is. The app itself still renders the page in the browser; this is the lean kind of
//! server-side rendering: metadata only, every value escaped, cached briefly.

use crate::AppState;
use crate::http::CorrelationId;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ms_common::contract::{IdRequest, Stuff, StuffAction, limits};
use ms_common::events::StuffStatus;
use std::fmt::Write as _;
use std::sync::Arc;

/// How long a shared page may be cached (titles and prices change rarely; status does).
const CACHE_SECONDS: u32 = 60;
/// The longest description put in the head (link previews show a line or two).
const SUMMARY_CHARS: usize = 200;

/// The web client's `index.html`, read once when the router starts.
#[derive(Clone)]
pub struct Shell(Arc<String>);

impl Shell {
    /// Reads `index.html` from the static directory.
    pub fn read(dir: &std::path::Path) -> std::io::Result<Self> {
        Ok(Self(Arc::new(std::fs::read_to_string(
            dir.join("index.html"),
        )?)))
    }
}

/// `GET /stuff/{id}`: the app with the stuff in its head; an unknown id gets the plain app
/// with 404 (the app shows its own "not found"). When ms-stuff cannot answer, the plain
/// app is served uncached, so a visitor still gets a working page.
pub async fn stuff_page(
    State(s): State<AppState>,
    Extension(shell): Extension<Shell>,
    Extension(cid): Extension<CorrelationId>,
    Path(id): Path<String>,
) -> Response {
    if id.is_empty() || id.len() > limits::ID_MAX {
        return html(StatusCode::NOT_FOUND, shell.0.as_str().to_owned(), None);
    }
    let req = match serde_json::to_value(IdRequest { id }) {
        Ok(v) => v,
        Err(_) => return html(StatusCode::OK, shell.0.as_str().to_owned(), None),
    };
    let reply = s.rpc.request(StuffAction::Get, None, req, &cid.0).await;
    match reply.map(serde_json::from_value::<Stuff>) {
        Ok(Ok(stuff)) => {
            let head = head_of(&stuff, s.cfg.currency.as_str());
            html(
                StatusCode::OK,
                with_head(&shell.0, &stuff.title, &head),
                Some(CACHE_SECONDS),
            )
        }
        Err(e) if e.status == 404 || e.status == 400 => {
            html(StatusCode::NOT_FOUND, shell.0.as_str().to_owned(), None)
        }
        Ok(Err(_)) | Err(_) => html(StatusCode::OK, shell.0.as_str().to_owned(), None),
    }
}

fn html(status: StatusCode, body: String, cache: Option<u32>) -> Response {
    let cache = match cache {
        Some(secs) => format!("public, max-age={secs}"),
        None => "no-cache".to_owned(),
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// Text made safe inside an HTML element or a quoted attribute.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON made safe inside a `<script>` element: no `<`, `>` or `&` (so no `</script>` and
/// no `<!--`), and no line separators that older parsers choke on.
fn escape_script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The first [`SUMMARY_CHARS`] characters of the description, or a line about the stuff.
fn summary(stuff: &Stuff) -> String {
    let text = stuff
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if text.is_empty() {
        return match &stuff.course {
            Some(course) => format!("Study material for {course} on StuffMart"),
            None => "Study material on StuffMart".to_owned(),
        };
    }
    match text.char_indices().nth(SUMMARY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// schema.org's availability for a status.
fn availability(status: StuffStatus) -> &'static str {
    match status {
        StuffStatus::Available => "https://schema.org/InStock",
        StuffStatus::Reserved => "https://schema.org/LimitedAvailability",
        StuffStatus::Sold => "https://schema.org/SoldOut",
        StuffStatus::Withdrawn => "https://schema.org/Discontinued",
    }
}

/// The tags that describe `stuff`, every value escaped.
fn head_of(stuff: &Stuff, currency: &str) -> String {
    let title = escape_html(&stuff.title);
    let about = summary(stuff);
    let description = escape_html(&about);
    let price = format!("{}.{:02}", stuff.price_cents / 100, stuff.price_cents % 100);
    let currency = currency.to_ascii_uppercase();
    let product = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "Product",
        "name": stuff.title,
        "description": about,
        "category": stuff.course,
        "image": stuff.cover_url,
        "offers": {
            "@type": "Offer",
            "price": price,
            "priceCurrency": currency,
            "availability": availability(stuff.status),
            "seller": {"@type": "Person", "name": stuff.seller.display_name},
        },
    });
    let mut head = String::new();
    let _ = writeln!(
        head,
        r#"<meta name="description" content="{description}" />"#
    );
    let _ = writeln!(head, r#"<meta property="og:type" content="product" />"#);
    let _ = writeln!(
        head,
        r#"<meta property="og:site_name" content="StuffMart" />"#
    );
    let _ = writeln!(head, r#"<meta property="og:title" content="{title}" />"#);
    let _ = writeln!(
        head,
        r#"<meta property="og:description" content="{description}" />"#
    );
    let _ = writeln!(
        head,
        r#"<meta property="product:price:amount" content="{price}" />"#
    );
    let _ = writeln!(
        head,
        r#"<meta property="product:price:currency" content="{currency}" />"#
    );
    // The cover, by its path (a Host header is not trusted to build an absolute URL into
    // a page shared caches keep; crawlers resolve it against the page's own URL).
    if let Some(cover) = &stuff.cover_url {
        let cover = escape_html(cover);
        let _ = writeln!(head, r#"<meta property="og:image" content="{cover}" />"#);
    }
    let _ = writeln!(head, r#"<meta name="twitter:card" content="summary" />"#);
    let _ = writeln!(
        head,
        r#"<script type="application/ld+json">{}</script>"#,
        escape_script_json(&product.to_string())
    );
    head
}

/// The shell with its `<title>` (and its generic description) replaced and `head` added
/// before `</head>`; a shell without those gets the tags at the start.
fn with_head(shell: &str, title: &str, head: &str) -> String {
    let mut page = shell.to_owned();
    let title_tag = format!("<title>{} · StuffMart</title>", escape_html(title));
    if let (Some(start), Some(end)) = (page.find("<title>"), page.find("</title>"))
        && start < end
    {
        page.replace_range(start..end + "</title>".len(), &title_tag);
    }
    // The shell's own description would be a second, generic one.
    if let Some(start) = page.find(r#"<meta name="description""#)
        && let Some(len) = page[start..].find('>')
    {
        page.replace_range(start..=start + len, "");
    }
    let tags = if page.contains(&title_tag) {
        head.to_owned()
    } else {
        format!("{title_tag}\n{head}")
    };
    match page.find("</head>") {
        Some(at) => page.insert_str(at, &tags),
        None => page.insert_str(0, &tags),
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn stuff(title: &str, description: &str) -> Stuff {
        Stuff {
            id: "s1".into(),
            title: title.into(),
            description: description.into(),
            price_cents: 1205,
            seller_id: "u1".into(),
            seller: ms_common::contract::Seller {
                id: "u1".into(),
                display_name: "</script>Ada".into(),
            },
            status: StuffStatus::Sold,
            version: 3,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            files: vec![],
            has_secret_note: true,
            course: Some("CS 101".into()),
            cover_url: None,
            rating: ms_common::contract::StuffRating::of(0, 0),
        }
    }

    const SHELL: &str = "<!doctype html><html><head><meta name=\"description\" content=\"generic\" /><title>StuffMart</title></head><body><div id=\"root\"></div></body></html>";

    #[test]
    fn a_cover_is_the_shared_image() {
        let mut s = stuff("Notes", "");
        assert!(!head_of(&s, "eur").contains("og:image"));
        s.cover_url = Some("/api/covers/s1/0123456789abcdef0123456789abcdef.jpg".into());
        let head = head_of(&s, "eur");
        assert!(head.contains(
            r#"<meta property="og:image" content="/api/covers/s1/0123456789abcdef0123456789abcdef.jpg" />"#
        ));
        assert!(head.contains(r#""image":"/api/covers/s1/0123456789abcdef0123456789abcdef.jpg""#));
    }

    #[test]
    fn nothing_a_seller_types_breaks_out_of_the_head() {
        let evil = r#"</title></script><script>alert("x")</script> & 'quotes' <!--"#;
        let s = stuff(evil, evil);
        let page = with_head(SHELL, &s.title, &head_of(&s, "eur"));
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<!--"));
        assert_eq!(
            page.matches("</script>").count(),
            1,
            "only the JSON-LD's own"
        );
        assert_eq!(page.matches("<title>").count(), 1);
        assert!(
            !page.contains("generic"),
            "the shell's description is replaced"
        );
        assert!(page.contains("&lt;/title&gt;&lt;/script&gt;"));
        // The JSON-LD still says exactly what the seller typed.
        let start = page.find(r#"<script type="application/ld+json">"#).unwrap()
            + r#"<script type="application/ld+json">"#.len();
        let end = start + page[start..].find("</script>").unwrap();
        let ld: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(ld["name"], evil);
        assert_eq!(
            (
                &ld["offers"]["price"],
                &ld["offers"]["priceCurrency"],
                &ld["offers"]["availability"]
            ),
            (
                &serde_json::json!("12.05"),
                &serde_json::json!("EUR"),
                &serde_json::json!("https://schema.org/SoldOut")
            )
        );
        assert_eq!(ld["category"], "CS 101");
        assert!(page.ends_with("<div id=\"root\"></div></body></html>"));
    }

    #[test]
    fn long_descriptions_are_cut_and_empty_ones_described() {
        let s = stuff("Notes", &"word ".repeat(100));
        let sum = summary(&s);
        assert_eq!(sum.chars().count(), SUMMARY_CHARS + 1);
        assert!(sum.ends_with('…'));
        assert_eq!(
            summary(&stuff("Notes", "  ")),
            "Study material for CS 101 on StuffMart"
        );
        let bare = with_head("<html><body></body></html>", "T", "<meta x />\n");
        assert!(bare.starts_with("<title>T · StuffMart</title>"));
    }
}
