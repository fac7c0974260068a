// The query keys, the client's defaults and the session → cache wiring, without React.
import { QueryClient, QueryObserver } from '@tanstack/react-query';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { ApiError } from './errors';
import {
  connectQueryClient,
  COURSES_REFRESH_MS,
  coursesChange,
  createQueryClient,
  freshUnlessOlder,
  putStuff,
  queryKeys,
  rememberCourses,
  shouldRetry,
  STALE_TIME_MS,
} from './queries';
import { SessionManager } from './session';
import type { CourseCount, Order, SalesSummary, Stuff } from './types';

const stuff = (version: number, patch: Partial<Stuff> = {}): Stuff => ({
  id: 's1',
  title: 'Notes',
  description: '',
  priceCents: 500,
  sellerId: alice.id,
  status: 'available',
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  ...patch,
});

const order = (version: number, status: Order['status'], id = 'o1'): Order => ({
  id,
  stuffId: 's1',
  userId: alice.id,
  status,
  expiresAt: '2026-11-01T12:15:00Z',
  priceCents: 500,
  version,
  createdAt: '2026-11-01T12:00:00Z',
  stuffTitle: 'Notes',
  paidCents: null,
});

describe('queryKeys', () => {
  it('spells every key once; one user’s keys share the user prefix, public ones do not', () => {
    expect(queryKeys.stuff('s1')).toEqual(['stuff', 's1']);
    expect(queryKeys.reviews('s1')).toEqual(['reviews', 's1']);
    expect(queryKeys.courses()).toEqual(['courses']);
    const user = queryKeys.user('u1');
    for (const key of [queryKeys.orders('u1'), queryKeys.order('u1', 'o1'), queryKeys.mine('u1'), queryKeys.sales('u1'), queryKeys.coupons('u1')]) {
      expect(key.slice(0, 2)).toEqual(user);
    }
    expect(queryKeys.order('u1', 'o1')).not.toEqual(queryKeys.order('u2', 'o1'));
    expect(new Set([queryKeys.orders('u1'), queryKeys.mine('u1'), queryKeys.sales('u1'), queryKeys.coupons('u1')].map((k) => k.join('/'))).size).toBe(4);
  });
});

describe('createQueryClient', () => {
  it('keeps answers fresh for a while and never refetches on focus or the browser’s online event', () => {
    const q = createQueryClient().getDefaultOptions().queries!;
    expect(q.staleTime).toBe(STALE_TIME_MS);
    expect(q.refetchOnWindowFocus).toBe(false);
    expect(q.refetchOnReconnect).toBe(false);
  });

  it('retries a read only once, and only after a server error other than 503', () => {
    expect(shouldRetry(0, new ApiError(500, []))).toBe(true);
    expect(shouldRetry(1, new ApiError(500, []))).toBe(false);
    expect(shouldRetry(0, new ApiError(404, []))).toBe(false);
    expect(shouldRetry(0, new ApiError(403, []))).toBe(false);
    expect(shouldRetry(0, new ApiError(409, []))).toBe(false);
    expect(shouldRetry(0, new ApiError(503, [], 'timeout'))).toBe(false);
    expect(shouldRetry(0, new ApiError(0, [], 'network'))).toBe(false);
  });
});

