// React side of queries.ts: the session's reads as queries. A query waits for the first connect
// (as the pages did: a request before it would only queue), refetches after a reconnect (the
// wiring invalidates), and merges a fresh answer with what the cache holds the way the pages did
// (a push that raced the request wins when newer).
import { useQueries, useQuery, useQueryClient, type QueryClient, type QueryKey, type UseQueryResult } from '@tanstack/react-query';
import { mergeMine, type Versioned } from './catalogue';
import { toApiError, type ApiError } from './errors';
import { freshUnlessOlder, queryKeys, rememberCourses } from './queries';
import { addReview } from './reviews';
import { mergeSales } from './sales';
import { useSession, useSessionManager } from './session-react';
import type { CourseCount, Coupon, Order, PayoutStatus, RequestEvent, RequestMap, Review, SalesSummary, Stuff } from './types';

/**
 * `event` with `payload` as a query under `key`; `merge` combines the answer with what the cache
 * holds. Runs once connected and while `enabled`.
 */
export function useSocketQuery<E extends RequestEvent, T = RequestMap[E]['data']>(
  key: QueryKey,
  event: E,
  payload: RequestMap[E]['payload'],
  options: {
    enabled?: boolean;
    merge?: (fresh: RequestMap[E]['data'], held: T | undefined) => T;
    /** Instead of the client's default: 0 for what can change without a push. */
    staleTime?: number;
  } = {},
): UseQueryResult<T, ApiError> {
  const session = useSessionManager();
  const client = useQueryClient();
  const { epoch } = useSession();
  const { enabled = true, merge, staleTime } = options;
  return useQuery<T, ApiError>({
    queryKey: key,
    queryFn: async () => {
      let data: RequestMap[E]['data'];
      try {
        ({ data } = await session.request(event, payload));
      } catch (e) {
        throw toApiError(e);
      }
      return merge ? merge(data, client.getQueryData<T>(key)) : (data as unknown as T);
    },
    enabled: epoch > 0 && enabled,
    ...(staleTime === undefined ? {} : { staleTime }),
  });
}

/** The messages of a query's error (none without one). */
export function errorMessages(error: unknown): string[] {
  return error ? toApiError(error).errors.map((x) => x.message) : [];
}

/** The signed-in user's id, or '' (user queries are disabled without one). */
function useUserId(): string {
  return useSession().user?.id ?? '';
}

function mergeStuff(client: QueryClient, fresh: Stuff, held: Stuff | undefined): Stuff {
  rememberCourses(client, [fresh]);
  return freshUnlessOlder(held, fresh);
}

/** Each fetched record, or the held one where that is strictly newer; the answer says which records there are. */
function mergeList<T extends Versioned>(held: T[] | undefined, fresh: T[]): T[] {
  const byId = new Map((held ?? []).map((x) => [x.id, x] as const));
  return fresh.map((x) => freshUnlessOlder(byId.get(x.id), x));
}

/** `stuff:get` for `id` (none while `id` is undefined). */
export function useStuffQuery(id: string | undefined): UseQueryResult<Stuff, ApiError> {
  const client = useQueryClient();
  return useSocketQuery(queryKeys.stuff(id ?? ''), 'stuff:get', { id: id ?? '' }, {
    enabled: Boolean(id),
    merge: (fresh, held) => mergeStuff(client, fresh, held),
    staleTime: 0,
  });
}

/** `stuff:get` for each of `ids` (the same cache entries as useStuffQuery): their titles by id, as they arrive. */
export function useStuffTitles(ids: string[]): Record<string, string> {
  const session = useSessionManager();
  const client = useQueryClient();
  const { epoch } = useSession();
  return useQueries({
    queries: ids.map((id) => ({
      queryKey: queryKeys.stuff(id),
      queryFn: async (): Promise<Stuff> => {
        try {
          const { data } = await session.request('stuff:get', { id });
          return mergeStuff(client, data, client.getQueryData<Stuff>(queryKeys.stuff(id)));
        } catch (e) {
          throw toApiError(e);
        }
      },
      enabled: epoch > 0,
      staleTime: 0,
    })),
    combine: (results) => {
      const titles: Record<string, string> = {};
      results.forEach((r, i) => {
        if (r.data) titles[ids[i] as string] = r.data.title;
      });
      return titles;
    },
  });
}

/** `order:get` for `id`, the signed-in user's. */
export function useOrderQuery(id: string): UseQueryResult<Order, ApiError> {
  const userId = useUserId();
  return useSocketQuery(queryKeys.order(userId, id), 'order:get', { id }, {
    enabled: Boolean(userId),
    merge: (fresh, held) => freshUnlessOlder(held, fresh),
  });
}

/** `order:list`: the signed-in user's orders. */
export function useOrdersQuery(): UseQueryResult<Order[], ApiError> {
  const userId = useUserId();
  return useSocketQuery(queryKeys.orders(userId), 'order:list', {}, {
    enabled: Boolean(userId),
    merge: (fresh, held) => mergeList(held, fresh),
  });
}

/** `stuff:mine`: everything the signed-in user listed. */
export function useMineQuery(): UseQueryResult<Stuff[], ApiError> {
  const userId = useUserId();
  const client = useQueryClient();
  return useSocketQuery(queryKeys.mine(userId), 'stuff:mine', {}, {
    enabled: Boolean(userId),
    // mergeMine sorts newest first and drops duplicates.
    merge: (fresh, held) => {
      rememberCourses(client, fresh);
      return mergeMine([], mergeList(held, fresh));
    },
  });
}

/**
 * `stuff:courses`: the catalogue's courses with their counts, the most listed first (the chips,
 * the course suggestions). Asked once connected, again after a reconnect and after a push that
 * changes them (queries.ts).
 */
export function useCoursesQuery(): UseQueryResult<CourseCount[], ApiError> {
  return useSocketQuery(queryKeys.courses(), 'stuff:courses', {});
}

/** `order:sales`: a sale seen once (pushed, or in an earlier answer) never disappears. */
export function useSalesQuery(): UseQueryResult<SalesSummary, ApiError> {
  const userId = useUserId();
  return useSocketQuery(queryKeys.sales(userId), 'order:sales', {}, {
    enabled: Boolean(userId),
    merge: (fresh, held) => mergeSales(fresh, held?.sales ?? []),
  });
}

/**
 * `payout:status`: whether payouts go to the seller's Stripe account, and what is held or was paid
 * out. Refetched on `sale:completed` and after a reconnect (queries.ts); staleTime 0, as onboarding
 * finishes on Stripe's side without a push: shown from the cache at once, asked again on every mount.
 */
export function usePayoutStatusQuery(): UseQueryResult<PayoutStatus, ApiError> {
  const userId = useUserId();
  return useSocketQuery(queryKeys.payouts(userId), 'payout:status', {}, { enabled: Boolean(userId), staleTime: 0 });
}

/** `review:list` for a stuff, newest first. */
export function useReviewsQuery(stuffId: string): UseQueryResult<Review[], ApiError> {
  return useSocketQuery(queryKeys.reviews(stuffId), 'review:list', { stuffId }, {
    merge: (fresh) => fresh.reduce<Review[]>((list, r) => addReview(list, r), []),
    staleTime: 0,
  });
}

/** `coupon:list` (the admin page). */
export function useCouponsQuery(): UseQueryResult<Coupon[], ApiError> {
  const userId = useUserId();
  return useSocketQuery(queryKeys.coupons(userId), 'coupon:list', {}, { enabled: Boolean(userId), staleTime: 0 });
}
