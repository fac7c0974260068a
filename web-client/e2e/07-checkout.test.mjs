// Checkout through `payment:intent` with the built-in test gateway (issue 15, items 1 and 5).
//
// - The order page asks `payment:intent` when it is ready to pay: the form says which gateway
//   answered (`data-gateway="test"`: no publishable key) and the intent's amount
//   (`data-intent-amount-cents`); the test methods are offered and Pay confirms on the server
//   (`payment:create`); the order completes on the server's `order:updated`.
// - A declined card (`pm_card_chargeDeclined`): 402 `Your card was declined` on the page and the
//   order cancelled; an admin cannot refund it (it was never paid).
// - On a phone, a 25% coupon is previewed, the page asks for a new intent of the lower amount, the
//   Pay button reads it, and that is what is charged.
// - An admin refunds a paid order from the Admin page (a confirmation step first; an unknown
//   order number is refused on the field); the buyer's order page, open in another browser,
//   turns Refunded without a reload, and the seller's stuff page shows it Available again.
// axe-core runs on every new or changed page; screenshots of the payment form and of the refund
// form are taken at 1280 and 390 px wide.
//
// The hold is 3 s (ORDER_HOLD_SECONDS=3): a step that needs an order awaiting payment orders
// again when the hold ran out while it ran (never on any other failure), up to ATTEMPTS times.

import { BASE_URL, DESKTOP, LIVE_MS, NARROW, PHONE, STEP_MS, scenario, uniqueTitle, until } from './lib/harness.mjs';

const ADMIN_EMAIL = 'admin@example.com';
const DECLINED_MESSAGE = 'Your card was declined';
const CANCELLED_MESSAGE = 'Cannot pay for a cancelled order';
const NOT_FOUND_MESSAGE = 'Order not found';
const NOT_PAID_MESSAGE = 'This order has not been paid, so there is nothing to refund';
const ATTEMPTS = 4;

/** Is the order page still showing an order that awaits payment? */
async function stillHeld(actor) {
  return (await actor.page.locator('[data-testid="order-page"][data-status="created"]').count()) > 0;
}

/** Waits until the payment form is ready to pay with the test gateway, for the intent of `amountCents`. */
async function seeTestGatewayReady(actor, amountCents, what) {
  const sel = `[data-testid="payment-form"][data-gateway="test"][data-intent-state="ready"][data-intent-amount-cents="${amountCents}"]`;
  await actor.see(sel, `${what}: the payment form with the test gateway's intent of ${amountCents} cents`, STEP_MS);
  await until(`[${actor.label}] ${what}: expected an enabled Pay button`, () => actor.tid('pay-button').isEnabled(), STEP_MS);
}

/**
 * Orders `id` and runs `whileHeld(actor, orderId)` while the order awaits payment. When the 3 s hold
 * ran out before `whileHeld` finished, orders again (up to ATTEMPTS times); a failure while the order
 * was still held fails at once. Returns the order id.
 */
async function withHeldOrder(actor, { id, title }, what, whileHeld) {
  for (let attempt = 1; ; attempt += 1) {
    await actor.openItem(id, title);
    const orderId = await actor.buy();
    let failure = null;
    try {
      await whileHeld(actor, orderId);
    } catch (e) {
      failure = e;
    }
    if (await stillHeld(actor)) {
      if (failure) throw failure;
      return orderId;
    }
    if (attempt >= ATTEMPTS) {
      throw new Error(`[${actor.label}] ${what}: the 3 s hold ran out every time (${ATTEMPTS} orders)${failure ? `; last: ${failure.message}` : ''}`);
    }
    console.log(`[${actor.label}] ${what}: the hold ran out first (order ${attempt}); ordering again`);
  }
}

/** The text of the payment error banner, or null. */
async function paymentError(actor) {
  const el = actor.tid('payment-error');
  return (await el.count()) ? ((await el.textContent()) ?? '').trim() : null;
}

/**
 * Clicks Pay and waits for the outcome: `complete`, `declined` (the 402 message shown) or `expired`
 * (the hold ran out first: the form was gone, or the server said the order is cancelled). Anything
 * else fails.
 */
