// Display helpers. Every amount of money in the UI is formatted here, from integer minor units
// ("cents", as the contract and Stripe count them) in one currency: the server's `CURRENCY`
// (`GET /api/config`, see config.ts), `eur` until it is known. Formatting is
// `Intl.NumberFormat(locale, {style: 'currency', currency})`, with the browser's locale.

/** ISO 4217, lower-case, as the server sends it. Used until `/api/config` answers, or when it fails. */
export const DEFAULT_CURRENCY = 'eur';

/** The contract's price limits, in minor units (Stripe's smallest charge is 0.50). */
export const PRICE_MIN_CENTS = 50;
export const PRICE_MAX_CENTS = 100_000_000;

let currentCurrency = DEFAULT_CURRENCY;
/** undefined: the browser's locale. Only tests (and a future language switch) set it. */
let currentLocale: string | undefined;
const listeners = new Set<() => void>();

/** A well-formed ISO 4217 code (three letters) that this browser's Intl accepts, lower-cased; else null. */
export function normalizeCurrency(code: unknown): string | null {
  if (typeof code !== 'string' || !/^[A-Za-z]{3}$/.test(code.trim())) return null;
  const c = code.trim().toLowerCase();
  try {
    new Intl.NumberFormat('en', { style: 'currency', currency: c });
    return c;
  } catch {
    return null;
  }
}

export function getCurrency(): string {
  return currentCurrency;
}

/** Sets the currency every price is shown in; an invalid code is ignored. Returns the one in use. */
export function setCurrency(code: unknown): string {
  const c = normalizeCurrency(code);
  if (c && c !== currentCurrency) {
    currentCurrency = c;
    for (const l of Array.from(listeners)) l();
  }
  return currentCurrency;
}

/** Pins the locale (tests); `undefined` goes back to the browser's. */
export function setMoneyLocale(locale: string | undefined): void {
  if (locale === currentLocale) return;
  currentLocale = locale;
  formatters.clear();
  for (const l of Array.from(listeners)) l();
}

/** For `useSyncExternalStore`: called when the currency (or locale) changes. */
export function subscribeCurrency(listener: () => void): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string, locale: string | undefined = currentLocale): Intl.NumberFormat {
  const key = `${locale ?? ''}|${currency}`;
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, { style: 'currency', currency });
    } catch {
      f = new Intl.NumberFormat(locale, { style: 'currency', currency: DEFAULT_CURRENCY });
    }
    formatters.set(key, f);
  }
  return f;
}

/**
 * How many decimals the currency has: 2 for eur or usd, 0 for jpy or krw, 3 for kwd. Amounts are
 * integers of 10^-digits of the unit (Stripe's "smallest currency unit": cents, yen, fils).
 */
export function minorDigits(currency: string = currentCurrency): number {
  return formatter(currency, 'en').resolvedOptions().maximumFractionDigits ?? 2;
}

/** Integer minor units as money in the current (or given) currency: `€12.50`, `12,50 €`, `¥1,250`, `-US$0.99`. */
export function formatCents(cents: number, currency: string = currentCurrency, locale: string | undefined = currentLocale): string {
  const c = normalizeCurrency(currency) ?? DEFAULT_CURRENCY;
  const whole = Math.trunc(cents);
  return formatter(c, locale).format(whole / 10 ** minorDigits(c));
}

/** The currency's symbol in the user's locale (`€`, `US$`, `¥`), for labels such as "Price (€)". */
export function currencySymbol(currency: string = currentCurrency, locale: string | undefined = currentLocale): string {
  const c = normalizeCurrency(currency) ?? DEFAULT_CURRENCY;
  return formatter(c, locale).formatToParts(0).find((p) => p.type === 'currency')?.value ?? c.toUpperCase();
}

/**
 * An example of what to type in a price field, with the locale's decimal separator when it is
 * `.` or `,` (both are always accepted): `12.50` (en), `12,50` (de), `1250` (jpy), `12.500` (kwd).
 */
