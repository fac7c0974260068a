// Minimal React rendering for component tests (happy-dom), without extra libraries. The tree is
// inside a BrowserRouter on happy-dom's real `window.history`, as in the app (main.tsx), so tests can set the
// URL before rendering and read `window.location` after a navigation.
import { act, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { BrowserRouter } from 'react-router';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

export interface Rendered {
  container: HTMLElement;
  root: Root;
  byTestId(id: string): HTMLElement | null;
  /** Renders `ui` in place of the first tree (same router, so state below it is kept). */
  rerender(ui: ReactNode): void;
  unmount(): void;
}

export function render(ui: ReactNode): Rendered {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  act(() => root.render(<BrowserRouter useTransitions={false}>{ui}</BrowserRouter>));
  return {
    container,
    root,
    byTestId: (id) => container.querySelector<HTMLElement>(`[data-testid="${id}"]`),
    rerender: (next) => act(() => root.render(<BrowserRouter useTransitions={false}>{next}</BrowserRouter>)),
    unmount: () => {
      act(() => root.unmount());
      container.remove();
    },
  };
}

/** Runs a state-changing step inside act and lets effects and promises settle. */
export async function step(fn: () => unknown = () => undefined): Promise<void> {
  await act(async () => {
    await fn();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  });
}

/** Sets an input's or textarea's value the way typing does (React sees an `input` event). */
export function typeInto(input: HTMLInputElement | HTMLTextAreaElement, value: string) {
  const proto = input instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
  Object.getOwnPropertyDescriptor(proto, 'value')!.set!.call(input, value);
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

/** Picks an option of a select the way a user does (React sees a `change` event). */
export function choose(select: HTMLSelectElement, value: string) {
  Object.getOwnPropertyDescriptor(HTMLSelectElement.prototype, 'value')!.set!.call(select, value);
  select.dispatchEvent(new Event('change', { bubbles: true }));
}

/**
 * Goes to `to` from outside the app, as a link the router did not render would: a new history
 * entry, then the `popstate` the BrowserRouter listens to.
 */
export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate', { state: null }));
}

/** Back, as the browser's button: waits for the popstate the router listens to. */
export async function back() {
  const popped = new Promise((res) => window.addEventListener('popstate', res, { once: true }));
  window.history.back();
  await popped;
}
