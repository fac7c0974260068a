// Small shared pieces: error banner, field with label and error, status badges, price.
import {
  forwardRef,
  useCallback,
  useEffect,
  useRef,
  useState,
  type InputHTMLAttributes,
  type ReactNode,
  type Ref,
  type RefObject,
  type TextareaHTMLAttributes,
} from 'react';
import { useCurrency } from '../api/config';
import { ApiError, toApiError } from '../api/errors';
import { formatCents, ORDER_STATUS_LABEL, STUFF_STATUS_LABEL } from '../api/format';
import { orderPaidCents, paidDiffersFromPrice } from '../api/orders';
import type { Order, OrderStatus, StuffStatus } from '../api/types';

export const ErrorBanner = forwardRef<HTMLDivElement, { messages: string[]; testId?: string; onDismiss?: () => void }>(
  function ErrorBanner({ messages, testId = 'error-banner', onDismiss }, ref) {
    if (messages.length === 0) return null;
    return (
      <div className="banner banner-error" role="alert" tabIndex={-1} ref={ref} data-testid={testId}>
        {messages.length === 1 ? <p>{messages[0]}</p> : <ul>{messages.map((m, i) => <li key={i}>{m}</li>)}</ul>}
        {onDismiss && (
          <button type="button" className="link-button dismiss" onClick={onDismiss}>
            Dismiss
          </button>
        )}
      </div>
    );
  },
);

/**
 * Copies `text` to the clipboard and says so (`aria-live`). Where the clipboard cannot be written
 * (an insecure context, a refused permission), the text is selected for the user to copy instead.
 */
export function CopyButton({ text, label = 'Copy', what, testId }: { text: string; label?: string; what: string; testId?: string }) {
  const [said, setSaid] = useState('');
  const buttonRef = useRef<HTMLButtonElement>(null);
  useEffect(() => setSaid(''), [text]);
  const selectText = () => {
    // The element showing the text sits just before the button.
    const shown = buttonRef.current?.parentElement?.querySelector('code');
    const sel = window.getSelection?.();
    if (!shown || !sel) return false;
    const range = document.createRange();
    range.selectNodeContents(shown);
    sel.removeAllRanges();
    sel.addRange(range);
    return true;
  };
  const copy = async () => {
    try {
      if (!navigator.clipboard?.writeText) throw new Error('no clipboard');
      await navigator.clipboard.writeText(text);
      setSaid(`Copied ${what}.`);
    } catch {
      setSaid(selectText() ? `Selected ${what}: press Ctrl+C (⌘C on a Mac) to copy it.` : `Copy ${what} by hand.`);
    }
  };
  return (
    <>
      <button
        ref={buttonRef}
        type="button"
        className="small"
        onClick={copy}
        aria-label={`${label} ${what}`}
        data-testid={testId}
      >
        {label}
      </button>{' '}
      <span className="muted small" role="status" data-testid={testId ? `${testId}-status` : undefined}>
        {said}
      </span>
    </>
  );
}

export function Notice({ children, testId }: { children: ReactNode; testId?: string }) {
  return (
    <div className="banner banner-info" role="status" data-testid={testId}>
      {children}
    </div>
  );
}

export function FieldError({ field, message }: { field: string; message?: string }) {
  if (!message) return null;
  return (
    <p className="field-error" id={`error-${field}`} data-testid={`error-${field}`}>
      {message}
    </p>
  );
}

interface FieldProps {
  /** The contract's field name: errors with this `field` are shown here. */
  name: string;
  label: string;
  error?: string;
  hint?: string;
  /** More ids for aria-describedby (e.g. a live preview next to the field). */
  describedByExtra?: string;
}

function describedBy(name: string, error?: string, hint?: string, extra?: string): string | undefined {
  const ids = [hint ? `hint-${name}` : null, error ? `error-${name}` : null, extra || null].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

export function TextField({
  name,
  label,
  error,
  hint,
  describedByExtra,
  ...input
}: FieldProps & InputHTMLAttributes<HTMLInputElement> & { ref?: Ref<HTMLInputElement> }) {
  return (
    <div className="field">
      <label htmlFor={`field-${name}`}>{label}</label>
      {hint && (
        <p className="hint" id={`hint-${name}`}>
          {hint}
        </p>
      )}
      <input
        id={`field-${name}`}
        name={name}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(name, error, hint, describedByExtra)}
        {...input}
      />
      <FieldError field={name} message={error} />
    </div>
  );
}