export function priceExample(currency: string = currentCurrency, locale: string | undefined = currentLocale): string {
  const d = minorDigits(currency);
  if (d === 0) return '1250';
  const decimal = new Intl.NumberFormat(locale).formatToParts(1.5).find((p) => p.type === 'decimal')?.value;
  return `12${decimal === ',' ? ',' : '.'}${'5'.padEnd(d, '0')}`;
}

/**
 * Parses what a person types as a price into minor units of `currency`: `12`, `12.5`, `12,50`,
 * `€12.50`, `12,50 €`, `EUR 12.50`, `1,234.50`, `1.234,50`, `1 234,50`. A single `.` or `,` is the
 * decimal separator (at most the currency's decimals after it, so `12.505` is refused rather
 * than read as 12505); repeated separators, or one of each kind, group thousands. For a
 * zero-decimal currency (jpy) only whole amounts are accepted, and `1,000` / `1.000` mean a
 * thousand. Returns null for anything else (negative, letters in the number, too many decimals).
 */
export function parsePriceToCents(input: string, currency: string = currentCurrency): number | null {
  const digits = minorDigits(currency);
  // A currency symbol or code before or after the number (`€`, `US$`, `EUR`, `kr.`); inside it,
  // spaces (also the no-break ones Intl writes) and apostrophes (1'234.50) group thousands.
  const m = /^(?:[\p{Sc}\p{L}][\p{Sc}\p{L}.\s]*)?(.*?)(?:\s*[\p{Sc}\p{L}][\p{Sc}\p{L}.\s]*)?$/u.exec(input.normalize('NFKC').trim());
  const number = m?.[1] ?? '';
  if (/[\s'’]/.test(number) && !/^\d{1,3}(?:[\s'’]\d{3})+(?:[.,]\d+)?$/.test(number)) return null;
  const s = number.replace(/[\s'’]/g, '');
  if (!/^\d[\d.,]*$/.test(s)) return null;
  const last = Math.max(s.lastIndexOf('.'), s.lastIndexOf(','));
  let whole: string;
  let frac = '';
  if (last < 0) {
    whole = s;
  } else {
    const sep = s[last] as '.' | ',';
    const other = sep === '.' ? ',' : '.';
    const head = s.slice(0, last);
    const tail = s.slice(last + 1);
    const grouped = (text: string, by: string) => new RegExp(`^\\d{1,3}(\\${by}\\d{3})+$`).test(text);
    if (head.includes(sep)) {
      // 1,000,000 or 1.000.000: every separator groups thousands.
      if (!grouped(s, sep)) return null;
      whole = s.split(sep).join('');
    } else if (head.includes(other)) {
      // 1,234.50 or 1.234,50: the last separator is the decimal one.
      if (!grouped(head, other) || !/^\d+$/.test(tail) || tail.length > digits) return null;
      whole = head.split(other).join('');
      frac = tail;
    } else if (/^\d+$/.test(tail) && tail.length <= digits) {
      whole = head;
      frac = tail;
    } else if (digits === 0 && grouped(s, sep)) {
      // ¥1,000: no decimals to confuse it with.
      whole = head + tail;
    } else {
      return null;
    }
  }
  const cents = Number(whole) * 10 ** digits + Number(frac.padEnd(digits, '0') || '0');
  return Number.isSafeInteger(cents) ? cents : null;
}

/** Minor units as the text of a price input, without symbol or grouping (`1250` → `12.50`; jpy `1250` → `1250`). */
export function centsToInput(cents: number, currency: string = currentCurrency): string {
  const d = minorDigits(currency);
  const abs = Math.abs(Math.trunc(cents));
  const sign = cents < 0 ? '-' : '';
  if (d === 0) return `${sign}${abs}`;
  const unit = 10 ** d;
  return `${sign}${Math.floor(abs / unit)}.${(abs % unit).toString().padStart(d, '0')}`;
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
  withdrawn: 'Withdrawn',
} as const;

/** What a buyer (anyone but its seller) reads for a withdrawn stuff. */
export const NO_LONGER_FOR_SALE_LABEL = 'No longer for sale';

export const ORDER_STATUS_LABEL = {
  created: 'Awaiting payment',
  cancelled: 'Cancelled',
  complete: 'Complete',
  refunded: 'Refunded',
} as const;
