// A stuff's cover (`coverUrl`, a thumbnail the server made): the image, or a neutral placeholder
// when there is none. Lazy-loaded, with the title as its text alternative.
export function Cover({ url, title, className }: { url: string | null | undefined; title: string; className: string }) {
  if (!url) return <div className={`${className} cover-placeholder`} aria-hidden="true" data-testid="cover-placeholder" />;
  return <img className={className} src={url} alt={title} loading="lazy" decoding="async" data-testid="cover-image" />;
}
