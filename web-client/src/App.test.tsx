// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './App';
import { SessionManager } from './api/session';
import { SessionProvider } from './api/session-react';
import type { Coupon, Order, Stuff, User } from './api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from './test/fakes';
import { navigate, render, step } from './test/render';

const admin: User = { id: 'adm', email: 'admin@example.edu', role: 'admin' };
const stuff: Stuff = {
  id: 's1',
  title: 'Notes',
  description: 'Good notes',
  priceCents: 500,
  sellerId: alice.id,
  status: 'available',
  version: 1,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
};
const order: Order = {
  id: 'o1',
  stuffId: 's1',
  userId: alice.id,
  status: 'complete',
  expiresAt: '2026-11-01T12:15:00Z',
  priceCents: 500,
  version: 3,
  createdAt: '2026-11-01T12:00:00Z',
  stuffTitle: '',
  paidCents: null,
};
const coupon: Coupon = { code: 'FREE', percentOff: 100, maxRedemptions: 1, redemptions: 0, expiresAt: null, createdBy: 'adm' };

describe('<App>', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let http: FakeHttp;

  async function start(user: User | null) {
    window.history.replaceState(null, '', '/');
    http = new FakeHttp();
    if (user) http.refreshResults.push({ user, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({
      http,
      createSocket: (a) => {
        socket = new FakeSocket(a);
        socket.autoAccept = true;
        return socket;
      },
    });
    socket.responders.set('stuff:list', () => ({ data: { items: [stuff], nextCursor: null } }));
    socket.responders.set('stuff:get', () => ({ data: stuff }));
    socket.responders.set('order:list', () => ({ data: [order] }));
    socket.responders.set('coupon:list', () => ({ data: [coupon] }));
    socket.responders.set('stuff:mine', () => ({ data: [stuff] }));
    socket.responders.set('delivery:get', () => ({ data: { secretNote: 'The key', files: [] } }));
    socket.responders.set('coupon:create', (p) => ({ data: { ...coupon, code: 'NEW50', percentOff: (p as Coupon).percentOff } }));
    await session.start();
    return render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
  }
  afterEach(() => session.stop());
  beforeEach(() => document.body.replaceChildren());

  it('shows who is signed in with the role, the pages, and signs out', async () => {
    const r = await start(alice);
    await step();
    expect(r.byTestId('current-user-email')!.textContent).toBe(alice.email);
    expect(r.byTestId('current-user-role')!.textContent).toBe('user');
    expect(r.byTestId('connection-status')!.textContent).toBe('Live');
    expect(r.byTestId('nav-admin')).toBeNull();
    expect(r.byTestId('stuff-card-s1')).not.toBeNull();

    await step(() => navigate('/stuff/s1'));
    expect(r.byTestId('own-stuff')).not.toBeNull();
    expect(r.byTestId('edit-link')).not.toBeNull();
    expect(r.byTestId('buy-button')).toBeNull();

    await step(() => navigate('/stuff/s1/edit'));
    expect((r.byTestId('title-input') as HTMLInputElement).value).toBe('Notes');
    expect((r.byTestId('price-input') as HTMLInputElement).value).toBe('5.00');

    await step(() => navigate('/orders'));
    const row = r.byTestId('order-row-o1')!;
    expect(row.querySelector('[data-testid="order-status"]')!.textContent).toBe('Complete');
    expect(row.textContent).toContain('Notes');

    await step(() => (r.byTestId('nav-selling') as HTMLAnchorElement).click());
    expect(window.location.pathname).toBe('/selling');
    expect(r.container.querySelector('h1')!.textContent).toBe('My listings');
    expect(r.byTestId('listing-s1')!.querySelector('[data-testid="status-badge"]')!.textContent).toBe('Available');

    await step(() => (r.byTestId('nav-library') as HTMLAnchorElement).click());
    expect(window.location.pathname).toBe('/library');
    expect(r.container.querySelector('h1')!.textContent).toBe('Library');
    expect(r.byTestId('library-item-o1')!.querySelector('[data-testid="secret-note"]')!.textContent).toBe('The key');

    await step(() => navigate('/admin'));
    expect(r.byTestId('admin-required')).not.toBeNull();

    await step(() => (r.byTestId('signout-button') as HTMLButtonElement).click());
    expect(http.signOutCalls).toBe(1);
    expect(r.byTestId('current-user')).toBeNull();
    expect(r.byTestId('nav-signin')).not.toBeNull();
    expect(window.location.pathname).toBe('/');
    r.unmount();
  });

  it('lets an admin create and list coupons', async () => {
    const r = await start(admin);
    await step();
    expect(r.byTestId('current-user-role')!.textContent).toBe('admin');
    await step(() => (r.byTestId('nav-admin') as HTMLAnchorElement).click());
    expect(window.location.pathname).toBe('/admin');
    expect(r.byTestId('coupon-row-FREE')).not.toBeNull();
    const input = r.byTestId('percent-off-input') as HTMLInputElement;
    await step(() => {
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(input, '50');
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await step(() => (r.byTestId('create-coupon-button') as HTMLButtonElement).click());
    expect(socket.lastEmitted('coupon:create')!.payload).toEqual({ percentOff: 50 });
    expect(r.byTestId('created-coupon-code')!.textContent).toBe('NEW50');
    expect(r.byTestId('coupon-row-NEW50')).not.toBeNull();
    r.unmount();
  });

  it('asks anonymous visitors to sign in to buy, and for protected pages', async () => {
    const r = await start(null);
    await step();
    expect(r.byTestId('nav-signin')).not.toBeNull();
    await step(() => navigate('/stuff/s1'));
    expect(r.byTestId('signin-to-buy')!.getAttribute('href')).toBe('/signin?next=%2Fstuff%2Fs1');
    await step(() => navigate('/sell'));
    expect(r.byTestId('signin-required')).not.toBeNull();
    expect(r.byTestId('nav-library')).toBeNull();
    expect(r.byTestId('nav-selling')).toBeNull();
    await step(() => navigate('/selling'));
    expect(r.byTestId('signin-required')!.querySelector('a')!.getAttribute('href')).toBe('/signin?next=%2Fselling');
    await step(() => navigate('/library'));
    expect(r.byTestId('signin-required')!.querySelector('a')!.getAttribute('href')).toBe('/signin?next=%2Flibrary');
    await step(() => navigate('/nowhere'));
    expect(r.container.querySelector('h1')!.textContent).toBe('Page not found');
    r.unmount();
  });

  it('signs in from the form and goes to `next`', async () => {
    const r = await start(null);
    await step();
    await step(() => navigate('/signin?next=%2Forders'));
    http.signInResult = { user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) };
    const set = (id: string, v: string) => {
      const el = r.byTestId(id) ?? (r.container.querySelector(`#field-${id}`) as HTMLInputElement);
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!.call(el, v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
    };
    await step(() => set('email', 'alice@example.edu'));
    await step(() => set('password', 'correct horse'));
    await step(() => (r.byTestId('signin-submit') as HTMLButtonElement).click());
    expect(window.location.pathname).toBe('/orders');
    expect(r.byTestId('current-user-email')!.textContent).toBe(alice.email);
    r.unmount();
  });
});
