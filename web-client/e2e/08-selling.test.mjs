// The seller's dashboard (issue 16, "Marketplace"): My listings and Withdraw.
//
// - A seller lists two items (each with the default private note, so both can be bought) and
//   opens My listings from the header (`/selling`, `stuff:mine`): both rows, Available.
// - The seller withdraws one (`stuff:withdraw`) after a confirmation step: the question gets the
//   focus, and the row turns Withdrawn, without its Withdraw button.
// - A buyer whose catalogue is open sees that item disappear without a reload (the
//   `stuff:updated` push with status `withdrawn`); a direct visit of its stuff page reads
//   "No longer for sale" and offers no BUY button. The seller's own stuff page reads Withdrawn.
// - The buyer buys the other item with `pm_card_visa` (no coupon); My orders shows its title (the
//   order's `stuffTitle`) and "Paid €12.00" (`paidCents`).
// - axe-core on My listings at 1280 px (also with the question open) and on a phone (390x844,
//   touch), where it must not scroll sideways and every control is at least 44x44 px.
//
// The hold is 3 s (ORDER_HOLD_SECONDS=3): paying orders again when the hold ran out first.

import { LIVE_MS, PHONE, STEP_MS, buyAndPayWithRetries, scenario, uniqueTitle, until } from './lib/harness.mjs';

const NO_LONGER_FOR_SALE = 'No longer for sale';

/** Opens My listings from the header and waits for the list. */
async function openMyListings(actor) {
  await actor.tid('nav-selling').click();
  await actor.see('[data-testid="listings"], [data-testid="listings-empty"]', 'My listings', STEP_MS);
  await actor.seeText(actor.page.locator('h1'), 'My listings', 'the page heading');
}

/** The row of `id` on My listings. */
const listing = (actor, id) => actor.tid(`listing-${id}`);

/** Waits until the row of `id` shows `status` with its badge `label`. */
async function seeListingStatus(actor, id, status, label, timeoutMs = LIVE_MS) {
  await actor.see(`[data-testid="listing-${id}"][data-status="${status}"]`, `the listing ${id} with status ${status}`, timeoutMs);
  await actor.seeText(listing(actor, id).getByTestId('status-badge'), label, `the status badge of listing ${id}`, timeoutMs);
}

