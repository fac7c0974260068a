import { describe, expect, it } from 'vitest';
import {
  browseHref,
  COURSE_MESSAGE,
  courseHref,
  coursesOf,
  KnownCourses,
  listFilter,
  normalizeCourse,
  normalizeSearch,
  searchWords,
  sortOptions,
  withSearch,
  parseBrowseQuery,
  parseCourse,
  sameFilter,
  sellerHref,
} from './browse';

describe('courses', () => {
  it('are normalized the way the server keeps them: trimmed, single spaces, upper-case', () => {
    expect(normalizeCourse('  cs   101 ')).toBe('CS 101');
    expect(parseCourse('cs 101')).toBe('CS 101');
    expect(parseCourse('math-2')).toBe('MATH-2');
    expect(parseCourse('   ')).toBe('');
    expect(parseCourse('Ökonomie 1')).toBe('ÖKONOMIE 1');
  });

  it('are refused below 2 or above 20 characters and with other signs, with the server message', () => {
    expect(parseCourse('C')).toBeNull();
    expect(parseCourse('A'.repeat(21))).toBeNull();
    expect(parseCourse('A'.repeat(20))).toBe('A'.repeat(20));
    expect(parseCourse('CS/101')).toBeNull();
    expect(parseCourse('CS_101')).toBeNull();
    expect(COURSE_MESSAGE).toBe('Course must be 2 to 20 letters, digits, spaces or dashes');
  });

  it('are listed once each, in natural order', () => {
    expect(coursesOf([{ course: 'CS 101' }, { course: null }, { course: 'CS 2' }, { course: 'CS 101' }, {}])).toEqual(['CS 2', 'CS 101']);
  });

  it('seen so far are kept in one store that tells its listeners only about new ones', () => {
    const known = new KnownCourses();
    let heard = 0;
    const stop = known.subscribe(() => (heard += 1));
    known.add([{ course: 'MATH 2' }, { course: 'CS 101' }]);
    const first = known.all();
    known.add([{ course: 'CS 101' }, { course: null }]);
    expect(heard).toBe(1);
    expect(known.all()).toBe(first); // same snapshot: nothing changed
    expect(first).toEqual(['CS 101', 'MATH 2']);
    stop();
    known.add([{ course: 'BIO 1' }]);
    expect(heard).toBe(1);
  });
});

describe('the catalogue URL', () => {
  it('writes the course with %20 and leaves defaults out', () => {
    expect(browseHref({ course: 'CS 101', sort: 'priceAsc' })).toBe('/?course=CS%20101&sort=priceAsc');
    expect(browseHref({ sort: 'newest' })).toBe('/');
    expect(browseHref({ status: 'available', course: 'MATH 2' })).toBe('/?status=available&course=MATH%202');
    expect(courseHref('CS 101')).toBe('/?course=CS%20101');
    expect(sellerHref('u 1')).toBe('/sellers/u%201');
  });

  it('reads back what it wrote, also with + for spaces and a lower-case course', () => {
    expect(parseBrowseQuery(new URLSearchParams('?course=CS%20101&sort=priceAsc'))).toEqual({ course: 'CS 101', sort: 'priceAsc' });
    expect(parseBrowseQuery(new URLSearchParams('?course=cs+101'))).toEqual({ course: 'CS 101', sort: 'newest' });
    expect(parseBrowseQuery(new URLSearchParams('?status=sold&sort=priceDesc'))).toEqual({ status: 'sold', sort: 'priceDesc' });
  });

  it('reads and writes the best rated sort as ?sort=rating', () => {
    expect(parseBrowseQuery(new URLSearchParams('?sort=rating'))).toEqual({ sort: 'rating' });
    expect(parseBrowseQuery(new URLSearchParams('?q=lin&course=cs%20101&sort=rating'))).toEqual({ q: 'lin', course: 'CS 101', sort: 'rating' });
    expect(browseHref({ sort: 'rating' })).toBe('/?sort=rating');
    expect(browseHref({ course: 'CS 101', sort: 'rating' })).toBe('/?course=CS%20101&sort=rating');
    expect(listFilter({ sort: 'rating' })).toEqual({ sort: 'rating' });
    expect(listFilter({ q: 'lin', sort: 'rating' })).toEqual({ q: 'lin', sort: 'rating' });
    expect(sameFilter({ sort: 'rating' }, {})).toBe(false);
    expect(withSearch({ sort: 'rating' }, 'lin')).toEqual({ q: 'lin', sort: 'rating' });
    expect(withSearch({ q: 'lin', sort: 'rating' }, '')).toEqual({ sort: 'rating' });
  });

  it('ignores what the UI does not offer: an unknown sort, a bad course or status', () => {
    expect(parseBrowseQuery(new URLSearchParams('?sort=ratingDesc&course=x&status=withdrawn'))).toEqual({ sort: 'newest' });
    expect(parseBrowseQuery(new URLSearchParams('?sort=cheapest'))).toEqual({ sort: 'newest' });
  });

  it('becomes the stuff:list filters, without defaults', () => {
    expect(listFilter({ course: 'CS 101', sort: 'priceAsc' })).toEqual({ course: 'CS 101', sort: 'priceAsc' });
    expect(listFilter({ sort: 'newest' })).toEqual({});
    expect(sameFilter({ sort: 'newest' }, {})).toBe(true);
    expect(sameFilter({ course: 'CS 101' }, { course: 'CS 101', sort: 'priceAsc' })).toBe(false);
  });
});

