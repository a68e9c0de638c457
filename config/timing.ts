// The LL-HLS timing rules that tie the segment target, the part target and the GOP together: one pure function
// that the configuration (config/schema.ts, the node's settings) and each event's overrides (control/events.ts) share.

/** The timing of a stream: segment target, LL-HLS part target and the encoded ladder's keyframe interval, in seconds. */
export interface StreamTiming {
  segmentTargetSec: number;
  partTargetSec: number;
  gopSec: number;
}

/** Just the timing of a node's config (for EventService, which checks events' overrides against it). */
export function timingOf(c: StreamTiming): StreamTiming {
  return { segmentTargetSec: c.segmentTargetSec, partTargetSec: c.partTargetSec, gopSec: c.gopSec };
}

/** The allowed part target (ONAIR_PART_TARGET_SEC, an event's `partTargetSec`), in seconds. */
export const PART_TARGET_RANGE = { min: 0.1, max: 2 } as const;
/** The allowed keyframe interval (ONAIR_GOP_SEC, an event's `gopSec`), in seconds. */
export const GOP_RANGE = { min: 0.1, max: 10 } as const;
/**
 * PART-HOLD-BACK in parts (ONAIR_PART_HOLD_BACK_PARTS). RFC 8216bis §4.4.3.8: at least 2 (MUST), and it SHOULD be 3
 * or more. 2.5 (0.5 s at 0.2 s parts, as MediaMTX's gohlslib) played ~0.1 s closer to live than 3 with no more stalls
 * in bench:latency here; 2 another ~0.1 s closer, with short stalls at the watch page (README, Benchmarks).
 */
export const PART_HOLD_BACK_PARTS = { min: 2, max: 6, default: 2.5 } as const;

/** How messages name the three values (the settings' variable names, or an event's fields). */
export interface TimingNames {
  segment: string;
  part: string;
}

/** The configuration's names: its messages follow the setting's own name (`ONAIR_PART_TARGET_SEC (partTargetSec): …`). */
export const SETTING_NAMES: TimingNames = { segment: 'ONAIR_SEGMENT_TARGET_SEC', part: 'ONAIR_PART_TARGET_SEC' };

/** A broken rule: which value to change and why. */
export interface TimingIssue {
  key: 'partTargetSec' | 'gopSec';
  message: string;
}

/** Whole `part`s per `whole` (within float noise), or undefined when `part` does not divide `whole`. */
export function wholeParts(whole: number, part: number): number | undefined {
  const n = whole / part;
  return Math.abs(n - Math.round(n)) < 1e-6 ? Math.round(n) : undefined;
}

const show = (x: number) => String(Math.round(x * 1000) / 1000);

/**
 * The first rule `t` breaks, or undefined. LL-HLS (RFC 8216bis §4.4.4.9) wants every part but a segment's last one
 * within 85–100 % of PART-TARGET; the origin cuts a part every `partTargetSec` and a segment every
 * `segmentTargetSec`, so the segment target must be a whole number (≥ 2) of part targets, or the last part of each
 * segment is a short remainder and a part longer than its segment cannot exist at all. Every keyframe starts an
 * independent part and segments start on keyframes, so the GOP must be a whole number of parts and split the
 * segment target into whole GOPs. Messages start with the value at fault and suggest values that fit.
 * Ranges (PART_TARGET_RANGE, GOP_RANGE) are checked apart: rangeIssue().
 */
export function timingIssue(t: StreamTiming, names: TimingNames = SETTING_NAMES): TimingIssue | undefined {
  const { segmentTargetSec: seg, partTargetSec: part, gopSec: gop } = t;
  const n = wholeParts(seg, part);
  if (n === undefined || n < 2) {
    const fits = [2, 4]
      .map((k) => seg / k)
      .filter((p) => p >= PART_TARGET_RANGE.min && p <= PART_TARGET_RANGE.max)
      .map(show);
    return {
      key: 'partTargetSec',
      message:
        `${part} s must split ${names.segment} (${seg} s) into 2 or more whole parts` +
        (fits.length ? `; write e.g. ${fits.join(' or ')}` : `; lower it or raise ${names.segment}`),
    };
  }
  const perGop = wholeParts(gop, part);
  const gops = wholeParts(seg, gop);
  if (perGop === undefined || perGop < 1 || gops === undefined || gops < 1) {
    const fits = [1, 2, 4]
      .map((k) => seg / k)
      .filter((g) => g >= part && wholeParts(g, part) !== undefined)
      .map(show);
    return {
      key: 'gopSec',
      message:
        `${gop} s must be a whole number of ${names.part} (${part} s) and split ` +
        `${names.segment} (${seg} s) into whole GOPs; write e.g. ${fits.join(' or ')}`,
    };
  }
  return undefined;
}

/** Why `value` is outside the allowed range of `key` (a finite number within PART_TARGET_RANGE or GOP_RANGE), or undefined. */
export function rangeIssue(key: TimingIssue['key'], value: number): TimingIssue | undefined {
  const { min, max } = key === 'partTargetSec' ? PART_TARGET_RANGE : GOP_RANGE;
  if (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max) return undefined;
  return { key, message: `${String(value)} s is out of range: ${min} to ${max} seconds` };
}

/**
 * The timing a stream runs with: the event's overrides (null: the node's setting) over the node's `node` timing.
 * Overrides that break a rule with the node's segment target (say, an event created under another cluster-wide
 * setting) are dropped for the node's timing, and `issue` says why.
 */
export function resolveTiming(
  node: StreamTiming,
  event: { partTargetSec: number | null; gopSec: number | null },
): { timing: StreamTiming; issue?: TimingIssue } {
  const timing = { ...node, partTargetSec: event.partTargetSec ?? node.partTargetSec, gopSec: event.gopSec ?? node.gopSec };
  const issue =
    (event.partTargetSec !== null ? rangeIssue('partTargetSec', event.partTargetSec) : undefined) ??
    (event.gopSec !== null ? rangeIssue('gopSec', event.gopSec) : undefined) ??
    timingIssue(timing);
  return issue ? { timing: { ...node }, issue } : { timing };
}