async function payAndWait(actor, what) {
  try {
    await actor.tid('pay-button').click({ timeout: 2_000 });
  } catch (e) {
    if (!(await stillHeld(actor))) return 'expired';
    throw e;
  }
  return until(
    `[${actor.label}] ${what}: expected the order to complete or a payment error`,
    async () => {
      if ((await actor.page.locator('[data-testid="order-page"][data-status="complete"]').count()) > 0) return 'complete';
      const err = await paymentError(actor);
      if (err === DECLINED_MESSAGE) return 'declined';
      if (err === CANCELLED_MESSAGE) return 'expired';
      if (err) throw new Error(`[${actor.label}] ${what}: unexpected payment error "${err}"`);
      return null;
    },
    STEP_MS,
  );
}

/** Opens the Admin page from the header. */
async function openAdmin(admin) {
  await admin.tid('nav-admin').click();
  await admin.see('[data-testid="refund-form"]', 'the refund form', STEP_MS);
}

/** Types an order number, clicks Refund…, waits for the confirmation question. */
async function askRefund(admin, orderId) {
  await admin.tid('refund-order-input').fill(orderId);
  await admin.tid('refund-button').click();
  await admin.see('[data-testid="refund-confirmation"]', 'the refund confirmation', STEP_MS);
  await admin.seeText(admin.page.locator('#refund-question'), `Refund order ${orderId}? This cannot be undone.`, 'the confirmation question');
}

/** Fails unless the refund field shows `message` (aria-invalid, described by the error). */
async function seeRefundFieldError(admin, message) {
  await admin.seeText(admin.tid('error-orderId'), message, 'the error on the order number field', STEP_MS);
  const input = admin.tid('refund-order-input');
  if ((await input.getAttribute('aria-invalid')) !== 'true') throw new Error(`[${admin.label}] the refused order number is not aria-invalid`);
  if (!((await input.getAttribute('aria-describedby')) ?? '').split(' ').includes('error-orderId')) {
    throw new Error(`[${admin.label}] the refund error is not tied to its field (aria-describedby)`);
  }
}

