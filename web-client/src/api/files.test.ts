import { beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './errors';
import {
  checkCover,
  checkFile,
  COVER_INVALID,
  describeContentType,
  EMPTY_FILE,
  FILE_REQUIRED,
  FILE_TOO_LARGE,
  FilesApi,
  formatBytes,
  MAX_COVER_BYTES,
  MAX_FILE_BYTES,
  UploadCancelled,
  type UploadProgress,
} from './files';
import type { FileMeta } from './types';
import { flush, FakeXhr } from '../test/fakes';

const meta: FileMeta = { id: 'f1', name: 'notes.pdf', sizeBytes: 5, contentType: 'application/pdf', sha256: 'ab'.repeat(32) };
const file = (size = 5, name = 'notes.pdf') => new File([new Uint8Array(size)], name, { type: 'application/pdf' });

function api(token: { value: string | null } = { value: 't1' }, refresh = vi.fn(async () => true)) {
  return {
    refresh,
    files: new FilesApi({ getToken: () => token.value, refresh, createXhr: () => new FakeXhr() }),
  };
}

describe('FilesApi.upload', () => {
  beforeEach(() => FakeXhr.reset());

  it('POSTs one multipart part named `file` with the bearer token and reports progress', async () => {
    const { files } = api();
    const seen: UploadProgress[] = [];
    const handle = files.upload({ stuffId: 's/1', file: file(), onProgress: (p) => seen.push(p) });
    const xhr = FakeXhr.last();
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('/api/stuff/s%2F1/files');
    expect(xhr.headers.Authorization).toBe('Bearer t1');
    const part = xhr.body!.get('file') as File;
    expect(part.name).toBe('notes.pdf');
    expect(part.size).toBe(5);
    expect([...xhr.body!.keys()]).toEqual(['file']);

    xhr.progress(2, 10);
    xhr.progress(10, 10);
    xhr.respond(201, { file: meta });
    await expect(handle.promise).resolves.toEqual(meta);
    expect(seen).toEqual([
      { loaded: 0, total: 5 },
      { loaded: 2, total: 10 },
      { loaded: 10, total: 10 },
      { loaded: 5, total: 5 },
    ]);
  });

  it('PUTs a new version to the file URL', async () => {
    const { files } = api();
    const handle = files.upload({ stuffId: 's1', file: file(), replaceFileId: 'f1' });
    const xhr = FakeXhr.last();
    expect(xhr.method).toBe('PUT');
    expect(xhr.url).toBe('/api/stuff/s1/files/f1');
    xhr.respond(200, { file: { ...meta, sha256: 'cd'.repeat(32) } });
    expect((await handle.promise).sha256).toBe('cd'.repeat(32));
  });

  it('abort() cancels the request and rejects with UploadCancelled', async () => {
    const { files } = api();
    const handle = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().progress(1, 5);
    handle.abort();
    expect(FakeXhr.last().aborted).toBe(true);
    await expect(handle.promise).rejects.toBeInstanceOf(UploadCancelled);
  });

  it('maps a 413 to "File too large", with or without the error envelope', async () => {
    const { files } = api();
    const a = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(413, { errors: [{ message: 'File too large' }] });
    const errA = (await a.promise.catch((e: unknown) => e)) as ApiError;
    expect(errA).toBeInstanceOf(ApiError);
    expect(errA.status).toBe(413);
    expect(errA.message).toBe(FILE_TOO_LARGE);

    const b = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(413, '<html>Request Entity Too Large</html>');
    const errB = (await b.promise.catch((e: unknown) => e)) as ApiError;
    expect(errB.status).toBe(413);
    expect(errB.message).toBe(FILE_TOO_LARGE);
  });

  it('refuses a file over 50 MiB without sending it', async () => {
    const { files } = api();
    const big = { name: 'big.zip', size: MAX_FILE_BYTES + 1, type: 'application/zip' } as File;
    const err = (await files.upload({ stuffId: 's1', file: big }).promise.catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(413);
    expect(err.message).toBe(FILE_TOO_LARGE);
    expect(FakeXhr.all).toHaveLength(0);
  });

  it('on a 401 refreshes the token once and sends again with the new one', async () => {
    const token = { value: 'old' as string | null };
    const refresh = vi.fn(async () => {
      token.value = 'new';
      return true;
    });
    const { files } = api(token, refresh);
    const handle = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(401, { errors: [{ message: 'Not authorized' }] });
    await flush();
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(FakeXhr.all).toHaveLength(2);
    expect(FakeXhr.last().headers.Authorization).toBe('Bearer new');
    FakeXhr.last().respond(201, { file: meta });
    await expect(handle.promise).resolves.toEqual(meta);
  });

  it('a second 401 (or a failed refresh) is an error; no endless retries', async () => {
    const { files, refresh } = api();
    const handle = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(401, { errors: [{ message: 'Not authorized' }] });
    await flush();
    FakeXhr.last().respond(401, { errors: [{ message: 'Not authorized' }] });
    const err = (await handle.promise.catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(401);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(FakeXhr.all).toHaveLength(2);

    const failing = api({ value: 't' }, vi.fn(async () => false));
    const h2 = failing.files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(401, { errors: [{ message: 'Not authorized' }] });
    expect(((await h2.promise.catch((e: unknown) => e)) as ApiError).status).toBe(401);
    expect(FakeXhr.all).toHaveLength(3);
  });

  it('passes the server messages through (403, 409, 400 on field file) and network errors', async () => {
    const { files } = api();
    const cases: Array<[number, unknown, string]> = [
      [403, { errors: [{ message: 'You do not own this stuff' }] }, 'You do not own this stuff'],
      [409, { errors: [{ message: 'A stuff can have at most 10 files' }] }, 'A stuff can have at most 10 files'],
      [409, { errors: [{ message: 'Cannot edit a stuff while it is being checked out' }] }, 'Cannot edit a stuff while it is being checked out'],
      [400, { errors: [{ message: 'A file is required', field: 'file' }] }, 'A file is required'],
    ];
    for (const [status, body, message] of cases) {
      const h = files.upload({ stuffId: 's1', file: file() });
      FakeXhr.last().respond(status, body);
      const err = (await h.promise.catch((e: unknown) => e)) as ApiError;
      expect(err.status).toBe(status);
      expect(err.message).toBe(message);
    }
    const h = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().fail();
    const err = (await h.promise.catch((e: unknown) => e)) as ApiError;
    expect(err.kind).toBe('network');
    expect(err.status).toBe(0);
  });

  it('a 2xx without {file} is an error, not a crash', async () => {
    const { files } = api();
    const h = files.upload({ stuffId: 's1', file: file() });
    FakeXhr.last().respond(201, 'not json');
    expect(((await h.promise.catch((e: unknown) => e)) as ApiError).status).toBe(500);
  });
});

describe('FilesApi.remove', () => {
  it('DELETEs with the bearer token; 204 resolves', async () => {
    const fetchImpl = vi.fn(async () => new Response(null, { status: 204 }));
    const files = new FilesApi({ getToken: () => 't1', refresh: async () => true, fetchImpl });
    await files.remove('s1', 'f 1');
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/stuff/s1/files/f%201');
    expect(init.method).toBe('DELETE');
    expect((init.headers as Record<string, string>).Authorization).toBe('Bearer t1');
  });

  it('refreshes once on 401 and reports a 409 with its message', async () => {
    let token = 'old';
    const answers = [
      new Response(JSON.stringify({ errors: [{ message: 'Not authorized' }] }), { status: 401 }),
      new Response(JSON.stringify({ errors: [{ message: 'This stuff has already been sold' }] }), { status: 409 }),
    ];
    const fetchImpl = vi.fn(async () => answers.shift()!);
    const refresh = vi.fn(async () => {
      token = 'new';
      return true;
    });
    const files = new FilesApi({ getToken: () => token, refresh, fetchImpl });
    const err = (await files.remove('s1', 'f1').catch((e: unknown) => e)) as ApiError;
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(((fetchImpl.mock.calls[1] as unknown as [string, RequestInit])[1].headers as Record<string, string>).Authorization).toBe('Bearer new');
    expect(err.status).toBe(409);
    expect(err.message).toBe('This stuff has already been sold');
  });
});

describe('FilesApi.uploadCover', () => {
  const png = (size = 8, type = 'image/png', name = 'cover.png') => new File([new Uint8Array(size)], name, { type });
  const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
  const callOf = (fetchImpl: ReturnType<typeof vi.fn>, i = 0) => fetchImpl.mock.calls[i] as unknown as [string, RequestInit];

  it('POSTs one multipart part named `file` with the bearer token; 200 resolves with the coverUrl', async () => {
    const fetchImpl = vi.fn(async () => json(200, { coverUrl: '/api/covers/s%201/abc.jpg' }));
    const files = new FilesApi({ getToken: () => 't1', refresh: async () => true, fetchImpl });
    await expect(files.uploadCover('s 1', png())).resolves.toBe('/api/covers/s%201/abc.jpg');
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = callOf(fetchImpl);
    expect(url).toBe('/api/stuff/s%201/cover');
    expect(init.method).toBe('POST');
    const headers = init.headers as Record<string, string>;
    expect(headers.Authorization).toBe('Bearer t1');
    expect(headers).not.toHaveProperty('Content-Type'); // the browser adds the multipart boundary
    const body = init.body as FormData;
    expect([...body.keys()]).toEqual(['file']);
    const part = body.get('file') as File;
    expect(part.name).toBe('cover.png');
    expect(part.size).toBe(8);
  });

  it('a 400 on field `file` is an ApiError with the field message', async () => {
    const fetchImpl = vi.fn(async () => json(400, { errors: [{ message: COVER_INVALID, field: 'file' }] }));
    const files = new FilesApi({ getToken: () => 't1', refresh: async () => true, fetchImpl });
    const err = (await files.uploadCover('s1', png()).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.fieldErrors()).toEqual({ file: COVER_INVALID });
  });

  it('on a 401 refreshes the token once and sends again with the new one', async () => {
    let token = 'old';
    const answers = [json(401, { errors: [{ message: 'Not authorized' }] }), json(200, { coverUrl: '/api/covers/s1/new.jpg' })];
    const fetchImpl = vi.fn(async () => answers.shift()!);
    const refresh = vi.fn(async () => {
      token = 'new';
      return true;
    });
    const files = new FilesApi({ getToken: () => token, refresh, fetchImpl });
    await expect(files.uploadCover('s1', png())).resolves.toBe('/api/covers/s1/new.jpg');
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);
    expect((callOf(fetchImpl, 1)[1].headers as Record<string, string>).Authorization).toBe('Bearer new');
    expect((callOf(fetchImpl, 1)[1].body as FormData).get('file')).toBeInstanceOf(File);
  });

  it('a second 401 or a failed refresh is an error; no endless retries', async () => {
    const fetchImpl = vi.fn(async () => json(401, { errors: [{ message: 'Not authorized' }] }));
    const refresh = vi.fn(async () => true);
    const files = new FilesApi({ getToken: () => 't', refresh, fetchImpl });
    const err = (await files.uploadCover('s1', png()).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(401);
    expect(err.message).toBe('Not authorized');
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(fetchImpl).toHaveBeenCalledTimes(2);

    const once = vi.fn(async () => json(401, { errors: [{ message: 'Not authorized' }] }));
    const failing = new FilesApi({ getToken: () => 't', refresh: async () => false, fetchImpl: once });
    expect(((await failing.uploadCover('s1', png()).catch((e: unknown) => e)) as ApiError).status).toBe(401);
    expect(once).toHaveBeenCalledTimes(1);
  });

  it('refuses a wrong type or more than 5 MiB without sending, with the server message', async () => {
    const fetchImpl = vi.fn(async () => json(200, { coverUrl: '/x.jpg' }));
    const files = new FilesApi({ getToken: () => 't', refresh: async () => true, fetchImpl });
    const gif = png(8, 'image/gif', 'a.gif');
    const big = { name: 'big.png', size: MAX_COVER_BYTES + 1, type: 'image/png' } as File;
    for (const f of [gif, big]) {
      const err = (await files.uploadCover('s1', f).catch((e: unknown) => e)) as ApiError;
      expect(err.status).toBe(400);
      expect(err.fieldErrors()).toEqual({ file: COVER_INVALID });
    }
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('passes 403/404/409 messages through; a bare 413, a network failure and a body without coverUrl are errors too', async () => {
    const cases: Array<[Response, number, string]> = [
      [json(403, { errors: [{ message: 'You do not own this stuff' }] }), 403, 'You do not own this stuff'],
      [json(404, { errors: [{ message: 'Stuff not found' }] }), 404, 'Stuff not found'],
      [json(409, { errors: [{ message: 'This stuff has already been sold' }] }), 409, 'This stuff has already been sold'],
      [new Response('<html>Request Entity Too Large</html>', { status: 413 }), 413, COVER_INVALID],
      [json(200, {}), 500, 'Unexpected response from the server.'],
    ];
    for (const [res, status, message] of cases) {
      const files = new FilesApi({ getToken: () => 't', refresh: async () => true, fetchImpl: async () => res });
      const err = (await files.uploadCover('s1', png()).catch((e: unknown) => e)) as ApiError;
      expect([err.status, err.message]).toEqual([status, message]);
    }
    const offline = new FilesApi({
      getToken: () => 't',
      refresh: async () => true,
      fetchImpl: async () => {
        throw new TypeError('Failed to fetch');
      },
    });
    const err = (await offline.uploadCover('s1', png()).catch((e: unknown) => e)) as ApiError;
    expect([err.status, err.kind]).toEqual([0, 'network']);
  });
});

describe('file helpers', () => {
  it('checkCover takes PNG, JPEG and WebP up to 5 MiB and says what the server would', () => {
    expect(checkCover({ size: 1, type: 'image/png' })).toBeNull();
    expect(checkCover({ size: MAX_COVER_BYTES, type: 'image/jpeg' })).toBeNull();
    expect(checkCover({ size: 1, type: 'image/webp' })).toBeNull();
    expect(checkCover({ size: MAX_COVER_BYTES + 1, type: 'image/png' })).toBe(COVER_INVALID);
    expect(checkCover({ size: 1, type: 'image/gif' })).toBe(COVER_INVALID);
    expect(checkCover({ size: 1, type: '' })).toBe(COVER_INVALID);
    expect(checkCover(null)).toBe(FILE_REQUIRED);
  });

  it('checkFile refuses files over 50 MiB and empty files', () => {
    expect(checkFile({ size: 1 })).toBeNull();
    expect(checkFile({ size: MAX_FILE_BYTES })).toBeNull();
    expect(checkFile({ size: MAX_FILE_BYTES + 1 })).toBe(FILE_TOO_LARGE);
    expect(checkFile({ size: 0 })).toBe(EMPTY_FILE);
  });

  it('formatBytes is human', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(200 * 1024)).toBe('200 KB');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(1.5 * 1024 * 1024)).toBe('1.5 MB');
    expect(formatBytes(MAX_FILE_BYTES)).toBe('50 MB');
  });

  it('describeContentType names common types and passes others through', () => {
    expect(describeContentType('application/pdf')).toBe('PDF');
    expect(describeContentType('text/plain; charset=utf-8')).toBe('Text');
    expect(describeContentType('application/x-custom')).toBe('application/x-custom');
    expect(describeContentType('')).toBe('File');
  });
});
