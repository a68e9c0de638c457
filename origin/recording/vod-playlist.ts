// Pure renderers of a recording's VOD playlists (RFC 8216bis): the media playlist of one rendition, rebuilt from
// what the recording stored, and the multivariant playlist (the live one's renderer over the stored variants).
import { initUri, segmentUri } from '../../lib/hls-path.ts';
import { renderMasterPlaylist, type Variant } from '../playlist.ts';

export { renderMasterPlaylist as renderVodMasterPlaylist };
export type { Variant };

/** The fields of a stored segment the VOD playlist needs. */
export interface VodSegment {
  msn: number;
  /** Run (init segment number) it belongs to. */
  run: number;
  durationSec: number;
  programDateTimeMs: number;
  /** Discontinuity sequence number (publish session − 1): a change means the publisher reconnected. */
  discontinuitySequence: number;
}

const f3 = (n: number): string => n.toFixed(3);

/** Total duration of `segments` in seconds. */
export function vodDurationSec(segments: readonly VodSegment[]): number {
  return segments.reduce((n, s) => n + s.durationSec, 0);
}

/**
 * Renders one rendition's VOD media playlist, segments in msn order (URIs relative to
 * /live/<event>/<rendition>/index.m3u8, the same names as while live):
 * - EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST (§4.4.3.5, §4.4.3.4): the playlist never changes, players may seek anywhere;
 * - EXT-X-TARGETDURATION is at least every EXTINF rounded to the nearest integer (§4.4.3.1);
 * - EXT-X-DISCONTINUITY (§4.4.4.3) where the publisher reconnected (the discontinuity sequence changes) and where
 *   segments are missing (an msn gap: the timestamps jump), each followed by EXT-X-MAP (§4.4.4.5) and
 *   EXT-X-PROGRAM-DATE-TIME; EXT-X-MAP also wherever the run (init segment) changes.
 */
export function renderVodPlaylist(segmentTargetSec: number, segments: readonly VodSegment[]): string {
  const sorted = [...segments].filter((s) => s.durationSec > 0).sort((a, b) => a.msn - b.msn);
  const td = Math.max(Math.ceil(segmentTargetSec), ...sorted.map((s) => Math.round(s.durationSec)));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${td}`,
    '#EXT-X-PLAYLIST-TYPE:VOD',
    `#EXT-X-MEDIA-SEQUENCE:${sorted[0]?.msn ?? 0}`,
    '#EXT-X-INDEPENDENT-SEGMENTS',
  ];
  let prev: VodSegment | undefined;
  for (const s of sorted) {
    const discontinuity = prev !== undefined && (s.discontinuitySequence !== prev.discontinuitySequence || s.msn !== prev.msn + 1);
    if (discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (prev === undefined || discontinuity || s.run !== prev.run) lines.push(`#EXT-X-MAP:URI="${initUri(s.run)}"`);
    if (prev === undefined || discontinuity) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateTimeMs).toISOString()}`);
    lines.push(`#EXTINF:${f3(s.durationSec)},`, segmentUri(s.msn));
    prev = s;
  }
  lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}
