// Version-aware catalogue state. Pushes and fetched pages can arrive in any order; a record is
// only ever replaced by one with a higher `version`, so a late, stale push never undoes a newer one.
import type { Order, Stuff, StuffListFilter, StuffPage, StuffStatus } from './types';

export interface Versioned {
  id: string;
  version: number;
}

/** True when `incoming` should replace `held` (there is nothing held, or it is strictly newer). */
export function isNewer(incoming: Versioned, held: Versioned | undefined | null): boolean {
  return !held || incoming.version > held.version;
}

/** The newer of two copies of one record (ties keep `held`). */
export function pickNewer<T extends Versioned>(held: T | null | undefined, incoming: T): T {
  return isNewer(incoming, held) ? incoming : (held as T);
}

export interface CatalogueState {
  items: Stuff[];
  nextCursor: string | null;
  /** The status filter the list was fetched with (undefined: all). */
  filter?: StuffStatus;
  /** The course filter (upper-case), the seller and the sort the list was fetched with. */
  course?: string;
  sellerId?: string;
  sort?: StuffListFilter['sort'];
  /** The search the list was fetched with: the client cannot tell what matches it. */
  q?: string;
}

/** An empty list for a status filter, or for every filter of `stuff:list`. */
export function emptyCatalogue(filter?: StuffStatus | StuffListFilter): CatalogueState {
  if (typeof filter !== 'object') return { items: [], nextCursor: null, filter };
  const { status, course, sellerId, sort, q } = filter;
  return { items: [], nextCursor: null, filter: status, course, sellerId, sort, ...(q ? { q } : {}) };
}

/** The `stuff:list` filters a list was fetched with (to send again with its cursor). */
export function catalogueFilter(state: CatalogueState): StuffListFilter {
  return {
    ...(state.q ? { q: state.q } : {}),
    ...(state.filter ? { status: state.filter } : {}),
    ...(state.course ? { course: state.course } : {}),
    ...(state.sellerId ? { sellerId: state.sellerId } : {}),
    // While searching, `newest` is not the default (best match is): send it when chosen.
    ...(state.sort && (state.q || state.sort !== 'newest') ? { sort: state.sort } : {}),
  };
}

/** True when `stuff` belongs in a list of this course and seller (the status filter is separate). */
export function matchesCourseAndSeller(state: CatalogueState, stuff: Pick<Stuff, 'course' | 'sellerId'>): boolean {
  if (state.course && (stuff.course ?? '').toUpperCase() !== state.course.toUpperCase()) return false;
  if (state.sellerId && stuff.sellerId !== state.sellerId) return false;
  return true;
}

/** A withdrawn stuff is off sale: the catalogue never lists it (`stuff:list` leaves it out too). */
export function isListed(stuff: Pick<Stuff, 'status'>): boolean {
  return stuff.status !== 'withdrawn';
}

/**
 * Applies a `stuff:updated` push: replaces the item in place when the push is newer. Items not in
 * the list are ignored (the list re-fetches after every reconnect). An item that no longer matches
 * the status filter stays in place with its new badge until the next fetch, and a new price stays
 * in place under a price sort, so nothing jumps under the cursor. The exceptions leave the list at
 * once: a withdrawn item (off sale), and one whose course no longer is the course filtered by.
 */
export function applyStuffUpdated(state: CatalogueState, stuff: Stuff): CatalogueState {
  const idx = state.items.findIndex((s) => s.id === stuff.id);
  if (idx === -1) return state;
  const held = state.items[idx];
  if (!isNewer(stuff, held)) return state;
  if (!isListed(stuff) || !matchesCourseAndSeller(state, stuff)) {
    return { ...state, items: state.items.filter((s) => s.id !== stuff.id) };
  }
  const items = state.items.slice();
  items[idx] = stuff;
  return { ...state, items };
}

/**
 * Applies a `stuff:created` push when it matches every filter (status, course, seller): on top
 * when newest first; under a price sort or best rated, at its place among the loaded items, or not
 * at all when that place is past the last loaded item and more pages follow (it comes with them). Never into
 * a search result: whether it matches is the server's call (its words, prefixes and diacritics).
 */
export function applyStuffCreated(state: CatalogueState, stuff: Stuff): CatalogueState {
  if (state.items.some((s) => s.id === stuff.id)) return applyStuffUpdated(state, stuff);
  if (state.q) return state;
  if (!isListed(stuff)) return state;
  if (state.filter && stuff.status !== state.filter) return state;
  if (!matchesCourseAndSeller(state, stuff)) return state;
  const sort = state.sort ?? 'newest';
  if (sort === 'rating') return placeByRating(state, stuff);
  if (sort !== 'priceAsc' && sort !== 'priceDesc') return { ...state, items: [stuff, ...state.items] };
  // Equal prices in the server's order: `id` ascending under priceAsc, descending under priceDesc.
  // Ids are time-ordered (UUIDv7), so a new item is the last of its price low to high and the
  // first of its price high to low.
  const before = (s: Stuff) => (sort === 'priceAsc' ? s.priceCents > stuff.priceCents : s.priceCents <= stuff.priceCents);
  let at = state.items.findIndex(before);
  if (at === -1) {
    if (state.nextCursor) return state;
    at = state.items.length;
  }
  const items = state.items.slice();
  items.splice(at, 0, stuff);
  return { ...state, items };
}

