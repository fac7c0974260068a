// Reviews and covers ("Marketplace": `review:create`, `review:list`, `Stuff.rating`,
// `POST /api/stuff/{id}/cover`, `GET /api/covers/{stuffId}/{name}`).
//
// reviews:
// - A seller lists a stuff (with the default private note); its page reads "No reviews yet" and
//   "No reviews yet. Reviews come from people who bought this."
// - A buyer buys it with `pm_card_visa`. The complete order page shows "Review this stuff": a
//   1–5 star radio group ("Your rating"), "Comment (optional)" with a counter, "Submit review".
// - Submitting with no rating and a 1001-character comment is refused on the fields, nothing sent:
//   `Choose a rating from 1 to 5 stars`, `Comment must be at most 1000 characters`, the counter
//   "1001 / 1000 characters".
// - 4 stars and a comment are sent: the form is replaced by "Thanks for your review" (which takes
//   the focus) and the review (the buyer's name, 4 stars, the comment); no form is left to send it
//   again, and after a reload the order page reads "You reviewed this. See the reviews".
// - A visitor (not signed in) opens the stuff page: the rating reads `★ 4.0 (1)` ("Rated 4.0 out of
//   5 from 1 review"; ms-stuff adds it within moments, so the page is loaded again until it does),
//   and Reviews lists the review with the buyer's display name (the e-mail's local part), 4 stars
//   and the comment.
// - axe-core on the order page with the form (with the errors, filled in) and with the thanks, and on
//   the stuff page with the review at 1280 and 390 px; full-page screenshots at both widths.
//
// covers:
// - A seller lists a stuff and opens its edit page (Edit on the stuff page, `/stuff/{id}/edit`):
//   the Cover form reads "No cover image yet.". A 900x600 PNG (written here with zlib, CRC-correct
//   IHDR/IDAT/IEND) is chosen with "Cover image" and sent with "Upload cover": "Cover updated", and
//   the preview shows the new cover (`/api/covers/…`), loaded.
// - A visitor's catalogue card and stuff page show that cover: an `<img>` whose `src` starts with
//   `/api/covers/`, loaded, at most 480 px wide (the server's thumbnail of a 3:2 image keeps its
//   shape), served as `image/jpeg`.
// - A file named `fake.png` whose bytes are not an image (the browser calls it image/png, so the
//   client sends it) is refused by the server on the field: `Cover must be a PNG, JPEG or WebP
//   image`, the input aria-invalid, described by the message and focused; the cover is unchanged.
// - axe-core on the edit page after saving and with the error, and on the visitor's stuff page.
//
// The hold is 3 s (ORDER_HOLD_SECONDS=3): paying orders again when the hold ran out first.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { DESKTOP, NARROW, STEP_MS, buyAndPayWithRetries, seeAfterReloads, scenario, uniqueTitle, until } from './lib/harness.mjs';

const NO_REVIEWS_TEXT = 'No reviews yet';
const NO_REVIEWS_MESSAGE = 'No reviews yet. Reviews come from people who bought this.';
const RATING_REQUIRED_MESSAGE = 'Choose a rating from 1 to 5 stars';
const COMMENT_TOO_LONG_MESSAGE = 'Comment must be at most 1000 characters';
const THANKS_MESSAGE = 'Thanks for your review';
const COVER_SAVED = 'Cover updated';
const COVER_INVALID = 'Cover must be a PNG, JPEG or WebP image';
/** The server's thumbnails fit 480 px. */
const COVER_SIDE = 480;

/** The e-mail's local part: the name of an account whose owner never chose one. */
const localPart = (email) => email.slice(0, email.lastIndexOf('@'));

