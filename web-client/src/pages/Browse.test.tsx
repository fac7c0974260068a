// @vitest-environment happy-dom
// Browsing by course, sort and seller (issue 16): the catalogue's URL, chips and sort, the seller
// page, the stuff page's links and the forms' Course field.
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { CourseCount, Stuff, StuffPage } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, typeInto, choose, back } from '../test/render';
import { App } from '../App';
import { CHIP_LIMIT } from '../api/browse';
import { COURSES_REFRESH_MS } from '../api/queries';

const item = (id: string, priceCents: number, course: string | null, sellerId = 'seller-9'): Stuff => ({
  id,
  title: `Title ${id}`,
  description: '',
  priceCents,
  sellerId,
  status: 'available',
  version: 1,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  course,
});




describe('browsing by course, sort and seller', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let pages: StuffPage[];
  let listCalls: Record<string, unknown>[];
  /** What `stuff:courses` answers (read at each request), and how often it was asked. */
  let courses: CourseCount[];
  let courseCalls: number;

  /** Opens `path` in the whole app; `setup` adds responders before the socket connects. */
  const start = async (path: string, signedIn = false, setup: (s: FakeSocket) => void = () => undefined) => {
    window.history.replaceState(null, '', path);
    const http = new FakeHttp();
    if (signedIn) http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    listCalls = [];
    courseCalls = 0;
    socket.responders.set('stuff:courses', (p) => {
      expect(p).toEqual({});
      courseCalls += 1;
      return { data: courses };
    });
    socket.responders.set('stuff:list', (p) => {
      listCalls.push(p as Record<string, unknown>);
      return { data: pages.shift() ?? { items: [], nextCursor: null } };
    });
    socket.responders.set('order:list', () => ({ data: [] }));
    setup(socket);
    const r = render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };
  const cardIds = (r: { container: HTMLElement }) =>
    Array.from(r.container.querySelectorAll('[data-testid^="stuff-card-"]')).map((e) => e.getAttribute('data-testid')!.slice('stuff-card-'.length));

  beforeEach(() => {
    pages = [];
    courses = [];
  });
  const chip = (r: { container: HTMLElement }, c: string) => r.container.querySelector<HTMLAnchorElement>(`[data-testid="course-chip"][data-course="${c}"]`);
  const chipCourses = (r: { container: HTMLElement }) =>
    Array.from(r.container.querySelectorAll('[data-testid="course-chip"]')).map((e) => e.getAttribute('data-course'));
  afterEach(() => session.stop());

  it('asks stuff:list for the course and sort in the URL, and pages on with the same filters', async () => {
    pages.push({ items: [item('a', 500, 'CS 101')], nextCursor: 'cur-1' }, { items: [item('b', 900, 'CS 101')], nextCursor: null });
    const r = await start('/?course=cs%20101&sort=priceAsc');
    expect(listCalls[0]).toEqual({ limit: 20, course: 'CS 101', sort: 'priceAsc' });
    expect((r.byTestId('sort-order') as HTMLSelectElement).value).toBe('priceAsc');
    const badge = r.byTestId('stuff-card-a')!.querySelector('[data-testid="course-badge"]')!;
    expect(badge.textContent).toBe('Course CS 101');
    await step(() => (r.byTestId('load-more') as HTMLButtonElement).click());
    expect(listCalls[1]).toEqual({ limit: 20, cursor: 'cur-1', course: 'CS 101', sort: 'priceAsc' });
    expect(cardIds(r)).toEqual(['a', 'b']);
    r.unmount();
  });

  it('filters by a course chip and sorts through the URL, so Back returns to the previous list', async () => {
    courses = [{ course: 'CS 101', count: 2 }, { course: 'MATH 2', count: 1 }];
    pages.push({ items: [item('a', 900, 'CS 101'), item('m', 300, 'MATH 2'), item('n', 100, null)], nextCursor: null });
    const r = await start('/');
    expect(listCalls[0]).toEqual({ limit: 20 });
    expect(chipCourses(r)).toEqual(['CS 101', 'MATH 2']);
    expect(r.byTestId('course-chip-all')!.getAttribute('aria-current')).toBe('page');
    const cs = chip(r, 'CS 101')!;
    expect(cs.getAttribute('href')).toBe('/?course=CS%20101');
    expect(cs.textContent).toBe('CS 101 · 2');
    expect(cs.getAttribute('aria-label')).toBe('CS 101, 2 listings');
    expect(chip(r, 'MATH 2')!.getAttribute('aria-label')).toBe('MATH 2, 1 listing');

    pages.push({ items: [item('a', 900, 'CS 101'), item('c', 400, 'CS 101')], nextCursor: null });
    await step(() => cs.click());
    expect(window.location.search).toBe('?course=CS%20101');
    expect(listCalls[1]).toEqual({ limit: 20, course: 'CS 101' });
    expect(cardIds(r)).toEqual(['a', 'c']);
    const active = r.container.querySelector('[data-testid="course-chip"][aria-current="page"]')!;
    expect(active.getAttribute('data-course')).toBe('CS 101');
    // The other chips stay, so another course is one tap away.
    expect(r.container.querySelector('[data-testid="course-chip"][data-course="MATH 2"]')).not.toBeNull();

    // A live push of another course stays out of the filtered list; one of this course goes in.
    await step(() => socket.push('stuff:created', item('x', 100, 'MATH 2')));
    await step(() => socket.push('stuff:created', item('y', 100, 'CS 101')));
    expect(cardIds(r)).toEqual(['y', 'a', 'c']);

    pages.push({ items: [item('c', 400, 'CS 101'), item('a', 900, 'CS 101')], nextCursor: null });
    await step(() => choose(r.byTestId('sort-order') as HTMLSelectElement, 'priceAsc'));
    expect(window.location.search).toBe('?course=CS%20101&sort=priceAsc');
    expect(listCalls[2]).toEqual({ limit: 20, course: 'CS 101', sort: 'priceAsc' });
    expect(cardIds(r)).toEqual(['c', 'a']);
    expect(r.byTestId('filter-summary')!.textContent).toBe('Stuff for CS 101, price low to high.');

    // Back: the course without the sort, then everything.
    pages.push({ items: [item('a', 900, 'CS 101'), item('c', 400, 'CS 101')], nextCursor: null });
    await step(back);
    expect(window.location.search).toBe('?course=CS%20101');
    expect(listCalls[3]).toEqual({ limit: 20, course: 'CS 101' });
    pages.push({ items: [item('a', 900, 'CS 101'), item('m', 300, 'MATH 2')], nextCursor: null });
    await step(back);
    expect(window.location.search).toBe('');
    expect(listCalls[4]).toEqual({ limit: 20 });
    expect(cardIds(r)).toEqual(['a', 'm']);
    // Chips, sorts and Back are one page view: the courses were asked for once.
    expect(courseCalls).toBe(1);
    r.unmount();
  });

  it('offers "Best rated": ?sort=rating asks stuff:list for it, best rated first, and a new item goes after the rated ones', async () => {
    const rated = (id: string, average: number, count: number): Stuff => ({ ...item(id, 500, 'CS 101'), rating: { average, count } });
    pages.push({ items: [item('a', 900, 'CS 101'), rated('b', 4, 1)], nextCursor: null });
    const r = await start('/?course=CS%20101');
    const control = r.byTestId('sort-order') as HTMLSelectElement;
    expect(Array.from(control.options).map((o) => [o.value, o.textContent])).toEqual([
      ['newest', 'Newest'],
      ['priceAsc', 'Price: low to high'],
      ['priceDesc', 'Price: high to low'],
      ['rating', 'Best rated'],
    ]);

    pages.push({ items: [rated('b', 4, 1), item('a', 900, 'CS 101')], nextCursor: null });
    await step(() => choose(control, 'rating'));
    expect(window.location.search).toBe('?course=CS%20101&sort=rating');
    expect(listCalls[1]).toEqual({ limit: 20, course: 'CS 101', sort: 'rating' });
    expect(control.value).toBe('rating');
    expect(control.selectedOptions[0]!.textContent).toBe('Best rated');
    expect(cardIds(r)).toEqual(['b', 'a']);
    expect(r.byTestId('stuff-card-b')!.querySelector('[data-testid="rating"]')!.textContent).toBe('★ 4.0 (1)');
    expect(r.byTestId('filter-summary')!.textContent).toBe('Stuff for CS 101, best rated first.');

    // A new item has no reviews: after the rated one, first of the unrated.
    await step(() => socket.push('stuff:created', item('n', 100, 'CS 101')));
    expect(cardIds(r)).toEqual(['b', 'n', 'a']);

    // Back to newest, and forward again: the sort is all in the URL.
    pages.push({ items: [item('a', 900, 'CS 101'), rated('b', 4, 1)], nextCursor: null });
    await step(back);
    expect(window.location.search).toBe('?course=CS%20101');
    expect(control.value).toBe('newest');
    r.unmount();
    session.stop();

    // Opened on a shared link.
    pages.push({ items: [rated('b', 4, 1)], nextCursor: null });
    const shared = await start('/?sort=rating');
    expect(listCalls[0]).toEqual({ limit: 20, sort: 'rating' });
    expect((shared.byTestId('sort-order') as HTMLSelectElement).value).toBe('rating');
    shared.unmount();
  });

  it('says when a filter finds nothing, with a way to clear it', async () => {
    pages.push({ items: [], nextCursor: null });
    const r = await start('/?course=BIO%209&sort=priceDesc');
    const empty = r.byTestId('catalogue-empty')!;
    expect(empty.getAttribute('data-filtered')).toBe('true');
    expect(empty.textContent).toContain('Nothing for BIO 9 right now.');
    // The course in the URL has its chip even with nothing loaded.
    expect(r.container.querySelector('[data-testid="course-chip"][aria-current="page"]')!.textContent).toBe('BIO 9');
    const clear = r.byTestId('clear-filters') as HTMLAnchorElement;
    expect(clear.getAttribute('href')).toBe('/?sort=priceDesc');
    pages.push({ items: [item('a', 900, 'CS 101')], nextCursor: null });
    await step(() => clear.click());
    expect(listCalls[1]).toEqual({ limit: 20, sort: 'priceDesc' });
    expect(cardIds(r)).toEqual(['a']);
    r.unmount();
  });

  it('takes the chips from stuff:courses in its order with counts, the course in the URL always among them', async () => {
    courses = [{ course: 'ZOO 1', count: 3 }, { course: 'YOGA 3', count: 1 }];
    pages.push({ items: [item('q', 900, 'QUANT 7')], nextCursor: null });
    const r = await start('/?course=QUANT%207');
    // No page is asked for only to learn the courses.
    expect(listCalls).toEqual([{ limit: 20, course: 'QUANT 7' }]);
    expect(courseCalls).toBe(1);
    expect(socket.emitted.filter((e) => e.event === 'stuff:courses')).toHaveLength(1);
    expect(chipCourses(r)).toEqual(['ZOO 1', 'YOGA 3', 'QUANT 7']);
    expect(chip(r, 'ZOO 1')!.getAttribute('href')).toBe('/?course=ZOO%201');
    expect(chip(r, 'ZOO 1')!.getAttribute('aria-label')).toBe('ZOO 1, 3 listings');
    // Not in the answer: its chip has no count.
    expect(chip(r, 'QUANT 7')!.getAttribute('aria-current')).toBe('page');
    expect(chip(r, 'QUANT 7')!.textContent).toBe('QUANT 7');
    expect(chip(r, 'QUANT 7')!.hasAttribute('aria-label')).toBe(false);
    expect(cardIds(r)).toEqual(['q']);
    r.unmount();
  });

  it('shows the most listed courses first and the rest behind "More courses", keeping the selected one', async () => {
    courses = Array.from({ length: CHIP_LIMIT + 5 }, (_, i) => ({ course: `C ${i + 1}`, count: 50 - i }));
    const r = await start('/?course=C%2015');
    const names = courses.map((c) => c.course);
    expect(chipCourses(r)).toEqual([...names.slice(0, CHIP_LIMIT), 'C 15']);
    expect(chip(r, 'C 15')!.getAttribute('aria-current')).toBe('page');
    expect(chip(r, 'C 15')!.getAttribute('aria-label')).toBe('C 15, 36 listings');
    const more = r.byTestId('course-chips-more') as HTMLButtonElement;
    expect(more.textContent).toBe('More courses (4)');
    expect(more.getAttribute('aria-expanded')).toBe('false');
    expect(more.getAttribute('aria-controls')).toBe(r.byTestId('course-chips')!.id);
    await step(() => more.click());
    expect(chipCourses(r)).toEqual(names);
    expect(more.textContent).toBe('Fewer courses');
    expect(more.getAttribute('aria-expanded')).toBe('true');
    await step(() => more.click());
    expect(chipCourses(r)).toHaveLength(CHIP_LIMIT + 1);
    expect(courseCalls).toBe(1);
    r.unmount();
  });

  it('asks for the courses again after a push that changes them (once for a burst), after a reconnect, and not otherwise', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      courses = [{ course: 'CS 101', count: 2 }];
      pages.push({ items: [item('a', 900, 'CS 101'), item('b', 500, 'CS 101')], nextCursor: null });
      const r = await start('/');
      expect(courseCalls).toBe(1);
      const settle = () => step(() => vi.advanceTimersByTime(COURSES_REFRESH_MS));

      // Reserved, sold, repriced: no course moves, nothing is asked.
      await step(() => socket.push('stuff:updated', { ...item('a', 900, 'CS 101'), version: 2, status: 'reserved' }));
      await step(() => socket.push('stuff:updated', { ...item('b', 700, 'CS 101'), version: 2 }));
      await step(() => socket.push('stuff:created', item('n', 100, null)));
      await settle();
      expect(courseCalls).toBe(1);

      // A new course, and another listing of it right after: asked once, a moment later.
      courses = [{ course: 'CS 101', count: 2 }, { course: 'BIO 1', count: 2 }];
      await step(() => socket.push('stuff:created', item('x', 100, 'BIO 1')));
      await step(() => socket.push('stuff:created', item('y', 100, 'BIO 1')));
      expect(courseCalls).toBe(1);
      expect(chip(r, 'BIO 1')).toBeNull();
      await settle();
      expect(courseCalls).toBe(2);
      expect(chipCourses(r)).toEqual(['CS 101', 'BIO 1']);
      expect(chip(r, 'BIO 1')!.getAttribute('aria-label')).toBe('BIO 1, 2 listings');

      // A listing seen in the catalogue moves from CS 101 to BIO 1 (both listed already).
      courses = [{ course: 'BIO 1', count: 3 }, { course: 'CS 101', count: 1 }];
      await step(() => socket.push('stuff:updated', { ...item('b', 700, 'BIO 1'), version: 3 }));
      await settle();
      expect(courseCalls).toBe(3);
      expect(chipCourses(r)).toEqual(['BIO 1', 'CS 101']);

      // Withdrawn: its course has one listing fewer.
      courses = [{ course: 'BIO 1', count: 3 }];
      await step(() => socket.push('stuff:updated', { ...item('a', 900, 'CS 101'), version: 3, status: 'withdrawn' }));
      await settle();
      expect(courseCalls).toBe(4);
      expect(chipCourses(r)).toEqual(['BIO 1']);

      // A reconnect: asked again (pushes may have been missed).
      await step(() => socket.dropNetwork());
      await step(() => socket.acceptConnect());
      await settle();
      expect(courseCalls).toBe(5);
      r.unmount();
    } finally {
      vi.useRealTimers();
    }
  });

  it("lists a seller's stuff with paging and says when there is none", async () => {
    pages.push({ items: [item('s1', 500, 'CS 101', 'seller-9')], nextCursor: 'cur-s' }, { items: [item('s2', 700, null, 'seller-9')], nextCursor: null });
    const r = await start('/sellers/seller-9');
    expect(r.container.querySelector('h1')!.textContent).toBe('Stuff from this seller');
    expect(listCalls[0]).toEqual({ limit: 20, sellerId: 'seller-9' });
    await step(() => socket.push('stuff:created', item('other', 100, null, 'someone-else')));
    await step(() => (r.byTestId('load-more') as HTMLButtonElement).click());
    expect(listCalls[1]).toEqual({ limit: 20, cursor: 'cur-s', sellerId: 'seller-9' });
    expect(cardIds(r)).toEqual(['s1', 's2']);
    r.unmount();
    session.stop();

    const e = await start('/sellers/nobody');
    expect(e.byTestId('seller-empty')!.textContent).toBe('This seller has nothing listed right now.');
    e.unmount();
  });

  it('shows the course on the stuff page as a link to the filtered catalogue, and links to the seller', async () => {
    const p = await start('/stuff/s1', false, (s) => s.responders.set('stuff:get', () => ({ data: item('s1', 500, 'CS 101') })));
    const course = p.byTestId('course-link') as HTMLAnchorElement;
    expect(course.textContent).toBe('CS 101');
    expect(course.getAttribute('href')).toBe('/?course=CS%20101');
    const seller = p.byTestId('seller-link') as HTMLAnchorElement;
    expect(seller.textContent).toBe('More from this seller');
    expect(seller.getAttribute('href')).toBe('/sellers/seller-9');
    listCalls = [];
    // The stuff page shows no chips: the courses are asked for when the catalogue opens.
    expect(courseCalls).toBe(0);
    await step(() => course.click());
    expect(window.location.pathname + window.location.search).toBe('/?course=CS%20101');
    expect(listCalls[0]).toEqual({ limit: 20, course: 'CS 101' });
    expect(courseCalls).toBe(1);
    p.unmount();
  });

  it('sends the course on sell, suggests known courses, and shows the 400 on the field', async () => {
    // The suggestions are the catalogue's courses (stuff:courses), the most listed first.
    courses = [{ course: 'MATH 2', count: 4 }, { course: 'CS 101', count: 1 }];
    const r = await start('/sell', true);
    expect(courseCalls).toBe(1);
    expect(listCalls).toEqual([]);
    const input = r.byTestId('course-input') as HTMLInputElement;
    expect(r.container.querySelector('label[for="field-course"]')!.textContent).toBe('Course (optional)');
    expect(input.getAttribute('placeholder')).toBe('CS 101');
    const listId = input.getAttribute('list')!;
    const options = Array.from(r.container.querySelectorAll(`datalist#${listId} option`)).map((o) => o.getAttribute('value'));
    expect(options).toEqual(['MATH 2', 'CS 101']);

    socket.responders.set('stuff:create', () => ({
      status: 400,
      errors: [{ message: 'Course must be 2 to 20 letters, digits, spaces or dashes', field: 'course' }],
    }));
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => typeInto(r.byTestId('price-input') as HTMLInputElement, '12.50'));
    act(() => typeInto(input, '  cs   101 '));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:create')!.payload).toEqual({ title: 'Notes', priceCents: 1250, course: 'CS 101' });
    expect(r.byTestId('error-course')!.textContent).toBe('Course must be 2 to 20 letters, digits, spaces or dashes');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(input);

    // The same rule in the browser: nothing is sent.
    const sent = socket.emitted.length;
    act(() => typeInto(input, 'CS/101'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.emitted.filter((e) => e.event === 'stuff:create')).toHaveLength(1);
    expect(socket.emitted.length).toBe(sent);
    expect(r.byTestId('error-course')!.textContent).toBe('Course must be 2 to 20 letters, digits, spaces or dashes');
    r.unmount();
  });

  it('edits the course: sent only when changed, and "" removes it', async () => {
    courses = [{ course: 'CS 101', count: 2 }, { course: 'BIO 1', count: 1 }];
    const own = { ...item('s1', 500, 'CS 101', alice.id) };
    const e = await start('/stuff/s1/edit', true, (s) => {
      s.responders.set('stuff:get', () => ({ data: own }));
      s.responders.set('stuff:update', (p) => ({ data: { ...own, ...(p as object), version: 2 } }));
    });
    const input = e.byTestId('course-input') as HTMLInputElement;
    expect(input.value).toBe('CS 101');
    // The same suggestions as the sell form.
    const options = Array.from(e.container.querySelectorAll(`datalist#${input.getAttribute('list')} option`)).map((o) => o.getAttribute('value'));
    expect(options).toEqual(['CS 101', 'BIO 1']);
    expect(courseCalls).toBe(1);
    await step(() => (e.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:update')!.payload).not.toHaveProperty('course');

    window.history.replaceState(null, '', '/stuff/s1/edit');
    await step(() => window.dispatchEvent(new PopStateEvent('popstate')));
    const again = e.byTestId('course-input') as HTMLInputElement;
    act(() => typeInto(again, ''));
    await step(() => (e.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:update')!.payload).toMatchObject({ id: 's1', course: '' });
    e.unmount();
  });
});
