// The HLS naming scheme under /live/<eventId>/ (shared by origin and edge): how media objects are named, and
// parsing and validating request paths.

/** The kinds of HLS object the edge serves; each has its own TTL and headers. */
export type HlsKind = 'master' | 'playlist' | 'init' | 'segment' | 'part' | 'thumbnail';

/** A validated HLS request: what it names, its cache key and the path to ask an origin for. */
export interface HlsObject {
  /** Event id from the URL (for a clip, under `/clips/`: the clip id). */
  eventId: string;
  /** Set for `/clips/<clipId>/…`: a clip, always answered from recordings (origin/recording/clip.ts). */
  clip?: true;
  /** Rendition name; absent for the master playlist. */
  rendition?: string;
  /** What kind of object the path names. */
  kind: HlsKind;
  /** Cache key: the path plus the canonical LL-HLS query (same string as `upstreamPath`). */
  cacheKey: string;
  /** Path (with canonical query) to request at an origin base URL. */
  upstreamPath: string;
  /** True for a media playlist request carrying `_HLS_msn` (a blocking playlist reload). */
  blocking: boolean;
  /** For an init segment, segment or part: the numbers its name carries. */
  media?: MediaName;
  /** For kind `thumbnail`: which picture or track (origin/thumbnails/layout.ts). */
  preview?: PreviewName;
}

/** The event's pictures: the live thumbnail (a recording's poster once not live), the seek-preview VTT and its sprite sheets. */
export type PreviewName = { file: 'thumbnail' } | { file: 'vtt' } | { file: 'sprite'; sheet: number };

/** Live thumbnail (or poster) file name, under /live/<event>/. */
export const THUMBNAIL_NAME = 'thumbnail.jpg';
/** Seek-preview WebVTT file name, under /live/<event>/. */
export const PREVIEW_VTT_NAME = 'thumbnails.vtt';

/** What a media object's file name says: its kind and numbers. */
export type MediaName = { kind: 'init'; run: number } | { kind: 'segment'; msn: number } | { kind: 'part'; msn: number; index: number };

/** Segment file name, relative to the media playlist. */
export const segmentUri = (msn: number): string => `seg-${msn}.m4s`;
/** Part file name, relative to the media playlist. */
export const partUri = (msn: number, index: number): string => `part-${msn}.${index}.m4s`;
/** Init segment file name (one per run of the encoder), relative to the media playlist. */
export const initUri = (run: number): string => `init-${run}.mp4`;

/** Why a path was refused: `bad_request` for malformed or hostile input, `not_found` for unknown names. */
export interface HlsPathError {
  error: 'bad_request' | 'not_found';
  message: string;
}

const PREFIX = '/live/';
/** Clips use the same names under `/clips/<clipId>/` (clip ids have the event ids' shape). */
const CLIP_PREFIX = '/clips/';
const MAX_DIGITS = 15;

function badRequest(message: string): HlsPathError {
  return { error: 'bad_request', message };
}

function notFound(message: string): HlsPathError {
  return { error: 'not_found', message };
}

/** Char code classes: 1 = [a-z0-9-] (rendition and event id), 2 = [A-Z_] (event id only). */
const charClass = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch === '-') charClass[c] = 1;
  else if ((ch >= 'A' && ch <= 'Z') || ch === '_') charClass[c] = 2;
}

function isEventId(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 6 || len > 64) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || charClass[c] === 0) return false;
  }
  return true;
}

function isRendition(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 1 || len > 32) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || charClass[c] !== 1) return false;
  }
  return true;
}

