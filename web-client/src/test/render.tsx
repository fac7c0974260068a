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
