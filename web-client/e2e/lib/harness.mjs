// Shared pieces of the browser tests: the browser, one context per actor, wait helpers that fail
// with a clear message (and a screenshot of every open page), and the UI flows the tests reuse.
// Run through `npm run e2e` (e2e/run.mjs), which starts the system and sets E2E_BASE_URL.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE_URL = process.env.E2E_BASE_URL ?? '';
const RESULTS = process.env.E2E_RESULTS_DIR ?? 'test-results';
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

export const DESKTOP = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };
/** A phone: 390x844 CSS pixels, 2x pixels, touch, mobile viewport rules (`actor(label, PHONE)`). */
export const PHONE = { viewport: NARROW, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };
/** The smallest tap target (CSS pixels, both ways) on a phone: Apple's and WCAG 2.5.5's 44 px. */
export const MIN_TAP_PX = 44;
export const PASSWORD = 'e2e-password-123';

/** A UI change pushed by the server should show up well within this (debug builds, 2 cores). */
export const LIVE_MS = 10_000;
/** Page loads and request round trips. */
export const STEP_MS = 15_000;

export const CHECKED_OUT_MESSAGE = 'The stuff is being checked out by someone else, please come back later';
export const NOTHING_TO_DELIVER_MESSAGE = 'This stuff has nothing to deliver yet';

/**
 * What `sell()` puts in the private note unless told otherwise: a stuff with neither a file nor a
 * note cannot be bought (409 `This stuff has nothing to deliver yet`).
 */
export const DEFAULT_SECRET_NOTE = 'Thank you for buying! (e2e)';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];

/** The axe-core rule tags every page is checked against. */
export const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
let axeScript = null;
function axeSource() {
  axeScript ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  return axeScript;
}

/** Unique per run and per call: `label-<time>-<random>@e2e.example.com`. */
export function uniqueEmail(label) {
  return `${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}@e2e.example.com`;
}

export function uniqueTitle(label) {
  return `${label} ${randomBytes(3).toString('hex')}`;
}

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** A file of `size` random bytes in `dir`; returns its path, name, bytes and SHA-256. */
export function randomFile(dir, name, size = 200 * 1024) {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, name, bytes, sha: sha256(bytes) };
}

/**
 * Clicks (or, with `tap: true`, taps) a download link and returns the downloaded bytes and the
 * browser's file name.
 */
export async function download(actor, link, what, { tap = false } = {}) {
  const [dl] = await Promise.all([actor.page.waitForEvent('download', { timeout: STEP_MS }), tap ? link.tap() : link.click()]);
  const failure = await dl.failure();
  if (failure) throw new Error(`[${actor.label}] the download of ${what} failed: ${failure}`);
  const path = await dl.path();
  return { bytes: readFileSync(path), name: dl.suggestedFilename() };
}

/** BUY, then pay with the Visa test card at once (the e2e hold is 3 s); returns the order id. */
export async function buyAndPay(buyer) {
  const boughtAt = Date.now();
  const orderId = await buyer.buy();
  await buyer.tid('payment-method-pm_card_visa').check();
  await buyer.tid('pay-button').click();
  const paidAfterMs = Date.now() - boughtAt;
  await buyer.see('[data-testid="order-page"][data-status="complete"]', 'the order page with status complete', STEP_MS).catch(async (e) => {
    const err = await buyer.tid('payment-error').textContent().catch(() => null);
    throw new Error(`${e.message}${err ? `; payment error shown: "${err}"` : ''} (Pay was clicked ${paidAfterMs} ms after BUY; the hold is 3 s)`);
  });
  return orderId;
}

/** How many orders a test places before it gives up on paying within the 3 s hold. */
export const PAY_ATTEMPTS = 4;

/** BUY and pay with pm_card_visa; orders again (up to PAY_ATTEMPTS times) when the 3 s hold ran out first. */
export async function buyAndPayWithRetries(buyer, id, title) {
  for (let attempt = 1; ; attempt += 1) {
    await buyer.openItem(id, title);
    try {
      return await buyAndPay(buyer);
    } catch (e) {
      const cancelled = (await buyer.page.locator('[data-testid="order-page"][data-status="cancelled"]').count()) > 0;
      if (!cancelled || attempt >= PAY_ATTEMPTS) throw e;
      console.log(`[${buyer.label}] paying: the hold ran out first (order ${attempt}); ordering again`);
    }
  }
}

/**
 * Loads `url` until `locator()` reads `expected`: for what changes in `stuff:get` without a
 * push to pages already open (a rename, a review).
 */
