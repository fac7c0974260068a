// My listings (`/selling`): every stuff the signed-in user listed (`stuff:mine`), any status,
// newest first, with its course, kept current by `stuff:updated` / `stuff:created` pushes. Each row links to the
// stuff and, while it is available, to its edit page, and offers Withdraw (with a confirmation).
// Below: Payouts (`payout:status`, `payout:onboard`: whether my earnings go to my Stripe account,
// what is held for me, what was paid out; components/payouts.tsx), then Sales (`order:sales`), what
// sold, to whom, and what I earned; both refreshed on `sale:completed`.
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { formatTime } from '../api/format';
import { NO_SALES_MESSAGE } from '../api/sales';
import { putStuff, queryKeys } from '../api/queries';
import { errorMessages, useMineQuery, useSalesQuery } from '../api/queries-react';
import { useSession } from '../api/session-react';
import type { SalesSummary, Stuff } from '../api/types';
import { Payouts } from '../components/payouts';
import { CourseBadge, ErrorBanner, Price, StatusBadge } from '../components/ui';
import { useRefusalBanner, WithdrawControl } from '../components/withdraw';
import { Link, useLocation } from 'react-router';
import { RequireSignIn } from './RequireSignIn';

export const NOTHING_LISTED_MESSAGE = 'You have not listed anything yet.';

export function SellingPage() {
  // Signing in comes back with the query (`?payouts=return` from Stripe is read after it).
  const { search } = useLocation();
  return (
    <section>
      <h1 tabIndex={-1}>My listings</h1>
      <RequireSignIn next={`/selling${search}`}>
        <MyListings />
        <Payouts />
        <Sales />
      </RequireSignIn>
    </section>
  );
}

/** The caller's listings: null until `stuff:mine` first answers; re-fetched after every reconnect. */
export function useMyListings(): { items: Stuff[] | null; error: string[]; refetch: () => void; replace: (s: Stuff) => void } {
  const client = useQueryClient();
  const { user } = useSession();
  const userId = user?.id ?? null;
  const { data, error } = useMineQuery();
  return {
    items: data ?? null,
    error: errorMessages(error),
    refetch: () => void (userId && client.invalidateQueries({ queryKey: queryKeys.mine(userId) })),
    replace: (s) => putStuff(client, s, userId),
  };
}

function MyListings() {
  const { items, error, refetch, replace } = useMyListings();
  const [withdrawn, setWithdrawn] = useState<Stuff | null>(null);
  const noticeRef = useRef<HTMLParagraphElement>(null);
  const refusal = useRefusalBanner();
  useEffect(() => {
    // The row's Withdraw button is gone: the focus goes to what happened.
    if (withdrawn) noticeRef.current?.focus();
  }, [withdrawn]);

  if (!items) return error.length ? <ErrorBanner messages={error} /> : <p aria-live="polite">Loading…</p>;
  return (
    <>
      <ErrorBanner messages={error} testId="listings-error" />
      <ErrorBanner ref={refusal.ref} messages={refusal.messages} testId="withdraw-error" onDismiss={refusal.clear} />
      {withdrawn && (
        <p ref={noticeRef} tabIndex={-1} className="banner banner-success" role="status" data-testid="withdrawn-notice">
          Withdrew “{withdrawn.title}”: it is no longer for sale.
        </p>
      )}
      {items.length === 0 ? (
        <p data-testid="listings-empty">
          {NOTHING_LISTED_MESSAGE}{' '}
          <Link to="/sell" className="tap-link">
            Sell something
          </Link>
        </p>
      ) : (
        <ul className="listings" data-testid="listings">
          {items.map((s) => (
            <li key={s.id} className="row listing" data-testid={`listing-${s.id}`} data-status={s.status} data-version={s.version}>
              <Link to={`/stuff/${encodeURIComponent(s.id)}`} className="tap-link listing-title" data-testid="listing-link">
                {s.title}
              </Link>
              {/* Before the price, so the prices and statuses of every row stay in one column. */}
              {s.course && <CourseBadge course={s.course} />}
              <Price cents={s.priceCents} />
              <StatusBadge status={s.status} />
              {s.status === 'available' && (
                <div className="listing-actions">
                  <Link to={`/stuff/${encodeURIComponent(s.id)}/edit`} className="button" data-testid="listing-edit-link">
                    Edit<span className="visually-hidden"> {s.title}</span>
                  </Link>
                  <WithdrawControl
                    stuff={s}
                    onWithdrawn={(w) => {
                      refusal.clear();
                      replace(w);
                      setWithdrawn(w);
                    }}
                    onRefused={(err) => {
                      setWithdrawn(null);
                      refusal.show(err);
                      refetch();
                    }}
                  />
                </div>
              )}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

/**
 * My sales: `order:sales` after every (re)connect and whenever `sale:completed` arrives; the pushed
 * sale shows at once, and an answer that left before it does not hide it.
 */
export function useSales(): { summary: SalesSummary | null; error: string[] } {
  const { data, error } = useSalesQuery();
  return { summary: data ?? null, error: errorMessages(error) };
}

function Sales() {
  const { summary, error } = useSales();
  return (
    <section className="sales" aria-labelledby="sales-heading" data-testid="sales">
      <h2 id="sales-heading">Sales</h2>
      <ErrorBanner messages={error} testId="sales-error" />
      {summary === null ? (
        error.length ? null : <p aria-live="polite">Loading sales…</p>
      ) : (
        <>
          <p className="sales-total" data-testid="sales-total">
            Total earned: <Price cents={summary.totalEarnedCents} testId="sales-total-amount" />
          </p>
          {summary.sales.length === 0 ? (
            <p className="muted" data-testid="sales-empty">
              {NO_SALES_MESSAGE}
            </p>
          ) : (
            <ul className="sale-list" data-testid="sale-list">
              {summary.sales.map((s) => (
                <li key={s.orderId} className="row sale" data-testid={`sale-${s.orderId}`}>
                  <div className="sale-what">
                    <Link to={`/stuff/${encodeURIComponent(s.stuffId)}`} className="tap-link sale-title" data-testid="sale-title">
                      {s.stuffTitle || 'Your stuff'}
                    </Link>
                    <span className="muted small">
                      Bought by <span data-testid="sale-buyer">{s.buyerDisplayName}</span> ·{' '}
                      <time dateTime={s.paidAt} data-testid="sale-date">
                        {formatTime(s.paidAt)}
                      </time>
                    </span>
                  </div>
                  <dl className="sale-amounts">
                    <div>
                      <dt>Paid</dt>
                      <dd>
                        <Price cents={s.paidCents} testId="sale-paid" />
                      </dd>
                    </div>
                    <div>
                      <dt>Fee</dt>
                      <dd>
                        <Price cents={s.feeCents} testId="sale-fee" />
                      </dd>
                    </div>
                    <div>
                      <dt>Earned</dt>
                      <dd>
                        <Price cents={s.earnedCents} testId="sale-earned" />
                      </dd>
                    </div>
                  </dl>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}
