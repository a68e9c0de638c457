// Tests of lib/ffmpeg-process.ts: a real short ffmpeg run, stderr into the log, stop-then-kill.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { createLogger } from './logger.ts';
import { startFfmpegProcess } from './ffmpeg-process.ts';

const FFMPEG = process.env.ONAIR_FFMPEG_PATH ?? 'ffmpeg';

/** pino JSON lines written to an array. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger('debug', stream), lines };
}

test('a short ffmpeg run: its output pipe carries the media, it exits 0, and stderr lines reach the log with the fields', async () => {
  const { logger, lines } = capture();
  const ff = startFfmpegProcess({
    path: FFMPEG,
    // One second of silence as raw PCM on stdout.
    args: [
      '-hide_banner',
      '-loglevel',
      'warning',
      '-nostdin',
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=8000:cl=mono',
      '-t',
      '1',
      '-f',
      's16le',
      'pipe:1',
    ],
    stdio: ['ignore', 'pipe'],
    log: { logger, msg: 'test ffmpeg', fields: { eventId: 'ev1' }, source: 'transcoder' },
    killAfterMs: 1_000,
  });
  let bytes = 0;
  ff.child.stdout!.on('data', (b: Buffer) => (bytes += b.length));
  assert.deepEqual(await ff.closed, { code: 0, signal: null });
  assert.equal(bytes, 16_000, 'one second of 8 kHz 16-bit mono');
  ff.stop(); // a no-op once exited

  const bad = startFfmpegProcess({
    path: FFMPEG,
    args: ['-hide_banner', '-nostdin', '-i', '/nonexistent/input.flv', '-f', 'null', '-'],
    stdio: ['ignore', 'ignore'],
    log: { logger, msg: 'test ffmpeg', fields: { eventId: 'ev2' }, source: 'transcoder' },
    killAfterMs: 1_000,
  });
  const exit = await bad.closed;
  assert.notEqual(exit.code, 0);
  await new Promise((resolve) => setImmediate(resolve));
  const line = lines.find((l) => l.eventId === 'ev2' && /nonexistent/.test(String(l.ffmpeg)));
  assert.ok(line, `stderr logged: ${JSON.stringify(lines)}`);
  assert.equal(line.msg, 'test ffmpeg');
});

test('a spawn that fails is logged and still settles `closed`', async () => {
  const { logger, lines } = capture();
  const ff = startFfmpegProcess({
    path: '/nonexistent/ffmpeg',
    args: [],
    stdio: ['pipe', 'pipe'],
    log: { logger, msg: 'test ffmpeg', source: 'whip' },
    killAfterMs: 1_000,
  });
  await ff.closed;
  assert.ok(lines.some((l) => l.msg === 'test ffmpeg failed to start'));
});

/** A node child that says "ready" on stderr once its SIGTERM handling is set up. */
function child(ignoreTerm: boolean) {
  const { logger, lines } = capture();
  const script = `${ignoreTerm ? "process.on('SIGTERM', () => {});" : ''} setInterval(() => {}, 1000); console.error('ready');`;
  const p = startFfmpegProcess({
    path: process.execPath,
    args: ['-e', script],
    stdio: ['pipe', 'ignore'],
    log: { logger, msg: 'child', source: 'transcoder' },
    killAfterMs: 300,
  });
  return { p, lines };
}

test('stop() sends SIGTERM; a process that ignores it is killed (SIGKILL) after the grace period', async () => {
  const polite = child(false);
  await once(polite.p.child.stderr!, 'data');
  polite.p.stop();
  assert.equal((await polite.p.closed).signal, 'SIGTERM');

  const stubborn = child(true);
  await once(stubborn.p.child.stderr!, 'data');
  const t0 = Date.now();
  stubborn.p.stop();
  stubborn.p.stop(); // a second stop does not restart the grace period
  assert.equal((await stubborn.p.closed).signal, 'SIGKILL');
  assert.ok(Date.now() - t0 >= 250, 'waited for the grace period first');
});