export async function seeAfterReloads(actor, url, ready, locator, expected, what, timeoutMs = 2 * STEP_MS) {
  let loads = 0;
  await until(
    `[${actor.label}] expected ${what} to read ${JSON.stringify(expected)} on ${url}, loading it again every 0.5 s`,
    async () => {
      loads += 1;
      await actor.page.goto(url);
      await actor.see(ready, `the page ${url}`, STEP_MS);
      const text = ((await locator().first().textContent({ timeout: 2000 })) ?? '').trim();
      return text === expected;
    },
    timeoutMs,
    500,
  );
  if (loads > 1) console.log(`[${actor.label}] ${what} read ${JSON.stringify(expected)} after ${loads} loads of ${url}`);
}

/** Waits for the delivery in `scope` to be loaded (note and/or links shown). */
export async function seeDelivery(actor, scope, what) {
  await actor.see(scope.locator('[data-testid="delivery"][data-loaded="true"]'), what, STEP_MS).catch(async (e) => {
    const err = await scope.getByTestId('delivery-error').textContent().catch(() => null);
    throw new Error(`${e.message}${err ? `; delivery error shown: "${err}"` : ''}`);
  });
}

function slug(s) {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 60);
}

/**
 * Polls `probe` (sync or async) until it returns a truthy value, or fails after `timeoutMs` with
 * `what` and the last value seen. Returns the truthy value.
 */
export async function until(what, probe, timeoutMs = LIVE_MS, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (last) return last;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const detail = lastError ? `last error: ${lastError.message.split('\n')[0]}` : `last value: ${JSON.stringify(last)}`;
  throw new Error(`${what} (waited ${timeoutMs} ms; ${detail})`);
}

/**
 * One test scenario: its own browser, actors (each a browser context with one page), numbered
 * screenshots under test-results/e2e/<scenario>/, and a screenshot of every page on failure.
 */
export class Scenario {
  constructor(name) {
    this.name = name;
    this.dir = join(RESULTS, 'e2e', slug(name));
    this.shotCount = 0;
    this.actors = [];
    this.pageErrors = [];
    this.browser = null;
    this.axeCount = 0;
  }

  async start() {
    if (!BASE_URL) throw new Error('E2E_BASE_URL is not set: run the browser tests with `npm run e2e`');
    mkdirSync(this.dir, { recursive: true });
    this.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  }

  /**
   * A person with their own browser context (own cookies, own socket). `viewport` defaults to
   * DESKTOP; `isMobile`, `hasTouch` and `deviceScaleFactor` emulate a phone (see PHONE).
   */
  async actor(label, { viewport = DESKTOP, isMobile = false, hasTouch = false, deviceScaleFactor = 1 } = {}) {
    const context = await this.browser.newContext({
      baseURL: BASE_URL,
      viewport,
      isMobile,
      hasTouch,
      deviceScaleFactor,
      locale: 'en-GB',
      timezoneId: 'UTC',
    });
    context.setDefaultTimeout(STEP_MS);
    const page = await context.newPage();
    const actor = new Actor(this, label, context, page);
    page.on('pageerror', (err) => {
      const msg = `[${label}] uncaught error in the page: ${err.message}`;
      this.pageErrors.push(msg);
      console.error(msg);
    });
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      // Expected: the silent session restore on every page load answers 401 when nobody is signed in.
      if (m.location()?.url?.endsWith('/api/users/refresh') && m.text().includes('401')) return;
      console.error(`[${label}] console.error: ${m.text()} (${m.location()?.url ?? 'unknown source'})`);
    });
    this.actors.push(actor);
    return actor;
  }

  async shot(page, name, { fullPage = false } = {}) {
    this.shotCount += 1;
    const file = join(this.dir, `${String(this.shotCount).padStart(2, '0')}-${slug(name)}.png`);
    await page.screenshot({ path: file, fullPage });
    return file;
  }

  async failureShots() {
    for (const a of this.actors) {
      try {
        await a.page.screenshot({ path: join(this.dir, `FAILED-${slug(a.label)}.png`), fullPage: true });
        console.error(`[${a.label}] at ${a.page.url()} when the test failed`);
      } catch {
        /* page already gone */
      }
    }
  }

  async close() {
    for (const a of this.actors) await a.context.close().catch(() => undefined);
    await this.browser?.close().catch(() => undefined);
  }

  assertNoPageErrors() {
    if (this.pageErrors.length) throw new Error(`uncaught errors in the pages:\n${this.pageErrors.join('\n')}`);
  }
}

