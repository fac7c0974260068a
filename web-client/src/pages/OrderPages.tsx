import { useCallback, useEffect, useRef, useState, type FormEvent, type RefObject } from 'react';
import { applyOrderUpdated, mergeOrders, pickNewer } from '../api/catalogue';
import { useCurrency } from '../api/config';
import { ApiError, toApiError } from '../api/errors';
import { formatCents, formatTime } from '../api/format';
import { usePush, useSession, useSessionManager } from '../api/session-react';
import type { Order, Payment, Stuff } from '../api/types';
import { Countdown, useCountdown } from '../countdown/Countdown';
import { DeliveryView, useDelivery } from '../components/delivery';
import { StripeElementsPlaceholder, stripeConfigured } from '../components/StripeElementsPlaceholder';
import { ErrorBanner, FieldError, OrderStatusBadge, Price, TextField, useFormErrors } from '../components/ui';
import { Link } from '../router/router';
import { RequireSignIn } from './RequireSignIn';

export const DECLINED_MESSAGE = 'Your card was declined';

export const TEST_PAYMENT_METHODS = [
  { id: 'pm_card_visa', label: 'Visa (test card, succeeds)' },
  { id: 'pm_card_mastercard', label: 'Mastercard (test card, succeeds)' },
  { id: 'pm_card_chargeDeclined', label: 'Declined card (test card, fails)' },
] as const;

/** Titles of stuff by id, fetched once each (orders carry only `stuffId`). */
export function useStuffTitles(ids: string[]): Record<string, string> {
  const session = useSessionManager();
  const [titles, setTitles] = useState<Record<string, string>>({});
  const requested = useRef(new Set<string>());
  const key = ids.join(',');
  useEffect(() => {
    for (const id of ids) {
      if (requested.current.has(id)) continue;
      requested.current.add(id);
      session
        .request('stuff:get', { id })
        .then(({ data }) => setTitles((t) => ({ ...t, [id]: data.title })))
        .catch(() => requested.current.delete(id));
    }
  }, [key, session]); // `ids` is captured through `key`
  return titles;
}

export function OrderPage({ id }: { id: string }) {
  return (
    <section className="narrow">
      <h1 tabIndex={-1}>Order</h1>
      <RequireSignIn next={`/orders/${id}`}>
        <OrderView id={id} />
      </RequireSignIn>
    </section>
  );
}

