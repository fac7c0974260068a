/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Stripe publishable key; when absent the payment form offers the test payment methods only. */
  readonly VITE_STRIPE_PUBLISHABLE_KEY?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
