// Shapes from the public contract (shared/CONTRACT.md). Money is integer cents,
// times are RFC 3339 strings in UTC, ids are opaque strings.

export type Role = 'user' | 'admin';

export interface User {
  id: string;
  email: string;
  role: Role;
  /**
   * The name others see (2–40 characters after trimming; the server's default is the e-mail's
   * local part). Servers before the marketplace leave it out: read it with `displayNameOf`
   * (api/profile.ts).
   */
  displayName?: string;
}

/** `PATCH /api/users/me`'s body. */
export interface ProfilePatch {
  displayName: string;
}

/** Who sells a stuff, as the public sees them. */
export interface SellerRef {
  id: string;
  displayName: string;
}

/** A stuff's reviews in short: `average` 0–5 (0 while `count` is 0). */
export interface RatingSummary {
  average: number;
  count: number;
}

/** One buyer's review of a stuff they bought (`review:create`, `review:list`). */
export interface Review {
  id: string;
  stuffId: string;
  /** 1–5. */
  rating: number;
  /** Possibly empty. */
  comment: string;
  buyerDisplayName: string;
  createdAt: string;
}

/** One of my stuff that was paid for (`order:sales`, the `sale:completed` push). */
export interface Sale {
  orderId: string;
  stuffId: string;
  stuffTitle: string;
  buyerDisplayName: string;
  paidCents: number;
  /** The marketplace's share of `paidCents`. */
  feeCents: number;
  /** What the seller gets: `paidCents - feeCents`. */
  earnedCents: number;
  paidAt: string;
}

/** `order:sales`: my sales, newest first, and everything I earned. */
export interface SalesSummary {
  sales: Sale[];
  totalEarnedCents: number;
}

/**
 * `payout:status`: how the seller gets paid (Stripe Connect). Amounts are in the smallest unit of
 * `currency`, after the platform fee, refunds excluded.
 */
export interface PayoutStatus {
  /** The seller began onboarding (a connected account exists). */
  started: boolean;
  /** Payouts go to the seller's own account. */
  onboarded: boolean;
  /** Earnings StuffMart keeps for the seller until they finish onboarding. */
  heldCents: number;
  /** What went to the seller's account (destination charges plus transfers of held earnings). */
  paidOutCents: number;
  /** ISO 4217, lower-case. */
  currency: string;
}

/** `payout:onboard`: where to send the browser (Stripe's hosted onboarding, or the app's return page). */
export interface PayoutOnboarding {
  url: string;
}

export interface AuthResponse {
  user: User;
  accessToken: string;
}

/** `withdrawn`: the seller took it off sale (`stuff:withdraw`); it never shows in the catalogue. */
export type StuffStatus = 'available' | 'reserved' | 'sold' | 'withdrawn';

export interface Stuff {
  id: string;
  title: string;
  description: string;
  priceCents: number;
  sellerId: string;
  status: StuffStatus;
  version: number;
  createdAt: string;
  updatedAt: string;
  /** What a buyer gets (metadata only; the bytes come through `delivery:get` links). */
  files: FileMeta[];
  /** True when the seller attached a private note for buyers (its text is never public). */
  hasSecretNote: boolean;
  /**
   * The course it is for, upper-case (`CS 101`), or null. Servers before issue 16's marketplace
   * leave it out: read it as null.
   */
  course?: string | null;
  /**
   * Who sells it (with `sellerId` kept as well). The fields below are the marketplace's; servers
   * before it leave them out: no name, no rating, no cover.
   */
  seller?: SellerRef;
  rating?: RatingSummary;
  /** The URL of a thumbnail, or null. */
  coverUrl?: string | null;
}

/**
 * How `stuff:list` orders its items. `rating`: best rated first by the lower bound of the
 * confidence interval of its reviews (so one 5-star review does not outrank many nearly as good;
 * no reviews ranks lowest), ties newest first. The UI offers it as "Best rated" (`SORT_OPTIONS`
 * in api/browse.ts).
 */
