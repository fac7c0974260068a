// React bindings for the SessionManager: context, state hook, push subscriptions.
import { createContext, useContext, useEffect, useMemo, useRef, useSyncExternalStore, type ReactNode } from 'react';
import { FilesApi } from './files';
import type { SessionManager, SessionState } from './session';
import type { PushEvent, PushMap } from './types';

const SessionContext = createContext<SessionManager | null>(null);

export function SessionProvider({ session, children }: { session: SessionManager; children: ReactNode }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
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
