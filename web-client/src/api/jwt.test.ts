import { describe, expect, it } from 'vitest';
import { decodeJwtPayload, refreshDelayMs, tokenExpiresAtMs } from './jwt';
import { fakeJwt } from '../test/fakes';

describe('jwt', () => {
  it('reads exp from the payload without verifying', () => {
    const token = fakeJwt(1_700_000_900, { email: 'zoë@example.edu' });
    expect(tokenExpiresAtMs(token)).toBe(1_700_000_900_000);
    expect(decodeJwtPayload(token)?.email).toBe('zoë@example.edu');
  });

  it('returns null for garbage', () => {
    expect(tokenExpiresAtMs('not-a-jwt')).toBeNull();
    expect(tokenExpiresAtMs('a.!!!.c')).toBeNull();
    expect(tokenExpiresAtMs(`a.${btoa('{"exp":"soon"}')}.c`)).toBeNull();
  });

  it('refreshes one minute before a 15-minute token expires', () => {
    const now = 1_000_000;
    expect(refreshDelayMs(now + 15 * 60_000, now)).toBe(14 * 60_000);
  });

  it('refreshes halfway through a short remaining lifetime', () => {
    const now = 1_000_000;
    expect(refreshDelayMs(now + 30_000, now)).toBe(15_000);
  });

  it('refreshes at once when already expired, and assumes 15 minutes when exp is unknown', () => {
    expect(refreshDelayMs(500, 1000)).toBe(0);
    expect(refreshDelayMs(null, 1000)).toBe(14 * 60_000);
  });
});