function OrderView({ id }: { id: string }) {
  const session = useSessionManager();
  const { epoch } = useSession();
  const [order, setOrder] = useState<Order | null>(null);
  const [stuff, setStuff] = useState<Stuff | null>(null);
  const [loadError, setLoadError] = useState<{ status: number; messages: string[] } | null>(null);
  const [payment, setPayment] = useState<Payment | null>(null);
  // Payment errors live here, not in the form: a declined card cancels the order, which removes
  // the form, and the message must stay visible.
  const [paymentErrors, setPaymentErrors] = useState<string[]>([]);
  const paymentBannerRef = useRef<HTMLDivElement>(null);
  const currency = useCurrency();

  useEffect(() => {
    if (epoch === 0) return;
    let live = true;
    session
      .request('order:get', { id })
      .then(({ data }) => {
        if (!live) return;
        setOrder((held) => (held && held.id === data.id ? pickNewer(held, data) : data));
        setLoadError(null);
      })
      .catch((e) => {
        if (!live) return;
        const err = toApiError(e);
        setLoadError({ status: err.status, messages: err.errors.map((x) => x.message) });
      });
    return () => {
      live = false;
    };
  }, [session, id, epoch]);

  const stuffId = order?.stuffId;
  useEffect(() => {
    if (!stuffId || epoch === 0) return;
    session
      .request('stuff:get', { id: stuffId })
      .then(({ data }) => setStuff((held) => pickNewer(held, data)))
      .catch(() => undefined);
  }, [session, stuffId, epoch]);

  usePush('order:updated', (o) => {
    if (o.id === id) setOrder((held) => pickNewer(held, o));
  });
  usePush('stuff:updated', (s) => {
    if (s.id === stuffId) setStuff((held) => pickNewer(held, s));
  });

  // After paying (or failing to), the order changes on the server; the push normally brings it,
  // this makes sure of it.
  const refetch = () => {
    session
      .request('order:get', { id })
      .then(({ data }) => setOrder((held) => pickNewer(held, data)))
      .catch(() => undefined);
  };

  if (!order) {
    if (loadError) {
      return <ErrorBanner messages={loadError.status === 404 ? ['This order does not exist.'] : loadError.messages} />;
    }
    return <p aria-live="polite">Loading…</p>;
  }

  return (
    <div data-testid="order-page" data-order-id={order.id} data-status={order.status}>
      <dl className="details">
        <dt>Stuff</dt>
        <dd>
          <Link to={`/stuff/${encodeURIComponent(order.stuffId)}`} data-testid="order-stuff-link">
            {stuff?.title ?? 'View the stuff'}
          </Link>
        </dd>
        <dt>Price</dt>
        <dd>
          <Price cents={order.priceCents} testId="order-price" />
        </dd>
        <dt>Status</dt>
        <dd>
          <OrderStatusBadge status={order.status} />
        </dd>
        <dt>Ordered</dt>
        <dd>{formatTime(order.createdAt)}</dd>
        <TimeLeftRow order={order} />
      </dl>

      <ErrorBanner ref={paymentBannerRef} messages={paymentErrors} testId="payment-error" />
      {payment && (
        <p className="banner banner-success" role="status" data-testid="payment-success">
          Payment received: {formatCents(payment.amountCents, payment.currency || currency)}
          {payment.couponCode ? ` (coupon ${payment.couponCode})` : ''}.
        </p>
      )}
      {order.status === 'complete' && (
        <p className="banner banner-success" role="status" data-testid="order-complete">
          Paid. The stuff is yours.
        </p>
      )}
      {order.status === 'complete' && <OrderDelivery orderId={order.id} />}
      {order.status === 'refunded' && (
        <p className="banner banner-info" role="status" data-testid="order-refunded">
          This order was refunded: the money went back to you and the stuff is no longer yours.
        </p>
      )}
      {order.status === 'cancelled' && (
        <p className="banner banner-info" role="status" data-testid="order-cancelled">
          This order was cancelled. If the stuff is still available you can{' '}
          <Link to={`/stuff/${encodeURIComponent(order.stuffId)}`}>try again</Link>.
        </p>
      )}
      {order.status === 'created' && (
        <PaymentForm
          order={order}
          onPaid={(p) => {
            setPayment(p);
            refetch();
          }}
          onFailed={refetch}
          onGeneralErrors={setPaymentErrors}
          bannerRef={paymentBannerRef}
          onOrder={(o) => setOrder((held) => pickNewer(held, o))}
        />
      )}
    </div>
  );
}

/** The note and downloads of a complete order; renewed on `delivery:updated` (a new version). */
function OrderDelivery({ orderId }: { orderId: string }) {
  const state = useDelivery({ orderId });
  return (
    <section aria-labelledby="your-stuff-heading" className="order-delivery">
      <h2 id="your-stuff-heading">Your stuff</h2>
      <DeliveryView state={state} />
      <p className="muted small">
        Everything you bought is also in your <Link to="/library">library</Link>.
      </p>
    </section>
  );
}

/**
 * The countdown while the order awaits payment. It stays (reading "Expired") once the hold has run
 * out and the server has cancelled the order: the cancellation arrives a few milliseconds after the
 * countdown reaches zero, and the countdown must not vanish just as it expires.
 */
function TimeLeftRow({ order }: { order: Order }) {
  const { expired } = useCountdown(order.expiresAt);
  if (order.status === 'complete' || order.status === 'refunded' || (order.status === 'cancelled' && !expired)) return null;
  return (
    <>
      <dt>Time left to pay</dt>
      <dd>
        <Countdown expiresAt={order.expiresAt} />{' '}
        <span className="muted small">(until {formatTime(order.expiresAt)})</span>
      </dd>
    </>
  );
}

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

