// @vitest-environment happy-dom
// Pages read server state through the session's query cache: a push changes what a mounted page
// shows without asking the server again, a reconnect asks again, and a page opened again soon
// shows what the cache holds (kept current by pushes) without a request.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '../App';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Order, Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { navigate, render, step } from '../test/render';
import { MyOrdersPage } from './OrderPages';
import { StuffPage } from './StuffPage';

const item = (version: number, patch: Partial<Stuff> = {}): Stuff => ({
  id: 's1',
  title: 'Linear algebra notes',
  description: 'All lectures',
  priceCents: 1250,
  sellerId: 'seller-9',
  status: 'available',
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  ...patch,
});

const order = (id: string, version: number, status: Order['status']): Order => ({
  id,
  stuffId: 's1',
  userId: alice.id,
  status,
  expiresAt: '2026-11-01T12:15:00Z',
  priceCents: 1250,
  version,
  createdAt: id === 'o1' ? '2026-11-01T12:00:00Z' : '2026-11-02T12:00:00Z',
  stuffTitle: 'Linear algebra notes',
  paidCents: null,
});

describe('pages on the query cache', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  const count = (event: string) => socket.emitted.filter((e) => e.event === event).length;

  beforeEach(async () => {
    window.history.replaceState(null, '', '/');
    document.body.replaceChildren();
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:get', () => ({ data: item(1) }));
    socket.responders.set('order:list', () => ({ data: [order('o1', 1, 'complete')] }));
    socket.responders.set('review:list', () => ({ data: [] }));
    socket.responders.set('stuff:list', () => ({ data: { items: [item(1)], nextCursor: null } }));
  });
  afterEach(() => session.stop());

  it('a pushed stuff:updated changes the mounted stuff page without a refetch', async () => {
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(r.byTestId('stuff-title')!.textContent).toBe('Linear algebra notes');
    expect(count('stuff:get')).toBe(1);

    await step(() => socket.push('stuff:updated', item(2, { title: 'Linear algebra notes (2nd ed.)', priceCents: 900 })));
    expect(r.byTestId('stuff-title')!.textContent).toBe('Linear algebra notes (2nd ed.)');
    expect(r.byTestId('stuff-page')!.getAttribute('data-version')).toBe('2');
    expect(r.byTestId('stuff-page')!.textContent).toContain('€9.00');
    expect(count('stuff:get')).toBe(1);

    // Another stuff's push changes nothing here.
    await step(() => socket.push('stuff:updated', item(7, { id: 's2', title: 'Other' })));
    expect(r.byTestId('stuff-title')!.textContent).toBe('Linear algebra notes (2nd ed.)');
    r.unmount();
  });

  it('a reconnect refetches what the page shows (pushes missed while offline)', async () => {
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(count('stuff:get')).toBe(1);
    expect(count('order:list')).toBe(1);

    await step(() => socket.dropNetwork());
    socket.responders.set('stuff:get', () => ({ data: item(3, { status: 'sold' }) }));
    await step(() => socket.acceptConnect());
    expect(count('stuff:get')).toBe(2);
    expect(count('order:list')).toBe(2);
    expect(r.byTestId('status-badge')!.textContent).toBe('Sold');
    r.unmount();
  });

  it('a pushed order:updated joins My orders without asking order:list again', async () => {
    const r = render(
      <SessionProvider session={session}>
        <MyOrdersPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(r.byTestId('order-row-o1')).not.toBeNull();
    await step(() => socket.push('order:updated', order('o2', 1, 'created')));
    expect(r.byTestId('order-row-o2')!.getAttribute('data-status')).toBe('created');
    await step(() => socket.push('order:updated', order('o1', 2, 'refunded')));
    expect(r.byTestId('order-row-o1')!.getAttribute('data-status')).toBe('refunded');
    expect(count('order:list')).toBe(1);
    r.unmount();
  });

  it('a page opened again shows the cache at once: My orders (all pushed) without a request, a stuff page asking again', async () => {
    socket.responders.set('order:list', () => ({ data: [order('o1', 1, 'created')] }));
    const r = render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    await step(() => navigate('/orders'));
    expect(r.byTestId('order-row-o1')!.getAttribute('data-status')).toBe('created');
    await step(() => navigate('/stuff/s1'));
    expect(r.byTestId('stuff-title')!.textContent).toBe('Linear algebra notes');
    expect(count('order:list')).toBe(1);
    expect(count('stuff:get')).toBe(1);

    await step(() => navigate('/'));
    expect(r.byTestId('stuff-page')).toBeNull();
    // Changed while the pages were closed: the pushes are written into the cache.
    await step(() => socket.push('order:updated', order('o1', 2, 'complete')));
    await step(() => socket.push('stuff:updated', item(2, { status: 'sold' })));
    await step(() => navigate('/orders'));
    expect(r.byTestId('order-row-o1')!.getAttribute('data-status')).toBe('complete');
    expect(count('order:list')).toBe(1);

    // A stuff's rating and seller name change without a push: its page shows what the cache
    // holds and asks again; the answer wins a tie of versions.
    socket.responders.set('stuff:get', () => ({ data: item(2, { status: 'sold', rating: { average: 4, count: 1 } }) }));
    const stuffGets = count('stuff:get');
    await step(() => navigate('/stuff/s1'));
    expect(r.byTestId('status-badge')!.textContent).toBe('Sold');
    expect(count('stuff:get')).toBe(stuffGets + 1);
    expect(r.byTestId('rating')!.getAttribute('data-count')).toBe('1');
    r.unmount();
  });
});