scenario('checkout: pay through payment:intent (test gateway); an admin refunds it and the buyer sees it live', async (sc) => {
  const admin = await sc.actor('admin');
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([admin.signUpOrIn(ADMIN_EMAIL), seller.signUp(), buyer.signUp()]);

  // With the built-in gateway nothing may come from Stripe (the e2e machine has no internet).
  const offSite = [];
  const site = new URL(BASE_URL).origin;
  buyer.page.on('request', (req) => {
    const url = new URL(req.url());
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin !== site) offSite.push(req.url());
  });

  const title = uniqueTitle('Organic chemistry flashcards');
  const id = await seller.sell({ title, price: '7,50' });

  // The payment form of an order awaiting payment: the intent of the full price, the test methods.
  await withHeldOrder(buyer, { id, title }, 'the payment form', async (b) => {
    await seeTestGatewayReady(b, 750, 'the order page');
    await b.see('[data-testid="test-payment-methods"]', "the test gateway's payment methods");
    await b.seeText(b.tid('pay-button'), 'Pay €7.50', 'the Pay button');
    await b.shot('payment-form-1280', { fullPage: true });
    await b.checkA11y('order page with the payment form (test gateway)');
  });

  // Pay with the Visa test card (ordering again if the hold runs out before the charge).
  let orderId = null;
  for (let attempt = 1; ; attempt += 1) {
    orderId = await withHeldOrder(buyer, { id, title }, 'paying', async (b) => {
      await seeTestGatewayReady(b, 750, 'before paying');
      await b.tid('payment-method-pm_card_visa').check();
    });
    const outcome = await payAndWait(buyer, 'paying with pm_card_visa');
    if (outcome === 'complete') break;
    if (outcome !== 'expired' || attempt >= ATTEMPTS) throw new Error(`[buyer] paying with pm_card_visa: ${outcome} (order ${attempt})`);
    console.log(`[buyer] paying: the hold ran out before the charge (order ${attempt}); ordering again`);
  }
  await buyer.seeOrderStatus('complete', 'Complete');
  await buyer.seeText(buyer.tid('payment-success'), 'Payment received: €7.50.', 'the payment confirmation');
  // The order number is on the page, to quote to support.
  await buyer.seeText(buyer.tid('order-id'), orderId, 'the order number on the order page');
  await buyer.see('[data-testid="copy-order-id"]', 'the Copy button of the order number');
  await buyer.checkA11y('paid order page with its order number');
  await buyer.shot('order-paid');
  if (offSite.length) throw new Error(`[buyer] the order page fetched from other sites with the built-in gateway: ${offSite.join(', ')}`);
  await buyer.markDocument();
  await seller.seeItemStatus('sold', 'Sold', LIVE_MS);
  await seller.markDocument();

  // The admin's refund form; an unknown order number is refused on the field.
  await openAdmin(admin);
  await admin.shot('refund-form-1280');
  await admin.checkA11y('admin page with the refund form');
  await askRefund(admin, 'no-such-order');
  await admin.tid('refund-confirm').click();
  await seeRefundFieldError(admin, NOT_FOUND_MESSAGE);
  await admin.shot('refund-order-not-found-1280');
  await admin.checkA11y('refund form refusing an unknown order');

  // The paid order: confirm, and the money goes back.
  await askRefund(admin, orderId);
  await admin.shot('refund-confirmation-1280');
  await admin.checkA11y('refund confirmation');
  await admin.tid('refund-confirm').click();
  const success = await admin.see('[data-testid="refund-success"]', 'the refund confirmation banner', STEP_MS);
  const said = ((await success.textContent()) ?? '').replace(/\s+/g, ' ').trim();
  if (!said.startsWith(`Refunded order ${orderId}: €7.50 went back to the buyer`)) throw new Error(`[admin] the refund banner reads "${said}"`);
  if ((await admin.tid('error-orderId').count()) > 0) throw new Error('[admin] a refund that went through still shows a field error');
  await admin.shot('refund-done-1280');
  await admin.checkA11y('refund done');

  // The buyer, without reloading: Refunded, the banner, no more delivery.
  await buyer.seeOrderStatus('refunded', 'Refunded', LIVE_MS);
  await buyer.see('[data-testid="order-refunded"]', 'the refunded banner', LIVE_MS);
  await until('[buyer] the delivery to go away after the refund', async () => (await buyer.tid('delivery').count()) === 0, LIVE_MS);
  await buyer.assertNotReloaded('the refund showing on the order page');
  await buyer.shot('order-refunded-live');
  await buyer.checkA11y('refunded order page');
  // The seller's stuff is for sale again, live.
  await seller.seeItemStatus('available', 'Available', LIVE_MS);
  await seller.assertNotReloaded('the refunded stuff becoming available');

  // The refund form at 390 px: no sideways scrolling, 44 px targets, axe; with a question open.
  await admin.page.setViewportSize(NARROW);
  await admin.tid('refund-order-input').fill(orderId);
  await admin.checkPhonePage('refund form at 390 px');
  await askRefund(admin, orderId);
  await admin.checkPhonePage('refund confirmation at 390 px');
  // Refunding it again changes nothing and says the same.
  await admin.tid('refund-confirm').click();
  await admin.see('[data-testid="refund-success"]', 'the refund banner for a refunded order', STEP_MS);
  await admin.page.setViewportSize(DESKTOP);
});

