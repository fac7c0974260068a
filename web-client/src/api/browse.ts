// Browsing the catalogue (issue 16, "Marketplace"): courses, sort orders and the catalogue's URL.
//
//   URL `/?course=CS%20101&sort=priceAsc`  --parseBrowseQuery-->  BrowseQuery
//   BrowseQuery  --listFilter-->  `stuff:list` payload (sent again with every cursor)
//   BrowseQuery  --browseHref-->  the URL of a chip, the sort control, a course link
//
// Framework-free; the pages only render what these functions decide.
import type { Stuff, StuffListFilter, StuffSort, StuffStatus } from './types';

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

/** The sort orders the UI offers, in the order of the control. `rating` waits for reviews. */
export const SORT_OPTIONS: ReadonlyArray<{ value: StuffSort; label: string }> = [
  { value: 'newest', label: 'Newest' },
  { value: 'priceAsc', label: 'Price: low to high' },
  { value: 'priceDesc', label: 'Price: high to low' },
];

const STATUSES: StuffStatus[] = ['available', 'reserved', 'sold'];

/** What the catalogue shows, read from and written to its URL. */
export interface BrowseQuery {
  status?: StuffStatus;
  course?: string;
  /** Never `rating` (not offered); `newest` is the default and stays out of the URL. */
  sort: StuffSort;
}

/** Reads the catalogue's query string; unknown or invalid values are ignored (the defaults apply). */
export function parseBrowseQuery(params: URLSearchParams): BrowseQuery {
  const status = params.get('status');
  const course = parseCourse(params.get('course') ?? '');
  const sort = params.get('sort');
  return {
    ...(STATUSES.includes(status as StuffStatus) ? { status: status as StuffStatus } : {}),
    ...(course ? { course } : {}),
    sort: SORT_OPTIONS.some((o) => o.value === sort) ? (sort as StuffSort) : 'newest',
  };
}

/**
 * The catalogue URL of `q`: `/`, or `/?course=CS%20101&sort=priceAsc` (spaces as `%20`, so a
 * shared link reads like the course). Defaults are left out.
 */
export function browseHref(q: Partial<BrowseQuery>): string {
  const parts: string[] = [];
  if (q.status) parts.push(`status=${encodeURIComponent(q.status)}`);
  if (q.course) parts.push(`course=${encodeURIComponent(q.course)}`);
  if (q.sort && q.sort !== 'newest') parts.push(`sort=${encodeURIComponent(q.sort)}`);
  return parts.length ? `/?${parts.join('&')}` : '/';
}

/** The catalogue filtered by one course (the stuff page's course link). */
export const courseHref = (course: string): string => browseHref({ course });

/** A seller's page. */
export const sellerHref = (sellerId: string): string => `/sellers/${encodeURIComponent(sellerId)}`;

/** The `stuff:list` filters of a query (without defaults). */
export function listFilter(q: BrowseQuery): StuffListFilter {
  return {
    ...(q.status ? { status: q.status } : {}),
    ...(q.course ? { course: q.course } : {}),
    ...(q.sort !== 'newest' ? { sort: q.sort } : {}),
  };
}

/** Two filters ask for the same list (so a held list and its cursor still apply). */
export function sameFilter(a: StuffListFilter, b: StuffListFilter): boolean {
  return (
    a.status === b.status &&
    (a.course ?? '') === (b.course ?? '') &&
    a.sellerId === b.sellerId &&
    (a.sort ?? 'newest') === (b.sort ?? 'newest')
  );
}

/** The distinct courses of `items`, sorted (`CS 2` before `CS 101`). */
export function coursesOf(items: ReadonlyArray<Pick<Stuff, 'course'>>): string[] {
  const set = new Set<string>();
  for (const s of items) if (s.course) set.add(s.course);
  return sortCourses(set);
}

export function sortCourses(courses: Iterable<string>): string[] {
  return Array.from(courses).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * Every course seen in stuff loaded so far (the catalogue, a seller's page, a stuff page, pushes):
 * the chips and the forms' suggestions. There is no endpoint for it; this is what the browser knows.
 */
export class KnownCourses {
  private readonly set = new Set<string>();
  private list: string[] = [];
  private readonly listeners = new Set<() => void>();

  /** Adds the courses of `items`; listeners hear of it only when something was new. */
  add(items: ReadonlyArray<Pick<Stuff, 'course'>>): void {
    let added = false;
    for (const s of items) {
      if (s.course && !this.set.has(s.course)) {
        this.set.add(s.course);
        added = true;
      }
    }
    if (!added) return;
    this.list = sortCourses(this.set);
    for (const l of this.listeners) l();
  }

  /** The same array until a course is added (a stable snapshot for useSyncExternalStore). */
  all(): string[] {
    return this.list;
  }

  /** Forgets every course (tests start from nothing). */
  reset(): void {
    this.set.clear();
    this.list = [];
    for (const l of this.listeners) l();
  }

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

/** The one store the pages share. */
export const knownCourses = new KnownCourses();
