// Runtime configuration from the server: `GET /api/config` (no auth) → `{"currency":"eur"}`.
// Fetched once at start; until it answers, or when it fails, the client keeps its defaults
// (`eur`). Prices re-render when the currency arrives (`useCurrency`).
import { useSyncExternalStore } from 'react';
import { DEFAULT_CURRENCY, getCurrency, normalizeCurrency, setCurrency, subscribeCurrency } from './format';
import type { FetchLike } from './http';

export interface ClientConfig {
  /** ISO 4217, lower-case. */
  currency: string;
}

export const DEFAULT_CONFIG: ClientConfig = { currency: DEFAULT_CURRENCY };

/**
 * Asks the server for its configuration. Never throws: a network error, a non-2xx answer, a body
 * that is not JSON or a currency that is not a valid ISO code give the defaults.
 */
export async function fetchClientConfig(fetchImpl: FetchLike = (input, init) => fetch(input, init), base = ''): Promise<ClientConfig> {
  try {
    const res = await fetchImpl(`${base}/api/config`, { method: 'GET', headers: { Accept: 'application/json' } });
    if (!res.ok) return DEFAULT_CONFIG;
    const body = (await res.json()) as { currency?: unknown } | null;
    const currency = normalizeCurrency(body?.currency);
    return currency ? { currency } : DEFAULT_CONFIG;
  } catch {
    return DEFAULT_CONFIG;
  }
}

/** Fetches the configuration and applies it (the currency every price is shown in). */
export async function loadClientConfig(fetchImpl?: FetchLike, base = ''): Promise<ClientConfig> {
  const config = await fetchClientConfig(fetchImpl, base);
  setCurrency(config.currency);
  return config;
}

/** The currency prices are shown in; re-renders the component when it changes. */
export function useCurrency(): string {
  return useSyncExternalStore(subscribeCurrency, getCurrency, getCurrency);
}
