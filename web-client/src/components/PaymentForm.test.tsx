// @vitest-environment happy-dom
// The payment form on the order page: `payment:intent`, then Stripe's Payment Element (mocked
// here: @stripe/stripe-js and @stripe/react-stripe-js) or the built-in test gateway's methods.
import { act, type ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi, type Mock } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Order } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, type Rendered } from '../test/render';
import { OrderPage } from '../pages/OrderPages';
import { COUPON_CHECK_DELAY_MS, FREE_COUPON_MESSAGE } from './PaymentForm';
import { resetStripeForTests, STRIPE_UNEXPECTED_MESSAGE } from './StripeCard';

const stripe = vi.hoisted(() => ({
  loadStripe: undefined as unknown as Mock<(key: string) => Promise<unknown>>,
  confirmPayment: undefined as unknown as Mock<(options: unknown) => Promise<unknown>>,
  /** The `options` of every <Elements> mounted, in order. */
  mounted: [] as Array<{ clientSecret?: string }>,
  /** The `elements` object each <Elements> gives its children (what confirmPayment must get). */
  elements: [] as Array<{ clientSecret?: string; fetchUpdates: () => Promise<unknown> }>,
}));

vi.mock('@stripe/stripe-js', () => ({
  loadStripe: (key: string) => stripe.loadStripe(key),
}));

vi.mock('@stripe/react-stripe-js', async () => {
  const { createContext, useContext, useEffect, useState } = await import('react');
  const Ctx = createContext<{ stripe: unknown; elements: unknown } | null>(null);
  function Elements({ stripe: instance, options, children }: { stripe: unknown; options: { clientSecret?: string }; children: ReactNode }) {
    // One `elements` per mount, as with Stripe (its clientSecret option cannot change).
    const [elements] = useState(() => {
      const e = { clientSecret: options.clientSecret, fetchUpdates: () => Promise.resolve({}) };
      stripe.mounted.push(options);
      stripe.elements.push(e);
      return e;
    });
    return (
      <Ctx.Provider value={{ stripe: instance, elements }}>
        <div data-testid="mock-elements" data-client-secret={options.clientSecret}>
          {children}
        </div>
      </Ctx.Provider>
    );
  }
  function PaymentElement({ onReady }: { onReady?: () => void }) {
    useEffect(() => {
      onReady?.();
    }, []); // eslint-disable-line react-hooks/exhaustive-deps
    return <div data-testid="mock-payment-element">card fields</div>;
  }
  return {
    Elements,
    PaymentElement,
    useStripe: () => useContext(Ctx)?.stripe ?? null,
    useElements: () => useContext(Ctx)?.elements ?? null,
  };
});

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

