// Server state through TanStack Query: the query keys (the one place they are spelt), the
// QueryClient's defaults, the cache writes shared by pushes and by the answers of mutations, and
// the wiring of the session to the cache: a push that carries the whole record is written into it
// (version-aware: an older record never replaces a newer one), a push that does not invalidates
// what it affects, a reconnect invalidates everything (active queries refetch, as no push reached
// us while we were away), and another user signing in drops what the previous one had. The
// payout status (`payout:status`) is invalidated by `sale:completed` as the sales are. The
// courses and their counts (`stuff:courses`) are invalidated, at most once a second, only by a
// push that changes them (see `coursesChange`).
//
// Not here: the cursor-paged catalogue lists (`useStuffList` in catalogue-react.ts keeps its own
// state: a pushed item is placed by the list's sort and filters, which infinite queries do not
// model) and the delivery links (`useDelivery` in components/delivery.tsx: signed links that
// expire are renewed on timers, not cached).
import { QueryClient } from '@tanstack/react-query';
import { applyMineUpdated, applyOrderUpdated, pickNewer, type Versioned } from './catalogue';
import { toApiError } from './errors';
import { applySale } from './sales';
import type { SessionManager } from './session';
import type { CourseCount, Coupon, Order, SalesSummary, Stuff } from './types';

/** Every query key of the app. Keys of one user's data start with `user(id)`, so they can be dropped together. */
export const queryKeys = {
  /** `stuff:get` */
  stuff: (id: string) => ['stuff', id] as const,
  /** `review:list` */
  reviews: (stuffId: string) => ['reviews', stuffId] as const,
  /** `stuff:courses`: the catalogue's courses with their counts (the chips, the course suggestions). */
  courses: () => ['courses'] as const,
  /** Everything below belongs to one signed-in user. */
  user: (userId: string) => ['user', userId] as const,
  /** `order:list` */
  orders: (userId: string) => ['user', userId, 'orders'] as const,
  /** `order:get` */
  order: (userId: string, id: string) => ['user', userId, 'order', id] as const,
  /** `stuff:mine` */
  mine: (userId: string) => ['user', userId, 'mine'] as const,
  /** `order:sales` */
  sales: (userId: string) => ['user', userId, 'sales'] as const,
  /** `payout:status`: how the seller gets paid, what is held, what was paid out. */
  payouts: (userId: string) => ['user', userId, 'payouts'] as const,
  /** `coupon:list` (admins) */
  coupons: (userId: string) => ['user', userId, 'coupons'] as const,
};

/**
 * How long an answer counts as fresh: pushes keep the cache current meanwhile, a reconnect
 * invalidates it. What can change without a push (a stuff's rating and seller name, reviews,
 * coupon redemptions) uses 0 instead: shown from the cache at once, asked again on every mount.
 */
export const STALE_TIME_MS = 30_000;

/**
 * Whether a failed read is tried again (once): not a refusal (4xx), not a lost connection (the
 * reconnect refetches), not a 503 (the router already waited for the service).
 */
export function shouldRetry(failureCount: number, error: unknown): boolean {
  const { status } = toApiError(error);
  return failureCount < 1 && status >= 500 && status !== 503;
}

export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: STALE_TIME_MS,
        retry: shouldRetry,
        retryDelay: 1000,
        // The socket tells us what changed; focus and the browser's online event add nothing.
        refetchOnWindowFocus: false,
        refetchOnReconnect: false,
      },
      mutations: { retry: false },
    },
  });
}

// ---- cache writes (pushes and mutation answers) ----

// Each writes only into entries the cache already holds (a page showed them, or still does), as
// the pages applied pushes only to what they held: a page opened later asks the server.

/**
 * A whole stuff record (a push or a mutation's answer): the stuff's own entry and the user's
 * listings, each only when newer than what is held; the courses are refreshed when it changes
 * them (`created`: a `stuff:created` push).
 */
export function putStuff(client: QueryClient, stuff: Stuff, userId: string | null, created = false): void {
  const watch = courseWatch(client);
  // The courses held, or none yet while the first answer is on its way (it may predate this push).
  const held = client.getQueryState<CourseCount[]>(queryKeys.courses());
  const courses = held?.data ?? (held?.fetchStatus === 'fetching' ? [] : undefined);
  if (courses && coursesChange(watch.courseOf.get(stuff.id), stuff, courses, created)) refreshCourses(client);
  rememberCourses(client, [stuff]);
  client.setQueryData<Stuff>(queryKeys.stuff(stuff.id), (held) => (held ? pickNewer(held, stuff) : held));
  if (userId) client.setQueryData<Stuff[]>(queryKeys.mine(userId), (held) => (held ? applyMineUpdated(held, stuff, userId) : held));
}

/** A whole order record: its own entry and the user's order list (where an unknown order is added). */
export function putOrder(client: QueryClient, order: Order, userId: string | null): void {
  if (!userId) return;
  client.setQueryData<Order>(queryKeys.order(userId, order.id), (held) => (held ? pickNewer(held, order) : held));
  client.setQueryData<Order[]>(queryKeys.orders(userId), (held) => (held ? applyOrderUpdated(held, order) : held));
}

/** A coupon just created: on top of the list, replacing one with the same code. */
export function putCoupon(client: QueryClient, coupon: Coupon, userId: string): void {
  client.setQueryData<Coupon[]>(queryKeys.coupons(userId), (list) => (list ? [coupon, ...list.filter((c) => c.code !== coupon.code)] : list));
}

/**
 * A fresh answer unless the cache holds a strictly newer version (a push that raced the request).
 * On a tie the answer wins: what changes without a new version (a stuff's rating, its seller's
 * name) is only as current as the last answer.
 */
