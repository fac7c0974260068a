import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './errors';
import { parseAck, request } from './socket';
import { FakeSocket } from '../test/fakes';

describe('request helper', () => {
  let socket: FakeSocket;
  beforeEach(() => {
    vi.useFakeTimers();
    socket = new FakeSocket((cb) => cb({}));
    socket.connected = true;
  });
  afterEach(() => vi.useRealTimers());

  it('emits the event with the payload and resolves {data} from a data ack', async () => {
    const p = request<{ id: string }>(socket, 'stuff:get', { id: 's1' });
    const sent = socket.lastEmitted('stuff:get')!;
    expect(sent.payload).toEqual({ id: 's1' });
    sent.reply({ data: { id: 's1' } });
    await expect(p).resolves.toEqual({ data: { id: 's1' } });
  });

  it('resolves data that is an array or null', async () => {
    const p1 = request(socket, 'order:list', {});
    socket.lastEmitted('order:list')!.reply({ data: [] });
    await expect(p1).resolves.toEqual({ data: [] });
    const p2 = request(socket, 'x', {});
    socket.lastEmitted('x')!.reply({ data: null });
    await expect(p2).resolves.toEqual({ data: null });
  });

  it('rejects an error ack with a typed ApiError carrying status and errors', async () => {
    const p = request(socket, 'stuff:create', { title: '' });
    socket.lastEmitted('stuff:create')!.reply({
      status: 400,
      errors: [{ message: 'Title must be 1 to 120 characters', field: 'title' }, { message: 'Something else' }],
    });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    const apiErr = err as ApiError;
    expect(apiErr.status).toBe(400);
    expect(apiErr.kind).toBe('server');
    expect(apiErr.errors).toEqual([
      { message: 'Title must be 1 to 120 characters', field: 'title' },
      { message: 'Something else' },
    ]);
    expect(apiErr.fieldErrors()).toEqual({ title: 'Title must be 1 to 120 characters' });
    expect(apiErr.generalErrors()).toEqual(['Something else']);
  });

  it('keeps the contract messages of a 409 exactly', async () => {
    const msg = 'The stuff is being checked out by someone else, please come back later';
    const p = request(socket, 'order:create', { stuffId: 's1' });
    socket.lastEmitted('order:create')!.reply({ status: 409, errors: [{ message: msg }] });
    await expect(p).rejects.toMatchObject({ status: 409, errors: [{ message: msg }] });
  });

  it('rejects with a 503 timeout error when no ack arrives in time', async () => {
    const p = request(socket, 'stuff:list', {}, { timeoutMs: 1000 });
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(999);
    expect(socket.lastEmitted('stuff:list')!.answered).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = (await caught) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(503);
    expect(err.kind).toBe('timeout');
    expect(err.errors[0]!.message).toMatch(/did not answer/);
  });

  it('reports a network error when the timeout hits while disconnected', async () => {
    socket.connected = false;
    const p = request(socket, 'stuff:list', {}, { timeoutMs: 500 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(500);
    const err = (await p) as ApiError;
    expect(err.status).toBe(0);
    expect(err.kind).toBe('network');
  });

  it('uses a default timeout longer than the router RPC timeout', async () => {
    void request(socket, 'stuff:list', {}).catch(() => undefined);
    expect(socket.lastEmitted('stuff:list')!.timeoutMs).toBeGreaterThan(5000);
  });

  it('waits longer than the router (30 s) for actions that call the payment gateway', async () => {
    void request(socket, 'payment:create', {}).catch(() => undefined);
    expect(socket.lastEmitted('payment:create')!.timeoutMs).toBeGreaterThan(30_000);
    for (const event of ['payment:intent', 'payment:refund']) {
      void request(socket, event, {}).catch(() => undefined);
      expect(socket.lastEmitted(event)!.timeoutMs).toBeGreaterThan(30_000);
    }
    void request(socket, 'coupon:check', {}).catch(() => undefined);
    expect(socket.lastEmitted('coupon:check')!.timeoutMs).toBe(8000);
  });
});

describe('parseAck', () => {
  it('treats a malformed ack as a generic 500, never exposing raw JSON', () => {
    expect(() => parseAck('nope')).toThrow(ApiError);
    try {
      parseAck({ weird: true });
    } catch (e) {
      expect((e as ApiError).status).toBe(500);
      expect((e as ApiError).message).not.toContain('{');
    }
  });

  it('defaults a missing or bogus status to 500 and drops malformed error items', () => {
    try {
      parseAck({ errors: [{ message: 'Boom' }, { nope: 1 }, 'x'] });
      expect.unreachable();
    } catch (e) {
      expect((e as ApiError).status).toBe(500);
      expect((e as ApiError).errors).toEqual([{ message: 'Boom' }]);
    }
  });

  it('gives an error ack without messages a readable message for its status', () => {
    try {
      parseAck({ status: 429, errors: [] });
      expect.unreachable();
    } catch (e) {
      expect((e as ApiError).errors[0]!.message).toMatch(/Too many requests/);
    }
  });
});
