// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Delivery, Order, Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { LibraryPage } from './LibraryPage';

// Orders from before `stuffTitle` / `paidCents` (the page asks `stuff:get` for titles), unless `extra` says otherwise.
const order = (
  id: string,
  stuffId: string,
  status: Order['status'],
  version = 2,
  createdAt = '2026-11-01T12:00:00Z',
  extra: Partial<Order> = {},
): Order => ({
  id,
  stuffId,
  userId: alice.id,
  status,
  expiresAt: '2026-11-01T12:15:00Z',
  priceCents: 1250,
  version,
  createdAt,
  stuffTitle: '',
  paidCents: null,
  ...extra,
});
const stuff = (id: string, title: string): Stuff => ({
  id,
  title,
  description: '',
  priceCents: 1250,
  sellerId: 'seller',
  status: 'sold',
  version: 3,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
});
const inFiveMinutes = () => new Date(Date.now() + 300_000).toISOString();
const deliveryFor = (orderId: string, sha = 'aa'): Delivery => ({
  secretNote: `Licence key for ${orderId}`,
  files: [
    {
      id: `f-${orderId}`,
      name: `${orderId}-notes.pdf`,
      sizeBytes: 204_800,
      contentType: 'application/pdf',
      sha256: sha.repeat(32),
      url: `/api/files/${orderId}?sha=${sha}`,
      expiresAt: inFiveMinutes(),
    },
  ],
});

describe('<LibraryPage>', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let orders: Order[];

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    orders = [
      order('o1', 's1', 'complete', 3, '2026-11-01T12:00:00Z'),
      order('o2', 's2', 'created'),
      order('o3', 's3', 'cancelled'),
      order('o4', 's4', 'complete', 3, '2026-11-02T12:00:00Z'),
    ];
    socket.responders.set('order:list', () => ({ data: orders }));
    socket.responders.set('stuff:get', (p) => {
      const id = (p as { id: string }).id;
      return { data: stuff(id, `Title of ${id}`) };
    });
    socket.responders.set('delivery:get', (p) => ({ data: deliveryFor((p as { orderId: string }).orderId) }));
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <LibraryPage />
      </SessionProvider>,
    );

  it('lists complete orders only, newest first, each with its title, note and downloads', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    const items = Array.from(r.container.querySelectorAll('[data-testid^="library-item-"]'));
    expect(items.map((li) => li.getAttribute('data-testid'))).toEqual(['library-item-o4', 'library-item-o1']);
    const o1 = r.byTestId('library-item-o1')!;
    expect(o1.querySelector('h2')!.textContent).toBe('Title of s1');
    expect(o1.querySelector('[data-testid="library-order-link"]')!.getAttribute('href')).toBe('/orders/o1');
    expect(o1.querySelector('[data-testid="secret-note"]')!.textContent).toBe('Licence key for o1');
    const link = o1.querySelector<HTMLAnchorElement>('[data-testid="download-link"]')!;
    expect(link.getAttribute('href')).toBe('/api/files/o1?sha=aa');
    expect(link.hasAttribute('download')).toBe(true);
    expect(link.textContent).toBe('Download o1-notes.pdf');
    expect(o1.querySelector('[data-testid="file-size"]')!.textContent).toBe('200 KB');
    expect(o1.querySelector('[data-testid="file-type"]')!.textContent).toBe('PDF');
    // delivery:get only for complete orders, by orderId.
    const asked = socket.emitted.filter((e) => e.event === 'delivery:get').map((e) => e.payload);
    expect(asked).toEqual(expect.arrayContaining([{ orderId: 'o1' }, { orderId: 'o4' }]));
    expect(asked).toHaveLength(2);
    r.unmount();
  });

  it('fetches fresh links for one order on delivery:updated', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    socket.responders.set('delivery:get', (p) => ({ data: deliveryFor((p as { orderId: string }).orderId, 'bb') }));
    await step(() => socket.push('delivery:updated', { orderId: 'o1' }));
    const asked = socket.emitted.filter((e) => e.event === 'delivery:get').map((e) => e.payload);
    expect(asked).toHaveLength(3);
    expect(asked[2]).toEqual({ orderId: 'o1' });
    const link = r.byTestId('library-item-o1')!.querySelector('[data-testid="download-link"]')!;
    expect(link.getAttribute('href')).toBe('/api/files/o1?sha=bb');
    expect(link.getAttribute('data-sha256')).toBe('bb'.repeat(32));
    // The other order's link is untouched.
    expect(r.byTestId('library-item-o4')!.querySelector('[data-testid="download-link"]')!.getAttribute('href')).toBe('/api/files/o4?sha=aa');
    r.unmount();
  });

  it('adds an order that completes while the page is open', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(r.byTestId('library-item-o2')).toBeNull();
    await step(() => socket.push('order:updated', order('o2', 's2', 'complete', 3)));
    await step();
    expect(r.byTestId('library-item-o2')!.querySelector('[data-testid="secret-note"]')!.textContent).toBe('Licence key for o2');
    r.unmount();
  });

  it('says so when nothing was bought yet, and shows delivery errors as alerts', async () => {
    orders = [order('o2', 's2', 'created')];
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('library-empty')).not.toBeNull();
    r.unmount();

    orders = [order('o1', 's1', 'complete')];
    socket.responders.set('delivery:get', () => ({ status: 403, errors: [{ message: 'Pay for this order to get the stuff' }] }));
    const r2 = mount();
    await step(() => socket.acceptConnect());
    await step();
    const err = r2.byTestId('library-item-o1')!.querySelector('[data-testid="delivery-error"]')!;
    expect(err.getAttribute('role')).toBe('alert');
    expect(err.textContent).toContain('Pay for this order to get the stuff');
    r2.unmount();
  });
});
