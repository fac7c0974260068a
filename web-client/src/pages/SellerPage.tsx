// A seller's page (`/sellers/:id`): what they sell, newest first (`stuff:list {sellerId}`), with
// "Load more" and live pushes like the catalogue. Its heading is the seller's display name, as
// the listed stuff tells it (`seller.displayName`); until then (or from an older server) it says
// "this seller" (or "you" to the seller).
import { useSession } from '../api/session-react';
import { useStuffList } from '../api/catalogue-react';
import { ErrorBanner } from '../components/ui';
import { Link } from 'react-router';
import { StuffCards } from './CataloguePage';

export const SELLER_EMPTY_MESSAGE = 'This seller has nothing listed right now.';

export function SellerPage({ id }: { id: string }) {
  const { user } = useSession();
  const own = user?.id === id;
  const { state, loading, loadingMore, error, loadMore } = useStuffList({ sellerId: id });
  const name = state.items.find((s) => s.seller?.id === id)?.seller?.displayName;

  return (
    <section data-testid="seller-page" data-seller-id={id}>
      <p>
        <Link to="/" className="tap-link">
          ← Catalogue
        </Link>
      </p>
      <h1 tabIndex={-1} data-testid="seller-heading">
        {own ? 'Your stuff' : (name ?? 'Stuff from this seller')}
      </h1>
      {own && (
        <p className="muted">
          What buyers see on your page. <Link to="/selling">My listings</Link> has everything you listed.
        </p>
      )}
      <ErrorBanner messages={error} testId="seller-error" />
      {loading && state.items.length === 0 ? (
        <p aria-live="polite" data-testid="seller-loading">
          Loading…
        </p>
      ) : state.items.length === 0 ? (
        <p data-testid="seller-empty">{own ? 'You have nothing listed right now.' : SELLER_EMPTY_MESSAGE}</p>
      ) : (
        <StuffCards items={state.items} ownId={user?.id} loading={loading} testId="seller-list" />
      )}
      {state.nextCursor && (
        <button type="button" onClick={loadMore} disabled={loadingMore} data-testid="load-more">
          {loadingMore ? 'Loading…' : 'Load more'}
        </button>
      )}
    </section>
  );
}
