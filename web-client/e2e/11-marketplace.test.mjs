// Sellers with names, and what they sold ("Marketplace": display names, `order:sales`,
// `sale:completed`).
//
// names:
// - A seller signs up (the header shows the e-mail's local part as the name), lists a stuff (with
//   the default private note) and opens Account from the header (`/account`, h1 "Account").
// - "A" is refused on the field: `Display name must be 2 to 40 characters` (the input is
//   aria-invalid and described by the message). "Ada Lovelace" is saved: "Saved. Buyers and
//   sellers now see you as Ada Lovelace." and the header reads "Ada Lovelace".
// - A visitor (not signed in) opens the stuff page: "Sold by Ada Lovelace" (the rename reaches the
//   listings within seconds, so the page is loaded again until it does); the catalogue card's
//   seller link reads "Ada Lovelace" and opens `/sellers/{id}`, headed "Ada Lovelace", with the stuff.
// - axe-core on the Account page (with the error, after saving) at 1280 px, and on a phone
//   (390x844, touch: no sideways scrolling, 44 px tap targets, axe); axe-core on the seller page.
//
// sales:
// - A seller lists an item at 12.00 and opens My listings (`/selling`): Sales reads "No sales yet"
//   and "Total earned: €0.00".
// - A buyer in another browser buys it with `pm_card_visa`. The seller, whose My listings stays
//   open (no reload), gets the toast "Sold: <title> — you earned €10.80" in the polite live region
//   (the pointer rests on it while it is checked, which holds its 8 s timer), and dismisses it.
//   The buyer gets no toast.
// - Sales shows the sale, live: the buyer's name (their e-mail's local part), Paid €12.00,
//   Fee €1.20, Earned €10.80 and "Total earned: €10.80"; the same after a reload.
// - axe-core on My listings with a sale (1280 px) and with the toast; a full-page screenshot of
//   My listings at 390 px.
//
// The hold is 3 s (ORDER_HOLD_SECONDS=3): paying orders again when the hold ran out first.

import { DESKTOP, NARROW, PHONE, STEP_MS, buyAndPayWithRetries, seeAfterReloads, scenario, uniqueTitle, until } from './lib/harness.mjs';

const NAME = 'Ada Lovelace';
const NAME_ERROR = 'Display name must be 2 to 40 characters';

/** The e-mail's local part: the name of an account whose owner never chose one. */
const localPart = (email) => email.slice(0, email.lastIndexOf('@'));

/** Opens Account from the header and waits for the display-name form. */
async function openAccount(actor) {
  await actor.tid('nav-account').click();
  await until(`[${actor.label}] expected the address /account`, () => new URL(actor.page.url()).pathname === '/account', STEP_MS);
  await actor.see('[data-testid="display-name-form"]', 'the display-name form', STEP_MS);
  await actor.seeText(actor.page.locator('h1'), 'Account', 'the page heading');
}

/** Opens My listings from the header and waits for the list and the Sales section. */
async function openMyListings(actor) {
  await actor.tid('nav-selling').click();
  await actor.see('[data-testid="listings"], [data-testid="listings-empty"]', 'My listings', STEP_MS);
  await actor.seeText(actor.page.locator('h1'), 'My listings', 'the page heading');
  await actor.see('[data-testid="sales-total"]', 'the Sales total', STEP_MS);
}

