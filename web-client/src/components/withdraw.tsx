// "Withdraw": the seller takes an available stuff off sale (`stuff:withdraw {id}`), after a
// confirmation step like the Admin page's refund: the question gets the focus, "Keep it for sale"
// gives it back to the button. Used on the seller's stuff page and on My listings, which show a
// refusal themselves (a refused withdrawal re-fetches the stuff, which can remove this control).
import { useEffect, useRef, useState } from 'react';
import { toApiError, type ApiError } from '../api/errors';
import { useSessionManager } from '../api/session-react';
import type { Stuff } from '../api/types';

export const WITHDRAWN_MESSAGE = 'This stuff is no longer for sale';

/** A DOM id made of anything (ids are opaque strings). */
function domId(prefix: string, id: string): string {
  return `${prefix}-${id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export function WithdrawControl({
  stuff,
  onWithdrawn,
  onRefused,
}: {
  stuff: Stuff;
  /** The withdrawn stuff, as the server answered. */
  onWithdrawn: (stuff: Stuff) => void;
  /**
   * The server refused (403 not yours, 409 being checked out or sold). The caller shows the
   * messages (the control itself may go away when the re-fetched stuff is no longer available).
   */
  onRefused: (error: ApiError) => void;
}) {
  const session = useSessionManager();
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const openRef = useRef<HTMLButtonElement>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const [focusButton, setFocusButton] = useState(0);
  const questionId = domId('withdraw-question', stuff.id);

  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  useEffect(() => {
    if (focusButton) openRef.current?.focus();
  }, [focusButton]);

  const keep = () => {
    setAsking(false);
    setFocusButton((n) => n + 1);
  };

  const withdraw = async () => {
    setBusy(true);
    try {
      const { data } = await session.request('stuff:withdraw', { id: stuff.id });
      setAsking(false);
      onWithdrawn(data);
    } catch (e) {
      setAsking(false);
      onRefused(toApiError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={asking ? 'withdraw withdraw-asking' : 'withdraw'} data-testid="withdraw">
      {asking ? (
        <div className="confirm-box" role="group" aria-labelledby={questionId} data-testid="withdraw-confirmation">
          <p id={questionId}>
            Withdraw “{stuff.title}”? Nobody can buy it any more; people who bought it keep their downloads.
          </p>
          <div className="actions">
            <button ref={confirmRef} type="button" className="danger" onClick={withdraw} disabled={busy} data-testid="withdraw-confirm">
              {busy ? 'Withdrawing…' : 'Yes, withdraw'}
            </button>
            <button type="button" onClick={keep} disabled={busy} data-testid="withdraw-keep">
              Keep it for sale
            </button>
          </div>
        </div>
      ) : (
        <button
          ref={openRef}
          type="button"
          onClick={() => setAsking(true)}
          data-testid="withdraw-button"
        >
          Withdraw…<span className="visually-hidden"> {stuff.title}</span>
        </button>
      )}
    </div>
  );
}

/** The banner of a refused withdrawal: `show` sets its messages and moves the focus to it. */
export function useRefusalBanner() {
  const [messages, setMessages] = useState<string[]>([]);
  const [tick, setTick] = useState(0);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (tick) ref.current?.focus();
  }, [tick]);
  return {
    messages,
    ref,
    show: (err: ApiError) => {
      setMessages(err.errors.map((x) => x.message));
      setTick((t) => t + 1);
    },
    clear: () => setMessages([]),
  };
}
