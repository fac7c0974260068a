import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  centsToInput,
  currencySymbol,
  DEFAULT_CURRENCY,
  formatCents,
  getCurrency,
  minorDigits,
  normalizeCurrency,
  parsePriceToCents,
  priceExample,
  setCurrency,
  setMoneyLocale,
  subscribeCurrency,
} from './format';

// Intl puts no-break spaces (U+00A0, U+202F) in some locales; compare with plain spaces.
const plain = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');

afterEach(() => {
  setCurrency(DEFAULT_CURRENCY);
  setMoneyLocale('en-US');
});

describe('formatCents', () => {
  it('formats minor units in the current currency, eur by default', () => {
    expect(getCurrency()).toBe('eur');
    expect(formatCents(1250)).toBe('€12.50');
    expect(formatCents(0)).toBe('€0.00');
    expect(formatCents(50)).toBe('€0.50');
    expect(formatCents(100_000_000)).toBe('€1,000,000.00');
    setCurrency('usd');
    expect(formatCents(1250)).toBe('$12.50');
    setCurrency('GBP');
    expect(getCurrency()).toBe('gbp');
    expect(formatCents(1250)).toBe('£12.50');
  });

  it('follows the locale: symbol position, separators', () => {
    expect(plain(formatCents(123456, 'eur', 'de-DE'))).toBe('1.234,56 €');
    expect(plain(formatCents(123456, 'eur', 'fr-FR'))).toBe('1 234,56 €');
    expect(formatCents(123456, 'eur', 'en-GB')).toBe('€1,234.56');
    expect(formatCents(123456, 'usd', 'en-GB')).toBe('US$1,234.56');
    expect(plain(formatCents(123456, 'chf', 'de-CH'))).toMatch(/^CHF 1['’]234\.56$/);
    expect(formatCents(123456, 'usd', 'en-US')).toBe('$1,234.56');
    // setMoneyLocale changes the default.
    setMoneyLocale('de-DE');
    expect(plain(formatCents(1250))).toBe('12,50 €');
  });

  it('uses the browser locale when none is pinned', () => {
    setMoneyLocale(undefined);
    expect(formatCents(1250, 'eur')).toBe(new Intl.NumberFormat(undefined, { style: 'currency', currency: 'eur' }).format(12.5));
  });

  it('formats negative amounts (refunds, discounts)', () => {
    expect(formatCents(-1250)).toBe('-€12.50');
    expect(formatCents(-99, 'usd')).toBe('-$0.99');
    expect(plain(formatCents(-1250, 'eur', 'de-DE'))).toBe('-12,50 €');
  });

  it('zero-decimal and three-decimal currencies count their own smallest unit', () => {
    expect(minorDigits('eur')).toBe(2);
    expect(minorDigits('jpy')).toBe(0);
    expect(minorDigits('krw')).toBe(0);
    expect(minorDigits('kwd')).toBe(3);
    expect(formatCents(1250, 'jpy')).toBe('¥1,250');
    expect(formatCents(1250, 'jpy', 'ja-JP')).toBe('￥1,250');
    expect(formatCents(-50, 'jpy')).toBe('-¥50');
    expect(plain(formatCents(1250, 'kwd'))).toBe('KWD 1.250');
    expect(formatCents(1250, 'krw', 'ko-KR')).toBe('₩1,250');
  });

  it('drops fractions of a cent and survives a bad currency', () => {
    expect(formatCents(1250.9)).toBe('€12.50');
    expect(formatCents(1250, 'not a code')).toBe('€12.50');
  });
});

describe('currency setting', () => {
  it('accepts ISO codes in any case, ignores anything else, and tells subscribers', () => {
    const seen: string[] = [];
    const off = subscribeCurrency(() => seen.push(getCurrency()));
    expect(setCurrency('USD')).toBe('usd');
    expect(setCurrency('usd')).toBe('usd'); // no change, no notification
    expect(setCurrency('dollars')).toBe('usd');
    expect(setCurrency(42)).toBe('usd');
    expect(setCurrency('')).toBe('usd');
    expect(setCurrency('jpy')).toBe('jpy');
    off();
    setCurrency('eur');
    expect(seen).toEqual(['usd', 'jpy']);
    expect(normalizeCurrency(' Eur ')).toBe('eur');
    expect(normalizeCurrency('eu')).toBeNull();
    expect(normalizeCurrency(null)).toBeNull();
  });

  it('the symbol and the example follow the currency', () => {
    expect(currencySymbol('eur')).toBe('€');
    expect(currencySymbol('usd', 'en-GB')).toBe('US$');
    expect(currencySymbol('jpy')).toBe('¥');
    expect(priceExample('eur')).toBe('12.50');
    expect(priceExample('jpy')).toBe('1250');
    expect(priceExample('kwd')).toBe('12.500');
    expect(priceExample('eur', 'de-DE')).toBe('12,50');
    expect(priceExample('eur', 'ar-EG')).toBe('12.50'); // never digits the parser cannot read
    expect(parsePriceToCents(priceExample('eur', 'de-DE'), 'eur')).toBe(1250);
  });

  it('subscribers can unsubscribe while being notified', () => {
    const a = vi.fn();
    const offB = subscribeCurrency(() => offB());
    const offA = subscribeCurrency(a);
    setCurrency('usd');
    setCurrency('eur');
    expect(a).toHaveBeenCalledTimes(2);
    offA();
  });
});

describe('parsePriceToCents', () => {
  it('reads what people type, in a 2-decimal currency', () => {
    for (const [typed, cents] of [
      ['12', 1200],
      ['12.5', 1250],
      ['12.50', 1250],
      ['12,50', 1250],
      [' 12,5 ', 1250],
      ['€12.50', 1250],
      ['12,50 €', 1250],
      ['12.50€', 1250],
      ['EUR 12.50', 1250],
      ['12.50 eur', 1250],
      ['$3', 300],
      ['US$ 3.99', 399],
      ['R$ 12,50', 1250],
      ['1,234.50', 123450],
      ['1.234,50', 123450],
      ['1 234,50', 123450],
      ['1\u202f234,50', 123450],
      ["1'234.50", 123450],
      ['1,000,000', 100_000_000],
      ['0.49', 49],
      ['0', 0],
    ] as const) {
      expect([typed, parsePriceToCents(typed, 'eur')]).toEqual([typed, cents]);
    }
  });

  it('refuses what is not a plain positive amount', () => {
    for (const typed of ['', ' ', 'abc', '12.505', '1,000', '12.', '.5', '-5', '1e5', '12..5', '1,23,4', '12.5.0', '12 34 5,6 7', '1 2345', '€', '1.234.5', '12 €50']) {
      expect([typed, parsePriceToCents(typed, 'eur')]).toEqual([typed, null]);
    }
    expect(parsePriceToCents('9'.repeat(20), 'eur')).toBeNull();
  });

  it('uses the current currency by default', () => {
    expect(parsePriceToCents('12.50')).toBe(1250);
    setCurrency('jpy');
    expect(parsePriceToCents('1250')).toBe(1250);
    expect(parsePriceToCents('12.50')).toBeNull();
  });

  it('zero-decimal currencies take whole amounts; a separator before three digits groups', () => {
    expect(parsePriceToCents('1250', 'jpy')).toBe(1250);
    expect(parsePriceToCents('¥1,250', 'jpy')).toBe(1250);
    expect(parsePriceToCents('1.250 ¥', 'jpy')).toBe(1250);
    expect(parsePriceToCents('1,000,000', 'jpy')).toBe(1_000_000);
    expect(parsePriceToCents('12.5', 'jpy')).toBeNull();
    expect(parsePriceToCents('12,50', 'jpy')).toBeNull();
    // Three decimals: a separator before three digits is the decimal one.
    expect(parsePriceToCents('12.5', 'kwd')).toBe(12_500);
    expect(parsePriceToCents('1,000', 'kwd')).toBe(1000);
  });
});

describe('centsToInput', () => {
  it('writes minor units back as a plain amount the parser reads', () => {
    expect(centsToInput(1250, 'eur')).toBe('12.50');
    expect(centsToInput(5, 'eur')).toBe('0.05');
    expect(centsToInput(100_000_000, 'eur')).toBe('1000000.00');
    expect(centsToInput(1250, 'jpy')).toBe('1250');
    expect(centsToInput(5, 'kwd')).toBe('0.005');
    expect(centsToInput(-1250, 'eur')).toBe('-12.50');
    for (const [c, cur] of [
      [1250, 'eur'],
      [99_999_999, 'usd'],
      [1250, 'jpy'],
      [12_345, 'kwd'],
    ] as const) {
      expect(parsePriceToCents(centsToInput(c, cur), cur)).toBe(c);
    }
  });
});
