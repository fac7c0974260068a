// Stripe Elements is used only when a publishable key is configured at build time
// (VITE_STRIPE_PUBLISHABLE_KEY). Stripe.js must be loaded from Stripe's own servers, which a
// LAN-only deployment cannot reach, so the library is not bundled by default: this placeholder
// marks where the card element goes once `@stripe/stripe-js` and `@stripe/react-stripe-js` are added.

export const STRIPE_PUBLISHABLE_KEY: string = (import.meta.env.VITE_STRIPE_PUBLISHABLE_KEY ?? '').trim();

export function stripeConfigured(): boolean {
  return STRIPE_PUBLISHABLE_KEY.length > 0;
}

export function StripeElementsPlaceholder() {
  return (
    <div className="stripe-placeholder" data-testid="stripe-elements-placeholder" role="note">
      <p>
        <strong>Card payments with Stripe Elements</strong> are configured for this build
        (publishable key {STRIPE_PUBLISHABLE_KEY.slice(0, 12)}…), but the Stripe library is not bundled yet.
        Use one of the test payment methods below.
      </p>
    </div>
  );
}
