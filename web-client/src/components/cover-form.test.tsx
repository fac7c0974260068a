// @vitest-environment happy-dom
// The seller's cover upload on the edit page: client checks, busy state, success, server errors
// on the field with the focus, a refresh-and-retry on 401, and the edit form staying saveable.
import axe from 'axe-core';
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { COVER_INVALID, FILE_REQUIRED, MAX_COVER_BYTES } from '../api/files';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import type { Stuff } from '../api/types';
import { EditStuffPage } from '../pages/StuffFormPages';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step, typeInto } from '../test/render';
import { COVER_SAVED } from './cover-form';

const own = (over: Partial<Stuff> = {}): Stuff => ({
  id: 's1',
  title: 'Notes',
  description: '',
  priceCents: 1250,
  sellerId: alice.id,
  status: 'available',
  version: 3,
  createdAt: '2026-11-01T12:00:00Z',
  updatedAt: '2026-11-01T12:00:00Z',
  files: [],
  hasSecretNote: true,
  coverUrl: null,
  ...over,
});

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });

describe('<CoverForm> on the edit page', () => {
  let socket: FakeSocket;
  let session: SessionManager;
  let http: FakeHttp;
  let fetchMock: ReturnType<typeof vi.fn>;

  const start = async (stuff: Stuff = own()) => {
    window.history.replaceState(null, '', '/stuff/s1/edit');
    http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900, { n: 1 }) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
    socket.responders.set('stuff:get', () => ({ data: stuff }));
    socket.responders.set('stuff:list', () => ({ data: { items: [], nextCursor: null } }));
    const r = render(
      <SessionProvider session={session}>
        <EditStuffPage id="s1" />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    return r;
  };

  const choose = async (input: HTMLInputElement, file: File | null) => {
    Object.defineProperty(input, 'files', { value: file ? [file] : [], configurable: true });
    await step(() => input.dispatchEvent(new Event('change', { bubbles: true })));
  };
  const image = (type = 'image/png', size = 16, name = 'cover.png') => new File([new Uint8Array(size)], name, { type });
  const check = async () => {
    const res = await axe.run(document.body, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      rules: { 'color-contrast': { enabled: false }, 'heading-order': { enabled: true } },
    });
    return res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.html).join(' | ')}`);
  };

  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => {
    session.stop();
    vi.unstubAllGlobals();
  });

  it('shows a labelled image input and a placeholder, or the current cover', async () => {
    const r = await start();
    const input = r.byTestId('cover-input') as HTMLInputElement;
    expect(input.type).toBe('file');
    expect(input.getAttribute('accept')).toBe('image/png,image/jpeg,image/webp');
    expect(r.container.querySelector(`label[for="${input.id}"]`)!.textContent).toBe('Cover image');
    expect(input.getAttribute('aria-describedby')).toBe('hint-cover');
    const preview = r.byTestId('cover-preview')!;
    expect(preview.querySelector('img')).toBeNull();
    expect(preview.textContent).toBe('No cover image yet.');
    expect((r.byTestId('cover-submit') as HTMLButtonElement).textContent).toBe('Upload cover');
    expect(r.byTestId('cover-saved')!.getAttribute('role')).toBe('status');
    expect(r.byTestId('cover-saved')!.textContent).toBe('');
    r.unmount();

    const r2 = await start(own({ coverUrl: '/api/covers/s1/old.jpg' }));
    const img = r2.byTestId('cover-preview')!.querySelector('img')!;
    expect(img.getAttribute('src')).toBe('/api/covers/s1/old.jpg');
    expect(img.getAttribute('alt')).toBe('Cover of Notes');
    r2.unmount();
  });

  it('checks the file before sending: none, a wrong type, more than 5 MiB; the field says why and takes the focus', async () => {
    const r = await start();
    const input = r.byTestId('cover-input') as HTMLInputElement;
    const submit = r.byTestId('cover-submit') as HTMLButtonElement;

    await step(() => submit.click());
    expect(r.byTestId('error-cover')!.textContent).toBe(FILE_REQUIRED);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(input.getAttribute('aria-describedby')).toBe('hint-cover error-cover');
    expect(document.activeElement).toBe(input);

    await choose(input, image('image/gif', 16, 'anim.gif'));
    expect(r.byTestId('error-cover')).toBeNull(); // choosing again clears the message
    submit.focus();
    await step(() => submit.click());
    expect(r.byTestId('error-cover')!.textContent).toBe(COVER_INVALID);
    expect(document.activeElement).toBe(input);

    const big = image('image/jpeg', 1, 'big.jpg');
    Object.defineProperty(big, 'size', { value: MAX_COVER_BYTES + 1 });
    await choose(input, big);
    await step(() => submit.click());
    expect(r.byTestId('error-cover')!.textContent).toBe(COVER_INVALID);
    expect(fetchMock).not.toHaveBeenCalled();
    expect(await check()).toEqual([]);
    r.unmount();
  });

  it('uploads with the token, is busy meanwhile, then says "Cover updated" and shows the new cover', async () => {
    const r = await start();
    let answer!: (res: Response) => void;
    fetchMock.mockImplementation(() => new Promise<Response>((res) => (answer = res)));
    const input = r.byTestId('cover-input') as HTMLInputElement;
    const submit = r.byTestId('cover-submit') as HTMLButtonElement;
    await choose(input, image('image/webp', 16, 'cover.webp'));
    await step(() => submit.click());

    expect(fetchMock).toHaveBeenCalledTimes(1);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/stuff/s1/cover');
    expect(init.method).toBe('POST');
    expect((init.headers as Record<string, string>).Authorization).toBe(`Bearer ${session.accessToken}`);
    expect(((init.body as FormData).get('file') as File).name).toBe('cover.webp');
    expect(submit.disabled).toBe(true);
    expect(submit.textContent).toBe('Uploading…');
    expect(r.byTestId('cover-form')!.getAttribute('aria-busy')).toBe('true');

    await step(() => answer(json(200, { coverUrl: '/api/covers/s1/abc.jpg' })));
    expect(submit.disabled).toBe(false);
    expect(submit.textContent).toBe('Upload cover');
    expect(r.byTestId('cover-saved')!.textContent).toBe(COVER_SAVED);
    expect(r.byTestId('cover-preview')!.querySelector('img')!.getAttribute('src')).toBe('/api/covers/s1/abc.jpg');
    expect(r.byTestId('error-cover')).toBeNull();
    expect(await check()).toEqual([]);

    // Choosing the next file clears the old success message.
    await choose(input, image());
    expect(r.byTestId('cover-saved')!.textContent).toBe('');
    r.unmount();
  });

  it('shows server errors on the field with the focus: 400 on `file`, and 409 about the stuff', async () => {
    const r = await start();
    const input = r.byTestId('cover-input') as HTMLInputElement;
    const submit = r.byTestId('cover-submit') as HTMLButtonElement;
    fetchMock.mockResolvedValueOnce(json(400, { errors: [{ message: COVER_INVALID, field: 'file' }] }));
    await choose(input, image('image/png', 16, 'not-really.png'));
    submit.focus();
    await step(() => submit.click());
    expect(r.byTestId('error-cover')!.textContent).toBe(COVER_INVALID);
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(document.activeElement).toBe(input);
    expect(r.byTestId('cover-saved')!.textContent).toBe('');

    fetchMock.mockResolvedValueOnce(json(409, { errors: [{ message: 'Cannot edit a stuff while it is being checked out' }] }));
    submit.focus();
    await step(() => submit.click());
    expect(r.byTestId('error-cover')!.textContent).toBe('Cannot edit a stuff while it is being checked out');
    expect(document.activeElement).toBe(input);
    expect(r.byTestId('cover-preview')!.querySelector('img')).toBeNull();
    r.unmount();
  });

  it('on a 401 refreshes the session once and sends the cover again', async () => {
    const r = await start();
    const first = session.accessToken;
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900, { n: 2 }) });
    fetchMock
      .mockResolvedValueOnce(json(401, { errors: [{ message: 'Not authorized' }] }))
      .mockResolvedValueOnce(json(200, { coverUrl: '/api/covers/s1/def.jpg' }));
    await choose(r.byTestId('cover-input') as HTMLInputElement, image('image/jpeg', 16, 'c.jpg'));
    await step(() => (r.byTestId('cover-submit') as HTMLButtonElement).click());
    await step();
    expect(fetchMock).toHaveBeenCalledTimes(2);
    const auth = (i: number) => ((fetchMock.mock.calls[i] as [string, RequestInit])[1].headers as Record<string, string>).Authorization;
    expect(auth(0)).toBe(`Bearer ${first}`);
    expect(auth(1)).toBe(`Bearer ${session.accessToken}`);
    expect(auth(1)).not.toBe(auth(0));
    expect(r.byTestId('cover-saved')!.textContent).toBe(COVER_SAVED);
    r.unmount();
  });

  it('the cover push keeps the edit form as typed and saveable (no stale notice); other changes still warn', async () => {
    const r = await start();
    socket.responders.set('stuff:update', (p) => ({ data: { ...own(), ...(p as object), version: 5 } }));
    act(() => typeInto(r.byTestId('title-input') as HTMLInputElement, 'Better notes'));
    await step(() => socket.push('stuff:updated', own({ version: 4, coverUrl: '/api/covers/s1/pushed.jpg' })));
    expect(r.byTestId('stale-notice')).toBeNull();
    expect((r.byTestId('title-input') as HTMLInputElement).value).toBe('Better notes');
    expect(r.byTestId('cover-preview')!.querySelector('img')!.getAttribute('src')).toBe('/api/covers/s1/pushed.jpg');
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:update')!.payload).toMatchObject({ id: 's1', version: 4, title: 'Better notes' });
    r.unmount();

    const r2 = await start();
    await step(() => socket.push('stuff:updated', own({ version: 4, title: 'Renamed elsewhere' })));
    expect(r2.byTestId('stale-notice')).not.toBeNull();
    r2.unmount();
  });
});
