// The one Socket.IO connection per tab and the typed request helper.
import { io } from 'socket.io-client';
import { ApiError, parseErrorItems } from './errors';

export type AuthPayload = { token: string } | Record<string, never>;
export type AuthCallback = (cb: (data: AuthPayload) => void) => void;

type Listener = (...args: any[]) => void;

/**
 * The part of socket.io-client's Socket this app uses. Kept structural so tests can pass a fake.
 */
export interface LiveSocket {
  readonly connected: boolean;
  connect(): unknown;
  disconnect(): unknown;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  timeout(ms: number): { emit(event: string, ...args: unknown[]): unknown };
}

/** One socket per tab, not connected yet; `auth` is asked for on every (re)connect. */
export function createSocket(auth: AuthCallback): LiveSocket {
  const socket = io({
    auth: auth as never,
    transports: ['websocket', 'polling'],
    // Fall back to long-polling when a proxy blocks WebSocket (instead of retrying WebSocket forever).
    tryAllTransports: true,
    autoConnect: false,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 5000,
  });
  return socket as unknown as LiveSocket;
}

/** The router gives up on a service after RPC_TIMEOUT_MS (5 s by default); wait a little longer. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 8000;

/**
 * Actions that call the payment gateway: the router waits 30 s for them (Stripe may take 20 s,
 * `GATEWAY_REPLY_WAIT` in ms-common), so the client waits a little longer, not 8 s.
 */
export const GATEWAY_EVENTS: ReadonlySet<string> = new Set(['payment:create', 'payment:intent', 'payment:refund', 'payout:onboard', 'payout:status']);
export const GATEWAY_REQUEST_TIMEOUT_MS = 35_000;

/** How long to wait for the ack of `event` when the caller did not say. */
export function requestTimeoutFor(event: string): number {
  return GATEWAY_EVENTS.has(event) ? GATEWAY_REQUEST_TIMEOUT_MS : DEFAULT_REQUEST_TIMEOUT_MS;
}

export interface RequestOptions {
  timeoutMs?: number;
}

/** Turns an ack (`{data}` or `{status, errors}`) into a result or an ApiError. */
export function parseAck<T>(ack: unknown): { data: T } {
  if (typeof ack === 'object' && ack !== null) {
    if ('data' in ack && !('errors' in ack)) {
      return { data: (ack as { data: T }).data };
    }
    if ('errors' in ack) {
      const rawStatus = (ack as { status?: unknown }).status;
      const status = typeof rawStatus === 'number' && rawStatus >= 400 && rawStatus < 600 ? rawStatus : 500;
      throw new ApiError(status, parseErrorItems(ack));
    }
  }
  throw new ApiError(500, [{ message: 'Unexpected response from the server.' }]);
}

/**
 * Emits `event` with `payload` and an acknowledgement callback. Resolves `{data}`; rejects with an
 * ApiError carrying `status` and `errors[{message, field?}]`, also when no ack arrives in time.
 */
export function request<T = unknown>(
  socket: LiveSocket,
  event: string,
  payload: unknown,
  options: RequestOptions = {},
): Promise<{ data: T }> {
  const timeoutMs = options.timeoutMs ?? requestTimeoutFor(event);
  return new Promise<{ data: T }>((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, payload, (err: unknown, ack: unknown) => {
      if (err) {
        if (!socket.connected) {
          reject(new ApiError(0, [{ message: 'Not connected to the server. Check your connection and try again.' }], 'network'));
        } else {
          reject(new ApiError(503, [{ message: 'The server did not answer in time. Please try again.' }], 'timeout'));
        }
        return;
      }
      try {
        resolve(parseAck<T>(ack));
      } catch (e) {
        reject(e);
      }
    });
  });
}