scenario('marketplace names: the display name is checked, saved, shown in the header and on every listing, and heads the seller page', async (sc) => {
  const seller = await sc.actor('seller');
  await seller.signUp();
  await seller.seeText(seller.tid('current-user-name'), localPart(seller.email), 'the default name in the header (the e-mail’s local part)');
  const title = uniqueTitle('Thermodynamics lecture notes');
  const id = await seller.sell({ title, price: '8.00' });
  await seller.seeText(seller.tid('sold-by'), `Sold by ${localPart(seller.email)}`, 'the seller line before the rename');

  // Account: the field is labelled "Display name" and holds the current name.
  await openAccount(seller);
  const input = seller.page.getByLabel('Display name', { exact: true });
  const sameField = await input.evaluate((el) => el.getAttribute('data-testid'));
  if (sameField !== 'display-name-input') throw new Error(`[seller] the field labelled "Display name" is ${sameField}`);
  if ((await input.inputValue()) !== localPart(seller.email)) throw new Error(`[seller] the field holds "${await input.inputValue()}"`);
  await seller.seeText(seller.tid('display-name-submit'), 'Save', 'the Save button');
  await seller.shot('account');

  // Too short: refused on the field, nothing saved.
  await input.fill('A');
  await seller.tid('display-name-submit').click();
  await seller.seeText(seller.tid('error-displayName'), NAME_ERROR, 'the display-name error', STEP_MS);
  if ((await input.getAttribute('aria-invalid')) !== 'true') throw new Error('[seller] the refused field is not aria-invalid');
  const describedBy = (await input.getAttribute('aria-describedby')) ?? '';
  if (!describedBy.split(' ').includes('error-displayName')) throw new Error(`[seller] the field is described by "${describedBy}", not its error`);
  if ((await seller.tid('account-saved').count()) > 0) throw new Error('[seller] "Saved" shown for a refused name');
  await seller.seeText(seller.tid('current-user-name'), localPart(seller.email), 'the header name after the refusal');
  await seller.shot('account-name-too-short');
  await seller.checkA11y('Account with the display-name error');

  // Saved.
  await input.fill(NAME);
  await seller.tid('display-name-submit').click();
  await seller.seeText(seller.tid('account-saved'), `Saved. Buyers and sellers now see you as ${NAME}.`, 'the saved message', STEP_MS);
  await seller.seeText(seller.tid('current-user-name'), NAME, 'the name in the header', STEP_MS);
  if ((await seller.tid('error-displayName').count()) > 0) throw new Error('[seller] the error stayed after saving');
  await seller.seeText(seller.tid('account-display-name'), NAME, 'the display name in the account details');
  await seller.shot('account-saved');
  await seller.checkA11y('Account after saving');

  // The same page on a phone (the same account, signed in there too).
  const phone = await sc.actor('seller-phone', PHONE);
  await phone.signUpOrIn(seller.email);
  await phone.seeText(phone.tid('current-user-name'), NAME, 'the name in the header on a phone', STEP_MS);
  await phone.page.goto('/account');
  await phone.see('[data-testid="display-name-form"]', 'the display-name form on a phone', STEP_MS);
  if ((await phone.tid('display-name-input').inputValue()) !== NAME) throw new Error('[seller-phone] the field does not hold the saved name');
  await phone.checkPhonePage('Account (390 px)');

  // A visitor: the stuff page, then the catalogue card, name the seller.
  const visitor = await sc.actor('visitor');
  await seeAfterReloads(visitor, `/stuff/${encodeURIComponent(id)}`, '[data-testid="stuff-page"]', () => visitor.tid('sold-by'), `Sold by ${NAME}`, 'the seller line of the stuff page');
  await visitor.seeText(visitor.tid('stuff-title'), title, 'the stuff title');
  await visitor.shot('stuff-page-sold-by');
  const card = () => visitor.tid(`stuff-card-${id}`);
  await seeAfterReloads(visitor, '/', `[data-testid="stuff-card-${id}"]`, () => card().getByTestId('card-seller-link'), NAME, 'the seller link of the card');
  await visitor.waitConnected();
  await visitor.shot('catalogue-card-seller');
  const sellerHref = await card().getByTestId('card-seller-link').getAttribute('href');
  if (!/^\/sellers\/[^/]+$/.test(sellerHref ?? '')) throw new Error(`[visitor] the card's seller link goes to ${sellerHref}`);
  await card().getByTestId('card-seller-link').click();
  await until(`[visitor] expected the address ${sellerHref}`, () => new URL(visitor.page.url()).pathname === sellerHref, STEP_MS);
  await visitor.see(`[data-testid="seller-list"] [data-testid="stuff-card-${id}"]`, 'the stuff on the seller page', STEP_MS);
  await visitor.seeText(visitor.page.locator('h1'), NAME, 'the seller page heading');
  await visitor.seeText(visitor.tid(`stuff-card-${id}`).getByTestId('card-seller-link'), NAME, 'the seller link of the card on the seller page');
  await visitor.shot('seller-page');
  await visitor.checkA11y('seller page');

  // The stuff page's own link to the seller goes to the same page.
  await visitor.openItem(id, title);
  const nameHref = await visitor.tid('seller-name-link').getAttribute('href');
  if (nameHref !== sellerHref) throw new Error(`[visitor] "Sold by" links to ${nameHref}, the card to ${sellerHref}`);
});

