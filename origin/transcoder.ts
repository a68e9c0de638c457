// One ffmpeg child per live run: FLV on stdin, one fragmented-MP4 rendition per extra pipe.
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { FfmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { startFfmpegProcess } from '../lib/ffmpeg-process.ts';
import { firstFrameOnGrid, fraction, keyframeExpr, type LadderPlan } from './ladder.ts';

/**
 * What ffmpeg adds to the feed's timestamps (-itsoffset): the AAC encoder's priming (1024 samples) sits before the
 * first input sample, and at timeline t = 0 it would be negative, which a tfdt cannot carry. A whole number of frames at
 * every rate a rung can have (n/1000 and n/1001 fps), so the frame grids stay where they are on the timeline.
 */
export const FFMPEG_TS_OFFSET_SEC = 1_001_000;

/**
 * ffmpeg arguments: decode once, split and scale, encode each rung with keyframes on segment boundaries of the
 * feed's timeline. ffmpeg keeps the feed's timestamps (-copyts, and frag_discont so that each fragment's tfdt is
 * its timeline time): the packager numbers segments from them. `firstFrameMs` is the presentation time of the
 * first video frame ffmpeg will decode (the keyframe the run starts on).
 */
export function ffmpegArgs(
  config: Pick<Config, 'x264Preset' | 'segmentTargetSec' | 'partTargetSec' | 'gopSec' | 'audioKbps'>,
  plan: LadderPlan,
  hasAudio: boolean,
  firstFrameMs = 0,
): string[] {
  const input = [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    // Not `-fflags +nobuffer`: it drops the packets read while probing the input, so the audio reached the muxer
    // ~1 s late in one burst and the first segment got parts far under 85 % of PART-TARGET (RFC 8216bis §4.4.4.9).
    '-copyts',
    // The decoder without frame threading (slice threads instead): frame threads hold back one frame per thread,
    // 40-45 ms of part lag on two cores. B-frame sources still decode in order (the SPS gives the reorder depth).
    '-flags',
    'low_delay',
    '-itsoffset',
    String(FFMPEG_TS_OFFSET_SEC),
    '-f',
    'flv',
    '-i',
    'pipe:0',
  ];
  const audio = ['-c:a', 'aac', '-b:a', `${config.audioKbps}k`, '-ar', '48000', '-ac', '2'];
  // Leave AAC's 1024-sample priming at a negative time instead of shifting every track by it: shifted, the
  // first video part of each run lasted 0.521 s, which raised PART-TARGET (and PART-HOLD-BACK) for good.
  const negativeTs = ['-avoid_negative_ts', 'disabled'];
  const fragDuration = ['-frag_duration', String(Math.round(config.partTargetSec * 1_000_000))];
  // Fragmented MP4 on pipe `fd`, a fragment per part target and at every keyframe. frag_discont: tfdt carries the
  // input's timestamps instead of counting from the run's first sample.
  const fmp4Out = (fd: number) => [
    '-f',
    'mp4',
    ...negativeTs,
    '-movflags',
    '+frag_keyframe+empty_moov+default_base_moof+frag_discont',
    ...fragDuration,
    `pipe:${fd}`,
  ];
  if (plan.rungs.length === 1 && plan.rungs[0]!.audioOnly) {
    // No picture: one AAC output in fragments of one part target (frag_keyframe only ever cuts at video keyframes).
    return [
      ...input,
      '-map',
      '0:a:0',
      ...audio,
      '-f',
      'mp4',
      ...negativeTs,
      '-movflags',
      '+empty_moov+default_base_moof+frag_discont',
      ...fragDuration,
      'pipe:3',
    ];
  }
  const renditions = plan.rungs;
  const encoded = renditions.filter((r) => !r.copy);
  const n = encoded.length;
  const split = n > 1 ? `[0:v]split=${n}${encoded.map((_, i) => `[s${i}]`).join('')};` : '';
  // The fps filter puts each rung on its own exact frame grid (30000/1001 stays exact); at the source rate it only
  // evens out the publisher's millisecond timestamps, below it drops frames evenly. It never duplicates.
  const scales = encoded
    .map((r, i) => `[${n > 1 ? `s${i}` : '0:v'}]fps=${fraction(r.fps)},scale=${r.scale}:flags=bicubic,format=yuv420p[v${i}]`)
    .join(';');
  const args = n > 0 ? [...input, '-filter_complex', split + scales] : [...input];
  let e = 0;
  renditions.forEach((r, i) => {
    if (r.copy) {
      // The source rendition: the publisher's H.264 as it came (no decode, no encode), fragments cut at its own
      // keyframes (frag_keyframe) and at the part target in between; audio copied when it is AAC at 44.1/48 kHz.
      args.push(
        '-map',
        '0:v:0',
        ...(hasAudio ? ['-map', '0:a:0?'] : []),
        '-c:v',
        'copy',
        ...(hasAudio ? (r.copyAudio ? ['-c:a', 'copy'] : audio) : []),
        ...fmp4Out(3 + i),
      );
      return;
    }
    const v = e++;
    // A keyframe every GOP (ONAIR_GOP_SEC), which splits the segment target: segment boundaries are among them.
    const forceKeyFrames = keyframeExpr(plan, config.gopSec, firstFrameOnGrid(firstFrameMs, r.fps));
    const gop = r.gop;
    args.push(
      '-map',
      `[v${v}]`,
      // Optional (`?`): audio the metadata announced but that never came must not stop the picture.
      ...(hasAudio ? ['-map', '0:a:0?'] : []),
      '-c:v',
      'libx264',
      '-preset',
      config.x264Preset,
      '-tune',
      'zerolatency',
      '-profile:v',
      'high',
      '-b:v',
      `${r.videoKbps}k`,
      '-maxrate',
      `${Math.round(r.videoKbps * 1.1)}k`,
      '-bufsize',
      `${r.videoKbps * 2}k`,
      '-g',
      String(gop),
      '-keyint_min',
      String(gop),
      '-sc_threshold',
      '0',
      '-force_key_frames',
      forceKeyFrames,
      // The fps filter already made the frames constant-rate; the mp4 muxer's default (cfr) would add a copy of
      // the first frame when the video starts a frame after the audio.
      '-fps_mode',
      'passthrough',
      ...(hasAudio ? audio : []),
      ...fmp4Out(3 + i),
    );
  });
  return args;
}

/** ffmpeg's start-up notices about `-avoid_negative_ts disabled` with `empty_moov`. */
const PRIMING_NOTICES = /No meaningful edit list will be written|starts with a nonzero dts -?\d+, while the moov already has been written/;

/** How long a stopped encode may take to exit after SIGTERM before SIGKILL. */
const KILL_AFTER_MS = 3_000;

/** A running ffmpeg ladder encode. */
export interface Transcode {
  readonly child: ChildProcess;
  /** FLV goes in here. */
  readonly input: Writable;
  /** One fMP4 stream per rendition, in ladder order. */
  readonly outputs: Readable[];
  /** Resolves when ffmpeg has exited and every output pipe is drained. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Ends the process (SIGTERM, then SIGKILL after a grace period). */
  kill(): void;
  /** ffmpeg's `-progress` key=value report (speed, fps, drop_frames, …), about once a second. */
  readonly progress: Readable;
}

/** Starts ffmpeg for the ladder `plan`; stderr lines go to the log, rate-limited (lib/ffmpeg-log.ts) and counted on `logLines`. */
export function startTranscode(
  config: Config,
  plan: LadderPlan,
  hasAudio: boolean,
  logger: Logger,
  logLines?: FfmpegLogCounter,
  firstFrameMs = 0,
): Transcode {
  const renditions = plan.rungs;
  const stdio: ('pipe' | 'ignore')[] = ['pipe', 'ignore', 'pipe', ...renditions.map(() => 'pipe' as const), 'pipe'];
  const progressFd = 3 + renditions.length;
  const {
    child,
    closed,
    stop: kill,
  } = startFfmpegProcess({
    path: config.ffmpegPath,
    args: ['-progress', `pipe:${progressFd}`, '-stats_period', '1', ...ffmpegArgs(config, plan, hasAudio, firstFrameMs)],
    stdio,
    log: {
      logger,
      msg: 'ffmpeg',
      source: 'transcoder',
      counter: logLines,
      // Each output says once that the priming left at a negative time gets no edit list: expected, see above.
      level: (line) => (PRIMING_NOTICES.test(line) ? 'debug' : 'warn'),
    },
    killAfterMs: KILL_AFTER_MS,
  });
  const progress = child.stdio[progressFd] as Readable;
  progress.resume(); // never let an unread progress pipe stall ffmpeg
  // A dead ffmpeg makes writes fail with EPIPE; `closed` reports it.
  const input = child.stdin!;
  const outputs = renditions.map((_, i) => child.stdio[3 + i] as Readable);
  return { child, input, outputs, closed, kill, progress };
}

/** Checks that ffmpeg runs and has libx264 and aac; resolves to its version line or throws a clear message. */
export async function checkFfmpeg(ffmpegPath: string): Promise<string> {
  const run = promisify(execFile);
  let version: string;
  try {
    version = (await run(ffmpegPath, ['-hide_banner', '-version'])).stdout.split('\n')[0] ?? '';
  } catch {
    throw new Error(
      `ffmpeg not found at "${ffmpegPath}": install it (scripts/install-prereqs.sh, or apt-get install ffmpeg) or set ONAIR_FFMPEG_PATH`,
    );
  }
  const encoders = (await run(ffmpegPath, ['-hide_banner', '-encoders'], { maxBuffer: 4 << 20 })).stdout;
  for (const enc of ['libx264', 'aac']) {
    if (!new RegExp(`\\s${enc}\\s`).test(encoders)) throw new Error(`ffmpeg at "${ffmpegPath}" lacks the ${enc} encoder`);
  }
  return version;
}
