// "Payouts" on My listings (`/selling`): whether the seller's earnings go to their Stripe account
// (`payout:status`), what StuffMart holds for them until they set payouts up, what was paid out,
// and "Set up payouts" / "Continue setup" (`payout:onboard`, then the browser goes to the answered
// URL). Back from onboarding (`?payouts=return`) the status is asked again and a polite notice says
// whether the setup finished; an expired link (`?payouts=refresh`) says so next to the button. The
// parameter is removed from the address once read (replaced, no new history entry).
import { useEffect, useRef, useState } from 'react';
import { useSearchParams } from 'react-router';
import { ApiError, toApiError } from '../api/errors';
import {
  BAD_ONBOARDING_URL_MESSAGE,
  browserNavigation,
  onboardLabel,
  payoutArrival,
  PAYOUTS_KEPT_MESSAGE,
  PAYOUTS_ON_MESSAGE,
  PAYOUTS_PARAM,
  safeOnboardingUrl,
  SETUP_FINISHED_MESSAGE,
  SETUP_LINK_EXPIRED_MESSAGE,
  SETUP_NOT_FINISHED_MESSAGE,
  type PayoutArrival,
} from '../api/payouts';
import { errorMessages, usePayoutStatusQuery } from '../api/queries-react';
import { useSessionManager } from '../api/session-react';
import type { PayoutStatus } from '../api/types';
import { ErrorBanner, Price } from './ui';
import { useRefusalBanner } from './withdraw';

/**
 * Reads `?payouts=return|refresh` once (when the section mounts) and removes it from the address
 * with a replace, keeping any other parameter.
 */
function usePayoutArrival(): PayoutArrival | null {
  const [params, setParams] = useSearchParams();
  const [arrival] = useState(() => payoutArrival(params));
  const present = params.has(PAYOUTS_PARAM);
  useEffect(() => {
    if (!present) return;
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        next.delete(PAYOUTS_PARAM);
        return next;
      },
      { replace: true, preventScrollReset: true },
    );
  }, [present, setParams]);
  return arrival;
}

/**
 * The notice for how the seller arrived: after `?payouts=return`, once an answer newer than the
 * arrival is in (not one the cache held from before), whether onboarding finished; after
 * `?payouts=refresh`, that the link expired. Empty otherwise.
 */
function arrivalNotice(arrival: PayoutArrival | null, status: PayoutStatus | null, answeredSinceArrival: boolean): string {
  if (!arrival || !status) return '';
  if (arrival === 'refresh') return status.onboarded ? '' : SETUP_LINK_EXPIRED_MESSAGE;
  if (!answeredSinceArrival) return '';
  return status.onboarded ? SETUP_FINISHED_MESSAGE : SETUP_NOT_FINISHED_MESSAGE;
}

export function Payouts() {
  const session = useSessionManager();
  const { data, error, isFetching, dataUpdatedAt } = usePayoutStatusQuery();
  const status = data ?? null;
  const loadError = errorMessages(error);
  const arrival = usePayoutArrival();
  const [arrivedAt] = useState(() => Date.now());
  const notice = arrivalNotice(arrival, status, !isFetching && dataUpdatedAt >= arrivedAt);
  const sectionRef = useRef<HTMLElement>(null);
  const [busy, setBusy] = useState(false);
  const refusal = useRefusalBanner();

  // Back from onboarding on a long list: the section that answers is brought into view.
  useEffect(() => {
    if (notice) sectionRef.current?.scrollIntoView?.({ block: 'start' });
  }, [notice]);

  // Back from Stripe with the browser's Back button, this page may come from the back/forward
  // cache as it was left: busy. It is usable again.
  useEffect(() => {
    const onShow = (e: PageTransitionEvent) => {
      if (e.persisted) setBusy(false);
    };
    window.addEventListener('pageshow', onShow);
    return () => window.removeEventListener('pageshow', onShow);
  }, []);

  const onboard = async () => {
    if (busy) return;
    setBusy(true);
    refusal.clear();
    try {
      const { data: link } = await session.request('payout:onboard', {});
      const url = safeOnboardingUrl(link?.url);
      if (!url) throw new ApiError(500, [{ message: BAD_ONBOARDING_URL_MESSAGE }]);
      // Stays busy: the browser is leaving for the setup.
      browserNavigation.assign(url);
    } catch (e) {
      setBusy(false);
      refusal.show(toApiError(e));
    }
  };

  return (
    <section ref={sectionRef} className="payouts" aria-labelledby="payouts-heading" data-testid="payouts" data-onboarded={status ? String(status.onboarded) : undefined}>
      <h2 id="payouts-heading">Payouts</h2>
      {/* Always in the page, so what is written into it later is announced. */}
      <div role="status" aria-live="polite" data-testid="payouts-notice-region">
        {notice && (
          <p className="banner banner-info" data-testid="payouts-notice">
            {notice}
          </p>
        )}
      </div>
      <ErrorBanner messages={loadError} testId="payouts-error" />
      {status === null ? (
        loadError.length ? null : <p aria-live="polite">Loading payouts…</p>
      ) : status.onboarded ? (
        <>
          <p data-testid="payouts-on">{PAYOUTS_ON_MESSAGE}</p>
          <p className="payouts-amount" data-testid="payouts-paid-out">
            Paid out: <Price cents={status.paidOutCents} testId="payouts-paid-out-amount" />
          </p>
          {status.heldCents > 0 && <HeldAmount cents={status.heldCents} />}
        </>
      ) : (
        <>
          <p data-testid="payouts-off">{PAYOUTS_KEPT_MESSAGE}</p>
          <HeldAmount cents={status.heldCents} />
          <ErrorBanner ref={refusal.ref} messages={refusal.messages} testId="payouts-onboard-error" />
          <button type="button" className="primary" onClick={onboard} disabled={busy} data-testid="payouts-onboard">
            {busy ? 'Opening payout setup…' : onboardLabel(status.started)}
          </button>
        </>
      )}
    </section>
  );
}

function HeldAmount({ cents }: { cents: number }) {
  return (
    <p className="payouts-amount" data-testid="payouts-held">
      Waiting for payout: <Price cents={cents} testId="payouts-held-amount" />
    </p>
  );
}
