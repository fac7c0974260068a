// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket, FakeXhr } from '../test/fakes';
import { render, step, typeInto } from '../test/render';
import { DEFAULT_CURRENCY, setCurrency } from '../api/format';
import { SellPage, validateStuff } from './StuffFormPages';


describe('validateStuff', () => {
  it('parses the price to cents and checks the contract limits', () => {
    expect(validateStuff({ title: ' Notes ', price: '12.50', description: '' })).toEqual({ fields: {}, priceCents: 1250 });
    expect(validateStuff({ title: '', price: '12.505', description: '' }).fields).toEqual({
      title: 'Enter a title',
      priceCents: 'Enter a price like 12.50',
    });
    expect(validateStuff({ title: 'x', price: '0', description: '' }).fields.priceCents).toMatch(/between/);
    expect(validateStuff({ title: 'x', price: '12,50 €', description: '' })).toEqual({ fields: {}, priceCents: 1250 });
    expect(validateStuff({ title: 'x'.repeat(121), price: '1', description: 'y'.repeat(2001) }).fields).toMatchObject({
      title: expect.stringMatching(/120/),
      description: expect.stringMatching(/2000/),
    });
  });
});

describe('the minimum price (Stripe charges at least 0.50)', () => {
  afterEach(() => setCurrency(DEFAULT_CURRENCY));

  it('refuses 0.49 and takes 0.50, with the limits in the user\'s currency', () => {
    const v = (price: string, currency?: string) => validateStuff({ title: 'x', price, description: '' }, currency);
    expect(v('0.49').fields.priceCents).toBe('Price must be between €0.50 and €1,000,000.00');
    expect(v('0,49 €').fields.priceCents).toBe('Price must be between €0.50 and €1,000,000.00');
    expect(v('0.50')).toEqual({ fields: {}, priceCents: 50 });
    expect(v('1000000')).toEqual({ fields: {}, priceCents: 100_000_000 });
    expect(v('1000000.01').fields.priceCents).toMatch(/^Price must be between/);
    expect(v('0.49', 'usd').fields.priceCents).toBe('Price must be between $0.50 and $1,000,000.00');
    // The current currency is the default.
    setCurrency('gbp');
    expect(v('0.49').fields.priceCents).toBe('Price must be between £0.50 and £1,000,000.00');
    // Zero-decimal: amounts are whole yen; the contract's 50 is ¥50.
    expect(v('49', 'jpy').fields.priceCents).toBe('Price must be between ¥50 and ¥100,000,000');
    expect(v('1,250', 'jpy')).toEqual({ fields: {}, priceCents: 1250 });
    expect(v('12.50', 'jpy').fields.priceCents).toBe('Enter a price like 1250');
  });
});

