// The one error shape of the contract: {errors: [{message, field?}]} with an HTTP-like status.

export interface ErrorItem {
  message: string;
  field?: string;
}

/** Where an error came from: the server's envelope, a client-side timeout, or no connection at all. */
export type ErrorKind = 'server' | 'timeout' | 'network';

export class ApiError extends Error {
  readonly status: number;
  readonly errors: ErrorItem[];
  readonly kind: ErrorKind;

  constructor(status: number, errors: ErrorItem[], kind: ErrorKind = 'server') {
    const items = errors.length > 0 ? errors : [{ message: genericMessage(status) }];
    super(items.map((e) => e.message).join('; '));
    this.name = 'ApiError';
    this.status = status;
    this.errors = items;
    this.kind = kind;
  }

  /** Errors that name a field, keyed by field (first message wins). */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.errors) {
      if (e.field && !(e.field in out)) out[e.field] = e.message;
    }
    return out;
  }

  /** Errors that do not name a field. */
  generalErrors(): string[] {
    return this.errors.filter((e) => !e.field).map((e) => e.message);
  }
}

export function genericMessage(status: number): string {
  switch (status) {
    case 0:
      return 'Cannot reach the server. Check your connection and try again.';
    case 400:
      return 'Please check the form and try again.';
    case 401:
      return 'Please sign in to continue.';
    case 402:
      return 'Your card was declined';
    case 403:
      return 'You are not allowed to do that.';
    case 404:
      return 'Not found.';
    case 409:
      return 'This was changed by someone else. Please reload and try again.';
    case 429:
      return 'Too many requests. Please wait a moment and try again.';
    case 503:
      return 'The service is not answering right now. Please try again shortly.';
    default:
      return 'Something went wrong. Please try again.';
  }
}

function isErrorItem(v: unknown): v is ErrorItem {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { message?: unknown }).message === 'string' &&
    ((v as { field?: unknown }).field === undefined ||
      (v as { field?: unknown }).field === null ||
      typeof (v as { field?: unknown }).field === 'string')
  );
}

/** Reads `errors` from an envelope-like value; anything malformed becomes []. */
export function parseErrorItems(body: unknown): ErrorItem[] {
  if (typeof body !== 'object' || body === null) return [];
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter(isErrorItem).map((e) => (e.field ? { message: e.message, field: e.field } : { message: e.message }));
}

/** Any thrown value as an ApiError, so the UI never shows raw objects. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  return new ApiError(500, [], 'server');
}