function PaymentForm({
  order,
  onPaid,
  onFailed,
  onGeneralErrors,
  bannerRef,
  onOrder,
}: {
  order: Order;
  onPaid: (p: Payment) => void;
  onFailed: () => void;
  onGeneralErrors: (messages: string[]) => void;
  bannerRef: RefObject<HTMLDivElement | null>;
  onOrder: (o: Order) => void;
}) {
  const session = useSessionManager();
  const currency = useCurrency();
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show: showInForm, clear: clearForm, clearField } = useFormErrors(formRef, bannerRef);
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
  // Paying has the last word: a coupon refused then (say, redeemed by someone else meanwhile)
  // replaces what the check said.
  const refusedOnPay = errors.fields.couponCode;
  const preview: CouponPreview = refusedOnPay && coupon.trim() ? { state: 'invalid', code: coupon.trim(), message: refusedOnPay } : checked.preview;

  const amountCents = preview.state === 'ok' ? preview.amountCents : order.priceCents;
  const couponError = preview.state === 'invalid' ? preview.message : refusedOnPay;

  const pay = async (e: FormEvent) => {
    e.preventDefault();
    cancelPending();
    clear();
    setBusy(true);
    try {
      const code = coupon.trim();
      const { data } = await session.request('payment:create', {
        orderId: order.id,
        paymentMethod: method,
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

  return (
    <>
      <h2>Payment</h2>
      <form ref={formRef} onSubmit={pay} noValidate data-testid="payment-form" aria-busy={busy}>
        {stripeConfigured() && <StripeElementsPlaceholder />}
        <fieldset className="field">
          <legend>Payment method</legend>
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
            disabled={busy || cancelling}
            data-testid="pay-button"
            data-amount-cents={amountCents}
          >
            {busy ? 'Paying…' : payLabel(amountCents, currency)}
          </button>
          <button type="button" onClick={cancel} disabled={busy || cancelling} data-testid="cancel-order-button">
            {cancelling ? 'Cancelling…' : 'Cancel order'}
          </button>
        </div>
        <p className="muted small">A coupon is checked as you type; a 100% coupon makes the stuff free and needs no card.</p>
      </form>
    </>
  );
}

export function MyOrdersPage() {
  return (
    <section>
      <h1 tabIndex={-1}>My orders</h1>
      <RequireSignIn next="/orders">
        <MyOrders />
      </RequireSignIn>
    </section>
  );
}

/** The signed-in user's orders (`order:list`), kept current by `order:updated` pushes:
 * what My orders and the Library both show. `orders` is null until the first answer. */
export function useMyOrders(): { orders: Order[] | null; error: string[] } {
  const session = useSessionManager();
  const { epoch, user } = useSession();
  const [orders, setOrders] = useState<Order[] | null>(null);
  const [error, setError] = useState<string[]>([]);

  useEffect(() => {
    if (epoch === 0 || !user) return;
    let live = true;
    session
      .request('order:list', {})
      .then(({ data }) => {
        if (!live) return;
        setOrders((held) => mergeOrders(held ?? [], data));
        setError([]);
      })
      .catch((e) => live && setError(toApiError(e).errors.map((x) => x.message)));
    return () => {
      live = false;
    };
  }, [session, epoch, user]);

  // An order created or completed in another tab shows up at once.
  usePush('order:updated', (o) => setOrders((held) => (held ? applyOrderUpdated(held, o) : held)));
  return { orders, error };
}

function MyOrders() {
  const { orders, error } = useMyOrders();

  const sorted = (orders ?? []).slice().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const titles = useStuffTitles(Array.from(new Set(sorted.map((o) => o.stuffId))));

  if (!orders) return error.length ? <ErrorBanner messages={error} /> : <p aria-live="polite">Loading…</p>;
  return (
    <>
      <ErrorBanner messages={error} />
      {sorted.length === 0 ? (
        <p data-testid="orders-empty">
          No orders yet. <Link to="/">Browse the catalogue</Link>
        </p>
      ) : (
        <ul className="rows" data-testid="orders-list">
          {sorted.map((o) => (
            <li key={o.id} className="row" data-testid={`order-row-${o.id}`} data-status={o.status}>
              <Link to={`/orders/${encodeURIComponent(o.id)}`} data-testid="order-link">
                {titles[o.stuffId] ?? 'Order'}
              </Link>
              <Price cents={o.priceCents} />
              <OrderStatusBadge status={o.status} />
              <span className="muted small">{formatTime(o.createdAt)}</span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
