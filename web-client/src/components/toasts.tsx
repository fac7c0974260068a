// Toasts for the seller, anywhere in the app: `sale:completed` says "Sold: Notes — you earned
// €9.00". They sit in one polite live region (there from the start, so screen readers announce
// what is added), can be dismissed, and hide after TOAST_MS; the timer waits while the pointer or
// the focus is on a toast, so nobody loses one they are reading.
import { useEffect, useState } from 'react';
import { useCurrency } from '../api/config';
import { saleMessage } from '../api/sales';
import { usePush } from '../api/session-react';
import type { Sale } from '../api/types';

/** How long a toast stays. */
export const TOAST_MS = 8000;
/** At most this many toasts at once (the oldest go first). */
export const MAX_TOASTS = 3;

interface ToastItem {
  id: string;
  sale: Sale;
}

export function SaleToasts({ enabled }: { enabled: boolean }) {
  const currency = useCurrency();
  const [toasts, setToasts] = useState<ToastItem[]>([]);
  usePush('sale:completed', (sale) => {
    if (!enabled || !sale || typeof sale.orderId !== 'string') return;
    const toast = { id: sale.orderId, sale };
    setToasts((held) => (held.some((t) => t.id === toast.id) ? held : [...held, toast].slice(-MAX_TOASTS)));
  });
  const dismiss = (id: string) => setToasts((held) => held.filter((t) => t.id !== id));
  return (
    <div className="toasts" role="status" aria-live="polite" data-testid="toasts">
      {toasts.map((t) => (
        <Toast key={t.id} toast={t} message={saleMessage(t.sale, currency)} onDismiss={() => dismiss(t.id)} />
      ))}
    </div>
  );
}

function Toast({ toast, message, onDismiss }: { toast: ToastItem; message: string; onDismiss: () => void }) {
  const [hovered, setHovered] = useState(false);
  const [focused, setFocused] = useState(false);
  const paused = hovered || focused;
  useEffect(() => {
    if (paused) return;
    const timer = setTimeout(onDismiss, TOAST_MS);
    return () => clearTimeout(timer);
    // onDismiss is a new function every render; the toast's id is what matters.
  }, [paused, toast.id]);
  return (
    <div
      className="toast"
      data-testid="sale-toast"
      data-order-id={toast.id}
      onMouseEnter={() => setHovered(true)}
      onMouseLeave={() => setHovered(false)}
      onFocus={() => setFocused(true)}
      onBlur={() => setFocused(false)}
    >
      <p className="toast-message">{message}</p>
      <button type="button" className="toast-dismiss" aria-label="Dismiss" onClick={onDismiss} data-testid="toast-dismiss">
        <span aria-hidden="true">×</span>
      </button>
    </div>
  );
}
