// @vitest-environment happy-dom
// Browsing by course, sort and seller (issue 16): the catalogue's URL, chips and sort, the seller
// page, the stuff page's links and the forms' Course field.
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff, StuffPage } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, typeInto, choose, back } from '../test/render';
import { App } from '../App';
import { knownCourses } from '../api/browse';
import { COURSES_PAGE_SIZE } from '../api/catalogue-react';

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
  let seedCalls: number;
  let seedPage: StuffPage;

  /** Opens `path` in the whole app; `setup` adds responders before the socket connects. */
  const start = async (path: string, signedIn = false, setup: (s: FakeSocket) => void = () => undefined) => {
    window.history.replaceState(null, '', path);
    const http = new FakeHttp();
    if (signedIn) http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    listCalls = [];
    seedCalls = 0;
    socket.responders.set('stuff:list', (p) => {
      // A page asked only to learn the courses (the whole catalogue, 100 items) is answered apart.
      if ((p as { limit?: number }).limit === COURSES_PAGE_SIZE) {
        seedCalls += 1;
        return { data: seedPage };
      }
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
    seedPage = { items: [], nextCursor: null };
    knownCourses.reset();
  });
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
    pages.push({ items: [item('a', 900, 'CS 101'), item('m', 300, 'MATH 2'), item('n', 100, null)], nextCursor: null });
    const r = await start('/');
    expect(listCalls[0]).toEqual({ limit: 20 });
    const chips = Array.from(r.container.querySelectorAll<HTMLAnchorElement>('[data-testid="course-chip"]'));
    expect(chips.map((c) => c.textContent)).toEqual(expect.arrayContaining(['CS 101', 'MATH 2']));
    expect(r.byTestId('course-chip-all')!.getAttribute('aria-current')).toBe('page');
    const cs = chips.find((c) => c.textContent === 'CS 101')!;
    expect(cs.getAttribute('href')).toBe('/?course=CS%20101');

    pages.push({ items: [item('a', 900, 'CS 101'), item('c', 400, 'CS 101')], nextCursor: null });
    await step(() => cs.click());
    expect(window.location.search).toBe('?course=CS%20101');
    expect(listCalls[1]).toEqual({ limit: 20, course: 'CS 101' });
    expect(cardIds(r)).toEqual(['a', 'c']);
    const active = r.container.querySelector('[data-testid="course-chip"][aria-current="page"]')!;
    expect(active.textContent).toBe('CS 101');
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

  it('learns the other courses once when opened on a link filtered by a course nobody else loaded', async () => {
    seedPage = { items: [item('z', 100, 'ZOO 1'), item('y', 100, 'YOGA 3')], nextCursor: null };
    pages.push({ items: [item('q', 900, 'QUANT 7')], nextCursor: null });
    const r = await start('/?course=QUANT%207');
    expect(listCalls).toEqual([{ limit: 20, course: 'QUANT 7' }]);
    expect(seedCalls).toBe(1);
    const chip = (c: string) => r.container.querySelector(`[data-testid="course-chip"][data-course="${c}"]`);
    expect(chip('ZOO 1')!.getAttribute('href')).toBe('/?course=ZOO%201');
    expect(chip('YOGA 3')).not.toBeNull();
    expect(chip('QUANT 7')!.getAttribute('aria-current')).toBe('page');
    expect(cardIds(r)).toEqual(['q']);
    r.unmount();
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
    await step(() => course.click());
    expect(window.location.pathname + window.location.search).toBe('/?course=CS%20101');
    expect(listCalls[0]).toEqual({ limit: 20, course: 'CS 101' });
    p.unmount();
  });

  it('sends the course on sell, suggests known courses, and shows the 400 on the field', async () => {
    // Opened first: the form asks one page of the catalogue only to learn its courses.
    seedPage = { items: [item('a', 500, 'CS 101'), item('m', 300, 'MATH 2')], nextCursor: null };
    const r = await start('/sell', true);
    expect(seedCalls).toBe(1);
    const input = r.byTestId('course-input') as HTMLInputElement;
    expect(r.container.querySelector('label[for="field-course"]')!.textContent).toBe('Course (optional)');
    expect(input.getAttribute('placeholder')).toBe('CS 101');
    const listId = input.getAttribute('list')!;
    const options = Array.from(r.container.querySelectorAll(`datalist#${listId} option`)).map((o) => o.getAttribute('value'));
    expect(options).toEqual(expect.arrayContaining(['CS 101', 'MATH 2']));

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
    const own = { ...item('s1', 500, 'CS 101', alice.id) };
    const e = await start('/stuff/s1/edit', true, (s) => {
      s.responders.set('stuff:get', () => ({ data: own }));
      s.responders.set('stuff:update', (p) => ({ data: { ...own, ...(p as object), version: 2 } }));
    });
    const input = e.byTestId('course-input') as HTMLInputElement;
    expect(input.value).toBe('CS 101');
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
