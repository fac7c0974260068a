// Stripe's Payment Element, used only when `payment:intent` returns a publishable key (the server
// runs against Stripe). This module is loaded lazily (React.lazy in PaymentForm.tsx), and Stripe.js
// itself is imported dynamically here: with the built-in test gateway nothing from Stripe is
// bundled into the first page or fetched from Stripe's servers.
import { useEffect, useState, type MutableRefObject } from 'react';
import { Elements, PaymentElement, useElements, useStripe } from '@stripe/react-stripe-js';
import type { Appearance, Stripe } from '@stripe/stripe-js';

/** What confirming in the browser gave: Stripe took the money (or is taking it), or why not. */
export type StripeConfirmResult = { ok: true; status: string } | { ok: false; message: string };
export type StripeConfirm = () => Promise<StripeConfirmResult>;

/** Shown for errors that are not about the card or the form (Stripe's own advice). */
export const STRIPE_UNEXPECTED_MESSAGE = 'The payment could not be completed. Please try again.';
export const STRIPE_LOAD_FAILED_MESSAGE = 'The card form could not be loaded from Stripe. Check your connection and try again.';

const loaded = new Map<string, Promise<Stripe | null>>();

/** Stripe.js for this publishable key, loaded once per page (a failed load may be tried again). */
export function loadStripeFor(publishableKey: string): Promise<Stripe | null> {
  let p = loaded.get(publishableKey);
  if (!p) {
    p = import('@stripe/stripe-js').then((m) => m.loadStripe(publishableKey));
    p.catch(() => loaded.delete(publishableKey));
    loaded.set(publishableKey, p);
  }
  return p;
}

/** Tests: forget loaded instances. */
export function resetStripeForTests(): void {
  loaded.clear();
}

const appearance: Appearance = {
  theme: 'stripe',
  variables: {
    colorPrimary: '#1d4ed8',
    colorText: '#1f2328',
    colorDanger: '#a40e26',
    borderRadius: '6px',
    fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'Noto Sans', sans-serif",
  },
};

/** The statuses after which the money is Stripe's to settle: the order completes on its webhook. */
const CONFIRMED = new Set(['succeeded', 'processing', 'requires_capture']);

function ConfirmBridge({
  confirmRef,
  returnUrl,
  amountCents,
}: {
  confirmRef: MutableRefObject<StripeConfirm | null>;
  returnUrl: string;
  amountCents: number;
}) {
  const stripe = useStripe();
  const elements = useElements();

  useEffect(() => {
    if (!stripe || !elements) return;
    confirmRef.current = async () => {
      const result = await stripe.confirmPayment({
        elements,
        redirect: 'if_required',
        confirmParams: { return_url: returnUrl },
      });
      if (result.error) {
        const { type, message } = result.error;
        // Card and form errors are written for the buyer; anything else gets a general message.
        const forBuyer = (type === 'card_error' || type === 'validation_error') && message;
        return { ok: false, message: forBuyer ? message : STRIPE_UNEXPECTED_MESSAGE };
      }
      const status = result.paymentIntent?.status ?? '';
      if (CONFIRMED.has(status)) return { ok: true, status };
      return { ok: false, message: STRIPE_UNEXPECTED_MESSAGE };
    };
    return () => {
      confirmRef.current = null;
    };
  }, [stripe, elements, returnUrl, confirmRef]);

  // The server may change the amount of the same intent (same client secret): show the new one.
  const [seenAmount, setSeenAmount] = useState(amountCents);
  useEffect(() => {
    if (!elements || amountCents === seenAmount) return;
    setSeenAmount(amountCents);
    void elements.fetchUpdates().catch(() => undefined);
  }, [elements, amountCents, seenAmount]);

  return null;
}

/**
 * The card form: Stripe's Payment Element for `clientSecret`, and `confirmRef` set to a function
 * that confirms it (3-D Secure in Stripe's modal; a redirect only for methods that need one).
 * A new client secret mounts a new Element (Stripe's `clientSecret` option cannot change).
 */
export default function StripeCard({
  publishableKey,
  clientSecret,
  amountCents,
  returnUrl,
  confirmRef,
  onReady,
}: {
  publishableKey: string;
  clientSecret: string;
  amountCents: number;
  returnUrl: string;
  confirmRef: MutableRefObject<StripeConfirm | null>;
  /** The Payment Element of this client secret is on screen and can be confirmed. */
  onReady: (clientSecret: string) => void;
}) {
  const [stripe, setStripe] = useState<Stripe | null>(null);
  const [failed, setFailed] = useState(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    setFailed(false);
    loadStripeFor(publishableKey).then(
      (s) => {
        if (!live) return;
        if (s) setStripe(s);
        else setFailed(true);
      },
      () => live && setFailed(true),
    );
    return () => {
      live = false;
    };
  }, [publishableKey, attempt]);

  if (failed) {
    return (
      <div className="banner banner-error" role="alert" data-testid="stripe-load-error">
        <p>{STRIPE_LOAD_FAILED_MESSAGE}</p>
        <button type="button" className="small" onClick={() => setAttempt((n) => n + 1)}>
          Try again
        </button>
      </div>
    );
  }
  if (!stripe) {
    return (
      <p className="muted" aria-live="polite" data-testid="stripe-loading">
        Loading the card form…
      </p>
    );
  }
  return (
    <div className="stripe-card" data-testid="stripe-payment-element">
      <Elements key={clientSecret} stripe={stripe} options={{ clientSecret, appearance }}>
        <PaymentElement options={{ layout: 'tabs' }} onReady={() => onReady(clientSecret)} />
        <ConfirmBridge confirmRef={confirmRef} returnUrl={returnUrl} amountCents={amountCents} />
      </Elements>
    </div>
  );
}
