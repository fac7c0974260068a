// Display helpers. Prices are shown from integer cents as `12.50 €`, everywhere.

export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(Math.trunc(cents));
  const euros = Math.floor(abs / 100);
  const rest = abs % 100;
  return `${sign}${euros}.${rest.toString().padStart(2, '0')} €`;
}

/**
 * Parses what a person types as a price (`12`, `12.5`, `12,50`, `12.50 €`) into cents.
 * Returns null when it is not a plain amount with at most two decimals.
 */
export function parsePriceToCents(input: string): number | null {
  const s = input.trim().replace(/\s*€$/, '').replace(',', '.');
  if (!/^\d+(\.\d{1,2})?$/.test(s)) return null;
  const [whole, frac = ''] = s.split('.');
  const cents = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
  return Number.isSafeInteger(cents) ? cents : null;
}

/** Cents as the text of a price input (`1250` → `12.50`). */
export function centsToInput(cents: number): string {
  return formatCents(cents).replace(' €', '');
}

/** An RFC 3339 time in the user's locale and time zone. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export const STUFF_STATUS_LABEL = {
  available: 'Available',
  reserved: 'Being checked out',
  sold: 'Sold',
} as const;

export const ORDER_STATUS_LABEL = {
  created: 'Awaiting payment',
  cancelled: 'Cancelled',
  complete: 'Complete',
  refunded: 'Refunded',
} as const;
