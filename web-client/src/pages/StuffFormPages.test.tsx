// @vitest-environment happy-dom
import { act } from 'react';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SessionManager } from '../api/session';
import { SessionProvider } from '../api/session-react';
import { alice, fakeJwt, FakeHttp, FakeSocket } from '../test/fakes';
import { render, step } from '../test/render';
import { SellPage, validateStuff } from './StuffFormPages';

function type(input: HTMLInputElement | HTMLTextAreaElement, value: string) {
  const proto = input instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(input, value);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

describe('validateStuff', () => {
  it('parses the price to cents and checks the contract limits', () => {
    expect(validateStuff({ title: ' Notes ', price: '12.50', description: '' })).toEqual({ fields: {}, priceCents: 1250 });
    expect(validateStuff({ title: '', price: '12.505', description: '' }).fields).toEqual({
      title: 'Enter a title',
      priceCents: 'Enter a price like 12.50',
    });
    expect(validateStuff({ title: 'x', price: '0', description: '' }).fields.priceCents).toMatch(/between/);
    expect(validateStuff({ title: 'x'.repeat(121), price: '1', description: 'y'.repeat(2001) }).fields).toMatchObject({
      title: expect.stringMatching(/120/),
      description: expect.stringMatching(/2000/),
    });
  });
});

describe('<SellPage>', () => {
  let socket: FakeSocket;
  let session: SessionManager;

  beforeEach(async () => {
    window.history.replaceState(null, '', '/sell');
    const http = new FakeHttp();
    http.refreshResults.push({ user: alice, accessToken: fakeJwt(Math.floor(Date.now() / 1000) + 900) });
    session = new SessionManager({ http, createSocket: (a) => (socket = new FakeSocket(a)) });
    await session.start();
  });
  afterEach(() => session.stop());

  it('shows server field errors next to their fields, focuses the first, and other errors in a banner', async () => {
    socket.responders.set('stuff:create', () => ({
      status: 400,
      errors: [
        { message: 'Price must be at most 100000000 cents', field: 'priceCents' },
        { message: 'Title is not allowed', field: 'title' },
        { message: 'Slow down', field: 'somethingElse' },
      ],
    }));
    const r = render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    act(() => type(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => type(r.byTestId('price-input') as HTMLInputElement, '12.50'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());

    expect(socket.lastEmitted('stuff:create')!.payload).toEqual({ title: 'Notes', priceCents: 1250 });
    expect(r.byTestId('error-title')!.textContent).toBe('Title is not allowed');
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Price must be at most 100000000 cents');
    const title = r.byTestId('title-input')!;
    expect(title.getAttribute('aria-invalid')).toBe('true');
    expect(title.getAttribute('aria-describedby')).toContain('error-title');
    expect(document.activeElement).toBe(title);
    const banner = r.byTestId('form-error')!;
    expect(banner.getAttribute('role')).toBe('alert');
    expect(banner.textContent).toBe('Slow down');
    // Labels are tied to inputs.
    expect(r.container.querySelector('label[for="field-title"]')!.textContent).toBe('Title');
    r.unmount();
  });

  it('validates on the client before sending', async () => {
    const r = render(
      <SessionProvider session={session}>
        <SellPage />
      </SessionProvider>,
    );
    await step(() => socket.acceptConnect());
    act(() => type(r.byTestId('title-input') as HTMLInputElement, 'Notes'));
    act(() => type(r.byTestId('price-input') as HTMLInputElement, 'cheap'));
    await step(() => (r.byTestId('stuff-submit') as HTMLButtonElement).click());
    expect(socket.lastEmitted('stuff:create')).toBeUndefined();
    expect(r.byTestId('error-priceCents')!.textContent).toBe('Enter a price like 12.50');
    expect(document.activeElement).toBe(r.byTestId('price-input'));
    r.unmount();
  });
});
