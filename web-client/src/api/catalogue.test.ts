import { describe, expect, it } from 'vitest';
import {
  applyOrderUpdated,
  applyPage,
  applyStuffCreated,
  applyStuffUpdated,
  applyMineUpdated,
  catalogueFilter,
  emptyCatalogue,
  mergeMine,
  mergeOrders,
  rememberNewest,
} from './catalogue';
import type { Order, Stuff } from './types';

function stuff(id: string, version: number, status: Stuff['status'] = 'available', title = id): Stuff {
  return {
    id,
    title,
    description: '',
    priceCents: 1250,
    sellerId: 'seller',
    status,
    version,
    createdAt: '2026-11-01T12:00:00Z',
    updatedAt: '2026-11-01T12:00:00Z',
    files: [],
    hasSecretNote: true,
  };
}

describe('catalogue merge', () => {
  const base = applyPage(emptyCatalogue(), { items: [stuff('a', 1), stuff('b', 3)], nextCursor: 'c1' }, 'replace');

  it('applies a stuff:updated push only when its version is newer', () => {
    const reserved = applyStuffUpdated(base, stuff('a', 2, 'reserved'));
    expect(reserved.items[0]).toMatchObject({ id: 'a', status: 'reserved', version: 2 });
    // Stale (same or older version) pushes are ignored — arriving out of order changes nothing.
    expect(applyStuffUpdated(reserved, stuff('a', 1, 'available'))).toBe(reserved);
    expect(applyStuffUpdated(reserved, stuff('a', 2, 'sold'))).toBe(reserved);
    expect(applyStuffUpdated(reserved, stuff('b', 2, 'sold')).items[1]).toMatchObject({ version: 3, status: 'available' });
  });

  it('keeps the order of items and ignores updates to items not in the list', () => {
    const next = applyStuffUpdated(base, stuff('b', 4, 'sold'));
    expect(next.items.map((s) => s.id)).toEqual(['a', 'b']);
    expect(applyStuffUpdated(base, stuff('zzz', 9))).toBe(base);
  });

  it('puts a created item on top once, and respects the status filter', () => {
    const next = applyStuffCreated(base, stuff('n', 1));
    expect(next.items.map((s) => s.id)).toEqual(['n', 'a', 'b']);
    expect(applyStuffCreated(next, stuff('n', 1)).items).toHaveLength(3);
    const soldOnly = applyPage(emptyCatalogue('sold'), { items: [], nextCursor: null }, 'replace');
    expect(applyStuffCreated(soldOnly, stuff('n', 1)).items).toHaveLength(0);
  });

  it('a fetched page never undoes a newer push (pushes that race the fetch win)', () => {
    const pushed = applyStuffUpdated(base, stuff('a', 5, 'sold'));
    const refetched = applyPage(pushed, { items: [stuff('a', 4, 'reserved'), stuff('b', 3)], nextCursor: null }, 'replace');
    expect(refetched.items[0]).toMatchObject({ version: 5, status: 'sold' });
    expect(refetched.nextCursor).toBeNull();
  });

  it('uses pushes seen before the item was listed (first page still in flight)', () => {
    const seen = new Map<string, Stuff>();
    rememberNewest(seen, stuff('a', 2, 'reserved'));
    rememberNewest(seen, stuff('a', 1, 'available')); // stale, ignored
    const page = applyPage(emptyCatalogue(), { items: [stuff('a', 1)], nextCursor: null }, 'replace', seen);
    expect(page.items[0]).toMatchObject({ version: 2, status: 'reserved' });
  });

  it('replace after a reconnect takes the fresh page; append adds the next page without duplicates', () => {
    const replaced = applyPage(base, { items: [stuff('c', 1), stuff('a', 1)], nextCursor: 'x' }, 'replace');
    expect(replaced.items.map((s) => s.id)).toEqual(['c', 'a']);
    const appended = applyPage(base, { items: [stuff('b', 3), stuff('d', 1)], nextCursor: null }, 'append');
    expect(appended.items.map((s) => s.id)).toEqual(['a', 'b', 'd']);
    expect(appended.nextCursor).toBeNull();
  });
});

