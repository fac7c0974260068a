// @vitest-environment happy-dom
// The marketplace pieces in the whole app: the account page and the header's name, seller names,
// ratings and covers, reviews (the stuff page's list, the order page's form), Sales on My
// listings, and the sale toast.
import axe from 'axe-core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../App';
import { ApiError } from '../api/errors';
import { DEFAULT_CURRENCY, setCurrency } from '../api/format';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Order, Review, Sale, SalesSummary, Stuff } from '../api/types';
import { TOAST_MS } from '../components/toasts';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { navigate, render, step, typeInto } from '../test/render';

const stuff = (id: string, extra: Partial<Stuff> = {}): Stuff => ({
  id,
  title: `Notes ${id}`,
  description: '',
  priceCents: 1000,
  sellerId: 'seller-9',
  status: 'available',
  version: 1,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  seller: { id: 'seller-9', displayName: 'Grace H.' },
  rating: { average: 4.5, count: 12 },
  coverUrl: null,
  ...extra,
});
const review = (id: string, rating: number, comment: string, createdAt: string): Review => ({
  id,
  stuffId: 's1',
  rating,
  comment,
  buyerDisplayName: `buyer ${id}`,
  createdAt,
});
const order = (extra: Partial<Order> = {}): Order => ({
  id: 'o1',
  stuffId: 's1',
  userId: alice.id,
  status: 'complete',
  expiresAt: '2026-11-01T12:15:00Z',
  priceCents: 1000,
  version: 3,
  createdAt: '2026-11-01T12:00:00Z',
  stuffTitle: 'Notes s1',
  paidCents: 1000,
  reviewed: false,
  ...extra,
});
const sale = (orderId: string, paidAt: string, extra: Partial<Sale> = {}): Sale => ({
  orderId,
  stuffId: 's1',
  stuffTitle: 'Notes s1',
  buyerDisplayName: 'bob',
  paidCents: 1000,
  feeCents: 100,
  earnedCents: 900,
  paidAt,
  ...extra,
});