export type StuffSort = 'newest' | 'priceAsc' | 'priceDesc' | 'rating';

/** `stuff:list`'s filters; a `cursor` continues only the same filters and sort (send them again). */
export interface StuffListFilter {
  /**
   * A search (at most 100 characters): every word must match the title, description or course as
   * a word or a word's start. Without `sort`, best matches first; a cursor of that order is
   * refused with another `sort` (400 `cursor`).
   */
  q?: string;
  status?: StuffStatus;
  /** Exactly this course (the server compares upper-case). */
  course?: string;
  /** Only this seller's stuff. */
  sellerId?: string;
  /** `newest` when left out. */
  sort?: StuffSort;
}

/**
 * One file attached to a stuff. `sha256` is hex. Records stored before PDF previews lack `pages`
 * and `previewUrls`: read them with `pageCountOf` and `previewUrlsOf` (api/previews.ts).
 */
export interface FileMeta {
  id: string;
  name: string;
  sizeBytes: number;
  contentType: string;
  sha256: string;
  /** A PDF's page count, so a buyer knows how much they get; null for other files or an unreadable PDF. */
  pages?: number | null;
  /** Public JPEG thumbnails (≤ 480 px wide) of a PDF's first pages (at most 3), so anyone can look before buying; [] otherwise. */
  previewUrls?: string[];
}

/** A file with a short-lived download link (a same-origin path that needs no header). */
export interface DeliveryFile extends FileMeta {
  url: string;
  expiresAt: string;
}

/** What `delivery:get` returns: the private note (or null) and links to every file. */
export interface Delivery {
  secretNote: string | null;
  files: DeliveryFile[];
}

export type OrderStatus = 'created' | 'cancelled' | 'complete' | 'refunded';

export interface Order {
  id: string;
  stuffId: string;
  userId: string;
  status: OrderStatus;
  expiresAt: string;
  priceCents: number;
  version: number;
  createdAt: string;
  /** The stuff's title when it was ordered; "" for orders older than the field (then ask `stuff:get`). */
  stuffTitle: string;
  /** What was actually charged (after coupons); null until paid. */
  paidCents: number | null;
  /** True once its buyer reviewed it (then no review form); older servers leave it out. */
  reviewed?: boolean;
}

export interface Payment {
  id: string;
  orderId: string;
  amountCents: number;
  couponCode: string | null;
  providerId: string | null;
  createdAt: string;
  /** ISO 4217 (lower-case) of `amountCents`; older servers leave it out (then: the server's `CURRENCY`). */
  currency?: string;
  /** The marketplace's share of `amountCents` (older servers leave it out). */
  feeCents?: number;
  /** When the money went back; null while it is kept. */
  refundedAt: string | null;
}

/**
 * `payment:intent`: the PaymentIntent for what the order costs now (after the coupon). With a
 * `publishableKey` the browser confirms it with Stripe's Payment Element; `null` means the
 * server's built-in test gateway, which confirms it itself on `payment:create` with a test method.
 */
export interface PaymentIntent {
  clientSecret: string;
  amountCents: number;
  /** ISO 4217, lower-case. */
  currency: string;
  publishableKey: string | null;
}

export interface Coupon {
  code: string;
  percentOff: number;
  maxRedemptions: number | null;
  redemptions: number;
  expiresAt: string | null;
  createdBy: string;
}

/** `coupon:check`: what would be charged with the coupon, and the discount, in minor units. */
export interface CouponCheck {
  amountCents: number;
  discountCents: number;
}

/**
 * A course in use and how many listings (not withdrawn) name it: an item of `stuff:courses`
 * (docs/schemas/CourseCount.json).
 */
export interface CourseCount {
  /** Upper-case, e.g. `CS 101`. */
  course: string;
  /** At least 1. */
  count: number;
}

