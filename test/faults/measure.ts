// Pure arithmetic of the fault suite: what a viewer's page recorded (viewer.ts), cut to one time window and
// summarized as stalls, fatal errors and discontinuities; the verdict of each fault against its target.

/** A time interval in ms since the epoch; `end` undefined while it is still open. */
export interface Interval {
  start: number;
  end?: number;
}

/** What the viewer page recorded since it loaded (all times Date.now() in the page: the same clock as Node's). */
export interface ViewerRecord {
  /** The page's Date.now() when this record was read. */
  now: number;
  /** When the video first played (a `playing` event), undefined before. */
  firstPlayingAt?: number;
  /** `waiting` → `playing` intervals after the first play. */
  waits: Interval[];
  /** Intervals without currentTime progress while the video was not paused by the viewer (see viewer.ts). */
  freezes: Interval[];
  /** hls.js ERROR events with `fatal`: [time, "type/details"]. */
  fatal: [number, string][];
  /** Non-fatal hls.js errors: [time, "type/details"] (the most recent 200). */
  errors: [number, string][];
  /** FRAG_CHANGED whose `cc` differs from the previous fragment's on the same hls.js instance: [time, from, to]. */
  ccChanges: [number, number, number][];
  /** Times a new hls.js instance appeared after the first (the page rebuilt its player). */
  rebuilds: number[];
  /** The watch page's state changes (window.__onair.state): [time, state]. */
  states: [number, string][];
  /** video.currentTime now, s. */
  position: number;
  /** When currentTime last advanced. */
  lastProgressAt: number;
}

/** A viewer's experience within one window of time. */
export interface WindowSummary {
  fromMs: number;
  untilMs: number;
  /** Stalls (merged waiting and frozen intervals at least `minStallMs` long) overlapping the window. */
  stalls: number;
  /** Longest of them within the window, s (one decimal); 0 without stalls. */
  longestStallSec: number;
  /** Their total within the window, s (one decimal). */
  totalStallSec: number;
  /** Each stall: seconds from the window's start to its start (negative: began before), and its length within the window. */
  stallList: { atSec: number; sec: number }[];
  /** True when a stall is still open at the end of the window. */
  stalledAtEnd: boolean;
  fatalErrors: number;
  /** The fatal errors' "type/details", for the report. */
  fatalDetails: string[];
  discontinuities: number;
  rebuilds: number;
  /** Page states entered within the window, in order (e.g. offline, loading, playing). */
  states: string[];
  /** video.currentTime at the reading, s. */
  position: number;
}

/** Stalls shorter than this are not counted (a `waiting` of a few frames on a level switch is no visible stall). */
export const MIN_STALL_MS = 250;

/** The union of intervals (open ones closed at `now`), sorted, overlapping and touching ones merged. */
export function mergeIntervals(intervals: readonly Interval[], now: number): { start: number; end: number; open: boolean }[] {
  const closed = intervals
    .map((i) => ({ start: i.start, end: i.end ?? now, open: i.end === undefined }))
    .filter((i) => i.end >= i.start)
    .sort((a, b) => a.start - b.start);
  const out: { start: number; end: number; open: boolean }[] = [];
  for (const i of closed) {
    const last = out[out.length - 1];
    if (last && i.start <= last.end) {
      if (i.end > last.end) {
        last.end = i.end;
        last.open = i.open;
      } else if (i.end === last.end) last.open ||= i.open;
    } else out.push({ ...i });
  }
  return out;
}

const sec = (ms: number) => Math.round(ms / 100) / 10;

/** Summarizes `rec` over [fromMs, untilMs] (untilMs defaults to the record's `now`). */
export function summarizeWindow(rec: ViewerRecord, fromMs: number, untilMs = rec.now, minStallMs = MIN_STALL_MS): WindowSummary {
  const until = Math.min(untilMs, rec.now);
  const stalls = mergeIntervals([...rec.waits, ...rec.freezes], rec.now)
    .filter((i) => i.end - i.start >= minStallMs)
    .filter((i) => i.start <= until && i.end >= fromMs);
  const clipped = stalls.map((i) => Math.min(i.end, until) - Math.max(i.start, fromMs));
  const inWindow = (t: number) => t >= fromMs && t <= until;
  const fatal = rec.fatal.filter(([t]) => inWindow(t));
  return {
    fromMs,
    untilMs: until,
    stalls: stalls.length,
    longestStallSec: sec(Math.max(0, ...clipped)),
    totalStallSec: sec(clipped.reduce((a, b) => a + b, 0)),
    stallList: stalls.map((i, n) => ({ atSec: sec(i.start - fromMs), sec: sec(clipped[n]!) })),
    stalledAtEnd: stalls.some((i) => i.open || i.end > until),
    fatalErrors: fatal.length,
    fatalDetails: fatal.map(([, d]) => d),
    discontinuities: rec.ccChanges.filter(([t]) => inWindow(t)).length,
    rebuilds: rec.rebuilds.filter(inWindow).length,
    states: rec.states.filter(([t]) => inWindow(t)).map(([, s]) => s),
    position: rec.position,
  };
}

/** A fault's target, as limits on what the window shows (undefined: not limited). */
export interface FaultTarget {
  maxStalls?: number;
  maxStallSec?: number;
  maxFatalErrors?: number;
  maxCommentsLost?: number;
  /** Other checks the suite made (e.g. "a new replica is placed"): name → passed. */
  checks?: Record<string, boolean>;
}

/** The reasons a fault missed its target; empty when it met it. */
export function missedTarget(
  s: Pick<WindowSummary, 'stalls' | 'longestStallSec' | 'fatalErrors'>,
  commentsLost: number,
  t: FaultTarget,
): string[] {
  const out: string[] = [];
  if (t.maxStalls !== undefined && s.stalls > t.maxStalls) out.push(`${s.stalls} stalls > ${t.maxStalls}`);
  if (t.maxStallSec !== undefined && s.longestStallSec > t.maxStallSec)
    out.push(`longest stall ${s.longestStallSec} s > ${t.maxStallSec} s`);
  if (t.maxFatalErrors !== undefined && s.fatalErrors > t.maxFatalErrors) out.push(`${s.fatalErrors} fatal errors > ${t.maxFatalErrors}`);
  if (t.maxCommentsLost !== undefined && commentsLost > t.maxCommentsLost)
    out.push(`${commentsLost} acknowledged comments lost > ${t.maxCommentsLost}`);
  for (const [name, ok] of Object.entries(t.checks ?? {})) if (!ok) out.push(`failed: ${name}`);
  return out;
}

/** Describes a target in words for the report line. */
export function describeTarget(t: FaultTarget): string {
  const parts: string[] = [];
  if (t.maxStalls !== undefined) parts.push(t.maxStalls === 0 ? 'no stall' : `≤ ${t.maxStalls} stall${t.maxStalls > 1 ? 's' : ''}`);
  if (t.maxStallSec !== undefined) parts.push(`each ≤ ${t.maxStallSec} s`);
  if (t.maxFatalErrors !== undefined) parts.push(`${t.maxFatalErrors} fatal errors`);
  if (t.maxCommentsLost !== undefined) parts.push(`${t.maxCommentsLost} acked comments lost`);
  parts.push(...Object.keys(t.checks ?? {}));
  return parts.join('; ');
}