describe('connectQueryClient', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let client: QueryClient;
  let disconnect: () => void;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    client = createQueryClient();
    disconnect = connectQueryClient(client, session);
    await session.start();
    socket.acceptConnect();
  });
  afterEach(() => {
    disconnect();
    session.stop();
    client.clear();
  });

  it('writes a pushed stuff into its entry and into my listings, and never goes back a version', () => {
    client.setQueryData(queryKeys.stuff('s1'), stuff(2));
    client.setQueryData(queryKeys.mine(alice.id), [stuff(2)]);
    socket.push('stuff:updated', stuff(3, { status: 'reserved' }));
    expect(client.getQueryData<Stuff>(queryKeys.stuff('s1'))).toMatchObject({ version: 3, status: 'reserved' });
    expect(client.getQueryData<Stuff[]>(queryKeys.mine(alice.id))!.map((s) => s.version)).toEqual([3]);

    socket.push('stuff:updated', stuff(1, { status: 'available' }));
    expect(client.getQueryData<Stuff>(queryKeys.stuff('s1'))).toMatchObject({ version: 3, status: 'reserved' });

    // A new stuff of mine joins my listings; someone else's does not.
    socket.push('stuff:created', stuff(1, { id: 's2', createdAt: '2026-11-02T12:00:00Z' }));
    socket.push('stuff:created', stuff(1, { id: 's3', sellerId: 'someone-else' }));
    expect(client.getQueryData<Stuff[]>(queryKeys.mine(alice.id))!.map((s) => s.id)).toEqual(['s2', 's1']);
    // Nothing is cached for a stuff no page asked for: opening it asks the server.
    expect(client.getQueryData(queryKeys.stuff('s3'))).toBeUndefined();
  });

  it('writes a pushed order into its entry and my order list (newer versions only)', () => {
    client.setQueryData(queryKeys.order(alice.id, 'o1'), order(1, 'created'));
    client.setQueryData(queryKeys.orders(alice.id), [order(1, 'created')]);
    socket.push('order:updated', order(2, 'complete'));
    expect(client.getQueryData<Order>(queryKeys.order(alice.id, 'o1'))!.status).toBe('complete');
    expect(client.getQueryData<Order[]>(queryKeys.orders(alice.id))!.map((o) => o.status)).toEqual(['complete']);
    socket.push('order:updated', order(1, 'created'));
    expect(client.getQueryData<Order>(queryKeys.order(alice.id, 'o1'))!.status).toBe('complete');
    socket.push('order:updated', order(1, 'created', 'o2'));
    expect(client.getQueryData<Order[]>(queryKeys.orders(alice.id))!.map((o) => o.id)).toEqual(['o2', 'o1']);
  });

  it('adds a pushed sale to the summary at once and marks the summary for a refetch', () => {
    const summary: SalesSummary = { sales: [], totalEarnedCents: 0 };
    client.setQueryData(queryKeys.sales(alice.id), summary);
    socket.push('sale:completed', {
      orderId: 'o9',
      stuffId: 's1',
      stuffTitle: 'Notes',
      buyerDisplayName: 'bob',
      paidCents: 500,
      feeCents: 50,
      earnedCents: 450,
      paidAt: '2026-11-01T12:05:00Z',
    });
    expect(client.getQueryData<SalesSummary>(queryKeys.sales(alice.id))).toMatchObject({ totalEarnedCents: 450, sales: [{ orderId: 'o9' }] });
    expect(client.getQueryState(queryKeys.sales(alice.id))!.isInvalidated).toBe(true);
  });

  it('invalidates every query after a reconnect (not on the first connect), and refetches the ones in use', async () => {
    let calls = 0;
    const observer = new QueryObserver(client, {
      queryKey: queryKeys.stuff('s1'),
      queryFn: async () => {
        calls += 1;
        return stuff(calls);
      },
    });
    const unsubscribe = observer.subscribe(() => undefined);
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toBe(1);
    client.setQueryData(queryKeys.reviews('s1'), []);
    expect(client.getQueryState(queryKeys.reviews('s1'))!.isInvalidated).toBe(false);

    socket.dropNetwork();
    socket.acceptConnect();
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toBe(2);
    expect(client.getQueryState(queryKeys.reviews('s1'))!.isInvalidated).toBe(true);
    unsubscribe();
  });

  it('drops the previous user’s data on sign-out and stops writing pushes for them', async () => {
    client.setQueryData(queryKeys.orders(alice.id), [order(1, 'created')]);
    client.setQueryData(queryKeys.stuff('s1'), stuff(1));
    await session.signOut();
    expect(client.getQueryData(queryKeys.orders(alice.id))).toBeUndefined();
    expect(client.getQueryData(queryKeys.stuff('s1'))).toBeDefined();
    socket.acceptConnect();
    socket.push('order:updated', order(2, 'complete'));
    expect(client.getQueryData(queryKeys.order(alice.id, 'o1'))).toBeUndefined();
  });

  it('stops listening once disconnected', () => {
    disconnect();
    socket.push('stuff:updated', stuff(5));
    expect(client.getQueryData(queryKeys.stuff('s1'))).toBeUndefined();
    disconnect = () => undefined;
  });
});

describe('putStuff', () => {
  it('writes only into entries already held', () => {
    const client = createQueryClient();
    putStuff(client, stuff(1), alice.id);
    expect(client.getQueryData(queryKeys.mine(alice.id))).toBeUndefined();
    expect(client.getQueryData(queryKeys.stuff('s1'))).toBeUndefined();
    client.setQueryData(queryKeys.stuff('s1'), stuff(1));
    putStuff(client, stuff(2), alice.id);
    expect(client.getQueryData<Stuff>(queryKeys.stuff('s1'))!.version).toBe(2);
  });
});

