import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { courseHref, sellerHref } from '../api/browse';
import { NOTHING_TO_DELIVER_MESSAGE, nothingToDeliver, stuffFiles } from '../api/delivery';
import { toApiError } from '../api/errors';
import { formatTime, NO_LONGER_FOR_SALE_LABEL } from '../api/format';
import type { PreviewViewer } from '../api/previews';
import { putOrder, putStuff, queryKeys } from '../api/queries';
import { errorMessages, useOrdersQuery, useStuffQuery } from '../api/queries-react';
import { useSession, useSessionManager } from '../api/session-react';
import type { Stuff } from '../api/types';
import { FileList } from '../components/delivery';
import { PdfPreviews } from '../components/previews';
import { RatingBadge, ReviewsSection } from '../components/reviews';
import { Cover } from '../components/cover';
import { ErrorBanner, Price, StatusBadge } from '../components/ui';
import { useRefusalBanner, WITHDRAWN_MESSAGE, WithdrawControl } from '../components/withdraw';
import { Link, useNavigate } from 'react-router';
import { SellerDelivery } from './SellerDelivery';

export const CHECKED_OUT_MESSAGE = 'The stuff is being checked out by someone else, please come back later';
export const SOLD_MESSAGE = 'This stuff has already been sold';
export { WITHDRAWN_MESSAGE };
/** Under the badge of a withdrawn stuff, for buyers. */
export const WITHDRAWN_BUYER_TEXT = 'The seller took this off sale, so it cannot be bought.';

