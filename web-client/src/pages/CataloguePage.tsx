// The catalogue (`/`): cursor-paged `stuff:list`, kept live by pushes. What it shows is in the URL
// (`?course=CS%20101&sort=priceAsc&status=available`, see api/browse.ts), so a filtered list is a
// link to share and Back returns to the previous filter.
import { browseHref, parseBrowseQuery, SORT_OPTIONS, listFilter, sortCourses, type BrowseQuery } from '../api/browse';
import { PAGE_SIZE, useKnownCourses, useLearnCourses, useStuffList } from '../api/catalogue-react';
import { useSession } from '../api/session-react';
import type { Stuff, StuffSort, StuffStatus } from '../api/types';
import { CourseBadge, ErrorBanner, Price, StatusBadge } from '../components/ui';
import { Link, navigate, useSearchParams } from '../router/router';

export { PAGE_SIZE };

export function CataloguePage() {
  const { user } = useSession();
  const query = parseBrowseQuery(useSearchParams());
  const { state, loading, loadingMore, error, loadMore } = useStuffList(listFilter(query));
  const filtered = Boolean(query.course || query.status);

  return (
    <section>
      <div className="page-head">
        <h1 tabIndex={-1}>Catalogue</h1>
        <div className="list-controls">
          <div className="field field-inline">
            <label htmlFor="status-filter">Show</label>
            <select
              id="status-filter"
              data-testid="status-filter"
              value={query.status ?? ''}
              onChange={(e) => navigate(browseHref({ ...query, status: (e.target.value || undefined) as StuffStatus | undefined }), { replace: true })}
            >
              <option value="">Everything</option>
              <option value="available">Available</option>
              <option value="reserved">Being checked out</option>
              <option value="sold">Sold</option>
            </select>
          </div>
          <div className="field field-inline">
            <label htmlFor="sort-order">Sort by</label>
            <select
              id="sort-order"
              data-testid="sort-order"
              value={query.sort}
              onChange={(e) => navigate(browseHref({ ...query, sort: e.target.value as StuffSort }))}
            >
              {SORT_OPTIONS.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          </div>
        </div>
      </div>
      <CourseChips query={query} />
      <p className="muted small filter-summary" role="status" data-testid="filter-summary">
        {summary(query)}
      </p>
      <ErrorBanner messages={error} testId="catalogue-error" />
      {loading && state.items.length === 0 ? (
        <p aria-live="polite" data-testid="catalogue-loading">
          Loading…
        </p>
      ) : state.items.length === 0 ? (
        filtered ? (
          <div className="empty" data-testid="catalogue-empty" data-filtered="true">
            <p>
              {query.course ? `Nothing for ${query.course}` : 'Nothing'}
              {query.status ? ` that is ${STATUS_WORD[query.status]}` : ''} right now.
            </p>
            <p>
              <Link to={browseHref({ sort: query.sort })} className="button" data-testid="clear-filters">
                Show everything
              </Link>
            </p>
          </div>
        ) : (
          <p data-testid="catalogue-empty">
            Nothing here yet. {user ? <Link to="/sell">Sell something</Link> : null}
          </p>
        )
      ) : (
        <StuffCards items={state.items} ownId={user?.id} loading={loading} />
      )}
      {state.nextCursor && (
        <button type="button" onClick={loadMore} disabled={loadingMore} data-testid="load-more">
          {loadingMore ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}

/** What the list shows, said once the filter or the sort changes (a polite live region). */
export function summary(q: BrowseQuery): string {
  const what = q.course ? `Stuff for ${q.course}` : 'Stuff for every course';
  const sort = SORT_OPTIONS.find((o) => o.value === q.sort)?.label.toLowerCase() ?? 'newest';
  return `${what}${q.status ? `, ${STATUS_WORD[q.status]} only` : ''}, ${sort === 'newest' ? 'newest first' : sort.replace('price: ', 'price ')}.`;
}

const STATUS_WORD: Record<StuffStatus, string> = {
  available: 'available',
  reserved: 'being checked out',
  sold: 'sold',
  withdrawn: 'withdrawn',
};

/**
 * The course filter: "All courses" and one chip per course seen so far (links, so each is a URL);
 * the active one is marked `aria-current`. The course in the URL always has its chip, even when
 * nothing of it is loaded, and the other courses are learnt from one unfiltered page then.
 */
function CourseChips({ query }: { query: BrowseQuery }) {
  const known = useKnownCourses();
  // Opened on a link filtered by one course: the list alone would offer no other chip.
  useLearnCourses(Boolean(query.course) && known.every((c) => c === query.course));
  const courses = query.course && !known.includes(query.course) ? sortCourses([...known, query.course]) : known;
  if (courses.length === 0) return null;
  return (
    <nav aria-label="Courses" className="chips-nav">
      <ul className="chips" data-testid="course-chips">
        <li>
          <Link
            to={browseHref({ ...query, course: undefined })}
            className="button chip"
            aria-current={query.course ? undefined : 'page'}
            data-testid="course-chip-all"
          >
            All courses
          </Link>
        </li>
        {courses.map((c) => (
          <li key={c}>
            <Link
              to={browseHref({ ...query, course: c })}
              className="button chip"
              aria-current={query.course === c ? 'page' : undefined}
              data-testid="course-chip"
              data-course={c}
            >
              {c}
            </Link>
          </li>
        ))}
      </ul>
    </nav>
  );
}

/** Stuff as cards: title (the whole card opens it), price, status and course. */
export function StuffCards({ items, ownId, loading = false, testId = 'catalogue-list' }: { items: Stuff[]; ownId?: string; loading?: boolean; testId?: string }) {
  return (
    <ul className="cards" data-testid={testId} aria-busy={loading}>
      {items.map((s) => (
        <li key={s.id} className="card" data-testid={`stuff-card-${s.id}`} data-status={s.status} data-version={s.version}>
          <h2 className="card-title">
            <Link to={`/stuff/${encodeURIComponent(s.id)}`} data-testid="stuff-link">
              {s.title}
            </Link>
          </h2>
          <div className="card-meta">
            <Price cents={s.priceCents} />
            <StatusBadge status={s.status} />
            {s.course && <CourseBadge course={s.course} />}
          </div>
          {ownId && s.sellerId === ownId && <p className="muted small">You are selling this</p>}
        </li>
      ))}
    </ul>
  );
}