describe('<SellPage>', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    window.history.replaceState(null, '', '/sell');
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
  });
  afterEach(() => session.stop());

  it('shows server field errors next to their fields, focuses the first, and other errors in a banner', async () => {
    socket.responders.set('stuff:create', () => ({
      status: 400,
      errors: [
        { message: 'Price must be at most 100000000 cents', field: 'priceCents' },
        { message: 'Title is not allowed', field: 'title' },
        { message: 'Slow down', field: 'somethingElse' },
      ],
    }));
    const r = render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => typeInto(r.byTestId('price-input') as HTMLInputElement, '12.50'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());

    expect(socket.lastEmitted('stuff:create')!.payload).toEqual({ title: 'Notes', priceCents: 1250 });
    expect(r.byTestId('error-title')!.textContent).toBe('Title is not allowed');
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Price must be at most 100000000 cents');
    const title = r.byTestId('title-input')!;
    expect(title.getAttribute('aria-invalid')).toBe('true');
    expect(title.getAttribute('aria-describedby')).toContain('error-title');
    expect(document.activeElement).toBe(title);
    const banner = r.byTestId('form-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toBe('Slow down');
    // Labels are tied to inputs.
    expect(r.container.querySelector('label[for="field-title"]')!.textContent).toBe('Title');
    r.unmount();
  });

  it('validates on the client before sending', async () => {
    const r = render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => typeInto(r.byTestId('price-input') as HTMLInputElement, 'cheap'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:create')).toBeUndefined();
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Enter a price like 12.50');
    expect(document.activeElement).toBe(r.byTestId('price-input'));
    r.unmount();
  });

  it('refuses 0.49 before sending, labels the price with the currency, and follows the server currency', async () => {
    const r = render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    const price = r.byTestId('price-input') as HTMLInputElement;
    expect(r.container.querySelector('label[for="field-priceCents"]')!.textContent).toBe('Price (€)');
    expect(r.container.querySelector('#hint-priceCents')!.textContent).toBe('For example 12.50; at least €0.50');
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => typeInto(price, '0.49'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:create')).toBeUndefined();
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Price must be between €0.50 and €1,000,000.00');
    expect(price.getAttribute('aria-invalid')).toBe('true');
    expect(price.getAttribute('aria-describedby')).toBe('hint-priceCents error-priceCents');
    expect(document.activeElement).toBe(price);

    // The server's currency arrives: label, hint and checks follow it.
    await step(() => setCurrency('usd'));
    expect(r.container.querySelector('label[for="field-priceCents"]')!.textContent).toBe('Price ($)');
    expect(r.container.querySelector('#hint-priceCents')!.textContent).toBe('For example 12.50; at least $0.50');
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Price must be between $0.50 and $1,000,000.00');

    // The server's own message, on the field, when it disagrees.
    socket.responders.set('stuff:create', () => ({
      status: 400,
      errors: [{ message: 'Price must be a whole number of cents between 50 and 100000000', field: 'priceCents' }],
    }));
    act(() => typeInto(price, '$0.50'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:create')!.payload).toEqual({ title: 'Notes', priceCents: 50 });
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Price must be a whole number of cents between 50 and 100000000');
    setCurrency(DEFAULT_CURRENCY);
    r.unmount();
  });
});

describe('<SellPage> with a private note and files', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  const created: Stuff = {
    id: 'new1',
    title: 'Notes',
    description: '',
    priceCents: 1250,
    sellerId: alice.id,
    status: 'available',
    version: 1,
    createdAt: '2026-11-01T12:00:00Z',
    updatedAt: '2026-11-01T12:00:00Z',
    files: [],
    hasSecretNote: true,
  };

  beforeEach(async () => {
    window.history.replaceState(null, '', '/sell');
    FakeXhr.reset();
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:create', () => ({ data: created }));
  });
  afterEach(() => {
    session.stop();
    vi.unstubAllGlobals();
  });

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );

  function drop(zone: HTMLElement, files: File[]) {
    const ev = new Event('drop', { bubbles: true, cancelable: true });
    Object.defineProperty(ev, 'dataTransfer', { value: { files, dropEffect: 'none' } });
    zone.dispatchEvent(ev);
  }

  async function fillAndSubmit(r: ReturnType<typeof mount>) {
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => typeInto(r.byTestId('price-input') as HTMLInputElement, '12.50'));
    act(() => typeInto(r.byTestId('secret-note-input') as HTMLTextAreaElement, 'Licence: XYZ'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
  }

  it('creates the stuff with the note, uploads each file with a progress bar, then opens the stuff page', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.container.querySelector('label[for="field-secretNote"]')!.textContent).toBe('Private note for buyers (optional)');
    expect(r.container.querySelector('label[for="field-file"]')!.textContent).toBe('Choose files');
    const a = new File([new Uint8Array(100)], 'a.pdf', { type: 'application/pdf' });
    const b = new File([new Uint8Array(50)], 'b.zip', { type: 'application/zip' });
    await step(() => drop(r.byTestId('file-drop-zone')!, [a, b]));
    const rows = () => Array.from(r.container.querySelectorAll('[data-testid="upload-item"]'));
    expect(rows().map((x) => x.getAttribute('data-name'))).toEqual(['a.pdf', 'b.zip']);
    expect(rows()[0]!.querySelector('[data-testid="upload-state"]')!.textContent).toBe('Ready to upload');
    expect(rows()[0]!.querySelector('progress')).toBeNull();
    expect(FakeXhr.all).toHaveLength(0); // nothing is sent before the stuff exists

    await fillAndSubmit(r);
    expect(socket.lastEmitted('stuff:create')!.payload).toEqual({ title: 'Notes', priceCents: 1250, secretNote: 'Licence: XYZ' });
    expect(r.byTestId('sell-uploading')).not.toBeNull();
    expect(FakeXhr.all).toHaveLength(1); // one after the other
    expect(FakeXhr.last().url).toBe('/api/stuff/new1/files');
    await step(() => FakeXhr.last().progress(50, 100));
    const bar = rows()[0]!.querySelector('progress')!;
    expect(bar.getAttribute('value')).toBe('50');
    expect(bar.getAttribute('aria-label')).toBe('Upload of a.pdf');
    await step(() => FakeXhr.last().respond(201, { file: { id: 'f1', name: 'a.pdf', sizeBytes: 100, contentType: 'application/pdf', sha256: '00' } }));
    expect(FakeXhr.all).toHaveLength(2);
    expect((FakeXhr.last().body!.get('file') as File).name).toBe('b.zip');
    expect(window.location.pathname).toBe('/sell');
    await step(() => FakeXhr.last().respond(201, { file: { id: 'f2', name: 'b.zip', sizeBytes: 50, contentType: 'application/zip', sha256: '01' } }));
    expect(window.location.pathname).toBe('/stuff/new1');
    r.unmount();
  });

  it('keeps failed uploads on screen with their reasons and a link to the stuff page', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    const big = new File([new Uint8Array(1)], 'huge.mov');
    Object.defineProperty(big, 'size', { value: 60 * 1024 * 1024 });
    const ok = new File([new Uint8Array(10)], 'ok.txt');
    const input = r.byTestId('file-input') as HTMLInputElement;
    Object.defineProperty(input, 'files', { value: [big, ok], configurable: true });
    await step(() => input.dispatchEvent(new Event('change', { bubbles: true })));
    const first = r.container.querySelector('[data-testid="upload-item"]')!;
    expect(first.getAttribute('data-state')).toBe('failed');
    expect(first.querySelector('[role="alert"]')!.textContent).toBe('File too large');

    await fillAndSubmit(r);
    expect(FakeXhr.all).toHaveLength(1);
    await step(() => FakeXhr.last().respond(413, { errors: [{ message: 'File too large' }] }));
    expect(window.location.pathname).toBe('/sell');
    expect(r.byTestId('sell-upload-failures')!.textContent).toContain('2 files were not uploaded');
    expect(r.byTestId('go-to-stuff')!.getAttribute('href')).toBe('/stuff/new1');
    r.unmount();
  });

  it('more than 10 files: the extra ones are marked and never sent; without files it opens the stuff page at once', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    const files = Array.from({ length: 12 }, (_, i) => new File([new Uint8Array(1)], `f${i}.txt`));
    await step(() => drop(r.byTestId('file-drop-zone')!, files));
    const states = Array.from(r.container.querySelectorAll('[data-testid="upload-item"]')).map((x) => x.getAttribute('data-state'));
    expect(states.filter((s) => s === 'queued')).toHaveLength(10);
    expect(states.slice(10)).toEqual(['failed', 'failed']);
    expect(r.container.querySelectorAll('[data-testid="upload-error"]')[0]!.textContent).toBe('A stuff can have at most 10 files');
    r.unmount();

    const r2 = mount();
    await step(() => socket.acceptConnect());
    await fillAndSubmit(r2);
    expect(window.location.pathname).toBe('/stuff/new1');
    r2.unmount();
  });
});
