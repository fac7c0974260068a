// Seller lists an item; buyer A sees it appear live and buys it; buyer B, on the item page, sees
// "Being checked out" and a disabled BUY without reloading; A pays with pm_card_visa; B sees Sold.
// The system runs with ORDER_HOLD_SECONDS=3, so A pays right after B's checks.

import assert from 'node:assert/strict';
import { CHECKED_OUT_MESSAGE, LIVE_MS, NARROW, scenario, STEP_MS, uniqueTitle, until } from './lib/harness.mjs';

scenario('live checkout: a listed item appears live, is held by A (B is blocked), A pays, B sees Sold', async (sc) => {
  const seller = await sc.actor('seller');
  const buyerA = await sc.actor('buyer-a');
  const buyerB = await sc.actor('buyer-b');
  await Promise.all([seller.signUp(), buyerA.signUp(), buyerB.signUp()]);
  await seller.shot('signed-up');

  // A waits on the catalogue before the item exists.
  await buyerA.openCatalogue();
  await buyerA.markDocument();

  const title = uniqueTitle('Lecture notes');
  const id = await seller.sell({ title, price: '12.50', description: 'Linear algebra, all 14 lectures, typed up.' });
  await seller.shot('item-listed');

  // A: the card appears without a reload, Available, with the price.
  const card = buyerA.tid(`stuff-card-${id}`);
  await buyerA.see(card, `the new item's card (${title}) in the catalogue, live`, LIVE_MS);
  await buyerA.seeText(card.getByTestId('stuff-link'), title, 'the card title');
  await buyerA.seeText(card.getByTestId('status-badge'), 'Available', 'the card status badge');
  await buyerA.seeText(card.getByTestId('price'), '€12.50', 'the card price');
  await buyerA.assertNotReloaded('the new item appearing in the catalogue');
  await buyerA.shot('catalogue-item-appeared-live', { fullPage: true });

  // The catalogue on a phone-sized screen, in a context of its own.
  // Signed in, so the header carries a long e-mail too (the tightest case).
  const phone = await sc.actor('phone', { viewport: NARROW });
  await phone.signUp();
  await phone.openCatalogue();
  await phone.see(phone.tid(`stuff-card-${id}`), 'the item card on the narrow catalogue', STEP_MS);
  await phone.shot('catalogue-390x844');
  await phone.context.close();

  // B waits on the item page.
  await buyerB.openItem(id, title);
  await buyerB.seeItemStatus('available', 'Available');
  await buyerB.markDocument();

  // A opens the item from the catalogue (client-side) and clicks BUY.
  await card.getByTestId('stuff-link').click();
  await buyerA.see('[data-testid="stuff-page"][data-status="available"]', 'the item page, Available', STEP_MS);
  await buyerA.shot('item-page-before-buy');
  const boughtAt = Date.now();
  const orderId = await buyerA.buy();
  assert.ok(orderId, 'an order id in the URL');
  await buyerA.seeOrderStatus('created', 'Awaiting payment');
  await buyerA.see('[data-testid="countdown"][data-expired="false"]', 'a running countdown');

  // B, without reloading: "Being checked out", BUY disabled, the contract's message next to it.
  await buyerB.seeItemStatus('reserved', 'Being checked out', LIVE_MS);
  await until('[buyer-b] expected the BUY button to be disabled', () => buyerB.tid('buy-button').isDisabled(), LIVE_MS);
  await buyerB.seeText(buyerB.tid('buy-blocked-message'), CHECKED_OUT_MESSAGE, 'the message next to BUY');
  const describedBy = await buyerB.tid('buy-button').getAttribute('aria-describedby');
  assert.equal(describedBy, 'buy-blocked-message', 'the disabled BUY button is described by the message');
  await buyerB.assertNotReloaded('"Being checked out" appearing');
  await buyerB.shot('being-checked-out'); // viewport only: quick, the hold is 3 s

  // A pays with the Visa test card, well within the 3 s hold.
  await buyerA.tid('payment-method-pm_card_visa').check();
  await buyerA.tid('pay-button').click();
  const paidAfterMs = Date.now() - boughtAt;
  console.log(`[buyer-a] Pay clicked ${paidAfterMs} ms after BUY (hold: 3000 ms)`);
  await buyerA
    .see('[data-testid="order-page"][data-status="complete"]', 'the order page with status complete', STEP_MS)
    .catch(async (e) => {
      const err = await buyerA.tid('payment-error').textContent().catch(() => null);
      throw new Error(
        `${e.message}${err ? `; payment error shown: "${err}"` : ''} (Pay was clicked ${paidAfterMs} ms after BUY; the hold is 3 s)`,
      );
    });
  await buyerA.seeText(buyerA.tid('order-status'), 'Complete', 'the order status badge');
  await buyerA.see('[data-testid="order-complete"]', 'the "Paid" banner');
  await buyerA.seeText(buyerA.tid('payment-success'), 'Payment received: €12.50.', 'the payment confirmation');
  await buyerA.shot('order-paid');

  // B sees Sold, still without reloading.
  await buyerB.seeItemStatus('sold', 'Sold', LIVE_MS);
  await buyerB.seeText(buyerB.tid('buy-button'), 'Sold', 'the BUY button');
  assert.ok(await buyerB.tid('buy-button').isDisabled(), 'the Sold button is disabled');
  await buyerB.see('[data-testid="sold-message"]', 'the sold message');
  await buyerB.assertNotReloaded('Sold appearing');
  await buyerB.shot('sold');

  // A's order list shows the order complete.
  await buyerA.tid('nav-orders').click();
  const row = buyerA.tid(`order-row-${orderId}`);
  await buyerA.see(row, 'the order in My orders', STEP_MS);
  await buyerA.seeText(row.getByTestId('order-status'), 'Complete', 'the order row status');
  await buyerA.seeText(row.getByTestId('order-link'), title, 'the order row title');
  await buyerA.shot('my-orders');
});
