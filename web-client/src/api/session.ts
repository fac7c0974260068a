// The session: who is signed in, the in-memory access token, silent refresh, and the one
// Socket.IO connection of this tab. Framework-free so it can be unit-tested with fakes;
// React reads it through useSyncExternalStore (see session-react.tsx).
import { ApiError, toApiError } from './errors';
import type { AuthHttp, Credentials } from './http';
import { refreshDelayMs, tokenExpiresAtMs } from './jwt';
import { request as socketRequest, type AuthCallback, type LiveSocket, type RequestOptions } from './socket';
import type { AuthResponse, ProfilePatch, PushEvent, PushMap, RequestEvent, RequestMap, User } from './types';

export type SessionStatus = 'initializing' | 'anonymous' | 'authenticated';
export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'failed';

export interface SessionState {
  status: SessionStatus;
  user: User | null;
  connection: ConnectionStatus;
  /** Increments on every successful (re)connect: views re-fetch when it changes, so no push is missed. */
  epoch: number;
  /** A message for the user about the session itself (e.g. it expired), shown as a banner. */
  notice: string | null;
}

export type AuthHttpLike = Pick<AuthHttp, 'signUp' | 'signIn' | 'refresh' | 'signOut' | 'updateMe'>;

/** Runs `fn` while holding a lock shared by all tabs of this origin (Web Locks), so two tabs never
 * spend the same rotating refresh cookie at once (reuse revokes the whole token family). */
export type LockFn = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

export interface SessionDeps {
  http: AuthHttpLike;
  createSocket: (auth: AuthCallback) => LiveSocket;
  now?: () => number;
  lock?: LockFn;
  /**
   * Talks to the other tabs of this origin (BroadcastChannel): sign-in, sign-out and every fresh
   * token are shared, so one tab's refresh serves all and they do not race for the rotating cookie.
   * Messages stay in memory; nothing is persisted.
   */
  channel?: { postMessage(msg: unknown): void; addEventListener(type: 'message', fn: (e: MessageEvent) => void): void } | null;
  /** Refresh up to this much earlier than planned, at random, so tabs rarely refresh at the same moment. */
  refreshJitterMs?: number;
  random?: () => number;
  requestTimeoutMs?: number;
  /** Delay before retrying a refresh that failed for a reason other than 401 (e.g. network). */
  refreshRetryMs?: number;
}

export const NOT_AUTHORIZED = 'Not authorized';
export const SESSION_EXPIRED_NOTICE = 'Your session has expired. Please sign in again.';
const REFRESH_LOCK = 'stuffmart-refresh';

export function browserLock(): LockFn {
  return async <T,>(name: string, fn: () => Promise<T>): Promise<T> => {
    const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
    if (locks && typeof locks.request === 'function') {
      return locks.request(name, fn) as Promise<T>;
    }
    return fn();
  };
}

const noLock: LockFn = (_name, fn) => fn();

type Listener = () => void;

export class SessionManager {
  readonly socket: LiveSocket;
  private readonly http: AuthHttpLike;
  private readonly now: () => number;
  private readonly lock: LockFn;
  private readonly channel: SessionDeps['channel'];
  private readonly requestTimeoutMs: number | undefined;
  private readonly refreshRetryMs: number;
  private readonly refreshJitterMs: number;
  private readonly random: () => number;

  private token: string | null = null;
  private state: SessionState = { status: 'initializing', user: null, connection: 'idle', epoch: 0, notice: null };
  private readonly listeners = new Set<Listener>();
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshInFlight: Promise<boolean> | null = null;
  private authFailures = 0;
  private started: Promise<void> | null = null;
  private stopped = false;

  constructor(deps: SessionDeps) {
    this.http = deps.http;
    this.now = deps.now ?? (() => Date.now());
    this.lock = deps.lock ?? noLock;
    this.channel = deps.channel ?? null;
    this.requestTimeoutMs = deps.requestTimeoutMs;
    this.refreshRetryMs = deps.refreshRetryMs ?? 15_000;
    this.refreshJitterMs = deps.refreshJitterMs ?? 10_000;
    this.random = deps.random ?? Math.random;
    this.socket = deps.createSocket((cb) => cb(this.token ? { token: this.token } : {}));
    this.socket.on('connect', this.onConnect);
    this.socket.on('disconnect', this.onDisconnect);
    this.socket.on('connect_error', this.onConnectError);
    this.channel?.addEventListener('message', this.onChannelMessage);
  }

  // ---- store interface for React ----

  getSnapshot = (): SessionState => this.state;

