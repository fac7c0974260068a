// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { CHECKED_OUT_MESSAGE, StuffPage } from './StuffPage';

const item = (version: number, status: Stuff['status']): Stuff => ({
  id: 's1',
  title: 'Linear algebra notes',
  description: 'All lectures',
  priceCents: 1250,
  sellerId: 'seller-9',
  status,
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
});

describe('<StuffPage> live status', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:get', () => ({ data: item(1, 'available') }));
    socket.responders.set('order:list', () => ({ data: [] }));
  });
  afterEach(() => session.stop());

  it('disables BUY with the contract message while someone else checks out, then shows Sold', async () => {
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(r.byTestId('status-badge')!.textContent).toBe('Available');
    const buy = () => r.byTestId('buy-button') as HTMLButtonElement;
    expect(buy().disabled).toBe(false);
    expect(buy().textContent).toBe('BUY');
    expect(r.byTestId('buy-blocked-message')).toBeNull();

    await step(() => socket.push('stuff:updated', item(2, 'reserved')));
    expect(r.byTestId('status-badge')!.textContent).toBe('Being checked out');
    expect(buy().disabled).toBe(true);
    expect(r.byTestId('buy-blocked-message')!.textContent).toBe(CHECKED_OUT_MESSAGE);

    // A stale push (older version) arriving late changes nothing.
    await step(() => socket.push('stuff:updated', item(1, 'available')));
    expect(buy().disabled).toBe(true);

    await step(() => socket.push('stuff:updated', item(3, 'sold')));
    expect(r.byTestId('status-badge')!.textContent).toBe('Sold');
    expect(buy().textContent).toBe('Sold');
    expect(buy().disabled).toBe(true);
    expect(r.byTestId('buy-blocked-message')).toBeNull();
    r.unmount();
  });

  it('shows a 409 from order:create as a banner, never raw JSON', async () => {
    socket.responders.set('order:create', () => ({ status: 409, errors: [{ message: 'This stuff has already been sold' }] }));
    socket.responders.set('stuff:get', () => ({ data: item(1, 'available') }));
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    await step(() => (r.byTestId('buy-button') as HTMLButtonElement).click());
    const banner = r.byTestId('buy-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('This stuff has already been sold');
    expect(banner.textContent).not.toContain('{');
    r.unmount();
  });
});
