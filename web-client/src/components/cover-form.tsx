// The seller's "Cover image" control: the current cover (or a placeholder), a file input for a
// PNG, JPEG or WebP of at most 5 MiB, and "Upload cover" (POST /api/stuff/{id}/cover). It is a
// form of its own, so it never sends (or is sent with) the stuff's other fields.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { toApiError } from '../api/errors';
import { checkCover, COVER_TYPES, formatBytes, MAX_COVER_BYTES } from '../api/files';
import { useFilesApi } from '../api/session-react';

export const COVER_HINT = `PNG, JPEG or WebP, up to ${formatBytes(MAX_COVER_BYTES)}. Shown on the catalogue card and the stuff page.`;
export const COVER_SAVED = 'Cover updated';

export function CoverForm({
  stuffId,
  title,
  coverUrl,
  onUploaded,
}: {
  stuffId: string;
  /** The stuff's title, for the image's text alternative. */
  title: string;
  /** The cover the page knows of (it follows `stuff:updated`). */
  coverUrl: string | null | undefined;
  onUploaded?: (coverUrl: string) => void;
}) {
  const api = useFilesApi();
  const inputRef = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [shown, setShown] = useState<string | null>(coverUrl ?? null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [focusTick, setFocusTick] = useState(0);
  const alive = useRef(true);

  useEffect(() => {
    alive.current = true;
    return () => {
      alive.current = false;
    };
  }, []);
  // A newer cover pushed by the server (another tab, or this upload's own `stuff:updated`).
  useEffect(() => {
    if (coverUrl) setShown(coverUrl);
  }, [coverUrl]);
  // After an error the field takes the focus, so its message is read out with it.
  useEffect(() => {
    if (focusTick > 0) inputRef.current?.focus();
  }, [focusTick]);

  const fail = (message: string) => {
    setError(message);
    setFocusTick((t) => t + 1);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setSaved(false);
    const problem = checkCover(file);
    if (problem || !file) return fail(problem ?? '');
    setError(null);
    setBusy(true);
    try {
      const url = await api.uploadCover(stuffId, file);
      if (!alive.current) return;
      setShown(url);
      setSaved(true);
      setFile(null);
      if (inputRef.current) inputRef.current.value = '';
      onUploaded?.(url);
    } catch (err) {
      // One field: every message (the file's, or 403/404/409 about the stuff) is shown on it.
      if (alive.current) fail(toApiError(err).errors.map((x) => x.message).join(' '));
    } finally {
      if (alive.current) setBusy(false);
    }
  };

  const describedBy = ['hint-cover', error ? 'error-cover' : null].filter(Boolean).join(' ');
  return (
    <form className="cover-form" onSubmit={submit} noValidate aria-busy={busy} aria-labelledby="cover-form-heading" data-testid="cover-form">
      <h2 id="cover-form-heading">Cover</h2>
      <figure className="cover-preview" data-testid="cover-preview" data-cover-url={shown ?? ''}>
        {shown ? (
          <img className="stuff-cover" src={shown} alt={`Cover of ${title}`} decoding="async" />
        ) : (
          <>
            <div className="stuff-cover cover-placeholder" aria-hidden="true" />
            <figcaption className="muted small">No cover image yet.</figcaption>
          </>
        )}
      </figure>
      <div className="field">
        <label htmlFor="field-cover">Cover image</label>
        <p className="hint" id="hint-cover">
          {COVER_HINT}
        </p>
        <input
          ref={inputRef}
          type="file"
          id="field-cover"
          name="file"
          accept={COVER_TYPES.join(',')}
          aria-invalid={error ? true : undefined}
          aria-describedby={describedBy}
          data-testid="cover-input"
          onChange={(ev) => {
            setFile(ev.target.files?.[0] ?? null);
            setError(null);
            setSaved(false);
          }}
        />
        {error && (
          <p className="field-error" id="error-cover" data-testid="error-cover">
            {error}
          </p>
        )}
      </div>
      <button type="submit" disabled={busy} data-testid="cover-submit">
        {busy ? 'Uploading…' : 'Upload cover'}
      </button>{' '}
      <span className="cover-saved" role="status" data-testid="cover-saved">
        {saved ? COVER_SAVED : ''}
      </span>
    </form>
  );
}
