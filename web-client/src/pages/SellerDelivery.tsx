// The seller's side of delivery on the stuff page: the files (download, new version, remove),
// adding files, and the private note. What is allowed follows the contract: nothing changes
// while the stuff is being checked out; once sold, only new versions of files.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { stuffFiles } from '../api/delivery';
import { toApiError } from '../api/errors';
import { MAX_FILE_BYTES, MAX_FILES, formatBytes } from '../api/files';
import { useFilesApi, useSessionManager } from '../api/session-react';
import type { FileMeta, Stuff } from '../api/types';
import { DownloadLink, FileList, useDelivery } from '../components/delivery';
import { ErrorBanner, TextAreaField } from '../components/ui';
import { FileDropZone, UploadList, useUploadQueue } from '../components/uploads';
import { SECRET_NOTE_MAX } from './StuffFormPages';

export const RESERVED_FILES_MESSAGE = 'Someone is checking this out, so its files and note cannot change right now.';
export const WITHDRAWN_FILES_MESSAGE = 'Withdrawn: the files and the note no longer change; anyone who bought it keeps them as they are.';
export const SOLD_FILES_MESSAGE =
  'Sold: the files and the note stay as they are for the buyer. You can still upload a new version of a file; the buyer gets it at once.';

export function SellerDelivery({ stuff, onChanged }: { stuff: Stuff; onChanged: () => void }) {
  const files = stuffFiles(stuff);
  const reserved = stuff.status === 'reserved';
  // Sold or withdrawn: what earlier buyers got stays as it is. A sold stuff's files still take new
  // versions (they reach the buyer); a withdrawn one changes no more (the server refuses with 409).
  const withdrawn = stuff.status === 'withdrawn';
  const sold = stuff.status === 'sold' || withdrawn;
  const canAddOrRemove = stuff.status === 'available';
  const canReplace = !reserved && !withdrawn;
  const lockId = 'files-locked-message';

  // The seller's own links (and the note's text, which the public Stuff does not carry).
  const delivery = useDelivery({ stuffId: stuff.id }, stuff.version);
  const links = new Map((delivery.delivery?.files ?? []).map((f) => [f.id, f] as const));

  const queue = useUploadQueue({ onIdle: () => onChanged() });
  const room = Math.max(0, MAX_FILES - files.length - queue.pendingAdds);

  const filesApi = useFilesApi();
  const [confirming, setConfirming] = useState<string | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [fileErrors, setFileErrors] = useState<string[]>([]);

  useEffect(() => {
    queue.start(stuff.id);
  }, [stuff.id]); // once per stuff; `queue` is stable in what start() does

  const remove = async (f: FileMeta) => {
    setFileErrors([]);
    setRemoving(f.id);
    try {
      await filesApi.remove(stuff.id, f.id);
      setConfirming(null);
      onChanged();
    } catch (e) {
      setFileErrors(toApiError(e).errors.map((x) => x.message));
    } finally {
      setRemoving(null);
    }
  };

  const nameOf = (id: string) => files.find((f) => f.id === id)?.name;

  return (
    <section className="manage-delivery" aria-labelledby="manage-delivery-heading" data-testid="manage-delivery">
      <h2 id="manage-delivery-heading">What buyers get</h2>
      {reserved && (
        <p id={lockId} className="blocked" role="status" data-testid="files-locked">
          {RESERVED_FILES_MESSAGE}
        </p>
      )}
      {sold && (
        <p id={lockId} className="muted" data-testid="files-sold">
          {stuff.status === 'withdrawn' ? WITHDRAWN_FILES_MESSAGE : SOLD_FILES_MESSAGE}
        </p>
      )}
      <ErrorBanner messages={fileErrors} testId="files-error" onDismiss={() => setFileErrors([])} />
      <ErrorBanner messages={delivery.error ? delivery.error.errors.map((e) => e.message) : []} testId="delivery-error" />

      <h3>Files</h3>
      {files.length === 0 && (
        <p className="muted" data-testid="no-files">
          No files yet.
        </p>
      )}
      <FileList
        files={files}
        link={(f) => {
          const l = links.get(f.id);
          return l ? (
            <DownloadLink file={l} reload={delivery.reload}>
              <span className="file-name" data-testid="file-name">
                {f.name}
              </span>
              <span className="visually-hidden"> (download)</span>
            </DownloadLink>
          ) : undefined;
        }}
        actions={(f) => (
          <>
            <span className="file-button">
              <input
                type="file"
                id={`new-version-${f.id}`}
                className="visually-hidden"
                disabled={!canReplace}
                aria-describedby={reserved || withdrawn ? lockId : undefined}
                data-testid="new-version-input"
                onChange={(e) => {
                  const picked = Array.from(e.target.files ?? []);
                  e.target.value = '';
                  if (picked[0]) queue.add([picked[0]], { replaceFileId: f.id });
                }}
              />
              <label htmlFor={`new-version-${f.id}`} className={`button small${canReplace ? '' : ' disabled'}`}>
                New version<span className="visually-hidden"> of {f.name}</span>
              </label>
            </span>
            {!sold &&
              (confirming === f.id ? (
                <span className="confirm" role="group" aria-label={`Remove ${f.name}?`}>
                  <button type="button" className="danger small" onClick={() => void remove(f)} disabled={removing === f.id} data-testid="confirm-remove-file">
                    {removing === f.id ? 'Removing…' : 'Yes, remove'}
                    <span className="visually-hidden"> {f.name}</span>
                  </button>
                  <button type="button" className="small" onClick={() => setConfirming(null)} data-testid="keep-file">
                    Keep it
                  </button>
                </span>
              ) : (
                <button
                  type="button"
                  className="small"
                  onClick={() => setConfirming(f.id)}
                  disabled={!canAddOrRemove}
                  aria-describedby={reserved ? lockId : undefined}
                  data-testid="remove-file"
                >
                  Remove<span className="visually-hidden"> {f.name}</span>
                </button>
              ))}
          </>
        )}
      />
      <UploadList queue={queue} nameOf={nameOf} label="Uploads" />
      {!sold && (
        <FileDropZone
          id="field-file"
          label="Add files"
          hint={`Up to ${MAX_FILES} files in all, ${formatBytes(MAX_FILE_BYTES)} each. ${room === 0 ? 'This stuff has the most files it can have.' : `Room for ${room} more.`}`}
          disabled={!canAddOrRemove || room === 0}
          describedBy={reserved ? lockId : undefined}
          onFiles={(picked) => queue.add(picked, { room })}
        />
      )}

      <SecretNoteEditor stuff={stuff} current={delivery.delivery ? delivery.delivery.secretNote : undefined} lockId={reserved || sold ? lockId : undefined} onSaved={onChanged} />
    </section>
  );
}

