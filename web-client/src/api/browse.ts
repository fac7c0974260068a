// Browsing the catalogue (issue 16, "Marketplace"): courses, sort orders and the catalogue's URL.
//
//   URL `/?q=lin%20alg&course=CS%20101&sort=priceAsc`  --parseBrowseQuery-->  BrowseQuery
//   BrowseQuery  --listFilter-->  `stuff:list` payload (sent again with every cursor)
//   BrowseQuery  --browseHref-->  the URL of a chip, the sort control, a course link
//
// Framework-free; the pages only render what these functions decide.
import type { CourseCount, StuffListFilter, StuffSort, StuffStatus } from './types';

export const COURSE_MIN = 2;
export const COURSE_MAX = 20;
/** The server's message (field `course`), also used for the same check in the browser. */
export const COURSE_MESSAGE = 'Course must be 2 to 20 letters, digits, spaces or dashes';

/** What the server keeps: trimmed, runs of spaces collapsed to one, upper-case (`cs  101 ` → `CS 101`). */
export function normalizeCourse(raw: string): string {
  return raw.trim().replace(/\s+/g, ' ').toUpperCase();
}

/**
 * A course as typed in a form: `''` (none), the normalized course, or null when the server would
 * refuse it. Letters are Unicode letters: where the server is stricter, its 400 shows on the field.
 */
export function parseCourse(raw: string): string | null {
  const course = normalizeCourse(raw);
  if (course === '') return '';
  const chars = [...course].length; // characters, as the server counts, not UTF-16 units
  return /^[\p{L}\p{N} -]+$/u.test(course) && chars >= COURSE_MIN && chars <= COURSE_MAX ? course : null;
}

/** The sort orders the UI offers, in the order of the control (`?sort=rating` is "Best rated"). */
export const SORT_OPTIONS: ReadonlyArray<{ value: StuffSort; label: string }> = [
  { value: 'newest', label: 'Newest' },
  { value: 'priceAsc', label: 'Price: low to high' },
  { value: 'priceDesc', label: 'Price: high to low' },
  { value: 'rating', label: 'Best rated' },
];

/**
 * The order of a search without `sort`: best matches first (every word in the title, then the
 * rest, each newest first). Only the UI's name for "send no `sort`"; never sent, never in the URL.
 */
export const BEST_MATCH = 'best';
export type BrowseSort = StuffSort | typeof BEST_MATCH;

/** The sort control while searching: "Best match" (the default) first, then the usual orders. */
export const SEARCH_SORT_OPTIONS: ReadonlyArray<{ value: BrowseSort; label: string }> = [
  { value: BEST_MATCH, label: 'Best match' },
  ...SORT_OPTIONS,
];

/** The server's limit on `q` (characters) and its message (field `q`). */
export const SEARCH_MAX = 100;
export const SEARCH_MESSAGE = 'Search must be text of at most 100 characters';

/**
 * The words of a search as the server reads them: runs of letters and digits, lower-case, each
 * once. A search with no word (`"!!"`) is no search at all.
 */
export function searchWords(q: string | undefined): string[] {
  const words: string[] = [];
  for (const w of (q ?? '').toLowerCase().split(/[^\p{L}\p{N}]+/u)) if (w && !words.includes(w)) words.push(w);
  return words;
}

/** `q` as the URL and `stuff:list` carry it: trimmed and at most 100 characters; '' when it has no word. */
export function normalizeSearch(raw: string | null | undefined): string {
  const q = [...(raw ?? '').trim()].slice(0, SEARCH_MAX).join('').trim();
  return searchWords(q).length ? q : '';
}

const STATUSES: StuffStatus[] = ['available', 'reserved', 'sold'];

/** What the catalogue shows, read from and written to its URL. */
export interface BrowseQuery {
  /** The search (trimmed, with at least one word); absent when not searching. */
  q?: string;
  status?: StuffStatus;
  course?: string;
  /**
   * Without a search `newest` is the default and stays out of the URL; with one, `best` (no
   * `sort` sent) is, and `newest` is written when chosen.
   */
  sort: BrowseSort;
}

/** The default order: best match while searching, newest otherwise. */
export const defaultSort = (q: Pick<BrowseQuery, 'q'>): BrowseSort => (q.q ? BEST_MATCH : 'newest');

/** The sort options the control offers for `q`. */
export const sortOptions = (q: Pick<BrowseQuery, 'q'>) => (q.q ? SEARCH_SORT_OPTIONS : SORT_OPTIONS);