  subscribe = (listener: Listener): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private setState(patch: Partial<SessionState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  /** The current access token (memory only; never persisted). */
  get accessToken(): string | null {
    return this.token;
  }

  // ---- lifecycle ----

  /** Restores a session from the refresh cookie, then connects. Safe to call more than once. */
  start(): Promise<void> {
    if (!this.started) {
      this.started = (async () => {
        await this.refresh();
        if (this.stopped) return;
        this.setState({ connection: 'connecting' });
        this.socket.connect();
      })();
    }
    return this.started;
  }

  stop(): void {
    this.stopped = true;
    this.clearRefreshTimer();
    this.socket.disconnect();
  }

  dismissNotice(): void {
    if (this.state.notice) this.setState({ notice: null });
  }

  // ---- auth actions ----

  async signUp(credentials: Credentials): Promise<User> {
    const res = await this.http.signUp(credentials);
    this.applyNewIdentity(res);
    this.broadcastToken(res);
    return res.user;
  }

  async signIn(credentials: Credentials): Promise<User> {
    const res = await this.http.signIn(credentials);
    this.applyNewIdentity(res);
    this.broadcastToken(res);
    return res.user;
  }

  /** Revokes the refresh token on the server (best effort), forgets the session, reconnects anonymously. */
  async signOut(): Promise<void> {
    try {
      await this.lock(REFRESH_LOCK, () => this.http.signOut());
    } catch {
      // Signing out locally still happens; the cookie expires on its own.
    }
    this.clearSession(null);
    this.reconnect();
    this.channel?.postMessage({ type: 'signed-out' });
  }

  /**
   * Changes the signed-in user's profile (`PATCH /api/users/me`) and shows it at once: the
   * session's user becomes the server's answer, here and in the other tabs. A 401 (the token
   * expired under us) refreshes once and tries again; other errors reject as ApiError.
   */
  async updateProfile(patch: ProfilePatch): Promise<User> {
    const token = this.token;
    if (!token) throw new ApiError(401, []);
    let user: User;
    try {
      user = await this.http.updateMe(token, patch);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401) || !(await this.refresh()) || !this.token) throw e;
      user = await this.http.updateMe(this.token, patch);
    }
    this.applyUser(user);
    this.channel?.postMessage({ type: 'user', user });
    return user;
  }

  /** The same user with new details (a profile change): nothing else about the session changes. */
  private applyUser(user: User): void {
    if (this.state.user?.id === user.id) this.setState({ user: { ...this.state.user, ...user } });
  }

  /**
   * Exchanges the refresh cookie for a new access token. Concurrent calls share one exchange.
   * Resolves true when a session is active afterwards. On 401 the session is cleared.
   */
  refresh(): Promise<boolean> {
    if (!this.refreshInFlight) {
      this.refreshInFlight = this.doRefresh().finally(() => {
        this.refreshInFlight = null;
      });
    }
    return this.refreshInFlight;
  }

  private async doRefresh(): Promise<boolean> {
    this.clearRefreshTimer();
    const hadSession = this.token !== null;
    let res: AuthResponse;
    try {
      res = await this.lock(REFRESH_LOCK, () => this.http.refresh());
    } catch (e) {
      const err = toApiError(e);
      if (err.status === 401 || err.status === 403) {
        this.clearSession(hadSession ? SESSION_EXPIRED_NOTICE : null);
        if (hadSession && this.socket.connected) this.reconnect();
        return false;
      }
      // Network trouble or a service not answering: keep what we have and try again later.
      if (hadSession) {
        this.refreshTimer = setTimeout(() => void this.refresh(), this.refreshRetryMs);
        return true;
      }
      if (this.state.status === 'initializing') this.setState({ status: 'anonymous' });
      return false;
    }
    if (this.stopped) return false;
    this.adoptToken(res);
    this.broadcastToken(res);
    return true;
  }

  /** Takes a fresh token for the current (or a new) identity and tells the live socket. */
  private adoptToken(res: AuthResponse): void {
    const sameUser = this.state.user?.id === res.user.id;
    this.setSession(res);
    if (this.socket.connected) {
      if (sameUser) this.authenticateSocket();
      else this.reconnect();
    }
  }

  private broadcastToken(res: AuthResponse): void {
    this.channel?.postMessage({ type: 'token', user: res.user, accessToken: res.accessToken });
  }

  /** Hands the fresh token to the live socket; falls back to reconnecting if the server refuses it. */
  private authenticateSocket(): void {
    const token = this.token;
    if (!token) return;
    this.socket.timeout(this.requestTimeoutMs ?? 8000).emit('session:authenticate', { token }, (err: unknown, ack: unknown) => {
      if (err) return; // No ack: the router may not acknowledge this event; the next connect uses the new token anyway.
      if (typeof ack === 'object' && ack !== null && 'errors' in ack && this.token === token) {
        this.reconnect();
      }
    });
  }

  private setSession(res: AuthResponse): void {
    this.token = res.accessToken;
    this.setState({ status: 'authenticated', user: res.user, notice: null });
    this.scheduleRefresh(res.accessToken);
  }

  private applyNewIdentity(res: AuthResponse): void {
    this.setSession(res);
    this.authFailures = 0;
    this.reconnect();
  }

  private clearSession(notice: string | null): void {
    this.clearRefreshTimer();
    this.token = null;
    this.setState({ status: 'anonymous', user: null, notice });
  }

  private scheduleRefresh(token: string): void {
    this.clearRefreshTimer();
    const planned = refreshDelayMs(tokenExpiresAtMs(token), this.now());
    const jitter = Math.floor(this.random() * Math.min(this.refreshJitterMs, planned / 10));
    const delay = Math.max(0, planned - jitter);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refresh();
    }, delay);
  }

  private clearRefreshTimer(): void {
    if (this.refreshTimer !== null) {
      clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
    }
  }

  /** Disconnects and connects again so the server sees the current identity (auth is read per connect). */
  private reconnect(): void {
    if (this.stopped || !this.started) return;
    this.socket.disconnect();
    this.setState({ connection: 'connecting' });
    this.socket.connect();
  }

  // ---- socket events ----

  private onConnect = (): void => {
    this.authFailures = 0;
    this.setState({ connection: 'connected', epoch: this.state.epoch + 1 });
  };

  private onDisconnect = (reason: string): void => {
    if (reason === 'io client disconnect') return; // our own reconnect / sign-out
    this.setState({ connection: 'reconnecting' });
    if (reason === 'io server disconnect') {
      // The server closed us (e.g. a revoked token); socket.io will not retry by itself.
      void (async () => {
        if (this.token) await this.refresh();
        if (!this.stopped && !this.socket.connected) this.socket.connect();
      })();
    }
  };

  private onConnectError = (err: Error): void => {
    if (err?.message !== NOT_AUTHORIZED) {
      // Transport trouble: socket.io keeps retrying on its own.
      this.setState({ connection: 'reconnecting' });
      return;
    }
    void this.handleNotAuthorized();
  };

  /** The token was refused at connect: refresh it, then connect again with the new one. */
  private async handleNotAuthorized(): Promise<void> {
    this.authFailures += 1;
    if (this.authFailures > 2) {
      // Refreshing did not help; stop hammering the server.
      this.clearSession(this.token ? SESSION_EXPIRED_NOTICE : null);
      this.setState({ connection: 'failed' });
      return;
    }
    if (this.token) {
      await this.refresh(); // on 401 this clears the session, so we reconnect anonymously
    }
    if (this.stopped) return;
    this.setState({ connection: 'connecting' });
    this.socket.connect();
  }

  private onChannelMessage = (e: MessageEvent): void => {
    const msg = e.data as { type?: unknown; user?: User; accessToken?: unknown } | null;
    if (msg?.type === 'signed-out') {
      if (this.token) {
        this.clearSession(null);
        this.reconnect();
      }
    } else if (msg?.type === 'user' && msg.user && typeof msg.user.id === 'string') {
      // Another tab changed the profile.
      this.applyUser(msg.user);
    } else if (msg?.type === 'token' && typeof msg.accessToken === 'string' && msg.user && typeof msg.user.id === 'string') {
      // Another tab signed in or refreshed: use its token instead of spending the cookie again.
      // Ignore one that expires no later than ours (a message overtaken by our own refresh).
      const incoming = tokenExpiresAtMs(msg.accessToken) ?? 0;
      const current = this.token ? (tokenExpiresAtMs(this.token) ?? 0) : -1;
      if (msg.accessToken === this.token || (this.state.user?.id === msg.user.id && incoming <= current)) return;
      this.authFailures = 0;
      this.adoptToken({ user: msg.user, accessToken: msg.accessToken });
    }
  };

  // ---- requests and pushes ----

  /**
   * A typed Socket.IO request. When the server says 401 while we hold a token (it expired
   * under us), refresh once and retry.
   */
  async request<E extends RequestEvent>(
    event: E,
    payload: RequestMap[E]['payload'],
    options: RequestOptions = {},
  ): Promise<{ data: RequestMap[E]['data'] }> {
    const opts = { timeoutMs: options.timeoutMs ?? this.requestTimeoutMs };
    try {
      return await socketRequest<RequestMap[E]['data']>(this.socket, event, payload, opts);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && this.token) {
        if (await this.refresh()) {
          return socketRequest<RequestMap[E]['data']>(this.socket, event, payload, opts);
        }
      }
      throw e;
    }
  }

  /** Listens for a server push; returns the unsubscribe function. */
  onPush<E extends PushEvent>(event: E, handler: (payload: PushMap[E]) => void): () => void {
    const listener = (payload: PushMap[E]) => handler(payload);
    this.socket.on(event, listener);
    return () => {
      this.socket.off(event, listener);
    };
  }
}
