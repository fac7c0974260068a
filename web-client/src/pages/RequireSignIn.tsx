import type { ReactNode } from 'react';
import { useSession } from '../api/session-react';
import { Link } from 'react-router';

/** Renders children for a signed-in user (optionally an admin); otherwise says what to do. */
export function RequireSignIn({ next, admin = false, children }: { next: string; admin?: boolean; children: ReactNode }) {
  const { status, user } = useSession();
  if (status === 'initializing') return <p aria-live="polite">Loading…</p>;
  if (!user) {
    return (
      <p data-testid="signin-required">
        Please <Link to={`/signin?next=${encodeURIComponent(next)}`}>sign in</Link> to continue.
      </p>
    );
  }
  if (admin && user.role !== 'admin') {
    return (
      <p role="alert" data-testid="admin-required">
        This page is for admins only.
      </p>
    );
  }
  return <>{children}</>;
}