describe('the marketplace in the app', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let http: FakeHttp;

  const start = async (path: string, setup: (s: FakeSocket) => void = () => undefined) => {
    window.history.replaceState(null, '', path);
    http = new FakeHttp();
    http.refreshResults.push({ user: { ...alice, displayName: 'Alice' }, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:list', () => ({ data: { items: [stuff('s1'), stuff('s2', { rating: { average: 0, count: 0 }, coverUrl: '/covers/s2.webp' })], nextCursor: null } }));
    socket.responders.set('stuff:get', () => ({ data: stuff('s1') }));
    socket.responders.set('order:list', () => ({ data: [] }));
    socket.responders.set('stuff:mine', () => ({ data: [] }));
    socket.responders.set('review:list', () => ({ data: [] }));
    socket.responders.set('order:sales', () => ({ data: { sales: [], totalEarnedCents: 0 } }));
    setup(socket);
    const r = render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };
  beforeEach(() => document.body.replaceChildren());
  afterEach(() => {
    session.stop();
    vi.useRealTimers();
    setCurrency(DEFAULT_CURRENCY);
  });

  describe('account settings', () => {
    it('shows my name and e-mail, opens from the header, and the new name shows at once', async () => {
      const r = await start('/');
      expect(r.byTestId('current-user-name')!.textContent).toBe('Alice');
      expect(r.byTestId('current-user-email')!.textContent).toBe(alice.email);
      await step(() => (r.byTestId('nav-account') as HTMLAnchorElement).click());
      expect(window.location.pathname).toBe('/account');
      expect(r.container.querySelector('h1')!.textContent).toBe('Account');
      expect(r.container.querySelector('h2')!.textContent).toBe('Change your display name');
      expect(r.byTestId('account-display-name')!.textContent).toBe('Alice');
      expect(r.byTestId('account-email')!.textContent).toBe(alice.email);
      const input = r.byTestId('display-name-input') as HTMLInputElement;
      expect(input.value).toBe('Alice');
      expect(document.querySelector(`label[for="${input.id}"]`)!.textContent).toBe('Display name');

      await step(() => typeInto(input, '  Ada Lovelace  '));
      await step(() => (r.byTestId('display-name-submit') as HTMLButtonElement).click());
      expect(http.updateMeCalls[0]!.patch).toEqual({ displayName: 'Ada Lovelace' });
      expect(r.byTestId('current-user-name')!.textContent).toBe('Ada Lovelace');
      expect(r.byTestId('account-display-name')!.textContent).toBe('Ada Lovelace');
      const saved = r.byTestId('account-saved')!;
      expect(saved.getAttribute('role')).toBe('status');
      expect(saved.textContent).toBe('Saved. Buyers and sellers now see you as Ada Lovelace.');
      r.unmount();
    });

    it('shows the rule on the field before sending, and the server’s 400 on the field with the focus', async () => {
      const message = 'Display name must be 2 to 40 characters';
      const r = await start('/account');
      const input = r.byTestId('display-name-input') as HTMLInputElement;
      await step(() => typeInto(input, ' A '));
      await step(() => (r.byTestId('display-name-submit') as HTMLButtonElement).click());
      expect(http.updateMeCalls).toHaveLength(0);
      expect(r.byTestId('error-displayName')!.textContent).toBe(message);
      expect(input.getAttribute('aria-invalid')).toBe('true');
      expect(input.getAttribute('aria-describedby')).toContain('error-displayName');
      expect(document.activeElement).toBe(input);

      // The server may refuse what the client let through: its message goes on the field too.
      http.updateMeResults.push(new ApiError(400, [{ message, field: 'displayName' }]));
      await step(() => typeInto(input, 'Okay name'));
      expect(r.byTestId('error-displayName')).toBeNull();
      await step(() => (r.byTestId('display-name-submit') as HTMLButtonElement).click());
      expect(http.updateMeCalls).toHaveLength(1);
      expect(r.byTestId('error-displayName')!.textContent).toBe(message);
      expect(r.byTestId('current-user-name')!.textContent).toBe('Alice');
      r.unmount();
    });

    it('reads an older server’s user without displayName as the e-mail’s local part', async () => {
      window.history.replaceState(null, '', '/account');
      http = new FakeHttp();
      http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
      session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
      await session.start();
      const r = render(
        <SessionProvider session={session}>
          <App />
        </SessionProvider>,
      );
      await step(() => socket.acceptConnect());
      expect(r.byTestId('current-user-name')!.textContent).toBe('alice');
      expect((r.byTestId('display-name-input') as HTMLInputElement).value).toBe('alice');
      r.unmount();
    });
  });

  describe('seller names, ratings and covers', () => {
    it('cards show the rating, the seller as a link, and a cover only when there is one', async () => {
      const r = await start('/');
      const one = r.byTestId('stuff-card-s1')!;
      const rating = one.querySelector('[data-testid="rating"]')!;
      expect(rating.textContent).toBe('★ 4.5 (12)');
      expect(rating.getAttribute('role')).toBe('img');
      expect(rating.getAttribute('aria-label')).toBe('Rated 4.5 out of 5 from 12 reviews');
      const seller = one.querySelector('[data-testid="card-seller-link"]')!;
      expect(seller.textContent).toBe('Grace H.');
      expect(seller.getAttribute('href')).toBe('/sellers/seller-9');
      expect(one.querySelector('img')).toBeNull();

      const two = r.byTestId('stuff-card-s2')!;
      expect(two.querySelector('[data-testid="rating"]')!.textContent).toBe('No reviews yet');
      expect(two.querySelector('[data-testid="rating"]')!.getAttribute('aria-label')).toBeNull();
      const img = two.querySelector('img')!;
      expect(img.getAttribute('src')).toBe('/covers/s2.webp');
      expect(img.getAttribute('alt')).toBe('Notes s2');
      expect(img.getAttribute('loading')).toBe('lazy');

      await step(() => (seller as HTMLAnchorElement).click());
      expect(window.location.pathname).toBe('/sellers/seller-9');
      expect(r.container.querySelector('h1')!.textContent).toBe('Grace H.');
      r.unmount();
    });

    it('the stuff page names the seller, shows the rating, a placeholder without a cover, and the reviews newest first', async () => {
      const r = await start('/stuff/s1', (s) =>
        s.responders.set('review:list', () => ({
          data: [review('r1', 3, '', '2026-11-02T12:00:00Z'), review('r2', 5, 'Great notes,\nvery clear', '2026-11-03T12:00:00Z')],
        })),
      );
      expect(socket.lastEmitted('review:list')!.payload).toEqual({ stuffId: 's1' });
      const soldBy = r.byTestId('sold-by')!;
      expect(soldBy.textContent).toBe('Sold by Grace H.');
      expect(soldBy.querySelector('a')!.getAttribute('href')).toBe('/sellers/seller-9');
      expect(r.byTestId('seller-link')!.textContent).toBe('More from this seller');
      expect(r.byTestId('rating')!.getAttribute('aria-label')).toBe('Rated 4.5 out of 5 from 12 reviews');
      expect(r.byTestId('cover-placeholder')!.getAttribute('aria-hidden')).toBe('true');

      const section = r.byTestId('reviews')!;
      expect(section.querySelector('h2')!.textContent).toBe('Reviews');
      const items = Array.from(section.querySelectorAll('[data-testid^="review-r"]'));
      expect(items.map((e) => e.getAttribute('data-testid'))).toEqual(['review-r2', 'review-r1']);
      const newest = items[0]!;
      expect(newest.querySelector('[data-testid="review-author"]')!.textContent).toBe('buyer r2');
      expect(newest.querySelector('[data-testid="review-stars"]')!.textContent).toBe('★★★★★');
      expect(newest.querySelector('[data-testid="review-stars"]')!.getAttribute('aria-label')).toBe('5 stars');
      expect(newest.querySelector('[data-testid="review-comment"]')!.textContent).toBe('Great notes,\nvery clear');
      expect(newest.querySelector('time')!.getAttribute('dateTime')).toBe('2026-11-03T12:00:00Z');
      // An empty comment shows no empty paragraph.
      expect(items[1]!.querySelector('[data-testid="review-comment"]')).toBeNull();
      r.unmount();
    });

    it('the stuff page says when there are no reviews yet, and the cover when there is one', async () => {
      const r = await start('/stuff/s1', (s) => s.responders.set('stuff:get', () => ({ data: stuff('s1', { rating: { average: 0, count: 0 }, coverUrl: '/c.png' }) })));
      expect(r.byTestId('reviews-empty')!.textContent).toBe('No reviews yet. Reviews come from people who bought this.');
      expect(r.byTestId('rating')!.textContent).toBe('No reviews yet');
      expect(r.byTestId('cover-image')!.getAttribute('alt')).toBe('Notes s1');
      r.unmount();
    });

    it('an older server’s stuff (no seller, rating or cover) still reads well', async () => {
      const old = stuff('s1');
      delete old.seller;
      delete old.rating;
      delete old.coverUrl;
      const r = await start('/stuff/s1', (s) => s.responders.set('stuff:get', () => ({ data: old })));
      expect(r.byTestId('sold-by')).toBeNull();
      expect(r.byTestId('rating')!.textContent).toBe('No reviews yet');
      expect(r.byTestId('cover-placeholder')).not.toBeNull();
      r.unmount();
    });
  });

  describe('reviewing an order', () => {
    const radios = (r: { container: HTMLElement }) => Array.from(r.container.querySelectorAll<HTMLInputElement>('input[type="radio"][name="rating"]'));

    it('offers a 1–5 star form with labels and a counter, checks it, and thanks with the review', async () => {
      const created = review('r9', 4, 'Clear and complete', '2026-11-04T12:00:00Z');
      const r = await start('/orders/o1', (s) => {
        s.responders.set('order:get', () => ({ data: order() }));
        s.responders.set('delivery:get', () => ({ data: { secretNote: null, files: [] } }));
        s.responders.set('review:create', () => ({ data: created }));
      });
      const section = r.byTestId('order-review')!;
      expect(section.querySelector('h2')!.textContent).toBe('Review this stuff');
      expect(section.querySelector('legend')!.textContent).toBe('Your rating');
      expect(radios(r).map((x) => document.querySelector(`label[for="${x.id}"]`)!.textContent)).toEqual([
        '★☆☆☆☆ 1 star',
        '★★☆☆☆ 2 stars',
        '★★★☆☆ 3 stars',
        '★★★★☆ 4 stars',
        '★★★★★ 5 stars',
      ]);
      // The stars are decoration: the label reads "4 stars".
      expect(document.querySelector('label[for="review-rating-4"] .stars')!.getAttribute('aria-hidden')).toBe('true');

      // No rating chosen: said on the group, focus on its first choice, nothing sent.
      await step(() => (r.byTestId('review-submit') as HTMLButtonElement).click());
      expect(socket.lastEmitted('review:create')).toBeUndefined();
      expect(r.byTestId('error-rating')!.textContent).toBe('Choose a rating from 1 to 5 stars');
      expect(document.activeElement).toBe(radios(r)[0]);

      // The comment counts characters up to 1000; one more is refused before sending.
      const comment = r.byTestId('review-comment-input') as HTMLTextAreaElement;
      expect(r.byTestId('comment-counter')!.textContent).toBe('0 / 1000 characters');
      expect(comment.getAttribute('aria-describedby')).toContain('comment-counter');
      await step(() => (r.byTestId('review-rating-4') as HTMLInputElement).click());
      expect(r.byTestId('error-rating')).toBeNull();
      await step(() => typeInto(comment, 'x'.repeat(1001)));
      expect(r.byTestId('comment-counter')!.textContent).toBe('1001 / 1000 characters');
      await step(() => (r.byTestId('review-submit') as HTMLButtonElement).click());
      expect(socket.lastEmitted('review:create')).toBeUndefined();
      expect(r.byTestId('error-comment')!.textContent).toBe('Comment must be at most 1000 characters');
      expect(document.activeElement).toBe(comment);

      await step(() => typeInto(comment, '  Clear and complete '));
      expect(r.byTestId('comment-counter')!.textContent).toBe('21 / 1000 characters');
      await step(() => (r.byTestId('review-submit') as HTMLButtonElement).click());
      expect(socket.lastEmitted('review:create')!.payload).toEqual({ orderId: 'o1', rating: 4, comment: 'Clear and complete' });
      // The order says it is reviewed now (the push may come before the answer): the thanks stay.
      await step(() => socket.push('order:updated', order({ version: 4, reviewed: true })));
      const thanks = r.byTestId('review-thanks')!;
      expect(thanks.getAttribute('role')).toBe('status');
      expect(thanks.textContent).toBe('Thanks for your review');
      expect(document.activeElement).toBe(thanks);
      expect(r.byTestId('my-review')!.querySelector('[data-testid="review-comment"]')!.textContent).toBe('Clear and complete');
      expect(r.byTestId('review-form')).toBeNull();
      r.unmount();
    });

    it('shows the 409 when the order was already reviewed (e.g. in another tab)', async () => {
      const r = await start('/orders/o1', (s) => {
        s.responders.set('order:get', () => ({ data: order() }));
        s.responders.set('delivery:get', () => ({ data: { secretNote: null, files: [] } }));
        s.responders.set('review:create', () => ({ status: 409, errors: [{ message: 'You already reviewed this order' }] }));
      });
      await step(() => (r.byTestId('review-rating-5') as HTMLInputElement).click());
      await step(() => (r.byTestId('review-submit') as HTMLButtonElement).click());
      expect(socket.lastEmitted('review:create')!.payload).toEqual({ orderId: 'o1', rating: 5 });
      const error = r.byTestId('review-error')!;
      expect(error.getAttribute('role')).toBe('alert');
      expect(error.textContent).toBe('You already reviewed this order');
      expect(r.byTestId('review-form')).toBeNull();
      r.unmount();
    });

    it('hides the form for a reviewed order and for one not complete', async () => {
      let current = order({ reviewed: true });
      const r = await start('/orders/o1', (s) => {
        s.responders.set('order:get', () => ({ data: current }));
        s.responders.set('delivery:get', () => ({ data: { secretNote: null, files: [] } }));
      });
      expect(r.byTestId('review-form')).toBeNull();
      expect(r.byTestId('order-reviewed')!.textContent).toBe('You reviewed this. See the reviews');
      r.unmount();
      current = order({ status: 'refunded' });
      const again = await start('/orders/o1', (s) => s.responders.set('order:get', () => ({ data: current })));
      expect(again.byTestId('review-form')).toBeNull();
      expect(again.byTestId('order-reviewed')).toBeNull();
      again.unmount();
    });
  });

  describe('sales', () => {
    it('lists my sales with buyer, paid, fee, earned and date, and the total earned; refreshes on sale:completed', async () => {
      let summary: SalesSummary = { sales: [sale('o1', '2026-11-02T12:00:00Z')], totalEarnedCents: 900 };
      const r = await start('/selling', (s) => s.responders.set('order:sales', () => ({ data: summary })));
      expect(socket.lastEmitted('order:sales')!.payload).toEqual({});
      const section = r.byTestId('sales')!;
      expect(section.querySelector('h2')!.textContent).toBe('Sales');
      expect(r.byTestId('sales-total')!.textContent).toBe('Total earned: €9.00');
      const row = r.byTestId('sale-o1')!;
      expect(row.querySelector('[data-testid="sale-title"]')!.textContent).toBe('Notes s1');
      expect(row.querySelector('[data-testid="sale-buyer"]')!.textContent).toBe('bob');
      expect(row.querySelector('[data-testid="sale-paid"]')!.textContent).toBe('€10.00');
      expect(row.querySelector('[data-testid="sale-fee"]')!.textContent).toBe('€1.00');
      expect(row.querySelector('[data-testid="sale-earned"]')!.textContent).toBe('€9.00');
      expect(row.querySelector('time')!.getAttribute('dateTime')).toBe('2026-11-02T12:00:00Z');
      expect(Array.from(row.querySelectorAll('dt')).map((d) => d.textContent)).toEqual(['Paid', 'Fee', 'Earned']);

      // A new sale: shown at once, and the list is asked again.
      const fresh = sale('o2', '2026-11-03T12:00:00Z', { stuffTitle: 'Slides', paidCents: 500, feeCents: 50, earnedCents: 450 });
      summary = { sales: [fresh, ...summary.sales], totalEarnedCents: 1350 };
      const before = socket.emitted.filter((e) => e.event === 'order:sales').length;
      await step(() => socket.push('sale:completed', fresh));
      expect(socket.emitted.filter((e) => e.event === 'order:sales').length).toBe(before + 1);
      const ids = Array.from(r.container.querySelectorAll('[data-testid^="sale-o"]')).map((e) => e.getAttribute('data-testid'));
      expect(ids).toEqual(['sale-o2', 'sale-o1']);
      expect(r.byTestId('sales-total')!.textContent).toBe('Total earned: €13.50');
      r.unmount();
    });

    it('says "No sales yet" with a zero total', async () => {
      const r = await start('/selling');
      expect(r.byTestId('sales-empty')!.textContent).toBe('No sales yet');
      expect(r.byTestId('sales-total')!.textContent).toBe('Total earned: €0.00');
      r.unmount();
    });
  });

  describe('the sale toast', () => {
    it('says what sold in the server’s currency, politely, anywhere; hides by itself after a while', async () => {
      const r = await start('/');
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      await step(() => setCurrency('usd'));
      const region = r.byTestId('toasts')!;
      expect(region.getAttribute('role')).toBe('status');
      expect(region.getAttribute('aria-live')).toBe('polite');
      expect(region.children).toHaveLength(0);
      await step(() => socket.push('sale:completed', sale('o7', '2026-11-03T12:00:00Z', { stuffTitle: 'Linear algebra' })));
      const toast = r.byTestId('sale-toast')!;
      expect(toast.textContent).toContain('Sold: Linear algebra — you earned $9.00');
      expect(region.contains(toast)).toBe(true);
      // The same sale twice (two tabs, a re-delivery) is one toast.
      await step(() => socket.push('sale:completed', sale('o7', '2026-11-03T12:00:00Z', { stuffTitle: 'Linear algebra' })));
      expect(r.container.querySelectorAll('[data-testid="sale-toast"]')).toHaveLength(1);
      await step(() => vi.advanceTimersByTime(TOAST_MS - 1));
      expect(r.byTestId('sale-toast')).not.toBeNull();
      await step(() => vi.advanceTimersByTime(1));
      expect(r.byTestId('sale-toast')).toBeNull();
      r.unmount();
    });

    it('can be dismissed, and waits while it has the focus', async () => {
      const r = await start('/selling');
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      await step(() => socket.push('sale:completed', sale('o8', '2026-11-03T12:00:00Z')));
      const dismiss = r.byTestId('toast-dismiss') as HTMLButtonElement;
      expect(dismiss.getAttribute('aria-label')).toBe('Dismiss');
      await step(() => dismiss.focus());
      await step(() => vi.advanceTimersByTime(TOAST_MS * 2));
      expect(r.byTestId('sale-toast')).not.toBeNull();
      await step(() => dismiss.click());
      expect(r.byTestId('sale-toast')).toBeNull();
      r.unmount();
    });
  });

  describe('accessibility (axe-core: WCAG 2 A/AA and heading order; contrast needs a real browser)', () => {
    const check = async () => {
      const res = await axe.run(document.body, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
        rules: { 'color-contrast': { enabled: false }, 'heading-order': { enabled: true } },
      });
      return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.html).join(' | ')}`);
    };

    it('has no violations on the new pages and pieces', async () => {
      const r = await start('/account', (s) => {
        s.responders.set('review:list', () => ({ data: [review('r1', 4, 'Good', '2026-11-02T12:00:00Z')] }));
        s.responders.set('order:get', () => ({ data: order() }));
        s.responders.set('delivery:get', () => ({ data: { secretNote: null, files: [] } }));
        s.responders.set('order:sales', () => ({ data: { sales: [sale('o1', '2026-11-02T12:00:00Z')], totalEarnedCents: 900 } }));
        // Enough courses for "More courses".
        s.responders.set('stuff:courses', () => ({ data: Array.from({ length: 15 }, (_, i) => ({ course: `CS ${101 + i}`, count: 20 - i })) }));
      });
      // The account page with an error on the field.
      await step(() => typeInto(r.byTestId('display-name-input') as HTMLInputElement, 'A'));
      await step(() => (r.byTestId('display-name-submit') as HTMLButtonElement).click());
      expect(await check()).toEqual([]);
      await step(() => navigate('/'));
      expect(r.container.querySelectorAll('[data-testid="course-chip"]')).toHaveLength(12);
      expect(await check()).toEqual([]);
      // The course chips: every course, one of them current, and one no listing names.
      await step(() => (r.byTestId('course-chips-more') as HTMLButtonElement).click());
      await step(() => navigate('/?course=CS%20114'));
      expect(r.container.querySelectorAll('[data-testid="course-chip"]')).toHaveLength(15);
      expect(await check()).toEqual([]);
      await step(() => navigate('/?course=BIO%209'));
      expect(await check()).toEqual([]);
      await step(() => navigate('/stuff/s1'));
      expect(await check()).toEqual([]);
      // The review form with an error on the rating.
      await step(() => navigate('/orders/o1'));
      await step(() => (r.byTestId('review-submit') as HTMLButtonElement).click());
      expect(r.byTestId('error-rating')).not.toBeNull();
      expect(await check()).toEqual([]);
      // Sales and a toast.
      await step(() => navigate('/selling'));
      await step(() => socket.push('sale:completed', sale('o2', '2026-11-03T12:00:00Z')));
      expect(r.byTestId('sale-toast')).not.toBeNull();
      expect(await check()).toEqual([]);
      r.unmount();
    });
  });
});

