// What a live media playlist holds (last complete segment, last part), to tell whether it answers a blocking reload.
import { parseMediaName } from '../lib/hls-path.ts';

/** The newest media a playlist lists; -1 when none. */
export interface PlaylistCoverage {
  /** Media sequence number of the last complete segment. */
  lastSegment: number;
  /** Media sequence number of the segment holding the last listed part. */
  lastPartMsn: number;
  /** Index of the last listed part within that segment. */
  lastPart: number;
}

const PART_TAG = '#EXT-X-PART:';
const URI_ATTR = /URI="([^"]*)"/;

/** Reads the newest segment and part a media playlist lists (URIs named as lib/hls-path.ts's scheme writes them). */
export function playlistCoverage(body: Buffer): PlaylistCoverage {
  const text = body.toString('utf8');
  const cov: PlaylistCoverage = { lastSegment: -1, lastPartMsn: -1, lastPart: -1 };
  for (const line of text.split('\n')) {
    if (line.startsWith(PART_TAG)) {
      const uri = URI_ATTR.exec(line)?.[1];
      const name = uri === undefined ? undefined : parseMediaName(uri);
      if (name?.kind !== 'part') continue;
      if (name.msn > cov.lastPartMsn || (name.msn === cov.lastPartMsn && name.index > cov.lastPart)) {
        cov.lastPartMsn = name.msn;
        cov.lastPart = name.index;
      }
    } else if (!line.startsWith('#')) {
      const name = parseMediaName(line);
      if (name?.kind === 'segment') cov.lastSegment = Math.max(cov.lastSegment, name.msn);
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
