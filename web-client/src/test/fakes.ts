// Test doubles for the socket and the HTTP auth routes. No backend needed.
import type { AuthHttpLike } from '../api/session';
import type { AuthCallback, AuthPayload, LiveSocket } from '../api/socket';
import type { AuthResponse, ProfilePatch, User } from '../api/types';
import { ApiError } from '../api/errors';

type Fn = (...args: any[]) => void;

export interface Emitted {
  event: string;
  payload: unknown;
  timeoutMs: number;
  /** Replies as the server would (`{data}` or `{status, errors}`). */
  reply: (ack: unknown) => void;
  answered: boolean;
}

export class FakeSocket implements LiveSocket {
  connected = false;
  readonly handlers = new Map<string, Set<Fn>>();
  readonly emitted: Emitted[] = [];
  readonly auths: AuthPayload[] = [];
  connectCalls = 0;
  disconnectCalls = 0;
  /** Automatic answers per event; return undefined to leave the request unanswered. */
  readonly responders = new Map<string, (payload: unknown) => unknown>();
  /** Connect at once when connect() is called (otherwise call acceptConnect / rejectConnect). */
  autoAccept = false;

  constructor(private readonly auth: AuthCallback) {}

  connect(): this {
    this.connectCalls += 1;
    this.auth((data) => this.auths.push(data));
    if (this.autoAccept) this.acceptConnect();
    return this;
  }

  disconnect(): this {
    this.disconnectCalls += 1;
    if (this.connected) {
      this.connected = false;
      this.fire('disconnect', 'io client disconnect');
    }
    return this;
  }

  on(event: string, fn: Fn): this {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)!.add(fn);
    return this;
  }

  off(event: string, fn: Fn): this {
    this.handlers.get(event)?.delete(fn);
    return this;
  }

  timeout(ms: number) {
    return {
      emit: (event: string, payload: unknown, cb: (err: unknown, ack?: unknown) => void) => {
        let done = false;
        const timer = setTimeout(() => {
          if (done) return;
          done = true;
          cb(new Error('operation has timed out'));
        }, ms);
        const entry: Emitted = {
          event,
          payload,
          timeoutMs: ms,
          answered: false,
          reply: (ack) => {
            if (done) return;
            done = true;
            entry.answered = true;
            clearTimeout(timer);
            cb(null, ack);
          },
        };
        this.emitted.push(entry);
        const responder = this.responders.get(event);
        if (responder) {
          const ack = responder(payload);
          if (ack !== undefined) queueMicrotask(() => entry.reply(ack));
        }
      },
    };
  }

  // ---- what the server does ----

  fire(event: string, ...args: unknown[]): void {
    for (const fn of Array.from(this.handlers.get(event) ?? [])) fn(...args);
  }

  acceptConnect(): void {
    this.connected = true;
    this.fire('connect');
  }

  rejectConnect(message: string): void {
    this.connected = false;
    this.fire('connect_error', new Error(message));
  }

  dropNetwork(): void {
    this.connected = false;
    this.fire('disconnect', 'transport close');
  }

  push(event: string, payload: unknown): void {
    this.fire(event, payload);
  }

  lastEmitted(event: string): Emitted | undefined {
    return [...this.emitted].reverse().find((e) => e.event === event);
  }

  get lastAuth(): AuthPayload | undefined {
    return this.auths[this.auths.length - 1];
  }
}

/** A JWT whose payload has `exp` (seconds); header and signature are dummies (never verified here). */
export function fakeJwt(expSeconds: number, extra: Record<string, unknown> = {}): string {
  const b64 = (o: unknown) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(o))))
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
      .replace(/=+$/, '');
  return `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ sub: 'u1', exp: expSeconds, ...extra })}.c2lnbmF0dXJl`;
}

export const alice: User = { id: 'u1', email: 'alice@example.edu', role: 'user' };

export class FakeHttp implements AuthHttpLike {
  refreshCalls = 0;
  signOutCalls = 0;
  /** What the next refresh returns; an Error/ApiError is thrown. */
  refreshResults: Array<AuthResponse | ApiError> = [];
  signInResult: AuthResponse | ApiError | null = null;
  /** What the next `updateMe` answers (a User, or an ApiError to throw); by default the patch applied to alice. */
  updateMeResults: Array<User | ApiError> = [];
  readonly updateMeCalls: Array<{ token: string; patch: ProfilePatch }> = [];

  async signUp(): Promise<AuthResponse> {
    return this.result(this.signInResult);
  }
  async signIn(): Promise<AuthResponse> {
    return this.result(this.signInResult);
  }
  async refresh(): Promise<AuthResponse> {
    this.refreshCalls += 1;
    const next = this.refreshResults.shift() ?? new ApiError(401, [{ message: 'Not signed in' }]);
    return this.result(next);
  }
  async signOut(): Promise<void> {
    this.signOutCalls += 1;
  }
  async updateMe(token: string, patch: ProfilePatch): Promise<User> {
    this.updateMeCalls.push({ token, patch });
    const next = this.updateMeResults.shift() ?? { ...alice, ...patch };
    if (next instanceof ApiError) throw next;
    return next;
  }
  private result(r: AuthResponse | ApiError | null): AuthResponse {
    if (!r) throw new ApiError(500, []);
    if (r instanceof ApiError) throw r;
    return r;
  }
}

/** Lets pending promise callbacks run (works with fake timers too). */
export async function flush(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) await Promise.resolve();
}

/** A fake XMLHttpRequest for uploads: records what was sent; the test drives progress and the answer. */
export class FakeXhr {
  static all: FakeXhr[] = [];
  status = 0;
  responseText = '';
  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: FormData | null = null;
  aborted = false;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  onabort: (() => void) | null = null;

  constructor() {
    FakeXhr.all.push(this);
  }
  open(method: string, url: string): void {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value;
  }
  send(body: FormData): void {
    this.body = body;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.onabort?.();
  }
  // ---- what the network does ----
  progress(loaded: number, total: number): void {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true });
  }
  respond(status: number, body: unknown): void {
    this.status = status;
    this.responseText = typeof body === 'string' ? body : body === undefined ? '' : JSON.stringify(body);
    this.onload?.();
  }
  fail(): void {
    this.onerror?.();
  }
  static last(): FakeXhr {
    const x = FakeXhr.all[FakeXhr.all.length - 1];
    if (!x) throw new Error('no XHR was created');
    return x;
  }
  static reset(): void {
    FakeXhr.all = [];
  }
}
