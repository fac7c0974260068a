// React glue for a cursor-paged `stuff:list` (the catalogue and a seller's page): the first page on
// mount, on a filter change and after every (re)connect; "Load more" with the same filters and the
// cursor; pushes applied through the pure rules of catalogue.ts; the course of every stuff loaded
// is remembered, so a push can tell whether it moved one (queries.ts, `rememberCourses`).
import { useQueryClient } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
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
import { rememberCourses } from './queries';
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
  const client = useQueryClient();
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
        rememberCourses(client, data.items);
        setState((s) => applyPage(s, data, 'replace', seen.current));
        setError([]);
      })
      .catch((e) => gen === generation.current && setError(toApiError(e).errors.map((x) => x.message)))
      .finally(() => gen === generation.current && setLoading(false));
  }, [session, client, epoch, key, pageSize]);

  usePush('stuff:created', (stuff) => {
    rememberNewest(seen.current, stuff);
    setState((s) => applyStuffCreated(s, stuff));
  });
  usePush('stuff:updated', (stuff) => {
    rememberNewest(seen.current, stuff);
    setState((s) => applyStuffUpdated(s, stuff));
  });

  const loadMore = useCallback(async () => {
    if (!state.nextCursor) return;
    const gen = generation.current;
    setLoadingMore(true);
    try {
      // The cursor continues only the same filters and sort: send the ones the list was fetched with.
      const { data } = await session.request('stuff:list', { limit: pageSize, cursor: state.nextCursor, ...catalogueFilter(state) });
      rememberCourses(client, data.items);
      if (gen === generation.current) setState((s) => applyPage(s, data, 'append', seen.current));
    } catch (e) {
      setError(toApiError(e).errors.map((x) => x.message));
    } finally {
      setLoadingMore(false);
    }
  }, [session, client, state, pageSize]);

  return { state, loading, loadingMore, error, loadMore };
}
