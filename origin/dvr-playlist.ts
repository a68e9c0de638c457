// Pure functions of the DVR window (RFC 8216bis): a live media playlist that also lists the recorded segments
// older than the origin's in-memory window, so that a viewer can seek back while the event is live. The older
// segments keep their live URIs (`seg-<msn>.m4s`, `init-<run>.mp4`): the origin answers them from the recording's
// storage, and edges cache them as immutable like any segment. Delta updates (§6.2.5.1) keep reloads small.
import type { MediaPlaylistSource, PlaylistSegment } from './playlist.ts';

/** The fields of a stored (recorded) segment a DVR window needs (a recording manifest's segment satisfies it). */
export interface DvrStoredSegment {
  msn: number;
  run: number;
  durationSec: number;
  programDateTimeMs: number;
  /** Discontinuity sequence number of the segment (publish session − 1, never decreasing). */
  discontinuitySequence: number;
}

/**
 * The recorded segments a DVR window of `windowSec` adds in front of a live window starting at `liveFirstMsn`,
 * oldest first: those with a lower msn, newest first while the listed duration (live and DVR) stays within
 * `windowSec`. `stored` is in msn order. A window of 0 (DVR off) or shorter than the live window adds nothing.
 */
export function dvrWindowSegments(
  stored: readonly DvrStoredSegment[],
  liveFirstMsn: number,
  liveDurationSec: number,
  windowSec: number,
): DvrStoredSegment[] {
  if (windowSec <= 0) return [];
  // The newest stored segment below the live window (binary search: stored is sorted by msn).
  let lo = 0;
  let hi = stored.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (stored[mid]!.msn < liveFirstMsn) lo = mid + 1;
    else hi = mid;
  }
  let total = liveDurationSec;
  let first = lo;
  while (first > 0) {
    const s = stored[first - 1]!;
    if (s.durationSec <= 0) {
      first--;
      continue;
    }
    if (total + s.durationSec > windowSec + 1e-6) break;
    total += s.durationSec;
    first--;
  }
  return stored.slice(first, lo).filter((s) => s.durationSec > 0);
}

/**
 * A live media playlist source with the DVR segments `dvr` (from dvrWindowSegments) listed before its own, for
 * renderMediaPlaylist:
 * - the DVR segments are complete segments without parts (parts stay on the last segments, §4.4.4.9);
 * - EXT-X-DISCONTINUITY (§4.4.4.3) where the discontinuity sequence grows from the segment before (`previous`: the
 *   stored segment just before the first DVR one, if any), so a publisher's reconnect stays marked;
 * - EXT-X-DISCONTINUITY-SEQUENCE (§4.4.3.3) is that of the first listed segment, minus one when it carries an
 *   EXT-X-DISCONTINUITY tag itself (the tag increments the sequence), as the packager computes it;
 * - EXT-X-MEDIA-SEQUENCE (§4.4.3.2) follows as the first listed msn: it only grows as the window slides.
 * Without DVR segments the live source is returned unchanged.
 */
export function withDvrSegments(
  live: MediaPlaylistSource,
  dvr: readonly DvrStoredSegment[],
  previous?: DvrStoredSegment,
): MediaPlaylistSource {
  if (dvr.length === 0) return live;
  let prev = previous;
  const older: PlaylistSegment[] = dvr.map((s) => {
    const seg: PlaylistSegment = {
      msn: s.msn,
      run: s.run,
      parts: [],
      durationSec: s.durationSec,
      programDateTimeMs: s.programDateTimeMs,
      discontinuity: prev !== undefined && s.discontinuitySequence > prev.discontinuitySequence,
      complete: true,
    };
    prev = s;
    return seg;
  });
  const first = older[0]!;
  const discontinuitySequence = dvr[0]!.discontinuitySequence - (first.discontinuity ? 1 : 0);
  return {
    segmentTargetSec: live.segmentTargetSec,
    partTargetSec: live.partTargetSec,
    longestSegmentSec: Math.max(live.longestSegmentSec, ...dvr.map((s) => s.durationSec)),
    longestPartSec: live.longestPartSec,
    discontinuitySequence,
    playlistSegments: [...older, ...live.playlistSegments],
    nextPart: live.nextPart,
    ...(live.dateRanges ? { dateRanges: live.dateRanges } : {}),
  };
}

/** The live window's listed duration in seconds (complete segments and the open one's parts). */
export function liveDurationSec(live: Pick<MediaPlaylistSource, 'playlistSegments'>): number {
  let n = 0;
  for (const s of live.playlistSegments) n += s.complete ? s.durationSec : s.parts.reduce((k, p) => k + p.durationSec, 0);
  return n;
}

/** The DVR-extended source of `live` for a window of `windowSec` over the recording's stored segments (msn order). */
export function dvrSource(live: MediaPlaylistSource, stored: readonly DvrStoredSegment[], windowSec: number): MediaPlaylistSource {
  const firstLive = live.playlistSegments[0]?.msn ?? live.nextPart.msn;
  const dvr = dvrWindowSegments(stored, firstLive, liveDurationSec(live), windowSec);
  if (dvr.length === 0) return live;
  const i = stored.indexOf(dvr[0]!);
  return withDvrSegments(live, dvr, i > 0 ? stored[i - 1] : undefined);
}
