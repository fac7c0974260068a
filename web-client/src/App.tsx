import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useSession, useSessionManager } from './api/session-react';
import type { ConnectionStatus } from './api/session';
import { ErrorBanner } from './components/ui';
import { displayNameOf } from './api/profile';
import { SaleToasts } from './components/toasts';
import { AccountPage } from './pages/AccountPage';
import { AdminPage } from './pages/AdminPage';
import { SignInPage, SignUpPage } from './pages/AuthPages';
import { CataloguePage } from './pages/CataloguePage';
import { LibraryPage } from './pages/LibraryPage';
import { MyOrdersPage, OrderPage } from './pages/OrderPages';
import { SellerPage } from './pages/SellerPage';
import { SellingPage } from './pages/SellingPage';
import { EditStuffPage, SellPage } from './pages/StuffFormPages';
import { StuffPage } from './pages/StuffPage';
import { Link, Route, Routes, useLocation, useNavigate, useParams } from 'react-router';

const CONNECTION_LABEL: Record<ConnectionStatus, string> = {
  idle: 'Starting…',
  connecting: 'Connecting…',
  connected: 'Live',
  reconnecting: 'Reconnecting…',
  failed: 'Offline',
};

/** An e-mail that, when it must wrap (a phone's header), prefers to wrap after the `@`. */
function EmailText({ email }: { email: string }) {
  const at = email.lastIndexOf('@');
  if (at <= 0) return <>{email}</>;
  return (
    <>
      {email.slice(0, at + 1)}
      <wbr />
      {email.slice(at + 1)}
    </>
  );
}

function Header() {
  const session = useSessionManager();
  const navigate = useNavigate();
  const { user, connection, status } = useSession();
  const [signingOut, setSigningOut] = useState(false);
  const signOut = async () => {
    setSigningOut(true);
    await session.signOut();
    setSigningOut(false);
    navigate('/');
  };
  return (
    <header className="site-header">
      <div className="header-inner">
        <Link to="/" className="brand">
          StuffMart
        </Link>
        <nav aria-label="Main">
          <ul>
            <li>
              <Link to="/">Catalogue</Link>
            </li>
            {user && (
              <>
                <li>
                  <Link to="/sell" data-testid="nav-sell">
                    Sell
                  </Link>
                </li>
                <li>
                  <Link to="/selling" data-testid="nav-selling">
                    My listings
                  </Link>
                </li>
                <li>
                  <Link to="/orders" data-testid="nav-orders">
                    My orders
                  </Link>
                </li>
                <li>
                  <Link to="/library" data-testid="nav-library">
                    Library
                  </Link>
                </li>
                <li>
                  <Link to="/account" data-testid="nav-account">
                    Account
                  </Link>
                </li>
              </>
            )}
            {user?.role === 'admin' && (
              <li>
                <Link to="/admin" data-testid="nav-admin">
                  Admin
                </Link>
              </li>
            )}
          </ul>
        </nav>
        <div className="account">
          <span className={`conn conn-${connection}`} data-testid="connection-status" data-state={connection} role="status">
            {CONNECTION_LABEL[connection]}
          </span>
          {user ? (
            <>
              <span className="current-user" data-testid="current-user" data-role={user.role}>
                <span className="visually-hidden">Signed in as </span>
                <strong className="current-user-name" data-testid="current-user-name">
                  {displayNameOf(user)}
                </strong>{' '}
                <span className="current-user-email" data-testid="current-user-email">
                  <EmailText email={user.email} />
                </span>{' '}
                <span className={`role role-${user.role}`} data-testid="current-user-role">
                  {user.role}
                </span>
              </span>
              <button type="button" onClick={signOut} disabled={signingOut} data-testid="signout-button">
                Sign out
              </button>
            </>
          ) : status === 'initializing' ? null : (
            <>
              <Link to="/signin" data-testid="nav-signin">
                Sign in
              </Link>
              <Link to="/signup" className="button primary" data-testid="nav-signup">
                Sign up
              </Link>
            </>
          )}
        </div>
      </div>
    </header>
  );
}

/** A page for one `:id`, remounted (fresh state) when the id changes. */
function WithId({ page: Page }: { page: (props: { id: string }) => ReactNode }) {
  const id = useParams().id as string;
  return <Page key={id} id={id} />;
}

function NotFound() {
  return (
    <section>
      <h1 tabIndex={-1}>Page not found</h1>
      <p>
        <Link to="/" className="tap-link">
          Back to the catalogue
        </Link>
      </p>
    </section>
  );
}

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/" element={<CataloguePage />} />
      <Route path="/signin" element={<SignInPage />} />
      <Route path="/signup" element={<SignUpPage />} />
      <Route path="/sell" element={<SellPage />} />
      <Route path="/selling" element={<SellingPage />} />
      <Route path="/orders" element={<MyOrdersPage />} />
      <Route path="/library" element={<LibraryPage />} />
      <Route path="/admin" element={<AdminPage />} />
      <Route path="/account" element={<AccountPage />} />
      <Route path="/stuff/:id/edit" element={<WithId page={EditStuffPage} />} />
      <Route path="/stuff/:id" element={<WithId page={StuffPage} />} />
      <Route path="/sellers/:id" element={<WithId page={SellerPage} />} />
      <Route path="/orders/:id" element={<WithId page={OrderPage} />} />
      <Route path="*" element={<NotFound />} />
    </Routes>
  );
}

export function App() {
  const session = useSessionManager();
  const { notice, user } = useSession();
  const path = useLocation().pathname;
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);

  // Move focus to the new page's heading on client-side navigation (not on first load).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    const h1 = mainRef.current?.querySelector<HTMLElement>('h1');
    h1?.focus();
    window.scrollTo?.(0, 0);
  }, [path]);

  return (
    <>
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <Header />
      <main id="main" ref={mainRef} className="container">
        {notice && <ErrorBanner messages={[notice]} testId="session-notice" onDismiss={() => session.dismissNotice()} />}
        <AppRoutes />
        {/* Keyed by the user: a sign-out (or another account) starts with no toasts. */}
        <SaleToasts key={user?.id ?? 'anonymous'} enabled={user !== null} />
      </main>
    </>
  );
}
