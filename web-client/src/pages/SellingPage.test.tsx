// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { SellingPage } from './SellingPage';

const mine = (id: string, status: Stuff['status'], version = 1, createdAt = '2026-11-01T12:00:00Z', sellerId = alice.id): Stuff => ({
  id,
  title: `Title ${id}`,
  description: '',
  priceCents: 1250,
  sellerId,
  status,
  version,
  createdAt,
  updatedAt: createdAt,
  files: [],
  hasSecretNote: true,
});

describe('<SellingPage> (My listings)', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let listings: Stuff[];

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    listings = [
      { ...mine('a', 'available', 1, '2026-11-04T12:00:00Z'), course: 'CS 101' },
      mine('r', 'reserved', 2, '2026-11-03T12:00:00Z'),
      mine('s', 'sold', 3, '2026-11-02T12:00:00Z'),
      mine('w', 'withdrawn', 2, '2026-11-01T12:00:00Z'),
    ];
    socket.responders.set('stuff:mine', () => ({ data: listings }));
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <SellingPage />
      </SessionProvider>,
    );
  const row = (r: ReturnType<typeof mount>, id: string) => r.byTestId(`listing-${id}`)!;
  const badge = (r: ReturnType<typeof mount>, id: string) => row(r, id).querySelector('[data-testid="status-badge"]')!.textContent;

  it('lists every stuff I listed, newest first, with price, status, links, and Withdraw only when available', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(socket.lastEmitted('stuff:mine')!.payload).toEqual({});
    const ids = Array.from(r.container.querySelectorAll('[data-testid^="listing-"][data-status]')).map((e) => e.getAttribute('data-testid'));
    expect(ids).toEqual(['listing-a', 'listing-r', 'listing-s', 'listing-w']);
    expect(['a', 'r', 's', 'w'].map((id) => badge(r, id))).toEqual(['Available', 'Being checked out', 'Sold', 'Withdrawn']);
    expect(row(r, 'a').querySelector('[data-testid="price"]')!.textContent).toBe('€12.50');
    // The course, when it has one.
    expect(row(r, 'a').querySelector('[data-testid="course-badge"]')!.textContent).toBe('Course CS 101');
    expect(row(r, 'r').querySelector('[data-testid="course-badge"]')).toBeNull();
    expect(row(r, 'a').querySelector('[data-testid="listing-link"]')!.getAttribute('href')).toBe('/stuff/a');
    expect(row(r, 'a').querySelector('[data-testid="listing-edit-link"]')!.getAttribute('href')).toBe('/stuff/a/edit');
    expect(row(r, 'a').querySelector('[data-testid="withdraw-button"]')).not.toBeNull();
    for (const id of ['r', 's', 'w']) {
      expect(row(r, id).querySelector('[data-testid="listing-link"]')!.getAttribute('href')).toBe(`/stuff/${id}`);
      expect(row(r, id).querySelector('[data-testid="withdraw-button"]')).toBeNull();
      expect(row(r, id).querySelector('[data-testid="listing-edit-link"]')).toBeNull();
    }
    r.unmount();
  });

  it('withdraws after an accessible confirmation, says so with the focus, and shows Withdrawn', async () => {
    socket.responders.set('stuff:withdraw', (p) => ({ data: { ...mine((p as { id: string }).id, 'withdrawn', 2, '2026-11-04T12:00:00Z') } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => (row(r, 'a').querySelector('[data-testid="withdraw-button"]') as HTMLButtonElement).click());
    const box = row(r, 'a').querySelector('[data-testid="withdraw-confirmation"]')!;
    expect(box.getAttribute('role')).toBe('group');
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toContain('Withdraw “Title a”?');
    expect(document.activeElement!.getAttribute('data-testid')).toBe('withdraw-confirm');
    expect(socket.lastEmitted('stuff:withdraw')).toBeUndefined();
    await step(() => (document.activeElement as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:withdraw')!.payload).toEqual({ id: 'a' });
    expect(badge(r, 'a')).toBe('Withdrawn');
    expect(row(r, 'a').querySelector('[data-testid="withdraw-button"]')).toBeNull();
    const notice = r.byTestId('withdrawn-notice')!;
    expect(notice.getAttribute('role')).toBe('status');
    expect(notice.textContent).toBe('Withdrew “Title a”: it is no longer for sale.');
    expect(document.activeElement).toBe(notice);
    r.unmount();
  });

  it('shows a refusal as an alert with the focus, and re-fetches', async () => {
    socket.responders.set('stuff:withdraw', () => {
      listings = [{ ...listings[0]!, status: 'sold', version: 3 }, ...listings.slice(1)];
      return { status: 409, errors: [{ message: 'This stuff has already been sold' }] };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => (row(r, 'a').querySelector('[data-testid="withdraw-button"]') as HTMLButtonElement).click());
    await step(() => (row(r, 'a').querySelector('[data-testid="withdraw-confirm"]') as HTMLButtonElement).click());
    await step();
    const banner = r.byTestId('withdraw-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('This stuff has already been sold');
    expect(document.activeElement).toBe(banner);
    expect(socket.emitted.filter((e) => e.event === 'stuff:mine')).toHaveLength(2);
    expect(badge(r, 'a')).toBe('Sold');
    r.unmount();
  });

  it('updates live from pushes: status changes, my new stuff on top, nobody else’s', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => socket.push('stuff:updated', mine('a', 'reserved', 2, '2026-11-04T12:00:00Z')));
    expect(badge(r, 'a')).toBe('Being checked out');
    expect(row(r, 'a').querySelector('[data-testid="withdraw-button"]')).toBeNull();
    // A stale push changes nothing.
    await step(() => socket.push('stuff:updated', mine('a', 'available', 1, '2026-11-04T12:00:00Z')));
    expect(badge(r, 'a')).toBe('Being checked out');
    await step(() => socket.push('stuff:updated', mine('r', 'sold', 3, '2026-11-03T12:00:00Z')));
    expect(badge(r, 'r')).toBe('Sold');
    await step(() => socket.push('stuff:created', mine('n', 'available', 1, '2026-11-05T12:00:00Z')));
    await step(() => socket.push('stuff:created', mine('x', 'available', 1, '2026-11-06T12:00:00Z', 'someone-else')));
    const ids = Array.from(r.container.querySelectorAll('[data-testid^="listing-"][data-status]')).map((e) => e.getAttribute('data-testid'));
    expect(ids).toEqual(['listing-n', 'listing-a', 'listing-r', 'listing-s', 'listing-w']);
    r.unmount();
  });

  it('says so when nothing is listed yet, with a link to sell', async () => {
    listings = [];
    const r = mount();
    await step(() => socket.acceptConnect());
    const empty = r.byTestId('listings-empty')!;
    expect(empty.textContent).toBe('You have not listed anything yet. Sell something');
    expect(empty.querySelector('a')!.getAttribute('href')).toBe('/sell');
    r.unmount();
  });

  it('shows a failed list as an alert', async () => {
    socket.responders.set('stuff:mine', () => ({ status: 503, errors: [{ message: 'The service is not answering right now.' }] }));
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.container.querySelector('[role="alert"]')!.textContent).toContain('The service is not answering right now.');
    r.unmount();
  });
});
