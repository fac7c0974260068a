// Ratings and reviews on screen: a stuff's rating (`★ 4.5 (12)`, read as "Rated 4.5 out of 5
// from 12 reviews"), a stuff's review list (`review:list`) and the buyer's review form
// (`review:create`) for a complete order.
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { queryKeys } from '../api/queries';
import { errorMessages, useReviewsQuery } from '../api/queries-react';
import { toApiError } from '../api/errors';
import { formatTime } from '../api/format';
import {
  ALREADY_REVIEWED_MESSAGE,
  checkReview,
  COMMENT_MAX,
  commentLength,
  RATING_MAX,
  ratingLabel,
  ratingText,
  reviewPayload,
  starsLabel,
  starsText,
  THANKS_MESSAGE,
} from '../api/reviews';
import { useSessionManager } from '../api/session-react';
import type { RatingSummary, Review } from '../api/types';
import { ErrorBanner, FieldError, TextAreaField, useFormErrors } from './ui';

/** A stuff's rating; `rating` missing (an older server) reads like no reviews. */
export function RatingBadge({ rating, testId = 'rating' }: { rating: RatingSummary | null | undefined; testId?: string }) {
  const count = rating && rating.count > 0 ? rating.count : 0;
  if (count === 0) {
    return (
      <span className="rating rating-none" data-testid={testId} data-count={0}>
        {ratingText(rating)}
      </span>
    );
  }
  return (
    <span className="rating" role="img" aria-label={ratingLabel(rating)} data-testid={testId} data-count={count}>
      {ratingText(rating)}
    </span>
  );
}

/** One review's stars, read as "4 stars". */
export function Stars({ rating }: { rating: number }) {
  return (
    <span className="stars" role="img" aria-label={starsLabel(rating)} data-testid="review-stars" data-rating={rating}>
      {starsText(rating)}
    </span>
  );
}

export function ReviewItem({ review, testId = `review-${review.id}` }: { review: Review; testId?: string }) {
  return (
    <article className="review" data-testid={testId}>
      <p className="review-head">
        <strong className="review-author" data-testid="review-author">
          {review.buyerDisplayName}
        </strong>{' '}
        <Stars rating={review.rating} />{' '}
        <time className="muted small" dateTime={review.createdAt}>
          {formatTime(review.createdAt)}
        </time>
      </p>
      {review.comment && (
        <p className="review-comment" data-testid="review-comment">
          {review.comment}
        </p>
      )}
    </article>
  );
}

export const NO_REVIEWS_MESSAGE = 'No reviews yet. Reviews come from people who bought this.';

/** A stuff's reviews, newest first (`review:list` through the cache; fetched again after every reconnect). */
export function useReviews(stuffId: string): { reviews: Review[] | null; error: string[] } {
  const { data, error } = useReviewsQuery(stuffId);
  return { reviews: data ?? null, error: errorMessages(error) };
}

