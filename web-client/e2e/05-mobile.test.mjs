// Delivery on a phone (390x844, touch, 2x pixels: PHONE). The seller lists a stuff from the sell
// page: "Choose files" is a full-width button that opens the file picker on a tap; a file with a
// long name is chosen together with one over 50 MiB, which is refused on the spot and removed from
// the list. The buyer, on a phone too, looks at the stuff page, pays, taps Download on the order
// page (same bytes, by SHA-256) and opens the Library. Every one of these pages must not scroll
// sideways (document.documentElement.scrollWidth <= window.innerWidth), must have tap targets of at
// least 44x44 CSS pixels and must pass axe-core (WCAG 2.x A/AA) with no violation.
// The system runs with ORDER_HOLD_SECONDS=3, so the buyer pays right after BUY.

import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buyAndPay,
  download,
  LIVE_MS,
  MIN_TAP_PX,
  PHONE,
  randomFile,
  scenario,
  seeDelivery,
  sha256,
  STEP_MS,
  uniqueEmail,
  uniqueTitle,
  until,
} from './lib/harness.mjs';

/** A sparse file just over the 50 MiB limit (nothing is written; the client refuses it unsent). */
function tooLargeFile(dir, name) {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  ftruncateSync(fd, 50 * 1024 * 1024 + 1);
  closeSync(fd);
  return { path, name };
}

async function boxOf(locator) {
  const box = await locator.boundingBox();
  assert.ok(box, 'the element has a box');
  return box;
}

scenario('mobile: sell with files, the stuff page, paying, downloading and the Library on a 390 px phone', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-mobile-'));
  try {
    const file = randomFile(dir, 'Lecture_Notes_Week_01-12_Complete_With_Solutions_And_Index_FINAL_v3.pdf');
    const huge = tooLargeFile(dir, 'recording-lecture-12-full-length-1080p.mp4');
    const note = 'Licence key: 7F3A-99B2-CCD1-0042-ABCDEFABCDEF\nhttps://drive.example.com/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789';
    const seller = await sc.actor('seller', PHONE);
    const buyer = await sc.actor('buyer', PHONE);
    // Long e-mails: the header is at its tightest.
    await Promise.all([seller.signUp(uniqueEmail('maximilian.oberstudienrat')), buyer.signUp(uniqueEmail('buyer.with.a.long.name'))]);

    // The seller, on the sell page: tapping "Choose files" opens the picker.
    const title = uniqueTitle('Linear Algebra — complete lecture notes, exercises and worked solutions for MATH 201');
    const id = await seller.sell({
      title,
      price: '12.50',
      description: 'Every lecture typed up. Index: https://drive.example.com/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-lecture-notes',
      secretNote: note,
      beforeSubmit: async () => {
        const choose = seller.page.locator('label[for="field-file"]');
        await seller.see(choose, 'the "Choose files" button');
        const box = await boxOf(choose);
        assert.ok(box.height >= MIN_TAP_PX, `"Choose files" is at least ${MIN_TAP_PX} px tall (is ${box.height})`);
        assert.ok(box.width >= 300, `"Choose files" spans the form on a phone (is ${box.width} px wide)`);
        const [chooser] = await Promise.all([seller.page.waitForEvent('filechooser', { timeout: STEP_MS }), choose.tap()]);
        assert.ok(chooser.isMultiple(), 'the picker takes several files');
        await chooser.setFiles([file.path, huge.path]);
        const ready = seller.page.locator(`[data-testid="upload-item"][data-name="${file.name}"][data-state="queued"]`);
        const refused = seller.page.locator(`[data-testid="upload-item"][data-name="${huge.name}"][data-state="failed"]`);
        await seller.see(ready, 'the chosen file, ready to upload', STEP_MS);
        await seller.see(refused, 'the file over 50 MiB, refused', STEP_MS);
        await seller.seeText(refused.getByTestId('upload-error'), 'File too large', 'the error of the file over 50 MiB');
        await seller.checkPhonePage('sell page with a chosen file and a refused one');
        // Only what can be uploaded goes; otherwise the sell page stays with the failure.
        await refused.getByTestId('upload-dismiss').tap();
        await until('[seller] expected the refused file to leave the list', async () => (await refused.count()) === 0, LIVE_MS);
      },
    });

    // The seller's stuff page: the uploaded file (download, new version, remove) and the note.
    const manage = seller.tid('manage-delivery');
    await seller.see(manage.locator(`[data-testid^="file-item-"][data-sha256="${file.sha}" i] [data-testid="download-link"]`), 'the uploaded file with its link', STEP_MS);
    await until('[seller] expected the note editor to show the note', async () => (await seller.tid('secret-note-input').inputValue()) === note, STEP_MS);
    await seller.checkPhonePage('stuff page (seller)');

    // The buyer: the stuff page with What you get.
    await buyer.openItem(id, title);
    await buyer.see(buyer.tid('what-you-get').locator(`[data-sha256="${file.sha}" i]`), 'the file in What you get', LIVE_MS);
    await buyer.see('[data-testid="has-secret-note"]', '"Includes a private note"');
    await buyer.checkPhonePage('stuff page (buyer)');

    const orderId = await buyAndPay(buyer);

    // The order page with the note and a Download button that fits the screen.
    const orderPage = buyer.tid('order-page');
    await seeDelivery(buyer, orderPage, 'the note and downloads on the order page');
    await buyer.seeText(buyer.tid('secret-note'), note, 'the private note');
    const link = buyer.tid('download-list').getByTestId('download-link');
    await buyer.see(link, 'the Download button', STEP_MS);
    await buyer.checkPhonePage('order page with downloads');
    const box = await boxOf(link);
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.viewport.width, `the Download button is on screen (x ${box.x}, width ${box.width})`);
    const got = await download(buyer, link, file.name, { tap: true });
    assert.equal(sha256(got.bytes), file.sha, 'the downloaded bytes are the uploaded bytes (SHA-256)');
    assert.equal(got.name, file.name, 'the download keeps the long file name');

    // The Library, from the header.
    await buyer.tid('nav-library').tap();
    const item = buyer.tid(`library-item-${orderId}`);
    await buyer.see(item, 'the order in the Library', STEP_MS);
    await seeDelivery(buyer, item, 'the downloads in the Library');
    await buyer.seeText(item.getByTestId('secret-note'), note, 'the private note in the Library');
    await buyer.checkPhonePage('library');

    // My orders: the row opens the order.
    await buyer.tid('nav-orders').tap();
    const row = buyer.tid(`order-row-${orderId}`);
    await buyer.see(row, 'the order in My orders', STEP_MS);
    await buyer.assertNoHorizontalOverflow('my orders');
    await buyer.shot('my-orders', { fullPage: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
