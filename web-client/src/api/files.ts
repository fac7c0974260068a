// Seller file uploads over HTTP (shared/CONTRACT.md, "Delivery"). Uploads use XMLHttpRequest
// for its upload progress events; Cancel is xhr.abort(). Every call sends the in-memory access
// token as `Authorization: Bearer`, and on a 401 refreshes it once and tries again (as
// SessionManager.request does for socket requests).
import { ApiError, parseErrorItems } from './errors';
import type { FileMeta } from './types';

/** The server's default MAX_FILE_BYTES (50 MiB); checked before sending so nobody waits for a 413. */
export const MAX_FILE_BYTES = 50 * 1024 * 1024;
/** At most this many files per stuff. */
export const MAX_FILES = 10;

export const FILE_TOO_LARGE = 'File too large';
export const FILE_REQUIRED = 'A file is required';
export const TOO_MANY_FILES = 'A stuff can have at most 10 files';
export const EMPTY_FILE = 'This file is empty';

/** A cover is at most 5 MiB; larger ones are refused with the same message as a wrong type. */
export const MAX_COVER_BYTES = 5 * 1024 * 1024;
/** The image types the server accepts for a cover (also the file input's `accept`). */
export const COVER_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
/** The server's message for a cover of the wrong type or over 5 MiB (field `file`). */
export const COVER_INVALID = 'Cover must be a PNG, JPEG or WebP image';

/** The part of XMLHttpRequest an upload uses (tests pass a fake). */
export interface XhrLike {
  status: number;
  responseText: string;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null };
  onload: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
  open(method: string, url: string): void;
  setRequestHeader(name: string, value: string): void;
  send(body: FormData): void;
  abort(): void;
}

