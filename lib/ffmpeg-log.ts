// ffmpeg's stderr into the log, rate-limited per process. A corrupt stream makes ffmpeg print a warning per
// packet (4,207 lines in 20 s for a garbled SPS/PPS), which would drown every other line of the log: each
// process logs at most a few lines per window, then one summary line with how many it left out.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Logger } from './logger.ts';
import { Counter, sharedMetric, type Registry } from './metrics.ts';

/** Lines one ffmpeg process may log per window; the rest are counted. */
export const FFMPEG_LOG_MAX_LINES = 20;
/** The rate limit's window. */
export const FFMPEG_LOG_WINDOW_MS = 10_000;
/** Longer lines are cut (ffmpeg's are short; a garbled one must not be a megabyte of log). */
const MAX_LINE_CHARS = 1_000;

/** `onair_ffmpeg_log_lines_total`: ffmpeg stderr lines by ffmpeg user, level, and whether they were left out. */
export type FfmpegLogCounter = Counter;

/** The ffmpeg log-line counter of `registry` (created once, shared by the transcoder and WHIP ingest). */
export function ffmpegLogCounter(registry: Registry): FfmpegLogCounter {
  return sharedMetric(
    registry,
    Counter,
    'onair_ffmpeg_log_lines_total',
    'ffmpeg stderr lines, by ffmpeg user (transcoder, whip), level, and whether the per-process rate limit left them out of the log.',
    ['source', 'level', 'suppressed'],
  );
}

/** A fixed-window line budget: which lines to log, and how many were left out. */
export class LineBudget {
  #windowStart = Number.NEGATIVE_INFINITY;
  #used = 0;
  #suppressed = 0;

  constructor(
    readonly maxLines = FFMPEG_LOG_MAX_LINES,
    readonly windowMs = FFMPEG_LOG_WINDOW_MS,
    readonly now: () => number = Date.now,
  ) {}

  /** Takes one line: `log` says whether to write it; `summary`, the lines left out in the window that just ended and not yet reported. */
  take(): { log: boolean; summary?: number } {
    const t = this.now();
    let summary: number | undefined;
    if (t - this.#windowStart >= this.windowMs) {
      summary = this.drain() || undefined;
      this.#windowStart = t;
      this.#used = 0;
    }
    if (this.#used < this.maxLines) {
      this.#used++;
      return { log: true, summary };
    }
    this.#suppressed++;
    return { log: false, summary };
  }

  /** Lines left out and not yet reported; reporting them resets the count. */
  drain(): number {
    const n = this.#suppressed;
    this.#suppressed = 0;
    return n;
  }

  /** When the current window ends, on `now`'s clock. */
  get windowEnd(): number {
    return this.#windowStart + this.windowMs;
  }
}

/** How one ffmpeg process's stderr is logged. */
export interface FfmpegLogOptions {
  logger: Logger;
  /** The log message of each line (the line itself goes in the `ffmpeg` field). */
  msg: string;
  /** Fields added to every line, e.g. the event id. */
  fields?: Record<string, unknown>;
  /** The level of a line: `debug` for expected notices; default `warn`. */
  level?: (line: string) => 'warn' | 'debug';
  counter?: FfmpegLogCounter;
  /** The counter's `source` label. */
  source: 'transcoder' | 'whip' | 'srt' | 'whep';
  /** Default: FFMPEG_LOG_MAX_LINES per FFMPEG_LOG_WINDOW_MS on the wall clock. */
  budget?: LineBudget;
}

/** Logs `stderr`'s lines (one ffmpeg process) under a LineBudget; a summary line reports what was left out. */
export function logFfmpegStderr(stderr: Readable, opts: FfmpegLogOptions): void {
  const { logger, msg, fields, counter, source } = opts;
  const budget = opts.budget ?? new LineBudget();
  let timer: NodeJS.Timeout | undefined;
  const summarize = (n: number) => {
    logger.warn({ ...fields, suppressed: n, windowSec: budget.windowMs / 1000 }, `${msg}: suppressed ${n} lines`);
  };
  const report = () => {
    clearTimeout(timer);
    timer = undefined;
    const n = budget.drain();
    if (n > 0) summarize(n);
  };
  createInterface({ input: stderr })
    .on('line', (raw) => {
      const line = raw.trim().slice(0, MAX_LINE_CHARS);
      if (!line) return;
      const level = opts.level?.(line) ?? 'warn';
      const { log, summary } = budget.take();
      if (summary) summarize(summary);
      counter?.inc({ source, level, suppressed: String(!log) });
      if (log) {
        logger[level]({ ...fields, ffmpeg: line }, msg);
      } else if (!timer) {
        // The summary goes out when the window ends, even if ffmpeg says nothing more.
        timer = setTimeout(report, Math.max(0, budget.windowEnd - budget.now()));
        timer.unref();
      }
    })
    .on('close', report);
}
