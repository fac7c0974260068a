// PDF page counts and previews (`FileMeta.pages`, `FileMeta.previewUrls`): the server reads a
// PDF's page count and renders JPEG thumbnails of its first pages (at most 3), public to anyone.
// The file itself still reaches only its buyers and its seller. Records stored before the feature
// lack both fields: they read as "no count" and "no previews".
import type { FileMeta } from './types';

/** The page count of a PDF, or null (another kind of file, an unreadable PDF, an older record). */
export function pageCountOf(file: Pick<FileMeta, 'pages'>): number | null {
  const n = file.pages;
  return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null;
}

/** The preview images' URLs, first page first; [] when there are none (or an older record). */
export function previewUrlsOf(file: Pick<FileMeta, 'previewUrls'>): string[] {
  const urls = file.previewUrls;
  return Array.isArray(urls) ? urls.filter((u): u is string => typeof u === 'string' && u !== '') : [];
}

/** `1 page`, `12 pages`. */
export function formatPages(n: number): string {
  return n === 1 ? '1 page' : `${n} pages`;
}

/** The text alternative of one preview image: `Page 1 of notes.pdf`. */
export function previewAlt(pageNumber: number, fileName: string): string {
  return `Page ${pageNumber} of ${fileName}`;
}

/**
 * Who looks at a preview, for its caption: `visitor` can buy it now, `buyer` paid for it,
 * `seller` listed it, `other` is anyone else (it cannot be bought right now, or we do not know
 * yet whether they bought it).
 */
export type PreviewViewer = 'visitor' | 'buyer' | 'seller' | 'other';

/**
 * The caption under a file's previews: how much of it they show, then what to do next.
 * `First 3 of 12 pages — buy to get the whole file`; `All 2 pages — buy to download the file`;
 * without a page count `Preview of the first 3 pages`.
 */
export function previewCaption(shown: number, pages: number | null, viewer: PreviewViewer): string {
  const whole = pages !== null && shown >= pages;
  let what: string;
  if (pages === null) what = shown === 1 ? 'Preview of the first page' : `Preview of the first ${shown} pages`;
  else if (whole) what = pages === 1 ? 'Preview of its only page' : `Preview of all ${pages} pages`;
  else what = `First ${shown} of ${formatPages(pages)}`;
  switch (viewer) {
    case 'visitor':
      return `${what} — ${whole ? 'buy to download the file' : 'buy to get the whole file'}`;
    case 'buyer':
      return `${what} — you bought it: download it from your Library`;
    case 'seller':
      return `${what} — everyone sees this, buyer or not`;
    default:
      return what;
  }
}
