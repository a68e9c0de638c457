// Publishes an ffmpeg test source with OBS-like settings (x264 CBR, 2 s keyframes, AAC 48 kHz) to an RTMP URL, or
// as MPEG-TS to an SRT URL (srt://host:8890?streamid=publish:<key>).
//   tsx scripts/publish-test-stream.ts rtmp://localhost/live/<key> [--duration 60] [--size 1280x720] [--fps 30] [--stamp]
// --stamp burns the publisher's wall clock into every frame (scripts/bench/stamp.ts) for latency measurement.
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { stampedSourceGraph } from './bench/stamp.ts';

/** Options of a test publisher. */
export interface TestStreamOptions {
  url: string;
  /** Seconds to publish; omit for until killed. */
  durationSec?: number;
  width?: number;
  height?: number;
  fps?: number;
  videoKbps?: number;
  ffmpegPath?: string;
  /** Burn the wall clock (ms since epoch mod 2^32) into a strip at the bottom of every frame. */
  stamp?: boolean;
  /** x264 preset of the publisher (default veryfast, as OBS); a latency run on one small machine may want ultrafast. */
  preset?: string;
}

/** ffmpeg arguments for an OBS-like live publish of a moving test pattern with a tone. */
export function testStreamArgs(o: TestStreamOptions): string[] {
  const { width = 1280, height = 720, fps = 30, videoKbps = 3000 } = o;
  const t = o.durationSec ? ['-t', String(o.durationSec)] : [];
  return [
    '-hide_banner',
    '-loglevel',
    'error',
    '-nostdin',
    // Picture and tone from one lavfi graph (outputs out0, out1): one input, one -re clock. As two inputs,
    // ffmpeg's read loop held each video frame ~0.3 s after it was generated (measured with the strip).
    '-re',
    ...t,
    '-f',
    'lavfi',
    '-i',
    `${o.stamp ? stampedSourceGraph(width, height, fps) : `testsrc2=size=${width}x${height}:rate=${fps}`}[out0];sine=frequency=440:sample_rate=48000[out1]`,
    '-c:v',
    'libx264',
    '-preset',
    o.preset ?? 'veryfast',
    '-tune',
    'zerolatency',
    '-profile:v',
    'high',
    '-pix_fmt',
    'yuv420p',
    '-b:v',
    `${videoKbps}k`,
    '-maxrate',
    `${videoKbps}k`,
    '-bufsize',
    `${videoKbps * 2}k`,
    '-g',
    String(fps * 2),
    '-keyint_min',
    String(fps * 2),
    '-sc_threshold',
    '0',
    '-c:a',
    'aac',
    '-b:a',
    '160k',
    '-ar',
    '48000',
    '-ac',
    '2',
    '-f',
    o.url.startsWith('srt://') ? 'mpegts' : 'flv',
    o.url,
  ];
}

/** Starts publishing; `done` resolves with ffmpeg's exit code. */
export function publishTestStream(o: TestStreamOptions): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(o.ffmpegPath ?? 'ffmpeg', testStreamArgs(o), { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  const done = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      if (code && err) process.stderr.write(`publisher: ${err}`);
      resolve(code);
    });
  });
  return { child, done };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { duration: { type: 'string' }, size: { type: 'string' }, fps: { type: 'string' }, stamp: { type: 'boolean' } },
  });
  const url = positionals[0];
  if (!url) {
    console.error('usage: publish-test-stream.ts rtmp://HOST/live/<streamKey> [--duration S] [--size WxH] [--fps N] [--stamp]');
    process.exit(2);
  }
  const [w, h] = (values.size ?? '1280x720').split('x').map(Number);
  const { child, done } = publishTestStream({
    url,
    durationSec: values.duration ? Number(values.duration) : undefined,
    width: w,
    height: h,
    fps: values.fps ? Number(values.fps) : undefined,
    stamp: values.stamp,
  });
  process.on('SIGINT', () => child.kill('SIGINT'));
  process.exit((await done) ?? 0);
}
