// The SRT stream id a publisher connects with, read as the stream key it carries. Two forms are taken:
//   publish:<streamKey>                  (onair's own, as in `srt://host:8890?streamid=publish:<key>`)
//   #!::r=<streamKey>,m=publish          (SRT's access-control syntax, which SRS and MediaMTX accept)
// In either, the key may be written `live/<key>`, as RTMP's application/stream path. Any other mode (the
// access-control default is `request`, i.e. play) is refused: this listener only takes publishers.

/** Longest stream id libsrt carries (SRTO_STREAMID holds up to 512 bytes). */
export const MAX_STREAM_ID = 512;

/** Why a stream id is refused (label of onair_ingest_rejected_total). */
export type StreamIdProblem = 'no_key' | 'bad_mode' | 'malformed';

/** The stream key a stream id carries, or why it carries none that we take. */
export type ParsedStreamId = { ok: true; key: string } | { ok: false; reason: StreamIdProblem; message: string };

const HOW = 'connect with streamid=publish:<stream key>';

function keyOf(resource: string): ParsedStreamId {
  const key = resource.startsWith('live/') ? resource.slice(5) : resource;
  if (!key) return { ok: false, reason: 'no_key', message: `the stream id names no stream key; ${HOW}` };
  // Stream keys are base64url with a prefix; anything with separators or controls is not one.
  if (!/^[\x21-\x7e]+$/.test(key) || /[/:,=#]/.test(key)) {
    return { ok: false, reason: 'malformed', message: `the stream key in the stream id has characters no key has; ${HOW}` };
  }
  return { ok: true, key };
}

/** Reads the stream key from an SRT stream id (SRTO_STREAMID); never echoes the id (it carries the key). */
export function parseStreamId(streamId: string | null | undefined): ParsedStreamId {
  if (!streamId) return { ok: false, reason: 'no_key', message: `no stream id; ${HOW}` };
  // ffmpeg before 6.0 passes a URL-encoded streamid (`%23!%3A%3A...`) through undecoded.
  if (/^%23!%3A%3A/i.test(streamId)) {
    try {
      streamId = decodeURIComponent(streamId);
    } catch {
      return { ok: false, reason: 'malformed', message: 'the stream id is not valid URL encoding' };
    }
  }
  if (streamId.length > MAX_STREAM_ID) return { ok: false, reason: 'malformed', message: `the stream id is over ${MAX_STREAM_ID} bytes` };
  if (streamId.startsWith('#!::')) {
    const fields = new Map<string, string>();
    for (const pair of streamId.slice(4).split(',')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) return { ok: false, reason: 'malformed', message: `the access-control stream id has a field without key=value; ${HOW}` };
      const name = pair.slice(0, eq);
      if (fields.has(name)) return { ok: false, reason: 'malformed', message: `the access-control stream id repeats "${safeName(name)}"` };
      fields.set(name, pair.slice(eq + 1));
    }
    // The access-control spec's default mode is `request` (the caller wants to receive).
    const mode = fields.get('m') ?? 'request';
    if (mode !== 'publish')
      return {
        ok: false,
        reason: 'bad_mode',
        message: `mode "${safeName(mode)}" is refused: this server only takes publishers (m=publish)`,
      };
    const type = fields.get('t') ?? 'stream';
    if (type !== 'stream')
      return { ok: false, reason: 'bad_mode', message: `type "${safeName(type)}" is refused: only live streams (t=stream)` };
    const resource = fields.get('r');
    if (resource === undefined) return { ok: false, reason: 'no_key', message: 'the access-control stream id has no r=<stream key>' };
    return keyOf(resource);
  }
  const colon = streamId.indexOf(':');
  const mode = colon < 0 ? '' : streamId.slice(0, colon);
  if (mode === 'publish') return keyOf(streamId.slice(colon + 1));
  if (mode === 'read' || mode === 'request' || mode === 'play') {
    return { ok: false, reason: 'bad_mode', message: `mode "${mode}" is refused: this server only takes publishers; ${HOW}` };
  }
  return { ok: false, reason: 'bad_mode', message: `the stream id says no mode; ${HOW}` };
}

/** A field name or mode for a message: short, printable; never a value that could be the key. */
function safeName(s: string): string {
  return /^[a-z]{1,16}$/i.test(s) ? s : '?';
}
