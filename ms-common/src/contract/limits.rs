//! The contract's limits, defined once: the services' input parsers enforce them, the
//! JSON Schemas (`docs/schemas/`) state them, and `docs/contract.md` lists them.

/// Longest stuff title, in characters after trimming.
pub const TITLE_MAX: usize = 120;
/// Longest stuff description, in characters.
pub const DESCRIPTION_MAX: usize = 2000;
/// Lowest price, in cents: Stripe's smallest charge (0.50 in EUR and USD), so every stuff
/// can be paid for by card. Also the smallest amount a coupon may leave to charge.
pub const PRICE_MIN: i64 = 50;
/// Highest price, in cents (one million in the currency's main unit).
pub const PRICE_MAX: i64 = 100_000_000;
/// Shortest course name, in characters (letters, digits, spaces or `-`).
pub const COURSE_MIN: usize = 2;
/// Longest course name, in characters.
pub const COURSE_MAX: usize = 20;
/// Longest search text (`stuff:list`'s `q`), in characters.
pub const SEARCH_MAX: usize = 100;
/// Page size when `limit` is not given.
pub const PAGE_LIMIT_DEFAULT: u32 = 20;
/// Largest page.
pub const PAGE_LIMIT_MAX: u32 = 100;
/// Longest page cursor, in bytes.
pub const CURSOR_MAX: usize = 1024;
/// Longest id a request may name (ids are opaque; longer ones cannot exist).
pub const ID_MAX: usize = 200;
/// Shortest password, in characters.
pub const PASSWORD_MIN: usize = 8;
/// Longest password, in characters.
pub const PASSWORD_MAX: usize = 128;
/// Shortest e-mail address.
pub const EMAIL_MIN: usize = 3;
/// Longest e-mail address (RFC 5321's path limit).
pub const EMAIL_MAX: usize = 254;
/// Most sales `order:sales` lists (the newest; the total counts every sale).
pub const SALES_MAX: u32 = 500;
/// How many courses `stuff:courses` answers with (the most listed first).
pub const COURSES_MAX: u32 = 100;
/// Largest cover image upload (PNG, JPEG or WebP), in bytes.
pub const COVER_MAX_BYTES: usize = 5 * 1024 * 1024;
/// Longest side of a stored cover thumbnail, in pixels.
pub const COVER_SIDE: u32 = 480;
/// Largest width or height of an image the router decodes for a cover (a small file can
/// declare a huge canvas: the decoder is stopped before it allocates one).
pub const COVER_DECODE_SIDE_MAX: u32 = 12_000;
/// How many first pages of a PDF are shown as preview images (public, before buying).
pub const PREVIEW_PAGES: u32 = 3;
/// The most pages a PDF may be recorded with (a count past it is not what a renderer said).
pub const PDF_PAGES_MAX: u32 = 1_000_000;
/// Shortest display name a user may choose, in characters after trimming.
pub const DISPLAY_NAME_MIN: usize = 2;
/// Longest display name, in characters (also the most of an e-mail's local part used as
/// the default name).
pub const DISPLAY_NAME_MAX: usize = 40;
/// Longest refresh token.
pub const REFRESH_TOKEN_MAX: usize = 256;
/// Longest payment method id.
pub const PAYMENT_METHOD_MAX: usize = 255;
/// Longest coupon code a client may type.
pub const COUPON_CODE_MAX: usize = 64;
/// Smallest coupon discount, in whole percent.
pub const PERCENT_OFF_MIN: i64 = 1;
/// Largest coupon discount (the stuff is free).
pub const PERCENT_OFF_MAX: i64 = 100;
/// Most redemptions a coupon may allow.
pub const MAX_REDEMPTIONS_MAX: i64 = 1_000_000_000;
/// Longest secret note a stuff may deliver, in characters.
pub const SECRET_NOTE_MAX: usize = 10_000;
/// Most files one stuff may deliver.
pub const FILES_MAX: usize = 10;
/// Longest file name kept, in characters (longer names are shortened, keeping the extension).
pub const FILE_NAME_MAX: usize = 255;
/// Longest content type kept.
pub const CONTENT_TYPE_MAX: usize = 127;
/// Most stored objects one `stuff:file-orphans` request may name (the router's sweeper
/// asks in batches of this size).
pub const ORPHAN_BATCH_MAX: usize = 100;
/// Longest object key a `stuff:file-orphans` request may name.
pub const OBJECT_KEY_MAX: usize = 300;
/// Largest Stripe webhook body the router takes (Stripe's events are a few KiB; a
/// PaymentIntent with its charges stays far below this).
pub const WEBHOOK_BODY_MAX: usize = 256 * 1024;
/// Longest `Stripe-Signature` header (a few signatures during a secret rollover).
pub const WEBHOOK_SIGNATURE_MAX: usize = 2048;
/// Lowest review rating (one star).
pub const RATING_MIN: i64 = 1;
/// Highest review rating (five stars).
pub const RATING_MAX: i64 = 5;
/// Longest review comment, in characters after trimming.
pub const REVIEW_COMMENT_MAX: usize = 1000;
/// Most reviews one `review:list` answers (the newest).
pub const REVIEW_LIST_MAX: u32 = 200;
