// PDF page counts and previews (`FileMeta.pages`, `FileMeta.previewUrls`).
//
// - A seller lists a stuff with one file: a small, valid 2-page PDF written here by hand (A4 pages,
//   one line of Helvetica text each, an xref table with the right byte offsets), chosen with the
//   sell form's file input.
// - A second user, signed in but who has not bought it, opens the stuff page (loaded again until the
//   previews are there, in case the server makes them after the upload): the PDF's row in "What you
//   get" reads "2 pages" (`file-pages`); the Preview shows two `pdf-preview-page` images, "Page 1 of
//   <name>" and "Page 2 of <name>" in that order, which actually load (`naturalWidth` > 0, an A4
//   page at the server's 800 px longer side) and are public (fetched with no cookie or token: 200, a JPEG); the caption reads
//   "Preview of all 2 pages — buy to download the file". No download link, no delivery and no
//   `/api/files/` URL anywhere on the page.
// - axe-core finds nothing on that page at 1280 px nor at 390 px; full-page screenshots at both
//   widths; at 390 px the page does not scroll sideways.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_URL, DESKTOP, NARROW, STEP_MS, scenario, sha256, uniqueTitle, until } from './lib/harness.mjs';

/** The longer side of a preview image (the server renders pages to fit it). */
const PREVIEW_SIDE = 800;

/** A PDF literal string: `\`, `(` and `)` escaped. */
function pdfString(text) {
  return `(${text.replace(/[\\()]/g, (c) => `\\${c}`)})`;
}

/**
 * A minimal valid PDF 1.4 with one A4 page per line of `texts` (ASCII), each line drawn with the
 * standard Helvetica font. Objects: 1 catalog, 2 page tree, 3 font, then a page and its content
 * stream per text. The xref table holds every object's byte offset (entries of exactly 20 bytes)
 * and `startxref` the table's own.
 */
