// Sellers get paid (issue 15 item 6: `payout:status`, `payout:onboard`), with the built-in test
// gateway, where onboarding finishes at once and `payout:onboard` answers the app's own return page.
//
// - A seller lists a 12.00 stuff with a file (no private note) and opens My listings (`/selling`)
//   from the header: Payouts (a section headed "Payouts") has nothing held yet, "Waiting for payout:
//   €0.00", and "Set up payouts".
// - A buyer in another browser buys and pays it with `pm_card_visa`. The seller's page, left open
//   (no reload), shows "Waiting for payout: €10.80" (12.00 less the 10 % fee, kept by StuffMart
//   until the seller sets up payouts) after the `sale:completed` push; the same after a reload.
//   axe-core at 1280 and 390 px (at 390 px: no sideways scrolling, 44 px tap targets), screenshots.
// - The seller clicks "Set up payouts": the browser loads `/selling?payouts=return` (the test
//   gateway's answer), the parameter leaves the address (`/selling`), the polite notice reads
//   "Payout setup finished", Payouts reads "Payouts are on: …", "Paid out: €10.80" and nothing held,
//   and there is no setup button any more. The same checks and screenshots at 1280 and 390 px.
//
// The hold is 3 s (ORDER_HOLD_SECONDS=3): paying orders again when the hold ran out first.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DESKTOP, NARROW, STEP_MS, buyAndPayWithRetries, randomFile, scenario, uniqueTitle, until } from './lib/harness.mjs';

const KEPT = 'StuffMart keeps your earnings safe for you until you set up payouts with Stripe.';
const ON = 'Payouts are on: your earnings go to your Stripe account.';

/** Opens My listings from the header and waits for the list and the Payouts status. */
async function openMyListings(actor) {
  await actor.tid('nav-selling').click();
  await actor.see('[data-testid="listings"], [data-testid="listings-empty"]', 'My listings', STEP_MS);
  await actor.seeText(actor.page.locator('h1'), 'My listings', 'the page heading');
  await actor.see('[data-testid="payouts"][data-onboarded]', 'the Payouts status', STEP_MS);
}

scenario('payouts: a sale is held for the seller until they set up payouts; the test gateway onboards at once and pays it out', async (sc) => {
  const dir = mkdtempSync(join(tmpdir(), 'stuffmart-e2e-files-'));
  try {
    const file = randomFile(dir, 'statistics-notes.bin', 64 * 1024);
    const seller = await sc.actor('seller');
    const buyer = await sc.actor('buyer');
    await Promise.all([seller.signUp(), buyer.signUp()]);
    const title = uniqueTitle('Statistics lecture notes');
    const id = await seller.sell({ title, price: '12.00', secretNote: null, files: [file.path] });

    // Before any sale: nothing held, not set up.
    await openMyListings(seller);
    const payouts = seller.tid('payouts');
    await seller.seeText(payouts.locator('h2'), 'Payouts', 'the Payouts heading');
    const headingId = await payouts.locator('h2').getAttribute('id');
    if ((await payouts.getAttribute('aria-labelledby')) !== headingId) throw new Error('[seller] the Payouts section is not labelled by its heading');
    await seller.seeText(seller.tid('payouts-off'), KEPT, 'the explanation before setup');
    await seller.seeText(seller.tid('payouts-held'), 'Waiting for payout: €0.00', 'what is held before any sale');
    await seller.seeText(seller.tid('payouts-onboard'), 'Set up payouts', 'the setup button');
    await seller.waitConnected();
    await seller.markDocument();

    // The buyer pays; the seller's open page shows the earnings as held.
    await buyAndPayWithRetries(buyer, id, title);
    await seller.seeText(seller.tid('payouts-held'), 'Waiting for payout: €10.80', 'what is held after the sale (12.00 less the 10 % fee)', STEP_MS);
    await seller.assertNotReloaded('the held amount');
    await seller.page.reload();
    await seller.see('[data-testid="payouts"][data-onboarded="false"]', 'Payouts after a reload', STEP_MS);
    await seller.seeText(seller.tid('payouts-held'), 'Waiting for payout: €10.80', 'what is held, after a reload', STEP_MS);
    await seller.seeText(seller.tid('payouts-onboard'), 'Set up payouts', 'the setup button after the sale');
    if ((await seller.tid('payouts-paid-out').count()) > 0) throw new Error('[seller] "Paid out" shown before onboarding');
    await payouts.scrollIntoViewIfNeeded();
    await seller.shot('payouts-held');
    await seller.checkA11y('My listings with earnings held');
    await seller.page.setViewportSize(NARROW);
    await seller.see(seller.tid('payouts-onboard'), 'the setup button at 390 px');
    await seller.shot('payouts-held-390', { fullPage: true });
    await seller.assertNoHorizontalOverflow('My listings with earnings held (390 px)');
    await seller.assertTapTargets('My listings with earnings held (390 px)');
    await seller.checkA11y('My listings with earnings held (390 px)');
    await seller.page.setViewportSize(DESKTOP);

    // Set up payouts: the test gateway sends the browser straight back to /selling?payouts=return.
    const documents = [];
    const onRequest = (r) => {
      if (r.isNavigationRequest() && r.frame() === seller.page.mainFrame()) documents.push(r.url());
    };
    seller.page.on('request', onRequest);
    await seller.tid('payouts-onboard').click();
    await until(
      `[seller] expected the browser to load /selling?payouts=return (loaded: ${documents.join(', ') || 'nothing'})`,
      () => documents.some((u) => {
        const url = new URL(u);
        return url.pathname === '/selling' && url.searchParams.get('payouts') === 'return';
      }),
      STEP_MS,
    );
    await seller.see('[data-testid="payouts-notice"]', 'the payout setup notice', STEP_MS);
    seller.page.off('request', onRequest);
    await seller.seeText(seller.tid('payouts-notice'), 'Payout setup finished', 'the notice after onboarding');
    const region = seller.tid('payouts-notice-region');
    if ((await region.getAttribute('role')) !== 'status' || (await region.getAttribute('aria-live')) !== 'polite') {
      throw new Error('[seller] the payout notice is not in a polite status region');
    }
    await until(
      `[seller] expected ?payouts=return to leave the address (it is ${seller.page.url()})`,
      () => {
        const url = new URL(seller.page.url());
        return url.pathname === '/selling' && url.search === '';
      },
      STEP_MS,
    );
    await seller.seeText(seller.tid('payouts-on'), ON, 'the payouts-on line');
    await seller.seeText(seller.tid('payouts-paid-out'), 'Paid out: €10.80', 'what was paid out', STEP_MS);
    if ((await seller.tid('payouts-held').count()) > 0) throw new Error(`[seller] still holding "${await seller.tid('payouts-held').textContent()}" after onboarding`);
    if ((await seller.tid('payouts-onboard').count()) > 0) throw new Error('[seller] the setup button is still shown after onboarding');
    await seller.see(`[data-testid="listing-${id}"][data-status="sold"]`, 'the listing, Sold', STEP_MS);
    await payouts.scrollIntoViewIfNeeded();
    await seller.shot('payouts-finished');
    await seller.checkA11y('My listings after payout setup');
    await seller.page.setViewportSize(NARROW);
    await seller.see(seller.tid('payouts-paid-out'), 'the paid-out amount at 390 px');
    await seller.shot('payouts-finished-390', { fullPage: true });
    await seller.assertNoHorizontalOverflow('My listings after payout setup (390 px)');
    await seller.assertTapTargets('My listings after payout setup (390 px)');
    await seller.checkA11y('My listings after payout setup (390 px)');
    await seller.page.setViewportSize(DESKTOP);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
