// The library: everything the signed-in user bought (complete orders), each with its private
// note and download links. Links are renewed on their own, and on `delivery:updated`.
import { formatTime } from '../api/format';
import type { Order } from '../api/types';
import { DeliveryView, useDelivery } from '../components/delivery';
import { orderStuffTitle } from '../api/orders';
import { ErrorBanner, OrderAmount } from '../components/ui';
import { Link } from 'react-router';
import { untitledStuffIds, useMyOrders, useStuffTitles } from './OrderPages';
import { RequireSignIn } from './RequireSignIn';

export function LibraryPage() {
  return (
    <section>
      <h1 tabIndex={-1}>Library</h1>
      <RequireSignIn next="/library">
        <Library />
      </RequireSignIn>
    </section>
  );
}

function Library() {
  const { orders, error } = useMyOrders();

  const bought = (orders ?? []).filter((o) => o.status === 'complete').sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const titles = useStuffTitles(untitledStuffIds(bought));

  if (!orders) return error.length ? <ErrorBanner messages={error} /> : <p aria-live="polite">Loading…</p>;
  return (
    <>
      <ErrorBanner messages={error} />
      {bought.length === 0 ? (
        <p data-testid="library-empty">
          Nothing here yet: what you buy shows up here, ready to download. <Link to="/">Browse the catalogue</Link>
        </p>
      ) : (
        <ul className="library" data-testid="library-list">
          {bought.map((o) => (
            <LibraryItem key={o.id} order={o} title={orderStuffTitle(o) ?? titles[o.stuffId]} />
          ))}
        </ul>
      )}
    </>
  );
}

function LibraryItem({ order, title }: { order: Order; title: string | undefined }) {
  const state = useDelivery({ orderId: order.id });
  const headingId = `library-item-${order.id}-heading`;
  return (
    <li className="card library-item" data-testid={`library-item-${order.id}`}>
      <h2 id={headingId} className="card-title">
        <Link to={`/orders/${encodeURIComponent(order.id)}`} data-testid="library-order-link">
          {title ?? 'Your purchase'}
        </Link>
      </h2>
      <p className="muted small">
        Bought {formatTime(order.createdAt)}: <OrderAmount order={order} testId="library-amount" />
      </p>
      <DeliveryView state={state} />
    </li>
  );
}
