// A buys and does not pay: the 3 s hold (ORDER_HOLD_SECONDS=3) runs out on A's countdown, the
// order is cancelled, and B, on the item page all along, sees Available again without reloading
// and buys it.

import { LIVE_MS, scenario, STEP_MS, uniqueTitle, until } from './lib/harness.mjs';

/** Hold (3 s) + the broker's TTL dead-lettering + the services' reaction, generously. */
const EXPIRY_MS = 20_000;

scenario('hold expiry: A lets the 3 s hold run out, B sees Available live and buys', async (sc) => {
  const seller = await sc.actor('seller');
  const buyerA = await sc.actor('buyer-a');
  const buyerB = await sc.actor('buyer-b');
  await Promise.all([seller.signUp(), buyerA.signUp(), buyerB.signUp()]);

  const title = uniqueTitle('Past exam papers');
  const id = await seller.sell({ title, price: '4', description: 'Five years of past papers with worked answers.' });

  await buyerB.openItem(id, title);
  await buyerB.seeItemStatus('available', 'Available');
  await buyerB.markDocument();

  await buyerA.openItem(id, title);
  await buyerA.markDocument();
  const orderA = await buyerA.buy();
  await buyerA.seeOrderStatus('created', 'Awaiting payment');
  const countdown = buyerA.tid('countdown');
  await buyerA.see('[data-testid="countdown"][data-expired="false"]', 'a running countdown');
  const shown = ((await countdown.textContent()) ?? '').trim();
  if (!/^00:0[0-3]$/.test(shown)) throw new Error(`[buyer-a] expected the countdown to start at 00:03 or less, got "${shown}"`);
  await buyerA.shot('countdown-running');

  await buyerB.seeItemStatus('reserved', 'Being checked out', LIVE_MS);
  await until('[buyer-b] expected the BUY button to be disabled while A holds the item', () => buyerB.tid('buy-button').isDisabled(), LIVE_MS);
  await buyerB.shot('being-checked-out');

  // The countdown reaches Expired, then the server cancels the order (pushed to A).
  await buyerA.see('[data-testid="countdown"][data-expired="true"]', 'the countdown reaching expired', EXPIRY_MS);
  await buyerA.seeText(countdown, 'Expired', 'the countdown');
  await buyerA.shot('countdown-expired');
  await buyerA.seeOrderStatus('cancelled', 'Cancelled', EXPIRY_MS);
  await buyerA.see('[data-testid="order-cancelled"]', 'the "order was cancelled" banner');
  if ((await buyerA.tid('payment-form').count()) !== 0) throw new Error('[buyer-a] the payment form is still shown on a cancelled order');
  await buyerA.assertNotReloaded('the order becoming cancelled');
  await buyerA.shot('order-cancelled');

  // B: Available again, live, and BUY works.
  await buyerB.seeItemStatus('available', 'Available', EXPIRY_MS);
  await until('[buyer-b] expected the BUY button to be enabled again', () => buyerB.tid('buy-button').isEnabled(), LIVE_MS);
  if ((await buyerB.tid('buy-blocked-message').count()) !== 0) throw new Error('[buyer-b] the "being checked out" message is still shown');
  await buyerB.assertNotReloaded('the item becoming available again');
  await buyerB.shot('available-again');

  const orderB = await buyerB.buy();
  if (orderB === orderA) throw new Error('B got A’s order id');
  await buyerB.seeOrderStatus('created', 'Awaiting payment', STEP_MS);
  await buyerB.see('[data-testid="countdown"][data-expired="false"]', 'a running countdown on B’s order');
  await buyerB.see('[data-testid="payment-form"]', 'the payment form');
  await buyerB.shot('bought-after-expiry');
});
