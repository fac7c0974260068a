// Reads claims from a JWT payload WITHOUT verifying it: the client only needs `exp`
// to know when to refresh. Every service verifies tokens itself.

function base64UrlDecode(input: string): string {
  let s = input.replace(/-/g, '+').replace(/_/g, '/');
  const pad = s.length % 4;
  if (pad === 2) s += '==';
  else if (pad === 3) s += '=';
  else if (pad === 1) throw new Error('invalid base64url');
  const binary = atob(s);
  // Decode UTF-8 so non-ASCII claims (e.g. an e-mail) survive.
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

export function decodeJwtPayload(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const json: unknown = JSON.parse(base64UrlDecode(parts[1]));
    return typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The token's expiry in epoch milliseconds, or null when it has none / cannot be read. */
export function tokenExpiresAtMs(token: string): number | null {
  const exp = decodeJwtPayload(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}

/** Access tokens live 15 minutes (ARCHITECTURE.md); used when `exp` cannot be read. */
export const DEFAULT_TOKEN_LIFETIME_MS = 15 * 60 * 1000;
/** Refresh at most this long before expiry... */
export const MAX_REFRESH_LEAD_MS = 60 * 1000;

/**
 * How long to wait before refreshing a token that expires at `expiresAtMs`.
 * Refresh one minute before expiry, or halfway through the remaining time when less than
 * two minutes remain (short-lived tokens in tests); immediately when already expired.
 */
export function refreshDelayMs(expiresAtMs: number | null, nowMs: number): number {
  const remaining = (expiresAtMs ?? nowMs + DEFAULT_TOKEN_LIFETIME_MS) - nowMs;
  if (remaining <= 0) return 0;
  const lead = Math.min(MAX_REFRESH_LEAD_MS, remaining / 2);
  return Math.max(0, Math.floor(remaining - lead));
}
