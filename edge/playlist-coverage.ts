// What a live media playlist holds (last complete segment, last part), to tell whether it answers a blocking reload.

/** The newest media a playlist lists; -1 when none. */
export interface PlaylistCoverage {
  /** Media sequence number of the last complete segment. */
  lastSegment: number;
  /** Media sequence number of the segment holding the last listed part. */
  lastPartMsn: number;
  /** Index of the last listed part within that segment. */
  lastPart: number;
}

const SEGMENT_URI = /^seg-(\d+)\.m4s$/gm;
const PART_TAG = /^#EXT-X-PART:.*URI="part-(\d+)\.(\d+)\.m4s"/gm;

/** Reads the newest segment and part a media playlist lists (URIs as the origin writes them). */
export function playlistCoverage(body: Buffer): PlaylistCoverage {
  const text = body.toString('utf8');
  const cov: PlaylistCoverage = { lastSegment: -1, lastPartMsn: -1, lastPart: -1 };
  for (const m of text.matchAll(SEGMENT_URI)) cov.lastSegment = Math.max(cov.lastSegment, Number(m[1]));
  for (const m of text.matchAll(PART_TAG)) {
    const msn = Number(m[1]);
    const part = Number(m[2]);
    if (msn > cov.lastPartMsn || (msn === cov.lastPartMsn && part > cov.lastPart)) {
      cov.lastPartMsn = msn;
      cov.lastPart = part;
    }
  }
  return cov;
}

/**
 * True when a playlist with `cov` already satisfies the blocking reload in `pathWithQuery` (RFC 8216bis
 * §6.2.5.2: it contains segment `_HLS_msn`, or part `_HLS_part` of it, or something later). Conservative:
 * anything it cannot prove is false.
 */
export function coversRequest(cov: PlaylistCoverage, pathWithQuery: string): boolean {
  const q = pathWithQuery.indexOf('?');
  if (q === -1) return true;
  const params = new URLSearchParams(pathWithQuery.slice(q + 1));
  const msnRaw = params.get('_HLS_msn');
  if (msnRaw === null) return true;
  const msn = Number(msnRaw);
  const partRaw = params.get('_HLS_part');
  if (partRaw === null) return msn <= cov.lastSegment || msn < cov.lastPartMsn;
  const part = Number(partRaw);
  return msn < cov.lastPartMsn || (msn === cov.lastPartMsn && part <= cov.lastPart);
}
