// Digital delivery. The seller lists a stuff with a private note and a file (200 KB of random
// bytes, chosen with the file input and uploaded with a progress bar); the buyer, in a browser
// context of their own, sees what they will get, buys it with pm_card_visa, and on the order page
// reads the note and downloads the file: the bytes' SHA-256 equals the uploaded file's. The same
// download works from the Library. A second scenario has the seller upload a new version of the
// sold file: the buyer's Library shows it live (delivery:updated) and downloads the new bytes.
// axe-core checks the sell page with a chosen file, the stuff page (buyer's and seller's view),
// the order page with its downloads, and the Library.
// The system runs with ORDER_HOLD_SECONDS=3, so the buyer pays right after BUY.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buyAndPay,
  download,
  LIVE_MS,
  NOTHING_TO_DELIVER_MESSAGE,
  randomFile,
  scenario,
  seeDelivery,
  sha256,
  STEP_MS,
  uniqueTitle,
  until,
} from './lib/harness.mjs';

scenario('delivery: the seller attaches a note and a file; the buyer pays, reads the note and downloads the same bytes', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-files-'));
  try {
    const file = randomFile(dir, 'lecture-notes.bin');
    const note = `Licence key: ${randomBytes(8).toString('hex').toUpperCase()}\nSee you in the exam hall.`;
    const seller = await sc.actor('seller');
    const buyer = await sc.actor('buyer');
    await Promise.all([seller.signUp(), buyer.signUp()]);

    // The seller: title, price, the note, a file chosen with the input; axe on the filled form.
    const title = uniqueTitle('Algorithms notes');
    const id = await seller.sell({
      title,
      price: '9.90',
      description: 'Every lecture, typed up, with worked examples.',
      secretNote: note,
      files: [file.path],
      beforeSubmit: async () => {
        const row = seller.page.locator(`[data-testid="upload-item"][data-name="${file.name}"]`);
        await seller.seeText(row.getByTestId('upload-state'), 'Ready to upload', 'the chosen file');
        await seller.checkA11y('the sell page with a chosen file');
      },
    });

    // The seller's stuff page: the uploaded file with its size, a download link, the note.
    const manage = seller.tid('manage-delivery');
    await seller.see(manage, 'the seller\u2019s delivery section', STEP_MS);
    const sellerRow = manage.locator(`[data-testid^="file-item-"][data-sha256="${file.sha}" i]`);
    await seller.see(sellerRow, 'the uploaded file (same SHA-256) on the stuff page', LIVE_MS);
    await seller.seeText(sellerRow.getByTestId('file-name'), file.name, 'the file name');
    await seller.seeText(sellerRow.getByTestId('file-size'), '200 KB', 'the file size');
    await seller.see(sellerRow.getByTestId('download-link'), 'the seller\u2019s own download link', STEP_MS);
    await until(
      '[seller] expected the note editor to show the saved note',
      async () => (await seller.tid('secret-note-input').inputValue()) === note,
      STEP_MS,
    );
    await seller.shot('stuff-page-seller', { fullPage: true });
    await seller.checkA11y('the stuff page (seller)');

    // The buyer: what they will get, before buying.
    await buyer.openItem(id, title);
    const wyg = buyer.tid('what-you-get');
    await buyer.see(wyg, 'What you get', STEP_MS);
    const buyerRow = wyg.locator(`[data-testid^="file-item-"][data-sha256="${file.sha}" i]`);
    await buyer.see(buyerRow, 'the file in What you get', LIVE_MS);
    await buyer.seeText(buyerRow.getByTestId('file-name'), file.name, 'the file name');
    await buyer.seeText(buyerRow.getByTestId('file-size'), '200 KB', 'the file size');
    await buyer.see('[data-testid="has-secret-note"]', '"Includes a private note"');
    assert.equal(await wyg.locator('a[download]').count(), 0, 'no download links before paying');
    await buyer.shot('stuff-page-buyer', { fullPage: true });
    await buyer.checkA11y('the stuff page (buyer)');

    const orderId = await buyAndPay(buyer);

    // The order page: the note and the download.
    const orderPage = buyer.tid('order-page');
    await seeDelivery(buyer, orderPage, 'the note and downloads on the order page');
    await buyer.seeText(buyer.tid('secret-note'), note, 'the private note');
    const link = buyer.tid('download-list').getByTestId('download-link');
    await buyer.see(link, 'a download link', STEP_MS);
    assert.equal(await link.count(), 1, 'one download link');
    assert.equal((await link.getAttribute('data-sha256'))?.toLowerCase(), file.sha, 'the link names the uploaded file\u2019s SHA-256');
    await buyer.shot('order-page-downloads', { fullPage: true });
    await buyer.checkA11y('the order page with downloads');
    const got = await download(buyer, link, file.name);
    assert.equal(got.bytes.length, file.bytes.length, 'downloaded size');
    assert.equal(sha256(got.bytes), file.sha, 'the downloaded bytes are the uploaded bytes (SHA-256)');
    assert.equal(got.name, file.name, 'the download keeps the file name');

    // The Library, from the header: the same order, note and file.
    await buyer.tid('nav-library').click();
    const item = buyer.tid(`library-item-${orderId}`);
    await buyer.see(item, 'the order in the Library', STEP_MS);
    await buyer.seeText(item.getByTestId('library-order-link'), title, 'the Library item title');
    await seeDelivery(buyer, item, 'the downloads in the Library');
    await buyer.seeText(item.getByTestId('secret-note'), note, 'the private note in the Library');
    await buyer.shot('library', { fullPage: true });
    await buyer.checkA11y('the Library');
    const again = await download(buyer, item.getByTestId('download-link'), `${file.name} from the Library`);
    assert.equal(sha256(again.bytes), file.sha, 'the Library download has the same bytes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

scenario('delivery: a new version of a sold file reaches the buyer\u2019s Library live; nothing to deliver blocks BUY', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-files-'));
  try {
    const v1 = randomFile(dir, 'slides.bin', 64 * 1024);
    const v2 = randomFile(dir, 'slides-v2.bin', 80 * 1024);
    const seller = await sc.actor('seller');
    const buyer = await sc.actor('buyer');
    await Promise.all([seller.signUp(), buyer.signUp()]);

    // A stuff with neither a file nor a note cannot be bought yet.
    const emptyTitle = uniqueTitle('Empty promise');
    const emptyId = await seller.sell({ title: emptyTitle, price: '1', secretNote: null });
    await buyer.openItem(emptyId, emptyTitle);
    await until('[buyer] expected BUY to be disabled on a stuff with nothing to deliver', () => buyer.tid('buy-button').isDisabled(), LIVE_MS);
    await buyer.seeText(buyer.tid('nothing-to-deliver-message'), NOTHING_TO_DELIVER_MESSAGE, 'the message next to BUY');
    await buyer.shot('nothing-to-deliver');

    // A file only (no note).
    const title = uniqueTitle('Compiler slides');
    const id = await seller.sell({ title, price: '3.50', secretNote: null, files: [v1.path] });
    await seller.see(`[data-testid="manage-delivery"] [data-sha256="${v1.sha}" i]`, 'the uploaded file on the stuff page', LIVE_MS);
    await buyer.openItem(id, title);
    const orderId = await buyAndPay(buyer);

    // The buyer waits in the Library.
    await buyer.tid('nav-library').click();
    const item = buyer.tid(`library-item-${orderId}`);
    await buyer.see(item, 'the order in the Library', STEP_MS);
    await seeDelivery(buyer, item, 'the downloads in the Library');
    assert.equal((await item.getByTestId('download-link').getAttribute('data-sha256'))?.toLowerCase(), v1.sha, 'first version');
    await buyer.markDocument();

    // The seller, on the sold stuff: only "New version" is offered.
    await seller.seeItemStatus('sold', 'Sold', LIVE_MS);
    await seller.see('[data-testid="files-sold"]', 'the "Sold: ... new version" explanation', LIVE_MS);
    assert.equal(await seller.tid('remove-file').count(), 0, 'no Remove on sold stuff');
    assert.equal(await seller.tid('file-input').count(), 0, 'no adding files on sold stuff');
    await seller.tid('new-version-input').setInputFiles(v2.path);
    const upload = seller.page.locator(`[data-testid="upload-item"][data-name="${v2.name}"]`);
    await seller.see(`[data-testid="upload-item"][data-name="${v2.name}"][data-state="done"]`, 'the new version uploaded', STEP_MS).catch(async (e) => {
      const err = await upload.getByTestId('upload-error').textContent().catch(() => null);
      throw new Error(`${e.message}${err ? `; upload error: "${err}"` : ''}`);
    });
    await seller.shot('new-version-uploaded', { fullPage: true });
    await seller.checkA11y('the sold stuff page (seller) after a new version');

    // The buyer's Library follows without a reload (delivery:updated) and serves the new bytes.
    await buyer.see(item.locator(`[data-testid="download-link"][data-sha256="${v2.sha}" i]`), 'the new version\u2019s link in the Library, live', LIVE_MS);
    await buyer.assertNotReloaded('the new version appearing in the Library');
    await buyer.shot('library-new-version', { fullPage: true });
    const got = await download(buyer, item.getByTestId('download-link'), 'the new version');
    assert.equal(sha256(got.bytes), v2.sha, 'the download is the new version (SHA-256)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
