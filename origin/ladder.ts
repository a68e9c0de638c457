// The ladder a live source gets: which rungs, at what size and frame rate, with keyframes on a grid every rung shares.
import type { Rendition } from '../config/schema.ts';

/** A frame rate as a fraction (30000/1001 stays exact, unlike 29.97). */
export interface Rational {
  num: number;
  den: number;
}

/** What the origin knows about the publisher's video (FLV onMetaData); anything may be missing. */
export interface SourceVideo {
  width?: number;
  height?: number;
  /** Frames per second as the publisher states it (29.97002997…, 25, 59.94…). */
  fps?: number;
}

/** One rung as encoded for this source. */
export interface Rung {
  name: string;
  /** Output size; the short side is the rendition's `height` setting. Estimated (16:9 landscape) when the source size is unknown. */
  width: number;
  height: number;
  /** ffmpeg scale target, `W:H`, or `-2:H` when the source size is unknown (ffmpeg keeps its aspect ratio). */
  scale: string;
  fps: Rational;
  videoKbps: number;
  /** Longest keyframe interval in frames (x264's -g): keyframes come from the shared grid, never from x264's own count. */
  gop: number;
  /** The audio-only rendition of a source without video: no picture (size, rate and video bitrate are 0). */
  audioOnly?: boolean;
  /**
   * The passthrough "source" rendition: the publisher's H.264 copied, not encoded (size and rate are the source's, 0
   * when it did not state them; `scale` and `gop` unused). Its segments are cut at the source's own keyframes.
   */
  copy?: boolean;
  /** Audio copied too (AAC at 44.1 or 48 kHz); otherwise encoded like every rung's. Only on the source rendition. */
  copyAudio?: boolean;
}

/** Name of the passthrough rendition. */
export const SOURCE_RENDITION = 'source';

/**
 * Per-event ladder presets: `standard` the source rendition plus encoded rungs below it; `passthrough` the source
 * rendition alone; `audio` one AAC rendition (the picture is dropped); `custom` the encoded rungs of ONAIR_LADDER.
 * A source that is not H.264 cannot be copied: `standard` and `passthrough` then encode (see planForPreset).
 */
export const LADDER_PRESETS = ['standard', 'passthrough', 'audio', 'custom'] as const;
export type LadderPreset = (typeof LADDER_PRESETS)[number];

/** What the origin knows of the source's codecs, from its FLV sequence headers. */
export interface SourceCodecs {
  /** The video is H.264 (FLV codec id 7): it can be copied. */
  h264: boolean;
  /** The audio is AAC at 44.1 or 48 kHz: it can be copied. */
  aacCopyable: boolean;
  /** Video bitrate the publisher states (onMetaData videodatarate, kbit/s). */
  videoKbps?: number;
}

/**
 * The ladder of `preset` for a source. `standard`: the source rendition, then the encoded rungs strictly below the
 * source's short side, at up to 30 fps (the source already carries the full rate); a source whose short side is
 * unknown gets every rung below. `passthrough`: the source rendition alone. A source that is not H.264 cannot be
 * copied: `standard` is then the encoded ladder as `custom` has it, and `passthrough` its top rung alone. `audio`
 * and a source without video: audioOnlyPlan(). `keepNames` (a returning publisher) keeps the rung names chosen
 * for the stream's first publisher. `gopSec`: the encoded rungs' keyframe interval (ONAIR_GOP_SEC).
 */
export function planForPreset(
  preset: LadderPreset,
  ladder: readonly Rendition[],
  source: SourceVideo,
  codecs: SourceCodecs,
  gopSec: number,
  keepNames?: ReadonlySet<string>,
): LadderPlan {
  if (preset === 'audio') return audioOnlyPlan();
  const keep = keepNames ? ladder.filter((r) => keepNames.has(r.name)) : ladder;
  const copyable = codecs.h264 && (keepNames === undefined || keepNames.has(SOURCE_RENDITION));
  if (preset === 'custom' || !copyable) {
    if (keepNames && keep.length === 0) return audioOnlyPlan(); // a stream that had only the source rendition: nothing to encode into
    const plan = planLadder(keep.length ? keep : ladder, source, gopSec, keepNames !== undefined);
    const top = ladder.find((r) => r.name === plan.rungs[0]!.name)!;
    return preset === 'passthrough' && !keepNames ? planLadder([top], source, gopSec, true) : plan;
  }
  const { width: sw, height: sh } = source;
  const known = sw !== undefined && sh !== undefined && sw > 0 && sh > 0;
  const sourceRung: Rung = {
    name: SOURCE_RENDITION,
    width: known ? sw : 0,
    height: known ? sh : 0,
    scale: '',
    fps: source.fps && source.fps >= 1 && source.fps <= 240 ? toRational(source.fps) : { num: 0, den: 1 },
    videoKbps: codecs.videoKbps ?? 0,
    gop: 0,
    copy: true,
    copyAudio: codecs.aacCopyable,
  };
  const short = known ? Math.min(sw, sh) : undefined;
  const below = preset === 'passthrough' ? [] : keepNames ? keep : ladder.filter((r) => short === undefined || r.height < short);
  if (below.length === 0) return { rungs: [sourceRung], keyframeStep: { num: 1, den: 1 }, halfFrame: { num: 0, den: 1 } };
  const encoded = planLadder(
    below.map((r) => ({ ...r, fps: r.fps ?? LOWER_RUNG_MAX_FPS })),
    source,
    gopSec,
    true,
  );
  return { ...encoded, rungs: [sourceRung, ...encoded.rungs] };
}