// ---- a real PNG, written here ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A `width`x`height` PNG of one colour: 8-bit RGB, no interlace, every row filter 0. */
function solidPng(width, height, [r, g, b]) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter method
  ihdr[12] = 0; // no interlace
  const row = Buffer.alloc(1 + width * 3);
  for (let x = 0; x < width; x += 1) {
    row[1 + x * 3] = r;
    row[2 + x * 3] = g;
    row[3 + x * 3] = b;
  }
  const raw = Buffer.concat(Array.from({ length: height }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Waits until `locator` has no text (`Actor.seeText` waits for a non-empty text). */
async function seeEmpty(actor, locator, what, timeoutMs = STEP_MS) {
  await until(
    `[${actor.label}] expected ${what} to be empty, on ${actor.page.url()}`,
    async () => ((await locator.first().textContent({ timeout: 500 })) ?? '').trim() === '',
    timeoutMs,
  );
}

/** Scrolls `img` into view (covers are lazy-loaded) and waits until it has loaded; returns its src and size. */
async function seeLoadedImage(actor, img, what) {
  await actor.see(img, what, STEP_MS);
  await img.first().scrollIntoViewIfNeeded();
  return until(
    `[${actor.label}] expected ${what} to load (complete, naturalWidth > 0), on ${actor.page.url()}`,
    async () => {
      const r = await img.first().evaluate((el) => ({
        complete: el.complete,
        width: el.naturalWidth,
        height: el.naturalHeight,
        src: el.getAttribute('src'),
        alt: el.getAttribute('alt'),
      }));
      return r.complete && r.width > 0 ? r : null;
    },
    STEP_MS,
  );
}

/** A loaded cover on a page others see: from /api/covers/, the thumbnail's size and shape. */
function assertCover(label, what, r, coverUrl) {
  if (!(r.src ?? '').startsWith('/api/covers/')) throw new Error(`[${label}] ${what}'s src is ${r.src}, not under /api/covers/`);
  if (r.src !== coverUrl) throw new Error(`[${label}] ${what} shows ${r.src}, the edit page saved ${coverUrl}`);
  if (r.width > COVER_SIDE || r.height > COVER_SIDE) throw new Error(`[${label}] ${what} is ${r.width}x${r.height}, larger than the ${COVER_SIDE} px thumbnail`);
  if (Math.abs(r.width / r.height - 1.5) > 0.02) throw new Error(`[${label}] ${what} is ${r.width}x${r.height}: the 900x600 upload lost its 3:2 shape`);
}

scenario('reviews: the buyer of a paid order reviews it once; the stuff page shows ★ 4.0 (1) and the review to anyone', async (sc) => {
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([seller.signUp(), buyer.signUp()]);
  const title = uniqueTitle('Linear algebra summary');
  const id = await seller.sell({ title, price: '6.00', description: 'Every theorem of the course on four pages.' });

  // Before any review.
  const sellerPage = seller.tid('stuff-page');
  await seller.seeText(sellerPage.getByTestId('rating'), NO_REVIEWS_TEXT, 'the rating before any review');
  await seller.seeText(sellerPage.getByTestId('reviews-empty'), NO_REVIEWS_MESSAGE, 'the empty Reviews', STEP_MS);

  // The buyer pays; the complete order offers the review form.
  const orderId = await buyAndPayWithRetries(buyer, id, title);
  const section = buyer.tid('order-review');
  await buyer.see(section, 'the "Review this stuff" section of the complete order', STEP_MS);
  await buyer.seeText(section.locator('h2'), 'Review this stuff', 'the review section heading');
  const form = section.getByTestId('review-form');
  await buyer.see(form, 'the review form');
  await buyer.seeText(form.locator('legend'), 'Your rating', 'the rating legend');
  for (let n = 1; n <= 5; n += 1) {
    const name = `${n} ${n === 1 ? 'star' : 'stars'}`;
    const radio = form.getByRole('radio', { name, exact: true });
    if ((await radio.getAttribute('data-testid')) !== `review-rating-${n}`) throw new Error(`[buyer] the radio named "${name}" is not review-rating-${n}`);
    if (await radio.isChecked()) throw new Error(`[buyer] "${name}" is chosen before the buyer chose`);
  }
  const comment = form.getByLabel('Comment (optional)', { exact: true });
  if ((await comment.getAttribute('data-testid')) !== 'review-comment-input') throw new Error('[buyer] the field labelled "Comment (optional)" is not review-comment-input');
  await buyer.seeText(form.getByTestId('comment-counter'), '0 / 1000 characters', 'the empty comment counter');
  await buyer.seeText(form.getByTestId('review-submit'), 'Submit review', 'the Submit button');

  // Refused on the fields, nothing sent: no rating, and a comment one character too long.
  await comment.fill('x'.repeat(1001));
  await buyer.seeText(form.getByTestId('comment-counter'), '1001 / 1000 characters', 'the counter over the limit');
  await form.getByTestId('review-submit').click();
  await buyer.seeText(form.getByTestId('error-rating'), RATING_REQUIRED_MESSAGE, 'the rating error', STEP_MS);
  await buyer.seeText(form.getByTestId('error-comment'), COMMENT_TOO_LONG_MESSAGE, 'the comment error', STEP_MS);
  if ((await comment.getAttribute('aria-invalid')) !== 'true') throw new Error('[buyer] the too-long comment is not aria-invalid');
  const describedBy = ((await comment.getAttribute('aria-describedby')) ?? '').split(' ');
  if (!describedBy.includes('error-comment') || !describedBy.includes('comment-counter')) {
    throw new Error(`[buyer] the comment is described by "${describedBy.join(' ')}", not by its error and counter`);
  }
  if ((await buyer.tid('review-thanks').count()) > 0) throw new Error('[buyer] a refused review was thanked for');
  await buyer.shot('review-form-errors', { fullPage: true });
  await buyer.checkA11y('the order page with the review form and its errors');

  // 4 stars and a comment.
  const text = 'Clear, complete and well organised: it got me through the exam.';
  await form.getByTestId('review-rating-4').check();
  await comment.fill(text);
  await buyer.seeText(form.getByTestId('comment-counter'), `${[...text].length} / 1000 characters`, 'the comment counter');
  await until('[buyer] expected the field errors to go once the fields changed', async () => (await form.locator('.field-error').count()) === 0, STEP_MS);
  await buyer.shot('review-form-filled', { fullPage: true });
  await buyer.checkA11y('the order page with the review form filled in');
  await form.getByTestId('review-submit').click();

  // Thanked, with the review; no form left to send it again.
  await buyer.seeText(section.getByTestId('review-thanks'), THANKS_MESSAGE, 'the thanks', STEP_MS).catch(async (e) => {
    const err = await section.locator('[data-testid="review-form-error"], [data-testid="review-error"]').allTextContents().catch(() => []);
    throw new Error(`${e.message}${err.length ? `; shown instead: ${err.join(' | ')}` : ''}`);
  });
  const mine = section.getByTestId('my-review');
  await buyer.seeText(mine.getByTestId('review-author'), localPart(buyer.email), 'the reviewer on the submitted review');
  await buyer.seeText(mine.getByTestId('review-stars'), '★★★★☆', 'the stars of the submitted review');
  if ((await mine.getByTestId('review-stars').getAttribute('data-rating')) !== '4') throw new Error('[buyer] the submitted review is not 4 stars');
  await buyer.seeText(mine.getByTestId('review-comment'), text, 'the comment of the submitted review');
  if ((await buyer.tid('review-form').count()) > 0 || (await buyer.tid('review-submit').count()) > 0) throw new Error('[buyer] the review form is still there after sending');
  await until('[buyer] expected the thanks to take the focus', () => buyer.page.evaluate(() => document.activeElement?.getAttribute('data-testid') === 'review-thanks'), STEP_MS);
  await buyer.shot('review-thanks', { fullPage: true });
  await buyer.checkA11y('the order page with the thanks for the review');

  // Reloaded: the order says it was reviewed, and offers no form.
  await buyer.page.reload();
  await buyer.see(`[data-testid="order-page"][data-order-id="${orderId}"][data-status="complete"]`, 'the complete order after a reload', STEP_MS);
  await buyer.seeText(buyer.tid('order-reviewed'), 'You reviewed this. See the reviews', 'the reviewed order', STEP_MS);
  const seeReviews = await buyer.tid('order-reviewed').getByRole('link', { name: 'See the reviews', exact: true }).getAttribute('href');
  if (seeReviews !== `/stuff/${encodeURIComponent(id)}`) throw new Error(`[buyer] "See the reviews" goes to ${seeReviews}`);
  if ((await buyer.tid('review-form').count()) > 0 || (await buyer.tid('order-review').count()) > 0) throw new Error('[buyer] the reviewed order offers the review form again');

  // Anyone: the stuff page's rating and the review.
  const visitor = await sc.actor('visitor');
  const url = `/stuff/${encodeURIComponent(id)}`;
  const rating = () => visitor.page.locator('[data-testid="stuff-page"] .card-meta [data-testid="rating"]');
  await seeAfterReloads(visitor, url, '[data-testid="stuff-page"]', rating, '★ 4.0 (1)', 'the rating of the stuff page');
  await visitor.seeText(visitor.tid('stuff-title'), title, 'the stuff title');
  if ((await rating().getAttribute('aria-label')) !== 'Rated 4.0 out of 5 from 1 review') {
    throw new Error(`[visitor] the rating reads "${await rating().getAttribute('aria-label')}" to a screen reader`);
  }
  if ((await rating().getAttribute('data-count')) !== '1') throw new Error('[visitor] the rating does not count one review');
  const reviews = visitor.tid('reviews');
  await visitor.seeText(reviews.locator('h2'), 'Reviews', 'the Reviews heading');
  await visitor.seeText(reviews.getByTestId('reviews-rating'), '★ 4.0 (1)', 'the rating in Reviews', STEP_MS);
  const items = reviews.locator('[data-testid="review-list"] article.review');
  await visitor.see(items, 'the review in Reviews', STEP_MS);
  if ((await items.count()) !== 1) throw new Error(`[visitor] Reviews lists ${await items.count()} reviews, not 1`);
  await visitor.seeText(items.getByTestId('review-author'), localPart(buyer.email), 'the reviewer (the buyer’s display name)');
  await visitor.seeText(items.getByTestId('review-stars'), '★★★★☆', 'the review’s stars');
  if ((await items.getByTestId('review-stars').getAttribute('aria-label')) !== '4 stars') throw new Error('[visitor] the review’s stars are not read as "4 stars"');
  await visitor.seeText(items.getByTestId('review-comment'), text, 'the review’s comment');
  if ((await reviews.getByTestId('reviews-empty').count()) > 0) throw new Error('[visitor] "No reviews yet" next to a review');
  await visitor.waitConnected();
  await reviews.scrollIntoViewIfNeeded();
  await visitor.shot('stuff-page-with-review-1280', { fullPage: true });
  await visitor.checkA11y('the stuff page with a review');

  await visitor.page.setViewportSize(NARROW);
  await visitor.see(items, 'the review at 390 px');
  await visitor.shot('stuff-page-with-review-390', { fullPage: true });
  await visitor.assertNoHorizontalOverflow('the stuff page with a review (390 px)');
  await visitor.checkA11y('the stuff page with a review (390 px)');
  await visitor.page.setViewportSize(DESKTOP);
});

scenario('covers: the seller uploads a PNG cover on the edit page; the card and the stuff page show its thumbnail; a fake PNG is refused', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-covers-'));
  try {
    const pngPath = join(dir, 'cover.png');
    writeFileSync(pngPath, solidPng(900, 600, [32, 96, 160]));
    const fakePath = join(dir, 'fake.png');
    writeFileSync(fakePath, Buffer.from('This is a text file that only calls itself a PNG.\n'.repeat(20), 'utf8'));

    const seller = await sc.actor('seller');
    await seller.signUp();
    const title = uniqueTitle('Cell biology diagrams');
    const id = await seller.sell({ title, price: '4.50' });

    // The edit page, from the stuff page's Edit.
    await seller.tid('edit-link').click();
    await until(`[seller] expected the address /stuff/${id}/edit`, () => new URL(seller.page.url()).pathname === `/stuff/${encodeURIComponent(id)}/edit`, STEP_MS);
    await seller.seeText(seller.page.locator('h1'), 'Edit stuff', 'the page heading');
    const coverForm = await seller.see('[data-testid="cover-form"]', 'the Cover form', STEP_MS);
    await seller.seeText(coverForm.locator('h2'), 'Cover', 'the Cover heading');
    const preview = coverForm.getByTestId('cover-preview');
    await seller.seeText(preview, 'No cover image yet.', 'the preview before any cover');
    if ((await preview.getAttribute('data-cover-url')) !== '') throw new Error('[seller] the new stuff has a cover already');
    const input = coverForm.getByLabel('Cover image', { exact: true });
    if ((await input.getAttribute('data-testid')) !== 'cover-input') throw new Error('[seller] the field labelled "Cover image" is not cover-input');
    await seller.seeText(coverForm.getByTestId('cover-submit'), 'Upload cover', 'the upload button');

    // A real PNG: saved, and the preview shows it.
    await input.setInputFiles(pngPath);
    await coverForm.getByTestId('cover-submit').click();
    await seller.seeText(coverForm.getByTestId('cover-saved'), COVER_SAVED, 'the saved message', STEP_MS).catch(async (e) => {
      const err = await coverForm.getByTestId('error-cover').textContent({ timeout: 500 }).catch(() => null);
      throw new Error(`${e.message}${err ? `; error shown: "${err}"` : ''}`);
    });
    const coverUrl = await until('[seller] expected the preview to name the new cover', async () => {
      const u = await preview.getAttribute('data-cover-url');
      return u && u.startsWith('/api/covers/') ? u : null;
    }, STEP_MS);
    const shown = await seeLoadedImage(seller, preview.locator('img'), 'the cover preview');
    if (shown.src !== coverUrl) throw new Error(`[seller] the preview shows ${shown.src}, not ${coverUrl}`);
    if (shown.alt !== `Cover of ${title}`) throw new Error(`[seller] the preview's alt is "${shown.alt}"`);
    if ((await coverForm.getByTestId('error-cover').count()) > 0) throw new Error('[seller] an error next to a saved cover');
    if ((await input.inputValue()) !== '') throw new Error('[seller] the file input still holds the uploaded file');
    await seller.shot('edit-page-cover-saved', { fullPage: true });
    await seller.checkA11y('the edit page with a saved cover');

    // Anyone: the catalogue card and the stuff page show the thumbnail.
    const visitor = await sc.actor('visitor');
    await visitor.openCatalogue();
    const card = visitor.tid(`stuff-card-${id}`);
    await visitor.see(card, 'the stuff’s card in the catalogue', STEP_MS);
    const onCard = await seeLoadedImage(visitor, card.getByTestId('cover-image'), 'the cover on the catalogue card');
    assertCover('visitor', 'the card’s cover', onCard, coverUrl);
    if (onCard.alt !== title) throw new Error(`[visitor] the card cover's alt is "${onCard.alt}"`);
    await visitor.shot('catalogue-card-with-cover');
    const served = await visitor.page.request.get(coverUrl);
    if (served.status() !== 200 || !(served.headers()['content-type'] ?? '').startsWith('image/jpeg')) {
      throw new Error(`[visitor] ${coverUrl} answered ${served.status()} ${served.headers()['content-type']}, not 200 image/jpeg`);
    }

    await visitor.openItem(id, title);
    const onPage = await seeLoadedImage(visitor, visitor.page.locator('[data-testid="stuff-page"] [data-testid="cover-image"]'), 'the cover on the stuff page');
    assertCover('visitor', 'the stuff page’s cover', onPage, coverUrl);
    if (onPage.alt !== title) throw new Error(`[visitor] the stuff page cover's alt is "${onPage.alt}"`);
    await visitor.shot('stuff-page-with-cover', { fullPage: true });
    await visitor.checkA11y('the stuff page with a cover');

    // Not an image, whatever its name says: refused by the server, on the field.
    await input.setInputFiles(fakePath);
    await seeEmpty(seller, coverForm.getByTestId('cover-saved'), 'the saved message, cleared by a new choice');
    await coverForm.getByTestId('cover-submit').click();
    await seller.seeText(coverForm.getByTestId('error-cover'), COVER_INVALID, 'the cover error', STEP_MS);
    if ((await input.getAttribute('aria-invalid')) !== 'true') throw new Error('[seller] the refused cover field is not aria-invalid');
    const describedBy = ((await input.getAttribute('aria-describedby')) ?? '').split(' ');
    if (!describedBy.includes('error-cover')) throw new Error(`[seller] the cover field is described by "${describedBy.join(' ')}", not its error`);
    await until('[seller] expected the refused cover field to take the focus', () => seller.page.evaluate(() => document.activeElement?.id === 'field-cover'), STEP_MS);
    await seeEmpty(seller, coverForm.getByTestId('cover-saved'), 'the saved message after the refusal');
    if ((await preview.getAttribute('data-cover-url')) !== coverUrl) throw new Error('[seller] the refused file changed the preview');
    await seller.shot('edit-page-cover-refused', { fullPage: true });
    await seller.checkA11y('the edit page with the cover error');

    // The cover others see is still the first one.
    await visitor.openItem(id, title);
    const after = await seeLoadedImage(visitor, visitor.page.locator('[data-testid="stuff-page"] [data-testid="cover-image"]'), 'the cover after the refused upload');
    if (after.src !== coverUrl) throw new Error(`[visitor] the refused upload changed the cover to ${after.src}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
