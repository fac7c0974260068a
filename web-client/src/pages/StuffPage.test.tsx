// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { FileMeta, Order, Stuff } from '../api/types';
import { alice, fakeJwt, FakeHttp, FakeSocket, FakeXhr } from '../test/fakes';
import { render, step } from '../test/render';
import { CHECKED_OUT_MESSAGE, StuffPage, WITHDRAWN_MESSAGE } from './StuffPage';

const item = (version: number, status: Stuff['status']): Stuff => ({
  id: 's1',
  title: 'Linear algebra notes',
  description: 'All lectures',
  priceCents: 1250,
  sellerId: 'seller-9',
  status,
  version,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
});

describe('<StuffPage> live status', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:get', () => ({ data: item(1, 'available') }));
    socket.responders.set('order:list', () => ({ data: [] }));
  });
  afterEach(() => session.stop());

  it('disables BUY with the contract message while someone else checks out, then shows Sold', async () => {
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    expect(r.byTestId('status-badge')!.textContent).toBe('Available');
    const buy = () => r.byTestId('buy-button') as HTMLButtonElement;
    expect(buy().disabled).toBe(false);
    expect(buy().textContent).toBe('BUY');
    expect(r.byTestId('buy-blocked-message')).toBeNull();

    await step(() => socket.push('stuff:updated', item(2, 'reserved')));
    expect(r.byTestId('status-badge')!.textContent).toBe('Being checked out');
    expect(buy().disabled).toBe(true);
    expect(r.byTestId('buy-blocked-message')!.textContent).toBe(CHECKED_OUT_MESSAGE);

    // A stale push (older version) arriving late changes nothing.
    await step(() => socket.push('stuff:updated', item(1, 'available')));
    expect(buy().disabled).toBe(true);

    await step(() => socket.push('stuff:updated', item(3, 'sold')));
    expect(r.byTestId('status-badge')!.textContent).toBe('Sold');
    expect(buy().textContent).toBe('Sold');
    expect(buy().disabled).toBe(true);
    expect(r.byTestId('buy-blocked-message')).toBeNull();
    r.unmount();
  });

  it('shows a 409 from order:create as a banner, never raw JSON', async () => {
    socket.responders.set('order:create', () => ({ status: 409, errors: [{ message: 'This stuff has already been sold' }] }));
    socket.responders.set('stuff:get', () => ({ data: item(1, 'available') }));
    const r = render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    await step(() => (r.byTestId('buy-button') as HTMLButtonElement).click());
    const banner = r.byTestId('buy-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('This stuff has already been sold');
    expect(banner.textContent).not.toContain('{');
    r.unmount();
  });
});

const pdf: FileMeta = { id: 'f1', name: 'lectures.pdf', sizeBytes: 1_572_864, contentType: 'application/pdf', sha256: 'ab'.repeat(32) };
const zip: FileMeta = { id: 'f2', name: 'code.zip', sizeBytes: 812, contentType: 'application/zip', sha256: 'cd'.repeat(32) };

