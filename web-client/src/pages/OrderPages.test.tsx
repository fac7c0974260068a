// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import { DEFAULT_CURRENCY, setCurrency } from '../api/format';
import type { Order } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { LibraryPage } from './LibraryPage';
import { COUPON_CHECK_DELAY_MS, MyOrdersPage, OrderPage } from './OrderPages';

function type(input: HTMLInputElement, value: string) {
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);
const order = (version: number, status: Order['status']): Order => ({
  id: 'o1',
  stuffId: 's1',
  userId: alice.id,
  status,
  expiresAt: new Date(T0 + 90_000).toISOString(),
  priceCents: 1250,
  version,
  createdAt: new Date(T0).toISOString(),
  // An order from before `stuffTitle` / `paidCents` (the page asks `stuff:get` for the title).
  stuffTitle: '',
  paidCents: null,
});

describe('<OrderPage>', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(T0);
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(T0 / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('order:get', () => ({ data: order(1, 'created') }));
    // The built-in test gateway: no publishable key.
    socket.responders.set('payment:intent', (p) => ({
      data: { clientSecret: `pi_test_${(p as { couponCode?: string }).couponCode ?? 'none'}_secret`, amountCents: 1250, currency: 'eur', publishableKey: null },
    }));
    socket.responders.set('stuff:get', () => ({
      data: { id: 's1', title: 'Notes', description: '', priceCents: 1250, sellerId: 'x', status: 'reserved', version: 2, createdAt: '', updatedAt: '' },
    }));
  });
  afterEach(() => {
    session.stop();
    vi.useRealTimers();
    setCurrency(DEFAULT_CURRENCY);
  });

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <OrderPage id="o1" />
      </SessionProvider>,
    );

  it('shows a live countdown and the payment form; a 402 says the card was declined', async () => {
    socket.responders.set('payment:create', () => ({ status: 402, errors: [{ message: 'Your card was declined' }] }));
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('order-status')!.textContent).toBe('Awaiting payment');
    expect(r.byTestId('countdown')!.textContent).toBe('01:30');
    act(() => vi.advanceTimersByTime(1000));
    expect(r.byTestId('countdown')!.textContent).toBe('01:29');
    expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
    expect(r.byTestId('stripe-payment-element')).toBeNull();

    await step(() => (r.byTestId('payment-method-pm_card_chargeDeclined') as HTMLInputElement).click());
    await step(() => (r.byTestId('pay-button') as HTMLButtonElement).click());
    expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', paymentMethod: 'pm_card_chargeDeclined' });
    expect(r.byTestId('payment-error')!.textContent).toBe('Your card was declined');
    expect(r.byTestId('payment-error')!.getAttribute('role')).toBe('alert');
    expect(document.activeElement).toBe(r.byTestId('payment-error'));

    // The server cancels the order and pushes it.
    await step(() => socket.push('order:updated', order(2, 'cancelled')));
    expect(r.byTestId('order-status')!.textContent).toBe('Cancelled');
    expect(r.byTestId('pay-button')).toBeNull();
    // The reason stays on screen after the form is gone.
    expect(r.byTestId('payment-error')!.textContent).toBe('Your card was declined');
    expect(r.byTestId('order-cancelled')).not.toBeNull();
    r.unmount();
  });

  it('sends the coupon code once its intent is there, and shows a coupon error next to the field', async () => {
    socket.responders.set('coupon:check', () => ({ data: { amountCents: 1000, discountCents: 250 } }));
    socket.responders.set('payment:create', () => ({ status: 400, errors: [{ message: 'Unknown coupon', field: 'couponCode' }] }));
    const r = mount();
    await step(() => socket.acceptConnect());
    const input = r.byTestId('coupon-input') as HTMLInputElement;
    type(input, ' SAVE20 ');
    // Until the coupon is checked and its intent is there, Pay would charge another amount.
    expect((r.byTestId('pay-button') as HTMLButtonElement).disabled).toBe(true);
    await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
    await step();
    expect(socket.lastEmitted('payment:intent')!.payload).toEqual({ orderId: 'o1', couponCode: 'SAVE20' });
    expect((r.byTestId('pay-button') as HTMLButtonElement).disabled).toBe(false);
    input.focus();
    await step(() => (r.byTestId('pay-button') as HTMLButtonElement).click());
    expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', paymentMethod: 'pm_card_visa', couponCode: 'SAVE20' });
    expect(r.byTestId('error-couponCode')!.textContent).toBe('Unknown coupon');
    expect(document.activeElement).toBe(input);
    r.unmount();
  });

  it('keeps showing Expired after the server cancels the expired order; no countdown on a cancel before expiry', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    act(() => vi.advanceTimersByTime(90_000));
    expect(r.byTestId('countdown')!.textContent).toBe('Expired');
    // The cancellation follows the expiry within milliseconds; the countdown must not vanish.
    await step(() => socket.push('order:updated', order(2, 'cancelled')));
    expect(r.byTestId('order-status')!.textContent).toBe('Cancelled');
    expect(r.byTestId('countdown')!.textContent).toBe('Expired');
    expect(r.byTestId('countdown')!.getAttribute('data-expired')).toBe('true');
    expect(r.byTestId('payment-form')).toBeNull();
    r.unmount();

    // Cancelled with time left (the buyer cancelled): no countdown.
    socket.responders.set('order:get', () => ({ data: { ...order(2, 'cancelled'), expiresAt: new Date(Date.now() + 60_000).toISOString() } }));
    const r2 = mount();
    await step(() => socket.acceptConnect());
    expect(r2.byTestId('order-status')!.textContent).toBe('Cancelled');
    expect(r2.byTestId('countdown')).toBeNull();
    r2.unmount();
  });

  it('shows Expired when the hold runs out, and Complete when the order completes', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    act(() => vi.advanceTimersByTime(90_000));
    expect(r.byTestId('countdown')!.textContent).toBe('Expired');
    await step(() => socket.push('order:updated', order(3, 'complete')));
    expect(r.byTestId('order-status')!.textContent).toBe('Complete');
    expect(r.byTestId('countdown')).toBeNull();
    r.unmount();
  });

  it('a refunded order shows Refunded, says so, and no longer delivers', async () => {
    socket.responders.set('order:get', () => ({ data: order(3, 'complete') }));
    socket.responders.set('delivery:get', () => ({ data: { secretNote: 'the goods', files: [] } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('order-status')!.textContent).toBe('Complete');
    await step(() => socket.push('order:updated', order(4, 'refunded')));
    expect(r.byTestId('order-status')!.textContent).toBe('Refunded');
    expect(r.byTestId('order-refunded')).not.toBeNull();
    expect(r.byTestId('order-complete')).toBeNull();
    expect(r.container.textContent).not.toContain('Your stuff');
    expect(r.byTestId('countdown')).toBeNull();
    expect(r.byTestId('payment-form')).toBeNull();
    r.unmount();
  });

  it('shows the order number with a Copy button (a buyer quotes it to support)', async () => {
    const written: string[] = [];
    const clipboard = { writeText: vi.fn(async (t: string) => void written.push(t)) };
    Object.defineProperty(navigator, 'clipboard', { value: clipboard, configurable: true });
    try {
      const r = mount();
      await step(() => socket.acceptConnect());
      expect(r.byTestId('order-id')!.textContent).toBe('o1');
      const copy = r.byTestId('copy-order-id') as HTMLButtonElement;
      expect(copy.getAttribute('aria-label')).toBe('Copy the order number');
      await step(() => copy.click());
      expect(written).toEqual(['o1']);
      expect(r.byTestId('copy-order-id-status')!.textContent).toBe('Copied the order number.');
      expect(r.byTestId('copy-order-id-status')!.getAttribute('role')).toBe('status');
      // No clipboard (plain HTTP on a LAN): the number is selected instead.
      clipboard.writeText.mockImplementation(async () => {
        throw new Error('denied');
      });
      await step(() => copy.click());
      expect(r.byTestId('copy-order-id-status')!.textContent).toContain('Selected the order number');
      expect(window.getSelection()!.toString()).toBe('o1');
      r.unmount();
    } finally {
      delete (navigator as { clipboard?: unknown }).clipboard;
    }
  });

  it('a complete order shows the private note and downloads; links are renewed before they expire and on delivery:updated', async () => {
    let n = 0;
    socket.responders.set('order:get', () => ({ data: order(3, 'complete') }));
    socket.responders.set('delivery:get', () => {
      n += 1;
      return {
        data: {
          secretNote: 'Key: ABCD-1234\nhttps://example.edu/extra',
          files: [
            {
              id: 'f1',
              name: 'notes.pdf',
              sizeBytes: 2048,
              contentType: 'application/pdf',
              sha256: 'ab'.repeat(32),
              url: `/api/files/f1?v=${n}`,
              expiresAt: new Date(Date.now() + 300_000).toISOString(),
            },
          ],
        },
      };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(socket.lastEmitted('delivery:get')!.payload).toEqual({ orderId: 'o1' });
    expect(r.byTestId('secret-note')!.textContent).toBe('Key: ABCD-1234\nhttps://example.edu/extra');
    const link = () => r.byTestId('download-link') as HTMLAnchorElement;
    expect(link().getAttribute('href')).toBe('/api/files/f1?v=1');
    expect(link().getAttribute('download')).toBe('notes.pdf');

    // 15 s before the 300 s links expire, fresh ones are fetched.
    await step(() => vi.advanceTimersByTime(284_000));
    expect(n).toBe(1);
    await step(() => vi.advanceTimersByTime(1_000));
    expect(n).toBe(2);
    expect(link().getAttribute('href')).toBe('/api/files/f1?v=2');

    // The seller uploaded a new version.
    await step(() => socket.push('delivery:updated', { orderId: 'other' }));
    expect(n).toBe(2);
    await step(() => socket.push('delivery:updated', { orderId: 'o1' }));
    expect(n).toBe(3);
    expect(link().getAttribute('href')).toBe('/api/files/f1?v=3');
    r.unmount();
  });

  it('a click on an expired link fetches a fresh one first', async () => {
    let n = 0;
    socket.responders.set('order:get', () => ({ data: order(3, 'complete') }));
    socket.responders.set('delivery:get', () => {
      n += 1;
      return {
        data: {
          secretNote: null,
          files: [
            { id: 'f1', name: 'a.zip', sizeBytes: 1, contentType: 'application/zip', sha256: '00', url: `/api/files/f1?v=${n}`, expiresAt: new Date(Date.now() + 300_000).toISOString() },
          ],
        },
      };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(r.byTestId('secret-note')).toBeNull();
    // The tab slept: the link expired without the timer firing.
    vi.setSystemTime(T0 + 400_000);
    const clicked: string[] = [];
    const orig = HTMLAnchorElement.prototype.click;
    HTMLAnchorElement.prototype.click = function (this: HTMLAnchorElement) {
      clicked.push(this.getAttribute('href') ?? '');
    };
    try {
      const ev = new MouseEvent('click', { bubbles: true, cancelable: true });
      await step(() => r.byTestId('download-link')!.dispatchEvent(ev));
      expect(ev.defaultPrevented).toBe(true);
      expect(n).toBe(2);
      expect(clicked).toEqual(['/api/files/f1?v=2']);
    } finally {
      HTMLAnchorElement.prototype.click = orig;
    }
    r.unmount();
  });

  it('fetches fresh links when the tab is shown again with stale links', async () => {
    let n = 0;
    socket.responders.set('order:get', () => ({ data: order(3, 'complete') }));
    socket.responders.set('delivery:get', () => {
      n += 1;
      return {
        data: {
          secretNote: null,
          files: [
            { id: 'f1', name: 'a.zip', sizeBytes: 1, contentType: 'application/zip', sha256: '00', url: `/api/files/f1?v=${n}`, expiresAt: new Date(Date.now() + 300_000).toISOString() },
          ],
        },
      };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(n).toBe(1);
    // Shown again while the links are fresh: nothing to do.
    await step(() => document.dispatchEvent(new Event('visibilitychange')));
    expect(n).toBe(1);
    // The tab slept past the timer (background tabs throttle timers): shown again → fresh links.
    vi.setSystemTime(T0 + 290_000);
    await step(() => document.dispatchEvent(new Event('visibilitychange')));
    expect(n).toBe(2);
    expect(r.byTestId('download-link')!.getAttribute('href')).toBe('/api/files/f1?v=2');
    r.unmount();
  });

  it('does not ask for the delivery before the order is paid', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('delivery')).toBeNull();
    expect(socket.lastEmitted('delivery:get')).toBeUndefined();
    socket.responders.set('delivery:get', () => ({ data: { secretNote: 'hello', files: [] } }));
    await step(() => socket.push('order:updated', order(3, 'complete')));
    await step();
    expect(r.byTestId('secret-note')!.textContent).toBe('hello');
    r.unmount();
  });
  describe('coupon preview', () => {
    const checks = () => socket.emitted.filter((e) => e.event === 'coupon:check');
    const pending = () => checks().filter((e) => !e.answered);

    it('checks the code once typing pauses, shows the discount and the amount on the Pay button', async () => {
      const r = mount();
      await step(() => socket.acceptConnect());
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      const payButton = () => r.byTestId('pay-button')!.textContent;
      expect(payButton()).toBe('Pay €12.50');

      type(input, 'S');
      type(input, 'SA');
      type(input, ' SAVE25 ');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS - 1));
      expect(checks()).toHaveLength(0);
      await step(() => vi.advanceTimersByTime(1));
      expect(checks()).toHaveLength(1);
      expect(checks()[0]!.payload).toEqual({ orderId: 'o1', couponCode: 'SAVE25' });
      expect(r.byTestId('coupon-preview')!.textContent).toBe('Checking the coupon…');
      expect(payButton()).toBe('Pay €12.50');

      await step(() => checks()[0]!.reply({ data: { amountCents: 938, discountCents: 312 } }));
      const preview = r.byTestId('coupon-preview')!;
      expect(preview.textContent).toBe('Coupon applied: €3.12 off. You pay €9.38.');
      expect(preview.getAttribute('aria-live')).toBe('polite');
      expect(input.getAttribute('aria-describedby')).toContain('coupon-preview');
      expect(input.getAttribute('aria-invalid')).toBeNull();
      expect(payButton()).toBe('Pay €9.38');

      // Clearing the field goes back to the full price, without asking.
      type(input, '');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS * 2));
      expect(checks()).toHaveLength(1);
      expect(payButton()).toBe('Pay €12.50');
      expect(r.byTestId('coupon-preview')!.textContent).toBe('');

      // Typed again: paying sends the code; the server charges what the preview said.
      type(input, 'SAVE25');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step(() => checks()[1]!.reply({ data: { amountCents: 938, discountCents: 312 } }));
      expect(payButton()).toBe('Pay €9.38');
      socket.responders.set('payment:create', () => ({
        data: { id: 'p1', orderId: 'o1', amountCents: 938, couponCode: 'SAVE25', providerId: 'x', createdAt: '', refundedAt: null },
      }));
      await step(() => (r.byTestId('pay-button') as HTMLButtonElement).click());
      expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', paymentMethod: 'pm_card_visa', couponCode: 'SAVE25' });
      // Paid, but the order is complete only when the server says so.
      expect(r.byTestId('payment-confirming')!.textContent).toBe('Payment received — confirming…');
      expect(r.byTestId('payment-form')).toBeNull();
      expect(r.byTestId('order-status')!.textContent).toBe('Awaiting payment');
      await step(() => socket.push('order:updated', order(5, 'complete')));
      expect(r.byTestId('payment-confirming')).toBeNull();
      expect(r.byTestId('payment-success')!.textContent).toBe('Payment received: €9.38 (coupon SAVE25).');
      expect(r.byTestId('order-complete')).not.toBeNull();
      r.unmount();
    });

    it('a 100% coupon makes the button read "Get it free"', async () => {
      socket.responders.set('coupon:check', () => ({ data: { amountCents: 0, discountCents: 1250 } }));
      const r = mount();
      await step(() => socket.acceptConnect());
      type(r.byTestId('coupon-input') as HTMLInputElement, 'FREE100');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('pay-button')!.textContent).toBe('Get it free');
      expect(r.byTestId('coupon-preview')!.textContent).toBe('Coupon applied: €12.50 off. The stuff is free: no card is charged.');
      r.unmount();
    });

    it('checks at once on blur, and not again for the same code', async () => {
      socket.responders.set('coupon:check', () => ({ data: { amountCents: 625, discountCents: 625 } }));
      const r = mount();
      await step(() => socket.acceptConnect());
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'HALF');
      await step(() => input.dispatchEvent(new FocusEvent('focusout', { bubbles: true })));
      expect(checks()).toHaveLength(1);
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €6.25');
      // The debounce timer was replaced by the blur's check.
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS * 2));
      await step(() => input.dispatchEvent(new FocusEvent('focusout', { bubbles: true })));
      expect(checks()).toHaveLength(1);
      r.unmount();
    });

    it('ignores a slow answer about an older code', async () => {
      const r = mount();
      await step(() => socket.acceptConnect());
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'TEN');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      type(input, 'TWENTY');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      expect(checks().map((c) => (c.payload as { couponCode: string }).couponCode)).toEqual(['TEN', 'TWENTY']);
      const [ten, twenty] = checks();
      // The newer answer first, then the older one: the older one changes nothing.
      await step(() => twenty!.reply({ data: { amountCents: 1000, discountCents: 250 } }));
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €10.00');
      await step(() => ten!.reply({ data: { amountCents: 1125, discountCents: 125 } }));
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €10.00');
      expect(r.byTestId('coupon-preview')!.textContent).toBe('Coupon applied: €2.50 off. You pay €10.00.');

      // Same the other way round: an error about an older code never shows on the newer one.
      type(input, 'BAD');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      type(input, 'GOOD');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      const [bad, good] = pending();
      await step(() => good!.reply({ data: { amountCents: 1200, discountCents: 50 } }));
      await step(() => bad!.reply({ status: 400, errors: [{ message: 'Coupon is not valid', field: 'couponCode' }] }));
      expect(r.byTestId('error-couponCode')).toBeNull();
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.00');

      // An answer that arrives after the code changed is not shown for the new code either.
      type(input, 'GOOD2');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      type(input, 'GOOD23');
      await step(() => pending()[0]!.reply({ data: { amountCents: 1, discountCents: 1249 } }));
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
      r.unmount();
    });

    it('shows a refused coupon on the field, accessibly, and the full price on the button', async () => {
      socket.responders.set('coupon:check', (p) =>
        (p as { couponCode: string }).couponCode === 'TINY'
          ? { status: 400, errors: [{ message: 'This coupon would leave less than the smallest charge to pay', field: 'couponCode' }] }
          : { status: 400, errors: [{ message: 'Coupon has expired', field: 'couponCode' }] },
      );
      const r = mount();
      await step(() => socket.acceptConnect());
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      input.focus();
      type(input, 'TINY');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('error-couponCode')!.textContent).toBe('This coupon would leave less than the smallest charge to pay');
      expect(input.getAttribute('aria-invalid')).toBe('true');
      expect(input.getAttribute('aria-describedby')!.split(' ')).toEqual(['error-couponCode', 'coupon-preview']);
      expect(r.byTestId('coupon-preview')!.textContent).toBe(
        'Coupon not applied: This coupon would leave less than the smallest charge to pay',
      );
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
      // A check never moves the focus away from where the buyer types.
      expect(document.activeElement).toBe(input);

      type(input, 'OLD');
      expect(r.byTestId('error-couponCode')).toBeNull();
      expect(input.getAttribute('aria-invalid')).toBeNull();
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('error-couponCode')!.textContent).toBe('Coupon has expired');
      r.unmount();
    });

    it('a coupon refused when paying (redeemed meanwhile) replaces the preview', async () => {
      socket.responders.set('coupon:check', () => ({ data: { amountCents: 1000, discountCents: 250 } }));
      socket.responders.set('payment:create', () => ({
        status: 400,
        errors: [{ message: 'Coupon has been fully redeemed', field: 'couponCode' }],
      }));
      const r = mount();
      await step(() => socket.acceptConnect());
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'LAST1');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €10.00');
      await step(() => (r.byTestId('pay-button') as HTMLButtonElement).click());
      expect(r.byTestId('error-couponCode')!.textContent).toBe('Coupon has been fully redeemed');
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
      expect(r.byTestId('coupon-preview')!.textContent).toBe('Coupon not applied: Coupon has been fully redeemed');
      expect(document.activeElement).toBe(input);
      // Typing again forgets it.
      type(input, 'OTHER');
      expect(r.byTestId('error-couponCode')).toBeNull();
      r.unmount();
    });

    it('a failed check (not about the coupon) says paying will check again, and a 409 reloads the order', async () => {
      let gets = 0;
      socket.responders.set('order:get', () => {
        gets += 1;
        return { data: order(gets, 'created') };
      });
      socket.responders.set('coupon:check', () => ({ status: 409, errors: [{ message: 'Cannot pay for a cancelled order' }] }));
      const r = mount();
      await step(() => socket.acceptConnect());
      expect(gets).toBe(1);
      type(r.byTestId('coupon-input') as HTMLInputElement, 'ANY');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('coupon-preview')!.textContent).toBe('The coupon could not be checked right now; it is checked again when you pay.');
      expect(r.byTestId('error-couponCode')).toBeNull();
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
      expect(gets).toBe(2);
      r.unmount();
    });

    it('shows amounts in the server currency, and a payment in its own', async () => {
      setCurrency('usd');
      socket.responders.set('coupon:check', () => ({ data: { amountCents: 1000, discountCents: 250 } }));
      socket.responders.set('payment:create', () => ({
        data: { id: 'p1', orderId: 'o1', amountCents: 1000, currency: 'gbp', couponCode: 'X', providerId: 'x', createdAt: '', refundedAt: null },
      }));
      const r = mount();
      await step(() => socket.acceptConnect());
      expect(r.byTestId('order-price')!.textContent).toBe('$12.50');
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay $12.50');
      type(r.byTestId('coupon-input') as HTMLInputElement, 'X');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await step();
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay $10.00');
      await step(() => (r.byTestId('pay-button') as HTMLButtonElement).click());
      await step(() => socket.push('order:updated', order(5, 'complete')));
      expect(r.byTestId('payment-success')!.textContent).toBe('Payment received: £10.00 (coupon X).');
      r.unmount();
    });

    it('re-renders prices when the currency arrives after the page', async () => {
      const r = mount();
      await step(() => socket.acceptConnect());
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay €12.50');
      await step(() => setCurrency('jpy'));
      expect(r.byTestId('order-price')!.textContent).toBe('¥1,250');
      expect(r.byTestId('pay-button')!.textContent).toBe('Pay ¥1,250');
      r.unmount();
    });
  });
});

