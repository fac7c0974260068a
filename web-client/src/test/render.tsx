// Minimal React rendering for component tests (happy-dom), without extra libraries.
import { act, type ReactNode } from 'react';
import { createRoot, type Root } from 'react-dom/client';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

export interface Rendered {
  container: HTMLElement;
  root: Root;
  byTestId(id: string): HTMLElement | null;
  unmount(): void;
}

export function render(ui: ReactNode): Rendered {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  act(() => root.render(ui));
  return {
    container,
    root,
    byTestId: (id) => container.querySelector<HTMLElement>(`[data-testid="${id}"]`),
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

/** Back, as the browser's button: waits for the popstate the router listens to. */
export async function back() {
  const popped = new Promise((res) => window.addEventListener('popstate', res, { once: true }));
  window.history.back();
  await popped;
}
