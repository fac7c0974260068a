// The HTTP auth routes on ms-router. The refresh token lives in an HttpOnly cookie, so every
// call sends credentials; the access token comes back in the body and is kept in memory only.
import { ApiError, parseErrorItems } from './errors';
import type { AuthResponse, ProfilePatch, User } from './types';

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface Credentials {
  email: string;
  password: string;
}

export class AuthHttp {
  private readonly fetchImpl: FetchLike;
  private readonly base: string;

  constructor(fetchImpl?: FetchLike, base = '') {
    // Bind so `fetch` keeps its `this` (window) when called through a field.
    this.fetchImpl = fetchImpl ?? ((input, init) => fetch(input, init));
    this.base = base;
  }

  signUp(credentials: Credentials): Promise<AuthResponse> {
    return this.post<AuthResponse>('/api/users/signup', credentials);
  }

  signIn(credentials: Credentials): Promise<AuthResponse> {
    return this.post<AuthResponse>('/api/users/signin', credentials);
  }

  /** Exchanges the refresh cookie for a new access token (and a rotated cookie). */
  refresh(): Promise<AuthResponse> {
    return this.post<AuthResponse>('/api/users/refresh');
  }

  async signOut(): Promise<void> {
    await this.post<void>('/api/users/signout');
  }

  async me(accessToken: string): Promise<User> {
    const body = await this.send<{ user: User }>('/api/users/me', {
      method: 'GET',
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    return body.user;
  }

  /** `PATCH /api/users/me`: changes the display name; 400 `displayName` when it is not 2 to 40 characters. */
  async updateMe(accessToken: string, patch: ProfilePatch): Promise<User> {
    const body = await this.send<{ user: User }>('/api/users/me', {
      method: 'PATCH',
      headers: { Authorization: `Bearer ${accessToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(patch),
    });
    return body.user;
  }

  private post<T>(path: string, body?: unknown): Promise<T> {
    const init: RequestInit = { method: 'POST', headers: {} };
    if (body !== undefined) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    return this.send<T>(path, init);
  }

  private async send<T>(path: string, init: RequestInit): Promise<T> {
    let res: Response;
    try {
      res = await this.fetchImpl(this.base + path, {
        ...init,
        credentials: 'include',
        headers: { Accept: 'application/json', ...(init.headers as Record<string, string>) },
      });
    } catch {
      throw new ApiError(0, [], 'network');
    }
    const text = await res.text().catch(() => '');
    let body: unknown = undefined;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    if (!res.ok) throw new ApiError(res.status, parseErrorItems(body));
    return body as T;
  }
}
