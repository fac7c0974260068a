// Delivery links (shared/CONTRACT.md, "Delivery"): `delivery:get {orderId}` for the buyer of a
// complete order, `delivery:get {stuffId}` for the seller. Each link works without a header but
// only until its `expiresAt` (DOWNLOAD_LINK_SECONDS, 300 s by default), so the client fetches
// fresh ones a little before the earliest expiry, when the page is shown again, and when a link
// is clicked after it expired.
import type { Delivery, DeliveryFile, Stuff } from './types';

export type DeliveryTarget = { orderId: string } | { stuffId: string };

export const PAY_FIRST_MESSAGE = 'Pay for this order to get the stuff';
export const NOTHING_TO_DELIVER_MESSAGE = 'This stuff has nothing to deliver yet';

/** Fetch fresh links this long before the earliest one expires. */
export const LINK_REFRESH_MARGIN_MS = 15_000;
/** A link this close to its expiry is not followed: the download could start after it. */
export const LINK_CLICK_MARGIN_MS = 2_000;

function timeMs(iso: string): number | null {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** The earliest `expiresAt` over the links (ms since the epoch), or null when there is none. */
export function linksExpireAtMs(delivery: Delivery): number | null {
  let earliest: number | null = null;
  for (const f of delivery.files) {
    const t = timeMs(f.expiresAt);
    if (t !== null && (earliest === null || t < earliest)) earliest = t;
  }
  return earliest;
}

/** True when some link has expired or expires within `marginMs`. */
export function linksStale(delivery: Delivery, nowMs: number, marginMs = LINK_REFRESH_MARGIN_MS): boolean {
  const t = linksExpireAtMs(delivery);
  return t !== null && nowMs >= t - marginMs;
}

/** True when this link should not be followed any more. */
export function linkExpired(file: Pick<DeliveryFile, 'expiresAt'>, nowMs: number, marginMs = LINK_CLICK_MARGIN_MS): boolean {
  const t = timeMs(file.expiresAt);
  return t === null || nowMs >= t - marginMs;
}

/**
 * How long to wait before fetching fresh links: `marginMs` before the earliest expiry, at least
 * `minMs` (so a server with very short links is not asked in a tight loop). Null: nothing expires.
 */
export function refreshDelayMs(delivery: Delivery, nowMs: number, marginMs = LINK_REFRESH_MARGIN_MS, minMs = 5_000): number | null {
  const t = linksExpireAtMs(delivery);
  if (t === null) return null;
  const lifetime = t - nowMs;
  // A short link (under twice the margin) is refreshed at half its remaining life instead.
  const wanted = lifetime > 2 * marginMs ? lifetime - marginMs : lifetime / 2;
  return Math.max(minMs, Math.floor(wanted));
}

/** A stable key for a target (for effect dependencies). */
export function targetKey(target: DeliveryTarget | null): string {
  if (!target) return '';
  return 'orderId' in target ? `order:${target.orderId}` : `stuff:${target.stuffId}`;
}

/** The files of a stuff; [] when the server did not send any (an older server). */
export function stuffFiles(stuff: Stuff): Stuff['files'] {
  return Array.isArray(stuff.files) ? stuff.files : [];
}

/**
 * True only when the server says there is nothing to deliver (no file, no note): `order:create`
 * would be refused. False when the stuff carries no delivery fields at all (an older server).
 */
export function nothingToDeliver(stuff: Stuff): boolean {
  return Array.isArray(stuff.files) && stuff.files.length === 0 && stuff.hasSecretNote === false;
}
