import { describe, expect, it } from 'vitest';
import { applySale, mergeSales, saleMessage } from './sales';
import type { Sale } from './types';

const sale = (orderId: string, paidAt: string, earnedCents = 900): Sale => ({
  orderId,
  stuffId: `s-${orderId}`,
  stuffTitle: `Title ${orderId}`,
  buyerDisplayName: 'bob',
  paidCents: 1000,
  feeCents: 100,
  earnedCents,
  paidAt,
});

describe('sales', () => {
  it('a pushed sale goes on top and adds to the total, once', () => {
    const start = { sales: [sale('o1', '2026-11-01T12:00:00Z')], totalEarnedCents: 900 };
    const next = applySale(start, sale('o2', '2026-11-02T12:00:00Z', 450));
    expect(next.sales.map((s) => s.orderId)).toEqual(['o2', 'o1']);
    expect(next.totalEarnedCents).toBe(1350);
    expect(applySale(next, sale('o2', '2026-11-02T12:00:00Z', 450))).toBe(next);
  });

  it('an answer keeps the pushed sales it does not know yet', () => {
    const pushed = [sale('o3', '2026-11-03T12:00:00Z')];
    const server = { sales: [sale('o1', '2026-11-01T12:00:00Z')], totalEarnedCents: 900 };
    expect(mergeSales(server, pushed)).toEqual({ sales: [pushed[0], server.sales[0]], totalEarnedCents: 1800 });
    const caughtUp = { sales: [pushed[0]!, server.sales[0]!], totalEarnedCents: 1800 };
    expect(mergeSales(caughtUp, pushed)).toEqual(caughtUp);
  });

  it('a toast says what sold and what I earned, in the currency', () => {
    expect(saleMessage({ stuffTitle: 'Notes', earnedCents: 900 }, 'eur')).toBe('Sold: Notes — you earned €9.00');
    expect(saleMessage({ stuffTitle: 'Notes', earnedCents: 900 }, 'usd')).toBe('Sold: Notes — you earned $9.00');
    expect(saleMessage({ stuffTitle: ' ', earnedCents: 1250 }, 'jpy')).toBe('Sold: your stuff — you earned ¥1,250');
  });
});
