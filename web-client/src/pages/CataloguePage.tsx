// The catalogue (`/`): cursor-paged `stuff:list`, kept live by pushes. What it shows is in the URL
// (`?q=lin%20alg&course=CS%20101&sort=priceAsc&status=available`, see api/browse.ts), so a
// filtered list or a search is a link to share and Back returns to the previous one.
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import {
  BEST_MATCH,
  browseHref,
  courseChipLabel,
  courseChips,
  listFilter,
  parseBrowseQuery,
  SEARCH_MAX,
  sortOptions,
  withSearch,
  type BrowseQuery,
  type BrowseSort,
} from '../api/browse';
import { PAGE_SIZE, useStuffList } from '../api/catalogue-react';
import { useCoursesQuery } from '../api/queries-react';
import { useSession } from '../api/session-react';
import type { Stuff, StuffStatus } from '../api/types';
import { CourseBadge, ErrorBanner, Price, StatusBadge } from '../components/ui';
import { Cover } from '../components/cover';
import { RatingBadge } from '../components/reviews';
import { sellerHref } from '../api/browse';
import { Link, useNavigate, useSearchParams } from 'react-router';

export { PAGE_SIZE };

export function CataloguePage() {
  const { user } = useSession();
  const navigate = useNavigate();
  const query = parseBrowseQuery(useSearchParams()[0]);
  const { state, loading, loadingMore, error, loadMore } = useStuffList(listFilter(query));
  const filtered = Boolean(query.q || query.course || query.status);

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
              onChange={(e) => navigate(browseHref({ ...query, sort: e.target.value as BrowseSort }))}
            >
              {sortOptions(query).map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          </div>
        </div>
      </div>
      <SearchBox query={query} />
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
        query.q ? (
          <div className="empty" data-testid="catalogue-empty" data-filtered="true" data-search={query.q}>
            <p>
              Nothing matches “{query.q}”{query.course ? ` in ${query.course}` : ''}
              {query.status ? ` that is ${STATUS_WORD[query.status]}` : ''}.
            </p>
            <p>
              <Link
                to={browseHref(withSearch(query, ''))}
                className="button"
                data-testid="clear-search"
                onClick={() => document.getElementById(SEARCH_INPUT_ID)?.focus()}
              >
                Clear the search
              </Link>
            </p>
          </div>
        ) : filtered ? (
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

/** What the list shows, said once the search, the filter or the sort changes (a polite live region). */
export function summary(q: BrowseQuery): string {
  const what = q.q
    ? `Stuff matching “${q.q}”${q.course ? ` in ${q.course}` : ''}`
    : q.course
      ? `Stuff for ${q.course}`
      : 'Stuff for every course';
  const order =
    q.sort === BEST_MATCH
      ? 'best match first'
      : q.sort === 'newest'
        ? 'newest first'
        : q.sort === 'rating'
          ? 'best rated first'
          : (sortOptions(q).find((o) => o.value === q.sort)?.label.toLowerCase().replace('price: ', 'price ') ?? 'newest first');
  return `${what}${q.status ? `, ${STATUS_WORD[q.status]} only` : ''}, ${order}.`;
}

/** How long the search box waits after the last keystroke before it searches. */
export const SEARCH_DEBOUNCE_MS = 300;
const SEARCH_INPUT_ID = 'catalogue-search';

/**
 * The search box. Typing searches once it pauses for `SEARCH_DEBOUNCE_MS`: the first pause of a
 * search pushes one history entry (`?q=…`, with the course, status and sort kept), later pauses
 * replace it, so Back leaves the search in one step. Enter or leaving the field settles it at once
 * and the next typing starts a new entry. When the URL changes elsewhere (Back, a chip, a link),
 * the box shows its search.
 */
function SearchBox({ query }: { query: BrowseQuery }) {
  const navigate = useNavigate();
  const urlQ = query.q ?? '';
  const [text, setText] = useState(urlQ);
  const latest = useRef(query);
  latest.current = query;
  /** The search this box last wrote to the URL (to tell its own changes from Back or a link). */
  const written = useRef(urlQ);
  /** This typing already has its own history entry: further pauses replace it. */
  const ownEntry = useRef(false);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const cancel = () => {
    clearTimeout(timer.current);
    timer.current = undefined;
  };

  // The URL changed elsewhere (Back, a chip, the sort, a link): the next pause starts a new
  // history entry, and the box shows the URL's search when that changed.
  const href = browseHref(query);
  const ownHref = useRef(href);
  useEffect(() => {
    if (href === ownHref.current) return;
    ownHref.current = href;
    ownEntry.current = false;
    if (urlQ === written.current) return;
    cancel();
    written.current = urlQ;
    setText(urlQ);
  }, [href, urlQ]);
  useEffect(() => cancel, []);

  const commit = (value: string, settled: boolean) => {
    cancel();
    const next = withSearch(latest.current, value);
    written.current = next.q ?? '';
    const to = browseHref(next);
    if (to !== browseHref(latest.current)) {
      ownHref.current = to;
      navigate(to, { replace: ownEntry.current });
      ownEntry.current = true;
    }
    if (settled) ownEntry.current = false;
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    commit(text, true);
  };

  return (
    <form role="search" className="search-form" onSubmit={onSubmit} data-testid="search-form">
      <label htmlFor={SEARCH_INPUT_ID}>Search</label>
      <input
        id={SEARCH_INPUT_ID}
        type="search"
        name="q"
        maxLength={SEARCH_MAX}
        autoComplete="off"
        enterKeyHint="search"
        placeholder="Title, description or course"
        value={text}
        data-testid="search-input"
        onChange={(e) => {
          const value = e.target.value;
          setText(value);
          cancel();
          timer.current = setTimeout(() => commit(value, false), SEARCH_DEBOUNCE_MS);
        }}
        onBlur={() => {
          if (timer.current !== undefined) commit(text, true);
          else ownEntry.current = false;
        }}
      />
    </form>
  );
}

const STATUS_WORD: Record<StuffStatus, string> = {
  available: 'available',
  reserved: 'being checked out',
  sold: 'sold',
  withdrawn: 'withdrawn',
};

/**
 * The course filter: "All courses" and one chip per course of the catalogue (`stuff:courses`, the
 * most listed first, each with its count; links, so each is a URL), the first `CHIP_LIMIT` until
 * "More courses"; the active one is marked `aria-current`. The course in the URL always has its
 * chip, even when no listing names it.
 */
function CourseChips({ query }: { query: BrowseQuery }) {
  const { data } = useCoursesQuery();
  const [all, setAll] = useState(false);
  const listId = useId();
  const { chips, more } = courseChips(data, query.course, undefined, all);
  if (chips.length === 0) return null;
  return (
    <nav aria-label="Courses" className="chips-nav">
      <ul className="chips" data-testid="course-chips" id={listId}>
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
        {chips.map((c) => (
          <li key={c.course}>
            <Link
              to={browseHref({ ...query, course: c.course })}
              className="button chip"
              aria-current={query.course === c.course ? 'page' : undefined}
              aria-label={c.count === undefined ? undefined : courseChipLabel(c)}
              data-testid="course-chip"
              data-course={c.course}
              data-count={c.count}
            >
              {c.course}
              {c.count !== undefined && <span className="chip-count"> · {c.count}</span>}
            </Link>
          </li>
        ))}
        {(all || more > 0) && (
          <li>
            <button
              type="button"
              className="button chip chip-more"
              aria-expanded={all}
              aria-controls={listId}
              data-testid="course-chips-more"
              onClick={() => setAll(!all)}
            >
              {all ? 'Fewer courses' : `More courses (${more})`}
            </button>
          </li>
        )}
      </ul>
    </nav>
  );
}

/**
 * Stuff as cards: the cover (when it has one), title (the whole card opens it), price, status,
 * course, rating and the seller's name (a link of its own, above the card's).
 */
export function StuffCards({ items, ownId, loading = false, testId = 'catalogue-list' }: { items: Stuff[]; ownId?: string; loading?: boolean; testId?: string }) {
  return (
    <ul className="cards" data-testid={testId} aria-busy={loading}>
      {items.map((s) => (
        <li key={s.id} className="card" data-testid={`stuff-card-${s.id}`} data-status={s.status} data-version={s.version}>
          {s.coverUrl && <Cover url={s.coverUrl} title={s.title} className="card-cover" />}
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
          <div className="card-meta card-more">
            <RatingBadge rating={s.rating} />
            {s.seller && (
              <span className="card-seller small">
                by{' '}
                <Link to={sellerHref(s.sellerId)} className="tap-link" data-testid="card-seller-link">
                  {s.seller.displayName}
                </Link>
              </span>
            )}
          </div>
          {ownId && s.sellerId === ownId && <p className="muted small">You are selling this</p>}
        </li>
      ))}
    </ul>
  );
}
