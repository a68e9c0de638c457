import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { FFMPEG_LOG_MAX_LINES, ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { checkFfmpeg, ffmpegArgs, ladderFor, startTranscode } from './transcoder.ts';

const config = loadConfig({});

test('renditions above the source height are dropped, never upscaled', () => {
  assert.deepEqual(ladderFor(config.ladder, 1080).map((r) => r.name), ['720p', '480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 720).map((r) => r.name), ['720p', '480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 540).map((r) => r.name), ['480p', '360p']);
  assert.deepEqual(ladderFor(config.ladder, 240).map((r) => r.name), ['360p'], 'smallest rung for a tiny source');
  assert.deepEqual(ladderFor(config.ladder, undefined).map((r) => r.name), ['720p', '480p', '360p']);
});

test('ffmpeg arguments: one decode, fixed GOP on the segment target, one fMP4 pipe per rendition', () => {
  const args = ffmpegArgs(config, ladderFor(config.ladder, 720), true);
  const joined = args.join(' ');
  assert.equal(args.filter((a) => a === '-i').length, 1);
  assert.match(joined, /split=3/);
  assert.equal(args.filter((a) => a === 'expr:gte(t,n_forced*2)').length, 3);
  assert.equal(args.filter((a) => a === '-sc_threshold').length, 3);
  assert.deepEqual(args.filter((a) => a.startsWith('pipe:') && a !== 'pipe:0'), ['pipe:3', 'pipe:4', 'pipe:5']);
  assert.match(joined, /-frag_duration 500000/);
  assert.doesNotMatch(ffmpegArgs(config, ladderFor(config.ladder, 360), false).join(' '), /split|-c:a/);
});

test('a missing ffmpeg gives a clear message', async () => {
  await assert.rejects(checkFfmpeg('/nonexistent/ffmpeg'), /ffmpeg not found at "\/nonexistent\/ffmpeg".*ONAIR_FFMPEG_PATH/);
  assert.match(await checkFfmpeg('ffmpeg'), /^ffmpeg version/);
});

test('a corrupt H.264 stream does not flood the log: a few ffmpeg lines, then a count', async () => {
  // 4 s of 180p H.264 with one byte in 200 damaged: ffmpeg warns a few hundred times.
  const { stdout: flv } = await promisify(execFile)(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30', '-t', '4', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '30', '-bsf:v', 'noise=amount=200', '-f', 'flv', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 << 20 },
  );
  const lines: { msg: string; suppressed?: number }[] = [];
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { msg: string });
        cb();
      },
    }),
  );
  const registry = createMetricsRegistry();
  const t = startTranscode(config, [{ name: '180p', height: 180, fps: 30, videoKbps: 200 }], false, logger, ffmpegLogCounter(registry));
  t.outputs.forEach((o) => o.resume());
  t.input.end(flv);
  await t.closed;
  await new Promise((r) => setImmediate(r));
  const counted = (await registry.getSingleMetric('onair_ffmpeg_log_lines_total')!.get()).values;
  const total = counted.reduce((n, v) => n + v.value, 0);
  const suppressed = counted.filter((v) => v.labels.suppressed === 'true').reduce((n, v) => n + v.value, 0);
  const logged = lines.filter((l) => l.msg === 'ffmpeg').length;
  assert.ok(logged <= FFMPEG_LOG_MAX_LINES, `${logged} ffmpeg lines logged`);
  assert.ok(total > 100, `ffmpeg printed only ${total} lines: the stream was not corrupt enough to test`);
  const summaries = lines.filter((l) => /^ffmpeg: suppressed \d+ lines$/.test(l.msg));
  assert.ok(summaries.length >= 1 && summaries.length <= 2, `${summaries.length} summary lines`);
  assert.equal(summaries.reduce((n, l) => n + (l.suppressed ?? 0), 0), suppressed);
});
