// The order page's payment form (shared/CONTRACT.md, "Payments (additions)", "Payment methods").
//
// When the order is ready to pay, and again when the coupon preview changes what is charged, the
// form asks the server for the PaymentIntent of that amount (`payment:intent`). Its
// `publishableKey` says how the intent is confirmed:
//   - a key: the server runs against Stripe. Stripe's Payment Element (StripeCard.tsx, loaded
//     lazily with Stripe.js) collects the card and `stripe.confirmPayment` confirms it in the
//     browser, 3-D Secure included;
//   - null: the server's built-in test gateway. The form offers its test payment methods and
//     `payment:create {orderId, paymentMethod, couponCode?}` has the server confirm the intent.
// Either way the order completes only when the server says so (`order:updated`, status
// `complete`), never on the browser's word. A 100 % coupon needs no intent and no card:
// `payment:create {orderId, couponCode}`.
import { lazy, Suspense, useCallback, useEffect, useRef, useState, type FormEvent, type RefObject } from 'react';
import { useCurrency } from '../api/config';
import { ApiError, toApiError } from '../api/errors';
import { formatCents } from '../api/format';
import { useSession, useSessionManager } from '../api/session-react';
import type { Order, Payment, PaymentIntent } from '../api/types';
import { FieldError, TextField, useFormErrors } from './ui';
import type { StripeConfirm } from './StripeCard';

const StripeCard = lazy(() => import('./StripeCard'));

export const DECLINED_MESSAGE = 'Your card was declined';
/** `payment:intent`'s answer (400 on `couponCode`) for a coupon that leaves nothing to charge. */
export const FREE_COUPON_MESSAGE = 'This coupon makes it free: no card is needed';

export const TEST_PAYMENT_METHODS = [
  { id: 'pm_card_visa', label: 'Visa (test card, succeeds)' },
  { id: 'pm_card_mastercard', label: 'Mastercard (test card, succeeds)' },
  { id: 'pm_card_chargeDeclined', label: 'Declined card (test card, fails)' },
] as const;

const PAYMENT_FIELDS = ['paymentMethod', 'couponCode'] as const;

/** How long typing must pause before the coupon is checked (a blur checks at once). */
export const COUPON_CHECK_DELAY_MS = 300;

/** The state of the coupon preview (`coupon:check`), always about one code. */
export type CouponPreview =
  | { state: 'idle' }
  | { state: 'checking'; code: string }
  | { state: 'ok'; code: string; amountCents: number; discountCents: number }
  /** The server refused the coupon (an error on `couponCode`). */
  | { state: 'invalid'; code: string; message: string }
  /** The check itself failed (no answer, the order changed): paying checks again. */
  | { state: 'unavailable'; code: string; message: string };

/**
 * Checks the coupon being typed: `COUPON_CHECK_DELAY_MS` after the last keystroke, or at once on
 * `checkNow` (blur). Only the answer to the newest request is kept, so a slow answer about an
 * older code never replaces a newer one. The preview is about `preview.code`; callers compare it
 * with what is typed now.
 */
