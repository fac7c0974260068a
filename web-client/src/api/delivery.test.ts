import { describe, expect, it } from 'vitest';
import {
  linkExpired,
  linksExpireAtMs,
  linksStale,
  nothingToDeliver,
  refreshDelayMs,
  stuffFiles,
  targetKey,
} from './delivery';
import type { Delivery, DeliveryFile, Stuff } from './types';

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);
const link = (id: string, expiresInMs: number): DeliveryFile => ({
  id,
  name: `${id}.pdf`,
  sizeBytes: 10,
  contentType: 'application/pdf',
  sha256: '00'.repeat(32),
  url: `/api/files/${id}?sig=x`,
  expiresAt: new Date(T0 + expiresInMs).toISOString(),
});
const delivery = (...files: DeliveryFile[]): Delivery => ({ secretNote: null, files });

describe('delivery link freshness', () => {
  it('the earliest expiry counts', () => {
    expect(linksExpireAtMs(delivery())).toBeNull();
    expect(linksExpireAtMs(delivery(link('a', 300_000), link('b', 100_000)))).toBe(T0 + 100_000);
  });

  it('links are stale within the margin of their expiry', () => {
    const d = delivery(link('a', 300_000));
    expect(linksStale(d, T0)).toBe(false);
    expect(linksStale(d, T0 + 284_999)).toBe(false);
    expect(linksStale(d, T0 + 285_000)).toBe(true);
    expect(linksStale(delivery(), T0 + 10 ** 9)).toBe(false); // a note alone never goes stale
  });

  it('a link is not followed after (or just before) its expiresAt', () => {
    expect(linkExpired(link('a', 300_000), T0)).toBe(false);
    expect(linkExpired(link('a', 300_000), T0 + 298_000)).toBe(true);
    expect(linkExpired({ expiresAt: 'garbage' }, T0)).toBe(true);
  });

  it('refreshes 15 s before the earliest expiry, never in a tight loop', () => {
    expect(refreshDelayMs(delivery(), T0)).toBeNull();
    expect(refreshDelayMs(delivery(link('a', 300_000)), T0)).toBe(285_000);
    // Short links: at half their remaining life, but at least 5 s apart.
    expect(refreshDelayMs(delivery(link('a', 20_000)), T0)).toBe(10_000);
    expect(refreshDelayMs(delivery(link('a', 1_000)), T0)).toBe(5_000);
    expect(refreshDelayMs(delivery(link('a', -60_000)), T0)).toBe(5_000);
  });

  it('targetKey tells orders and stuff apart', () => {
    expect(targetKey({ orderId: 'x' })).toBe('order:x');
    expect(targetKey({ stuffId: 'x' })).toBe('stuff:x');
    expect(targetKey(null)).toBe('');
  });
});

describe('what a stuff delivers', () => {
  const base = {
    id: 's1',
    title: 'Notes',
    description: '',
    priceCents: 100,
    sellerId: 'u',
    status: 'available',
    version: 1,
    createdAt: '',
    updatedAt: '',
  } as const;

  it('nothing to deliver only when the server says so', () => {
    expect(nothingToDeliver({ ...base, files: [], hasSecretNote: false })).toBe(true);
    expect(nothingToDeliver({ ...base, files: [], hasSecretNote: true })).toBe(false);
    expect(nothingToDeliver({ ...base, files: [link('a', 1)], hasSecretNote: false })).toBe(false);
    // An older server without the delivery fields: BUY stays possible, the server decides.
    expect(nothingToDeliver(base as unknown as Stuff)).toBe(false);
    expect(stuffFiles(base as unknown as Stuff)).toEqual([]);
  });
});
