// One ffmpeg child process, handled the same way by every ffmpeg user (the origin's transcoder, the WHIP
// ingest): spawned with the caller's pipes, stderr logged under lib/ffmpeg-log.ts's rate limit, a failed spawn
// logged, and stopped with SIGTERM, then SIGKILL if it has not exited after a grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import { logFfmpegStderr, type FfmpegLogOptions } from './ffmpeg-log.ts';

/** How one ffmpeg (or compatible) process is started. */
export interface FfmpegProcessOptions {
  /** The executable (config.ffmpegPath). */
  path: string;
  args: string[];
  /** Each fd's mode from 0 up; stderr (fd 2) is always a pipe, read into the log. */
  stdio: ('pipe' | 'ignore')[];
  /** How stderr is logged; `msg` also names the process in the "failed to start" line. */
  log: FfmpegLogOptions;
  /** How long stop() waits after SIGTERM before SIGKILL. */
  killAfterMs: number;
}

/** A started ffmpeg process. */
export interface FfmpegProcess {
  readonly child: ChildProcess;
  /** Resolves when the process has exited and its pipes are closed (also after a failed spawn). */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Ends the process: SIGTERM now, SIGKILL after `killAfterMs` if it is still there; a no-op once it exited. */
  stop(): void;
}

/** Starts the process; stdin write errors (EPIPE from a dead ffmpeg) are left to `closed` to report. */
export function startFfmpegProcess(opts: FfmpegProcessOptions): FfmpegProcess {
  const stdio = [...opts.stdio];
  while (stdio.length < 3) stdio.push('ignore');
  stdio[2] = 'pipe';
  const child = spawn(opts.path, opts.args, { stdio });
  child.stdin?.on('error', () => {});
  logFfmpegStderr(child.stderr!, opts.log);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', (err) => {
      opts.log.logger.error({ ...opts.log.fields, err: err.message }, `${opts.log.msg} failed to start`);
    });
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let killTimer: NodeJS.Timeout | undefined;
  void closed.then(() => clearTimeout(killTimer));
  const stop = () => {
    // A spawn that failed (no pid) must never be signalled: until its 'error' tick, Node's kill() would reach pid 0,
    // the caller's whole process group.
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    killTimer ??= setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), opts.killAfterMs);
    killTimer.unref();
  };
  return { child, closed, stop };
}
