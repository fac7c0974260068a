// @vitest-environment happy-dom
// The route table on React Router: which page each path shows, the `:id` handed to the page
// (decoded; a new id is a fresh page), unknown paths, the focus on client-side navigation, and
// the `next` target after signing in.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from './App';
import { SessionManager } from './api/session';
import { SessionProvider } from './api/session-react';
import type { Stuff } from './api/types';
import { safeNext } from './pages/AuthPages';
import { alice, fakeJwt, FakeHttp, FakeSocket } from './test/fakes';
import { back, navigate, render, step } from './test/render';

const item = (id: string, title: string): Stuff => ({
  id,
  title,
  description: '',
  priceCents: 500,
  sellerId: 'seller-9',
  status: 'available',
  version: 1,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
});

describe('safeNext', () => {
  it('allows only same-site paths', () => {
    expect(safeNext('/orders')).toBe('/orders');
    expect(safeNext('/stuff/s1?x=1')).toBe('/stuff/s1?x=1');
    expect(safeNext(null)).toBe('/');
    expect(safeNext('')).toBe('/');
    expect(safeNext('//evil.example')).toBe('/');
    expect(safeNext('https://evil.example')).toBe('/');
  });
});

describe('the routes', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  const titles: Record<string, string> = { s1: 'First', s2: 'Second', 'a b/c': 'Odd id' };

  async function start(path: string) {
    window.history.replaceState(null, '', path);
    document.body.replaceChildren();
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({
      http,
      createSocket: (a) => {
        socket = new FakeSocket(a);
        socket.autoAccept = true;
        return socket;
      },
    });
    socket.responders.set('stuff:get', (p) => {
      const id = (p as { id: string }).id;
      return id in titles ? { data: item(id, titles[id] as string) } : { status: 404, errors: [{ message: 'Not found' }] };
    });
    socket.responders.set('stuff:list', () => ({ data: { items: [], nextCursor: null } }));
    socket.responders.set('order:list', () => ({ data: [] }));
    socket.responders.set('review:list', () => ({ data: [] }));
    await session.start();
    const r = render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
    await step();
    return r;
  }
  afterEach(() => session.stop());
  beforeEach(() => document.body.replaceChildren());

  it('hands the page its decoded id, and a new id is a fresh page', async () => {
    const r = await start(`/stuff/${encodeURIComponent('a b/c')}`);
    expect(socket.lastEmitted('stuff:get')!.payload).toEqual({ id: 'a b/c' });
    expect(r.byTestId('stuff-title')!.textContent).toBe('Odd id');

    await step(() => navigate('/stuff/s1'));
    expect(r.byTestId('stuff-title')!.textContent).toBe('First');
    await step(() => navigate('/stuff/s2'));
    expect(socket.lastEmitted('stuff:get')!.payload).toEqual({ id: 's2' });
    expect(r.byTestId('stuff-title')!.textContent).toBe('Second');

    await step(() => back());
    expect(window.location.pathname).toBe('/stuff/s1');
    expect(r.byTestId('stuff-title')!.textContent).toBe('First');
    r.unmount();
  });

  it('shows the edit page, the seller page and the order page for their paths', async () => {
    const r = await start('/stuff/s1/edit');
    expect(r.container.querySelector('h1')!.textContent).toBe('Edit stuff');
    await step(() => navigate('/sellers/seller-9'));
    expect(r.byTestId('seller-page')!.getAttribute('data-seller-id')).toBe('seller-9');
    await step(() => navigate('/orders/o1'));
    expect(r.container.querySelector('h1')!.textContent).toBe('Order');
    expect(socket.lastEmitted('order:get')!.payload).toEqual({ id: 'o1' });
    r.unmount();
  });

  it('says "Page not found" for unknown paths, with a way back', async () => {
    for (const path of ['/nowhere', '/stuff', '/stuff/s1/edit/more', '/orders/o1/x']) {
      const r = await start(path);
      expect(r.container.querySelector('h1')!.textContent).toBe('Page not found');
      expect(r.container.querySelector('main a.tap-link')!.getAttribute('href')).toBe('/');
      r.unmount();
      session.stop();
    }
  });

  it('moves the focus to the new page’s heading on client-side navigation, not on the first load', async () => {
    const r = await start('/');
    expect(document.activeElement).not.toBe(r.container.querySelector('h1'));
    await step(() => (r.byTestId('nav-orders') as HTMLAnchorElement).click());
    expect(window.location.pathname).toBe('/orders');
    const h1 = r.container.querySelector('h1')!;
    expect(h1.textContent).toBe('My orders');
    expect(document.activeElement).toBe(h1);
    r.unmount();
  });

  it('leaves a modified click to the browser (a new tab), and follows a plain one', async () => {
    const r = await start('/');
    const link = r.byTestId('nav-library') as HTMLAnchorElement;
    expect(link.getAttribute('href')).toBe('/library');
    // Not handled by the router: the browser's own action (a new tab) is left alone.
    const ctrl = new MouseEvent('click', { bubbles: true, cancelable: true, ctrlKey: true, button: 0 });
    let preventedByApp: boolean | null = null;
    const last = (e: Event) => {
      preventedByApp = e.defaultPrevented;
      e.preventDefault(); // happy-dom would follow the link in place
    };
    window.addEventListener('click', last, { once: true });
    await step(() => link.dispatchEvent(ctrl));
    expect(preventedByApp).toBe(false);
    expect(window.location.pathname).toBe('/');
    const plain = new MouseEvent('click', { bubbles: true, cancelable: true, button: 0 });
    await step(() => link.dispatchEvent(plain));
    expect(plain.defaultPrevented).toBe(true);
    expect(window.location.pathname).toBe('/library');
    r.unmount();
  });
});
