// Shared pieces of the browser tests: the browser, one context per actor, wait helpers that fail
// with a clear message (and a screenshot of every open page), and the UI flows the tests reuse.
// Run through `npm run e2e` (e2e/run.mjs), which starts the system and sets E2E_BASE_URL.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

export const BASE_URL = process.env.E2E_BASE_URL ?? '';
const RESULTS = process.env.E2E_RESULTS_DIR ?? 'test-results';
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';

export const DESKTOP = { width: 1280, height: 800 };
export const NARROW = { width: 390, height: 844 };
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

  /** A person with their own browser context (own cookies, own socket). */
  async actor(label, { viewport = DESKTOP } = {}) {
    const context = await this.browser.newContext({ baseURL: BASE_URL, viewport, locale: 'en-GB', timezoneId: 'UTC' });
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

  async seeOrderStatus(status, label, timeoutMs = LIVE_MS) {
    await this.see(`[data-testid="order-page"][data-status="${status}"]`, `the order page with status ${status}`, timeoutMs);
    await this.seeText(this.tid('order-status'), label, 'the order status badge', timeoutMs);
  }
}
