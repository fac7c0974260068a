// The checkout countdown: remaining time to `expiresAt`, ticking on whole seconds.

/** Remaining milliseconds (never negative). */
export function remainingMs(expiresAtMs: number, nowMs: number): number {
  return Math.max(0, expiresAtMs - nowMs);
}

/**
 * `mm:ss`, rounding up so `00:00` is shown only once the time is really up
 * (minutes are not capped at 59: a 90-minute hold shows `90:00`).
 */
export function formatRemaining(ms: number): string {
  const totalSeconds = Math.ceil(Math.max(0, ms) / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  return `${minutes.toString().padStart(2, '0')}:${seconds.toString().padStart(2, '0')}`;
}

export interface CountdownTick {
  remainingMs: number;
  text: string;
  expired: boolean;
}

export function tickAt(expiresAtMs: number, nowMs: number): CountdownTick {
  const ms = remainingMs(expiresAtMs, nowMs);
  return { remainingMs: ms, text: formatRemaining(ms), expired: ms <= 0 };
}

/**
 * Calls `onTick` now and at every whole-second boundary of the remaining time until expiry
 * (the last call has `expired: true`). Returns a stop function. Uses setTimeout re-aligned on
 * every tick, so a throttled background tab catches up instead of drifting.
 */
export function startCountdown(
  expiresAtMs: number,
  onTick: (tick: CountdownTick) => void,
  now: () => number = Date.now,
): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let stopped = false;
  const step = () => {
    if (stopped) return;
    const tick = tickAt(expiresAtMs, now());
    onTick(tick);
    if (tick.expired) return;
    // Next change of the displayed (rounded-up) seconds.
    const untilNext = tick.remainingMs % 1000 || 1000;
    timer = setTimeout(step, untilNext);
  };
  step();
  return () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  };
}

/** Parses an RFC 3339 time to epoch ms; NaN-safe (an unreadable time counts as expired). */
export function parseTimeMs(iso: string): number {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? 0 : t;
}
