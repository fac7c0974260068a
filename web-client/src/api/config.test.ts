import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchClientConfig, loadClientConfig } from './config';
import { DEFAULT_CURRENCY, formatCents, getCurrency, setCurrency } from './format';

const json = (status: number, body: unknown) =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

afterEach(() => {
  setCurrency(DEFAULT_CURRENCY);
});

describe('client config', () => {
  it('GET /api/config sets the currency every price is shown in', async () => {
    const fetchImpl = vi.fn(async () => json(200, { currency: 'usd' }));
    expect(formatCents(1250)).toBe('€12.50');
    await expect(loadClientConfig(fetchImpl)).resolves.toEqual({ currency: 'usd' });
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/config');
    expect(init.method).toBe('GET');
    expect(getCurrency()).toBe('usd');
    expect(formatCents(1250)).toBe('$12.50');
  });

  it('an upper-case code is fine', async () => {
    await loadClientConfig(async () => json(200, { currency: 'JPY' }));
    expect(getCurrency()).toBe('jpy');
    expect(formatCents(500)).toBe('¥500');
  });

  it('falls back to eur on a network error, an error status, a bad body or a bad code', async () => {
    const cases: Array<[string, () => Promise<Response>]> = [
      ['network', async () => Promise.reject(new TypeError('Failed to fetch'))],
      ['404 (an older server)', async () => json(404, { errors: [{ message: 'Not found' }] })],
      ['503', async () => json(503, { errors: [{ message: 'Service unavailable' }] })],
      ['HTML', async () => new Response('<html></html>', { status: 200 })],
      ['no currency', async () => json(200, {})],
      ['null body', async () => json(200, 'null')],
      ['not a code', async () => json(200, { currency: 'euros' })],
      ['a number', async () => json(200, { currency: 978 })],
    ];
    for (const [what, fetchImpl] of cases) {
      setCurrency('usd');
      await expect(fetchClientConfig(fetchImpl), what).resolves.toEqual({ currency: 'eur' });
      await loadClientConfig(fetchImpl);
      expect([what, getCurrency()]).toEqual([what, 'eur']);
    }
  });

  it('prices are in eur until the answer arrives', async () => {
    let answer!: (r: Response) => void;
    const pending = loadClientConfig(() => new Promise<Response>((r) => (answer = r)));
    expect(formatCents(1250)).toBe('€12.50');
    answer(json(200, { currency: 'gbp' }));
    await pending;
    expect(formatCents(1250)).toBe('£12.50');
  });
});
