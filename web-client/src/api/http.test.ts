import { describe, expect, it, vi } from 'vitest';
import { ApiError } from './errors';
import { AuthHttp } from './http';

const json = (status: number, body: unknown) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

describe('AuthHttp', () => {
  it('posts credentials as JSON with cookies included', async () => {
    const fetchImpl = vi.fn(async () => json(201, { user: { id: 'u', email: 'a@b.c', role: 'user' }, accessToken: 't' }));
    const http = new AuthHttp(fetchImpl);
    const res = await http.signUp({ email: 'a@b.c', password: 'password1' });
    expect(res.accessToken).toBe('t');
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/users/signup');
    expect(init).toMatchObject({ method: 'POST', credentials: 'include', body: '{"email":"a@b.c","password":"password1"}' });
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json');
  });

  it('refresh and signout send the cookie; 204 has no body', async () => {
    const fetchImpl = vi.fn(async () => json(204, undefined));
    await new AuthHttp(fetchImpl).signOut();
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/users/signout');
    expect(init.credentials).toBe('include');
  });

  it('turns the error envelope into an ApiError with field errors', async () => {
    const http = new AuthHttp(async () => json(400, { errors: [{ message: 'Email in use', field: 'email' }] }));
    const err = (await http.signUp({ email: 'a@b.c', password: 'password1' }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.fieldErrors()).toEqual({ email: 'Email in use' });
  });

  it('a non-JSON error body becomes a readable generic message', async () => {
    const http = new AuthHttp(async () => new Response('<html>Bad gateway</html>', { status: 502 }));
    const err = (await http.signIn({ email: 'a@b.c', password: 'x' }).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(502);
    expect(err.errors[0]!.message).toBe('Something went wrong. Please try again.');
  });

  it('a failed fetch is a network error with status 0', async () => {
    const http = new AuthHttp(async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(http.refresh()).rejects.toMatchObject({ status: 0, kind: 'network' });
  });

  it('changes the display name with PATCH /api/users/me, the bearer token and JSON', async () => {
    const user = { id: 'u', email: 'a@b.c', role: 'user', displayName: 'Ada' };
    const fetchImpl = vi.fn(async () => json(200, { user }));
    await expect(new AuthHttp(fetchImpl).updateMe('tok', { displayName: 'Ada' })).resolves.toEqual(user);
    const [url, init] = fetchImpl.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/users/me');
    expect(init).toMatchObject({ method: 'PATCH', credentials: 'include', body: '{"displayName":"Ada"}' });
    expect(init.headers).toMatchObject({ Authorization: 'Bearer tok', 'Content-Type': 'application/json' });
  });

  it('a refused display name is a 400 on the displayName field', async () => {
    const message = 'Display name must be 2 to 40 characters';
    const http = new AuthHttp(async () => json(400, { errors: [{ message, field: 'displayName' }] }));
    const err = (await http.updateMe('tok', { displayName: 'A' }).catch((e: unknown) => e)) as ApiError;
    expect(err.status).toBe(400);
    expect(err.fieldErrors()).toEqual({ displayName: message });
  });
});