export function TextAreaField({ name, label, error, hint, describedByExtra, ...input }: FieldProps & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <div className="field">
      <label htmlFor={`field-${name}`}>{label}</label>
      {hint && (
        <p className="hint" id={`hint-${name}`}>
          {hint}
        </p>
      )}
      <textarea
        id={`field-${name}`}
        name={name}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(name, error, hint, describedByExtra)}
        {...input}
      />
      <FieldError field={name} message={error} />
    </div>
  );
}

/** A stuff's status. `label` overrides the text (a buyer reads "No longer for sale" for `withdrawn`). */
export function StatusBadge({ status, label }: { status: StuffStatus; label?: string }) {
  return (
    <span className={`badge badge-${status}`} data-testid="status-badge" data-status={status}>
      {label ?? STUFF_STATUS_LABEL[status] ?? status}
    </span>
  );
}

/** A stuff's course (`CS 101`), as a badge; the screen reader hears "Course CS 101". */
export function CourseBadge({ course }: { course: string }) {
  return (
    <span className="badge badge-course" data-testid="course-badge">
      <span className="visually-hidden">Course </span>
      {course}
    </span>
  );
}

export function OrderStatusBadge({ status }: { status: OrderStatus }) {
  return (
    <span className={`badge badge-order-${status}`} data-testid="order-status" data-status={status}>
      {ORDER_STATUS_LABEL[status] ?? status}
    </span>
  );
}

/** An amount in the server's currency (or `currency`, e.g. a payment's own), formatted for the user's locale. */
export function Price({ cents, currency, testId = 'price' }: { cents: number; currency?: string | null; testId?: string }) {
  const current = useCurrency();
  return (
    <span className="price" data-testid={testId}>
      {formatCents(cents, currency || current)}
    </span>
  );
}

/**
 * What an order costs: for a paid order "Paid €9.00" (what was charged), followed by the list
 * price when a coupon made them differ; otherwise the list price.
 */
export function OrderAmount({ order, testId = 'order-amount' }: { order: Order; testId?: string }) {
  const paid = orderPaidCents(order);
  if (paid === null) return <Price cents={order.priceCents} testId={testId} />;
  return (
    <span className="order-amount" data-testid={testId}>
      <span className="price" data-testid={`${testId}-paid`}>
        Paid <PriceText cents={paid} />
      </span>
      {paidDiffersFromPrice(order) && (
        <span className="muted small" data-testid={`${testId}-list-price`}>
          {' '}
          (price <PriceText cents={order.priceCents} />)
        </span>
      )}
    </span>
  );
}

function PriceText({ cents }: { cents: number }) {
  return <>{formatCents(cents, useCurrency())}</>;
}

export interface FormErrors {
  fields: Record<string, string>;
  general: string[];
}

const noErrors: FormErrors = { fields: {}, general: [] };

/** Each message goes to the field it names when the form has that field, otherwise to the banner. */
export function splitErrors(e: ApiError, knownFields: readonly string[]): FormErrors {
  const fields: Record<string, string> = {};
  const general: string[] = [];
  for (const item of e.errors) {
    if (item.field && knownFields.includes(item.field)) {
      if (!(item.field in fields)) fields[item.field] = item.message;
    } else {
      general.push(item.message);
    }
  }
  return { fields, general };
}

/**
 * Error state of one form. `show(err, knownFields)` puts each message next to the field it names
 * when the form has that field, otherwise into the banner; then focus moves to the first invalid
 * field (in document order) or to the banner.
 */
export function useFormErrors(formRef: RefObject<HTMLFormElement | null>, externalBannerRef?: RefObject<HTMLDivElement | null>) {
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [focusTick, setFocusTick] = useState(0);
  const ownBannerRef = useRef<HTMLDivElement>(null);
  const bannerRef = externalBannerRef ?? ownBannerRef;

  useEffect(() => {
    if (focusTick === 0) return;
    const invalid = formRef.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (invalid) invalid.focus();
    else bannerRef.current?.focus();
  }, [focusTick, formRef, bannerRef]);

  const show = useCallback((err: unknown, knownFields: readonly string[]): FormErrors => {
    const split = splitErrors(toApiError(err), knownFields);
    setErrors(split);
    setFocusTick((t) => t + 1);
    return split;
  }, []);

  /** Client-side validation results, shown the same way. */
  const showFields = useCallback((fields: Record<string, string>) => {
    setErrors({ fields, general: [] });
    setFocusTick((t) => t + 1);
  }, []);

  const clear = useCallback(() => setErrors(noErrors), []);

  /** Forgets the message of one field (its value changed), keeping the others. */
  const clearField = useCallback(
    (field: string) =>
      setErrors((e) => {
        if (!(field in e.fields)) return e;
        const fields = { ...e.fields };
        delete fields[field];
        return { ...e, fields };
      }),
    [],
  );

  return { errors, show, showFields, clear, clearField, bannerRef };
}
