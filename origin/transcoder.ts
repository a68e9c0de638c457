// One ffmpeg child per live run: FLV on stdin, one fragmented-MP4 rendition per extra pipe.
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import type { Config, Rendition } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { FfmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { startFfmpegProcess } from '../lib/ffmpeg-process.ts';

/** The ladder for a source: rungs above the source height are dropped (never upscaled); at least one rung. */
export function ladderFor(ladder: Rendition[], sourceHeight: number | undefined): Rendition[] {
  const sorted = [...ladder].sort((a, b) => b.height - a.height);
  if (!sourceHeight) return sorted;
  const fit = sorted.filter((r) => r.height <= sourceHeight);
  return fit.length ? fit : [sorted[sorted.length - 1]!];
}

/** ffmpeg arguments: decode once, split and scale, encode each rung with keyframes on segment boundaries. */
export function ffmpegArgs(
  config: Pick<Config, 'x264Preset' | 'segmentTargetSec' | 'partTargetSec' | 'audioKbps'>,
  renditions: Rendition[],
  hasAudio: boolean,
): string[] {
  const n = renditions.length;
  const split = n > 1 ? `[0:v]split=${n}${renditions.map((_, i) => `[s${i}]`).join('')};` : '';
  const scales = renditions
    .map((r, i) => `[${n > 1 ? `s${i}` : '0:v'}]fps=${r.fps},scale=-2:${r.height}:flags=bicubic,format=yuv420p[v${i}]`)
    .join(';');
  const args = [
    '-hide_banner',
    '-loglevel', 'warning',
    '-nostdin',
    // Not `-fflags +nobuffer`: it drops the packets read while probing the input, so the audio reached the muxer
    // ~1 s late in one burst and the first segment got parts far under 85 % of PART-TARGET (RFC 8216bis §4.4.4.9).
    '-f', 'flv',
    '-i', 'pipe:0',
    '-filter_complex', split + scales,
  ];
  const seg = config.segmentTargetSec;
  renditions.forEach((r, i) => {
    const gop = Math.round(r.fps * seg);
    args.push(
      '-map', `[v${i}]`,
      ...(hasAudio ? ['-map', '0:a:0'] : []),
      '-c:v', 'libx264',
      '-preset', config.x264Preset,
      '-tune', 'zerolatency',
      '-profile:v', 'high',
      '-b:v', `${r.videoKbps}k`,
      '-maxrate', `${Math.round(r.videoKbps * 1.1)}k`,
      '-bufsize', `${r.videoKbps * 2}k`,
      '-g', String(gop),
      '-keyint_min', String(gop),
      '-sc_threshold', '0',
      '-force_key_frames', `expr:gte(t,n_forced*${seg})`,
      ...(hasAudio ? ['-c:a', 'aac', '-b:a', `${config.audioKbps}k`, '-ar', '48000', '-ac', '2'] : []),
      '-f', 'mp4',
      // Leave AAC's 1024-sample priming at a negative time instead of shifting every track by it: shifted, the
      // first video part of each run lasted 0.521 s, which raised PART-TARGET (and PART-HOLD-BACK) for good.
      '-avoid_negative_ts', 'disabled',
      '-movflags', '+frag_keyframe+empty_moov+default_base_moof',
      '-frag_duration', String(Math.round(config.partTargetSec * 1_000_000)),
      `pipe:${3 + i}`,
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

/** Starts ffmpeg for `renditions`; stderr lines go to the log, rate-limited (lib/ffmpeg-log.ts) and counted on `logLines`. */
export function startTranscode(
  config: Config,
  renditions: Rendition[],
  hasAudio: boolean,
  logger: Logger,
  logLines?: FfmpegLogCounter,
): Transcode {
  const stdio: ('pipe' | 'ignore')[] = ['pipe', 'ignore', 'pipe', ...renditions.map(() => 'pipe' as const), 'pipe'];
  const progressFd = 3 + renditions.length;
  const { child, closed, stop: kill } = startFfmpegProcess({
    path: config.ffmpegPath,
    args: ['-progress', `pipe:${progressFd}`, '-stats_period', '1', ...ffmpegArgs(config, renditions, hasAudio)],
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
