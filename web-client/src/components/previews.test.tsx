// @vitest-environment happy-dom
// Page counts in the file lists (public list and downloads) and the stuff page's PDF previews.
import axe from 'axe-core';
import { describe, expect, it } from 'vitest';
import type { Delivery, FileMeta } from '../api/types';
import { render } from '../test/render';
import { DeliveryView, FileList, type DeliveryState } from './delivery';
import { PdfPreviews } from './previews';

const notes: FileMeta = {
  id: 'f1',
  name: 'notes.pdf',
  sizeBytes: 1_572_864,
  contentType: 'application/pdf',
  sha256: 'ab'.repeat(32),
  pages: 12,
  previewUrls: ['/api/previews/s1/f1-1.jpg', '/api/previews/s1/f1-2.jpg', '/api/previews/s1/f1-3.jpg'],
};
const cheatSheet: FileMeta = {
  id: 'f2',
  name: 'cheat-sheet.pdf',
  sizeBytes: 40_000,
  contentType: 'application/pdf',
  sha256: 'cd'.repeat(32),
  pages: 1,
  previewUrls: ['/api/previews/s1/f2-1.jpg'],
};
const code: FileMeta = { id: 'f3', name: 'code.zip', sizeBytes: 812, contentType: 'application/zip', sha256: 'ef'.repeat(32), pages: null, previewUrls: [] };
/** Stored before previews existed: neither field. */
const oldRecord: FileMeta = { id: 'f4', name: 'old.pdf', sizeBytes: 2048, contentType: 'application/pdf', sha256: '01'.repeat(32) };

const row = (r: ReturnType<typeof render>, id: string) => r.byTestId(`file-item-${id}`)!;
const pagesText = (el: Element) => el.querySelector('[data-testid="file-pages"]')?.textContent ?? null;

describe('page counts in the file list', () => {
  it('shows "12 pages" and "1 page" next to a PDF’s size and type, nothing for other files or old records', () => {
    const r = render(<FileList files={[notes, cheatSheet, code, oldRecord]} />);
    expect(pagesText(row(r, 'f1'))).toBe('12 pages');
    expect(row(r, 'f1').querySelector('.file-facts')!.textContent).toBe('1.5 MB · PDF · 12 pages');
    expect(pagesText(row(r, 'f2'))).toBe('1 page');
    expect(pagesText(row(r, 'f3'))).toBeNull();
    expect(row(r, 'f3').querySelector('.file-facts')!.textContent).toBe('812 B · ZIP archive');
    expect(pagesText(row(r, 'f4'))).toBeNull();
    expect(row(r, 'f4').querySelector('[data-testid="file-name"]')!.textContent).toBe('old.pdf');
    expect(row(r, 'f4').querySelector('.file-facts')!.textContent).toBe('2 KB · PDF');
    r.unmount();
  });

  it('shows the page count in the downloads of the order page and the Library', () => {
    const later = new Date(Date.now() + 300_000).toISOString();
    const delivery: Delivery = {
      secretNote: null,
      files: [
        { ...notes, url: '/api/files/f1?sig=1', expiresAt: later },
        { ...oldRecord, url: '/api/files/f4?sig=1', expiresAt: later },
      ],
    };
    const state: DeliveryState = { delivery, error: null, loading: false, reload: async () => delivery };
    const r = render(<DeliveryView state={state} />);
    expect(pagesText(r.byTestId('download-f1')!)).toBe('12 pages');
    expect(pagesText(r.byTestId('download-f4')!)).toBeNull();
    r.unmount();
  });
});

describe('<PdfPreviews>', () => {
  it('shows each file’s previews in page order, lazy, sized before they load, named by page and file', () => {
    const r = render(<PdfPreviews files={[notes, code, cheatSheet]} viewer="visitor" />);
    const section = r.byTestId('pdf-previews')!;
    expect(section.querySelector('h2')!.textContent).toBe('Preview');
    expect(section.getAttribute('aria-labelledby')).toBe(section.querySelector('h2')!.id);
    const groups = Array.from(section.querySelectorAll<HTMLElement>('[data-testid="pdf-preview"]'));
    expect(groups.map((g) => g.getAttribute('data-file-id'))).toEqual(['f1', 'f2']);

    const imgs = Array.from(groups[0]!.querySelectorAll<HTMLImageElement>('[data-testid="pdf-preview-page"]'));
    expect(imgs.map((i) => i.getAttribute('src'))).toEqual(notes.previewUrls);
    expect(imgs.map((i) => i.alt)).toEqual(['Page 1 of notes.pdf', 'Page 2 of notes.pdf', 'Page 3 of notes.pdf']);
    for (const img of imgs) {
      expect(img.getAttribute('loading')).toBe('lazy');
      expect(img.getAttribute('width')).toBe('566');
      expect(img.getAttribute('height')).toBe('800');
    }
    const caption = (g: HTMLElement) => g.querySelector('figcaption')!.textContent;
    // Two files with previews: each caption names its file.
    expect(caption(groups[0]!)).toBe('notes.pdf: First 3 of 12 pages — buy to get the whole file');
    expect(caption(groups[1]!)).toBe('cheat-sheet.pdf: Preview of its only page — buy to download the file');
    expect(groups[1]!.querySelector('img')!.alt).toBe('Page 1 of cheat-sheet.pdf');
    r.unmount();
  });

  it('one file with previews: the caption alone; without a page count it says only how many are shown', () => {
    const r = render(<PdfPreviews files={[{ ...notes, pages: null }]} viewer="other" />);
    expect(r.byTestId('pdf-preview-caption')!.textContent).toBe('Preview of the first 3 pages');
    expect(r.container.querySelector('figcaption')!.textContent).toBe('Preview of the first 3 pages');
    r.unmount();
  });

  it('renders nothing when no file has previews, old records included', () => {
    const r = render(<PdfPreviews files={[code, oldRecord]} viewer="visitor" />);
    expect(r.container.innerHTML).toBe('');
    r.unmount();
    const empty = render(<PdfPreviews files={[]} viewer="visitor" />);
    expect(empty.container.innerHTML).toBe('');
    empty.unmount();
  });

  it('passes axe-core', async () => {
    const r = render(
      <main>
        <h1>Notes</h1>
        <PdfPreviews files={[notes, cheatSheet]} viewer="visitor" />
      </main>,
    );
    const res = await axe.run(r.container, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      rules: { 'color-contrast': { enabled: false } },
    });
    expect(res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.html).join(' | ')}`)).toEqual([]);
    r.unmount();
  });
});