scenario('checkout: a declined card (pm_card_chargeDeclined) shows 402 and cancels the order, which cannot be refunded', async (sc) => {
  const admin = await sc.actor('admin');
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer');
  await Promise.all([admin.signUpOrIn(ADMIN_EMAIL), seller.signUp(), buyer.signUp()]);

  const title = uniqueTitle('Thermodynamics past papers');
  const id = await seller.sell({ title, price: '4.00' });

  let orderId = null;
  for (let attempt = 1; ; attempt += 1) {
    orderId = await withHeldOrder(buyer, { id, title }, 'paying with the declined card', async (b) => {
      await seeTestGatewayReady(b, 400, 'before paying');
      await b.tid('payment-method-pm_card_chargeDeclined').check();
    });
    const outcome = await payAndWait(buyer, 'paying with pm_card_chargeDeclined');
    if (outcome === 'declined') break;
    if (outcome !== 'expired' || attempt >= ATTEMPTS) throw new Error(`[buyer] the declined card: ${outcome} (order ${attempt})`);
    console.log(`[buyer] the declined card: the hold ran out before the charge (order ${attempt}); ordering again`);
  }
  const banner = buyer.tid('payment-error');
  if ((await banner.getAttribute('role')) !== 'alert') throw new Error('[buyer] the decline is not announced (role="alert")');
  await buyer.seeOrderStatus('cancelled', 'Cancelled', LIVE_MS);
  await buyer.see('[data-testid="order-cancelled"]', 'the cancelled banner');
  await buyer.seeText(buyer.tid('payment-error'), DECLINED_MESSAGE, 'the decline, still shown once the order is cancelled');
  if ((await buyer.tid('payment-form').count()) > 0) throw new Error('[buyer] a cancelled order still offers the payment form');
  await buyer.shot('declined-1280');
  await buyer.checkA11y('order page after a declined card');

  // Nothing was paid, so nothing can be refunded: the server says so on the field.
  await openAdmin(admin);
  await askRefund(admin, orderId);
  await admin.tid('refund-confirm').click();
  await seeRefundFieldError(admin, NOT_PAID_MESSAGE);
  await admin.checkA11y('refund form refusing an unpaid order');
});

scenario('checkout on a phone: a coupon preview asks for a new intent, the Pay button reads it, and that is charged', async (sc) => {
  const admin = await sc.actor('admin');
  const seller = await sc.actor('seller');
  const buyer = await sc.actor('buyer', PHONE);
  await Promise.all([admin.signUpOrIn(ADMIN_EMAIL), seller.signUp(), buyer.signUp()]);

  const title = uniqueTitle('Macroeconomics summary');
  const id = await seller.sell({ title, price: '12.00' });
  await openAdmin(admin);
  await admin.tid('percent-off-input').fill('25');
  await admin.tid('create-coupon-button').click();
  const codeEl = await admin.see('[data-testid="created-coupon-code"]', 'the new coupon code', STEP_MS);
  const code = ((await codeEl.textContent()) ?? '').trim();
  if (!code) throw new Error('[admin] the created coupon code is empty');

  // The payment form on a phone, before and after the coupon.
  await withHeldOrder(buyer, { id, title }, 'the payment form on a phone', async (b) => {
    await seeTestGatewayReady(b, 1200, 'the order page');
    await b.shot('payment-form-390', { fullPage: true });
    await b.tid('coupon-input').fill(code);
    await b.seeText(b.tid('coupon-preview'), 'Coupon applied: €3.00 off. You pay €9.00.', 'the coupon preview', STEP_MS);
    // The coupon changed the amount: a new intent of 9.00.
    await seeTestGatewayReady(b, 900, 'after the coupon');
    await b.seeText(b.tid('pay-button'), 'Pay €9.00', 'the Pay button with the coupon');
    await b.checkPhonePage('order page with the coupon previewed (390 px)');
  });

  // Pay with the coupon: the amount on the button is charged.
  for (let attempt = 1; ; attempt += 1) {
    await withHeldOrder(buyer, { id, title }, 'paying with the coupon', async (b) => {
      await seeTestGatewayReady(b, 1200, 'before the coupon');
      await b.tid('coupon-input').fill(code);
      await seeTestGatewayReady(b, 900, 'with the coupon');
      await b.seeText(b.tid('pay-button'), 'Pay €9.00', 'the Pay button with the coupon');
    });
    const outcome = await payAndWait(buyer, 'paying with the coupon');
    if (outcome === 'complete') break;
    if (outcome !== 'expired' || attempt >= ATTEMPTS) throw new Error(`[buyer] paying with the coupon: ${outcome} (order ${attempt})`);
    console.log(`[buyer] paying with the coupon: the hold ran out before the charge (order ${attempt}); ordering again`);
  }
  await buyer.seeOrderStatus('complete', 'Complete');
  await buyer.seeText(buyer.tid('payment-success'), `Payment received: €9.00 (coupon ${code}).`, 'the payment confirmation');
  await buyer.checkPhonePage('paid order page with its order number (390 px)');
});
