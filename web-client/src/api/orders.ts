// What an order says about itself for display: the stuff's title as it was when ordered, and what
// was actually charged. Orders older than these fields carry `stuffTitle: ""` (the caller then
// fetches the current title with `stuff:get`) and `paidCents: null`; a server that does not send
// the fields at all is treated the same way.
import type { Order } from './types';

/** The title the order carries, or null when it has none (an old order: ask `stuff:get`). */
export function orderStuffTitle(order: Pick<Order, 'stuffTitle'>): string | null {
  const t = typeof order.stuffTitle === 'string' ? order.stuffTitle.trim() : '';
  return t ? order.stuffTitle : null;
}

/** What was charged for a paid order (after coupons); null while unpaid (or unknown). */
export function orderPaidCents(order: Pick<Order, 'paidCents' | 'status'>): number | null {
  if (order.status !== 'complete' && order.status !== 'refunded') return null;
  return typeof order.paidCents === 'number' ? order.paidCents : null;
}

/** True when the buyer paid something other than the list price (a coupon). */
export function paidDiffersFromPrice(order: Pick<Order, 'paidCents' | 'priceCents' | 'status'>): boolean {
  const paid = orderPaidCents(order);
  return paid !== null && paid !== order.priceCents;
}