/** Reads the catalogue's query string; unknown or invalid values are ignored (the defaults apply). */
export function parseBrowseQuery(params: URLSearchParams): BrowseQuery {
  const status = params.get('status');
  const course = parseCourse(params.get('course') ?? '');
  const q = normalizeSearch(params.get('q'));
  const sort = params.get('sort');
  const chosen = SORT_OPTIONS.some((o) => o.value === sort) ? (sort as StuffSort) : undefined;
  return {
    ...(q ? { q } : {}),
    ...(STATUSES.includes(status as StuffStatus) ? { status: status as StuffStatus } : {}),
    ...(course ? { course } : {}),
    sort: chosen ?? defaultSort({ q }),
  };
}

/**
 * The query after the search box settles on `text`: starting a search turns the default `newest`
 * into best match, ending one turns best match back into newest; a chosen price or rating sort stays.
 */
export function withSearch(query: BrowseQuery, text: string): BrowseQuery {
  const q = normalizeSearch(text);
  const { q: _old, ...rest } = query;
  let sort = query.sort;
  if (q && !query.q && sort === 'newest') sort = BEST_MATCH;
  if (!q && sort === BEST_MATCH) sort = 'newest';
  return { ...rest, ...(q ? { q } : {}), sort };
}

/**
 * The catalogue URL of `q`: `/`, or `/?q=lin%20alg&course=CS%20101&sort=priceAsc` (spaces as
 * `%20`, so a shared link reads like the course). Defaults are left out.
 */
export function browseHref(q: Partial<BrowseQuery>): string {
  const parts: string[] = [];
  const search = normalizeSearch(q.q);
  if (search) parts.push(`q=${encodeURIComponent(search)}`);
  if (q.status) parts.push(`status=${encodeURIComponent(q.status)}`);
  if (q.course) parts.push(`course=${encodeURIComponent(q.course)}`);
  if (q.sort && q.sort !== BEST_MATCH && (search || q.sort !== 'newest')) parts.push(`sort=${encodeURIComponent(q.sort)}`);
  return parts.length ? `/?${parts.join('&')}` : '/';
}

/** The catalogue filtered by one course (the stuff page's course link). */
export const courseHref = (course: string): string => browseHref({ course });

/** A seller's page. */
export const sellerHref = (sellerId: string): string => `/sellers/${encodeURIComponent(sellerId)}`;

/**
 * The `stuff:list` filters of a query (without defaults): best match sends no `sort`; `newest`
 * is sent only while searching (where it is not the default).
 */
export function listFilter(q: BrowseQuery): StuffListFilter {
  const search = normalizeSearch(q.q);
  return {
    ...(search ? { q: search } : {}),
    ...(q.status ? { status: q.status } : {}),
    ...(q.course ? { course: q.course } : {}),
    ...(q.sort !== BEST_MATCH && (search || q.sort !== 'newest') ? { sort: q.sort } : {}),
  };
}

/** Two filters ask for the same list (so a held list and its cursor still apply). */
export function sameFilter(a: StuffListFilter, b: StuffListFilter): boolean {
  return (
    (a.q ?? '') === (b.q ?? '') &&
    a.status === b.status &&
    (a.course ?? '') === (b.course ?? '') &&
    a.sellerId === b.sellerId &&
    (a.q ? a.sort : (a.sort ?? 'newest')) === (b.q ? b.sort : (b.sort ?? 'newest'))
  );
}

/** How many course chips show before "More courses" (the most listed ones). */
export const CHIP_LIMIT = 12;

/** A course chip: the course, and its count when `stuff:courses` named it. */
export interface CourseChip {
  course: string;
  count?: number;
}

/**
 * The course chips: `courses` (from `stuff:courses`, most listed first) in that order, the first
 * `limit` unless `all`, and the `selected` course always (after them, with its count when the
 * answer has it). `more`: how many courses "More courses" would add.
 */
export function courseChips(
  courses: readonly CourseCount[] | undefined,
  selected: string | undefined,
  limit = CHIP_LIMIT,
  all = false,
): { chips: CourseChip[]; more: number } {
  const list = courses ?? [];
  const chips: CourseChip[] = (all ? list : list.slice(0, limit)).map(({ course, count }) => ({ course, count }));
  if (selected && !chips.some((c) => c.course === selected)) {
    const count = list.find((c) => c.course === selected)?.count;
    chips.push(count === undefined ? { course: selected } : { course: selected, count });
  }
  return { chips, more: all ? 0 : list.length - chips.filter((c) => c.count !== undefined).length };
}

/** A chip's accessible name: `CS 101, 3 listings` (its text reads `CS 101 · 3`). */
export function courseChipLabel(chip: CourseChip): string {
  return chip.count === undefined ? chip.course : `${chip.course}, ${chip.count} ${chip.count === 1 ? 'listing' : 'listings'}`;
}
