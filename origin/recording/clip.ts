// Clips: a range of one recording, served as its own short VOD. A clip's manifest is the recording's manifest cut
// down to the whole segments covering the range (no re-encoding: every segment starts with a keyframe, so a clip
// starts and ends at segment boundaries, up to one segment wider than asked). It names the recording's objects;
// it holds no media of its own, so it lives exactly as long as the recording does.
import { commonSegments, type RecordingManifest } from './manifest.ts';

/** Storage key prefix of clip manifests (not an event id: those are 6 characters or more). */
export const CLIPS_PREFIX = 'clips/';
/** Key of a clip's manifest: a RecordingManifest whose renditions list only the clip's segments. */
export const clipKey = (clipId: string): string => `${CLIPS_PREFIX}${clipId}.json`;

/** Why a range cannot be clipped. */
export interface ClipRangeError {
  code: 'recording_empty' | 'range_outside_recording' | 'invalid_range';
  message: string;
}

/** What a clip holds. */
export interface ClipCut {
  manifest: RecordingManifest;
  /** Where its first segment starts and its last one ends, in seconds from the start of the recording. */
  fromSec: number;
  toSec: number;
  durationSec: number;
  segments: number;
}

const f1 = (n: number): string => n.toFixed(1);

/** The duration (s) of a recording's timeline: its first rendition's segments every rendition has, end to end. */
export function timelineSec(m: RecordingManifest): number {
  const first = m.renditions[0];
  return first ? commonSegments(m, first.name).reduce((n, s) => n + s.durationSec, 0) : 0;
}

/**
 * Cuts [startSec, endSec) (seconds from the start of the recording, as its VOD playlist lays the segments end to
 * end) out of `m`: every segment overlapping the range, in every rendition. Refuses an empty or inverted range, one
 * that reaches past what is stored (the message says how much is), and a recording with nothing stored yet.
 */
export function cutClip(m: RecordingManifest, startSec: number, endSec: number): ClipCut | ClipRangeError {
  if (!(Number.isFinite(startSec) && Number.isFinite(endSec)) || startSec < 0 || endSec <= startSec) {
    return { code: 'invalid_range', message: 'the range must have 0 ≤ startSec < endSec' };
  }
  const first = m.renditions[0];
  const timeline = first ? commonSegments(m, first.name).sort((a, b) => a.msn - b.msn) : [];
  const total = timeline.reduce((n, s) => n + s.durationSec, 0);
  if (timeline.length === 0 || total <= 0) return { code: 'recording_empty', message: 'the recording holds no segments yet' };
  // A millisecond of slack: "the last 30 s" computed from a rounded duration must still fit.
  if (endSec > total + 0.001) {
    return {
      code: 'range_outside_recording',
      message: `the range ${f1(startSec)}–${f1(endSec)} s reaches past the recording, which holds ${f1(total)} s`,
    };
  }
  const msns = new Set<number>();
  let t = 0;
  let fromSec: number | undefined;
  let toSec = 0;
  for (const s of timeline) {
    const t0 = t;
    t += s.durationSec;
    if (s.durationSec > 0 && t0 < endSec && t > startSec) {
      msns.add(s.msn);
      fromSec ??= t0;
      toSec = t;
    }
  }
  if (fromSec === undefined) return { code: 'range_outside_recording', message: 'no stored segment overlaps the range' };
  const manifest: RecordingManifest = {
    ...m,
    renditions: m.renditions.map((r) => ({ ...r, segments: r.segments.filter((s) => msns.has(s.msn)) })),
  };
  return { manifest, fromSec, toSec, durationSec: toSec - fromSec, segments: msns.size };
}
