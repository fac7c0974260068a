import { describe, expect, it } from 'vitest';
import {
  addReview,
  ALREADY_REVIEWED_MESSAGE,
  canReview,
  checkReview,
  COMMENT_TOO_LONG_MESSAGE,
  formatAverage,
  ratingLabel,
  ratingText,
  RATING_REQUIRED_MESSAGE,
  reviewPayload,
  starsLabel,
  starsText,
} from './reviews';
import type { Review } from './types';

const review = (id: string, createdAt: string): Review => ({ id, stuffId: 's1', rating: 4, comment: '', buyerDisplayName: 'bob', createdAt });

describe('ratings', () => {
  it('read as stars text with one decimal and the count', () => {
    expect(ratingText({ average: 4.5, count: 12 })).toBe('★ 4.5 (12)');
    expect(ratingText({ average: 4, count: 1 })).toBe('★ 4.0 (1)');
    expect(ratingText({ average: 4.449, count: 3 })).toBe('★ 4.4 (3)');
    expect(formatAverage(7)).toBe('5.0');
    expect(formatAverage(Number.NaN)).toBe('0.0');
  });

  it('say it in words for screen readers, and "No reviews yet" without any (or from an older server)', () => {
    expect(ratingLabel({ average: 4.5, count: 12 })).toBe('Rated 4.5 out of 5 from 12 reviews');
    expect(ratingLabel({ average: 3, count: 1 })).toBe('Rated 3.0 out of 5 from 1 review');
    expect(ratingText({ average: 0, count: 0 })).toBe('No reviews yet');
    expect(ratingLabel({ average: 0, count: 0 })).toBe('No reviews yet');
    expect(ratingText(undefined)).toBe('No reviews yet');
  });

  it('of one review are five stars, filled up to the rating', () => {
    expect(starsText(4)).toBe('★★★★☆');
    expect(starsText(1)).toBe('★☆☆☆☆');
    expect(starsLabel(1)).toBe('1 star');
    expect(starsLabel(5)).toBe('5 stars');
  });
});

describe('writing a review', () => {
  it('needs a whole rating from 1 to 5 and a comment of at most 1000 characters', () => {
    expect(checkReview(null, '')).toEqual({ rating: RATING_REQUIRED_MESSAGE });
    expect(checkReview(0, '')).toEqual({ rating: RATING_REQUIRED_MESSAGE });
    expect(checkReview(4.5, '')).toEqual({ rating: RATING_REQUIRED_MESSAGE });
    expect(checkReview(5, 'x'.repeat(1000))).toEqual({});
    expect(checkReview(5, 'x'.repeat(1001))).toEqual({ comment: COMMENT_TOO_LONG_MESSAGE });
    expect(COMMENT_TOO_LONG_MESSAGE).toBe('Comment must be at most 1000 characters');
    expect(ALREADY_REVIEWED_MESSAGE).toBe('You already reviewed this order');
  });

  it('sends the trimmed comment, and none when it is empty', () => {
    expect(reviewPayload('o1', 5, '  Great  ')).toEqual({ orderId: 'o1', rating: 5, comment: 'Great' });
    expect(reviewPayload('o1', 3, '   ')).toEqual({ orderId: 'o1', rating: 3 });
  });

  it('is offered for a complete order not reviewed yet', () => {
    expect(canReview({ status: 'complete', reviewed: false })).toBe(true);
    expect(canReview({ status: 'complete' })).toBe(true);
    expect(canReview({ status: 'complete', reviewed: true })).toBe(false);
    expect(canReview({ status: 'created', reviewed: false })).toBe(false);
    expect(canReview({ status: 'refunded', reviewed: false })).toBe(false);
  });

  it('goes on top of the list once', () => {
    const old = review('r1', '2026-11-01T12:00:00Z');
    const fresh = review('r2', '2026-11-02T12:00:00Z');
    expect(addReview([old], fresh).map((r) => r.id)).toEqual(['r2', 'r1']);
    expect(addReview([fresh, old], fresh).map((r) => r.id)).toEqual(['r2', 'r1']);
  });
});
