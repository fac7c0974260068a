// Browsing by course, price and seller (issue 16, "Marketplace").
//
// - A seller lists three items (each with the default private note, so all can be bought) with
//   the courses "cs 101" (the server keeps it as CS 101), "CS 101" and "MATH 2", at 9.00, 4.00
//   and 6.00, typed into the sell form's Course field.
// - A visitor (not signed in) opens the catalogue: every card shows its course. The CS 101 chip
//   filters it (the URL reads `?course=CS%20101`): both CS 101 items, not MATH 2. axe-core on the
//   filtered catalogue.
// - Sorting by "Price: low to high" puts the 4.00 item before the 9.00 one (`&sort=priceAsc`).
// - Back returns to CS 101 newest first, Back again to the unfiltered catalogue (MATH 2 again).
// - The visitor opens the "cs 101" item: its course reads CS 101 and links to the filtered
//   catalogue; Back, then "More from this seller" opens `/sellers/{id}`, headed by the seller's
//   display name (the e-mail's local part), which lists all three, newest first. axe-core on the
//   seller page.
// - On a phone (390x844, touch), opened on the shared link `?course=CS%20101&sort=priceAsc`: the
//   MATH 2 chip is offered too (the chips come from `stuff:courses`); the filtered catalogue and the
//   seller page must not scroll sideways, have tap targets of at least 44x44 px and pass axe-core.

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
  await until(
    `[${actor.label}] expected ${what}: ${expected.join(', ')}`,
    async () => {
      const order = await shownOrder(actor, ids);
      return order.join(',') === expected.join(',') ? order : null;
    },
    STEP_MS,
  );
}

/** Waits for the URL's path and query to be `expected` (the course written with %20). */
async function seeUrl(actor, expected) {
  await until(
    `[${actor.label}] expected the address ${expected}`,
    async () => {
      const u = new URL(actor.page.url());
      return u.pathname + u.search === expected ? expected : null;
    },
    STEP_MS,
  );
}

