import { describe, expect, it } from 'vitest';
import {
  browseHref,
  COURSE_MESSAGE,
  CHIP_LIMIT,
  courseChipLabel,
  courseChips,
  courseHref,
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
});

describe('the course chips', () => {
  const counts = (n: number) => Array.from({ length: n }, (_, i) => ({ course: `C ${i + 1}`, count: n - i }));

  it('are the answer of stuff:courses in its order, with counts, the first CHIP_LIMIT until all are asked for', () => {
    expect(CHIP_LIMIT).toBe(12);
    const answer = [{ course: 'MATH 2', count: 5 }, { course: 'BIO 1', count: 2 }, { course: 'CS 101', count: 2 }];
    expect(courseChips(answer, undefined)).toEqual({ chips: answer, more: 0 });
    expect(courseChips(undefined, undefined)).toEqual({ chips: [], more: 0 });
    const many = counts(20);
    const first = courseChips(many, undefined);
    expect(first.chips.map((c) => c.course)).toEqual(many.slice(0, 12).map((c) => c.course));
    expect(first.more).toBe(8);
    expect(courseChips(many, undefined, 12, true)).toEqual({ chips: many, more: 0 });
  });

  it('always include the selected course: after the others with its count, or without one when the answer lacks it', () => {
    const many = counts(20);
    const { chips, more } = courseChips(many, 'C 17');
    expect(chips).toHaveLength(13);
    expect(chips[12]).toEqual({ course: 'C 17', count: 4 });
    expect(more).toBe(7);
    expect(courseChips(many, 'C 3').chips).toHaveLength(12); // already among the first
    expect(courseChips([{ course: 'CS 101', count: 1 }], 'BIO 9')).toEqual({ chips: [{ course: 'CS 101', count: 1 }, { course: 'BIO 9' }], more: 0 });
    expect(courseChips(undefined, 'BIO 9')).toEqual({ chips: [{ course: 'BIO 9' }], more: 0 });
    expect(courseChips(many, 'ZOO 1', 12, true).chips).toHaveLength(21);
  });

  it('are named with their count', () => {
    expect(courseChipLabel({ course: 'CS 101', count: 3 })).toBe('CS 101, 3 listings');
    expect(courseChipLabel({ course: 'CS 101', count: 1 })).toBe('CS 101, 1 listing');
    expect(courseChipLabel({ course: 'BIO 9' })).toBe('BIO 9');
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