describe('withdrawn stuff leaves the catalogue', () => {
  const base = applyPage(emptyCatalogue(), { items: [stuff('a', 1), stuff('b', 3)], nextCursor: 'c1' }, 'replace');

  it('a newer stuff:updated with status withdrawn removes the item; a stale one does not', () => {
    const next = applyStuffUpdated(base, stuff('a', 2, 'withdrawn'));
    expect(next.items.map((s) => s.id)).toEqual(['b']);
    expect(next.nextCursor).toBe('c1');
    expect(applyStuffUpdated(base, stuff('b', 3, 'withdrawn'))).toBe(base);
  });

  it('never adds a withdrawn item from a push, and drops one from a page that raced the withdrawal', () => {
    expect(applyStuffCreated(base, stuff('n', 1, 'withdrawn'))).toBe(base);
    const seen = new Map<string, Stuff>();
    rememberNewest(seen, stuff('a', 2, 'withdrawn'));
    const refetched = applyPage(emptyCatalogue(), { items: [stuff('a', 1), stuff('b', 3)], nextCursor: null }, 'replace', seen);
    expect(refetched.items.map((s) => s.id)).toEqual(['b']);
    // Defensive: a page with a withdrawn item (it should not have one) does not list it either.
    const page = applyPage(emptyCatalogue(), { items: [stuff('x', 1, 'withdrawn'), stuff('y', 1)], nextCursor: null }, 'replace');
    expect(page.items.map((s) => s.id)).toEqual(['y']);
  });
});

describe('my listings merge', () => {
  const mine = (id: string, version: number, status: Stuff['status'], createdAt: string): Stuff => ({
    ...stuff(id, version, status),
    sellerId: 'me',
    createdAt,
  });
  const list = [mine('new', 1, 'available', '2026-11-02T00:00:00Z'), mine('old', 1, 'sold', '2026-11-01T00:00:00Z')];

  it('keeps every status, replaces by version, and puts my new stuff on top', () => {
    const withdrawn = applyMineUpdated(list, mine('new', 2, 'withdrawn', '2026-11-02T00:00:00Z'), 'me');
    expect(withdrawn.map((s) => [s.id, s.status])).toEqual([
      ['new', 'withdrawn'],
      ['old', 'sold'],
    ]);
    expect(applyMineUpdated(withdrawn, mine('new', 1, 'available', '2026-11-02T00:00:00Z'), 'me')).toBe(withdrawn);
    // Someone else's stuff is not mine; mine from another tab goes on top.
    expect(applyMineUpdated(list, stuff('theirs', 1), 'me')).toBe(list);
    expect(applyMineUpdated(list, mine('newest', 1, 'available', '2026-11-03T00:00:00Z'), 'me').map((s) => s.id)).toEqual(['newest', 'new', 'old']);
  });

  it('a fetch keeps pushed copies that are newer, newest first', () => {
    const held = [mine('new', 3, 'withdrawn', '2026-11-02T00:00:00Z')];
    const merged = mergeMine(held, [mine('old', 1, 'sold', '2026-11-01T00:00:00Z'), mine('new', 2, 'available', '2026-11-02T00:00:00Z')]);
    expect(merged.map((s) => [s.id, s.status])).toEqual([
      ['new', 'withdrawn'],
      ['old', 'sold'],
    ]);
  });
});