export function useCouponPreview(orderId: string, typed: string, onOrderChanged: () => void) {
  const session = useSessionManager();
  const code = typed.trim();
  const [preview, setPreview] = useState<CouponPreview>({ state: 'idle' });
  const previewRef = useRef(preview);
  previewRef.current = preview;
  const seq = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const onOrderChangedRef = useRef(onOrderChanged);
  onOrderChangedRef.current = onOrderChanged;

  const stopTimer = () => {
    if (timer.current !== null) clearTimeout(timer.current);
    timer.current = null;
  };

  const run = useCallback(
    (c: string) => {
      stopTimer();
      const mine = ++seq.current;
      if (!c) {
        setPreview({ state: 'idle' });
        return;
      }
      setPreview({ state: 'checking', code: c });
      session.request('coupon:check', { orderId, couponCode: c }).then(
        ({ data }) => {
          if (mine !== seq.current) return;
          setPreview({ state: 'ok', code: c, amountCents: data.amountCents, discountCents: data.discountCents });
        },
        (e: unknown) => {
          if (mine !== seq.current) return;
          const err = toApiError(e);
          const onField = err.fieldErrors().couponCode;
          if (onField) {
            setPreview({ state: 'invalid', code: c, message: onField });
          } else {
            setPreview({ state: 'unavailable', code: c, message: err.errors.map((x) => x.message).join(' ') });
            // The order was cancelled, paid or is not ours after all: show what it is now.
            if (err.status === 409 || err.status === 403 || err.status === 404) onOrderChangedRef.current();
          }
        },
      );
    },
    [session, orderId],
  );

  // A new code: forget answers still on their way, and check once typing pauses.
  useEffect(() => {
    seq.current += 1;
    stopTimer();
    if (!code) {
      if (previewRef.current.state !== 'idle') setPreview({ state: 'idle' });
      return;
    }
    timer.current = setTimeout(() => run(code), COUPON_CHECK_DELAY_MS);
    return stopTimer;
  }, [code, run]);

  /** Checks at once (the field lost focus), unless this code was already checked or is being checked. */
  const checkNow = useCallback(() => {
    const p = previewRef.current;
    if (!code || (p.state !== 'idle' && p.code === code && p.state !== 'unavailable')) return;
    run(code);
  }, [code, run]);

  /** Paying now: a pending check would only repeat what `payment:create` does. */
  const cancelPending = useCallback(() => stopTimer(), []);

  const current: CouponPreview = preview.state !== 'idle' && preview.code === code ? preview : { state: 'idle' };
  return { preview: current, checkNow, cancelPending };
}

/** The `payment:intent` request for one coupon (`''`: none). */
export type IntentState =
  | { state: 'idle' }
  | { state: 'loading'; coupon: string }
  | { state: 'ready'; coupon: string; intent: PaymentIntent }
  /** The server says this coupon leaves nothing to charge: no intent, no card. */
  | { state: 'free'; coupon: string }
  | { state: 'failed'; coupon: string; error: ApiError };

/**
 * Asks `payment:intent` for `wanted` (a coupon code, `''` for none) once connected, and again
 * whenever `wanted` changes; `null` asks nothing (the order is free). Only the answer to the newest
 * request counts. `last` is the newest intent received, kept while a new one is on its way (the
 * card form stays on screen, and the gateway is known from the first answer on).
 */
export function usePaymentIntent(orderId: string, wanted: string | null, onOrderChanged: () => void) {
  const session = useSessionManager();
  const { epoch } = useSession();
  const connected = epoch > 0;
  const [current, setCurrent] = useState<IntentState>({ state: 'idle' });
  const [last, setLast] = useState<PaymentIntent | null>(null);
  const [attempt, setAttempt] = useState(0);
  const seq = useRef(0);
  const onOrderChangedRef = useRef(onOrderChanged);
  onOrderChangedRef.current = onOrderChanged;

  useEffect(() => {
    const mine = ++seq.current;
    if (wanted === null || !connected) return;
    setCurrent({ state: 'loading', coupon: wanted });
    session.request('payment:intent', { orderId, ...(wanted ? { couponCode: wanted } : {}) }).then(
      ({ data }) => {
        if (mine !== seq.current) return;
        setCurrent({ state: 'ready', coupon: wanted, intent: data });
        setLast(data);
      },
      (e: unknown) => {
        if (mine !== seq.current) return;
        const err = toApiError(e);
        if (wanted && err.status === 400 && err.fieldErrors().couponCode === FREE_COUPON_MESSAGE) {
          setCurrent({ state: 'free', coupon: wanted });
          return;
        }
        setCurrent({ state: 'failed', coupon: wanted, error: err });
        if (err.status === 409 || err.status === 403 || err.status === 404) onOrderChangedRef.current();
      },
    );
  }, [session, orderId, wanted, connected, attempt]);

  const retry = useCallback(() => setAttempt((n) => n + 1), []);
  return { current, last, retry };
}

