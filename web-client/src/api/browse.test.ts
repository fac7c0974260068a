import { describe, expect, it } from 'vitest';
import {
  browseHref,
  COURSE_MESSAGE,
  courseHref,
  coursesOf,
  KnownCourses,
  listFilter,
  normalizeCourse,
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

  it('ignores what the UI does not offer: an unknown sort, rating, a bad course or status', () => {
    expect(parseBrowseQuery(new URLSearchParams('?sort=rating&course=x&status=withdrawn'))).toEqual({ sort: 'newest' });
    expect(parseBrowseQuery(new URLSearchParams('?sort=cheapest'))).toEqual({ sort: 'newest' });
  });

  it('becomes the stuff:list filters, without defaults', () => {
    expect(listFilter({ course: 'CS 101', sort: 'priceAsc' })).toEqual({ course: 'CS 101', sort: 'priceAsc' });
    expect(listFilter({ sort: 'newest' })).toEqual({});
    expect(sameFilter({ sort: 'newest' }, {})).toBe(true);
    expect(sameFilter({ course: 'CS 101' }, { course: 'CS 101', sort: 'priceAsc' })).toBe(false);
  });
});
