// Search (issue 16, `stuff:list {q}`).
//
// - A seller lists four items, oldest first: "Linear algebra notes" (MATH 2, 7.00), "Algebra
//   workbook" (5.50; no word starting with "lin" anywhere), "Linear algebra flashcards" (3.00) and
//   "Exam pack" (5.00, "linear algebra" only in its description). My listings shows the course.
// - A visitor opens the catalogue, then types "lin" into the Search box, pauses, and types " alg"
//   (the partial words of "linear algebra"): the URL reads `?q=lin%20alg`, the sort control shows
//   "Best match", and the list shows the two whose title has every word first (newest first), then
//   the one matching only by its description; the workbook is not there. axe-core on the results.
// - "Price: low to high" (`&sort=priceAsc`) orders the three by price.
// - Back returns to the best matches, Back again to the catalogue before the search (one history
//   entry for the whole typing), with the box empty and the workbook listed again.
// - A search that matches nothing says `Nothing matches “…”`; "Clear the search" brings the list
//   back. axe-core on the empty result.
// - On a phone (390x844, touch), the shared link `/?q=lin%20alg` shows the same best matches; the
//   page must not scroll sideways, must have tap targets of at least 44x44 px and pass axe-core.

import { LIVE_MS, PHONE, STEP_MS, scenario, uniqueTitle, until } from './lib/harness.mjs';

/** The card ids of `ids` in the order the list shows them (other tests' items are ignored). */
async function shownOrder(actor, ids) {
  const all = await actor.page
    .locator('[data-testid^="stuff-card-"]')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-testid').slice('stuff-card-'.length)));
  return all.filter((id) => ids.includes(id));
}

/** Waits until exactly `expected` of `ids` are shown, in that order. */
async function seeOrder(actor, ids, expected, what) {
  let last = [];
  await until(
    `[${actor.label}] expected ${what}: ${expected.join(', ')}`,
    async () => {
      last = await shownOrder(actor, ids);
      return last.join(',') === expected.join(',') ? last : null;
    },
    STEP_MS,
  ).catch((e) => {
    throw new Error(`${e.message}; shown instead: ${last.join(', ') || 'none of them'}`);
  });
}

/** Waits for the URL's path and query to be `expected`. */
async function seeUrl(actor, expected) {
  let last = '';
  await until(
    `[${actor.label}] expected the address ${expected}`,
    async () => {
      const u = new URL(actor.page.url());
      last = u.pathname + u.search;
      return last === expected ? expected : null;
    },
    STEP_MS,
  ).catch((e) => {
    throw new Error(`${e.message}; it is ${last}`);
  });
}

