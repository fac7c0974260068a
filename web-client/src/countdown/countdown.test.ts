import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatRemaining, startCountdown, tickAt, type CountdownTick } from './countdown';

describe('formatRemaining', () => {
  it('shows mm:ss, rounding up so 00:00 only appears at expiry', () => {
    expect(formatRemaining(15 * 60_000)).toBe('15:00');
    expect(formatRemaining(14 * 60_000 + 59_001)).toBe('15:00');
    expect(formatRemaining(61_000)).toBe('01:01');
    expect(formatRemaining(999)).toBe('00:01');
    expect(formatRemaining(0)).toBe('00:00');
    expect(formatRemaining(-5000)).toBe('00:00');
    expect(formatRemaining(90 * 60_000)).toBe('90:00');
  });

  it('reports expiry', () => {
    expect(tickAt(1000, 1000)).toEqual({ remainingMs: 0, text: '00:00', expired: true });
    expect(tickAt(1000, 2000).expired).toBe(true);
    expect(tickAt(2000, 1000)).toEqual({ remainingMs: 1000, text: '00:01', expired: false });
  });
});

describe('startCountdown (fake timers)', () => {
  const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('ticks every second down to expired, then stops', () => {
    const ticks: CountdownTick[] = [];
    startCountdown(T0 + 3000, (t) => ticks.push(t));
    expect(ticks.map((t) => t.text)).toEqual(['00:03']);
    vi.advanceTimersByTime(1000);
    expect(ticks.at(-1)!.text).toBe('00:02');
    vi.advanceTimersByTime(2000);
    expect(ticks.map((t) => t.text)).toEqual(['00:03', '00:02', '00:01', '00:00']);
    expect(ticks.at(-1)!.expired).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(ticks).toHaveLength(4);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('aligns to whole seconds of the remaining time', () => {
    const ticks: string[] = [];
    startCountdown(T0 + 2500, (t) => ticks.push(t.text));
    expect(ticks).toEqual(['00:03']);
    vi.advanceTimersByTime(499);
    expect(ticks).toEqual(['00:03']);
    vi.advanceTimersByTime(1);
    expect(ticks).toEqual(['00:03', '00:02']);
  });

  it('is already expired when expiresAt is in the past', () => {
    const onTick = vi.fn();
    startCountdown(T0 - 1, onTick);
    expect(onTick).toHaveBeenCalledOnce();
    expect(onTick.mock.calls[0]![0]).toMatchObject({ expired: true });
  });

  it('stops ticking when stopped (page left)', () => {
    const onTick = vi.fn();
    const stop = startCountdown(T0 + 60_000, onTick);
    stop();
    vi.advanceTimersByTime(60_000);
    expect(onTick).toHaveBeenCalledOnce();
  });

  it('catches up after the tab was throttled (re-reads the clock each tick)', () => {
    const ticks: string[] = [];
    startCountdown(T0 + 10 * 60_000, (t) => ticks.push(t.text));
    vi.setSystemTime(T0 + 5 * 60_000 + 200); // the clock jumped while timers were held back
    vi.advanceTimersByTime(1000);
    expect(ticks.at(-1)).toBe('04:59');
  });
});
