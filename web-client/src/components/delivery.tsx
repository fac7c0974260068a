// What a stuff delivers: the public file list ("What you get"), and the private part (the
// seller's note and download links) for the buyer of a complete order or for the seller.
import { useCallback, useEffect, useRef, useState, type MouseEvent, type ReactNode } from 'react';
import { linkExpired, linksStale, refreshDelayMs, targetKey, type DeliveryTarget } from '../api/delivery';
import { ApiError, toApiError } from '../api/errors';
import { describeContentType, formatBytes } from '../api/files';
import { formatPages, pageCountOf } from '../api/previews';
import { usePush, useSession, useSessionManager } from '../api/session-react';
import type { Delivery, DeliveryFile, FileMeta } from '../api/types';
import { ErrorBanner } from './ui';

export interface DeliveryState {
  delivery: Delivery | null;
  error: ApiError | null;
  loading: boolean;
  /** Fetches fresh links now; resolves with them (null on failure). */
  reload: () => Promise<Delivery | null>;
}

/**
 * Fetches `delivery:get` for `target` (null: nothing yet) once connected and again on every
 * reconnect, when `refreshKey` changes, a little before the earliest link expires, when the page
 * is shown again with stale links, and on `delivery:updated` for the target's order.
 */
export function useDelivery(target: DeliveryTarget | null, refreshKey: unknown = null): DeliveryState {
  const session = useSessionManager();
  const { epoch } = useSession();
  const key = targetKey(target);
  const targetRef = useRef(target);
  targetRef.current = target;
  const [state, setState] = useState<{ key: string; delivery: Delivery | null; error: ApiError | null; loading: boolean }>({
    key,
    delivery: null,
    error: null,
    loading: false,
  });
  const seq = useRef(0);

  const reload = useCallback(async (): Promise<Delivery | null> => {
    const t = targetRef.current;
    if (!t) return null;
    const mine = ++seq.current;
    setState((s) => (s.key === key ? { ...s, loading: true } : { key, delivery: null, error: null, loading: true }));
    try {
      const { data } = await session.request('delivery:get', t);
      if (mine === seq.current) setState({ key, delivery: data, error: null, loading: false });
      return data;
    } catch (e) {
      const err = toApiError(e);
      if (mine === seq.current) {
        // Refused (not paid, refunded, not the seller): the old links are of no use either.
        const keep = err.status !== 403 && err.status !== 404;
        setState((s) => ({ key, delivery: keep && s.key === key ? s.delivery : null, error: err, loading: false }));
      }
      return null;
    }
  }, [session, key]);

  useEffect(() => {
    if (epoch === 0 || !key) return;
    void reload();
  }, [reload, epoch, key, refreshKey]);

  const current = state.key === key ? state : { delivery: null, error: null, loading: false };
  const { delivery } = current;

  // Fresh links shortly before the earliest one expires.
  useEffect(() => {
    if (!delivery) return;
    const delay = refreshDelayMs(delivery, Date.now());
    if (delay === null) return;
    const timer = setTimeout(() => void reload(), delay);
    return () => clearTimeout(timer);
  }, [delivery, reload]);

  // Timers are throttled in background tabs: check again when the page is shown.
  const deliveryRef = useRef(delivery);
  deliveryRef.current = delivery;
  useEffect(() => {
    const onShow = () => {
      if (document.visibilityState !== 'visible') return;
      const d = deliveryRef.current;
      if (d && linksStale(d, Date.now())) void reload();
    };
    document.addEventListener('visibilitychange', onShow);
    window.addEventListener('pageshow', onShow);
    return () => {
      document.removeEventListener('visibilitychange', onShow);
      window.removeEventListener('pageshow', onShow);
    };
  }, [reload]);

  usePush('delivery:updated', (p) => {
    const t = targetRef.current;
    if (t && 'orderId' in t && p && t.orderId === p.orderId) void reload();
  });

  return { ...current, reload };
}

/** `text/plain` → `Text`, with the size: `200 KB · Text`; a PDF with its page count: `1.5 MB · PDF · 12 pages`. */
export function FileFacts({ file }: { file: FileMeta }) {
  const pages = pageCountOf(file);
  return (
    <span className="muted small file-facts">
      <span data-testid="file-size">{formatBytes(file.sizeBytes)}</span>
      {' · '}
      <span data-testid="file-type">{describeContentType(file.contentType)}</span>
      {pages !== null && (
        <>
          {' · '}
          <span className="file-pages" data-testid="file-pages">
            {formatPages(pages)}
          </span>
        </>
      )}
    </span>
  );
}

