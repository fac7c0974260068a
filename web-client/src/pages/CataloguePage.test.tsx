// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff, StuffPage } from '../api/types';
import { FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { CataloguePage } from './CataloguePage';

const item = (id: string, version: number, status: Stuff['status'] = 'available'): Stuff => ({
  id,
  title: `Title ${id}`,
  description: '',
  priceCents: 1250,
  sellerId: 'seller-9',
  status,
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
});

describe('<CataloguePage>', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let pages: StuffPage[];
  let listCalls: unknown[];

  beforeEach(async () => {
    window.history.replaceState(null, '', '/');
    session = new SessionManager({ http: new FakeHttp(), createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    listCalls = [];
    pages = [];
    socket.responders.set('stuff:list', (p) => {
      listCalls.push(p);
      return { data: pages.shift() ?? { items: [], nextCursor: null } };
    });
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <CataloguePage />
      </SessionProvider>,
    );

  it('lists stuff with badges and prices, updating live from pushes', async () => {
    pages.push({ items: [item('a', 1), item('b', 1, 'sold')], nextCursor: null });
    const r = mount();
    await step(() => socket.acceptConnect());
    const card = (id: string) => r.byTestId(`stuff-card-${id}`)!;
    expect(card('a').querySelector('[data-testid="status-badge"]')!.textContent).toBe('Available');
    expect(card('a').querySelector('[data-testid="price"]')!.textContent).toBe('€12.50');
    expect(card('b').querySelector('[data-testid="status-badge"]')!.textContent).toBe('Sold');

    await step(() => socket.push('stuff:created', item('c', 1)));
    const ids = Array.from(r.container.querySelectorAll('[data-testid^="stuff-card-"]')).map((e) => e.getAttribute('data-testid'));
    expect(ids).toEqual(['stuff-card-c', 'stuff-card-a', 'stuff-card-b']);

    await step(() => socket.push('stuff:updated', item('a', 2, 'reserved')));
    expect(card('a').querySelector('[data-testid="status-badge"]')!.textContent).toBe('Being checked out');
    await step(() => socket.push('stuff:updated', item('a', 1, 'available')));
    expect(card('a').querySelector('[data-testid="status-badge"]')!.textContent).toBe('Being checked out');
    r.unmount();
  });

  it('removes an item live when it is withdrawn', async () => {
    pages.push({ items: [item('a', 1), item('b', 1)], nextCursor: null });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => socket.push('stuff:updated', item('a', 2, 'withdrawn')));
    expect(r.byTestId('stuff-card-a')).toBeNull();
    expect(r.byTestId('stuff-card-b')).not.toBeNull();
    // A withdrawn stuff never appears from a push either.
    await step(() => socket.push('stuff:created', item('w', 1, 'withdrawn')));
    expect(r.byTestId('stuff-card-w')).toBeNull();
    await step(() => socket.push('stuff:updated', item('b', 2, 'withdrawn')));
    expect(r.byTestId('catalogue-empty')).not.toBeNull();
    r.unmount();
  });

  it('re-fetches after a reconnect so updates missed while offline show up', async () => {
    pages.push({ items: [item('a', 1)], nextCursor: null });
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(listCalls).toHaveLength(1);
    await step(() => socket.dropNetwork());
    // While offline, a was sold and d was listed; the pushes were missed.
    pages.push({ items: [item('d', 1), item('a', 3, 'sold')], nextCursor: null });
    await step(() => socket.acceptConnect());
    expect(listCalls).toHaveLength(2);
    expect(r.byTestId('stuff-card-d')).not.toBeNull();
    expect(r.byTestId('stuff-card-a')!.querySelector('[data-testid="status-badge"]')!.textContent).toBe('Sold');
    r.unmount();
  });

  it('loads more with nextCursor', async () => {
    pages.push({ items: [item('a', 1)], nextCursor: 'cur-1' }, { items: [item('b', 1)], nextCursor: null });
    const r = mount();
    await step(() => socket.acceptConnect());
    const more = r.byTestId('load-more') as HTMLButtonElement;
    expect(more.textContent).toBe('Load more');
    await step(() => more.click());
    expect(listCalls[1]).toMatchObject({ cursor: 'cur-1' });
    expect(r.byTestId('stuff-card-b')).not.toBeNull();
    expect(r.byTestId('load-more')).toBeNull();
    r.unmount();
  });

  it('shows a failed list as an alert banner', async () => {
    socket.responders.set('stuff:list', () => ({ status: 503, errors: [{ message: 'Service unavailable' }] }));
    const r = mount();
    await step(() => socket.acceptConnect());
    const banner = r.byTestId('catalogue-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('Service unavailable');
    r.unmount();
  });
});
