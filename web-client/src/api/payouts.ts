// Sellers get paid (Stripe Connect): `payout:status {}` says whether payouts go to the seller's
// own account and what is held for them or was paid out; `payout:onboard {}` answers the page to
// send the browser to (Stripe's hosted onboarding; with the built-in test gateway the app's own
// return page). Stripe sends the browser back to `/selling?payouts=return`, or
// `/selling?payouts=refresh` when the link expired.

/** The query parameter Stripe's return and refresh URLs carry. */
export const PAYOUTS_PARAM = 'payouts';

/** Why the seller arrived on My listings: back from onboarding, or back from an expired link. */
export type PayoutArrival = 'return' | 'refresh';

export const PAYOUTS_KEPT_MESSAGE = 'StuffMart keeps your earnings safe for you until you set up payouts with Stripe.';
export const PAYOUTS_ON_MESSAGE = 'Payouts are on: your earnings go to your Stripe account.';
export const SETUP_FINISHED_MESSAGE = 'Payout setup finished';
export const SETUP_NOT_FINISHED_MESSAGE = 'Payout setup is not finished yet';
export const SETUP_LINK_EXPIRED_MESSAGE = 'The setup link expired';
export const BAD_ONBOARDING_URL_MESSAGE = 'Payout setup could not start, please try again';

/** `?payouts=return` / `?payouts=refresh` in `search`, or null (anything else is ignored). */
export function payoutArrival(search: URLSearchParams): PayoutArrival | null {
  const v = search.get(PAYOUTS_PARAM);
  return v === 'return' || v === 'refresh' ? v : null;
}

/** The button's label: a seller whose account exists continues where they left off. */
export function onboardLabel(started: boolean): string {
  return started ? 'Continue setup' : 'Set up payouts';
}

/**
 * The onboarding URL to go to (relative to the app), or null when it is not a web address: the
 * browser never follows a `javascript:`, `data:` or other scheme from an answer. Plain `http:` is
 * allowed: the test gateway answers the app's own return page, which on a LAN is not HTTPS (and
 * the server may spell its host differently from the browser, e.g. `localhost` for `127.0.0.1`).
 */
export function safeOnboardingUrl(url: unknown, origin: string = window.location.origin): string | null {
  if (typeof url !== 'string' || !url.trim()) return null;
  let parsed: URL;
  try {
    parsed = new URL(url, origin);
  } catch {
    return null;
  }
  return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : null;
}

/**
 * Leaving the app for onboarding: `window.location.assign` (a new history entry, so Back from
 * Stripe returns here). An object, so tests can replace `assign`.
 */
export const browserNavigation = {
  assign(url: string): void {
    window.location.assign(url);
  },
};