describe('coursesChange', () => {
  const held: CourseCount[] = [{ course: 'CS 101', count: 2 }, { course: 'MATH 2', count: 1 }];
  const at = (course: string | null, version = 1) => ({ course, version });

  it('a new listing with a course changes the counts; one without a course does not', () => {
    expect(coursesChange(undefined, stuff(1, { course: 'CS 101' }), held, true)).toBe(true);
    expect(coursesChange(undefined, stuff(1, { course: 'BIO 1' }), held, true)).toBe(true);
    expect(coursesChange(undefined, stuff(1, { course: null }), held, true)).toBe(false);
  });

  it('an update changes them when it moves the course, withdraws it, or names a course the list lacks', () => {
    // Edited from CS 101 to MATH 2, or its course removed.
    expect(coursesChange(at('CS 101'), stuff(2, { course: 'MATH 2' }), held)).toBe(true);
    expect(coursesChange(at('CS 101'), stuff(2, { course: null }), held)).toBe(true);
    // Withdrawn: seen before or not.
    expect(coursesChange(at('CS 101'), stuff(2, { course: 'CS 101', status: 'withdrawn' }), held)).toBe(true);
    expect(coursesChange(undefined, stuff(2, { course: 'CS 101', status: 'withdrawn' }), held)).toBe(true);
    // A course the list lacks (never seen, or the list is older than what was seen).
    expect(coursesChange(undefined, stuff(2, { course: 'BIO 1' }), held)).toBe(true);
    expect(coursesChange(at('BIO 1'), stuff(2, { course: 'BIO 1' }), held)).toBe(true);
  });

  it('reserving, selling, a new price or title change nothing', () => {
    expect(coursesChange(at('CS 101'), stuff(2, { course: 'CS 101', status: 'reserved' }), held)).toBe(false);
    expect(coursesChange(at('CS 101'), stuff(3, { course: 'CS 101', status: 'sold' }), held)).toBe(false);
    expect(coursesChange(undefined, stuff(2, { course: 'CS 101', priceCents: 900 }), held)).toBe(false);
    expect(coursesChange(at(null), stuff(2, { course: null, title: 'New' }), held)).toBe(false);
    expect(coursesChange(undefined, stuff(2, { course: null, status: 'withdrawn' }), held)).toBe(false);
  });
});

describe('the courses refresh', () => {
  let client: QueryClient;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    client = createQueryClient();
  });
  afterEach(() => {
    client.clear();
    vi.useRealTimers();
  });
  const invalidated = () => client.getQueryState(queryKeys.courses())!.isInvalidated;

  it('invalidates the held courses once, a moment after the pushes that change them', () => {
    client.setQueryData<CourseCount[]>(queryKeys.courses(), [{ course: 'CS 101', count: 1 }]);
    const invalidate = vi.spyOn(client, 'invalidateQueries');
    putStuff(client, stuff(1, { id: 'a', course: 'BIO 1' }), null, true);
    putStuff(client, stuff(1, { id: 'b', course: 'CS 101' }), null, true);
    expect(invalidated()).toBe(false);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    expect(invalidated()).toBe(true);
    expect(invalidate).toHaveBeenCalledTimes(1);
    expect(invalidate).toHaveBeenCalledWith({ queryKey: queryKeys.courses() });
  });

  it('leaves them alone for a push that does not move a course, and when none are held', () => {
    putStuff(client, stuff(1, { id: 'a', course: 'BIO 1' }), null, true);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    expect(client.getQueryState(queryKeys.courses())).toBeUndefined();

    client.setQueryData<CourseCount[]>(queryKeys.courses(), [{ course: 'CS 101', count: 1 }]);
    rememberCourses(client, [stuff(1, { id: 'c', course: 'CS 101' })]);
    putStuff(client, stuff(2, { id: 'c', course: 'CS 101', status: 'reserved' }), null);
    putStuff(client, stuff(3, { id: 'c', course: 'CS 101', status: 'sold' }), null);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    expect(invalidated()).toBe(false);
  });

  it('tells an edit of the course from the version last seen, never from an older one', () => {
    client.setQueryData<CourseCount[]>(queryKeys.courses(), [{ course: 'CS 101', count: 1 }, { course: 'MATH 2', count: 1 }]);
    rememberCourses(client, [stuff(2, { id: 'e', course: 'MATH 2' })]);
    rememberCourses(client, [stuff(1, { id: 'e', course: 'CS 101' })]); // an older answer
    putStuff(client, stuff(3, { id: 'e', course: 'MATH 2', title: 'Renamed' }), null);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    expect(invalidated()).toBe(false);
    // The answer of my own edit, then its push: one refresh.
    const invalidate = vi.spyOn(client, 'invalidateQueries');
    putStuff(client, stuff(4, { id: 'e', course: 'CS 101' }), null);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    putStuff(client, stuff(4, { id: 'e', course: 'CS 101' }), null);
    vi.advanceTimersByTime(COURSES_REFRESH_MS);
    expect(invalidated()).toBe(true);
    expect(invalidate).toHaveBeenCalledTimes(1);
  });
});

describe('freshUnlessOlder', () => {
  it('takes the answer unless the cache holds a strictly newer version (a tie takes the answer)', () => {
    expect(freshUnlessOlder(undefined, stuff(1))).toMatchObject({ version: 1 });
    expect(freshUnlessOlder(stuff(3, { title: 'held' }), stuff(2))).toMatchObject({ version: 3, title: 'held' });
    expect(freshUnlessOlder(stuff(2, { title: 'held' }), stuff(2, { title: 'fresh' }))).toMatchObject({ title: 'fresh' });
    expect(freshUnlessOlder(stuff(2), stuff(4))).toMatchObject({ version: 4 });
  });
});