/** Name of the one rendition of an audio-only source. */
export const AUDIO_RENDITION = 'audio';

/** The ladder of a source without video: one AAC rendition, its segments cut on the segment target (every AAC frame is a sync sample). */
export function audioOnlyPlan(): LadderPlan {
  const none = { num: 0, den: 1 };
  return {
    rungs: [{ name: AUDIO_RENDITION, width: 0, height: 0, scale: '', fps: none, videoKbps: 0, gop: 0, audioOnly: true }],
    keyframeStep: { num: 1, den: 1 },
    halfFrame: { num: 0, den: 1 },
  };
}

/** The ladder with the keyframe grid its rungs share. */
export interface LadderPlan {
  rungs: Rung[];
  /** Grid step in seconds, as a fraction: a whole number of frames of every rung, so every rung has a frame on each step. */
  keyframeStep: Rational;
  /** Half the shortest frame duration, as a fraction: tolerance for float noise in ffmpeg's frame times. */
  halfFrame: Rational;
}

/** Frame rate of the top rung when a rung follows the source (a 120 fps phone stream is encoded at 60). */
export const TOP_RUNG_MAX_FPS = 60;
/** Frame rate of the other rungs when they follow the source: 50 → 25, 59.94 → 29.97, 60 → 30. */
export const LOWER_RUNG_MAX_FPS = 30;
/** Frame rate assumed when the publisher does not state one. */
const UNKNOWN_SOURCE_FPS = 30;