function minimalPdf(texts) {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    `<< /Type /Pages /Kids [${texts.map((_, i) => `${4 + 2 * i} 0 R`).join(' ')}] /Count ${texts.length} >>`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
  ];
  texts.forEach((text, i) => {
    const content = `BT /F1 28 Tf 72 760 Td ${pdfString(text)} Tj ET`;
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents ${5 + 2 * i} 0 R >>`);
    objects.push(`<< /Length ${Buffer.byteLength(content, 'latin1')} >>\nstream\n${content}\nendstream`);
  });
  // The second line (bytes over 127) marks the file as binary for tools that guess.
  let pdf = '%PDF-1.4\n%\xe2\xe3\xcf\xd3\n';
  const offsets = objects.map((body, i) => {
    const at = Buffer.byteLength(pdf, 'latin1');
    pdf += `${i + 1} 0 obj\n${body}\nendobj\n`;
    return at;
  });
  const xrefAt = Buffer.byteLength(pdf, 'latin1');
  pdf += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const at of offsets) pdf += `${String(at).padStart(10, '0')} 00000 n \n`;
  pdf += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(pdf, 'latin1');
}

/** Waits until the image has loaded (scrolled into view first: it is lazy); returns its natural size. */
async function seeLoaded(actor, img, what) {
  await img.scrollIntoViewIfNeeded();
  return until(
    `[${actor.label}] expected ${what} to load (complete, naturalWidth > 0), on ${actor.page.url()}`,
    () => img.evaluate((el) => (el.complete && el.naturalWidth > 0 ? { width: el.naturalWidth, height: el.naturalHeight } : null)),
    STEP_MS,
  );
}

scenario('pdf preview: a visitor who has not bought a 2-page PDF sees "2 pages" and both pages’ previews, never the file', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-pdf-'));
  try {
    const name = 'two-page-notes.pdf';
    const bytes = minimalPdf(['StuffMart e2e preview: page 1 of 2', 'StuffMart e2e preview: page 2 of 2']);
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const sha = sha256(bytes);

    const seller = await sc.actor('seller');
    const visitor = await sc.actor('visitor');
    await Promise.all([seller.signUp(), visitor.signUp()]);

    const title = uniqueTitle('Signals and systems summary');
    const id = await seller.sell({ title, price: '4.00', description: 'Two pages of formulas.', files: [path] });
    await seller.see(`[data-testid="manage-delivery"] [data-sha256="${sha}" i]`, 'the uploaded PDF on the stuff page', STEP_MS);

    // The visitor's stuff page, loaded again until the previews are there.
    const url = `/stuff/${encodeURIComponent(id)}`;
    const pages = visitor.tid('pdf-preview-page');
    let loads = 0;
    await until(
      `[visitor] expected two pdf-preview-page images on ${url}, loading it again every 0.5 s`,
      async () => {
        loads += 1;
        await visitor.page.goto(url);
        await visitor.see('[data-testid="stuff-page"]', `the stuff page ${url}`, STEP_MS);
        return (await pages.count()) === 2;
      },
      2 * STEP_MS,
      500,
    );
    if (loads > 1) console.log(`[visitor] the previews were there after ${loads} loads of ${url}`);
    await visitor.seeText(visitor.tid('stuff-title'), title, 'the stuff title');
    await visitor.waitConnected();

    // "What you get": the PDF with its page count.
    const row = visitor.tid('what-you-get').locator(`[data-testid^="file-item-"][data-sha256="${sha}" i]`);
    await visitor.see(row, 'the PDF in What you get', STEP_MS);
    await visitor.seeText(row.getByTestId('file-name'), name, 'the file name');
    await visitor.seeText(row.getByTestId('file-type'), 'PDF', 'the file type');
    await visitor.seeText(row.getByTestId('file-pages'), '2 pages', 'the page count');
    const fileId = await row.getAttribute('data-file-id');
    assert.ok(fileId, 'the file row names its file id');

    // The Preview: that file's two pages, in order, loaded, public.
    const group = visitor.page.locator(`[data-testid="pdf-preview"][data-file-id="${fileId}"]`);
    await visitor.see(group, 'the PDF’s preview group', STEP_MS);
    const imgs = group.getByTestId('pdf-preview-page');
    assert.equal(await imgs.count(), 2, 'two preview images in the PDF’s group');
    for (let i = 0; i < 2; i += 1) {
      const img = imgs.nth(i);
      const alt = `Page ${i + 1} of ${name}`;
      assert.equal(await img.getAttribute('alt'), alt, `the text alternative of preview ${i + 1}`);
      assert.equal(await img.getAttribute('loading'), 'lazy', `preview ${i + 1} is lazy-loaded`);
      const size = await seeLoaded(visitor, img, `"${alt}"`);
      // An A4 page, portrait: 800 px high, about 566 px wide.
      assert.equal(size.height, PREVIEW_SIDE, `"${alt}" is ${size.width}x${size.height}, not ${PREVIEW_SIDE} px high`);
      assert.ok(size.width > 550 && size.width < 580, `"${alt}" is ${size.width}x${size.height}, not A4's shape`);

      const src = await img.getAttribute('src');
      const absolute = new URL(src ?? '', BASE_URL);
      assert.equal(absolute.origin, new URL(BASE_URL).origin, `"${alt}" comes from the same origin (${src})`);
      // Public: no cookie, no token.
      const res = await fetch(absolute, { signal: AbortSignal.timeout(STEP_MS) });
      assert.equal(res.status, 200, `GET ${src} without signing in`);
      assert.match(res.headers.get('content-type') ?? '', /^image\/jpeg\b/, `the Content-Type of ${src}`);
      const jpeg = Buffer.from(await res.arrayBuffer());
      assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], `${src} is a JPEG`);
    }
    await visitor.seeText(group.getByTestId('pdf-preview-caption'), 'Preview of all 2 pages — buy to download the file', 'the preview caption');

    // Never the file itself to someone who has not bought it.
    await visitor.seeText(visitor.tid('buy-button'), 'BUY', 'the BUY button');
    assert.equal(await visitor.page.locator('a[download], [data-testid="download-link"], [data-testid="delivery"]').count(), 0, 'no download link for the visitor');
    const fileUrls = await visitor.page.evaluate(() =>
      Array.from(document.querySelectorAll('[href], [src]'))
        .map((el) => el.getAttribute('href') ?? el.getAttribute('src') ?? '')
        .filter((u) => u.includes('/api/files/')),
    );
    assert.deepEqual(fileUrls, [], 'no /api/files/ URL on the visitor’s page');

    await visitor.page.evaluate(() => window.scrollTo(0, 0));
    await visitor.shot('stuff-page-pdf-preview-1280', { fullPage: true });
    await visitor.checkA11y('the stuff page with PDF previews (1280 px)');

    // 390 px: the previews still there and loaded, no sideways scrolling, axe-core.
    await visitor.page.setViewportSize(NARROW);
    await visitor.see(group, 'the preview group at 390 px');
    for (let i = 0; i < 2; i += 1) await seeLoaded(visitor, imgs.nth(i), `preview ${i + 1} at 390 px`);
    await visitor.page.evaluate(() => window.scrollTo(0, 0));
    await visitor.shot('stuff-page-pdf-preview-390', { fullPage: true });
    await visitor.assertNoHorizontalOverflow('the stuff page with PDF previews (390 px)');
    await visitor.checkA11y('the stuff page with PDF previews (390 px)');
    await visitor.page.setViewportSize(DESKTOP);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
