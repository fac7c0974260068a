// The seller's sales (shared/CONTRACT.md, "Marketplace"): `order:sales {}` answers every sale,
// newest first, with the total earned; the `sale:completed` push brings each new one at once.
import { formatCents } from './format';
import type { Sale, SalesSummary } from './types';

export const NO_SALES_MESSAGE = 'No sales yet';

/** The summary with a pushed sale on top; a sale already there (same order) changes nothing. */
export function applySale(summary: SalesSummary, sale: Sale): SalesSummary {
  if (summary.sales.some((s) => s.orderId === sale.orderId)) return summary;
  return {
    sales: [sale, ...summary.sales].sort((a, b) => b.paidAt.localeCompare(a.paidAt)),
    totalEarnedCents: summary.totalEarnedCents + sale.earnedCents,
  };
}

/**
 * The server's answer, plus the pushed sales it does not have yet (an answer that left before the
 * push): a sale seen once never disappears from the list.
 */
export function mergeSales(server: SalesSummary, pushed: readonly Sale[]): SalesSummary {
  return pushed.reduce(applySale, { sales: [...server.sales].sort((a, b) => b.paidAt.localeCompare(a.paidAt)), totalEarnedCents: server.totalEarnedCents });
}

/** The toast for a sale: `Sold: Notes — you earned €9.00`. */
export function saleMessage(sale: Pick<Sale, 'stuffTitle' | 'earnedCents'>, currency?: string): string {
  const title = sale.stuffTitle.trim() || 'your stuff';
  return `Sold: ${title} — you earned ${formatCents(sale.earnedCents, currency)}`;
}