function CouponPreviewText({ preview, currency }: { preview: CouponPreview; currency: string }) {
  switch (preview.state) {
    case 'checking':
      return <>Checking the coupon…</>;
    case 'ok':
      return (
        <>
          Coupon applied: {formatCents(preview.discountCents, currency)} off.{' '}
          {preview.amountCents === 0 ? (
            <strong>The stuff is free: no card is charged.</strong>
          ) : (
            <>
              You pay <strong>{formatCents(preview.amountCents, currency)}</strong>.
            </>
          )}
        </>
      );
    case 'invalid':
      // The message is shown next to the field; this announces it to screen readers as it arrives.
      return <span className="visually-hidden">Coupon not applied: {preview.message}</span>;
    case 'unavailable':
      return <>The coupon could not be checked right now; it is checked again when you pay.</>;
    default:
      return null;
  }
}

/** The Pay button's words: the amount that will be charged, "Get it free" when nothing is. */
export function payLabel(amountCents: number, currency: string): string {
  return amountCents === 0 ? 'Get it free' : `Pay ${formatCents(amountCents, currency)}`;
}

/** This order page's absolute URL: where Stripe sends the buyer back after a redirect. */
export function orderReturnUrl(orderId: string): string {
  return `${window.location.origin}/orders/${encodeURIComponent(orderId)}`;
}

export type Gateway = 'unknown' | 'test' | 'stripe';

/**
 * Pay for `order` (status `created`). `onPaid` gets the `Payment` of `payment:create` (the test
 * gateway, a free order); `onConfirmed` says Stripe took the card in the browser. In both cases
 * the order completes when `order:updated` says so.
 */
