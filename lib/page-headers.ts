// Security headers of the HTML pages (home, watch, console): a strict CSP (no inline script or style, nothing but
// this origin for scripts, styles and connections), nosniff, a referrer policy, and framing rules: the console is
// never framed, the watch page may be embedded where ONAIR_WATCH_FRAME_ANCESTORS allows.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The HTML pages the server serves. */
export type PageKind = 'home' | 'watch' | 'console';

/** The settings the page headers depend on. */
export interface PageHeaderSettings {
  /** Configured ad creative; its origin may differ from ours (and be plain http). */
  adCreativeUrl?: string | undefined;
  /** Public base URL; its host is the WebSocket host when set (behind a proxy that rewrites Host). */
  publicUrl?: string | undefined;
  /** CSP `frame-ancestors` source list of the watch page. */
  watchFrameAncestors: string;
}

/** One `frame-ancestors` source: `*`, `'self'`, `'none'`, a scheme (`https:`) or a host source (`https://*.example.com:443`). */
const FRAME_SOURCE =
  /^(\*|'self'|'none'|[a-z][a-z0-9+.-]*:|([a-z][a-z0-9+.-]*:\/\/)?(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:(\d{1,5}|\*))?(\/[^\s;,'"]*)?)$/i;

/** Why a `frame-ancestors` source list is not usable, or undefined when it is. */
export function frameAncestorsError(list: string): string | undefined {
  const sources = list.trim().split(/\s+/).filter(Boolean);
  if (sources.length === 0) return "empty; write * (anywhere), 'self', 'none' or origins like https://news.example";
  const bad = sources.find((s) => !FRAME_SOURCE.test(s));
  if (bad !== undefined) return `"${bad}" is not a CSP source; write * (anywhere), 'self', 'none' or origins like https://news.example`;
  if (sources.length > 1 && sources.some((s) => s.toLowerCase() === "'none'")) return "'none' must stand alone";
  return undefined;
}

/** Which page a request path serves, if any. */
export function pageKind(path: string): PageKind | undefined {
  if (path === '/' || path === '/index.html') return 'home';
  if (path === '/watch.html' || /^\/watch\/[^/]+\/?$/.test(path)) return 'watch';
  if (path === '/console' || path === '/console.html' || path.startsWith('/console/')) return 'console';
  return undefined;
}

/** A Host header safe to put in a header value (name or IP literal, optional port), else undefined. */
function safeHost(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  return /^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(host) ? host : undefined;
}

function originOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Content-Security-Policy of a page. `host` is the request's Host header (the WebSocket host when no public URL
 * is set). Images and media may come from any https: origin (an operator may give each ad break its own creative)
 * and from the configured creative's origin; scripts, styles and connections only from this origin.
 */
export function contentSecurityPolicy(kind: PageKind, settings: PageHeaderSettings, host?: string): string {
  const creative = originOf(settings.adCreativeUrl);
  const wsHost = safeHost(settings.publicUrl === undefined ? host : new URL(settings.publicUrl).host);
  const extra = (list: (string | undefined)[]) => list.filter((s): s is string => s !== undefined).join(' ');
  const frameAncestors = kind === 'console' ? "'none'" : kind === 'watch' ? settings.watchFrameAncestors.trim() : "'self'";
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    // No blob: workers: the ESM build of hls.js we bundle transmuxes on the main thread. Media plays through
    // MediaSource (blob:).
    "worker-src 'self'",
    extra(["img-src 'self' data: blob: https:", creative]),
    // data: for the empty WebVTT track (`data:,WEBVTT`) hls.js attaches for DATERANGE metadata (ad breaks).
    extra(["media-src 'self' data: blob: https:", creative]),
    extra(["connect-src 'self'", wsHost && `ws://${wsHost}`, wsHost && `wss://${wsHost}`]),
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    `frame-ancestors ${frameAncestors}`,
  ].join('; ');
}

/** Every header a page response carries. */
export function pageHeaders(kind: PageKind, settings: PageHeaderSettings, host?: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-security-policy': contentSecurityPolicy(kind, settings, host),
    'x-content-type-options': 'nosniff',
    'referrer-policy': kind === 'console' ? 'same-origin' : 'strict-origin-when-cross-origin',
  };
  // For browsers without CSP frame-ancestors; X-Frame-Options cannot express an allow-list, so only where it is 'none'.
  if (kind === 'console' || (kind === 'watch' && settings.watchFrameAncestors.trim().toLowerCase() === "'none'"))
    headers['x-frame-options'] = 'DENY';
  return headers;
}

/** Middleware for the public app: the page headers on the page routes (GET/HEAD), nothing elsewhere. */
export function pageHeadersMiddleware(settings: PageHeaderSettings): (req: IncomingMessage, res: ServerResponse, next: () => void) => void {
  return (req, res, next) => {
    const kind = req.method === 'GET' || req.method === 'HEAD' ? pageKind((req.url ?? '/').split('?', 1)[0]!) : undefined;
    if (kind !== undefined) for (const [k, v] of Object.entries(pageHeaders(kind, settings, req.headers.host))) res.setHeader(k, v);
    next();
  };
}
