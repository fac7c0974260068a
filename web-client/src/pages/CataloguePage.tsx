import { useCallback, useEffect, useRef, useState } from 'react';
import {
  applyPage,
  applyStuffCreated,
  applyStuffUpdated,
  emptyCatalogue,
  rememberNewest,
  type CatalogueState,
} from '../api/catalogue';
import { toApiError } from '../api/errors';
import { usePush, useSession, useSessionManager } from '../api/session-react';
import type { Stuff, StuffStatus } from '../api/types';
import { ErrorBanner, Price, StatusBadge } from '../components/ui';
import { Link, navigate, useSearchParams } from '../router/router';

export const PAGE_SIZE = 20;
const STATUSES: StuffStatus[] = ['available', 'reserved', 'sold'];

function parseFilter(v: string | null): StuffStatus | undefined {
  return STATUSES.includes(v as StuffStatus) ? (v as StuffStatus) : undefined;
}

export function CataloguePage() {
  const session = useSessionManager();
  const { epoch, user } = useSession();
  const filter = parseFilter(useSearchParams().get('status'));
  const [state, setState] = useState<CatalogueState>(() => emptyCatalogue(filter));
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [error, setError] = useState<string[]>([]);
  const seen = useRef(new Map<string, Stuff>());
  const generation = useRef(0);

  // First page on mount, on a filter change and after every (re)connect, so no update is missed.
  useEffect(() => {
    if (epoch === 0) return; // not connected yet; requests would only queue
    const gen = ++generation.current;
    setState((s) => (s.filter === filter ? s : emptyCatalogue(filter)));
    setLoading(true);
    session
      .request('stuff:list', { limit: PAGE_SIZE, ...(filter ? { status: filter } : {}) })
      .then(({ data }) => {
        if (gen !== generation.current) return;
        setState((s) => applyPage(s, data, 'replace', seen.current));
        setError([]);
      })
      .catch((e) => gen === generation.current && setError(toApiError(e).errors.map((x) => x.message)))
      .finally(() => gen === generation.current && setLoading(false));
  }, [session, epoch, filter]);

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
      const { data } = await session.request('stuff:list', {
        limit: PAGE_SIZE,
        cursor: state.nextCursor,
        ...(filter ? { status: filter } : {}),
      });
      if (gen === generation.current) setState((s) => applyPage(s, data, 'append', seen.current));
    } catch (e) {
      setError(toApiError(e).errors.map((x) => x.message));
    } finally {
      setLoadingMore(false);
    }
  }, [session, state.nextCursor, filter]);

  return (
    <section>
      <div className="page-head">
        <h1 tabIndex={-1}>Catalogue</h1>
        <div className="field field-inline">
          <label htmlFor="status-filter">Show</label>
          <select
            id="status-filter"
            data-testid="status-filter"
            value={filter ?? ''}
            onChange={(e) => navigate(e.target.value ? `/?status=${e.target.value}` : '/', { replace: true })}
          >
            <option value="">Everything</option>
            <option value="available">Available</option>
            <option value="reserved">Being checked out</option>
            <option value="sold">Sold</option>
          </select>
        </div>
      </div>
      <ErrorBanner messages={error} testId="catalogue-error" />
      {loading && state.items.length === 0 ? (
        <p aria-live="polite" data-testid="catalogue-loading">
          Loading…
        </p>
      ) : state.items.length === 0 ? (
        <p data-testid="catalogue-empty">
          Nothing here yet. {user ? <Link to="/sell">Sell something</Link> : null}
        </p>
      ) : (
        <ul className="cards" data-testid="catalogue-list" aria-busy={loading}>
          {state.items.map((s) => (
            <li key={s.id} className="card" data-testid={`stuff-card-${s.id}`} data-status={s.status} data-version={s.version}>
              <h2 className="card-title">
                <Link to={`/stuff/${encodeURIComponent(s.id)}`} data-testid="stuff-link">
                  {s.title}
                </Link>
              </h2>
              <div className="card-meta">
                <Price cents={s.priceCents} />
                <StatusBadge status={s.status} />
              </div>
              {user && s.sellerId === user.id && <p className="muted small">You are selling this</p>}
            </li>
          ))}
        </ul>
      )}
      {state.nextCursor && (
        <button type="button" onClick={loadMore} disabled={loadingMore} data-testid="load-more">
          {loadingMore ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}
