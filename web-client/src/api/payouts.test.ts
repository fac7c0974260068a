import { describe, expect, it } from 'vitest';
import { onboardLabel, payoutArrival, safeOnboardingUrl } from './payouts';

describe('payouts', () => {
  it('reads ?payouts=return and ?payouts=refresh, nothing else', () => {
    expect(payoutArrival(new URLSearchParams('payouts=return'))).toBe('return');
    expect(payoutArrival(new URLSearchParams('x=1&payouts=refresh'))).toBe('refresh');
    expect(payoutArrival(new URLSearchParams('payouts=RETURN'))).toBeNull();
    expect(payoutArrival(new URLSearchParams('payouts='))).toBeNull();
    expect(payoutArrival(new URLSearchParams(''))).toBeNull();
  });

  it('labels the button by whether onboarding was started', () => {
    expect(onboardLabel(false)).toBe('Set up payouts');
    expect(onboardLabel(true)).toBe('Continue setup');
  });

  it('follows web addresses only (relative ones on the app), never another scheme', () => {
    const origin = 'http://192.168.1.20:3000';
    expect(safeOnboardingUrl('https://connect.stripe.com/setup/e/acct_1/x', origin)).toBe('https://connect.stripe.com/setup/e/acct_1/x');
    expect(safeOnboardingUrl('http://192.168.1.20:3000/selling?payouts=return', origin)).toBe('http://192.168.1.20:3000/selling?payouts=return');
    expect(safeOnboardingUrl('/selling?payouts=return', origin)).toBe('http://192.168.1.20:3000/selling?payouts=return');
    expect(safeOnboardingUrl('http://localhost:3000/selling?payouts=return', origin)).toBe('http://localhost:3000/selling?payouts=return');
    expect(safeOnboardingUrl('javascript:alert(1)', origin)).toBeNull();
    expect(safeOnboardingUrl('data:text/html,hi', origin)).toBeNull();
    expect(safeOnboardingUrl('JavaScript:alert(1)', origin)).toBeNull();
    expect(safeOnboardingUrl('vbscript:x', origin)).toBeNull();
    expect(safeOnboardingUrl('', origin)).toBeNull();
    expect(safeOnboardingUrl('  ', origin)).toBeNull();
    expect(safeOnboardingUrl(undefined, origin)).toBeNull();
    expect(safeOnboardingUrl(42, origin)).toBeNull();
  });
});
