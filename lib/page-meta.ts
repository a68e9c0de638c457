// The watch page's link-preview tags (Open Graph, https://ogp.me/, and the Twitter card): a shared link shows the
// event's title, description and live thumbnail. The page is static HTML; these tags are the only per-event part,
// inserted server-side because link crawlers run no script.

/** What the tags say about an event. */
export interface WatchMeta {
  title: string;
  description: string;
  /** Absolute URLs (og:url and og:image must be absolute). */
  watchUrl: string;
  imageUrl: string;
  imageWidth: number;
}

/** Escapes text for an HTML attribute value or element content. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": '#39' } as const)[c as '&']};`);
}

/**
 * The watch page `html` with the event's `<title>` and preview tags in its head (replacing `<title>…</title>`).
 * Unchanged when the page has no title element.
 */
export function withWatchMeta(html: string, m: WatchMeta): string {
  const start = html.indexOf('<title>');
  const end = html.indexOf('</title>', start);
  if (start === -1 || end === -1) return html;
  const description = m.description.trim() === '' ? `${m.title}, live on onair` : m.description;
  const tag = (attr: 'property' | 'name', key: string, value: string) => `<meta ${attr}="${key}" content="${escapeHtml(value)}" />`;
  const head = [
    `<title>${escapeHtml(m.title)} · onair</title>`,
    `<meta name="description" content="${escapeHtml(description)}" />`,
    tag('property', 'og:type', 'video.other'),
    tag('property', 'og:site_name', 'onair'),
    tag('property', 'og:title', m.title),
    tag('property', 'og:description', description),
    tag('property', 'og:url', m.watchUrl),
    tag('property', 'og:image', m.imageUrl),
    tag('property', 'og:image:type', 'image/jpeg'),
    tag('property', 'og:image:width', String(m.imageWidth)),
    tag('name', 'twitter:card', 'summary_large_image'),
    tag('name', 'twitter:image', m.imageUrl),
  ].join('\n    ');
  return html.slice(0, start) + head + html.slice(end + '</title>'.length);
}
