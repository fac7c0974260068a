import { describe, expect, it } from 'vitest';
import { orderPaidCents, orderStuffTitle, paidDiffersFromPrice } from './orders';

describe('order display helpers', () => {
  it('uses the title the order carries, and none when it is empty (an old order) or missing', () => {
    expect(orderStuffTitle({ stuffTitle: 'Linear algebra notes' })).toBe('Linear algebra notes');
    expect(orderStuffTitle({ stuffTitle: '' })).toBeNull();
    expect(orderStuffTitle({ stuffTitle: '   ' })).toBeNull();
    expect(orderStuffTitle({} as { stuffTitle: string })).toBeNull();
  });

  it('knows what was paid only for paid orders, and whether it differs from the list price', () => {
    expect(orderPaidCents({ status: 'complete', paidCents: 900 })).toBe(900);
    expect(orderPaidCents({ status: 'refunded', paidCents: 900 })).toBe(900);
    expect(orderPaidCents({ status: 'created', paidCents: null })).toBeNull();
    expect(orderPaidCents({ status: 'complete', paidCents: null })).toBeNull();
    expect(orderPaidCents({ status: 'complete' } as { status: 'complete'; paidCents: number | null })).toBeNull();
    expect(paidDiffersFromPrice({ status: 'complete', paidCents: 900, priceCents: 1200 })).toBe(true);
    expect(paidDiffersFromPrice({ status: 'complete', paidCents: 1200, priceCents: 1200 })).toBe(false);
    expect(paidDiffersFromPrice({ status: 'created', paidCents: null, priceCents: 1200 })).toBe(false);
  });
});