/**
 * Declares a test that gets a fresh Scenario; on failure every page is screenshotted, and the
 * browser is always closed.
 */
export function scenario(name, fn, { timeoutMs = 180_000 } = {}) {
  test(name, { timeout: timeoutMs }, async () => {
    const sc = new Scenario(name);
    try {
      await sc.start();
      await fn(sc);
      sc.assertNoPageErrors();
    } catch (e) {
      await sc.failureShots();
      throw e;
    } finally {
      await sc.close();
    }
  });
}

export class Actor {
  constructor(scenario, label, context, page) {
    this.scenario = scenario;
    this.label = label;
    this.context = context;
    this.page = page;
    this.email = null;
  }

  tid(id) {
    return this.page.getByTestId(id);
  }

  /** Waits until `selector` is visible; the message names the actor and the page. */
  async see(selector, what, timeoutMs = LIVE_MS) {
    const loc = typeof selector === 'string' ? this.page.locator(selector) : selector;
    try {
      await loc.first().waitFor({ state: 'visible', timeout: timeoutMs });
    } catch {
      throw new Error(`[${this.label}] expected to see ${what} within ${timeoutMs} ms, on ${this.page.url()}`);
    }
    return loc.first();
  }

  /** Waits until the text of `locator` is exactly `expected` (whitespace-trimmed). */
  async seeText(locator, expected, what, timeoutMs = LIVE_MS) {
    await until(
      `[${this.label}] expected ${what} to read ${JSON.stringify(expected)}, on ${this.page.url()}`,
      async () => {
        const text = ((await locator.first().textContent({ timeout: 500 })) ?? '').trim();
        return text === expected ? text : null;
      },
      timeoutMs,
    );
  }

  async shot(name, opts) {
    return this.scenario.shot(this.page, `${this.label}-${name}`, opts);
  }

  async waitConnected() {
    await this.see('[data-testid="connection-status"][data-state="connected"]', 'the live connection (connection-status connected)', STEP_MS);
  }

  /** Marks the current document; `assertNotReloaded` fails if the page was reloaded since. */
  async markDocument() {
    await this.page.evaluate(() => {
      window.__e2eDocumentMark = true;
    });
  }

  async assertNotReloaded(what) {
    const marked = await this.page.evaluate(() => window.__e2eDocumentMark === true);
    if (!marked) throw new Error(`[${this.label}] the page was reloaded, but ${what} must happen live`);
  }

  /** Signs up through the form and waits for the header to show the account. */
  async signUp(email = uniqueEmail(this.label)) {
    const { page } = this;
    await page.goto('/signup');
    await this.see('[data-testid="signup-form"]', 'the sign-up form', STEP_MS);
    await page.locator('#field-email').fill(email);
    await page.locator('#field-password').fill(PASSWORD);
    await this.tid('signup-submit').click();
    await this.seeText(this.tid('current-user-email'), email, 'the signed-in e-mail in the header', STEP_MS);
    await this.waitConnected();
    this.email = email;
    return email;
  }

  /** Signs up, or signs in when the account exists already (a fixed e-mail such as the admin's). */
  async signUpOrIn(email) {
    const { page } = this;
    await page.goto('/signup');
    await this.see('[data-testid="signup-form"]', 'the sign-up form', STEP_MS);
    await page.locator('#field-email').fill(email);
    await page.locator('#field-password').fill(PASSWORD);
    await this.tid('signup-submit').click();
    const outcome = await until(
      `[${this.label}] sign-up of ${email} neither succeeded nor said "Email in use"`,
      async () => {
        if ((await this.tid('current-user-email').count()) > 0) return 'signed-up';
        const err = this.tid('error-email');
        if ((await err.count()) > 0 && (await err.textContent())?.includes('Email in use')) return 'in-use';
        return null;
      },
      STEP_MS,
    );
    if (outcome === 'in-use') {
      await page.goto('/signin');
      await page.locator('#field-email').fill(email);
      await page.locator('#field-password').fill(PASSWORD);
      await this.tid('signin-submit').click();
    }
    await this.seeText(this.tid('current-user-email'), email, 'the signed-in e-mail in the header', STEP_MS);
    await this.waitConnected();
    this.email = email;
    return email;
  }