/** Edits the private note through `stuff:update` (an empty note removes it). */
function SecretNoteEditor({
  stuff,
  current,
  lockId,
  onSaved,
}: {
  stuff: Stuff;
  /** The note as the server has it; undefined until `delivery:get` answered. */
  current: string | null | undefined;
  lockId?: string;
  onSaved: () => void;
}) {
  const session = useSessionManager();
  const [draft, setDraft] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<string[]>([]);
  const [fieldError, setFieldError] = useState<string | undefined>();
  const [saved, setSaved] = useState<string | null>(null);
  const bannerRef = useRef<HTMLDivElement>(null);
  const editable = stuff.status === 'available';
  const value = draft ?? current ?? '';
  const loaded = current !== undefined;

  const save = async (e: FormEvent) => {
    e.preventDefault();
    setErrors([]);
    setFieldError(undefined);
    setSaved(null);
    if (value.length > SECRET_NOTE_MAX) {
      setFieldError(`Private note must be at most ${SECRET_NOTE_MAX} characters`);
      return;
    }
    setBusy(true);
    try {
      // "" removes the note (shared/CONTRACT.md: stuff:update accepts secretNote).
      const note = value.trim() ? value : '';
      await session.request('stuff:update', { id: stuff.id, version: stuff.version, secretNote: note });
      setDraft(null);
      setSaved(note ? 'Private note saved.' : 'Private note removed.');
      onSaved();
    } catch (err) {
      const apiErr = toApiError(err);
      const f = apiErr.fieldErrors().secretNote;
      if (f) setFieldError(f);
      const general = apiErr.errors.filter((x) => x.field !== 'secretNote').map((x) => x.message);
      setErrors(general);
      if (general.length) queueMicrotask(() => bannerRef.current?.focus());
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={save} noValidate data-testid="secret-note-form" aria-busy={busy}>
      <h3>Private note</h3>
      <ErrorBanner ref={bannerRef} messages={errors} testId="secret-note-error" />
      <TextAreaField
        name="secretNote"
        label="Private note for buyers"
        hint={
          loaded
            ? 'Only buyers see it, after paying. Leave it empty to remove it.'
            : 'Loading the current note…'
        }
        rows={4}
        value={value}
        onChange={(e) => setDraft(e.target.value)}
        maxLength={SECRET_NOTE_MAX}
        disabled={!editable || !loaded || busy}
        // The field's own hint and error, plus why it is locked.
        {...(lockId ? { 'aria-describedby': ['hint-secretNote', fieldError ? 'error-secretNote' : null, lockId].filter(Boolean).join(' ') } : {})}
        error={fieldError}
        data-testid="secret-note-input"
      />
      <div className="actions">
        <button type="submit" disabled={!editable || !loaded || busy} aria-describedby={lockId} data-testid="save-secret-note">
          {busy ? 'Saving…' : 'Save note'}
        </button>
        {saved && (
          <span role="status" className="muted" data-testid="secret-note-saved">
            {saved}
          </span>
        )}
      </div>
    </form>
  );
}
