// Reviews and ratings (shared/CONTRACT.md, "Marketplace"): the buyer of a complete order reviews
// it once (`review:create`), anyone reads a stuff's reviews (`review:list`, newest first), and a
// stuff carries `rating: {average, count}`. How ratings read, on screen and to a screen reader.
import type { Order, RatingSummary, Review } from './types';

export const RATING_MIN = 1;
export const RATING_MAX = 5;
export const COMMENT_MAX = 1000;
export const ALREADY_REVIEWED_MESSAGE = 'You already reviewed this order';
export const NO_REVIEWS_TEXT = 'No reviews yet';
export const RATING_REQUIRED_MESSAGE = 'Choose a rating from 1 to 5 stars';
export const COMMENT_TOO_LONG_MESSAGE = `Comment must be at most ${COMMENT_MAX} characters`;
export const THANKS_MESSAGE = 'Thanks for your review';

/** An average with one decimal: `4.5`, `4.0`; out-of-range or missing values are clamped to 0–5. */
export function formatAverage(average: number): string {
  const a = Number.isFinite(average) ? Math.min(RATING_MAX, Math.max(0, average)) : 0;
  return (Math.round(a * 10) / 10).toFixed(1);
}

/** A stuff's rating as shown: `★ 4.5 (12)`, or `No reviews yet`. A missing rating (older server) has none. */
export function ratingText(rating: RatingSummary | null | undefined): string {
  if (!rating || !(rating.count > 0)) return NO_REVIEWS_TEXT;
  return `★ ${formatAverage(rating.average)} (${rating.count})`;
}

/** What a screen reader hears: `Rated 4.5 out of 5 from 12 reviews` (`1 review`), or `No reviews yet`. */
export function ratingLabel(rating: RatingSummary | null | undefined): string {
  if (!rating || !(rating.count > 0)) return NO_REVIEWS_TEXT;
  return `Rated ${formatAverage(rating.average)} out of 5 from ${rating.count} ${rating.count === 1 ? 'review' : 'reviews'}`;
}

/** One review's stars: `★★★★☆` for 4. */
export function starsText(rating: number): string {
  const n = Math.min(RATING_MAX, Math.max(0, Math.round(rating)));
  return '★'.repeat(n) + '☆'.repeat(RATING_MAX - n);
}

/** `4 stars`, `1 star`. */
export function starsLabel(rating: number): string {
  return `${rating} ${rating === 1 ? 'star' : 'stars'}`;
}

/** Characters as the server counts them (code points, not UTF-16 units). */
export function commentLength(comment: string): number {
  return [...comment].length;
}

/** Checks a review before sending: messages by field (`rating`, `comment`); empty when fine. */
export function checkReview(rating: number | null, comment: string): Record<string, string> {
  const errors: Record<string, string> = {};
  if (rating === null || !Number.isInteger(rating) || rating < RATING_MIN || rating > RATING_MAX) errors.rating = RATING_REQUIRED_MESSAGE;
  if (commentLength(comment) > COMMENT_MAX) errors.comment = COMMENT_TOO_LONG_MESSAGE;
  return errors;
}

/** `review:create`'s payload: the comment trimmed, and left out when empty. */
export function reviewPayload(orderId: string, rating: number, comment: string): { orderId: string; rating: number; comment?: string } {
  const c = comment.trim();
  return c ? { orderId, rating, comment: c } : { orderId, rating };
}

/** The buyer may still review this order: it is complete and not reviewed yet. */
export function canReview(order: Pick<Order, 'status' | 'reviewed'>): boolean {
  return order.status === 'complete' && order.reviewed !== true;
}

/** A review added to a list, newest first; one already there (same id) is replaced, not repeated. */
export function addReview(list: Review[], review: Review): Review[] {
  return [review, ...list.filter((r) => r.id !== review.id)].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}