/** True when s[start, end) is a plain decimal number: digits only, no leading zero unless "0", ≤ 15 digits. */
function isDecimal(s: string, start: number, end: number): boolean {
  const len = end - start;
  if (len < 1 || len > MAX_DIGITS) return false;
  if (len > 1 && s.charCodeAt(start) === 48) return false;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Rejects the traversal tricks: percent-encoding, backslashes, empty and dot segments. */
function hostilePath(p: string): string | undefined {
  let segStart = 0;
  for (let i = 0; i <= p.length; i++) {
    const c = i < p.length ? p.charCodeAt(i) : 47;
    if (c === 37) return 'percent-encoded characters are not allowed';
    if (c === 92) return 'backslashes are not allowed';
    if (c === 47) {
      if (i > 0) {
        const len = i - segStart;
        if (len === 0 && i < p.length) return 'empty path segment';
        if (len > 0 && p.charCodeAt(segStart) === 46) {
          if (len === 1 || (len === 2 && p.charCodeAt(segStart + 1) === 46)) return 'dot segments are not allowed';
        }
      }
      segStart = i + 1;
    }
  }
  return undefined;
}

/**
 * A media playlist's query param for a player that catches up by itself (onair's own player): its first load is
 * answered at once, not held for a keyframe-aligned join (origin/hls-server.ts). Meaningless with `_HLS_msn`.
 */
export const JOIN_NOW = 'join=now';

/**
 * Parses a media playlist's query into its canonical form (`?_HLS_msn=…&_HLS_part=…&_HLS_skip=…`, or `?join=now`
 * for a first load that asks it), dropping other params.
 */
function canonicalQuery(search: string): { query: string; blocking: boolean } | HlsPathError {
  let msn: string | undefined;
  let part: string | undefined;
  let skip: string | undefined;
  let joinNow = false;
  let i = search.charCodeAt(0) === 63 ? 1 : 0;
  while (i < search.length) {
    let amp = search.indexOf('&', i);
    if (amp === -1) amp = search.length;
    // Only `join` and names starting with "_HLS_" matter; everything else is dropped unexamined.
    if (search.startsWith('join=', i) || (search.startsWith('join', i) && i + 4 === amp)) {
      if (search.slice(i, amp) !== JOIN_NOW) return badRequest(`join takes only "now"`);
      joinNow = true;
    } else if (search.startsWith('_HLS_', i)) {
      let eq = search.indexOf('=', i);
      if (eq === -1 || eq > amp) eq = amp;
      const name = search.slice(i, eq);
      if (eq === amp && (name === '_HLS_msn' || name === '_HLS_part' || name === '_HLS_skip')) {
        return badRequest(`${name} without a value`);
      }
      if (name === '_HLS_msn' || name === '_HLS_part') {
        if (!isDecimal(search, eq + 1, amp)) return badRequest(`${name} must be a plain decimal number`);
        const value = search.slice(eq + 1, amp);
        if (name === '_HLS_msn') {
          if (msn !== undefined) return badRequest('_HLS_msn given twice');
          msn = value;
        } else {
          if (part !== undefined) return badRequest('_HLS_part given twice');
          part = value;
        }
      } else if (name === '_HLS_skip') {
        if (skip !== undefined) return badRequest('_HLS_skip given twice');
        const value = search.slice(eq + 1, amp);
        if (value !== 'YES' && value !== 'v2') return badRequest('_HLS_skip must be YES or v2');
        skip = value;
      }
    }
    i = amp + 1;
  }
  if (part !== undefined && msn === undefined) return badRequest('_HLS_part requires _HLS_msn');
  let query = '';
  if (msn !== undefined) query += '&_HLS_msn=' + msn;
  if (part !== undefined) query += '&_HLS_part=' + part;
  if (skip !== undefined) query += '&_HLS_skip=' + skip;
  if (joinNow && msn === undefined) query += '&' + JOIN_NOW;
  if (query !== '') query = '?' + query.slice(1);
  return { query, blocking: msn !== undefined };
}

/** Reads the media file name at s[start..]: one of segmentUri, partUri or initUri's names, or why it is refused. */
function readMediaName(s: string, start: number): MediaName | HlsPathError {
  const end = s.length;
  if (s.startsWith('seg-', start) && s.endsWith('.m4s')) {
    if (!isDecimal(s, start + 4, end - 4)) return badRequest('malformed segment number');
    return { kind: 'segment', msn: Number(s.slice(start + 4, end - 4)) };
  }
  if (s.startsWith('part-', start) && s.endsWith('.m4s')) {
    const dot = s.indexOf('.', start + 5);
    if (dot === end - 4 || !isDecimal(s, start + 5, dot) || !isDecimal(s, dot + 1, end - 4)) return badRequest('malformed part name');
    return { kind: 'part', msn: Number(s.slice(start + 5, dot)), index: Number(s.slice(dot + 1, end - 4)) };
  }
  if (s.startsWith('init-', start) && s.endsWith('.mp4')) {
    if (!isDecimal(s, start + 5, end - 4)) return badRequest('malformed init number');
    return { kind: 'init', run: Number(s.slice(start + 5, end - 4)) };
  }
  return notFound('no such HLS object');
}

/** Parses a media file name (`seg-3.m4s`, `part-3.1.m4s`, `init-0.mp4`) as segmentUri/partUri/initUri write it; undefined otherwise. */
export function parseMediaName(name: string): MediaName | undefined {
  if (name.includes('/')) return undefined;
  const r = readMediaName(name, 0);
  return 'error' in r ? undefined : r;
}

/** True when `path` is under `/live/` or `/clips/`: what the HLS edge serves. */
export function isHlsPath(path: string): boolean {
  return path.startsWith(PREFIX) || path.startsWith(CLIP_PREFIX);
}

/** Parses a request path (and its `?query`, possibly empty) under `/live/` or `/clips/`, or says why it is refused. */
export function parseHlsRequest(pathname: string, search: string): HlsObject | HlsPathError {
  const clip = pathname.startsWith(CLIP_PREFIX);
  if (!clip && !pathname.startsWith(PREFIX)) return notFound('not an HLS path');
  const hostile = hostilePath(pathname);
  if (hostile !== undefined) return badRequest(hostile);

  const evStart = clip ? CLIP_PREFIX.length : PREFIX.length;
  const evEnd = pathname.indexOf('/', evStart);
  if (evEnd === -1) return notFound('no such HLS object');
  if (!isEventId(pathname, evStart, evEnd)) return badRequest(clip ? 'malformed clip id' : 'malformed event id');
  const eventId = pathname.slice(evStart, evEnd);
  const parsed = parseRest(pathname, search, eventId, evEnd);
  if (clip && !('error' in parsed)) parsed.clip = true;
  return parsed;
}

function parseRest(pathname: string, search: string, eventId: string, evEnd: number): HlsObject | HlsPathError {
  const second = pathname.indexOf('/', evEnd + 1);
  if (second === -1) {
    if (pathname.length - (evEnd + 1) === 11 && pathname.endsWith('master.m3u8')) {
      return { eventId, kind: 'master', cacheKey: pathname, upstreamPath: pathname, blocking: false };
    }
    const file = pathname.slice(evEnd + 1);
    let preview: PreviewName | undefined;
    if (file === THUMBNAIL_NAME) preview = { file: 'thumbnail' };
    else if (file === PREVIEW_VTT_NAME) preview = { file: 'vtt' };
    else if (file.startsWith('sprite-') && file.endsWith('.jpg')) {
      if (!isDecimal(file, 7, file.length - 4)) return badRequest('malformed sprite number');
      preview = { file: 'sprite', sheet: Number(file.slice(7, -4)) };
    }
    if (preview !== undefined) return { eventId, kind: 'thumbnail', cacheKey: pathname, upstreamPath: pathname, blocking: false, preview };
    return notFound('no such HLS object');
  }
  if (!isRendition(pathname, evEnd + 1, second)) return badRequest('malformed rendition name');
  const fileStart = second + 1;
  if (pathname.indexOf('/', fileStart) !== -1) return notFound('no such HLS object');
  const rendition = pathname.slice(evEnd + 1, second);
  const end = pathname.length;

  if (end - fileStart === 10 && pathname.endsWith('index.m3u8')) {
    const q = search.length > 1 ? canonicalQuery(search) : undefined;
    if (q !== undefined && 'error' in q) return q;
    const key = q === undefined || q.query === '' ? pathname : pathname + q.query;
    return { eventId, rendition, kind: 'playlist', cacheKey: key, upstreamPath: key, blocking: q?.blocking ?? false };
  }
  const media = readMediaName(pathname, fileStart);
  if ('error' in media) return media;
  const kind = media.kind;
  return { eventId, rendition, kind, cacheKey: pathname, upstreamPath: pathname, blocking: false, media };
}

/** Parses a request path under `/live/` or `/clips/` into the HLS object it names; undefined when invalid or unknown. */
export function parseHlsPath(pathname: string, search: string): HlsObject | undefined {
  const r = parseHlsRequest(pathname, search);
  return 'error' in r ? undefined : r;
}