scenario('selling: My listings, Withdraw with a confirmation, the buyer sees it leave live; a paid order shows its title and Paid', async (sc) => {
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([seller.signUp(), buyer.signUp()]);

  const withdrawTitle = uniqueTitle('Organic chemistry flashcards');
  const keepTitle = uniqueTitle('Discrete maths notes');
  const withdrawId = await seller.sell({ title: withdrawTitle, price: '7.50' });
  const keepId = await seller.sell({ title: keepTitle, price: '12.00' });

  // The buyer's catalogue is open (and stays open, no reload) while the seller withdraws.
  await buyer.openCatalogue();
  await buyer.see(`[data-testid="stuff-card-${withdrawId}"]`, 'the card of the item about to be withdrawn', LIVE_MS);
  await buyer.see(`[data-testid="stuff-card-${keepId}"]`, 'the card of the other item', LIVE_MS);
  await buyer.markDocument();

  // My listings: both, newest first, Available, with links to the stuff and its edit page.
  await openMyListings(seller);
  await seeListingStatus(seller, withdrawId, 'available', 'Available');
  await seeListingStatus(seller, keepId, 'available', 'Available');
  const order = await seller.page.locator('[data-testid^="listing-"][data-status]').evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
  if (order[0] !== `listing-${keepId}` || order[1] !== `listing-${withdrawId}`) {
    throw new Error(`[seller] My listings is not newest first: ${order.join(', ')}`);
  }
  await seller.seeText(listing(seller, withdrawId).getByTestId('listing-link'), withdrawTitle, 'the title link of the listing');
  const href = await listing(seller, withdrawId).getByTestId('listing-link').getAttribute('href');
  if (href !== `/stuff/${encodeURIComponent(withdrawId)}`) throw new Error(`[seller] the listing links to ${href}`);
  const editHref = await listing(seller, withdrawId).getByTestId('listing-edit-link').getAttribute('href');
  if (editHref !== `/stuff/${encodeURIComponent(withdrawId)}/edit`) throw new Error(`[seller] the edit link goes to ${editHref}`);
  await seller.seeText(listing(seller, keepId).getByTestId('price'), '€12.00', 'the price of the listing');
  await seller.shot('my-listings');
  await seller.checkA11y('My listings');

  // Withdraw, after the confirmation step.
  await listing(seller, withdrawId).getByTestId('withdraw-button').click();
  const box = await seller.see(listing(seller, withdrawId).getByTestId('withdraw-confirmation'), 'the withdraw confirmation', STEP_MS);
  const question = ((await box.locator('p').first().textContent()) ?? '').trim();
  if (!question.startsWith(`Withdraw “${withdrawTitle}”?`)) throw new Error(`[seller] the confirmation asks "${question}"`);
  await until('[seller] expected "Yes, withdraw" to have the focus', () =>
    seller.page.evaluate(() => document.activeElement?.getAttribute('data-testid') === 'withdraw-confirm'),
  );
  await seller.shot('withdraw-question');
  await seller.checkA11y('My listings with the withdraw question');
  await listing(seller, withdrawId).getByTestId('withdraw-confirm').click();
  await seeListingStatus(seller, withdrawId, 'withdrawn', 'Withdrawn', STEP_MS);
  await seller.seeText(seller.tid('withdrawn-notice'), `Withdrew “${withdrawTitle}”: it is no longer for sale.`, 'the withdrawn notice');
  if ((await listing(seller, withdrawId).getByTestId('withdraw-button').count()) > 0) throw new Error('[seller] a withdrawn listing still offers Withdraw');
  await seeListingStatus(seller, keepId, 'available', 'Available');
  await seller.shot('withdrawn');
  await seller.checkA11y('My listings after withdrawing');

  // The buyer's catalogue drops it live; the other item stays.
  await until(
    `[buyer] expected the withdrawn item's card to leave the catalogue without a reload`,
    async () => (await buyer.tid(`stuff-card-${withdrawId}`).count()) === 0,
    LIVE_MS,
  );
  await buyer.assertNotReloaded('the withdrawn item leaving the catalogue');
  await buyer.see(`[data-testid="stuff-card-${keepId}"]`, 'the card of the item still for sale', LIVE_MS);
  await buyer.shot('catalogue-without-withdrawn');

  // A direct visit of the withdrawn stuff: "No longer for sale", no BUY.
  await buyer.openItem(withdrawId, withdrawTitle);
  await buyer.seeItemStatus('withdrawn', NO_LONGER_FOR_SALE, STEP_MS);
  if ((await buyer.tid('buy-button').count()) > 0) throw new Error('[buyer] a withdrawn stuff still offers BUY');
  await buyer.see('[data-testid="withdrawn-message"]', 'the withdrawn message');
  await buyer.shot('withdrawn-stuff-page');
  await buyer.checkA11y('withdrawn stuff page (buyer)');

  // The seller's own stuff page says Withdrawn.
  await seller.openItem(withdrawId, withdrawTitle);
  await seller.seeItemStatus('withdrawn', 'Withdrawn', STEP_MS);
  await seller.see('[data-testid="own-stuff"][data-withdrawn="true"]', 'the seller’s withdrawn notice');
  if ((await seller.tid('edit-link').count()) > 0 || (await seller.tid('withdraw-button').count()) > 0) {
    throw new Error('[seller] a withdrawn stuff still offers Edit or Withdraw');
  }
  await seller.checkA11y('withdrawn stuff page (seller)');

  // My listings on a phone: no sideways scrolling, 44 px targets, axe; also with the question open.
  const phone = await sc.actor('seller-phone', PHONE);
  await phone.signUpOrIn(seller.email);
  await openMyListings(phone);
  await seeListingStatus(phone, withdrawId, 'withdrawn', 'Withdrawn', STEP_MS);
  await seeListingStatus(phone, keepId, 'available', 'Available', STEP_MS);
  await phone.checkPhonePage('My listings (390 px)');
  await listing(phone, keepId).getByTestId('withdraw-button').tap();
  await phone.see(listing(phone, keepId).getByTestId('withdraw-confirmation'), 'the withdraw confirmation on the phone', STEP_MS);
  await phone.checkPhonePage('My listings with the withdraw question (390 px)');
  await listing(phone, keepId).getByTestId('withdraw-keep').tap();
  await phone.see(listing(phone, keepId).getByTestId('withdraw-button'), 'the Withdraw button again after "Keep it for sale"', STEP_MS);
  await seeListingStatus(phone, keepId, 'available', 'Available');

  // The buyer buys the other one (pm_card_visa, no coupon): the order carries its title and what was paid.
  const orderId = await buyAndPayWithRetries(buyer, keepId, keepTitle);
  await buyer.seeText(buyer.tid('order-stuff-link'), keepTitle, 'the stuff title on the order page');
  await buyer.seeText(buyer.tid('order-paid'), '€12.00', 'the Paid row of the order page');
  await buyer.tid('nav-orders').click();
  await buyer.see(`[data-testid="order-row-${orderId}"]`, 'the paid order in My orders', STEP_MS);
  const row = buyer.tid(`order-row-${orderId}`);
  await buyer.seeText(row.getByTestId('order-link'), keepTitle, 'the order title in My orders');
  await buyer.seeText(row.getByTestId('order-amount'), 'Paid €12.00', 'what was paid, in My orders');
  await buyer.seeText(row.getByTestId('order-status'), 'Complete', 'the order status in My orders');
  await buyer.shot('my-orders-paid');
  await buyer.checkA11y('My orders with a paid order');

  // The seller's listing of it is Sold, live.
  await openMyListings(seller);
  await seeListingStatus(seller, keepId, 'sold', 'Sold', STEP_MS);
});
