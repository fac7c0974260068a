// React glue for a cursor-paged `stuff:list` (the catalogue and a seller's page): the first page on
// mount, on a filter change and after every (re)connect; "Load more" with the same filters and the
// cursor; pushes applied through the pure rules of catalogue.ts; every course seen goes to
// `knownCourses`.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { knownCourses } from './browse';
import {
  applyPage,
  applyStuffCreated,
  applyStuffUpdated,
  catalogueFilter,
  emptyCatalogue,
  rememberNewest,
  type CatalogueState,
} from './catalogue';
import { toApiError } from './errors';
import { usePush, useSession, useSessionManager } from './session-react';
import type { Stuff, StuffListFilter } from './types';

export const PAGE_SIZE = 20;

export interface StuffList {
  state: CatalogueState;
  /** The first page (or a re-fetch) is in flight. */
  loading: boolean;
  loadingMore: boolean;
  error: string[];
  loadMore: () => Promise<void>;
}

export function useStuffList(filter: StuffListFilter, pageSize = PAGE_SIZE): StuffList {
  const session = useSessionManager();
  const { epoch } = useSession();
  // One string for the effect's dependency: a new object with the same filters is the same list.
  const key = JSON.stringify(catalogueFilter(emptyCatalogue(filter)));
  const [state, setState] = useState<CatalogueState>(() => emptyCatalogue(filter));
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<string[]>([]);
  const seen = useRef(new Map<string, Stuff>());
  const generation = useRef(0);

  useEffect(() => {
    if (epoch === 0) return; // not connected yet; requests would only queue
    const gen = ++generation.current;
    const wanted = JSON.parse(key) as StuffListFilter;
    setState((s) => (JSON.stringify(catalogueFilter(s)) === key ? s : emptyCatalogue(wanted)));
    setLoading(true);
    session
      .request('stuff:list', { limit: pageSize, ...wanted })
      .then(({ data }) => {
        if (gen !== generation.current) return;
        knownCourses.add(data.items);
        setState((s) => applyPage(s, data, 'replace', seen.current));
        setError([]);
      })
      .catch((e) => gen === generation.current && setError(toApiError(e).errors.map((x) => x.message)))
      .finally(() => gen === generation.current && setLoading(false));
  }, [session, epoch, key, pageSize]);

  usePush('stuff:created', (stuff) => {
    rememberNewest(seen.current, stuff);
    knownCourses.add([stuff]);
    setState((s) => applyStuffCreated(s, stuff));
  });
  usePush('stuff:updated', (stuff) => {
    rememberNewest(seen.current, stuff);
    knownCourses.add([stuff]);
    setState((s) => applyStuffUpdated(s, stuff));
  });

  const loadMore = useCallback(async () => {
    if (!state.nextCursor) return;
    const gen = generation.current;
    setLoadingMore(true);
    try {
      // The cursor continues only the same filters and sort: send the ones the list was fetched with.
      const { data } = await session.request('stuff:list', { limit: pageSize, cursor: state.nextCursor, ...catalogueFilter(state) });
      knownCourses.add(data.items);
      if (gen === generation.current) setState((s) => applyPage(s, data, 'append', seen.current));
    } catch (e) {
      setError(toApiError(e).errors.map((x) => x.message));
    } finally {
      setLoadingMore(false);
    }
  }, [session, state, pageSize]);

  return { state, loading, loadingMore, error, loadMore };
}

/** Every course seen so far (sorted); re-renders when one is added. */
export function useKnownCourses(): string[] {
  return useSyncExternalStore(
    (l) => knownCourses.subscribe(l),
    () => knownCourses.all(),
    () => knownCourses.all(),
  );
}

/** The page size of a request made only to learn courses (the contract's largest page). */
export const COURSES_PAGE_SIZE = 100;

/**
 * While `needed`, asks one page of the whole catalogue (once per connection) only to learn its
 * courses: there is no endpoint listing them. Used where nothing loaded tells them: a form opened
 * first, or a catalogue opened on a shared link already filtered by one course.
 */
export function useLearnCourses(needed: boolean): void {
  const session = useSessionManager();
  const { epoch } = useSession();
  useEffect(() => {
    if (epoch === 0 || !needed) return;
    session
      .request('stuff:list', { limit: COURSES_PAGE_SIZE })
      .then(({ data }) => knownCourses.add(data.items))
      .catch(() => undefined); // suggestions only
  }, [session, epoch, needed]);
}
