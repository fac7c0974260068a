import { useEffect, useState } from 'react';
import { parseTimeMs, startCountdown, tickAt, type CountdownTick } from './countdown';

export function useCountdown(expiresAt: string): CountdownTick {
  const expiresAtMs = parseTimeMs(expiresAt);
  const [tick, setTick] = useState<CountdownTick>(() => tickAt(expiresAtMs, Date.now()));
  useEffect(() => startCountdown(expiresAtMs, setTick), [expiresAtMs]);
  return tick;
}

/** `mm:ss` left until `expiresAt`, then "Expired". */
export function Countdown({ expiresAt, onExpire }: { expiresAt: string; onExpire?: () => void }) {
  const tick = useCountdown(expiresAt);
  useEffect(() => {
    if (tick.expired) onExpire?.();
  }, [tick.expired, onExpire]);
  return (
    <span
      className={tick.expired ? 'countdown countdown-expired' : 'countdown'}
      data-testid="countdown"
      data-expired={tick.expired ? 'true' : 'false'}
      role="timer"
      aria-label={tick.expired ? 'Expired' : `${tick.text} left`}
    >
      {tick.expired ? 'Expired' : tick.text}
    </span>
  );
}
