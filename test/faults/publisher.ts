// A publisher that behaves as OBS does when its connection drops: ffmpeg publishing a 360p test source over RTMP,
// started again 1-2 s after every exit, until stopped. Counts reconnects and keeps each attempt's outcome, so a
// fault can be read as "the publisher reconnected N times" and a refused publish shows ffmpeg's last words.
import { spawn, type ChildProcess } from 'node:child_process';
import { testStreamArgs } from '../../scripts/publish-test-stream.ts';

/** One ffmpeg run. */
export interface PublishAttempt {
  startedAt: number;
  endedAt?: number;
  /** ffmpeg's exit code, or the signal that ended it. */
  exit?: number | string;
  /** ffmpeg's last stderr output (at most 1000 characters). */
  stderr: string;
}

/** Options of a reconnecting publisher. */
export interface ReconnectingPublisherOptions {
  /** rtmp://host:port/live/<streamKey> */
  url: string;
  width?: number;
  height?: number;
  fps?: number;
  videoKbps?: number;
  /** Delay before starting again after an exit: uniformly within [min, max] ms (default 1000-2000, as OBS's retry). */
  retryDelayMs?: [number, number];
  ffmpegPath?: string;
}

/** A running reconnecting publisher. */
export interface ReconnectingPublisher {
  /** ffmpeg's pid while one runs. */
  readonly pid: number | undefined;
  /** Restarts after an exit so far (attempts - 1). */
  readonly reconnects: number;
  readonly attempts: readonly PublishAttempt[];
  /** Kills the running ffmpeg (SIGKILL) and starts the next one only after `holdMs` (a network outage). */
  interrupt(holdMs: number): Promise<void>;
  /** Resolves once an ffmpeg has been publishing for `forMs` without exiting (throws after `timeoutMs`). */
  waitPublishing(forMs?: number, timeoutMs?: number): Promise<void>;
  /** Stops for good: no restart, the running ffmpeg killed by pid, waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts publishing a 640x360 test pattern (x264 ultrafast, to leave the CPU to the cluster) to `o.url`. */
export function startReconnectingPublisher(o: ReconnectingPublisherOptions): ReconnectingPublisher {
  const [minDelay, maxDelay] = o.retryDelayMs ?? [1000, 2000];
  const attempts: PublishAttempt[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;
  let holdUntil = 0;
  let timer: NodeJS.Timeout | undefined;

  const launch = () => {
    timer = undefined;
    if (stopped) return;
    const args = testStreamArgs({
      url: o.url,
      width: o.width ?? 640,
      height: o.height ?? 360,
      fps: o.fps ?? 30,
      videoKbps: o.videoKbps ?? 800,
      preset: 'ultrafast',
    });
    const attempt: PublishAttempt = { startedAt: Date.now(), stderr: '' };
    attempts.push(attempt);
    const c = spawn(o.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    c.stderr!.on('data', (d: Buffer) => (attempt.stderr = (attempt.stderr + d.toString()).slice(-1000)));
    exited = new Promise<void>((resolve) => {
      c.on('close', (code, signal) => {
        attempt.endedAt = Date.now();
        attempt.exit = code ?? signal ?? undefined;
        if (child === c) child = undefined;
        resolve();
        if (stopped) return;
        const delay = minDelay + Math.random() * (maxDelay - minDelay);
        timer = setTimeout(launch, Math.max(delay, holdUntil - Date.now()));
      });
    });
  };
  launch();

  return {
    get pid() {
      return child?.pid;
    },
    get reconnects() {
      return Math.max(0, attempts.length - 1);
    },
    attempts,
    async interrupt(holdMs) {
      holdUntil = Date.now() + holdMs;
      const c = child;
      if (c?.pid !== undefined) process.kill(c.pid, 'SIGKILL');
      await exited;
    },
    async waitPublishing(forMs = 3000, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const last = attempts[attempts.length - 1];
        if (last && last.endedAt === undefined && Date.now() - last.startedAt >= forMs) return;
        if (Date.now() > deadline) throw new Error(`publisher not publishing after ${timeoutMs} ms; last attempt: ${JSON.stringify(last)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      const c = child;
      if (c?.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
      await exited;
    },
  };
}