describe('what an order shows: the title it carries and what was paid', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  const paid = (id: string, extra: Partial<Order>): Order => ({
    ...order(3, 'complete'),
    id,
    stuffId: `s-${id}`,
    createdAt: `2026-11-0${id.length}T12:00:00Z`,
    ...extra,
  });

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:get', (p) => ({
      data: { id: (p as { id: string }).id, title: 'Fetched title', description: '', priceCents: 1250, sellerId: 'x', status: 'sold', version: 2, createdAt: '', updatedAt: '', files: [], hasSecretNote: true },
    }));
    socket.responders.set('delivery:get', () => ({ data: { secretNote: 'Key', files: [] } }));
  });
  afterEach(() => {
    session.stop();
    setCurrency(DEFAULT_CURRENCY);
  });

  it('My orders: the stuff title from the order, "Paid" for paid orders (with the list price after a coupon), stuff:get only for old orders', async () => {
    socket.responders.set('order:list', () => ({
      data: [
        paid('o', { stuffTitle: 'Calculus notes', paidCents: 1250 }),
        paid('oo', { stuffTitle: 'Physics notes', paidCents: 900 }),
        paid('ooo', { stuffTitle: 'Waiting', status: 'created', paidCents: null }),
        paid('oooo', { stuffTitle: '', paidCents: 1250 }),
      ],
    }));
    const r = render(
      <SessionProvider session={session}>
        <MyOrdersPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    await step();
    const rowOf = (id: string) => r.byTestId(`order-row-${id}`)!;
    const title = (id: string) => rowOf(id).querySelector('[data-testid="order-link"]')!.textContent;
    expect(title('o')).toBe('Calculus notes');
    expect(title('oo')).toBe('Physics notes');
    expect(title('oooo')).toBe('Fetched title');
    // Only the order without a title needed its stuff.
    expect(socket.emitted.filter((e) => e.event === 'stuff:get').map((e) => e.payload)).toEqual([{ id: 's-oooo' }]);
    expect(rowOf('o').querySelector('[data-testid="order-amount"]')!.textContent).toBe('Paid €12.50');
    expect(rowOf('oo').querySelector('[data-testid="order-amount-paid"]')!.textContent).toBe('Paid €9.00');
    expect(rowOf('oo').querySelector('[data-testid="order-amount-list-price"]')!.textContent).toBe(' (price €12.50)');
    // Not paid yet: the list price.
    expect(rowOf('ooo').querySelector('[data-testid="order-amount"]')!.textContent).toBe('€12.50');
    r.unmount();
  });

  it('the order page shows the title from the order and a Paid row; the Library says what was paid', async () => {
    setCurrency('usd');
    const o = paid('o1', { stuffTitle: 'Calculus notes', paidCents: 900 });
    socket.responders.set('order:get', () => ({ data: o }));
    socket.responders.set('order:list', () => ({ data: [o] }));
    const r = render(
      <SessionProvider session={session}>
        <OrderPage id="o1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(r.byTestId('order-stuff-link')!.textContent).toBe('Calculus notes');
    expect(r.byTestId('order-price')!.textContent).toBe('$12.50');
    expect(r.byTestId('order-paid')!.textContent).toBe('$9.00');
    r.unmount();

    const lib = render(
      <SessionProvider session={session}>
        <LibraryPage />
      </SessionProvider>,
    );
    await step();
    const item = lib.byTestId('library-item-o1')!;
    expect(item.querySelector('h2')!.textContent).toBe('Calculus notes');
    expect(item.querySelector('[data-testid="library-amount"]')!.textContent).toBe('Paid $9.00 (price $12.50)');
    lib.unmount();
  });
});
