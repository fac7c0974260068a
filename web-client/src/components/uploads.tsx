// Choosing files (drag and drop or the picker) and uploading them one after another, each with
// its own progress bar, Cancel button and error.
import { useEffect, useRef, useState, type DragEvent } from 'react';
import { toApiError } from '../api/errors';
import { checkFile, formatBytes, TOO_MANY_FILES, UploadCancelled, type UploadHandle } from '../api/files';
import { useFilesApi } from '../api/session-react';
import type { FileMeta } from '../api/types';

export type UploadState = 'queued' | 'uploading' | 'done' | 'failed' | 'cancelled';

export interface UploadItem {
  key: string;
  file: File;
  /** Set for a new version of an existing file. */
  replaceFileId?: string;
  state: UploadState;
  loaded: number;
  total: number;
  error: string | null;
  result: FileMeta | null;
}

export interface UploadQueueOptions {
  /** Called after each successful upload. */
  onUploaded?: (meta: FileMeta, item: UploadItem) => void;
  /** Called when nothing is queued or uploading any more (after `start`). */
  onIdle?: (items: UploadItem[]) => void;
}

let nextKey = 0;

/**
 * A list of uploads. `add` only lists files (with a client-side check: too large, empty, more
 * than `room` files); `start(stuffId)` uploads the queued ones in order, including any added later.
 * Uploads still running when the component goes away are aborted.
 */
export function useUploadQueue(options: UploadQueueOptions = {}) {
  const api = useFilesApi();
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const itemsRef = useRef<UploadItem[]>([]);
  const [items, setItems] = useState<UploadItem[]>([]);
  const handles = useRef(new Map<string, UploadHandle>());
  const stuffIdRef = useRef<string | null>(null);
  const running = useRef(false);
  const alive = useRef(true);

  const commit = (next: UploadItem[]) => {
    itemsRef.current = next;
    if (alive.current) setItems(next);
  };
  const patch = (key: string, p: Partial<UploadItem>) => commit(itemsRef.current.map((i) => (i.key === key ? { ...i, ...p } : i)));

  useEffect(() => {
    alive.current = true;
    const map = handles.current;
    return () => {
      alive.current = false;
      for (const h of map.values()) h.abort();
    };
  }, []);

  const pump = async () => {
    const stuffId = stuffIdRef.current;
    if (running.current || !stuffId) return;
    running.current = true;
    try {
      for (;;) {
        if (!alive.current) return;
        const next = itemsRef.current.find((i) => i.state === 'queued');
        if (!next) break;
        patch(next.key, { state: 'uploading', loaded: 0, error: null });
        const handle = api.upload({
          stuffId,
          file: next.file,
          replaceFileId: next.replaceFileId,
          onProgress: (p) => patch(next.key, { loaded: p.loaded, total: p.total }),
        });
        handles.current.set(next.key, handle);
        try {
          const meta = await handle.promise;
          patch(next.key, { state: 'done', result: meta, loaded: next.file.size, total: next.file.size });
          optionsRef.current.onUploaded?.(meta, next);
        } catch (e) {
          if (e instanceof UploadCancelled) patch(next.key, { state: 'cancelled' });
          else patch(next.key, { state: 'failed', error: toApiError(e).errors.map((x) => x.message).join(' ') });
        } finally {
          handles.current.delete(next.key);
        }
      }
    } finally {
      running.current = false;
    }
    if (alive.current) optionsRef.current.onIdle?.(itemsRef.current);
  };

  /**
   * Lists files. `room` is how many more files the stuff may take: the rest are marked with the
   * server's "at most 10 files" message and not sent.
   */
  const add = (files: File[], opts: { replaceFileId?: string; room?: number } = {}): UploadItem[] => {
    let room = opts.room ?? Infinity;
    const created = files.map((file): UploadItem => {
      let problem = checkFile(file);
      if (!problem && !opts.replaceFileId) {
        if (room <= 0) problem = TOO_MANY_FILES;
        else room -= 1;
      }
      return {
        key: `u${++nextKey}`,
        file,
        replaceFileId: opts.replaceFileId,
        state: problem ? 'failed' : 'queued',
        loaded: 0,
        total: file.size,
        error: problem,
        result: null,
      };
    });
    commit([...itemsRef.current, ...created]);
    if (stuffIdRef.current) void pump();
    return created;
  };

  /** Uploads the queued files to this stuff (and those added later). */
  const start = (stuffId: string) => {
    stuffIdRef.current = stuffId;
    void pump();
  };

  const cancel = (key: string) => {
    const h = handles.current.get(key);
    if (h) h.abort();
    else if (itemsRef.current.find((i) => i.key === key)?.state === 'queued') patch(key, { state: 'cancelled' });
  };

  /** Drops an item that is not uploading from the list. */
  const dismiss = (key: string) => {
    if (handles.current.has(key)) return;
    commit(itemsRef.current.filter((i) => i.key !== key));
  };

  /** Forgets finished uploads (done or cancelled), keeping failures on screen. */
  const clearFinished = () => commit(itemsRef.current.filter((i) => i.state !== 'done' && i.state !== 'cancelled'));

  const active = items.filter((i) => i.state === 'queued' || i.state === 'uploading').length;
  /** Files listed to be added (not failed, not cancelled), for the 10-file limit. */
  const pendingAdds = items.filter((i) => !i.replaceFileId && (i.state === 'queued' || i.state === 'uploading')).length;
  return { items, add, start, cancel, dismiss, clearFinished, active, pendingAdds };
}

