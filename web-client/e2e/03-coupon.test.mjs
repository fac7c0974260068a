// The admin (admin@example.com is in ADMIN_EMAILS) creates a 100% coupon on the admin page; a
// buyer orders an item, types the coupon (the Pay button turns into "Get it free" once
// `coupon:check` answers) and pays with the coupon alone; the order is Complete and the coupon
// counts one redemption. Prices read as en-GB formats euros (`€7.99`).

import { STEP_MS, scenario, uniqueTitle } from './lib/harness.mjs';

const ADMIN_EMAIL = 'admin@example.com';

scenario('coupon: the admin creates a 100% coupon, a buyer pays with it alone', async (sc) => {
  const admin = await sc.actor('admin');
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([admin.signUpOrIn(ADMIN_EMAIL), seller.signUp(), buyer.signUp()]);
  await admin.seeText(admin.tid('current-user-role'), 'admin', 'the role in the header');

  // The admin page, reached from the header.
  await admin.tid('nav-admin').click();
  await admin.see('[data-testid="coupon-form"]', 'the coupon form', STEP_MS);
  await admin.see('[data-testid="coupon-list"], [data-testid="coupons-empty"]', 'the coupon list (or "No coupons yet")', STEP_MS);
  await admin.tid('percent-off-input').fill('100');
  await admin.tid('max-redemptions-input').fill('1');
  await admin.tid('create-coupon-button').click();
  const codeEl = await admin.see('[data-testid="created-coupon-code"]', 'the new coupon code', STEP_MS);
  const code = ((await codeEl.textContent()) ?? '').trim();
  if (!code) throw new Error('[admin] the created coupon code is empty');
  const row = admin.tid(`coupon-row-${code}`);
  await admin.see(row, `the coupon ${code} in the list`);
  await admin.seeText(row.locator('td').nth(1), '100%', 'the coupon percentage');
  await admin.seeText(row.locator('td').nth(2), '0 of 1', 'the coupon redemptions');
  await admin.shot('coupon-created', { fullPage: true });

  // A buyer orders an item and pays with the coupon only.
  const title = uniqueTitle('Thesis template');
  const id = await seller.sell({ title, price: '7.99' });
  await buyer.openItem(id, title);
  await buyer.buy();
  await buyer.seeOrderStatus('created', 'Awaiting payment');
  await buyer.tid('coupon-input').fill(code);
  // coupon:check previews the discount: nothing to pay, so the button says so.
  await buyer.seeText(buyer.tid('pay-button'), 'Get it free', 'the Pay button with the 100% coupon', STEP_MS);
  await buyer.tid('pay-button').click();
  await buyer
    .see('[data-testid="order-page"][data-status="complete"]', 'the order page with status complete', STEP_MS)
    .catch(async (e) => {
      const err = await buyer.page.locator('[data-testid="payment-error"], [data-testid="error-couponCode"]').first().textContent().catch(() => null);
      throw new Error(`${e.message}${err ? `; error shown: "${err}"` : ''}`);
    });
  await buyer.seeText(buyer.tid('order-status'), 'Complete', 'the order status badge');
  await buyer.seeText(buyer.tid('payment-success'), `Payment received: €0.00 (coupon ${code}).`, 'the payment confirmation');
  await buyer.shot('paid-with-coupon');

  // The item is sold; the coupon shows its redemption (the admin list is fetched on load).
  await buyer.tid('order-stuff-link').click();
  await buyer.seeItemStatus('sold', 'Sold', STEP_MS);
  await admin.page.reload();
  await admin.seeText(admin.tid(`coupon-row-${code}`).locator('td').nth(2), '1 of 1', 'the coupon redemptions after use', STEP_MS);
  await admin.shot('coupon-redeemed');
});