export function StuffPage({ id }: { id: string }) {
  const session = useSessionManager();
  const navigate = useNavigate();
  const { user } = useSession();
  const client = useQueryClient();
  const stuffQuery = useStuffQuery(id);
  const stuff = stuffQuery.data ?? null;
  const loadError = stuffQuery.error ? { status: stuffQuery.error.status, messages: errorMessages(stuffQuery.error) } : null;
  // Does the signed-in user hold the active order on this stuff? (Not essential for this page:
  // BUY still works and the server decides, so a failed `order:list` shows nothing.)
  const orders = useOrdersQuery().data;
  const myOrder = (user && orders?.find((o) => o.stuffId === id && o.status === 'created')) || null;
  /** Whether the signed-in user paid for this stuff (a complete order); null until `order:list` answers. */
  const bought: boolean | null = !user ? false : orders ? orders.some((o) => o.stuffId === id && o.status === 'complete') : null;
  const [buyError, setBuyError] = useState<string[]>([]);
  const [buying, setBuying] = useState(false);
  /** Just withdrawn here: say so, with the focus (the Withdraw button is gone). */
  const [justWithdrawn, setJustWithdrawn] = useState(false);
  const withdrawnNoticeRef = useRef<HTMLParagraphElement>(null);
  const withdrawRefusal = useRefusalBanner();
  useEffect(() => {
    if (justWithdrawn) withdrawnNoticeRef.current?.focus();
  }, [justWithdrawn]);

  /** After the seller changed files or the note: the push normally brings it, this makes sure. */
  const refetch = () => void client.invalidateQueries({ queryKey: queryKeys.stuff(id) });

  const buy = async () => {
    setBuyError([]);
    setBuying(true);
    try {
      const { data } = await session.request('order:create', { stuffId: id });
      putOrder(client, data, user?.id ?? null);
      navigate(`/orders/${encodeURIComponent(data.id)}`);
    } catch (e) {
      const err = toApiError(e);
      setBuyError(err.errors.map((x) => x.message));
      if (err.status === 409) {
        // Our copy is behind: fetch the current status so the page shows why.
        refetch();
      }
    } finally {
      setBuying(false);
    }
  };

  if (loadError && !stuff) {
    return (
      <section>
        <h1 tabIndex={-1}>{loadError.status === 404 ? 'Not found' : 'Could not load this stuff'}</h1>
        <ErrorBanner messages={loadError.status === 404 ? ['This stuff does not exist.'] : loadError.messages} />
        <p>
          <Link to="/" className="tap-link">
            Back to the catalogue
          </Link>
        </p>
      </section>
    );
  }
  if (!stuff) {
    return (
      <section>
        <h1 tabIndex={-1}>Stuff</h1>
        <p aria-live="polite">Loading…</p>
      </section>
    );
  }

  const own = user?.id === stuff.sellerId;
  const heldByMe = myOrder !== null && stuff.status === 'reserved';
  const blockedMessageId = 'buy-blocked-message';

  const withdrawn = stuff.status === 'withdrawn';
  // Who the preview captions speak to: only someone who can buy it now is told to buy it.
  const viewer: PreviewViewer = own ? 'seller' : bought ? 'buyer' : bought === false && stuff.status === 'available' ? 'visitor' : 'other';

  let action;
  if (own) {
    action = (
      <div className="actions">
        {withdrawn ? (
          <p
            ref={withdrawnNoticeRef}
            tabIndex={-1}
            role={justWithdrawn ? 'status' : undefined}
            data-testid="own-stuff"
            data-withdrawn="true"
          >
            You withdrew this: it is no longer for sale. People who bought it keep their downloads.
          </p>
        ) : (
          <p data-testid="own-stuff">You are selling this.</p>
        )}
        {stuff.status === 'available' ? (
          <>
            <Link className="button" to={`/stuff/${encodeURIComponent(stuff.id)}/edit`} data-testid="edit-link">
              Edit
            </Link>
            <WithdrawControl
              stuff={stuff}
              onWithdrawn={(s) => {
                withdrawRefusal.clear();
                putStuff(client, s, user?.id ?? null);
                setJustWithdrawn(true);
              }}
              onRefused={(err) => {
                withdrawRefusal.show(err);
                refetch();
              }}
            />
          </>
        ) : stuff.status === 'reserved' ? (
          <p className="muted">Someone is checking it out, so it cannot be edited or withdrawn right now.</p>
        ) : null}
      </div>
    );
  } else if (withdrawn) {
    action = (
      <div className="actions">
        <p className="blocked" data-testid="withdrawn-message" role="status">
          {WITHDRAWN_BUYER_TEXT}
        </p>
      </div>
    );
  } else if (!user) {
    action = (
      <div className="actions">
        <Link className="button primary" to={`/signin?next=${encodeURIComponent(`/stuff/${stuff.id}`)}`} data-testid="signin-to-buy">
          Sign in to buy
        </Link>
      </div>
    );
  } else if (heldByMe) {
    action = (
      <div className="actions">
        <p data-testid="my-checkout">
          You are checking this out.{' '}
          <Link to={`/orders/${encodeURIComponent(myOrder.id)}`} data-testid="my-order-link">
            Go to your order
          </Link>
        </p>
      </div>
    );
  } else {
    const reserved = stuff.status === 'reserved';
    const sold = stuff.status === 'sold';
    const empty = !reserved && !sold && nothingToDeliver(stuff);
    action = (
      <div className="actions">
        <button
          type="button"
          className="primary buy"
          data-testid="buy-button"
          disabled={reserved || sold || empty || buying}
          aria-describedby={reserved || sold || empty ? blockedMessageId : undefined}
          onClick={buy}
        >
          {sold ? 'Sold' : buying ? 'Buying…' : 'BUY'}
        </button>
        {reserved && (
          <p id={blockedMessageId} className="blocked" data-testid="buy-blocked-message" role="status">
            {CHECKED_OUT_MESSAGE}
          </p>
        )}
        {sold && (
          <p id={blockedMessageId} className="blocked" data-testid="sold-message" role="status">
            {SOLD_MESSAGE}
          </p>
        )}
        {empty && (
          <p id={blockedMessageId} className="blocked" data-testid="nothing-to-deliver-message" role="status">
            {NOTHING_TO_DELIVER_MESSAGE}
          </p>
        )}
      </div>
    );
  }

  return (
    <article className="stuff" data-testid="stuff-page" data-status={stuff.status} data-version={stuff.version}>
      <p>
        <Link to="/" className="tap-link">
          ← Catalogue
        </Link>
      </p>
      <h1 tabIndex={-1} data-testid="stuff-title">
        {stuff.title}
      </h1>
      <Cover url={stuff.coverUrl} title={stuff.title} className="stuff-cover" />
      <div className="card-meta">
        <Price cents={stuff.priceCents} />
        <StatusBadge status={stuff.status} label={withdrawn && !own ? NO_LONGER_FOR_SALE_LABEL : undefined} />
        <RatingBadge rating={stuff.rating} />
      </div>
      {stuff.seller && (
        <p className="sold-by" data-testid="sold-by">
          Sold by{' '}
          <Link to={sellerHref(stuff.sellerId)} className="tap-link" data-testid="seller-name-link">
            {stuff.seller.displayName}
          </Link>
        </p>
      )}
      <ul className="stuff-links">
        {stuff.course && (
          <li>
            Course:{' '}
            <Link to={courseHref(stuff.course)} className="tap-link" data-testid="course-link">
              {stuff.course}
            </Link>
          </li>
        )}
        <li>
          <Link to={sellerHref(stuff.sellerId)} className="tap-link" data-testid="seller-link">
            More from this seller
          </Link>
        </li>
      </ul>
      {stuff.description && (
        <p className="description" data-testid="stuff-description">
          {stuff.description}
        </p>
      )}
      <p className="muted small">Listed {formatTime(stuff.createdAt)}</p>
      <ErrorBanner
        // The blocked / sold message already says it next to the button; don't say it twice.
        messages={buyError.filter(
          (m) =>
            !(m === CHECKED_OUT_MESSAGE && stuff.status === 'reserved') &&
            !(m === SOLD_MESSAGE && stuff.status === 'sold') &&
            !(m === NOTHING_TO_DELIVER_MESSAGE && nothingToDeliver(stuff)) &&
            !(m === WITHDRAWN_MESSAGE && withdrawn),
        )}
        testId="buy-error"
        onDismiss={() => setBuyError([])}
      />
      {own && <ErrorBanner ref={withdrawRefusal.ref} messages={withdrawRefusal.messages} testId="withdraw-error" onDismiss={withdrawRefusal.clear} />}
      {action}
      {own ? <SellerDelivery stuff={stuff} onChanged={refetch} /> : withdrawn ? null : <WhatYouGet stuff={stuff} />}
      {(own || !withdrawn) && <PdfPreviews files={stuffFiles(stuff)} viewer={viewer} />}
      <ReviewsSection stuffId={stuff.id} rating={stuff.rating} />
    </article>
  );
}

/** The public list of what a buyer gets: file names, sizes and types, and whether there is a note. */
export function WhatYouGet({ stuff }: { stuff: Stuff }) {
  const files = stuffFiles(stuff);
  return (
    <section className="what-you-get" aria-labelledby="what-you-get-heading" data-testid="what-you-get">
      <h2 id="what-you-get-heading">What you get</h2>
      <FileList files={files} />
      {stuff.hasSecretNote && (
        <p className="has-note" data-testid="has-secret-note">
          Includes a private note from the seller (shown after paying).
        </p>
      )}
      {nothingToDeliver(stuff) && (
        <p className="muted" data-testid="nothing-to-deliver">
          Nothing yet: the seller has not attached any files or a note.
        </p>
      )}
      {files.length > 0 && <p className="muted small">You can download the files from your order page and your library after paying.</p>}
    </section>
  );
}
