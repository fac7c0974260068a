import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './errors';
import { SESSION_EXPIRED_NOTICE, SessionManager, type LockFn } from './session';
import type { AuthResponse } from './types';
import { alice, fakeJwt, FakeHttp, FakeSocket, flush } from '../test/fakes';

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);

function auth(expInSeconds: number, user = alice): AuthResponse {
  return { user, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + expInSeconds, { n: Math.random() }) };
}

function setup() {
  const http = new FakeHttp();
  let socket!: FakeSocket;
  const session = new SessionManager({
    http,
    createSocket: (a) => (socket = new FakeSocket(a)),
    refreshJitterMs: 0,
  });
  return { http, session, socket: () => socket };
}

describe('SessionManager', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('restores a session from the refresh cookie on start, then connects with the token', async () => {
    const { http, session, socket } = setup();
    const res = auth(900);
    http.refreshResults.push(res);
    await session.start();
    expect(http.refreshCalls).toBe(1);
    expect(session.getSnapshot()).toMatchObject({ status: 'authenticated', user: alice, connection: 'connecting' });
    expect(socket().connectCalls).toBe(1);
    expect(socket().lastAuth).toEqual({ token: res.accessToken });
    socket().acceptConnect();
    expect(session.getSnapshot()).toMatchObject({ connection: 'connected', epoch: 1 });
  });

  it('starts anonymous when there is no refresh cookie, without a notice', async () => {
    const { session, socket } = setup();
    await session.start();
    expect(session.getSnapshot()).toMatchObject({ status: 'anonymous', user: null, notice: null });
    expect(socket().lastAuth).toEqual({});
    expect(session.accessToken).toBeNull();
  });

  it('start() is idempotent (one refresh even if called twice, e.g. by StrictMode)', async () => {
    const { http, session } = setup();
    http.refreshResults.push(auth(900));
    await Promise.all([session.start(), session.start()]);
    expect(http.refreshCalls).toBe(1);
  });

  it('schedules the refresh from exp and then sends session:authenticate on the live socket', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    socket().acceptConnect();

    // 15-minute token: refresh at 14 minutes, not before.
    await vi.advanceTimersByTimeAsync(14 * 60_000 - 1);
    expect(http.refreshCalls).toBe(1);
    const second = auth(900);
    http.refreshResults.push(second);
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    expect(http.refreshCalls).toBe(2);
    expect(session.accessToken).toBe(second.accessToken);

    const authEmit = socket().lastEmitted('session:authenticate');
    expect(authEmit?.payload).toEqual({ token: second.accessToken });
    authEmit!.reply({ data: {} });
    // Same socket, no reconnect.
    expect(socket().connectCalls).toBe(1);
    expect(socket().disconnectCalls).toBe(0);

    // And the next refresh is scheduled from the new token.
    http.refreshResults.push(auth(900));
    await vi.advanceTimersByTimeAsync(14 * 60_000);
    await flush();
    expect(http.refreshCalls).toBe(3);
  });

  it('reconnects with the new token if the server refuses session:authenticate', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(120));
    await session.start();
    socket().acceptConnect();
    const next = auth(120);
    http.refreshResults.push(next);
    await vi.advanceTimersByTimeAsync(60_000);
    await flush();
    socket().lastEmitted('session:authenticate')!.reply({ status: 401, errors: [{ message: 'Not authorized' }] });
    expect(socket().disconnectCalls).toBe(1);
    expect(socket().connectCalls).toBe(2);
    expect(socket().lastAuth).toEqual({ token: next.accessToken });
  });

  it('on connect_error "Not authorized": refreshes, then connects again with the fresh token', async () => {
    const { http, session, socket } = setup();
    const stale = auth(900);
    http.refreshResults.push(stale);
    await session.start();
    expect(socket().lastAuth).toEqual({ token: stale.accessToken });

    const fresh = auth(900);
    http.refreshResults.push(fresh);
    socket().rejectConnect('Not authorized');
    await flush(10);
    expect(http.refreshCalls).toBe(2);
    expect(socket().connectCalls).toBe(2);
    expect(socket().lastAuth).toEqual({ token: fresh.accessToken });
    socket().acceptConnect();
    expect(session.getSnapshot()).toMatchObject({ status: 'authenticated', connection: 'connected' });
  });

  it('after a refresh while connected (token expired mid-connection), authenticates the live socket', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    socket().acceptConnect();
    // A request finds the token expired: 401 ack → refresh → session:authenticate → retry.
    const fresh = auth(900);
    http.refreshResults.push(fresh);
    let calls = 0;
    socket().responders.set('order:list', () =>
      ++calls === 1 ? { status: 401, errors: [{ message: 'Not authorized' }] } : { data: [] },
    );
    const result = await session.request('order:list', {});
    expect(result).toEqual({ data: [] });
    expect(http.refreshCalls).toBe(2);
    expect(socket().lastEmitted('session:authenticate')?.payload).toEqual({ token: fresh.accessToken });
  });

  it('when the refresh is refused, drops the session, tells the user and connects anonymously', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    http.refreshResults.push(new ApiError(401, [{ message: 'Not authorized' }]));
    socket().rejectConnect('Not authorized');
    await flush(10);
    expect(session.getSnapshot()).toMatchObject({ status: 'anonymous', user: null, notice: SESSION_EXPIRED_NOTICE });
    expect(socket().lastAuth).toEqual({});
    expect(socket().connectCalls).toBe(2);
  });

  it('does not loop forever on repeated "Not authorized"', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    for (let i = 0; i < 6; i++) {
      http.refreshResults.push(auth(900));
      socket().rejectConnect('Not authorized');
      await flush(10);
    }
    expect(socket().connectCalls).toBeLessThanOrEqual(3);
    expect(session.getSnapshot().connection).toBe('failed');
  });

  it('shares one refresh between concurrent callers (the refresh cookie rotates)', async () => {
    const { http, session } = setup();
    http.refreshResults.push(auth(900), auth(900));
    const results = await Promise.all([session.refresh(), session.refresh(), session.refresh()]);
    expect(results).toEqual([true, true, true]);
    expect(http.refreshCalls).toBe(1);
  });

  it('serializes refreshes through the cross-tab lock', async () => {
    const http = new FakeHttp();
    http.refreshResults.push(auth(900));
    const names: string[] = [];
    const lock: LockFn = (name, fn) => {
      names.push(name);
      return fn();
    };
    const session = new SessionManager({ http, createSocket: (a) => new FakeSocket(a), lock, refreshJitterMs: 0 });
    await session.refresh();
    expect(names).toEqual(['stuffmart-refresh']);
  });

  it('keeps the session and retries later when the refresh fails for network reasons', async () => {
    const { http, session } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    http.refreshResults.push(new ApiError(0, [], 'network'));
    await vi.advanceTimersByTimeAsync(14 * 60_000);
    await flush();
    expect(http.refreshCalls).toBe(2);
    expect(session.getSnapshot().status).toBe('authenticated');
    http.refreshResults.push(auth(900));
    await vi.advanceTimersByTimeAsync(15_000);
    await flush();
    expect(http.refreshCalls).toBe(3);
  });

  it('sign in replaces the identity and reconnects so the server sees it', async () => {
    const { http, session, socket } = setup();
    await session.start();
    socket().acceptConnect();
    const res = auth(900);
    http.signInResult = res;
    await session.signIn({ email: alice.email, password: 'correct horse' });
    expect(session.getSnapshot()).toMatchObject({ status: 'authenticated', user: alice });
    expect(socket().disconnectCalls).toBe(1);
    expect(socket().lastAuth).toEqual({ token: res.accessToken });
  });

  it('sign in failure leaves the state untouched and throws the ApiError', async () => {
    const { http, session } = setup();
    await session.start();
    http.signInResult = new ApiError(401, [{ message: 'Invalid credentials' }]);
    await expect(session.signIn({ email: 'x@y.z', password: 'nopenope' })).rejects.toMatchObject({ status: 401 });
    expect(session.getSnapshot().status).toBe('anonymous');
  });

  it('sign out revokes on the server, clears the token and reconnects anonymously', async () => {
    const { http, session, socket } = setup();
    http.refreshResults.push(auth(900));
    await session.start();
    socket().acceptConnect();
    await session.signOut();
    expect(http.signOutCalls).toBe(1);
    expect(session.accessToken).toBeNull();
    expect(session.getSnapshot()).toMatchObject({ status: 'anonymous', user: null });
    expect(socket().lastAuth).toEqual({});
    // No refresh scheduled any more.
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    expect(http.refreshCalls).toBe(1);
  });

  it('bumps epoch on every reconnect so views re-fetch after a network drop', async () => {
    const { session, socket } = setup();
    await session.start();
    socket().acceptConnect();
    expect(session.getSnapshot().epoch).toBe(1);
    socket().dropNetwork();
    expect(session.getSnapshot().connection).toBe('reconnecting');
    socket().acceptConnect();
    expect(session.getSnapshot()).toMatchObject({ connection: 'connected', epoch: 2 });
  });

  it('delivers pushes to subscribers until they unsubscribe', async () => {
    const { session, socket } = setup();
    const seen: unknown[] = [];
    const off = session.onPush('stuff:updated', (s) => seen.push(s.id));
    socket().push('stuff:updated', { id: 'a', version: 2 });
    off();
    socket().push('stuff:updated', { id: 'b', version: 2 });
    expect(seen).toEqual(['a']);
  });

  it('shares fresh tokens with other tabs, which adopt them instead of refreshing again', async () => {
    type Msg = { data: unknown };
    const listeners: Array<(e: Msg) => void> = [];
    const bus = {
      posted: [] as unknown[],
      tab(): { postMessage(m: unknown): void; addEventListener(t: 'message', fn: (e: MessageEvent) => void): void } {
        let own: ((e: Msg) => void) | null = null;
        return {
          postMessage: (m) => {
            bus.posted.push(m);
            for (const l of listeners) if (l !== own) l({ data: m });
          },
          addEventListener: (_t, fn) => {
            own = fn as unknown as (e: Msg) => void;
            listeners.push(own);
          },
        };
      },
    };
    const httpA = new FakeHttp();
    const httpB = new FakeHttp();
    let socketB!: FakeSocket;
    const a = new SessionManager({ http: httpA, createSocket: (x) => new FakeSocket(x), channel: bus.tab(), refreshJitterMs: 0 });
    const b = new SessionManager({
      http: httpB,
      createSocket: (x) => {
        socketB = new FakeSocket(x);
        socketB.autoAccept = true;
        return socketB;
      },
      channel: bus.tab(),
      refreshJitterMs: 0,
    });
    httpA.refreshResults.push(auth(900));
    await a.start();
    await b.start(); // B has no cookie in this fake: anonymous
    expect(b.getSnapshot().status).toBe('anonymous');

    // A signs in again (e.g. the user signed in in tab A): B follows, reconnecting as the user.
    const signIn = auth(900);
    httpA.signInResult = signIn;
    await a.signIn({ email: alice.email, password: 'correct horse' });
    expect(b.getSnapshot()).toMatchObject({ status: 'authenticated', user: alice });
    expect(b.accessToken).toBe(signIn.accessToken);
    expect(socketB.lastAuth).toEqual({ token: signIn.accessToken });
    expect(httpB.refreshCalls).toBe(1); // only its own start-up attempt

    // A refreshes first; B takes that token and pushes its own timer back, so it never spends the cookie.
    await vi.advanceTimersByTimeAsync(14 * 60_000 - 1000);
    httpA.refreshResults.push(auth(900));
    await a.refresh();
    expect(b.accessToken).toBe(a.accessToken);
    expect(socketB.lastEmitted('session:authenticate')?.payload).toEqual({ token: a.accessToken });
    httpA.refreshResults.push(auth(900));
    await vi.advanceTimersByTimeAsync(5 * 60_000);
    expect(httpB.refreshCalls).toBe(1);

    // Sign-out in A signs B out too.
    await a.signOut();
    expect(b.getSnapshot().status).toBe('anonymous');
    expect(socketB.lastAuth).toEqual({});
  });

  it('refreshes a little early at random so tabs rarely collide', async () => {
    const http = new FakeHttp();
    http.refreshResults.push(auth(900));
    const session = new SessionManager({
      http,
      createSocket: (x) => new FakeSocket(x),
      refreshJitterMs: 10_000,
      random: () => 0.5,
    });
    await session.start();
    await vi.advanceTimersByTimeAsync(14 * 60_000 - 5000 - 1);
    expect(http.refreshCalls).toBe(1);
    http.refreshResults.push(auth(900));
    await vi.advanceTimersByTimeAsync(1);
    expect(http.refreshCalls).toBe(2);
  });

  it('updateProfile shows the new name at once, refreshes once on a 401, and tells the other tabs', async () => {
    const posted: unknown[] = [];
    const http = new FakeHttp();
    const session = new SessionManager({
      http,
      createSocket: (x) => new FakeSocket(x),
      refreshJitterMs: 0,
      channel: { postMessage: (m) => posted.push(m), addEventListener: () => undefined },
    });
    http.refreshResults.push(auth(900));
    await session.start();
    const seen: Array<string | undefined> = [];
    session.subscribe(() => seen.push(session.getSnapshot().user?.displayName));
    const user = await session.updateProfile({ displayName: 'Ada' });
    expect(user.displayName).toBe('Ada');
    expect(http.updateMeCalls[0]).toEqual({ token: session.accessToken, patch: { displayName: 'Ada' } });
    expect(session.getSnapshot()).toMatchObject({ status: 'authenticated', user: { ...alice, displayName: 'Ada' } });
    expect(seen).toContain('Ada');
    expect(posted.at(-1)).toEqual({ type: 'user', user: { ...alice, displayName: 'Ada' } });

    // The token expired under us: one refresh, then the same patch with the new token.
    http.updateMeResults.push(new ApiError(401, []));
    const fresh = auth(900);
    http.refreshResults.push(fresh);
    await session.updateProfile({ displayName: 'Ada L.' });
    expect(http.updateMeCalls.at(-1)).toEqual({ token: fresh.accessToken, patch: { displayName: 'Ada L.' } });
    expect(session.getSnapshot().user?.displayName).toBe('Ada L.');

    // A refusal changes nothing.
    http.updateMeResults.push(new ApiError(400, [{ message: 'Display name must be 2 to 40 characters', field: 'displayName' }]));
    await expect(session.updateProfile({ displayName: 'A' })).rejects.toMatchObject({ status: 400 });
    expect(session.getSnapshot().user?.displayName).toBe('Ada L.');
    session.stop();
  });

  it('takes a profile change made in another tab', async () => {
    let deliver!: (e: MessageEvent) => void;
    const http = new FakeHttp();
    http.refreshResults.push(auth(900));
    const session = new SessionManager({
      http,
      createSocket: (x) => new FakeSocket(x),
      channel: { postMessage: () => undefined, addEventListener: (_t, fn) => (deliver = fn) },
    });
    await session.start();
    deliver({ data: { type: 'user', user: { ...alice, displayName: 'From B' } } } as MessageEvent);
    expect(session.getSnapshot().user?.displayName).toBe('From B');
    // Someone else's profile is not ours.
    deliver({ data: { type: 'user', user: { ...alice, id: 'other', displayName: 'Nope' } } } as MessageEvent);
    expect(session.getSnapshot().user?.displayName).toBe('From B');
    session.stop();
  });

  it('updateProfile without a session is a 401 and sends nothing', async () => {
    const { http, session } = setup();
    await session.start();
    await expect(session.updateProfile({ displayName: 'Ada' })).rejects.toMatchObject({ status: 401 });
    expect(http.updateMeCalls).toHaveLength(0);
  });
});