/**
 * True when the server ranks `stuff` lowest under `sort: rating` (rank 0): no reviews, or only
 * 1-star ones (the lower bound of their share of positive ratings is 0).
 */
export function ranksLowest(stuff: Pick<Stuff, 'rating'>): boolean {
  return !stuff.rating || stuff.rating.count <= 0 || stuff.rating.average <= 1;
}

/**
 * A new stuff under `sort: rating`: it has no reviews yet, so it ranks lowest, and among those it
 * is the newest (ties newest first): it goes before the first loaded item that ranks lowest, or
 * last when none does and no more pages follow (else it comes with a later page). One that
 * somehow arrives rated goes on top, as under newest (the client does not compute the rank).
 */
function placeByRating(state: CatalogueState, stuff: Stuff): CatalogueState {
  const items = state.items.slice();
  let at = ranksLowest(stuff) ? items.findIndex(ranksLowest) : 0;
  if (at === -1) {
    if (state.nextCursor) return state;
    at = items.length;
  }
  items.splice(at, 0, stuff);
  return { ...state, items };
}

/**
 * Applies a fetched page. `replace` starts the list over (first page, or a re-fetch after a
 * reconnect); `append` adds the next page ("Load more"). Either way, a copy already held with a
 * higher version (a push that raced the fetch) wins over the fetched one, and duplicates are dropped.
 * `seen` holds the newest copy of every record pushed so far, including ones not in the list yet
 * (a `stuff:updated` that arrived while the first page was in flight).
 */
export function applyPage(
  state: CatalogueState,
  page: StuffPage,
  mode: 'replace' | 'append',
  seen?: ReadonlyMap<string, Stuff>,
): CatalogueState {
  const held = new Map(state.items.map((s) => [s.id, s] as const));
  // A page fetched just before a withdrawal can still hold the item; the newer pushed copy drops it.
  // So can one whose course changed away from the course filtered by.
  const fetched = page.items
    .map((s) => pickNewer(seen?.get(s.id), pickNewer(held.get(s.id), s)))
    .filter((s) => isListed(s) && matchesCourseAndSeller(state, s));
  let items: Stuff[];
  if (mode === 'replace') {
    items = dedupe(fetched);
  } else {
    const existing = new Set(state.items.map((s) => s.id));
    items = [...state.items, ...fetched.filter((s) => !existing.has(s.id))];
    items = dedupe(items);
  }
  return { ...state, items, nextCursor: page.nextCursor ?? null };
}

function dedupe<T extends Versioned>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((s) => (seen.has(s.id) ? false : (seen.add(s.id), true)));
}

/** Remembers the newest copy of each pushed record (for `applyPage`'s `seen`). */
export function rememberNewest<T extends Versioned>(seen: Map<string, T>, record: T): void {
  if (isNewer(record, seen.get(record.id))) seen.set(record.id, record);
}

/**
 * The seller's own listings (`stuff:mine`): newest first, every status. A `stuff:updated` push
 * replaces a held item when newer; a `stuff:created` by this seller (another tab) goes on top.
 */
export function applyMineUpdated(items: Stuff[], stuff: Stuff, sellerId: string): Stuff[] {
  const idx = items.findIndex((s) => s.id === stuff.id);
  if (idx === -1) return stuff.sellerId === sellerId ? sortNewestFirst([stuff, ...items]) : items;
  if (!isNewer(stuff, items[idx])) return items;
  const next = items.slice();
  next[idx] = stuff;
  return next;
}

/** Merges a fetched `stuff:mine` with what is held (pushes that raced the fetch win when newer). */
export function mergeMine(held: Stuff[], fetched: Stuff[]): Stuff[] {
  const byId = new Map(held.map((s) => [s.id, s] as const));
  return sortNewestFirst(dedupe(fetched.map((s) => pickNewer(byId.get(s.id), s))));
}

function sortNewestFirst(items: Stuff[]): Stuff[] {
  return items.slice().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** Applies an `order:updated` push to a list of orders (newest first for unknown ones). */
export function applyOrderUpdated(orders: Order[], order: Order): Order[] {
  const idx = orders.findIndex((o) => o.id === order.id);
  if (idx === -1) return [order, ...orders];
  if (!isNewer(order, orders[idx])) return orders;
  const next = orders.slice();
  next[idx] = order;
  return next;
}

/** Merges a fetched order list with what is held, keeping the higher version of each. */
export function mergeOrders(held: Order[], fetched: Order[]): Order[] {
  const byId = new Map(held.map((o) => [o.id, o] as const));
  return fetched.map((o) => pickNewer(byId.get(o.id), o));
}
