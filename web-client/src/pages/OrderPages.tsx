import { useEffect, useRef, useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { useCurrency } from '../api/config';
import { putOrder, queryKeys } from '../api/queries';
import { errorMessages, useOrderQuery, useOrdersQuery, useStuffQuery, useStuffTitles } from '../api/queries-react';
import { formatCents, formatTime } from '../api/format';
import { useSession } from '../api/session-react';
import type { Order, Payment } from '../api/types';
import { Countdown, useCountdown } from '../countdown/Countdown';
import { DeliveryView, useDelivery } from '../components/delivery';
import { PaymentForm } from '../components/PaymentForm';
import { ReviewForm } from '../components/reviews';
import { canReview } from '../api/reviews';
import { CopyButton, ErrorBanner, OrderAmount, OrderStatusBadge, Price } from '../components/ui';
import { orderPaidCents, orderStuffTitle, paidDiffersFromPrice } from '../api/orders';
import { Link } from 'react-router';
import { RequireSignIn } from './RequireSignIn';

// The payment form moved to components/PaymentForm.tsx; these stay importable from here.
export { COUPON_CHECK_DELAY_MS, DECLINED_MESSAGE, payLabel, TEST_PAYMENT_METHODS, useCouponPreview } from '../components/PaymentForm';
export type { CouponPreview } from '../components/PaymentForm';

// Moved to api/queries-react.ts (the cache); stays importable from here.
export { useStuffTitles };

/** The stuff of orders that carry no title (older than `stuffTitle`): only those need `stuff:get`. */
export function untitledStuffIds(orders: Order[]): string[] {
  return Array.from(new Set(orders.filter((o) => orderStuffTitle(o) === null).map((o) => o.stuffId)));
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
  const client = useQueryClient();
  const { user } = useSession();
  const orderQuery = useOrderQuery(id);
  const order = orderQuery.data ?? null;
  const loadError = orderQuery.error ? { status: orderQuery.error.status, messages: errorMessages(orderQuery.error) } : null;
  // The stuff's current title, for an order older than `stuffTitle` (its errors change nothing here).
  const stuff = useStuffQuery(order?.stuffId).data ?? null;
  const [payment, setPayment] = useState<Payment | null>(null);
  // Payment errors live here, not in the form: a declined card cancels the order, which removes
  // the form, and the message must stay visible.
  const [paymentErrors, setPaymentErrors] = useState<string[]>([]);
  const paymentBannerRef = useRef<HTMLDivElement>(null);
  const currency = useCurrency();
  // Stripe took the card in this browser (or sent the buyer back here after a redirect): the
  // order is paid once the server says so (`order:updated`), not before.
  const [confirming, setConfirming] = useState(() => returnedFromStripe().confirming);
  useEffect(() => {
    const back = returnedFromStripe();
    if (back.failed) setPaymentErrors([PAYMENT_NOT_COMPLETED_MESSAGE]);
  }, []);

  // After paying (or failing to), the order changes on the server; the push normally brings it,
  // this makes sure of it.
  const refetch = () => void client.invalidateQueries({ queryKey: queryKeys.order(user?.id ?? '', id) });

  if (!order) {
    if (loadError) {
      return <ErrorBanner messages={loadError.status === 404 ? ['This order does not exist.'] : loadError.messages} />;
    }
    return <p aria-live="polite">Loading…</p>;
  }

  const paid = orderPaidCents(order);
  return (
    <div data-testid="order-page" data-order-id={order.id} data-status={order.status}>
      <dl className="details">
        <dt>Stuff</dt>
        <dd>
          <Link to={`/stuff/${encodeURIComponent(order.stuffId)}`} data-testid="order-stuff-link">
            {orderStuffTitle(order) ?? stuff?.title ?? 'View the stuff'}
          </Link>
        </dd>
        <dt>Price</dt>
        <dd>
          <Price cents={order.priceCents} testId="order-price" />
        </dd>
        {paid !== null && (
          <>
            <dt>Paid</dt>
            <dd>
              <Price cents={paid} testId="order-paid" />
              {paidDiffersFromPrice(order) && <span className="muted small"> (after the coupon)</span>}
            </dd>
          </>
        )}
        <dt>Status</dt>
        <dd>
          <OrderStatusBadge status={order.status} />
        </dd>
        <dt>Ordered</dt>
        <dd>{formatTime(order.createdAt)}</dd>
        <dt>Order number</dt>
        <dd className="order-id">
          <code data-testid="order-id">{order.id}</code>{' '}
          <CopyButton text={order.id} label="Copy" what="the order number" testId="copy-order-id" />
        </dd>
        <TimeLeftRow order={order} />
      </dl>

      <ErrorBanner ref={paymentBannerRef} messages={paymentErrors} testId="payment-error" />
      {order.status === 'created' && (payment || confirming) && <ConfirmingNotice />}
      {payment && order.status !== 'created' && (
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
      <OrderReview order={order} />
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
      {order.status === 'created' && !payment && !confirming && (
        <PaymentForm
          order={order}
          onPaid={(p) => {
            setPayment(p);
            refetch();
          }}
          onConfirmed={() => {
            setConfirming(true);
            refetch();
          }}
          onFailed={refetch}
          onGeneralErrors={setPaymentErrors}
          bannerRef={paymentBannerRef}
          onOrder={(o) => putOrder(client, o, user?.id ?? null)}
        />
      )}
    </div>
  );
}

export const PAYMENT_NOT_COMPLETED_MESSAGE = 'The payment was not completed. You can try again.';

/**
 * Stripe sends the buyer back to this page after a redirect-based payment method, with
 * `payment_intent_client_secret` and `redirect_status` in the URL.
 */
function returnedFromStripe(): { confirming: boolean; failed: boolean } {
  const params = new URLSearchParams(window.location.search);
  if (!params.has('payment_intent_client_secret')) return { confirming: false, failed: false };
  const failed = params.get('redirect_status') === 'failed';
  return { confirming: !failed, failed };
}

/** Paid (or confirmed with Stripe), waiting for the server to complete the order. */
function ConfirmingNotice() {
  const ref = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    // The form that had the focus is gone: keep keyboard and screen reader users here.
    if (!document.activeElement || document.activeElement === document.body) ref.current?.focus();
  }, []);
  return (
    <p ref={ref} tabIndex={-1} className="banner banner-info" role="status" data-testid="payment-confirming">
      Payment received — confirming…
    </p>
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
 * The review form of a complete order its buyer has not reviewed yet. Once a review is on its way
 * the section stays (with the thanks, or the refusal) even when the order then says `reviewed`.
 */
function OrderReview({ order }: { order: Order }) {
  const [sending, setSending] = useState(false);
  if (!canReview(order) && !sending) {
    return order.status === 'complete' && order.reviewed ? (
      <p className="muted" data-testid="order-reviewed">
        You reviewed this.{' '}
        <Link to={`/stuff/${encodeURIComponent(order.stuffId)}`}>See the reviews</Link>
      </p>
    ) : null;
  }
  return (
    <section aria-labelledby="review-heading" className="order-review" data-testid="order-review">
      <h2 id="review-heading">Review this stuff</h2>
      <ReviewForm orderId={order.id} onSending={() => setSending(true)} />
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
  const { data, error } = useOrdersQuery();
  return { orders: data ?? null, error: errorMessages(error) };
}

function MyOrders() {
  const { orders, error } = useMyOrders();

  const sorted = (orders ?? []).slice().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const titles = useStuffTitles(untitledStuffIds(sorted));

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
                {orderStuffTitle(o) ?? titles[o.stuffId] ?? 'Order'}
              </Link>
              <OrderAmount order={o} />
              <OrderStatusBadge status={o.status} />
              <span className="muted small">{formatTime(o.createdAt)}</span>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