export interface StuffPage {
  items: Stuff[];
  nextCursor: string | null;
}

/** Socket.IO request events and their payload / ack data types. */
export interface RequestMap {
  'stuff:list': { payload: StuffListFilter & { limit?: number; cursor?: string }; data: StuffPage };
  'stuff:get': { payload: { id: string }; data: Stuff };
  'stuff:create': { payload: { title: string; priceCents: number; description?: string; secretNote?: string; course?: string }; data: Stuff };
  'stuff:update': {
    payload: {
      id: string;
      version?: number;
      title?: string;
      priceCents?: number;
      description?: string;
      /** `null` or `""` removes the note. */
      secretNote?: string | null;
      /** `null` or `""` removes the course. */
      course?: string | null;
    };
    data: Stuff;
  };
  /** Every stuff the caller listed, any status, newest first. */
  'stuff:mine': { payload: Record<string, never>; data: Stuff[] };
  /**
   * The courses of the catalogue's listings (withdrawn ones excluded) with their counts, the most
   * listed first, ties by course, at most 100 (anyone).
   */
  'stuff:courses': { payload: Record<string, never>; data: CourseCount[] };
  /** The seller takes an available stuff off sale (an already withdrawn one comes back unchanged). */
  'stuff:withdraw': { payload: { id: string }; data: Stuff };
  'order:create': { payload: { stuffId: string }; data: Order };
  'order:cancel': { payload: { id: string }; data: Order };
  'order:list': { payload: Record<string, never>; data: Order[] };
  'order:get': { payload: { id: string }; data: Order };
  'payment:create': { payload: { orderId: string; paymentMethod?: string; couponCode?: string }; data: Payment };
  /** The intent to confirm for this order and coupon (created, or reused while the amount is the same). */
  'payment:intent': { payload: { orderId: string; couponCode?: string }; data: PaymentIntent };
  /** Admin: gives the money of a paid order back (the order becomes `refunded`). */
  'payment:refund': { payload: { orderId: string }; data: Payment };
  /** What the order would cost with this coupon (a preview; nothing is redeemed). */
  'coupon:check': { payload: { orderId: string; couponCode: string }; data: CouponCheck };
  'coupon:create': { payload: { percentOff: number; maxRedemptions?: number; expiresAt?: string }; data: Coupon };
  'coupon:list': { payload: Record<string, never>; data: Coupon[] };
  /** The buyer of a complete order (`orderId`) or the seller (`stuffId`). */
  'delivery:get': { payload: { orderId: string } | { stuffId: string }; data: Delivery };
  /** The buyer of a complete order reviews it, once (a second time: 409 `You already reviewed this order`). */
  'review:create': { payload: { orderId: string; rating: number; comment?: string }; data: Review };
  /** A stuff's reviews, newest first (anyone). */
  'review:list': { payload: { stuffId: string }; data: Review[] };
  /** What I sold, newest first, and my total earnings (signed in). */
  'order:sales': { payload: Record<string, never>; data: SalesSummary };
  /** How I get paid and how much is held or paid out (signed in). */
  'payout:status': { payload: Record<string, never>; data: PayoutStatus };
  /**
   * A link to (continue) Stripe's onboarding (signed in; 503 when Stripe cannot be reached). Stripe
   * sends the browser back to `/selling?payouts=return`, or `/selling?payouts=refresh` when the
   * link expired.
   */
  'payout:onboard': { payload: Record<string, never>; data: PayoutOnboarding };
}

export type RequestEvent = keyof RequestMap;

/** Server pushes. */
export interface PushMap {
  'stuff:created': Stuff;
  'stuff:updated': Stuff;
  'order:updated': Order;
  /** The seller uploaded a new version of a file of this (complete) order: fetch fresh links. */
  'delivery:updated': { orderId: string };
  /** One of my stuff was paid for (to the seller's sockets). */
  'sale:completed': Sale;
}

export type PushEvent = keyof PushMap;