scenario('marketplace sales: the seller gets a live toast when paid, dismisses it, and Sales shows paid, fee, earned and the total', async (sc) => {
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([seller.signUp(), buyer.signUp()]);
  const title = uniqueTitle('Organic chemistry past papers');
  const id = await seller.sell({ title, price: '12.00' });

  // Before any sale.
  await openMyListings(seller);
  await seller.see(`[data-testid="listing-${id}"][data-status="available"]`, 'the listing, Available', STEP_MS);
  await seller.seeText(seller.tid('sales-empty'), 'No sales yet', 'the empty Sales');
  await seller.seeText(seller.tid('sales-total'), 'Total earned: €0.00', 'the total before any sale');
  await seller.seeText(seller.tid('sales').locator('h2'), 'Sales', 'the Sales heading');
  const region = seller.tid('toasts');
  if ((await region.getAttribute('role')) !== 'status' || (await region.getAttribute('aria-live')) !== 'polite') {
    throw new Error('[seller] the toasts are not a polite status region');
  }
  await seller.shot('my-listings-no-sales');
  await seller.waitConnected();
  await seller.markDocument();

  // The buyer pays; the seller's open page gets the toast.
  const orderId = await buyAndPayWithRetries(buyer, id, title);
  const toast = await seller.see(`[data-testid="toasts"] [data-testid="sale-toast"][data-order-id="${orderId}"]`, 'the sale toast');
  await toast.hover(); // holds the toast's timer while it is checked
  await seller.seeText(toast.locator('.toast-message'), `Sold: ${title} — you earned €10.80`, 'the sale toast');
  await seller.assertNotReloaded('the sale toast');
  await seller.shot('sale-toast');
  await seller.checkA11y('My listings with the sale toast');
  const dismiss = toast.getByRole('button', { name: 'Dismiss', exact: true });
  if ((await dismiss.getAttribute('data-testid')) !== 'toast-dismiss') throw new Error('[seller] the Dismiss button is not toast-dismiss');
  await dismiss.click();
  await until('[seller] expected the dismissed toast to go', async () => (await seller.tid('sale-toast').count()) === 0, STEP_MS);
  if ((await buyer.tid('sale-toast').count()) > 0) throw new Error('[buyer] the buyer got a sale toast');

  // Sales, live on the page that stayed open.
  const sale = seller.tid(`sale-${orderId}`);
  await seller.see(sale, 'the sale in Sales', STEP_MS);
  const checkSale = async (when) => {
    await seller.seeText(sale.getByTestId('sale-title'), title, `the sale's title ${when}`, STEP_MS);
    await seller.seeText(sale.getByTestId('sale-buyer'), localPart(buyer.email), `the buyer's name ${when}`, STEP_MS);
    await seller.seeText(sale.getByTestId('sale-paid'), '€12.00', `what was paid ${when}`, STEP_MS);
    await seller.seeText(sale.getByTestId('sale-fee'), '€1.20', `the fee ${when}`, STEP_MS);
    await seller.seeText(sale.getByTestId('sale-earned'), '€10.80', `what the seller earned ${when}`, STEP_MS);
    await seller.seeText(seller.tid('sales-total'), 'Total earned: €10.80', `the total ${when}`, STEP_MS);
    if ((await seller.tid('sales-empty').count()) > 0) throw new Error(`[seller] "No sales yet" still shown ${when}`);
    await seller.see(`[data-testid="listing-${id}"][data-status="sold"]`, `the listing, Sold, ${when}`, STEP_MS);
  };
  await checkSale('on the open page');
  await seller.assertNotReloaded('the sale in Sales');
  await seller.shot('my-listings-with-sale', { fullPage: true });
  await seller.checkA11y('My listings with a sale');

  // The same after a reload (`order:sales`), at 1280 and 390 px.
  await seller.page.reload();
  await seller.see('[data-testid="listings"]', 'My listings after a reload', STEP_MS);
  await checkSale('after a reload');
  await seller.page.setViewportSize(NARROW);
  await seller.see(sale, 'the sale at 390 px');
  await seller.shot('my-listings-with-sale-390', { fullPage: true });
  await seller.assertNoHorizontalOverflow('My listings with a sale (390 px)');
  await seller.checkA11y('My listings with a sale (390 px)');
  await seller.page.setViewportSize(DESKTOP);
});