  /**
   * Lists an item through the sell form (reached from the header); returns its id. `secretNote`
   * (null: none) and `files` (paths, chosen with the file input) are what buyers get; the files
   * upload after the stuff is created, then the stuff page opens. `beforeSubmit` runs with the
   * form filled in and the files chosen.
   */
  async sell({ title, price, description, secretNote = DEFAULT_SECRET_NOTE, files = [], beforeSubmit }) {
    const { page } = this;
    await this.tid('nav-sell').click();
    await this.see('[data-testid="sell-form"]', 'the sell form', STEP_MS);
    await this.tid('title-input').fill(title);
    await this.tid('price-input').fill(price);
    if (description) await this.tid('description-input').fill(description);
    if (secretNote) await this.tid('secret-note-input').fill(secretNote);
    if (files.length) {
      await this.tid('file-input').setInputFiles(files);
      await until(
        `[${this.label}] expected ${files.length} chosen file(s) ready to upload`,
        async () => (await page.locator('[data-testid="upload-item"][data-state="queued"]').count()) === files.length,
        STEP_MS,
      );
    }
    await this.scenario.shot(page, `${this.label}-sell-form-filled`, { fullPage: files.length > 0 });
    if (beforeSubmit) await beforeSubmit();
    await this.tid('stuff-submit').click();
    await page.waitForURL(/\/stuff\/[^/]+$/, { timeout: STEP_MS + files.length * 10_000 }).catch(async () => {
      const banner = await this.tid('form-error').textContent().catch(() => null);
      const uploads = await page
        .locator('[data-testid="upload-error"]')
        .allTextContents()
        .catch(() => []);
      throw new Error(
        `[${this.label}] the sell form did not lead to the new item's page${banner ? `; banner: ${banner}` : ''}${
          uploads.length ? `; upload errors: ${uploads.join(' | ')}` : ''
        }`,
      );
    });
    await this.see('[data-testid="own-stuff"]', 'the new item page saying "You are selling this"', STEP_MS);
    await this.seeText(this.tid('stuff-title'), title, 'the new item title');
    return decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  }

  /** Opens the catalogue in this context and waits for the first page of items. */
  async openCatalogue() {
    await this.page.goto('/');
    await this.see('[data-testid="catalogue-list"], [data-testid="catalogue-empty"]', 'the catalogue', STEP_MS);
    await this.waitConnected();
  }

  /** Opens an item page by URL (a full page load) and waits until it shows the item. */
  async openItem(id, title) {
    await this.page.goto(`/stuff/${encodeURIComponent(id)}`);
    await this.see('[data-testid="stuff-page"]', `the item page of ${title}`, STEP_MS);
    await this.seeText(this.tid('stuff-title'), title, 'the item title');
    await this.waitConnected();
  }

  itemStatus(status) {
    return `[data-testid="stuff-page"][data-status="${status}"]`;
  }

  /** Waits until the item page shows `status` with its badge text. */
  async seeItemStatus(status, label, timeoutMs = LIVE_MS) {
    await this.see(this.itemStatus(status), `the item page with status ${status}`, timeoutMs);
    await this.seeText(this.page.locator('[data-testid="stuff-page"] [data-testid="status-badge"]'), label, 'the status badge', timeoutMs);
  }

  /** Clicks BUY and waits for the new order's page; returns the order id. */
  async buy() {
    const { page } = this;
    const button = this.tid('buy-button');
    await until(`[${this.label}] expected an enabled BUY button`, async () => (await button.isEnabled()) && (await button.textContent())?.trim() === 'BUY', LIVE_MS);
    await button.click();
    await page.waitForURL(/\/orders\/[^/]+$/, { timeout: STEP_MS }).catch(async () => {
      const err = await this.tid('buy-error').textContent().catch(() => null);
      throw new Error(`[${this.label}] BUY did not lead to an order page${err ? `; error shown: ${err}` : ''}`);
    });
    await this.see('[data-testid="order-page"]', 'the order page', STEP_MS);
    return decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
  }

