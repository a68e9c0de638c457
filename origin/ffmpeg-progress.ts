// Reads ffmpeg's `-progress` output (blocks of key=value lines ending in `progress=continue|end`) into
// transcode health: speed relative to realtime, output frame rate, dropped and duplicated frames.
import type { Readable } from 'node:stream';

/** The latest transcode health of a live stream. */
export interface TranscodeStats {
  /** Encoding speed relative to realtime (1 = realtime); null until ffmpeg reports one. */
  speed: number | null;
  /** Output frames per second as ffmpeg reports it. */
  fps: number | null;
  /** Frames dropped since this ffmpeg run started (cumulative). */
  dropFrames: number;
  /** Frames duplicated since this ffmpeg run started (cumulative). */
  dupFrames: number;
  /** Media time encoded so far in this run, seconds. */
  outTimeSec: number;
  /** When this report arrived (ms since epoch). */
  at: number;
}

/** Parses one progress block (`key=value` lines); undefined if it holds no progress key. */
export function parseProgressBlock(block: string, at = Date.now()): TranscodeStats | undefined {
  const kv = new Map<string, string>();
  for (const line of block.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) kv.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  if (!kv.has('progress')) return undefined;
  const num = (v: string | undefined): number | null => {
    const n = Number.parseFloat(v ?? '');
    return Number.isFinite(n) ? n : null;
  };
  return {
    speed: num(kv.get('speed')?.replace(/x$/, '')),
    fps: num(kv.get('fps')),
    dropFrames: num(kv.get('drop_frames')) ?? 0,
    dupFrames: num(kv.get('dup_frames')) ?? 0,
    outTimeSec: (num(kv.get('out_time_us')) ?? 0) / 1e6,
    at,
  };
}

/** Calls `onStats` for every progress block read from `stream`. */
export function readProgress(stream: Readable, onStats: (s: TranscodeStats) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    for (let end = buf.search(/progress=\w+\n/); end >= 0; end = buf.search(/progress=\w+\n/)) {
      const stop = buf.indexOf('\n', end) + 1;
      const stats = parseProgressBlock(buf.slice(0, stop));
      buf = buf.slice(stop);
      if (stats) onStats(stats);
    }
    if (buf.length > 64 * 1024) buf = '';
  });
  stream.on('error', () => {});
}