describe('the search in the catalogue URL', () => {
  it('finds the words the server finds: runs of letters and digits, lower-case, each once', () => {
    expect(searchWords('Lin-alg  LIN 2!')).toEqual(['lin', 'alg', '2']);
    expect(searchWords('Ökonomie')).toEqual(['ökonomie']);
    expect(searchWords(' ?! ')).toEqual([]);
    expect(normalizeSearch('  lin alg ')).toBe('lin alg');
    expect(normalizeSearch('!!')).toBe('');
    expect([...normalizeSearch('é'.repeat(150))]).toHaveLength(100);
  });

  it('reads q with best match as the default order, and an explicit newest', () => {
    expect(parseBrowseQuery(new URLSearchParams('?q=lin%20alg'))).toEqual({ q: 'lin alg', sort: 'best' });
    expect(parseBrowseQuery(new URLSearchParams('?q=lin+alg&course=cs+101&sort=priceAsc'))).toEqual({ q: 'lin alg', course: 'CS 101', sort: 'priceAsc' });
    expect(parseBrowseQuery(new URLSearchParams('?q=lin&sort=newest'))).toEqual({ q: 'lin', sort: 'newest' });
    // A q with no word is no search: the usual default.
    expect(parseBrowseQuery(new URLSearchParams('?q=!!'))).toEqual({ sort: 'newest' });
    expect(parseBrowseQuery(new URLSearchParams('?q=%20%20'))).toEqual({ sort: 'newest' });
  });

  it('writes q first, best match never, and newest only while searching', () => {
    expect(browseHref({ q: 'lin alg', sort: 'best' })).toBe('/?q=lin%20alg');
    expect(browseHref({ q: 'lin alg', course: 'CS 101', sort: 'priceDesc' })).toBe('/?q=lin%20alg&course=CS%20101&sort=priceDesc');
    expect(browseHref({ q: 'lin', sort: 'newest' })).toBe('/?q=lin&sort=newest');
    expect(browseHref({ q: '&?', sort: 'best' })).toBe('/');
    expect(browseHref({ sort: 'best' })).toBe('/');
    expect(browseHref({ q: 'a&b=c', sort: 'best' })).toBe('/?q=a%26b%3Dc');
    expect(parseBrowseQuery(new URLSearchParams(browseHref({ q: 'a&b=c', sort: 'best' }).slice(1)))).toEqual({ q: 'a&b=c', sort: 'best' });
  });

  it('sends no sort for best match, and newest when chosen while searching', () => {
    expect(listFilter({ q: 'lin alg', sort: 'best' })).toEqual({ q: 'lin alg' });
    expect(listFilter({ q: 'lin alg', sort: 'newest' })).toEqual({ q: 'lin alg', sort: 'newest' });
    expect(listFilter({ q: 'lin', course: 'CS 101', sort: 'priceAsc' })).toEqual({ q: 'lin', course: 'CS 101', sort: 'priceAsc' });
    expect(listFilter({ q: '!!', sort: 'newest' })).toEqual({});
    expect(sameFilter({ q: 'lin' }, { q: 'lin', sort: 'newest' })).toBe(false);
    expect(sameFilter({ q: 'lin' }, { q: 'lin alg' })).toBe(false);
    expect(sameFilter({ q: 'lin', sort: 'priceAsc' }, { q: 'lin', sort: 'priceAsc' })).toBe(true);
  });

  it('turns the default newest into best match when a search starts, and back when it ends; a chosen sort stays', () => {
    expect(withSearch({ sort: 'newest' }, 'lin')).toEqual({ q: 'lin', sort: 'best' });
    expect(withSearch({ course: 'CS 101', sort: 'priceAsc' }, ' lin ')).toEqual({ q: 'lin', course: 'CS 101', sort: 'priceAsc' });
    expect(withSearch({ q: 'lin', sort: 'newest' }, 'lin alg')).toEqual({ q: 'lin alg', sort: 'newest' });
    expect(withSearch({ q: 'lin', sort: 'best' }, '')).toEqual({ sort: 'newest' });
    expect(withSearch({ q: 'lin', sort: 'best' }, '!!')).toEqual({ sort: 'newest' });
    expect(sortOptions({ q: 'lin' }).map((o) => o.label)).toEqual(['Best match', 'Newest', 'Price: low to high', 'Price: high to low', 'Best rated']);
    expect(sortOptions({}).map((o) => o.value)).toEqual(['newest', 'priceAsc', 'priceDesc', 'rating']);
  });
});