scenario('browse: course chips, price sort and Back in the URL, the course link and the seller page', async (sc) => {
  const seller = await sc.actor('seller');
  await seller.signUp();

  const items = [
    { key: 'lower', course: 'cs 101', title: uniqueTitle('Intro to programming notes'), price: '9.00' },
    { key: 'upper', course: 'CS 101', title: uniqueTitle('CS 101 past exams'), price: '4.00' },
    { key: 'math', course: 'MATH 2', title: uniqueTitle('Calculus II summary'), price: '6.00' },
  ];
  const id = {};
  for (const it of items) {
    id[it.key] = await seller.sell({
      title: it.title,
      price: it.price,
      beforeSubmit: async () => {
        await seller.tid('course-input').fill(it.course);
        if (it.key === 'lower') await seller.shot('sell-form-with-course');
      },
    });
    // Shown as the server keeps it: upper-case.
    await seller.seeText(seller.tid('course-link'), it.course.toUpperCase(), `the course of ${it.title} on its page`);
  }
  const ids = [id.lower, id.upper, id.math];
  const cs101 = '/?course=CS%20101';

  // The unfiltered catalogue: every card with its course.
  const visitor = await sc.actor('visitor');
  await visitor.openCatalogue();
  await seeOrder(visitor, ids, [id.math, id.upper, id.lower], 'all three items, newest first');
  await visitor.seeText(visitor.tid(`stuff-card-${id.lower}`).getByTestId('course-badge'), 'Course CS 101', 'the course of the "cs 101" card');
  await visitor.seeText(visitor.tid(`stuff-card-${id.math}`).getByTestId('course-badge'), 'Course MATH 2', 'the course of the MATH 2 card');
  await visitor.shot('catalogue');

  // The CS 101 chip: the URL says so, and MATH 2 leaves the list.
  const chip = visitor.page.locator('[data-testid="course-chip"][data-course="CS 101"]');
  await visitor.see(chip, 'the CS 101 chip');
  if ((await visitor.page.locator('[data-testid="course-chip"][data-course="CS 101"]').count()) !== 1) {
    throw new Error('[visitor] "cs 101" and "CS 101" must be one chip');
  }
  await chip.click();
  await seeUrl(visitor, cs101);
  await seeOrder(visitor, ids, [id.upper, id.lower], 'the two CS 101 items, newest first');
  await visitor.see('[data-testid="course-chip"][data-course="CS 101"][aria-current="page"]', 'the CS 101 chip marked as the current filter');
  await visitor.shot('catalogue-cs-101');
  await visitor.checkA11y('catalogue filtered by CS 101');

  // Price: low to high.
  await visitor.tid('sort-order').selectOption('priceAsc');
  await seeUrl(visitor, `${cs101}&sort=priceAsc`);
  await seeOrder(visitor, ids, [id.upper, id.lower], 'the CS 101 items, 4.00 before 9.00');
  const prices = await visitor.page.locator('[data-testid="catalogue-list"] [data-testid="price"]').allTextContents();
  const cents = prices.map((p) => Number(p.replace(/[^0-9]/g, '')));
  if (cents.some((c, i) => i > 0 && c < cents[i - 1])) throw new Error(`[visitor] prices not low to high: ${prices.join(', ')}`);
  await visitor.shot('catalogue-cs-101-price-low-to-high');
  await visitor.checkA11y('catalogue filtered by CS 101, price low to high');

  // Back: CS 101 newest first, then everything.
  await visitor.page.goBack();
  await seeUrl(visitor, cs101);
  await seeOrder(visitor, ids, [id.upper, id.lower], 'CS 101 newest first again after Back');
  if ((await visitor.tid('sort-order').inputValue()) !== 'newest') throw new Error('[visitor] the sort control did not follow Back');
  await visitor.page.goBack();
  await seeUrl(visitor, '/');
  await seeOrder(visitor, ids, [id.math, id.upper, id.lower], 'the unfiltered catalogue after Back');
  await visitor.see('[data-testid="course-chip-all"][aria-current="page"]', '"All courses" marked as current');

  // The "cs 101" item's page: its course links to the filtered catalogue.
  await visitor.tid(`stuff-card-${id.lower}`).getByTestId('stuff-link').click();
  await visitor.see('[data-testid="stuff-page"]', 'the stuff page', STEP_MS);
  await visitor.seeText(visitor.tid('stuff-title'), items[0].title, 'the stuff title');
  await visitor.seeText(visitor.tid('course-link'), 'CS 101', 'the course link');
  await visitor.shot('stuff-page');
  await visitor.tid('course-link').click();
  await seeUrl(visitor, cs101);
  await seeOrder(visitor, ids, [id.upper, id.lower], 'the CS 101 items from the course link');

  // Back to the stuff page, then "More from this seller".
  await visitor.page.goBack();
  await visitor.seeText(visitor.tid('stuff-title'), items[0].title, 'the stuff title after Back');
  const sellerHref = await visitor.tid('seller-link').getAttribute('href');
  if (!/^\/sellers\/[^/]+$/.test(sellerHref ?? '')) throw new Error(`[visitor] "More from this seller" goes to ${sellerHref}`);
  await visitor.seeText(visitor.tid('seller-link'), 'More from this seller', 'the seller link');
  await visitor.tid('seller-link').click();
  await seeUrl(visitor, sellerHref);
  await visitor.see('[data-testid="seller-list"]', 'the seller page list', STEP_MS);
  // Headed by the seller's name as their stuff tells it: the e-mail's local part (never renamed here).
  const sellerName = seller.email.slice(0, seller.email.lastIndexOf('@'));
  await visitor.seeText(visitor.tid('seller-heading'), sellerName, 'the seller page heading (the seller’s display name)');
  await seeOrder(visitor, ids, [id.math, id.upper, id.lower], "the seller's three items, newest first");
  const onPage = await visitor.page.locator('[data-testid="seller-list"] [data-testid^="stuff-card-"]').count();
  if (onPage !== 3) throw new Error(`[visitor] the seller page lists ${onPage} items, expected 3`);
  await visitor.shot('seller-page');
  await visitor.checkA11y('seller page');

  // On a phone: the filtered catalogue and the seller page.
  const phone = await sc.actor('visitor-phone', PHONE);
  await phone.page.goto(`${cs101}&sort=priceAsc`);
  await phone.see('[data-testid="catalogue-list"]', 'the filtered catalogue on a phone', STEP_MS);
  await phone.waitConnected();
  await seeOrder(phone, ids, [id.upper, id.lower], 'the CS 101 items, low to high, on a phone');
  await phone.see('[data-testid="course-chip"][data-course="CS 101"][aria-current="page"]', 'the current CS 101 chip on a phone', LIVE_MS);
  // Opened on the shared link, the other course is still one tap away.
  await phone.see('[data-testid="course-chip"][data-course="MATH 2"]', 'the MATH 2 chip on a link filtered by CS 101', LIVE_MS);
  await phone.checkPhonePage('catalogue CS 101 price low to high (390 px)');
  await phone.page.goto(sellerHref);
  await phone.see('[data-testid="seller-list"]', 'the seller page on a phone', STEP_MS);
  await seeOrder(phone, ids, [id.math, id.upper, id.lower], "the seller's items on a phone");
  await phone.checkPhonePage('seller page (390 px)');
});