  /**
   * Runs axe-core (WCAG 2.x A and AA rules) on the current page; fails with every violation, its
   * elements and axe's summary. The full result goes to test-results/e2e/<scenario>/axe-NN-<what>.json.
   */
  async checkA11y(what) {
    const { page } = this;
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
      await page.addScriptTag({ content: axeSource() });
    }
    const violations = await page.evaluate(async (tags) => {
      const result = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
      return result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        helpUrl: v.helpUrl,
        nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html.slice(0, 200), summary: n.failureSummary })),
      }));
    }, AXE_TAGS);
    this.scenario.axeCount += 1;
    const file = join(this.scenario.dir, `axe-${String(this.scenario.axeCount).padStart(2, '0')}-${slug(`${this.label}-${what}`)}.json`);
    writeFileSync(file, JSON.stringify({ url: page.url(), what, tags: AXE_TAGS, violations }, null, 2));
    if (violations.length) {
      const lines = violations.map(
        (v) => `  - ${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `      ${n.target}: ${(n.summary ?? '').replace(/\s+/g, ' ')}`).join('\n')}`,
      );
      throw new Error(`[${this.label}] axe found ${violations.length} accessibility violation(s) on ${what} (${page.url()}):\n${lines.join('\n')}`);
    }
  }

  /**
   * Fails when the page scrolls sideways: `document.documentElement.scrollWidth` must not exceed
   * `window.innerWidth`. With `isMobile` (PHONE) Chromium widens the layout viewport to fit content
   * that is too wide (then zooms out), so `innerWidth` grows with the overflow; the check therefore
   * also holds `innerWidth` and `scrollWidth` to the context's viewport width and to the root's
   * `clientWidth`. Names the elements that stick out past the right edge.
   */
  async assertNoHorizontalOverflow(what) {
    const viewportWidth = this.page.viewportSize()?.width ?? Infinity;
    const r = await this.page.evaluate(() => {
      const root = document.documentElement;
      const limit = Math.min(window.innerWidth, root.clientWidth);
      const wide = [];
      for (const el of document.querySelectorAll('body *')) {
        const b = el.getBoundingClientRect();
        if (b.width > 0 && b.right > limit + 0.5 && wide.length < 10) {
          const id = el.getAttribute('data-testid') ?? el.id ?? '';
          const cls = typeof el.className === 'string' && el.className.trim() ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
          wide.push(`${el.tagName.toLowerCase()}${id ? `[${id}]` : ''}${cls} (right edge ${Math.round(b.right)} px)`);
        }
      }
      return { scrollWidth: root.scrollWidth, innerWidth: window.innerWidth, clientWidth: root.clientWidth, wide };
    });
    const limit = Math.min(r.innerWidth, r.clientWidth, viewportWidth);
    if (r.scrollWidth > r.innerWidth || r.scrollWidth > limit || r.innerWidth > viewportWidth) {
      throw new Error(
        `[${this.label}] ${what} scrolls sideways on a ${viewportWidth} px wide screen: scrollWidth ${r.scrollWidth}, innerWidth ${r.innerWidth}, clientWidth ${r.clientWidth} (${this.page.url()}); wider than the screen: ${r.wide.join(', ') || 'nothing visible'}`,
      );
    }
  }

  /**
   * Fails when a visible control (button, button-styled link or label, form field, the header's
   * links, a download link) is smaller than MIN_TAP_PX in either direction. Inline links inside
   * a sentence are not checked (WCAG 2.5.8 exempts them).
   */
  async assertTapTargets(what) {
    const small = await this.page.evaluate((min) => {
      const controls = document.querySelectorAll(
        'button, .button, select, textarea, input:not([type="file"]):not([type="radio"]):not([type="checkbox"]), .radio label, header a, a.download-link, a.tap-link',
      );
      const out = [];
      for (const el of controls) {
        if (el.closest('.visually-hidden, .skip-link')) continue;
        const b = el.getBoundingClientRect();
        if (b.width === 0 || b.height === 0) continue;
        if (b.width < min - 0.5 || b.height < min - 0.5) {
          const id = el.getAttribute('data-testid') ?? '';
          const text = (el.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 40);
          out.push(`${el.tagName.toLowerCase()}${id ? `[${id}]` : ''} "${text}" ${Math.round(b.width)}x${Math.round(b.height)}`);
        }
      }
      return out;
    }, MIN_TAP_PX);
    if (small.length) {
      throw new Error(`[${this.label}] tap targets under ${MIN_TAP_PX} px on ${what} (${this.page.url()}):\n  ${small.join('\n  ')}`);
    }
  }

  /** On a phone: no sideways scrolling, tap targets of at least MIN_TAP_PX, axe-core clean; a full-page screenshot. */
  async checkPhonePage(what) {
    await this.shot(what, { fullPage: true });
    await this.assertNoHorizontalOverflow(what);
    await this.assertTapTargets(what);
    await this.checkA11y(what);
  }

  async seeOrderStatus(status, label, timeoutMs = LIVE_MS) {
    await this.see(`[data-testid="order-page"][data-status="${status}"]`, `the order page with status ${status}`, timeoutMs);
    await this.seeText(this.tid('order-status'), label, 'the order status badge', timeoutMs);
  }
}
