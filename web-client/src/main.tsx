import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { App } from './App';
import { loadClientConfig } from './api/config';
import { AuthHttp } from './api/http';
import { browserLock, SessionManager } from './api/session';
import { SessionProvider } from './api/session-react';
import { createSocket } from './api/socket';
import './styles.css';

// One session and one socket per tab, created once (outside React, so StrictMode's double
// effects cannot spend the rotating refresh cookie twice).
const session = new SessionManager({
  http: new AuthHttp(),
  createSocket,
  lock: browserLock(),
  channel: typeof BroadcastChannel !== 'undefined' ? new BroadcastChannel('stuffmart-session') : null,
});
void session.start();
// The server's currency (prices show in `eur` until it answers, and if it cannot).
void loadClientConfig();

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      {/* Navigations render at once, outside React transitions (as the app expects: no Suspense). */}
      <BrowserRouter useTransitions={false}>
        <SessionProvider session={session}>
          <App />
        </SessionProvider>
      </BrowserRouter>
    </StrictMode>,
  );
}