export function PaymentForm({
  order,
  onPaid,
  onConfirmed,
  onFailed,
  onGeneralErrors,
  bannerRef,
  onOrder,
}: {
  order: Order;
  onPaid: (p: Payment) => void;
  onConfirmed: () => void;
  /** The payment failed in a way that changes the order (declined, cancelled meanwhile): reload it. */
  onFailed: () => void;
  onGeneralErrors: (messages: string[]) => void;
  bannerRef: RefObject<HTMLDivElement | null>;
  onOrder: (o: Order) => void;
}) {
  const session = useSessionManager();
  const currency = useCurrency();
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show: showInForm, showFields, clear: clearForm, clearField } = useFormErrors(formRef, bannerRef);
  const show = (err: unknown, fields: readonly string[]) => onGeneralErrors(showInForm(err, fields).general);
  const clear = () => {
    clearForm();
    onGeneralErrors([]);
  };
  const [method, setMethod] = useState<string>(TEST_PAYMENT_METHODS[0].id);
  const [coupon, setCoupon] = useState('');
  const [busy, setBusy] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const checked = useCouponPreview(order.id, coupon, onFailed);
  const { checkNow, cancelPending } = checked;
  const code = coupon.trim();
  // Paying has the last word: a coupon refused then (say, redeemed by someone else meanwhile)
  // replaces what the check said.
  const refusedOnPay = errors.fields.couponCode;
  const preview: CouponPreview = refusedOnPay && code ? { state: 'invalid', code, message: refusedOnPay } : checked.preview;

  // The coupon the intent is for: none while the field is empty or the coupon is refused (the
  // button shows the full price then), the code once its check answered (or could not: then the
  // intent checks it), nothing at all when it makes the order free; while a check is on its way,
  // the intent asked before stays.
  const settled = useRef<string | null>('');
  if (!code || preview.state === 'invalid') settled.current = '';
  else if (preview.state === 'ok') settled.current = preview.amountCents === 0 ? null : code;
  else if (preview.state === 'unavailable') settled.current = code;
  // A code typed but not answered yet (waiting for the pause in typing, or being checked).
  const checking = code !== '' && (preview.state === 'idle' || preview.state === 'checking');
  const wanted = settled.current;
  const intent = usePaymentIntent(order.id, wanted, onFailed);
  const gateway: Gateway = intent.last ? (intent.last.publishableKey ? 'stripe' : 'test') : 'unknown';
  const free = (preview.state === 'ok' && preview.amountCents === 0) || (intent.current.state === 'free' && intent.current.coupon === code);
  const current = intent.current;
  /** The intent answered is the one for what the buyer sees now. */
  const intentMatches = !checking && !free && current.state === 'ready' && current.coupon === wanted;
  const intentCouponError =
    current.state === 'failed' && code && current.coupon === code ? current.error.fieldErrors().couponCode : undefined;
  const couponError = preview.state === 'invalid' ? preview.message : (refusedOnPay ?? intentCouponError);
  const intentFailure = current.state === 'failed' && !intentCouponError && !free ? current.error : null;

  const confirmRef = useRef<StripeConfirm | null>(null);
  // The Payment Element says when it can be confirmed, per client secret (a new one remounts it).
  const [readySecret, setReadySecret] = useState<string | null>(null);
  const cardReady = readySecret !== null && readySecret === intent.last?.clientSecret;

  let amountCents = preview.state === 'ok' ? preview.amountCents : order.priceCents;
  if (free) amountCents = 0;
  // Stripe charges the intent's amount; the test gateway charges what payment:create works out,
  // the same as the preview (the intent's amount when the preview could not be had).
  else if (intentMatches && current.state === 'ready' && (gateway === 'stripe' || preview.state === 'unavailable')) {
    amountCents = current.intent.amountCents;
  }

  // Paying confirms the intent of what the button says, with either gateway: the server keeps
  // one open intent per order (with its coupon), and a charge with another coupon would be
  // refused while it is open. So Pay waits for the intent of the coupon as typed (a free order
  // needs none); Stripe also waits for its Element.
  const canPay = !busy && !cancelling && (free || (gateway !== 'unknown' && intentMatches && (gateway === 'test' || cardReady)));

  let status = '';
  if (!free) {
    if (gateway === 'unknown' && !intentFailure) status = 'Preparing the payment…';
    else if (checking || current.state === 'loading') status = 'Updating the amount to pay…';
  }

  const payWithServer = async (paymentMethod: string | undefined) => {
    setBusy(true);
    try {
      const { data } = await session.request('payment:create', {
        orderId: order.id,
        ...(paymentMethod ? { paymentMethod } : {}),
        ...(code ? { couponCode: code } : {}),
      });
      onPaid(data);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status === 402) {
        // Always the contract's wording for a declined card.
        show(new ApiError(402, [{ message: DECLINED_MESSAGE }]), PAYMENT_FIELDS);
      } else {
        show(apiErr, PAYMENT_FIELDS);
      }
      if (apiErr.status === 402 || apiErr.status === 409) onFailed();
    } finally {
      setBusy(false);
    }
  };

  const payWithStripe = async () => {
    const confirm = confirmRef.current;
    if (!confirm) return;
    setBusy(true);
    try {
      const result = await confirm();
      if (result.ok) onConfirmed();
      else show(new ApiError(402, [{ message: result.message }]), []);
    } catch {
      show(new ApiError(500, [{ message: 'The payment could not be completed. Please try again.' }]), []);
    } finally {
      setBusy(false);
    }
  };

  const pay = async (e: FormEvent) => {
    e.preventDefault();
    if (!canPay) return;
    cancelPending();
    clear();
    if (!free && preview.state === 'invalid') {
      // The intent is for the full price while the buyer meant the coupon: say why not.
      showFields({ couponCode: preview.message });
      return;
    }
    if (free) await payWithServer(undefined);
    else if (gateway === 'test') await payWithServer(method);
    else if (gateway === 'stripe') await payWithStripe();
  };

  const cancel = async () => {
    clear();
    setCancelling(true);
    try {
      const { data } = await session.request('order:cancel', { id: order.id });
      onOrder(data);
    } catch (err) {
      show(err, []);
    } finally {
      setCancelling(false);
    }
  };

  const readyIntent = intent.last;
  return (
    <>
      <h2>Payment</h2>
      <form
        ref={formRef}
        onSubmit={pay}
        noValidate
        data-testid="payment-form"
        data-gateway={gateway}
        data-intent-state={current.state}
        data-intent-amount-cents={current.state === 'ready' ? current.intent.amountCents : undefined}
        aria-busy={busy}
      >
        {free ? (
          <p className="free-note" data-testid="no-card-needed">
            No card is needed: the coupon makes the stuff free.
          </p>
        ) : gateway === 'stripe' && readyIntent?.publishableKey ? (
          <fieldset className="field">
            <legend>Card or other payment method</legend>
            <Suspense
              fallback={
                <p className="muted" aria-live="polite" data-testid="stripe-loading">
                  Loading the card form…
                </p>
              }
            >
              <StripeCard
                publishableKey={readyIntent.publishableKey}
                clientSecret={readyIntent.clientSecret}
                amountCents={readyIntent.amountCents}
                returnUrl={orderReturnUrl(order.id)}
                confirmRef={confirmRef}
                onReady={setReadySecret}
              />
            </Suspense>
          </fieldset>
        ) : gateway === 'test' ? (
          <fieldset className="field" data-testid="test-payment-methods">
            <legend>Payment method (test gateway)</legend>
            {TEST_PAYMENT_METHODS.map((m) => (
              <div className="radio" key={m.id}>
                <input
                  type="radio"
                  id={`pm-${m.id}`}
                  name="paymentMethod"
                  value={m.id}
                  checked={method === m.id}
                  onChange={() => setMethod(m.id)}
                  aria-invalid={errors.fields.paymentMethod ? true : undefined}
                  aria-describedby={errors.fields.paymentMethod ? 'error-paymentMethod' : undefined}
                  data-testid={`payment-method-${m.id}`}
                />
                <label htmlFor={`pm-${m.id}`}>{m.label}</label>
              </div>
            ))}
            <FieldError field="paymentMethod" message={errors.fields.paymentMethod} />
          </fieldset>
        ) : null}
        {intentFailure && (
          <div className="banner banner-error" role="alert" data-testid="intent-error">
            <p>The payment could not be prepared: {intentFailure.errors.map((x) => x.message).join(' ')}</p>
            <button type="button" className="small" onClick={intent.retry} data-testid="intent-retry">
              Try again
            </button>
          </div>
        )}
        <TextField
          name="couponCode"
          label="Coupon code (optional)"
          autoComplete="off"
          autoCapitalize="characters"
          spellCheck={false}
          value={coupon}
          onChange={(e) => {
            setCoupon(e.target.value);
            clearField('couponCode');
          }}
          onBlur={checkNow}
          error={couponError}
          describedByExtra="coupon-preview"
          data-testid="coupon-input"
        />
        <p
          id="coupon-preview"
          className="coupon-preview"
          aria-live="polite"
          data-testid="coupon-preview"
          data-state={preview.state}
          data-amount-cents={preview.state === 'ok' ? preview.amountCents : undefined}
        >
          <CouponPreviewText preview={preview} currency={currency} />
        </p>
        <div className="actions">
          <button
            type="submit"
            className="primary"
            disabled={!canPay}
            aria-describedby={status ? 'payment-status' : undefined}
            data-testid="pay-button"
            data-amount-cents={amountCents}
          >
            {busy ? (gateway === 'stripe' && !free ? 'Confirming…' : 'Paying…') : payLabel(amountCents, currency)}
          </button>
          <button type="button" onClick={cancel} disabled={busy || cancelling} data-testid="cancel-order-button">
            {cancelling ? 'Cancelling…' : 'Cancel order'}
          </button>
        </div>
        <p id="payment-status" className="muted small" aria-live="polite" data-testid="payment-status">
          {status}
        </p>
        <p className="muted small">
          {gateway === 'stripe'
            ? 'Payments are processed by Stripe; your card details never reach StuffMart. '
            : ''}
          A coupon is checked as you type; a 100% coupon makes the stuff free and needs no card.
        </p>
      </form>
    </>
  );
}
