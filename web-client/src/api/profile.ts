// The account's display name (shared/CONTRACT.md, "Marketplace"): 2 to 40 characters after
// trimming, the e-mail's local part until the user picks one. Changed with
// `PATCH /api/users/me {displayName}` (http.ts, SessionManager.updateProfile).
import type { User } from './types';

export const DISPLAY_NAME_MIN = 2;
export const DISPLAY_NAME_MAX = 40;
/** The server's message (field `displayName`), also shown before sending. */
export const DISPLAY_NAME_MESSAGE = 'Display name must be 2 to 40 characters';

/** What the server keeps: the name trimmed. */
export function normalizeDisplayName(input: string): string {
  return input.trim();
}

/** The server's rule, checked before sending: the message, or null when the name is fine. */
export function checkDisplayName(input: string): string | null {
  const n = [...normalizeDisplayName(input)].length;
  return n < DISPLAY_NAME_MIN || n > DISPLAY_NAME_MAX ? DISPLAY_NAME_MESSAGE : null;
}

/** The name to show for a user: theirs, or (an older server) the e-mail's local part, as the server's default. */
export function displayNameOf(user: Pick<User, 'email' | 'displayName'>): string {
  const name = typeof user.displayName === 'string' ? user.displayName.trim() : '';
  if (name) return name;
  const at = user.email.lastIndexOf('@');
  return at > 0 ? user.email.slice(0, at) : user.email;
}