scenario('search: partial words, best matches first, price sort, Back, nothing found, on a phone', async (sc) => {
  const seller = await sc.actor('seller');
  await seller.signUp();

  const items = [
    { key: 'notes', title: uniqueTitle('Linear algebra notes'), price: '7.00', course: 'MATH 2' },
    { key: 'workbook', title: uniqueTitle('Algebra workbook'), price: '5.50', description: 'Exercises with answers' },
    { key: 'cards', title: uniqueTitle('Linear algebra flashcards'), price: '3.00' },
    { key: 'exam', title: uniqueTitle('Exam pack'), price: '5.00', description: 'Past papers for linear algebra, with solutions' },
  ];
  const id = {};
  for (const it of items) {
    id[it.key] = await seller.sell({
      title: it.title,
      price: it.price,
      description: it.description,
      beforeSubmit: it.course ? () => seller.tid('course-input').fill(it.course) : undefined,
    });
  }
  const ids = Object.values(id);
  const bestMatches = [id.cards, id.notes, id.exam];

  // My listings shows each listing's course.
  await seller.tid('nav-selling').click();
  await seller.see('[data-testid="listings"]', 'My listings', STEP_MS);
  await seller.seeText(seller.tid(`listing-${id.notes}`).getByTestId('course-badge'), 'Course MATH 2', 'the course on My listings');
  if ((await seller.tid(`listing-${id.cards}`).getByTestId('course-badge').count()) !== 0) {
    throw new Error('[seller] a listing without a course shows a course badge');
  }
  await seller.shot('my-listings-with-course');

  // The catalogue before any search: newest first, the workbook included.
  const visitor = await sc.actor('visitor');
  await visitor.openCatalogue();
  await seeOrder(visitor, ids, [id.exam, id.cards, id.workbook, id.notes], 'all four items, newest first');

  // Typing "lin", a pause, then " alg": one search, best matches first.
  const box = visitor.page.getByRole('searchbox', { name: 'Search' });
  await visitor.see('[data-testid="search-input"]', 'the Search box');
  if ((await box.getAttribute('maxlength')) !== '100') throw new Error('[visitor] the Search box should take at most 100 characters');
  await box.click();
  await box.pressSequentially('lin', { delay: 40 });
  await seeUrl(visitor, '/?q=lin');
  await box.pressSequentially(' alg', { delay: 40 });
  await seeUrl(visitor, '/?q=lin%20alg');
  await seeOrder(visitor, ids, bestMatches, 'every word in the title first (newest first), then the description match');
  const sortLabel = await visitor.tid('sort-order').evaluate((s) => s.selectedOptions[0]?.textContent);
  if (sortLabel !== 'Best match') throw new Error(`[visitor] the sort control reads "${sortLabel}" while searching, expected "Best match"`);
  await visitor.seeText(visitor.tid('filter-summary'), 'Stuff matching “lin alg”, best match first.', 'the summary of the search');
  await visitor.shot('search-best-match');
  await visitor.checkA11y('search results, best match');

  // Price: low to high.
  await visitor.tid('sort-order').selectOption('priceAsc');
  await seeUrl(visitor, '/?q=lin%20alg&sort=priceAsc');
  await seeOrder(visitor, ids, [id.cards, id.exam, id.notes], 'the matches, 3.00, 5.00 then 7.00');
  await visitor.shot('search-price-low-to-high');
  await visitor.checkA11y('search results, price low to high');

  // Back: the best matches, then the catalogue before the search.
  await visitor.page.goBack();
  await seeUrl(visitor, '/?q=lin%20alg');
  await seeOrder(visitor, ids, bestMatches, 'the best matches again after Back');
  if ((await visitor.tid('sort-order').inputValue()) !== 'best') throw new Error('[visitor] the sort control did not follow Back');
  await visitor.page.goBack();
  await seeUrl(visitor, '/');
  await seeOrder(visitor, ids, [id.exam, id.cards, id.workbook, id.notes], 'the catalogue before the search after Back');
  if ((await box.inputValue()) !== '') throw new Error('[visitor] the Search box still holds a search after Back');

  // Nothing found, and the way back.
  const nothing = `zzq${Date.now().toString(36)} lin`;
  await box.fill(nothing);
  await box.press('Enter');
  await visitor.see('[data-testid="catalogue-empty"][data-search]', 'the empty search result', STEP_MS);
  await visitor.seeText(visitor.tid('catalogue-empty').locator('p').first(), `Nothing matches “${nothing}”.`, 'the empty search message');
  await visitor.shot('search-nothing-matches');
  await visitor.checkA11y('search with no result');
  await visitor.tid('clear-search').click();
  await seeUrl(visitor, '/');
  await seeOrder(visitor, ids, [id.exam, id.cards, id.workbook, id.notes], 'the whole catalogue after Clear the search');

  // On a phone, from a shared link.
  const phone = await sc.actor('visitor-phone', PHONE);
  await phone.page.goto('/?q=lin%20alg');
  await phone.see('[data-testid="catalogue-list"]', 'the search results on a phone', STEP_MS);
  await phone.waitConnected();
  await seeOrder(phone, ids, bestMatches, 'the best matches on a phone');
  if ((await phone.tid('search-input').inputValue()) !== 'lin alg') throw new Error('[visitor-phone] the Search box does not show the shared search');
  await phone.see('[data-testid="sort-order"]', 'the sort control on a phone', LIVE_MS);
  await phone.checkPhonePage('search results (390 px)');
});