function type(input: HTMLInputElement, value: string) {
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

/** Lets effects, promises and lazy modules settle until `probe` holds (bounded, no clock). */
async function settle(probe: () => boolean, what: string) {
  for (let i = 0; i < 50; i++) {
    if (probe()) return;
    await step();
  }
  throw new Error(`never happened: ${what}`);
}

describe('<PaymentForm> (on the order page)', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let publishableKey: string | null;
  const intents = () => socket.emitted.filter((e) => e.event === 'payment:intent');
  const amounts: Record<string, number> = { '': 1250, SAVE25: 938, TEN: 1125 };

  beforeEach(async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    vi.setSystemTime(T0);
    window.history.replaceState(null, '', '/orders/o1');
    resetStripeForTests();
    stripe.mounted.length = 0;
    stripe.elements.length = 0;
    stripe.confirmPayment = vi.fn(async () => ({ paymentIntent: { id: 'pi_1', status: 'succeeded' } }));
    stripe.loadStripe = vi.fn(async () => ({ confirmPayment: stripe.confirmPayment }));
    publishableKey = 'pk_test_123';

    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(T0 / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('order:get', () => ({ data: order(1, 'created') }));
    socket.responders.set('stuff:get', () => ({
      data: { id: 's1', title: 'Notes', description: '', priceCents: 1250, sellerId: 'x', status: 'reserved', version: 2, createdAt: '', updatedAt: '' },
    }));
    socket.responders.set('payment:intent', (p) => {
      const coupon = (p as { couponCode?: string }).couponCode ?? '';
      if (coupon === 'FREE100') return { status: 400, errors: [{ message: FREE_COUPON_MESSAGE, field: 'couponCode' }] };
      return {
        data: { clientSecret: `pi_${coupon || 'full'}_secret_x`, amountCents: amounts[coupon] ?? 1250, currency: 'eur', publishableKey },
      };
    });
    socket.responders.set('coupon:check', (p) => {
      const coupon = (p as { couponCode: string }).couponCode;
      if (coupon === 'FREE100') return { data: { amountCents: 0, discountCents: 1250 } };
      if (coupon === 'BAD') return { status: 400, errors: [{ message: 'Coupon is not valid', field: 'couponCode' }] };
      return { data: { amountCents: amounts[coupon] ?? 1250, discountCents: 1250 - (amounts[coupon] ?? 1250) } };
    });
  });
  afterEach(() => {
    session.stop();
    vi.useRealTimers();
    window.history.replaceState(null, '', '/');
  });

  const mount = async (): Promise<Rendered> => {
    const r = render(
      <SessionProvider session={session}>
        <OrderPage id="o1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };
  const payButton = (r: Rendered) => r.byTestId('pay-button') as HTMLButtonElement;

  describe('with Stripe (a publishable key)', () => {
    const mountStripe = async () => {
      const r = await mount();
      await settle(() => r.byTestId('mock-payment-element') !== null && !payButton(r).disabled, 'the Payment Element');
      return r;
    };

    it('asks for the intent, loads Stripe.js with its key and mounts Elements with the client secret', async () => {
      const r = await mountStripe();
      expect(intents().map((e) => e.payload)).toEqual([{ orderId: 'o1' }]);
      expect(intents()[0]!.timeoutMs).toBeGreaterThan(30_000);
      expect(stripe.loadStripe).toHaveBeenCalledTimes(1);
      expect(stripe.loadStripe).toHaveBeenCalledWith('pk_test_123');
      expect(stripe.mounted).toHaveLength(1);
      expect(stripe.mounted[0]).toMatchObject({ clientSecret: 'pi_full_secret_x' });
      expect(r.byTestId('payment-form')!.getAttribute('data-gateway')).toBe('stripe');
      // No test methods with a real gateway.
      expect(r.byTestId('test-payment-methods')).toBeNull();
      expect(payButton(r).textContent).toBe('Pay €12.50');
      r.unmount();
    });

    it('confirms with redirect "if_required" and this page as return_url; then waits for the server to complete the order', async () => {
      const r = await mountStripe();
      await step(() => payButton(r).click());
      expect(stripe.confirmPayment).toHaveBeenCalledTimes(1);
      const arg = stripe.confirmPayment.mock.calls[0]![0] as { elements: unknown; redirect: string; confirmParams: { return_url: string } };
      expect(arg.redirect).toBe('if_required');
      expect(arg.elements).toBe(stripe.elements[0]);
      expect(arg.confirmParams.return_url).toBe(`${window.location.origin}/orders/o1`);
      // The browser's word is not enough: confirming, not paid.
      expect(socket.lastEmitted('payment:create')).toBeUndefined();
      expect(r.byTestId('payment-confirming')!.textContent).toBe('Payment received — confirming…');
      expect(r.byTestId('payment-confirming')!.getAttribute('role')).toBe('status');
      expect(r.byTestId('payment-form')).toBeNull();
      expect(r.byTestId('order-status')!.textContent).toBe('Awaiting payment');
      expect(r.byTestId('order-complete')).toBeNull();
      // The webhook completed it on the server: the push says so.
      await step(() => socket.push('order:updated', order(2, 'complete')));
      expect(r.byTestId('order-status')!.textContent).toBe('Complete');
      expect(r.byTestId('payment-confirming')).toBeNull();
      expect(r.byTestId('order-complete')).not.toBeNull();
      r.unmount();
    });

    it('shows a confirm error accessibly and keeps the form; other errors get a general message', async () => {
      stripe.confirmPayment.mockImplementation(async () => ({
        error: { type: 'card_error', code: 'card_declined', message: 'Your card has insufficient funds.' },
      }));
      const r = await mountStripe();
      await step(() => payButton(r).click());
      const banner = r.byTestId('payment-error')!;
      expect(banner.textContent).toBe('Your card has insufficient funds.');
      expect(banner.getAttribute('role')).toBe('alert');
      expect(document.activeElement).toBe(banner);
      expect(r.byTestId('payment-confirming')).toBeNull();
      expect(r.byTestId('payment-form')).not.toBeNull();
      expect(payButton(r).disabled).toBe(false);

      stripe.confirmPayment.mockImplementation(async () => ({ error: { type: 'api_error', message: 'Internal: something odd (req_123)' } }));
      await step(() => payButton(r).click());
      expect(r.byTestId('payment-error')!.textContent).toBe(STRIPE_UNEXPECTED_MESSAGE);
      r.unmount();
    });

    it('a coupon that changes the amount asks for a new intent and mounts Elements with its client secret', async () => {
      const r = await mountStripe();
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'SAVE25');
      // The intent waits for the debounced check: typing alone asks nothing, and until the new
      // amount is known Pay does not charge the old one.
      await step();
      expect(intents()).toHaveLength(1);
      expect(payButton(r).disabled).toBe(true);
      expect(r.byTestId('payment-status')!.textContent).toBe('Updating the amount to pay…');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => intents().length === 2, 'a second payment:intent');
      expect(intents()[1]!.payload).toEqual({ orderId: 'o1', couponCode: 'SAVE25' });
      await settle(() => !payButton(r).disabled, 'the new Payment Element');
      expect(stripe.mounted.map((o) => o.clientSecret)).toEqual(['pi_full_secret_x', 'pi_SAVE25_secret_x']);
      expect(r.byTestId('mock-elements')!.getAttribute('data-client-secret')).toBe('pi_SAVE25_secret_x');
      expect(payButton(r).textContent).toBe('Pay €9.38');
      expect(r.byTestId('payment-form')!.getAttribute('data-intent-amount-cents')).toBe('938');

      await step(() => payButton(r).click());
      const arg = stripe.confirmPayment.mock.calls[0]![0] as { elements: unknown };
      expect(arg.elements).toBe(stripe.elements[1]);

      r.unmount();
    });

    it('removing the coupon asks for the full-price intent again; a refused coupon blocks paying', async () => {
      const r = await mountStripe();
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'TEN');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => intents().length === 2 && !payButton(r).disabled, 'the intent with TEN');
      expect(payButton(r).textContent).toBe('Pay €11.25');
      type(input, '');
      await settle(() => intents().length === 3 && !payButton(r).disabled, 'the intent without a coupon');
      expect(intents()[2]!.payload).toEqual({ orderId: 'o1' });
      expect(payButton(r).textContent).toBe('Pay €12.50');

      // A refused coupon: the intent stays at the full price, and Pay says why it does not charge it.
      type(input, 'BAD');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => r.byTestId('error-couponCode') !== null, 'the coupon error');
      await step(() => payButton(r).click());
      expect(stripe.confirmPayment).not.toHaveBeenCalled();
      expect(r.byTestId('error-couponCode')!.textContent).toBe('Coupon is not valid');
      expect(document.activeElement).toBe(input);
      r.unmount();
    });

    it('shows the confirming state when Stripe sends the buyer back after a redirect', async () => {
      window.history.replaceState(null, '', '/orders/o1?payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_x&redirect_status=succeeded');
      const r = await mount();
      expect(r.byTestId('payment-confirming')!.textContent).toBe('Payment received — confirming…');
      expect(r.byTestId('payment-form')).toBeNull();
      await step(() => socket.push('order:updated', order(2, 'complete')));
      expect(r.byTestId('order-complete')).not.toBeNull();
      r.unmount();

      // A redirect that failed: say so, and offer the form again.
      window.history.replaceState(null, '', '/orders/o1?payment_intent=pi_1&payment_intent_client_secret=pi_1_secret_x&redirect_status=failed');
      const r2 = await mount();
      expect(r2.byTestId('payment-confirming')).toBeNull();
      expect(r2.byTestId('payment-error')!.textContent).toBe('The payment was not completed. You can try again.');
      expect(r2.byTestId('payment-form')).not.toBeNull();
      r2.unmount();
    });

    it('says when Stripe.js cannot be loaded, and tries again on request', async () => {
      stripe.loadStripe.mockImplementation(async () => {
        throw new Error('Failed to load Stripe.js');
      });
      const r = await mount();
      await settle(() => r.byTestId('stripe-load-error') !== null, 'the load error');
      expect(r.byTestId('stripe-load-error')!.getAttribute('role')).toBe('alert');
      expect(payButton(r).disabled).toBe(true);
      stripe.loadStripe.mockImplementation(async () => ({ confirmPayment: stripe.confirmPayment }));
      await step(() => (r.byTestId('stripe-load-error')!.querySelector('button') as HTMLButtonElement).click());
      await settle(() => r.byTestId('mock-payment-element') !== null && !payButton(r).disabled, 'the Payment Element after a retry');
      r.unmount();
    });
  });

  describe('with the built-in test gateway (no publishable key)', () => {
    beforeEach(() => {
      publishableKey = null;
    });

    it('asks for the intent, shows the test methods, never loads Stripe.js, and pays with payment:create and the chosen method', async () => {
      socket.responders.set('payment:create', () => ({
        data: { id: 'p1', orderId: 'o1', amountCents: 1250, couponCode: null, providerId: 'pi_x', createdAt: '', refundedAt: null },
      }));
      const r = await mount();
      await settle(() => !payButton(r).disabled, 'the Pay button');
      expect(intents().map((e) => e.payload)).toEqual([{ orderId: 'o1' }]);
      expect(r.byTestId('payment-form')!.getAttribute('data-gateway')).toBe('test');
      expect(r.byTestId('test-payment-methods')).not.toBeNull();
      expect(r.byTestId('mock-elements')).toBeNull();
      await step(() => (r.byTestId('payment-method-pm_card_mastercard') as HTMLInputElement).click());
      await step(() => payButton(r).click());
      expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', paymentMethod: 'pm_card_mastercard' });
      expect(socket.lastEmitted('payment:create')!.timeoutMs).toBeGreaterThan(30_000);
      expect(r.byTestId('payment-confirming')).not.toBeNull();
      await step(() => socket.push('order:updated', order(2, 'complete')));
      expect(r.byTestId('payment-success')!.textContent).toBe('Payment received: €12.50.');
      expect(stripe.loadStripe).not.toHaveBeenCalled();
      expect(stripe.confirmPayment).not.toHaveBeenCalled();
      r.unmount();
    });

    it('the Pay button waits for the intent (which says which gateway), and an intent that fails can be asked again', async () => {
      let fail = true;
      socket.responders.set('payment:intent', () =>
        fail ? { status: 503, errors: [{ message: 'The payment service did not answer' }] } : { data: { clientSecret: 's', amountCents: 1250, currency: 'eur', publishableKey: null } },
      );
      const r = await mount();
      await settle(() => r.byTestId('intent-error') !== null, 'the intent error');
      expect(r.byTestId('intent-error')!.textContent).toContain('The payment could not be prepared: The payment service did not answer');
      expect(payButton(r).disabled).toBe(true);
      fail = false;
      await step(() => (r.byTestId('intent-retry') as HTMLButtonElement).click());
      await settle(() => !payButton(r).disabled, 'the Pay button after a retry');
      expect(intents()).toHaveLength(2);
      expect(r.byTestId('intent-error')).toBeNull();
      r.unmount();
    });

    it('a coupon that changes the amount asks for a new intent; paying sends the coupon', async () => {
      socket.responders.set('payment:create', () => ({
        data: { id: 'p1', orderId: 'o1', amountCents: 938, couponCode: 'SAVE25', providerId: 'pi_x', createdAt: '', refundedAt: null },
      }));
      const r = await mount();
      type(r.byTestId('coupon-input') as HTMLInputElement, 'SAVE25');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => intents().length === 2, 'a second payment:intent');
      expect(intents()[1]!.payload).toEqual({ orderId: 'o1', couponCode: 'SAVE25' });
      expect(payButton(r).textContent).toBe('Pay €9.38');
      await step(() => payButton(r).click());
      expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', paymentMethod: 'pm_card_visa', couponCode: 'SAVE25' });
      r.unmount();
    });

    it('Pay waits for the intent of the coupon as typed; a refused coupon is not sent to be charged', async () => {
      const r = await mount();
      await settle(() => !payButton(r).disabled, 'the Pay button');
      const input = r.byTestId('coupon-input') as HTMLInputElement;
      type(input, 'TEN');
      expect(payButton(r).disabled).toBe(true);
      expect(r.byTestId('payment-status')!.textContent).toBe('Updating the amount to pay…');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => !payButton(r).disabled, 'the intent with TEN');
      expect(payButton(r).textContent).toBe('Pay €11.25');
      expect(r.byTestId('payment-status')!.textContent).toBe('');

      type(input, 'BAD');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => r.byTestId('error-couponCode') !== null && !payButton(r).disabled, 'the refused coupon');
      expect(payButton(r).textContent).toBe('Pay €12.50');
      await step(() => payButton(r).click());
      expect(socket.lastEmitted('payment:create')).toBeUndefined();
      expect(r.byTestId('error-couponCode')!.textContent).toBe('Coupon is not valid');
      expect(document.activeElement).toBe(input);
      r.unmount();
    });
  });

  describe('a free order (100% coupon)', () => {
    for (const key of [null, 'pk_test_123']) {
      it(`sends no payment method and asks no intent for the coupon (${key ? 'Stripe' : 'test gateway'})`, async () => {
        publishableKey = key;
        socket.responders.set('payment:create', () => ({
          data: { id: 'p1', orderId: 'o1', amountCents: 0, couponCode: 'FREE100', providerId: null, createdAt: '', refundedAt: null },
        }));
        const r = await mount();
        await settle(() => intents().length === 1 && r.byTestId('payment-form')!.getAttribute('data-gateway') !== 'unknown', 'the first intent');
        type(r.byTestId('coupon-input') as HTMLInputElement, 'FREE100');
        await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
        await settle(() => payButton(r).textContent === 'Get it free' && !payButton(r).disabled, 'Get it free');
        // coupon:check already said it is free: no intent for it.
        expect(intents()).toHaveLength(1);
        expect(r.byTestId('no-card-needed')).not.toBeNull();
        expect(r.byTestId('test-payment-methods')).toBeNull();
        expect(r.byTestId('mock-payment-element')).toBeNull();
        await step(() => payButton(r).click());
        expect(socket.lastEmitted('payment:create')!.payload).toEqual({ orderId: 'o1', couponCode: 'FREE100' });
        expect(stripe.confirmPayment).not.toHaveBeenCalled();
        expect(r.byTestId('payment-confirming')).not.toBeNull();
        r.unmount();
      });
    }

    it('when the check could not run, the intent’s "free" answer makes it free too', async () => {
      publishableKey = null;
      socket.responders.set('coupon:check', () => ({ status: 503, errors: [{ message: 'No answer' }] }));
      const r = await mount();
      type(r.byTestId('coupon-input') as HTMLInputElement, 'FREE100');
      await step(() => vi.advanceTimersByTime(COUPON_CHECK_DELAY_MS));
      await settle(() => payButton(r).textContent === 'Get it free', 'Get it free');
      expect(intents()[1]!.payload).toEqual({ orderId: 'o1', couponCode: 'FREE100' });
      expect(r.byTestId('error-couponCode')).toBeNull();
      expect(r.byTestId('no-card-needed')).not.toBeNull();
      r.unmount();
    });
  });
});