export type UploadQueue = ReturnType<typeof useUploadQueue>;

/** A drop zone around a file input (multiple) whose label is a button-sized "choose" control. */
export function FileDropZone({
  id,
  label,
  hint,
  disabled = false,
  describedBy,
  onFiles,
  testId = 'file-drop-zone',
  inputTestId = 'file-input',
}: {
  id: string;
  label: string;
  hint: string;
  disabled?: boolean;
  /** Ids of further descriptions (e.g. why it is disabled). */
  describedBy?: string;
  onFiles: (files: File[]) => void;
  testId?: string;
  inputTestId?: string;
}) {
  const [dragging, setDragging] = useState(false);
  const over = (e: DragEvent<HTMLDivElement>) => {
    if (disabled) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    setDragging(true);
  };
  const drop = (e: DragEvent<HTMLDivElement>) => {
    e.preventDefault();
    setDragging(false);
    if (disabled) return;
    const files = Array.from(e.dataTransfer.files ?? []);
    if (files.length) onFiles(files);
  };
  const hintId = `${id}-hint`;
  return (
    <div
      className={`drop-zone${dragging ? ' drop-zone-active' : ''}${disabled ? ' drop-zone-disabled' : ''}`}
      data-testid={testId}
      data-dragging={dragging ? 'true' : 'false'}
      onDragEnter={over}
      onDragOver={over}
      onDragLeave={() => setDragging(false)}
      onDrop={drop}
    >
      {/* The input is visually hidden; its label is the big button that opens the picker (a tap
          target on a phone, where nothing can be dropped). The input still takes keyboard focus. */}
      <input
        type="file"
        id={id}
        className="visually-hidden"
        multiple
        disabled={disabled}
        aria-describedby={[hintId, describedBy].filter(Boolean).join(' ')}
        data-testid={inputTestId}
        onChange={(e) => {
          const files = Array.from(e.target.files ?? []);
          e.target.value = ''; // choosing the same file again fires change again
          if (files.length) onFiles(files);
        }}
      />
      <label htmlFor={id} className={`button drop-zone-button${disabled ? ' disabled' : ''}`}>
        {label}
      </label>
      <p className="hint" id={hintId}>
        {hint}
      </p>
    </div>
  );
}

const STATE_LABEL: Record<UploadState, string> = {
  queued: 'Waiting',
  uploading: 'Uploading',
  done: 'Uploaded',
  failed: 'Not uploaded',
  cancelled: 'Cancelled',
};

function percent(item: UploadItem): number {
  return item.total > 0 ? Math.min(100, Math.floor((item.loaded / item.total) * 100)) : 0;
}

/** One row per upload: name, size, state, a progress bar while it runs, Cancel, the error. */
export function UploadList({
  queue,
  started = true,
  nameOf,
  label = 'Uploads',
}: {
  queue: UploadQueue;
  /** False while the files are only chosen (the form is not sent yet): no progress, "Remove" instead of Cancel. */
  started?: boolean;
  /** The display name of a new version's original file. */
  nameOf?: (fileId: string) => string | undefined;
  label?: string;
}) {
  const { items } = queue;
  if (items.length === 0) return null;
  const done = items.filter((i) => i.state === 'done').length;
  const failed = items.filter((i) => i.state === 'failed').length;
  return (
    <div className="uploads">
      <ul className="upload-list" aria-label={label} data-testid="upload-list">
        {items.map((item) => {
          const name = item.file.name;
          const original = item.replaceFileId ? nameOf?.(item.replaceFileId) : undefined;
          const running = item.state === 'uploading';
          const stateText = item.state === 'queued' ? (started ? 'Waiting' : 'Ready to upload') : running ? `Uploading ${percent(item)}%` : STATE_LABEL[item.state];
          return (
            <li key={item.key} className={`upload upload-${item.state}`} data-testid="upload-item" data-state={item.state} data-name={name}>
              <div className="upload-head">
                <span className="file-name">{name}</span>
                {item.replaceFileId && (
                  <span className="muted small"> (new version{original && original !== name ? ` of ${original}` : ''})</span>
                )}
                <span className="muted small">{formatBytes(item.file.size)}</span>
                <span className="upload-state" data-testid="upload-state">
                  {stateText}
                </span>
              </div>
              {(running || (started && item.state === 'queued')) && (
                <progress
                  max={item.total || 1}
                  value={item.loaded}
                  aria-label={`Upload of ${name}`}
                  aria-valuetext={`${percent(item)}%`}
                  data-testid="upload-progress"
                />
              )}
              {item.error && (
                <p className="field-error" role="alert" data-testid="upload-error">
                  {item.error}
                </p>
              )}
              <div className="upload-actions">
                {(running || (started && item.state === 'queued')) && (
                  <button type="button" onClick={() => queue.cancel(item.key)} data-testid="upload-cancel">
                    Cancel<span className="visually-hidden"> the upload of {name}</span>
                  </button>
                )}
                {!running && (!started || item.state !== 'queued') && (
                  <button type="button" className="link-button" onClick={() => queue.dismiss(item.key)} data-testid="upload-dismiss">
                    Remove<span className="visually-hidden"> {name}</span> from this list
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
      {started && (
        <p className="muted small" aria-live="polite" data-testid="upload-summary">
          {done} of {items.length} uploaded{failed ? `, ${failed} not uploaded` : ''}.
        </p>
      )}
    </div>
  );
}
