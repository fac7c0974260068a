// React bindings for the SessionManager: context, state hook, push subscriptions, and the
// session's TanStack Query client (see queries.ts).
import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { FilesApi } from './files';
import { connectQueryClient, createQueryClient } from './queries';
import type { SessionManager, SessionState } from './session';
import type { PushEvent, PushMap } from './types';

const SessionContext = createContext<SessionManager | null>(null);

/**
 * Provides the session and its query client (`queryClient`, or one of its own): pushes and
 * reconnects of this session update that client's cache.
 */
export function SessionProvider({ session, queryClient, children }: { session: SessionManager; queryClient?: QueryClient; children: ReactNode }) {
  const [ownClient] = useState(createQueryClient);
  const client = queryClient ?? ownClient;
  useEffect(() => connectQueryClient(client, session), [client, session]);
  return (
    <SessionContext.Provider value={session}>
      <QueryClientProvider client={client}>{children}</QueryClientProvider>
    </SessionContext.Provider>
  );
}

export function useSessionManager(): SessionManager {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSessionManager outside SessionProvider');
  return s;
}

export function useSession(): SessionState {
  const s = useSessionManager();
  return useSyncExternalStore(s.subscribe, s.getSnapshot, s.getSnapshot);
}

/** Subscribes to a server push for the lifetime of the component; the handler may change freely. */
export function usePush<E extends PushEvent>(event: E, handler: (payload: PushMap[E]) => void): void {
  const session = useSessionManager();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => session.onPush(event, (p) => ref.current(p)), [session, event]);
}

/** File uploads and removals with this session's access token (refreshed once on a 401). */
export function useFilesApi(): FilesApi {
  const session = useSessionManager();
  return useMemo(() => new FilesApi({ getToken: () => session.accessToken, refresh: () => session.refresh() }), [session]);
}