export function freshUnlessOlder<T extends Versioned>(held: T | undefined, fresh: T): T {
  return held && held.version > fresh.version ? held : fresh;
}

// ---- the courses (`stuff:courses`) ----

/** Where a stuff counts in `stuff:courses`: its course, or null (none, or withdrawn). */
interface CourseSlot {
  course: string | null;
  version: number;
}

const slotOf = (s: Pick<Stuff, 'course' | 'status' | 'version'>): CourseSlot => ({
  course: s.status === 'withdrawn' ? null : (s.course ?? null),
  version: s.version,
});

/**
 * Whether `stuff` (pushed, or a mutation's answer) changes the held course counts `courses`.
 * `before` is where it counted when last seen (undefined: never seen). A new listing with a course
 * does (a count goes up); an update does when it moves the stuff's course (an edit, a withdrawal)
 * and, not knowing where it was, when it is a withdrawal or names a course the list lacks.
 * Reserving, selling, a new price or title change nothing.
 */
export function coursesChange(before: CourseSlot | undefined, stuff: Stuff, courses: readonly CourseCount[], created = false): boolean {
  const after = slotOf(stuff).course;
  if (created) return after !== null;
  if (after !== null && !courses.some((c) => c.course === after)) return true;
  if (before) return before.course !== after;
  return stuff.status === 'withdrawn' && Boolean(stuff.course);
}

/** How long the pushes that change the courses are gathered before one refetch. */
export const COURSES_REFRESH_MS = 1000;
/** How many stuff's courses are remembered (the oldest are forgotten first). */
export const COURSE_MEMORY = 5000;

/** Per query client: the course each stuff seen counts in, and the pending courses refresh. */
interface CourseWatch {
  courseOf: Map<string, CourseSlot>;
  timer: ReturnType<typeof setTimeout> | undefined;
}
const watches = new WeakMap<QueryClient, CourseWatch>();

function courseWatch(client: QueryClient): CourseWatch {
  let w = watches.get(client);
  if (!w) watches.set(client, (w = { courseOf: new Map(), timer: undefined }));
  return w;
}

/**
 * Remembers where each of `items` counts (stuff the client loaded: a catalogue page, a stuff, my
 * listings, a push), so a later push can tell whether it moved. An older version never replaces a
 * newer one.
 */
export function rememberCourses(client: QueryClient, items: ReadonlyArray<Pick<Stuff, 'id' | 'course' | 'status' | 'version'>>): void {
  const { courseOf } = courseWatch(client);
  for (const s of items) {
    const held = courseOf.get(s.id);
    if (held && held.version > s.version) continue;
    courseOf.delete(s.id);
    courseOf.set(s.id, slotOf(s));
    if (courseOf.size > COURSE_MEMORY) courseOf.delete(courseOf.keys().next().value as string);
  }
}

/**
 * Invalidates the courses `COURSES_REFRESH_MS` from now (once for all the pushes meanwhile): shown
 * ones refetch, others are asked again when next shown.
 */
function refreshCourses(client: QueryClient): void {
  const w = courseWatch(client);
  if (w.timer !== undefined) return;
  w.timer = setTimeout(() => {
    w.timer = undefined;
    void client.invalidateQueries({ queryKey: queryKeys.courses() });
  }, COURSES_REFRESH_MS);
}

// ---- the session → cache wiring ----

type SessionLike = Pick<SessionManager, 'getSnapshot' | 'subscribe' | 'onPush'>;

/** Connects `client` to the session's pushes and reconnects; returns the function that disconnects it. */
export function connectQueryClient(client: QueryClient, session: SessionLike): () => void {
  let { epoch } = session.getSnapshot();
  let userId = session.getSnapshot().user?.id ?? null;
  let displayName = session.getSnapshot().user?.displayName;

  const unsubscribe = session.subscribe(() => {
    const state = session.getSnapshot();
    const nextUser = state.user?.id ?? null;
    if (nextUser !== userId) {
      // Signed out, or someone else signed in: nothing of the previous user stays in memory.
      if (userId) client.removeQueries({ queryKey: queryKeys.user(userId) });
      userId = nextUser;
    } else if (state.user && state.user.displayName !== displayName) {
      // A new display name: stuff and reviews show it (as the seller, as the reviewer).
      void client.invalidateQueries({ queryKey: ['stuff'] });
      void client.invalidateQueries({ queryKey: ['reviews'] });
    }
    displayName = state.user?.displayName;
    if (state.epoch !== epoch) {
      const first = epoch === 0;
      epoch = state.epoch;
      // Queries wait for the first connect (`enabled`); after a reconnect every one is stale and
      // the ones on screen refetch: pushes sent while we were away are lost.
      if (!first) void client.invalidateQueries();
    }
  });

  const offs = [
    unsubscribe,
    session.onPush('stuff:created', (s) => putStuff(client, s, userId, true)),
    session.onPush('stuff:updated', (s) => putStuff(client, s, userId)),
    session.onPush('order:updated', (o) => putOrder(client, o, userId)),
    session.onPush('sale:completed', (sale) => {
      if (!userId || !sale || typeof sale.orderId !== 'string') return;
      const key = queryKeys.sales(userId);
      // The sale shows at once; the summary is asked again for what the push does not say.
      client.setQueryData<SalesSummary>(key, (summary) => (summary ? applySale(summary, sale) : summary));
      void client.invalidateQueries({ queryKey: key });
      // The sale's earnings are held for the seller or paid out: the payout amounts changed.
      void client.invalidateQueries({ queryKey: queryKeys.payouts(userId) });
    }),
  ];
  return () => {
    for (const off of offs) off();
    const w = watches.get(client);
    if (w) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
  };
}