const gcd = (a: number, b: number): number => (b === 0 ? Math.abs(a) : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

function reduce(num: number, den: number): Rational {
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

/** Value of a fraction. */
export const value = (r: Rational): number => r.num / r.den;

/** ffmpeg's spelling of a fraction (`30000/1001`, `25`). */
export const fraction = (r: Rational): string => (r.den === 1 ? String(r.num) : `${r.num}/${r.den}`);

/**
 * The exact rate behind a stated one: NTSC rates (29.97, 59.94, 23.976 → n×1000/1001) and whole numbers are
 * recognised from their rounded forms; anything else is kept to a thousandth.
 */
export function toRational(fps: number): Rational {
  const whole = Math.round(fps);
  if (Math.abs(fps - whole) < 0.005) return { num: whole, den: 1 };
  const ntsc = Math.round((fps * 1001) / 1000);
  if (Math.abs(fps - (ntsc * 1000) / 1001) < 0.005) return reduce(ntsc * 1000, 1001);
  return reduce(Math.round(fps * 1000), 1000);
}

/** The source rate divided by the smallest whole number that brings it to `cap` or under: frames are dropped evenly, never duplicated. */
export function rateUnder(source: Rational, cap: number): Rational {
  let n = 1;
  // NTSC and whole rates are 0.1 % apart: a cap of 29.97 keeps 30 (from a 60 source), a cap of 30 keeps 29.97.
  while (value(source) / n > cap * 1.0011) n++;
  return reduce(source.num, source.den * n);
}

/**
 * Rungs for a source: cut by the short side (a portrait 720×1280 source gets 720×1280, 480×854, 360×640), none
 * above the source's short side (at least the smallest rung). A rung's `fps` setting is a cap; without one the
 * top rung runs at the source rate (up to 60) and the others at up to 30: a 59.94 source gives 59.94 on top and
 * 29.97 below. `keepAll` keeps every rung (a returning publisher's stream keeps the rungs it was given). `gopSec`
 * is the keyframe interval (ONAIR_GOP_SEC, a divisor of the segment target): each rung's -g spans it.
 */
export function planLadder(ladder: readonly Rendition[], source: SourceVideo, gopSec: number, keepAll = false): LadderPlan {
  const sorted = [...ladder].sort((a, b) => b.height - a.height);
  const { width: sw, height: sh } = source;
  const known = sw !== undefined && sh !== undefined && sw > 0 && sh > 0;
  const short = known ? Math.min(sw, sh) : sh;
  const fit = short && !keepAll ? sorted.filter((r) => r.height <= short) : sorted;
  const chosen = fit.length ? fit : [sorted[sorted.length - 1]!];
  // A stated rate outside 1–240 is a muxer's guess (RTP's 90 kHz clock, a time base), not the picture rate.
  const sourceFps = source.fps && source.fps >= 1 && source.fps <= 240 ? toRational(source.fps) : undefined;
  const even = (x: number) => Math.max(2, Math.round(x / 2) * 2);

  const rates = chosen.map((r, i) => {
    const cap = r.fps ?? (i === 0 ? TOP_RUNG_MAX_FPS : LOWER_RUNG_MAX_FPS);
    return sourceFps ? rateUnder(sourceFps, cap) : toRational(r.fps ?? UNKNOWN_SOURCE_FPS);
  });

  // The least common multiple of the frame durations (den/num): every rung has a frame on each multiple.
  let step = rates.reduce((acc, r) => ({ num: lcm(acc.num, r.den), den: gcd(acc.den, r.num) }), { num: 1, den: 0 });
  step = reduce(step.num, step.den);
  // Unrelated caps (say 24 and 30000/1001) have no usable common step: use the longest frame and accept a frame of skew.
  if (value(step) > gopSec / 2) {
    const slowest = rates.reduce((a, b) => (value(a) <= value(b) ? a : b));
    step = { num: slowest.den, den: slowest.num };
  }
  const fastest = rates.reduce((a, b) => (value(a) >= value(b) ? a : b));
  const halfFrame = reduce(fastest.den, fastest.num * 2);
  const stepsPerGop = Math.ceil(gopSec / value(step) - 1e-9);

  const rungs = chosen.map((r, i): Rung => {
    const fps = rates[i]!;
    const gop = Math.round((stepsPerGop * step.num * fps.num) / (step.den * fps.den));
    if (!known) {
      return {
        name: r.name,
        width: even((r.height * 16) / 9),
        height: r.height,
        scale: `-2:${r.height}`,
        fps,
        videoKbps: r.videoKbps,
        gop,
      };
    }
    const portrait = sh > sw;
    const width = portrait ? r.height : even((sw * r.height) / sh);
    const height = portrait ? even((sh * r.height) / sw) : r.height;
    return { name: r.name, width, height, scale: `${width}:${height}`, fps, videoKbps: r.videoKbps, gop };
  });
  return { rungs, keyframeStep: step, halfFrame };
}

/**
 * Where ffmpeg's first encoded frame of a rung is, in ms of the timeline: the fps filter puts the first decoded
 * frame (presentation time `firstFrameMs`) on the rung's frame grid, rounding to the nearest frame, halves away from 0.
 */
export function firstFrameOnGrid(firstFrameMs: number, fps: Rational): { frames: number; fps: Rational } {
  const x = (firstFrameMs * fps.num) / (1000 * fps.den);
  return { frames: Math.sign(x) * Math.round(Math.abs(x)), fps };
}

/** True when every rung's first frame (see firstFrameOnGrid) is its segment's keyframe instant: the run's first segment is whole. */
export function leadOnGrid(plan: Pick<LadderPlan, 'rungs' | 'keyframeStep'>, segmentTargetSec: number, firstFrameMs: number): boolean {
  const step = value(plan.keyframeStep);
  return plan.rungs.every((r) => {
    if (r.copy || r.audioOnly) return true; // cut at the source's own keyframes, not on the grid
    const { frames, fps } = firstFrameOnGrid(firstFrameMs, r.fps);
    const t = (frames * fps.den) / fps.num;
    const k = Math.floor((t + 0.001) / segmentTargetSec);
    return Math.abs(t - Math.ceil((k * segmentTargetSec) / step - 1e-6) * step) < 0.001;
  });
}

/**
 * ffmpeg's -force_key_frames expression for one rung: a keyframe on the first frame, then on the first frame at or
 * after each interval of the timeline (t = k × interval: the GOP, which splits the segment target, so every segment
 * boundary is among them), moved up to the next grid step so that every rung
 * (59.94 and 29.97 alike) picks the same instant; the half-frame slack absorbs float noise. ffmpeg's `t` counts from
 * the rung's first encoded frame (`first`, see firstFrameOnGrid), so the expression adds that frame's timeline time.
 */
export function keyframeExpr(
  plan: Pick<LadderPlan, 'keyframeStep' | 'halfFrame'>,
  segmentTargetSec: number,
  first: { frames: number; fps: Rational } = { frames: 0, fps: { num: 1, den: 1 } },
): string {
  const s = plan.keyframeStep;
  const h = plan.halfFrame;
  const origin = `${first.frames * first.fps.den}/${first.fps.num}`;
  // Segment index of the grid instant at or before timeline time v: floor(floor((v + half) / step) × step / target).
  const index = (v: string) =>
    `floor(floor((${v}+${origin}+${h.num}/${h.den})*${s.den}/${s.num})*${s.num}/(${s.den}*${segmentTargetSec})+0.000001)`;
  return `expr:if(isnan(prev_forced_t),1,gt(${index('t')},${index('prev_forced_t')}))`;
}