/** The stuff page's Reviews section (an h2 under the stuff's h1). */
export function ReviewsSection({ stuffId, rating }: { stuffId: string; rating: RatingSummary | null | undefined }) {
  const { reviews, error } = useReviews(stuffId);
  return (
    <section className="reviews" aria-labelledby="reviews-heading" data-testid="reviews">
      <h2 id="reviews-heading">Reviews</h2>
      {rating && rating.count > 0 && (
        <p>
          <RatingBadge rating={rating} testId="reviews-rating" />
        </p>
      )}
      <ErrorBanner messages={error} testId="reviews-error" />
      {reviews === null ? (
        error.length ? null : <p aria-live="polite">Loading reviews…</p>
      ) : reviews.length === 0 ? (
        <p className="muted" data-testid="reviews-empty">
          {NO_REVIEWS_MESSAGE}
        </p>
      ) : (
        <ul className="review-list" data-testid="review-list">
          {reviews.map((r) => (
            <li key={r.id}>
              <ReviewItem review={r} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

const REVIEW_FIELDS = ['rating', 'comment'] as const;
const RATINGS = Array.from({ length: RATING_MAX }, (_, i) => i + 1);

/**
 * The buyer's review of a complete order: a 1–5 star radio group, an optional comment with a
 * character counter, Submit. Success replaces the form with "Thanks for your review" and the
 * review; a 409 (already reviewed) replaces it with the server's message.
 */
export function ReviewForm({
  orderId,
  onReviewed,
  onSending,
}: {
  orderId: string;
  onReviewed?: (r: Review) => void;
  /** Called as the review is sent (the order may say `reviewed` before the answer arrives). */
  onSending?: () => void;
}) {
  const session = useSessionManager();
  const client = useQueryClient();
  const formRef = useRef<HTMLFormElement>(null);
  const { errors, show, showFields, clear, clearField, bannerRef } = useFormErrors(formRef);
  const [rating, setRating] = useState<number | null>(null);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<Review | null>(null);
  const [already, setAlready] = useState<string | null>(null);
  const resultRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    // The form (and the focused Submit) is gone: the focus goes to what happened.
    if (done || already) resultRef.current?.focus();
  }, [done, already]);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const local = checkReview(rating, comment);
    if (Object.keys(local).length > 0 || rating === null) return showFields(local);
    clear();
    setBusy(true);
    onSending?.();
    try {
      const { data } = await session.request('review:create', reviewPayload(orderId, rating, comment));
      // The stuff's reviews and rating changed: whoever shows them asks again.
      void client.invalidateQueries({ queryKey: queryKeys.reviews(data.stuffId) });
      void client.invalidateQueries({ queryKey: queryKeys.stuff(data.stuffId) });
      setDone(data);
      onReviewed?.(data);
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status === 409) setAlready(apiErr.errors[0]?.message ?? ALREADY_REVIEWED_MESSAGE);
      else show(apiErr, REVIEW_FIELDS);
    } finally {
      setBusy(false);
    }
  };

  if (done) {
    return (
      <div className="review-result" data-testid="review-done">
        <div ref={resultRef} tabIndex={-1} className="banner banner-success" role="status" data-testid="review-thanks">
          <p>{THANKS_MESSAGE}</p>
        </div>
        <ReviewItem review={done} testId="my-review" />
      </div>
    );
  }
  if (already) {
    return (
      <div ref={resultRef} tabIndex={-1} className="banner banner-error" role="alert" data-testid="review-error">
        <p>{already}</p>
      </div>
    );
  }

  const length = commentLength(comment);
  const over = length > COMMENT_MAX;
  return (
    <form ref={formRef} onSubmit={onSubmit} noValidate className="review-form" data-testid="review-form" aria-busy={busy}>
      <ErrorBanner ref={bannerRef} messages={errors.general} testId="review-form-error" />
      <fieldset className="field rating-field" aria-describedby={errors.fields.rating ? 'error-rating' : undefined}>
        <legend>Your rating</legend>
        <div className="rating-options">
          {RATINGS.map((n) => (
            <div className="radio rating-option" key={n}>
              <input
                type="radio"
                id={`review-rating-${n}`}
                name="rating"
                value={n}
                checked={rating === n}
                onChange={() => {
                  setRating(n);
                  clearField('rating');
                }}
                aria-invalid={errors.fields.rating && n === RATINGS[0] ? true : undefined}
                data-testid={`review-rating-${n}`}
              />
              <label htmlFor={`review-rating-${n}`}>
                <span className="stars" aria-hidden="true">
                  {starsText(n)}
                </span>{' '}
                {starsLabel(n)}
              </label>
            </div>
          ))}
        </div>
        <FieldError field="rating" message={errors.fields.rating} />
      </fieldset>
      <TextAreaField
        name="comment"
        label="Comment (optional)"
        rows={4}
        value={comment}
        onChange={(e) => {
          setComment(e.target.value);
          clearField('comment');
        }}
        error={errors.fields.comment}
        describedByExtra="comment-counter"
        data-testid="review-comment-input"
      />
      <p id="comment-counter" className={`hint counter${over ? ' counter-over' : ''}`} data-testid="comment-counter">
        {length} / {COMMENT_MAX} characters
      </p>
      <button type="submit" className="primary" disabled={busy} data-testid="review-submit">
        {busy ? 'Submitting…' : 'Submit review'}
      </button>
    </form>
  );
}