/**
 * A download link. A link past its `expiresAt` is not followed: fresh links are fetched first and
 * the download starts from the new one.
 */
export function DownloadLink({
  file,
  reload,
  className,
  children,
}: {
  file: DeliveryFile;
  reload: () => Promise<Delivery | null>;
  /** Extra classes, e.g. `button` for a download button. */
  className?: string;
  children?: ReactNode;
}) {
  const [renewing, setRenewing] = useState(false);
  const onClick = async (e: MouseEvent<HTMLAnchorElement>) => {
    if (!linkExpired(file, Date.now())) return;
    e.preventDefault();
    if (renewing) return;
    setRenewing(true);
    try {
      const fresh = await reload();
      const again = fresh?.files.find((f) => f.id === file.id);
      if (again) {
        const a = document.createElement('a');
        a.href = again.url;
        a.download = again.name;
        a.rel = 'noopener';
        document.body.appendChild(a);
        a.click();
        a.remove();
      }
    } finally {
      setRenewing(false);
    }
  };
  return (
    <a
      href={file.url}
      download={file.name}
      onClick={onClick}
      className={className ? `download-link ${className}` : 'download-link'}
      data-testid="download-link"
      data-file-id={file.id}
      data-sha256={file.sha256}
      aria-busy={renewing || undefined}
    >
      {children ?? (
        <>
          Download <span className="file-name">{file.name}</span>
        </>
      )}
    </a>
  );
}

/** The private part: the seller's note and a download link per file. */
export function DeliveryView({ state, testId = 'delivery' }: { state: DeliveryState; testId?: string }) {
  const { delivery, error, loading, reload } = state;
  const messages = error ? error.errors.map((e) => e.message) : [];
  return (
    <div className="delivery" data-testid={testId} data-loaded={delivery ? 'true' : 'false'}>
      <ErrorBanner messages={messages} testId="delivery-error" />
      {!delivery && loading && (
        <p aria-live="polite" data-testid="delivery-loading">
          Loading your downloads…
        </p>
      )}
      {delivery && (
        <>
          {delivery.secretNote && (
            <div className="secret-note-box">
              <h3>Private note from the seller</h3>
              <p className="secret-note" data-testid="secret-note">
                {delivery.secretNote}
              </p>
            </div>
          )}
          {delivery.files.length > 0 && (
            <>
              <h3>Downloads</h3>
              <ul className="file-list" data-testid="download-list">
                {delivery.files.map((f) => (
                  <li key={f.id} className="file-item download-item" data-testid={`download-${f.id}`}>
                    <span className="file-main">
                      <span className="file-name">{f.name}</span> <FileFacts file={f} />
                    </span>
                    {/* A button-sized link (a tap target on a phone); its name says which file. */}
                    <DownloadLink file={f} reload={reload} className="button download-button">
                      Download<span className="visually-hidden"> {f.name}</span>
                    </DownloadLink>
                  </li>
                ))}
              </ul>
              <p className="muted small">Download links work for a few minutes; this page renews them on its own.</p>
            </>
          )}
          {!delivery.secretNote && delivery.files.length === 0 && (
            <p className="muted" data-testid="delivery-empty">
              The seller has not attached anything yet.
            </p>
          )}
        </>
      )}
    </div>
  );
}

/** The public list of what a buyer gets (names, sizes, types; no links). */
export function FileList({
  files,
  actions,
  link,
}: {
  files: FileMeta[];
  /** Extra controls per file (the seller's). */
  actions?: (f: FileMeta) => ReactNode;
  /** Replaces the plain name, e.g. by a download link. */
  link?: (f: FileMeta) => ReactNode;
}) {
  if (files.length === 0) return null;
  return (
    <ul className="file-list" data-testid="file-list">
      {files.map((f) => (
        <li key={f.id} className="file-item" data-testid={`file-item-${f.id}`} data-file-id={f.id} data-sha256={f.sha256}>
          <span className="file-main">
            {link?.(f) ?? (
              <span className="file-name" data-testid="file-name">
                {f.name}
              </span>
            )}{' '}
            <FileFacts file={f} />
          </span>
          {actions && <span className="file-actions">{actions(f)}</span>}
        </li>
      ))}
    </ul>
  );
}