describe('<StuffPage> what you get', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('order:list', () => ({ data: [] }));
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );

  it('lists the files with human sizes and types, and says there is a private note', async () => {
    socket.responders.set('stuff:get', () => ({ data: { ...item(1, 'available'), files: [pdf, zip], hasSecretNote: true } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    const section = r.byTestId('what-you-get')!;
    expect(section.querySelector('h2')!.textContent).toBe('What you get');
    const rows = Array.from(section.querySelectorAll('[data-testid^="file-item-"]'));
    expect(rows.map((li) => li.querySelector('[data-testid="file-name"]')!.textContent)).toEqual(['lectures.pdf', 'code.zip']);
    expect(rows.map((li) => li.querySelector('[data-testid="file-size"]')!.textContent)).toEqual(['1.5 MB', '812 B']);
    expect(rows.map((li) => li.querySelector('[data-testid="file-type"]')!.textContent)).toEqual(['PDF', 'ZIP archive']);
    expect(r.byTestId('has-secret-note')!.textContent).toContain('Includes a private note');
    // No links for someone who has not bought it, and no delivery request.
    expect(section.querySelector('a[download]')).toBeNull();
    expect(socket.lastEmitted('delivery:get')).toBeUndefined();
    expect((r.byTestId('buy-button') as HTMLButtonElement).disabled).toBe(false);
    r.unmount();
  });

  it('disables BUY with the contract message when there is nothing to deliver', async () => {
    socket.responders.set('stuff:get', () => ({ data: { ...item(1, 'available'), files: [], hasSecretNote: false } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    const buy = r.byTestId('buy-button') as HTMLButtonElement;
    expect(buy.disabled).toBe(true);
    expect(buy.getAttribute('aria-describedby')).toBe('buy-blocked-message');
    expect(r.byTestId('nothing-to-deliver-message')!.textContent).toBe('This stuff has nothing to deliver yet');
    expect(r.byTestId('has-secret-note')).toBeNull();
    expect(r.byTestId('file-list')).toBeNull();
    // The seller adds a note: BUY opens live.
    await step(() => socket.push('stuff:updated', { ...item(2, 'available'), files: [], hasSecretNote: true }));
    expect(buy.disabled).toBe(false);
    expect(r.byTestId('nothing-to-deliver-message')).toBeNull();
    r.unmount();
  });
});

describe('<StuffPage> for the seller', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let current: Stuff;

  beforeEach(async () => {
    FakeXhr.reset();
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    current = { ...item(1, 'available'), sellerId: alice.id, files: [pdf], hasSecretNote: true };
    socket.responders.set('stuff:get', () => ({ data: current }));
    socket.responders.set('order:list', () => ({ data: [] }));
    socket.responders.set('delivery:get', () => ({
      data: {
        secretNote: 'Old key',
        files: current.files.map((f) => ({ ...f, url: `/api/files/${f.id}?sig=1`, expiresAt: new Date(Date.now() + 300_000).toISOString() })),
      },
    }));
  });
  afterEach(() => {
    session.stop();
    vi.unstubAllGlobals();
  });

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );

  it('shows the files with download links and the current note, and adds a file with a progress bar', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(socket.lastEmitted('delivery:get')!.payload).toEqual({ stuffId: 's1' });
    expect(r.byTestId('what-you-get')).toBeNull();
    const manage = r.byTestId('manage-delivery')!;
    const link = manage.querySelector<HTMLAnchorElement>('[data-testid="download-link"]')!;
    expect(link.getAttribute('href')).toBe('/api/files/f1?sig=1');
    expect(link.textContent).toBe('lectures.pdf (download)');
    expect((r.byTestId('secret-note-input') as HTMLTextAreaElement).value).toBe('Old key');
    // Every control has a label.
    for (const input of Array.from(manage.querySelectorAll('input, textarea'))) {
      expect(manage.querySelector(`label[for="${input.id}"]`), `label for #${input.id}`).not.toBeNull();
    }

    // Choose a file: it uploads at once.
    const input = r.byTestId('file-input') as HTMLInputElement;
    const file = new File([new Uint8Array(1000)], 'extra.txt', { type: 'text/plain' });
    Object.defineProperty(input, 'files', { value: [file], configurable: true });
    await step(() => input.dispatchEvent(new Event('change', { bubbles: true })));
    const xhr = FakeXhr.last();
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/stuff/s1/files');
    expect(xhr.headers.Authorization).toMatch(/^Bearer /);
    await step(() => xhr.progress(400, 1000));
    const row = r.byTestId('upload-item')!;
    expect(row.getAttribute('data-state')).toBe('uploading');
    const bar = row.querySelector('progress')!;
    expect(bar.getAttribute('aria-label')).toBe('Upload of extra.txt');
    expect(bar.getAttribute('value')).toBe('400');
    expect(bar.getAttribute('max')).toBe('1000');
    expect(row.querySelector('[data-testid="upload-state"]')!.textContent).toBe('Uploading 40%');

    const added: FileMeta = { id: 'f3', name: 'extra.txt', sizeBytes: 1000, contentType: 'text/plain', sha256: 'ef'.repeat(32) };
    current = { ...current, version: 2, files: [pdf, added] };
    const gets = socket.emitted.filter((e) => e.event === 'stuff:get').length;
    await step(() => xhr.respond(201, { file: added }));
    expect(row.getAttribute('data-state')).toBe('done');
    // The page re-reads the stuff (the push normally brings it too) and shows the new file.
    expect(socket.emitted.filter((e) => e.event === 'stuff:get').length).toBe(gets + 1);
    await step();
    expect(r.byTestId('file-item-f3')).not.toBeNull();
    r.unmount();
  });

  it('a file over 50 MiB is refused before sending; Cancel aborts a running upload', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    const input = r.byTestId('file-input') as HTMLInputElement;
    const big = new File([new Uint8Array(1)], 'video.mp4', { type: 'video/mp4' });
    Object.defineProperty(big, 'size', { value: 50 * 1024 * 1024 + 1 });
    const small = new File([new Uint8Array(10)], 'a.txt', { type: 'text/plain' });
    Object.defineProperty(input, 'files', { value: [big, small], configurable: true });
    await step(() => input.dispatchEvent(new Event('change', { bubbles: true })));
    const rows = r.container.querySelectorAll('[data-testid="upload-item"]');
    expect(rows[0]!.getAttribute('data-state')).toBe('failed');
    const err = rows[0]!.querySelector('[data-testid="upload-error"]')!;
    expect(err.textContent).toBe('File too large');
    expect(err.getAttribute('role')).toBe('alert');
    expect(FakeXhr.all).toHaveLength(1); // only the small one
    expect(FakeXhr.last().body!.get('file')).toMatchObject({ name: 'a.txt' });
    await step(() => (rows[1]!.querySelector('[data-testid="upload-cancel"]') as HTMLButtonElement).click());
    expect(FakeXhr.last().aborted).toBe(true);
    expect(rows[1]!.getAttribute('data-state')).toBe('cancelled');
    r.unmount();
  });

  it('while reserved: nothing can change, and it says why; when sold: only new versions', async () => {
    current = { ...current, status: 'reserved', version: 2 };
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(r.byTestId('files-locked')!.textContent).toContain('checking this out');
    const remove = r.byTestId('remove-file') as HTMLButtonElement;
    expect(remove.disabled).toBe(true);
    expect(remove.getAttribute('aria-describedby')).toBe('files-locked-message');
    expect((r.byTestId('new-version-input') as HTMLInputElement).disabled).toBe(true);
    expect((r.byTestId('file-input') as HTMLInputElement).disabled).toBe(true);
    expect((r.byTestId('secret-note-input') as HTMLTextAreaElement).disabled).toBe(true);
    expect((r.byTestId('save-secret-note') as HTMLButtonElement).disabled).toBe(true);

    await step(() => socket.push('stuff:updated', { ...current, status: 'sold', version: 3 }));
    await step();
    expect(r.byTestId('files-locked')).toBeNull();
    expect(r.byTestId('files-sold')).not.toBeNull();
    expect(r.byTestId('remove-file')).toBeNull();
    expect(r.byTestId('file-input')).toBeNull();
    const newVersion = r.byTestId('new-version-input') as HTMLInputElement;
    expect(newVersion.disabled).toBe(false);
    expect(r.container.querySelector(`label[for="${newVersion.id}"]`)!.textContent).toBe('New version of lectures.pdf');

    const file = new File([new Uint8Array(5)], 'lectures-v2.pdf', { type: 'application/pdf' });
    Object.defineProperty(newVersion, 'files', { value: [file], configurable: true });
    await step(() => newVersion.dispatchEvent(new Event('change', { bubbles: true })));
    expect(FakeXhr.last().method).toBe('PUT');
    expect(FakeXhr.last().url).toBe('/api/stuff/s1/files/f1');
    expect(r.byTestId('upload-item')!.textContent).toContain('new version of lectures.pdf');
    await step(() => FakeXhr.last().respond(200, { file: { ...pdf, sha256: '99'.repeat(32) } }));
    expect(r.byTestId('upload-item')!.getAttribute('data-state')).toBe('done');
    r.unmount();
  });

  it('removes a file after confirming, and saves or removes the private note', async () => {
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal('fetch', fetchMock);
    socket.responders.set('stuff:update', (p) => ({ data: { ...current, version: current.version + 1, hasSecretNote: !!(p as { secretNote: string }).secretNote } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    await step(() => (r.byTestId('remove-file') as HTMLButtonElement).click());
    expect(fetchMock).not.toHaveBeenCalled();
    await step(() => (r.byTestId('confirm-remove-file') as HTMLButtonElement).click());
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/stuff/s1/files/f1');
    expect(init.method).toBe('DELETE');

    const note = r.byTestId('secret-note-input') as HTMLTextAreaElement;
    act(() => {
      Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(note, 'New key');
      note.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await step(() => (r.byTestId('save-secret-note') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:update')!.payload).toEqual({ id: 's1', version: 1, secretNote: 'New key' });
    expect(r.byTestId('secret-note-saved')!.textContent).toBe('Private note saved.');

    act(() => {
      Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value')!.set!.call(note, '   ');
      note.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await step(() => (r.byTestId('save-secret-note') as HTMLButtonElement).click());
    expect((socket.lastEmitted('stuff:update')!.payload as { secretNote: string }).secretNote).toBe('');
    expect(r.byTestId('secret-note-saved')!.textContent).toBe('Private note removed.');
    r.unmount();
  });

  it('shows a server refusal of an upload next to the file', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    const input = r.byTestId('file-input') as HTMLInputElement;
    Object.defineProperty(input, 'files', { value: [new File([new Uint8Array(3)], 'eleventh.txt')], configurable: true });
    await step(() => input.dispatchEvent(new Event('change', { bubbles: true })));
    await step(() => FakeXhr.last().respond(409, { errors: [{ message: 'A stuff can have at most 10 files' }] }));
    const row = r.byTestId('upload-item')!;
    expect(row.getAttribute('data-state')).toBe('failed');
    expect(row.querySelector('[role="alert"]')!.textContent).toBe('A stuff can have at most 10 files');
    expect(row.textContent).not.toContain('{');
    r.unmount();
  });
});

describe('<StuffPage> withdrawn', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let current: Stuff;

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    current = item(1, 'available');
    socket.responders.set('stuff:get', () => ({ data: current }));
    socket.responders.set('order:list', () => ({ data: [] }));
    socket.responders.set('delivery:get', () => ({ data: { secretNote: 'Key', files: [] } }));
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );

  it('a buyer reads "No longer for sale" and gets no BUY button, also when it is withdrawn while open', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('buy-button')).not.toBeNull();
    await step(() => socket.push('stuff:updated', item(2, 'withdrawn')));
    expect(r.byTestId('stuff-page')!.getAttribute('data-status')).toBe('withdrawn');
    expect(r.byTestId('status-badge')!.textContent).toBe('No longer for sale');
    expect(r.byTestId('buy-button')).toBeNull();
    expect(r.byTestId('withdrawn-message')!.getAttribute('role')).toBe('status');
    expect(r.byTestId('what-you-get')).toBeNull();
    r.unmount();
  });

  it('a 409 "no longer for sale" from order:create is shown once, by the page that now says withdrawn', async () => {
    socket.responders.set('order:create', () => {
      current = item(2, 'withdrawn');
      return { status: 409, errors: [{ message: WITHDRAWN_MESSAGE }] };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => (r.byTestId('buy-button') as HTMLButtonElement).click());
    await step();
    expect(r.byTestId('status-badge')!.textContent).toBe('No longer for sale');
    expect(r.byTestId('buy-button')).toBeNull();
    // The withdrawn message says it; the banner does not repeat the same fact.
    expect(r.byTestId('buy-error')).toBeNull();
    r.unmount();

    // While the page still thinks it is available, the 409 shows as a banner (like every 409).
    socket.responders.set('order:create', () => ({ status: 409, errors: [{ message: WITHDRAWN_MESSAGE }] }));
    socket.responders.set('stuff:get', () => ({ data: item(1, 'available') }));
    const r2 = mount();
    await step(() => socket.acceptConnect());
    await step(() => (r2.byTestId('buy-button') as HTMLButtonElement).click());
    expect(r2.byTestId('buy-error')!.textContent).toContain(WITHDRAWN_MESSAGE);
    r2.unmount();
  });

  it('the seller withdraws after confirming; the page shows Withdrawn and no Edit', async () => {
    current = { ...item(1, 'available'), sellerId: alice.id, files: [pdf] };
    socket.responders.set('stuff:withdraw', () => ({ data: { ...current, status: 'withdrawn', version: 2 } }));
    const r = mount();
    await step(() => socket.acceptConnect());
    const open = r.byTestId('withdraw-button') as HTMLButtonElement;
    expect(open.textContent).toBe('Withdraw… Linear algebra notes');
    await step(() => open.click());
    expect(socket.lastEmitted('stuff:withdraw')).toBeUndefined();
    const box = r.byTestId('withdraw-confirmation')!;
    expect(box.getAttribute('role')).toBe('group');
    expect(document.getElementById(box.getAttribute('aria-labelledby')!)!.textContent).toContain('Withdraw “Linear algebra notes”?');
    expect(document.activeElement).toBe(r.byTestId('withdraw-confirm'));

    // "Keep it for sale" gives the focus back to the button.
    await step(() => (r.byTestId('withdraw-keep') as HTMLButtonElement).click());
    expect(r.byTestId('withdraw-confirmation')).toBeNull();
    expect(document.activeElement).toBe(r.byTestId('withdraw-button'));

    await step(() => (r.byTestId('withdraw-button') as HTMLButtonElement).click());
    await step(() => (r.byTestId('withdraw-confirm') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:withdraw')!.payload).toEqual({ id: 's1' });
    expect(r.byTestId('stuff-page')!.getAttribute('data-status')).toBe('withdrawn');
    expect(r.byTestId('status-badge')!.textContent).toBe('Withdrawn');
    expect(r.byTestId('own-stuff')!.textContent).toContain('no longer for sale');
    expect(document.activeElement).toBe(r.byTestId('own-stuff'));
    expect(r.byTestId('edit-link')).toBeNull();
    expect(r.byTestId('withdraw-button')).toBeNull();
    expect(r.byTestId('files-sold')!.textContent).toContain('Withdrawn');
    // Nothing changes on a withdrawn stuff (the server refuses edits and files with 409).
    expect(r.byTestId('file-input')).toBeNull();
    expect((r.byTestId('new-version-input') as HTMLInputElement).disabled).toBe(true);
    expect(r.byTestId('remove-file')).toBeNull();
    expect((r.byTestId('secret-note-input') as HTMLTextAreaElement).disabled).toBe(true);
    r.unmount();
  });

  it('a refused withdrawal (someone is checking it out) is an alert with the focus, and the page catches up', async () => {
    current = { ...item(1, 'available'), sellerId: alice.id };
    socket.responders.set('stuff:withdraw', () => {
      current = { ...current, status: 'reserved', version: 2 };
      return { status: 409, errors: [{ message: 'Cannot edit a stuff while it is being checked out' }] };
    });
    const r = mount();
    await step(() => socket.acceptConnect());
    await step(() => (r.byTestId('withdraw-button') as HTMLButtonElement).click());
    await step(() => (r.byTestId('withdraw-confirm') as HTMLButtonElement).click());
    await step();
    const banner = r.byTestId('withdraw-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toContain('Cannot edit a stuff while it is being checked out');
    expect(document.activeElement).toBe(banner);
    expect(r.byTestId('status-badge')!.textContent).toBe('Being checked out');
    expect(r.byTestId('withdraw-button')).toBeNull();
    r.unmount();
  });
});

describe('<StuffPage> PDF page counts and previews', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let orders: Order[];
  let current: Stuff;

  const notes: FileMeta = {
    ...pdf,
    pages: 12,
    previewUrls: ['/api/previews/s1/p1.jpg', '/api/previews/s1/p2.jpg', '/api/previews/s1/p3.jpg'],
  };
  const single: FileMeta = { ...pdf, id: 'f5', name: 'summary.pdf', pages: 1, previewUrls: [] };
  const order = (status: Order['status']): Order => ({
    id: 'o1',
    stuffId: 's1',
    userId: alice.id,
    status,
    expiresAt: '2026-11-01T12:10:00Z',
    priceCents: 1250,
    version: 2,
    createdAt: '2026-11-01T12:00:00Z',
    stuffTitle: 'Linear algebra notes',
    paidCents: status === 'complete' ? 1250 : null,
  });

  beforeEach(async () => {
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    orders = [];
    current = { ...item(1, 'available'), files: [notes, single, zip] };
    socket.responders.set('stuff:get', () => ({ data: current }));
    socket.responders.set('order:list', () => ({ data: orders }));
    socket.responders.set('delivery:get', () => ({ data: { secretNote: null, files: [] } }));
  });
  afterEach(() => session.stop());

  const mount = () =>
    render(
      <SessionProvider session={session}>
        <StuffPage id="s1" />
      </SessionProvider>,
    );
  const imagesOf = (r: ReturnType<typeof render>) => Array.from(r.container.querySelectorAll<HTMLImageElement>('[data-testid="pdf-preview-page"]'));

  it('a visitor sees the page counts, and the first pages in order with their names and "buy to get the whole file"', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    const wyg = r.byTestId('what-you-get')!;
    expect(wyg.querySelector('[data-testid="file-item-f1"] [data-testid="file-pages"]')!.textContent).toBe('12 pages');
    expect(wyg.querySelector('[data-testid="file-item-f5"] [data-testid="file-pages"]')!.textContent).toBe('1 page');
    expect(wyg.querySelector('[data-testid="file-item-f2"] [data-testid="file-pages"]')).toBeNull();

    const groups = r.container.querySelectorAll('[data-testid="pdf-preview"]');
    expect(groups).toHaveLength(1);
    expect(groups[0]!.getAttribute('data-file-id')).toBe('f1');
    expect(imagesOf(r).map((i) => [i.getAttribute('src'), i.alt])).toEqual([
      ['/api/previews/s1/p1.jpg', 'Page 1 of lectures.pdf'],
      ['/api/previews/s1/p2.jpg', 'Page 2 of lectures.pdf'],
      ['/api/previews/s1/p3.jpg', 'Page 3 of lectures.pdf'],
    ]);
    expect(r.byTestId('pdf-preview-caption')!.textContent).toBe('First 3 of 12 pages — buy to get the whole file');
    // Previews, never the file: no link to it and no delivery request.
    expect(r.container.querySelector('a[download]')).toBeNull();
    expect(socket.lastEmitted('delivery:get')).toBeUndefined();
    r.unmount();
  });

  it('a buyer is told where the whole file is; someone who cannot buy it now is not told to buy it', async () => {
    orders = [order('complete')];
    current = { ...current, status: 'sold', version: 2 };
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('pdf-preview-caption')!.textContent).toBe('First 3 of 12 pages — you bought it: download it from your Library');
    r.unmount();

    orders = [];
    const r2 = mount();
    await step(() => socket.acceptConnect());
    expect(r2.byTestId('pdf-preview-caption')!.textContent).toBe('First 3 of 12 pages');
    r2.unmount();
  });

  it('the caption follows a payment made while the page is open', async () => {
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('pdf-preview-caption')!.textContent).toContain('buy to get the whole file');
    await step(() => socket.push('order:updated', order('complete')));
    expect(r.byTestId('pdf-preview-caption')!.textContent).toContain('you bought it');
    r.unmount();
  });

  it('the seller sees the previews everyone sees', async () => {
    current = { ...current, sellerId: alice.id };
    const r = mount();
    await step(() => socket.acceptConnect());
    await step();
    expect(r.byTestId('manage-delivery')!.querySelector('[data-testid="file-item-f1"] [data-testid="file-pages"]')!.textContent).toBe('12 pages');
    expect(imagesOf(r)).toHaveLength(3);
    expect(r.byTestId('pdf-preview-caption')!.textContent).toBe('First 3 of 12 pages — everyone sees this, buyer or not');
    r.unmount();
  });

  it('files stored before previews (no pages, no previewUrls) render without page counts or a Preview section', async () => {
    const { pages: _p, previewUrls: _u, ...bare } = notes;
    current = { ...current, files: [bare, zip] };
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('file-item-f1')!.querySelector('[data-testid="file-name"]')!.textContent).toBe('lectures.pdf');
    expect(r.byTestId('file-item-f1')!.querySelector('[data-testid="file-type"]')!.textContent).toBe('PDF');
    expect(r.container.querySelector('[data-testid="file-pages"]')).toBeNull();
    expect(r.byTestId('pdf-previews')).toBeNull();
    expect(r.container.querySelector('[data-testid="pdf-preview"]')).toBeNull();
    r.unmount();
  });

  it('no Preview section when no file has previews; it appears when a pushed update brings them', async () => {
    current = { ...current, files: [{ ...notes, previewUrls: [] }, zip] };
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('file-item-f1')!.querySelector('[data-testid="file-pages"]')!.textContent).toBe('12 pages');
    expect(r.byTestId('pdf-previews')).toBeNull();
    await step(() => socket.push('stuff:updated', { ...current, version: 2, files: [notes, zip] }));
    expect(imagesOf(r)).toHaveLength(3);
    r.unmount();
  });

  it('a withdrawn stuff shows a buyer no previews (as it shows no file list)', async () => {
    current = { ...current, status: 'withdrawn', version: 2 };
    const r = mount();
    await step(() => socket.acceptConnect());
    expect(r.byTestId('what-you-get')).toBeNull();
    expect(r.byTestId('pdf-previews')).toBeNull();
    r.unmount();
  });
});
