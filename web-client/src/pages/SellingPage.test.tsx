// @vitest-environment happy-dom
import type { ReactNode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import { browserNavigation } from '../api/payouts';
import { createQueryClient } from '../api/queries';
import type { PayoutStatus, Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { navigate, render, step } from '../test/render';
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

describe('<SellingPage> Payouts', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let status: PayoutStatus;
  let assign: ReturnType<typeof vi.fn<(url: string) => void>>;

  const held = (cents: number, extra: Partial<PayoutStatus> = {}): PayoutStatus => ({
    started: false,
    onboarded: false,
    heldCents: cents,
    paidOutCents: 0,
    currency: 'eur',
    ...extra,
  });

  beforeEach(async () => {
    window.history.replaceState(null, '', '/selling');
    assign = vi.fn<(url: string) => void>();
    vi.spyOn(browserNavigation, 'assign').mockImplementation(assign);
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    status = held(1080);
    socket.responders.set('stuff:mine', () => ({ data: [] }));
    socket.responders.set('order:sales', () => ({ data: { sales: [], totalEarnedCents: 0 } }));
    socket.responders.set('payout:status', () => ({ data: status }));
  });
  afterEach(() => {
    session.stop();
    vi.restoreAllMocks();
    window.history.replaceState(null, '', '/');
  });

  const mount = async () => {
    const r = render(
      <SessionProvider session={session}>
        <SellingPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };
  const text = (r: Awaited<ReturnType<typeof mount>>, id: string) => r.byTestId(id)?.textContent ?? null;
  const statusCalls = () => socket.emitted.filter((e) => e.event === 'payout:status').length;

  it('not started: a labelled section between the listings and Sales says earnings are kept, shows what is held and offers "Set up payouts"', async () => {
    const r = await mount();
    expect(socket.lastEmitted('payout:status')!.payload).toEqual({});
    const section = r.byTestId('payouts')!;
    expect(section.tagName).toBe('SECTION');
    expect(document.getElementById(section.getAttribute('aria-labelledby')!)!.outerHTML).toBe('<h2 id="payouts-heading">Payouts</h2>');
    const order = Array.from(r.container.querySelectorAll('[data-testid="listings-empty"], [data-testid="payouts"], [data-testid="sales"]')).map((e) =>
      e.getAttribute('data-testid'),
    );
    expect(order).toEqual(['listings-empty', 'payouts', 'sales']);
    expect(text(r, 'payouts-off')).toBe('StuffMart keeps your earnings safe for you until you set up payouts with Stripe.');
    expect(text(r, 'payouts-held')).toBe('Waiting for payout: €10.80');
    expect(text(r, 'payouts-held-amount')).toBe('€10.80');
    const button = r.byTestId('payouts-onboard') as HTMLButtonElement;
    expect(button.textContent).toBe('Set up payouts');
    expect(button.disabled).toBe(false);
    expect(r.byTestId('payouts-paid-out')).toBeNull();
    expect(r.byTestId('payouts-on')).toBeNull();
    expect(r.byTestId('payouts-notice')).toBeNull();
    r.unmount();
  });

  it('says "Loading payouts…" until the status answers, and shows a failed status as an alert', async () => {
    socket.responders.set('payout:status', () => undefined);
    const r = await mount();
    expect(r.byTestId('payouts')!.textContent).toContain('Loading payouts…');
    socket.lastEmitted('payout:status')!.reply({ status: 503, errors: [{ message: 'Service unavailable, please try again' }] });
    await step();
    const banner = r.byTestId('payouts-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toBe('Service unavailable, please try again');
    expect(r.byTestId('payouts')!.textContent).not.toContain('Loading payouts…');
    expect(r.byTestId('payouts-onboard')).toBeNull();
    r.unmount();
  });

  it('started: the button reads "Continue setup"; nothing held reads €0.00', async () => {
    status = held(0, { started: true });
    const r = await mount();
    expect(text(r, 'payouts-onboard')).toBe('Continue setup');
    expect(text(r, 'payouts-held')).toBe('Waiting for payout: €0.00');
    r.unmount();
  });

  it('onboarded: payouts are on, what was paid out, no button, and held only while more than zero', async () => {
    status = held(0, { started: true, onboarded: true, paidOutCents: 2160 });
    const r = await mount();
    expect(text(r, 'payouts-on')).toBe('Payouts are on: your earnings go to your Stripe account.');
    expect(text(r, 'payouts-paid-out')).toBe('Paid out: €21.60');
    expect(text(r, 'payouts-paid-out-amount')).toBe('€21.60');
    expect(r.byTestId('payouts-held')).toBeNull();
    expect(r.byTestId('payouts-onboard')).toBeNull();
    expect(r.byTestId('payouts-off')).toBeNull();
    r.unmount();

    status = held(450, { started: true, onboarded: true, paidOutCents: 2160 });
    const again = await mount();
    expect(text(again, 'payouts-paid-out')).toBe('Paid out: €21.60');
    expect(text(again, 'payouts-held')).toBe('Waiting for payout: €4.50');
    again.unmount();
  });

  it('"Set up payouts" asks payout:onboard, is busy meanwhile, then sends the browser to the answered URL', async () => {
    socket.responders.set('payout:onboard', () => undefined);
    const r = await mount();
    await step(() => (r.byTestId('payouts-onboard') as HTMLButtonElement).click());
    const sent = socket.lastEmitted('payout:onboard')!;
    expect(sent.payload).toEqual({});
    // It may reach Stripe: the client waits as long as for the other gateway actions.
    expect(sent.timeoutMs).toBe(35_000);
    const button = r.byTestId('payouts-onboard') as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(button.textContent).toBe('Opening payout setup…');
    expect(assign).not.toHaveBeenCalled();
    await step(() => sent.reply({ data: { url: 'https://connect.stripe.com/setup/e/acct_1/abc' } }));
    expect(assign).toHaveBeenCalledTimes(1);
    expect(assign).toHaveBeenCalledWith('https://connect.stripe.com/setup/e/acct_1/abc');
    // Still busy while the browser leaves: no second link.
    expect((r.byTestId('payouts-onboard') as HTMLButtonElement).disabled).toBe(true);
    expect(socket.emitted.filter((e) => e.event === 'payout:onboard')).toHaveLength(1);
    r.unmount();
  });

  it('follows the test gateway’s same-origin return page, and refuses an answer that is not a web address', async () => {
    let answer = '/selling?payouts=return';
    socket.responders.set('payout:onboard', () => ({ data: { url: answer } }));
    const r = await mount();
    await step(() => (r.byTestId('payouts-onboard') as HTMLButtonElement).click());
    expect(assign).toHaveBeenCalledWith(`${window.location.origin}/selling?payouts=return`);
    r.unmount();

    assign.mockClear();
    answer = 'javascript:alert(1)';
    const again = await mount();
    await step(() => (again.byTestId('payouts-onboard') as HTMLButtonElement).click());
    expect(assign).not.toHaveBeenCalled();
    expect(text(again, 'payouts-onboard-error')).toBe('Payout setup could not start, please try again');
    again.unmount();
  });

  it('shows a refusal (Stripe unreachable) in an alert with the focus, and the button works again', async () => {
    socket.responders.set('payout:onboard', () => ({ status: 503, errors: [{ message: 'Service unavailable, please try again' }] }));
    const r = await mount();
    await step(() => (r.byTestId('payouts-onboard') as HTMLButtonElement).click());
    await step();
    const banner = r.byTestId('payouts-onboard-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toBe('Service unavailable, please try again');
    expect(document.activeElement).toBe(banner);
    expect(assign).not.toHaveBeenCalled();
    const button = r.byTestId('payouts-onboard') as HTMLButtonElement;
    expect(button.disabled).toBe(false);
    expect(button.textContent).toBe('Set up payouts');
    // Trying again clears the old message while it waits.
    socket.responders.set('payout:onboard', () => undefined);
    await step(() => button.click());
    expect(r.byTestId('payouts-onboard-error')).toBeNull();
    expect(socket.emitted.filter((e) => e.event === 'payout:onboard')).toHaveLength(2);
    r.unmount();
  });

  it('?payouts=return: asks the status again and says "Payout setup finished" politely; the parameter leaves the address without a new entry', async () => {
    window.history.replaceState(null, '', '/selling?payouts=return&tab=x');
    const entries = window.history.length;
    status = held(0, { started: true, onboarded: true, paidOutCents: 1080 });
    socket.responders.set('payout:status', () => undefined);
    const r = await mount();
    expect(window.location.pathname).toBe('/selling');
    expect(window.location.search).toBe('?tab=x');
    expect(window.history.length).toBe(entries);
    const region = r.byTestId('payouts-notice-region')!;
    expect(region.getAttribute('role')).toBe('status');
    expect(region.getAttribute('aria-live')).toBe('polite');
    // Nothing is said before the status answers.
    expect(region.textContent).toBe('');
    await step(() => socket.lastEmitted('payout:status')!.reply({ data: status }));
    expect(text(r, 'payouts-notice')).toBe('Payout setup finished');
    expect(region.contains(r.byTestId('payouts-notice'))).toBe(true);
    expect(text(r, 'payouts-paid-out')).toBe('Paid out: €10.80');
    expect(r.byTestId('payouts-held')).toBeNull();
    r.unmount();
  });

  it('?payouts=return with onboarding unfinished: "Payout setup is not finished yet" and Continue setup', async () => {
    window.history.replaceState(null, '', '/selling?payouts=return');
    status = held(1080, { started: true });
    const r = await mount();
    expect(window.location.search).toBe('');
    expect(text(r, 'payouts-notice')).toBe('Payout setup is not finished yet');
    expect(text(r, 'payouts-onboard')).toBe('Continue setup');
    r.unmount();
  });

  it('?payouts=return waits for a fresh answer rather than one held from before', async () => {
    // The page was open before (not onboarded); the seller comes back to it from onboarding
    // without a page load, so the cache still holds the old answer.
    const client = createQueryClient();
    const page = (ui: ReactNode) => (
      <SessionProvider session={session} queryClient={client}>
        {ui}
      </SessionProvider>
    );
    const again = render(page(<SellingPage />));
    await step(() => socket.acceptConnect());
    expect(text(again, 'payouts-held')).toBe('Waiting for payout: €10.80');
    again.rerender(page(<p>Elsewhere</p>));
    status = held(0, { started: true, onboarded: true, paidOutCents: 1080 });
    socket.responders.set('payout:status', () => undefined);
    const before = statusCalls();
    await step(() => navigate('/selling?payouts=return'));
    await step(() => again.rerender(page(<SellingPage />)));
    expect(window.location.search).toBe('');
    expect(statusCalls()).toBe(before + 1);
    // The held answer shows, but says nothing about the setup yet.
    expect(text(again, 'payouts-held')).toBe('Waiting for payout: €10.80');
    expect(again.byTestId('payouts-notice')).toBeNull();
    await step(() => socket.lastEmitted('payout:status')!.reply({ data: status }));
    expect(text(again, 'payouts-notice')).toBe('Payout setup finished');
    again.unmount();
  });

  it('?payouts=refresh: "The setup link expired" next to Continue setup, which asks for a new link', async () => {
    window.history.replaceState(null, '', '/selling?payouts=refresh');
    const entries = window.history.length;
    status = held(1080, { started: true });
    socket.responders.set('payout:onboard', () => ({ data: { url: 'https://connect.stripe.com/setup/e/acct_1/new' } }));
    const r = await mount();
    expect(window.location.search).toBe('');
    expect(window.history.length).toBe(entries);
    expect(text(r, 'payouts-notice')).toBe('The setup link expired');
    expect(r.byTestId('payouts-notice-region')!.getAttribute('aria-live')).toBe('polite');
    const button = r.byTestId('payouts-onboard') as HTMLButtonElement;
    expect(button.textContent).toBe('Continue setup');
    await step(() => button.click());
    expect(assign).toHaveBeenCalledWith('https://connect.stripe.com/setup/e/acct_1/new');
    r.unmount();
  });

  it('signed out on the way back from Stripe: signing in returns to the same address', async () => {
    session.stop();
    const http = new FakeHttp();
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    window.history.replaceState(null, '', '/selling?payouts=return');
    const r = render(
      <SessionProvider session={session}>
        <SellingPage />
      </SessionProvider>,
    );
    await step();
    expect(r.byTestId('signin-required')!.querySelector('a')!.getAttribute('href')).toBe('/signin?next=%2Fselling%3Fpayouts%3Dreturn');
    // Nothing read yet: the parameter stays for after the sign-in.
    expect(window.location.search).toBe('?payouts=return');
    expect(socket.lastEmitted('payout:status')).toBeUndefined();
    r.unmount();
  });

  it('ignores other values of ?payouts= (and leaves them in the address untouched otherwise)', async () => {
    window.history.replaceState(null, '', '/selling?payouts=elsewhere');
    const r = await mount();
    expect(r.byTestId('payouts-notice')).toBeNull();
    expect(window.location.search).toBe('');
    expect(text(r, 'payouts-held')).toBe('Waiting for payout: €10.80');
    r.unmount();
  });

  it('asks the status again on sale:completed and after a reconnect', async () => {
    const r = await mount();
    expect(statusCalls()).toBe(1);
    status = held(2160);
    await step(() =>
      socket.push('sale:completed', {
        orderId: 'o2',
        stuffId: 's2',
        stuffTitle: 'Slides',
        buyerDisplayName: 'bob',
        paidCents: 1200,
        feeCents: 120,
        earnedCents: 1080,
        paidAt: '2026-11-03T12:00:00Z',
      }),
    );
    expect(statusCalls()).toBe(2);
    expect(text(r, 'payouts-held')).toBe('Waiting for payout: €21.60');
    status = held(0, { started: true, onboarded: true, paidOutCents: 2160 });
    await step(() => socket.dropNetwork());
    await step(() => socket.acceptConnect());
    expect(statusCalls()).toBe(3);
    expect(text(r, 'payouts-paid-out')).toBe('Paid out: €21.60');
    r.unmount();
  });
});