/** Thrown (rejected) when an upload was cancelled with `abort()`. */
export class UploadCancelled extends Error {
  constructor() {
    super('Upload cancelled');
    this.name = 'UploadCancelled';
  }
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadHandle {
  /** Resolves with the stored file's metadata; rejects with ApiError or UploadCancelled. */
  promise: Promise<FileMeta>;
  abort(): void;
}

export interface FilesDeps {
  /** The current access token (or null when signed out). */
  getToken(): string | null;
  /** Refreshes the access token; resolves true when a session is active afterwards. */
  refresh(): Promise<boolean>;
  createXhr?: () => XhrLike;
  fetchImpl?: (input: string, init?: RequestInit) => Promise<Response>;
  base?: string;
}

export interface UploadOptions {
  stuffId: string;
  file: File;
  /** Set to upload a new version of this file (PUT) instead of adding one (POST). */
  replaceFileId?: string;
  onProgress?: (p: UploadProgress) => void;
}

/** A client-side reason not to send this file at all, or null. */
export function checkFile(file: { size: number }): string | null {
  if (file.size > MAX_FILE_BYTES) return FILE_TOO_LARGE;
  if (file.size === 0) return EMPTY_FILE;
  return null;
}

/**
 * A client-side reason not to send this cover, or null: nothing chosen, a type other than PNG,
 * JPEG or WebP, or more than 5 MiB (the server's messages). The server still checks the bytes.
 */
export function checkCover(file: { size: number; type: string } | null | undefined): string | null {
  if (!file) return FILE_REQUIRED;
  const type = file.type.split(';')[0]!.trim().toLowerCase();
  if (!(COVER_TYPES as readonly string[]).includes(type) || file.size > MAX_COVER_BYTES) return COVER_INVALID;
  return null;
}

function filesPath(stuffId: string, fileId?: string): string {
  const base = `/api/stuff/${encodeURIComponent(stuffId)}/files`;
  return fileId === undefined ? base : `${base}/${encodeURIComponent(fileId)}`;
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** An error response as an ApiError; a 413 says `File too large` even when a proxy sent no envelope. */
export function errorFromResponse(status: number, body: unknown): ApiError {
  const items = parseErrorItems(body);
  if (status === 413 && items.length === 0) return new ApiError(413, [{ message: FILE_TOO_LARGE, field: 'file' }]);
  return new ApiError(status, items);
}

export class FilesApi {
  private readonly deps: FilesDeps;

  constructor(deps: FilesDeps) {
    this.deps = deps;
  }

  /**
   * Uploads one file (POST, or PUT with `replaceFileId`) with progress. Files over
   * MAX_FILE_BYTES are refused here with the server's message, without sending anything.
   */
  upload(opts: UploadOptions): UploadHandle {
    let current: XhrLike | null = null;
    let aborted = false;
    const sizeProblem = opts.file.size > MAX_FILE_BYTES ? FILE_TOO_LARGE : null;

    const attempt = (): Promise<{ status: number; body: unknown }> =>
      new Promise((resolve, reject) => {
        const xhr = (this.deps.createXhr ?? (() => new XMLHttpRequest() as unknown as XhrLike))();
        current = xhr;
        xhr.open(opts.replaceFileId ? 'PUT' : 'POST', (this.deps.base ?? '') + filesPath(opts.stuffId, opts.replaceFileId));
        const token = this.deps.getToken();
        if (token) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
        xhr.setRequestHeader('Accept', 'application/json');
        xhr.upload.onprogress = (e) => {
          const total = e.lengthComputable && e.total > 0 ? e.total : opts.file.size;
          opts.onProgress?.({ loaded: Math.min(e.loaded, total), total });
        };
        xhr.onload = () => resolve({ status: xhr.status, body: parseJson(xhr.responseText) });
        xhr.onerror = () => reject(new ApiError(0, [], 'network'));
        xhr.onabort = () => reject(new UploadCancelled());
        const form = new FormData();
        form.append('file', opts.file, opts.file.name);
        opts.onProgress?.({ loaded: 0, total: opts.file.size });
        xhr.send(form);
      });

    const run = async (): Promise<FileMeta> => {
      if (sizeProblem) throw new ApiError(413, [{ message: sizeProblem, field: 'file' }]);
      let res = await attempt();
      if (res.status === 401 && this.deps.getToken() !== null) {
        const ok = await this.deps.refresh();
        if (aborted) throw new UploadCancelled();
        if (ok) res = await attempt();
      }
      if (res.status >= 200 && res.status < 300) {
        const file = (res.body as { file?: FileMeta } | undefined)?.file;
        if (!file || typeof file.id !== 'string') throw new ApiError(500, [{ message: 'Unexpected response from the server.' }]);
        opts.onProgress?.({ loaded: opts.file.size, total: opts.file.size });
        return file;
      }
      throw errorFromResponse(res.status, res.body);
    };

    return {
      promise: run(),
      abort: () => {
        aborted = true;
        current?.abort();
      },
    };
  }

  /**
   * `POST /api/stuff/{id}/cover` (one multipart part `file`) → the new `coverUrl`. A cover that
   * `checkCover` refuses is not sent (400 on field `file`, the server's message). On a 401 the
   * token is refreshed once and the cover sent again. A 413 without the error envelope (a proxy)
   * reads as the server's cover message.
   */
  async uploadCover(stuffId: string, file: File): Promise<string> {
    const problem = checkCover(file);
    if (problem) throw new ApiError(400, [{ message: problem, field: 'file' }]);
    const send = async (): Promise<Response> => {
      const token = this.deps.getToken();
      const fetchImpl = this.deps.fetchImpl ?? ((input, init) => fetch(input, init));
      const form = new FormData();
      form.append('file', file, file.name);
      try {
        return await fetchImpl(`${this.deps.base ?? ''}/api/stuff/${encodeURIComponent(stuffId)}/cover`, {
          method: 'POST',
          // No Content-Type: the browser sets multipart/form-data with its boundary.
          headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
          body: form,
        });
      } catch {
        throw new ApiError(0, [], 'network');
      }
    };
    let res = await send();
    if (res.status === 401 && this.deps.getToken() !== null && (await this.deps.refresh())) res = await send();
    const body = parseJson(await res.text().catch(() => ''));
    if (res.ok) {
      const coverUrl = (body as { coverUrl?: unknown } | undefined)?.coverUrl;
      if (typeof coverUrl !== 'string' || !coverUrl) throw new ApiError(500, [{ message: 'Unexpected response from the server.' }]);
      return coverUrl;
    }
    if (res.status === 413 && parseErrorItems(body).length === 0) throw new ApiError(413, [{ message: COVER_INVALID, field: 'file' }]);
    throw errorFromResponse(res.status, body);
  }

  /** DELETE /api/stuff/{id}/files/{fileId} → 204. */
  async remove(stuffId: string, fileId: string): Promise<void> {
    const send = async (): Promise<Response> => {
      const token = this.deps.getToken();
      const fetchImpl = this.deps.fetchImpl ?? ((input, init) => fetch(input, init));
      try {
        return await fetchImpl((this.deps.base ?? '') + filesPath(stuffId, fileId), {
          method: 'DELETE',
          headers: { Accept: 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        });
      } catch {
        throw new ApiError(0, [], 'network');
      }
    };
    let res = await send();
    if (res.status === 401 && this.deps.getToken() !== null && (await this.deps.refresh())) res = await send();
    if (res.ok) return;
    const text = await res.text().catch(() => '');
    throw errorFromResponse(res.status, parseJson(text));
  }
}

/** Human file size: `812 B`, `200 KB`, `1.5 MB` (1 KB = 1024 bytes). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  const shown = v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toString();
  return `${shown} ${units[u]}`;
}

const TYPE_LABELS: Record<string, string> = {
  'application/pdf': 'PDF',
  'application/zip': 'ZIP archive',
  'application/x-zip-compressed': 'ZIP archive',
  'application/gzip': 'Gzip archive',
  'application/x-tar': 'Tar archive',
  'application/json': 'JSON',
  'application/epub+zip': 'EPUB book',
  'application/msword': 'Word document',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'Word document',
  'application/vnd.ms-powerpoint': 'PowerPoint slides',
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 'PowerPoint slides',
  'application/vnd.ms-excel': 'Excel spreadsheet',
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 'Excel spreadsheet',
  'application/vnd.oasis.opendocument.text': 'OpenDocument text',
  'application/vnd.oasis.opendocument.presentation': 'OpenDocument slides',
  'application/octet-stream': 'File',
  'text/plain': 'Text',
  'text/markdown': 'Markdown',
  'text/csv': 'CSV',
  'text/html': 'HTML',
  'image/png': 'PNG image',
  'image/jpeg': 'JPEG image',
  'image/gif': 'GIF image',
  'image/webp': 'WebP image',
  'image/svg+xml': 'SVG image',
  'video/mp4': 'MP4 video',
  'audio/mpeg': 'MP3 audio',
};

/** A readable name for a content type (`application/pdf` → `PDF`); unknown types as they are. */
export function describeContentType(contentType: string): string {
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  if (!base) return 'File';
  return TYPE_LABELS[base] ?? base;
}