describe('order merge', () => {
  const order = (id: string, version: number, status: Order['status']): Order => ({
    id,
    stuffId: 's',
    userId: 'u',
    status,
    expiresAt: '2026-11-01T12:15:00Z',
    priceCents: 100,
    version,
    createdAt: '2026-11-01T12:00:00Z',
    stuffTitle: 'Notes',
    paidCents: null,
  });

  it('applies order:updated by version and adds unknown orders', () => {
    const list = [order('o1', 1, 'created')];
    const done = applyOrderUpdated(list, order('o1', 2, 'complete'));
    expect(done[0]!.status).toBe('complete');
    expect(applyOrderUpdated(done, order('o1', 1, 'created'))).toBe(done);
    expect(applyOrderUpdated(done, order('o2', 1, 'created')).map((o) => o.id)).toEqual(['o2', 'o1']);
  });

  it('keeps the newer copy when a re-fetch races a push', () => {
    const held = [order('o1', 3, 'cancelled')];
    expect(mergeOrders(held, [order('o1', 2, 'created'), order('o2', 1, 'created')]).map((o) => o.version)).toEqual([3, 1]);
  });
});

describe('a list filtered by course or seller, or sorted by price', () => {
  const priced = (id: string, priceCents: number, course: string | null = 'CS 101', sellerId = 'seller'): Stuff => ({
    ...stuff(id, 1),
    priceCents,
    course,
    sellerId,
  });

  it('never takes a pushed item of another course, and drops one whose course changed away', () => {
    const cs = applyPage(emptyCatalogue({ course: 'CS 101' }), { items: [priced('a', 500)], nextCursor: null }, 'replace');
    expect(applyStuffCreated(cs, priced('m', 700, 'MATH 2')).items.map((s) => s.id)).toEqual(['a']);
    expect(applyStuffCreated(cs, priced('n', 700, null)).items.map((s) => s.id)).toEqual(['a']);
    expect(applyStuffCreated(cs, priced('c', 700)).items.map((s) => s.id)).toEqual(['c', 'a']);
    const moved = applyStuffUpdated(cs, { ...priced('a', 500, 'MATH 2'), version: 2 });
    expect(moved.items).toEqual([]);
    // A page fetched before the change cannot bring it back when the newer push was seen.
    const seen = new Map<string, Stuff>([['a', { ...priced('a', 500, 'MATH 2'), version: 2 }]]);
    expect(applyPage(cs, { items: [priced('a', 500)], nextCursor: null }, 'replace', seen).items).toEqual([]);
  });

  it("never takes another seller's pushed item on a seller's list", () => {
    const mine = applyPage(emptyCatalogue({ sellerId: 'u1' }), { items: [priced('a', 500, null, 'u1')], nextCursor: null }, 'replace');
    expect(applyStuffCreated(mine, priced('x', 100, null, 'u2')).items.map((s) => s.id)).toEqual(['a']);
    expect(applyStuffCreated(mine, priced('b', 100, null, 'u1')).items.map((s) => s.id)).toEqual(['b', 'a']);
  });

  it('puts a pushed item at its price, or leaves it for a later page when it sorts past the loaded ones', () => {
    const asc = applyPage(
      emptyCatalogue({ sort: 'priceAsc' }),
      { items: [priced('a', 500), priced('b', 900)], nextCursor: 'c1' },
      'replace',
    );
    expect(applyStuffCreated(asc, priced('mid', 700)).items.map((s) => s.id)).toEqual(['a', 'mid', 'b']);
    // Equal prices: the server orders by id, ascending low to high (a new item is the newest, so last).
    expect(applyStuffCreated(asc, priced('same', 500)).items.map((s) => s.id)).toEqual(['a', 'same', 'b']);
    expect(applyStuffCreated(asc, priced('same', 900)).items.map((s) => s.id)).toEqual(['a', 'b']);
    expect(applyStuffCreated({ ...asc, nextCursor: null }, priced('same', 900)).items.map((s) => s.id)).toEqual(['a', 'b', 'same']);
    expect(applyStuffCreated(asc, priced('dear', 5000)).items.map((s) => s.id)).toEqual(['a', 'b']);
    const last = { ...asc, nextCursor: null };
    expect(applyStuffCreated(last, priced('dear', 5000)).items.map((s) => s.id)).toEqual(['a', 'b', 'dear']);
    const desc = applyPage(emptyCatalogue({ sort: 'priceDesc' }), { items: [priced('b', 900), priced('a', 500)], nextCursor: null }, 'replace');
    expect(applyStuffCreated(desc, priced('mid', 700)).items.map((s) => s.id)).toEqual(['b', 'mid', 'a']);
    // High to low, equal prices by id descending: a new item is the first of its price.
    expect(applyStuffCreated(desc, priced('same', 500)).items.map((s) => s.id)).toEqual(['b', 'same', 'a']);
    expect(applyStuffCreated(desc, priced('same', 900)).items.map((s) => s.id)).toEqual(['same', 'b', 'a']);
  });

  it('puts a pushed item under best rated after the rated ones, first of the unrated (ties newest first)', () => {
    const rated = (id: string, average: number, count: number): Stuff => ({ ...priced(id, 500), rating: { average, count } });
    const byRating = applyPage(
      emptyCatalogue({ sort: 'rating' }),
      { items: [rated('top', 4.8, 20), rated('one', 5, 1), rated('poor', 1, 3), priced('old', 500)], nextCursor: 'c1' },
      'replace',
    );
    expect(catalogueFilter(byRating)).toEqual({ sort: 'rating' });
    // Unrated (no summary, or count 0) and only 1-star ratings rank 0 on the server.
    expect(applyStuffCreated(byRating, priced('new', 900)).items.map((s) => s.id)).toEqual(['top', 'one', 'new', 'poor', 'old']);
    expect(applyStuffCreated(byRating, rated('zero', 0, 0)).items.map((s) => s.id)).toEqual(['top', 'one', 'zero', 'poor', 'old']);
    // Every loaded item rated: the new one belongs to a later page, unless this is the last.
    const allRated = applyPage(emptyCatalogue({ sort: 'rating' }), { items: [rated('top', 4.8, 20)], nextCursor: 'c1' }, 'replace');
    expect(applyStuffCreated(allRated, priced('new', 900))).toBe(allRated);
    expect(applyStuffCreated({ ...allRated, nextCursor: null }, priced('new', 900)).items.map((s) => s.id)).toEqual(['top', 'new']);
  });

  it('sends its filters and sort again with the cursor', () => {
    expect(catalogueFilter(emptyCatalogue({ course: 'CS 101', sort: 'priceAsc', status: 'available' }))).toEqual({
      status: 'available',
      course: 'CS 101',
      sort: 'priceAsc',
    });
    expect(catalogueFilter(emptyCatalogue({ sellerId: 'u1', sort: 'newest' }))).toEqual({ sellerId: 'u1' });
    expect(catalogueFilter(emptyCatalogue('sold'))).toEqual({ status: 'sold' });
  });

  it('never takes a pushed item into a search result, but updates and drops the ones it shows', () => {
    const found = applyPage(emptyCatalogue({ q: 'lin alg' }), { items: [priced('a', 500), priced('b', 900)], nextCursor: 'c1' }, 'replace');
    expect(catalogueFilter(found)).toEqual({ q: 'lin alg' });
    expect(applyStuffCreated(found, priced('n', 700))).toBe(found);
    const sold = applyStuffUpdated(found, { ...priced('a', 500), status: 'sold', version: 2 });
    expect(sold.items.map((s) => [s.id, s.status])).toEqual([['a', 'sold'], ['b', 'available']]);
    const gone = applyStuffUpdated(sold, { ...priced('b', 900), status: 'withdrawn', version: 2 });
    expect(gone.items.map((s) => s.id)).toEqual(['a']);
    // A chosen newest is sent again with the cursor (best match, the default, is not).
    expect(catalogueFilter(emptyCatalogue({ q: 'lin', sort: 'newest' }))).toEqual({ q: 'lin', sort: 'newest' });
    const cheap = emptyCatalogue({ q: 'lin', sort: 'priceAsc' });
    expect(applyStuffCreated(cheap, priced('n', 1))).toBe(cheap);
  });
});
