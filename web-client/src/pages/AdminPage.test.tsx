// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Payment, User } from '../api/types';
import { fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, type Rendered } from '../test/render';
import { AdminPage, ORDER_ID_REQUIRED } from './AdminPage';

const admin: User = { id: 'adm', email: 'admin@example.edu', role: 'admin' };
const refunded: Payment = {
  id: 'p1',
  orderId: 'o-42',
  amountCents: 900,
  currency: 'eur',
  couponCode: null,
  providerId: 'pi_1',
  createdAt: '2026-11-01T12:00:00Z',
  refundedAt: '2026-11-01T13:00:00Z',
};

function type(input: HTMLInputElement, value: string) {
  act(() => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
}

describe('<AdminPage> refund an order', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let r: Rendered;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: admin, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900, { role: 'admin' }) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('coupon:list', () => ({ data: [] }));
    r = render(
      <SessionProvider session={session}>
        <AdminPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
  });
  afterEach(() => {
    r.unmount();
    session.stop();
  });

  const input = () => r.byTestId('refund-order-input') as HTMLInputElement;
  const click = (id: string) => step(() => (r.byTestId(id) as HTMLButtonElement).click());

  it('asks for confirmation, then sends payment:refund and says what went back', async () => {
    socket.responders.set('payment:refund', () => ({ data: refunded }));
    type(input(), '  o-42 ');
    await click('refund-button');
    // Nothing is sent before the admin confirms.
    expect(socket.lastEmitted('payment:refund')).toBeUndefined();
    const box = r.byTestId('refund-confirmation')!;
    expect(box.getAttribute('role')).toBe('group');
    expect(box.textContent).toContain('Refund order o-42?');
    expect(document.activeElement).toBe(r.byTestId('refund-confirm'));

    await click('refund-confirm');
    expect(socket.lastEmitted('payment:refund')!.payload).toEqual({ orderId: 'o-42' });
    expect(socket.lastEmitted('payment:refund')!.timeoutMs).toBeGreaterThan(30_000);
    const ok = r.byTestId('refund-success')!;
    expect(ok.getAttribute('role')).toBe('status');
    expect(ok.textContent).toContain('Refunded order o-42: €9.00 went back to the buyer');
    expect(input().value).toBe('');
    expect(r.byTestId('refund-confirmation')).toBeNull();
  });

  it("\"Don't refund\" sends nothing; editing the number drops the question", async () => {
    type(input(), 'o-42');
    await click('refund-button');
    await click('refund-keep');
    expect(r.byTestId('refund-confirmation')).toBeNull();
    expect(document.activeElement).toBe(input());
    await click('refund-button');
    expect(r.byTestId('refund-confirmation')).not.toBeNull();
    type(input(), 'o-43');
    expect(r.byTestId('refund-confirmation')).toBeNull();
    expect(socket.lastEmitted('payment:refund')).toBeUndefined();
  });

  it('an empty number is refused on the field before asking anything', async () => {
    await click('refund-button');
    expect(r.byTestId('error-orderId')!.textContent).toBe(ORDER_ID_REQUIRED);
    expect(input().getAttribute('aria-invalid')).toBe('true');
    expect(input().getAttribute('aria-describedby')).toContain('error-orderId');
    expect(document.activeElement).toBe(input());
    expect(r.byTestId('refund-confirmation')).toBeNull();
  });

  it("shows the server's refusal on the field (no such order, not paid); other failures in the banner", async () => {
    const answers = [
      { status: 404, errors: [{ message: 'Order not found' }] },
      { status: 404, errors: [{ message: 'This order has not been paid, so there is nothing to refund' }] },
      { status: 503, errors: [{ message: 'The payment gateway did not answer' }] },
    ];
    socket.responders.set('payment:refund', () => answers.shift());

    type(input(), 'nope');
    await click('refund-button');
    await click('refund-confirm');
    expect(r.byTestId('error-orderId')!.textContent).toBe('Order not found');
    expect(input().getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(input());
    // The number stays, to be corrected.
    expect(input().value).toBe('nope');

    type(input(), 'o-unpaid');
    expect(r.byTestId('error-orderId')).toBeNull();
    await click('refund-button');
    await click('refund-confirm');
    expect(r.byTestId('error-orderId')!.textContent).toBe('This order has not been paid, so there is nothing to refund');

    await click('refund-button');
    await click('refund-confirm');
    expect(r.byTestId('error-orderId')).toBeNull();
    expect(r.byTestId('refund-error')!.textContent).toBe('The payment gateway did not answer');
    expect(r.byTestId('refund-error')!.getAttribute('role')).toBe('alert');
    expect(r.byTestId('refund-success')).toBeNull();
  });
});
