// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Countdown } from './Countdown';
import { render } from '../test/render';

describe('<Countdown>', () => {
  const T0 = Date.UTC(2026, 10, 1, 12, 0, 0);
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('counts down live in mm:ss and then shows Expired', () => {
    const onExpire = vi.fn();
    const r = render(<Countdown expiresAt={new Date(T0 + 62_000).toISOString()} onExpire={onExpire} />);
    const el = () => r.byTestId('countdown')!;
    expect(el().textContent).toBe('01:02');
    expect(el().getAttribute('data-expired')).toBe('false');
    act(() => vi.advanceTimersByTime(2000));
    expect(el().textContent).toBe('01:00');
    act(() => vi.advanceTimersByTime(59_000));
    expect(el().textContent).toBe('00:01');
    expect(onExpire).not.toHaveBeenCalled();
    act(() => vi.advanceTimersByTime(1000));
    expect(el().textContent).toBe('Expired');
    expect(el().getAttribute('data-expired')).toBe('true');
    expect(onExpire).toHaveBeenCalledOnce();
    r.unmount();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('restarts when expiresAt changes', () => {
    const r = render(<Countdown expiresAt={new Date(T0 + 5000).toISOString()} />);
    expect(r.byTestId('countdown')!.textContent).toBe('00:05');
    r.rerender(<Countdown expiresAt={new Date(T0 + 125_000).toISOString()} />);
    expect(r.byTestId('countdown')!.textContent).toBe('02:05');
    r.unmount();
  });
});
