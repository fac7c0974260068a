import { describe, expect, it } from 'vitest';
import { formatPages, pageCountOf, previewAlt, previewCaption, previewUrlsOf } from './previews';

describe('PDF page counts and previews', () => {
  it('reads the page count; anything but a positive whole number (or a missing field) is no count', () => {
    expect(pageCountOf({ pages: 12 })).toBe(12);
    expect(pageCountOf({ pages: 1 })).toBe(1);
    expect(pageCountOf({ pages: null })).toBeNull();
    expect(pageCountOf({})).toBeNull();
    expect(pageCountOf({ pages: 0 })).toBeNull();
    expect(pageCountOf({ pages: 2.5 })).toBeNull();
    expect(pageCountOf({ pages: '3' as unknown as number })).toBeNull();
  });

  it('reads the preview URLs in order; a missing or broken list is none', () => {
    expect(previewUrlsOf({ previewUrls: ['/api/previews/s1/a.jpg', '/api/previews/s1/b.jpg'] })).toEqual(['/api/previews/s1/a.jpg', '/api/previews/s1/b.jpg']);
    expect(previewUrlsOf({ previewUrls: [] })).toEqual([]);
    expect(previewUrlsOf({})).toEqual([]);
    expect(previewUrlsOf({ previewUrls: null as unknown as string[] })).toEqual([]);
    expect(previewUrlsOf({ previewUrls: ['/p/1.jpg', '', 7 as unknown as string] })).toEqual(['/p/1.jpg']);
  });

  it('says "1 page" and "12 pages"', () => {
    expect(formatPages(1)).toBe('1 page');
    expect(formatPages(2)).toBe('2 pages');
    expect(formatPages(12)).toBe('12 pages');
  });

  it('names each preview image by its page and file', () => {
    expect(previewAlt(1, 'notes.pdf')).toBe('Page 1 of notes.pdf');
  });

  it('captions how much the previews show and what the viewer can do', () => {
    expect(previewCaption(3, 12, 'visitor')).toBe('First 3 of 12 pages — buy to get the whole file');
    expect(previewCaption(2, 2, 'visitor')).toBe('Preview of all 2 pages — buy to download the file');
    expect(previewCaption(1, 1, 'visitor')).toBe('Preview of its only page — buy to download the file');
    expect(previewCaption(3, null, 'visitor')).toBe('Preview of the first 3 pages — buy to get the whole file');
    expect(previewCaption(1, null, 'other')).toBe('Preview of the first page');
    expect(previewCaption(3, 12, 'other')).toBe('First 3 of 12 pages');
    expect(previewCaption(3, 12, 'buyer')).toBe('First 3 of 12 pages — you bought it: download it from your Library');
    expect(previewCaption(3, 12, 'seller')).toBe('First 3 of 12 pages — everyone sees this, buyer or not');
  });
});
