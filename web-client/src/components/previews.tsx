// The stuff page's "Preview": the public thumbnails of the first pages of every PDF that has
// them (`FileMeta.previewUrls`), one group per file, each with a caption saying how much of the
// file it shows. The file itself is never shown here.
import { pageCountOf, previewAlt, previewCaption, previewUrlsOf, type PreviewViewer } from '../api/previews';
import type { FileMeta } from '../api/types';

/**
 * The size the thumbnails are laid out at before they load (an A4 page, portrait, as the
 * server renders it: 800 px on the longer side): the CSS holds every image to this shape and
 * scales it down to the column, so nothing moves as they arrive.
 */
export const PREVIEW_WIDTH = 566;
export const PREVIEW_HEIGHT = 800;

/** Nothing at all when no file has previews. */
export function PdfPreviews({ files, viewer }: { files: FileMeta[]; viewer: PreviewViewer }) {
  const groups = files.map((file) => ({ file, urls: previewUrlsOf(file) })).filter((g) => g.urls.length > 0);
  if (groups.length === 0) return null;
  const several = groups.length > 1;
  return (
    <section className="pdf-previews" aria-labelledby="pdf-previews-heading" data-testid="pdf-previews">
      <h2 id="pdf-previews-heading">Preview</h2>
      {groups.map(({ file, urls }) => (
        <figure key={file.id} className="pdf-preview" data-testid="pdf-preview" data-file-id={file.id}>
          <ol className="pdf-preview-pages">
            {urls.map((url, i) => (
              <li key={`${i}:${url}`}>
                <img
                  className="pdf-preview-page"
                  src={url}
                  alt={previewAlt(i + 1, file.name)}
                  width={PREVIEW_WIDTH}
                  height={PREVIEW_HEIGHT}
                  loading="lazy"
                  decoding="async"
                  data-testid="pdf-preview-page"
                />
              </li>
            ))}
          </ol>
          <figcaption className="muted small">
            {several && (
              <>
                <span className="file-name">{file.name}</span>:{' '}
              </>
            )}
            <span data-testid="pdf-preview-caption">{previewCaption(urls.length, pageCountOf(file), viewer)}</span>
          </figcaption>
        </figure>
      ))}
    </section>
  );
}
