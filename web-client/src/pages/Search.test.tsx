// @vitest-environment happy-dom
// The catalogue's search box (issue 16, search): debounced typing, `?q=` in the URL with one
// history entry per search, best match as the default order, the empty result and its way out,
// and live pushes while searching.
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff, StuffPage } from '../api/types';
import { FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, typeInto, choose, back } from '../test/render';
import { App } from '../App';
import { SEARCH_DEBOUNCE_MS } from './CataloguePage';

const item = (id: string, title = `Title ${id}`, course: string | null = null, version = 1): Stuff => ({
  id,
  title,
  description: '',
  priceCents: 500,
  sellerId: 'seller-9',
  status: 'available',
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  course,
});




describe('the catalogue search box', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let pages: StuffPage[];
  let listCalls: Record<string, unknown>[];
  let courseCalls: number;

  const start = async (path: string) => {
    window.history.replaceState(null, '', path);
    session = new SessionManager({ http: new FakeHttp(), createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    listCalls = [];
    courseCalls = 0;
    socket.responders.set('stuff:courses', () => {
      courseCalls += 1;
      return { data: [{ course: 'ZOO 1', count: 2 }] };
    });
    socket.responders.set('stuff:list', (p) => {
      listCalls.push(p as Record<string, unknown>);
      return { data: pages.shift() ?? { items: [], nextCursor: null } };
    });
    const r = render(
      <SessionProvider session={session}>
        <App />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };
  const input = (r: { byTestId: (id: string) => HTMLElement | null }) => r.byTestId('search-input') as HTMLInputElement;
  const sortControl = (r: { byTestId: (id: string) => HTMLElement | null }) => r.byTestId('sort-order') as HTMLSelectElement;
  const cardIds = (r: { container: HTMLElement }) =>
    Array.from(r.container.querySelectorAll('[data-testid^="stuff-card-"]')).map((e) => e.getAttribute('data-testid')!.slice('stuff-card-'.length));
  /** Time passes (fake timers), then effects and answers settle. */
  const wait = (ms: number) => step(() => vi.advanceTimersByTime(ms));

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    pages = [];
  });
  afterEach(() => {
    session.stop();
    vi.useRealTimers();
  });

  it('is a labelled search field of at most 100 characters', async () => {
    const r = await start('/');
    const box = input(r);
    expect(box.type).toBe('search');
    expect(box.maxLength).toBe(100);
    expect(r.container.querySelector(`label[for="${box.id}"]`)!.textContent).toBe('Search');
    expect(r.container.querySelector('form[role="search"]')).not.toBeNull();
    r.unmount();
  });

  it('searches once typing pauses, pushes one history entry per search, and Back restores the list', async () => {
    pages.push({ items: [item('a'), item('b')], nextCursor: null });
    const r = await start('/');
    expect(listCalls).toEqual([{ limit: 20 }]);
    const entries = window.history.length;

    // Keystrokes closer together than the debounce: nothing is asked, the URL stays.
    for (const text of ['l', 'li', 'lin']) {
      act(() => typeInto(input(r), text));
      await wait(SEARCH_DEBOUNCE_MS - 50);
    }
    expect(listCalls).toHaveLength(1);
    expect(window.location.search).toBe('');

    pages.push({ items: [item('lin1', 'Linear things')], nextCursor: null });
    await wait(50);
    expect(listCalls[1]).toEqual({ limit: 20, q: 'lin' });
    expect(window.location.search).toBe('?q=lin');
    expect(window.history.length).toBe(entries + 1);
    expect(cardIds(r)).toEqual(['lin1']);

    // Typing on: the same entry is replaced, not another pushed.
    pages.push({ items: [item('la1', 'Linear algebra notes'), item('la2', 'Algebra, linear')], nextCursor: null });
    act(() => typeInto(input(r), 'lin alg'));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(listCalls[2]).toEqual({ limit: 20, q: 'lin alg' });
    expect(window.location.search).toBe('?q=lin%20alg');
    expect(window.history.length).toBe(entries + 1);
    expect(cardIds(r)).toEqual(['la1', 'la2']);
    expect(r.byTestId('filter-summary')!.textContent).toBe('Stuff matching “lin alg”, best match first.');

    // Back: the list before the search, and the box empty again.
    pages.push({ items: [item('a'), item('b')], nextCursor: null });
    await step(back);
    expect(window.location.search).toBe('');
    expect(listCalls[3]).toEqual({ limit: 20 });
    expect(input(r).value).toBe('');
    expect(cardIds(r)).toEqual(['a', 'b']);
    expect(sortControl(r).value).toBe('newest');
    r.unmount();
  });

  it('searches at once on Enter; the next typing is a new history entry', async () => {
    const r = await start('/');
    const entries = window.history.length;
    act(() => typeInto(input(r), 'calc'));
    await step(() => r.container.querySelector('form[role="search"]')!.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true })));
    expect(listCalls[1]).toEqual({ limit: 20, q: 'calc' });
    expect(window.location.search).toBe('?q=calc');
    expect(window.history.length).toBe(entries + 1);
    act(() => typeInto(input(r), 'calculus'));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(window.location.search).toBe('?q=calculus');
    expect(window.history.length).toBe(entries + 2);
    // A trailing space or a word-less change asks nothing new.
    act(() => typeInto(input(r), 'calculus '));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(listCalls).toHaveLength(3);
    expect(input(r).value).toBe('calculus ');
    r.unmount();
  });

  it('shows "Best match" while searching, sends a chosen price sort, and keeps the course', async () => {
    const r = await start('/?course=CS%20101');
    expect(Array.from(sortControl(r).options).map((o) => o.textContent)).toEqual(['Newest', 'Price: low to high', 'Price: high to low', 'Best rated']);
    act(() => typeInto(input(r), 'lin alg'));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(window.location.search).toBe('?q=lin%20alg&course=CS%20101');
    expect(listCalls[1]).toEqual({ limit: 20, q: 'lin alg', course: 'CS 101' });
    expect(sortControl(r).value).toBe('best');
    expect(sortControl(r).selectedOptions[0]!.textContent).toBe('Best match');

    await step(() => choose(sortControl(r), 'priceAsc'));
    expect(window.location.search).toBe('?q=lin%20alg&course=CS%20101&sort=priceAsc');
    expect(listCalls[2]).toEqual({ limit: 20, q: 'lin alg', course: 'CS 101', sort: 'priceAsc' });

    // Newest is not the default while searching: it is sent.
    await step(() => choose(sortControl(r), 'newest'));
    expect(window.location.search).toBe('?q=lin%20alg&course=CS%20101&sort=newest');
    expect(listCalls[3]).toEqual({ limit: 20, q: 'lin alg', course: 'CS 101', sort: 'newest' });

    await step(() => choose(sortControl(r), 'best'));
    expect(window.location.search).toBe('?q=lin%20alg&course=CS%20101');
    expect(listCalls[4]).toEqual({ limit: 20, q: 'lin alg', course: 'CS 101' });

    // A sort change ended that search's entry: typing again is a new search with its own entry.
    const entries = window.history.length;
    act(() => typeInto(input(r), 'linear'));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(window.location.search).toBe('?q=linear&course=CS%20101');
    expect(window.history.length).toBe(entries + 1);
    r.unmount();
  });

  it('keeps a price sort chosen before searching, and pages on with q and the sort', async () => {
    pages.push({ items: [item('a')], nextCursor: null });
    pages.push({ items: [item('x')], nextCursor: 'cur-q' }, { items: [item('y')], nextCursor: null });
    const r = await start('/?sort=priceDesc');
    act(() => typeInto(input(r), 'exam'));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(window.location.search).toBe('?q=exam&sort=priceDesc');
    expect(listCalls[1]).toEqual({ limit: 20, q: 'exam', sort: 'priceDesc' });
    await step(() => (r.byTestId('load-more') as HTMLButtonElement).click());
    expect(listCalls[2]).toEqual({ limit: 20, cursor: 'cur-q', q: 'exam', sort: 'priceDesc' });
    expect(cardIds(r)).toEqual(['x', 'y']);
    r.unmount();
  });

  it('opens a shared search link with the search in the box', async () => {
    const r = await start('/?q=lin%20alg');
    expect(input(r).value).toBe('lin alg');
    expect(listCalls[0]).toEqual({ limit: 20, q: 'lin alg' });
    expect(sortControl(r).value).toBe('best');
    // The chips offer every course (stuff:courses, asked once), not only those found; the list is
    // asked for nothing else.
    expect(courseCalls).toBe(1);
    expect(listCalls).toHaveLength(1);
    expect(r.container.querySelector('[data-testid="course-chip"][data-course="ZOO 1"]')!.getAttribute('href')).toBe('/?q=lin%20alg&course=ZOO%201');
    r.unmount();
  });

  it('says when nothing matches, and clears the search (keeping the course)', async () => {
    pages.push({ items: [], nextCursor: null });
    const r = await start('/?q=zzz%20top&course=CS%20101');
    const empty = r.byTestId('catalogue-empty')!;
    expect(empty.textContent).toContain('Nothing matches “zzz top” in CS 101.');
    const clear = r.byTestId('clear-search') as HTMLAnchorElement;
    expect(clear.textContent).toBe('Clear the search');
    expect(clear.getAttribute('href')).toBe('/?course=CS%20101');
    pages.push({ items: [item('c', 'Title c', 'CS 101')], nextCursor: null });
    await step(() => clear.click());
    expect(window.location.search).toBe('?course=CS%20101');
    expect(listCalls[1]).toEqual({ limit: 20, course: 'CS 101' });
    expect(input(r).value).toBe('');
    expect(document.activeElement).toBe(input(r));
    expect(cardIds(r)).toEqual(['c']);
    expect(sortControl(r).value).toBe('newest');
    r.unmount();
  });

  it('clears the search when the box is emptied', async () => {
    const r = await start('/?q=lin');
    act(() => typeInto(input(r), ''));
    await wait(SEARCH_DEBOUNCE_MS);
    expect(window.location.search).toBe('');
    expect(listCalls[1]).toEqual({ limit: 20 });
    r.unmount();
  });

  it('adds no pushed stuff to a search result, but applies updates to what it shows', async () => {
    pages.push({ items: [item('a', 'Linear algebra'), item('b', 'Linear maps')], nextCursor: null });
    const r = await start('/?q=linear');
    await step(() => socket.push('stuff:created', item('n', 'Linear algebra, new')));
    expect(cardIds(r)).toEqual(['a', 'b']);
    await step(() => socket.push('stuff:updated', { ...item('a', 'Linear algebra', null, 2), status: 'reserved' }));
    expect(r.byTestId('stuff-card-a')!.getAttribute('data-status')).toBe('reserved');
    await step(() => socket.push('stuff:updated', { ...item('b', 'Linear maps', null, 2), status: 'withdrawn' }));
    expect(cardIds(r)).toEqual(['a']);
    r.unmount();
  });
});
