import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { FFMPEG_LOG_MAX_LINES, ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { checkFfmpeg, ffmpegArgs, startTranscode } from './transcoder.ts';
import { audioOnlyPlan, firstFrameOnGrid, planLadder } from './ladder.ts';

const config = loadConfig({});
const plan = (width: number, height: number, fps: number) => planLadder(config.ladder, { width, height, fps }, config.gopSec);
const GOP_MS = config.gopSec * 1000;

test('ffmpeg arguments: one decode, input timestamps kept, keyframes on a shared grid, one fMP4 pipe per rendition', () => {
  const args = ffmpegArgs(config, plan(1280, 720, 30), true);
  const joined = args.join(' ');
  assert.equal(args.filter((a) => a === '-i').length, 1);
  assert.ok(args.indexOf('-copyts') !== -1 && args.indexOf('-copyts') < args.indexOf('-i'), '-copyts on the input');
  assert.match(joined, /split=3/);
  assert.equal(args.filter((a) => a.startsWith('expr:')).length, 3, 'a keyframe expression per rung');
  assert.equal(args.filter((a) => a === '-sc_threshold').length, 3);
  assert.equal(args.filter((a) => a.includes('frag_discont')).length, 3, 'tfdt carries the timeline');
  assert.deepEqual(
    args.filter((a) => a.startsWith('pipe:') && a !== 'pipe:0'),
    ['pipe:3', 'pipe:4', 'pipe:5'],
  );
  assert.match(joined, /-frag_duration 200000 /, 'fragments of one part target (0.2 s)');
  assert.doesNotMatch(ffmpegArgs(config, plan(640, 360, 30), false).join(' '), /split|-c:a/);
});

test('ffmpeg arguments for an audio-only source: one AAC output, fragments of one part target, no video', () => {
  const args = ffmpegArgs(config, audioOnlyPlan(), true);
  const joined = args.join(' ');
  assert.match(joined, /-map 0:a:0 -c:a aac /);
  assert.doesNotMatch(joined, /-c:v|filter_complex|frag_keyframe/);
  assert.deepEqual(
    args.filter((a) => a.startsWith('pipe:') && a !== 'pipe:0'),
    ['pipe:3'],
  );
  assert.match(joined, /-frag_duration 200000 /, 'fragments of one part target (0.2 s)');
});

test('ffmpeg arguments: exact rational rates, sizes by the short side, -g per rung', () => {
  const args = ffmpegArgs(config, plan(1280, 720, 60000 / 1001), true);
  const graph = args[args.indexOf('-filter_complex') + 1]!;
  assert.match(graph, /\[s0\]fps=60000\/1001,scale=1280:720:/);
  assert.match(graph, /\[s1\]fps=30000\/1001,scale=854:480:/);
  assert.match(graph, /\[s2\]fps=30000\/1001,scale=640:360:/);
  const gops = args.flatMap((a, i) => (a === '-g' ? [args[i + 1]] : []));
  assert.deepEqual(gops, ['60', '30', '30'], 'one keyframe per 1 s GOP at every rate');
  const portraitArgs = ffmpegArgs(config, plan(720, 1280, 25), false);
  const portrait = portraitArgs[portraitArgs.indexOf('-filter_complex') + 1]!;
  assert.match(portrait, /fps=25,scale=720:1280:.*fps=25,scale=480:854:.*fps=25,scale=360:640:/);
});

/**
 * Evaluates our -force_key_frames expression the way ffmpeg 5.1 does: t = (pts - first pts) × av_q2d(1/fps), in
 * doubles, counted from the rung's first encoded frame; returns the keyframes' timeline times in ms.
 */
function keyframes(expr: string, fps: { num: number; den: number }, firstFrame: number, frames: number): number[] {
  const index = /floor\(floor\(\(t\+(\d+)\/(\d+)\+(\d+)\/(\d+)\)\*(\d+)\/(\d+)\)\*(\d+)\/\((\d+)\*([\d.]+)\)\+0\.000001\)/.exec(expr);
  assert.ok(index && expr.startsWith('expr:if(isnan(prev_forced_t),1,gt('), expr);
  const [a, b, c, d, e, f, g, h, seg] = index.slice(1).map(Number) as number[];
  const idx = (v: number) => Math.floor(Math.floor((v + a! / b! + c! / d!) * (e! / f!)) * (g! / (h! * seg!)) + 0.000001);
  const out: number[] = [];
  let prev = NaN;
  for (let n = 0; n < frames; n++) {
    const t = n * (fps.den / fps.num);
    if (Number.isNaN(prev) || idx(t) > idx(prev)) {
      out.push(Math.round(((firstFrame + n) * fps.den * 1000) / fps.num));
      prev = t;
    }
  }
  return out;
}

for (const [label, num, den] of [
  ['25', 25, 1],
  ['29.97', 30000, 1001],
  ['59.94', 60000, 1001],
  ['50', 50, 1],
] as const) {
  for (const firstMs of [0, 3_600_517, 123_456_789]) {
    test(`keyframe expression: a ${label} fps source from ${firstMs} ms on the timeline keys every rung at the same instants, on the grid`, () => {
      const p = plan(1920, 1080, num / den);
      const exprs = ffmpegArgs(config, p, false, firstMs).filter((a) => a.startsWith('expr:'));
      const seconds = 300;
      const perRung = p.rungs.map((r, i) => {
        const first = firstFrameOnGrid(firstMs, r.fps).frames;
        return keyframes(exprs[i]!, r.fps, first, Math.floor((seconds * r.fps.num) / r.fps.den)).slice(1); // the first frame is keyed anyway
      });
      for (const k of perRung) assert.deepEqual(k.slice(0, 140), perRung[0]!.slice(0, 140), 'aligned across rungs');
      const top = perRung[0]!;
      assert.ok(top.length >= seconds / config.gopSec - 2, `${top.length} keyframes`);
      // Each keyframe sits within one grid step after its GOP instant of the timeline (segment boundaries among them): numbers never drift.
      const stepMs = 1000 * (p.keyframeStep.num / p.keyframeStep.den);
      top.forEach((ms) => {
        const k = Math.floor((ms + 1) / GOP_MS);
        assert.ok(ms - k * GOP_MS >= -1 && ms - k * GOP_MS <= stepMs + 1, `keyframe at ${ms} ms`);
      });
      assert.deepEqual(
        top.map((ms) => Math.floor((ms + 1) / GOP_MS)),
        top.map((_, j) => Math.floor((top[0]! + 1) / GOP_MS) + j),
        'one keyframe per GOP',
      );
      // x264's own interval never cuts in before the grid: the longest gap is the rung's -g.
      p.rungs.forEach((r, i) => {
        const gaps = perRung[i]!.slice(1).map((ms, j) => Math.round(((ms - perRung[i]![j]!) / 1000) * (r.fps.num / r.fps.den)));
        assert.ok(Math.max(...gaps) <= r.gop, r.name);
      });
    });
  }
}

test('a missing ffmpeg gives a clear message', async () => {
  await assert.rejects(checkFfmpeg('/nonexistent/ffmpeg'), /ffmpeg not found at "\/nonexistent\/ffmpeg".*ONAIR_FFMPEG_PATH/);
  assert.match(await checkFfmpeg('ffmpeg'), /^ffmpeg version/);
});

test('a corrupt H.264 stream does not flood the log: a few ffmpeg lines, then a count', async () => {
  // 4 s of 180p H.264 with one byte in 200 damaged: ffmpeg warns a few hundred times.
  const { stdout: flv } = await promisify(execFile)(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=30',
      '-t',
      '4',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '30',
      '-bsf:v',
      'noise=amount=200',
      '-f',
      'flv',
      'pipe:1',
    ],
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
  const ladder = planLadder(
    [{ name: '180p', height: 180, fps: 30, videoKbps: 200 }],
    { width: 320, height: 180, fps: 30 },
    config.segmentTargetSec,
  );
  const t = startTranscode(config, ladder, false, logger, ffmpegLogCounter(registry));
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
  assert.equal(
    summaries.reduce((n, l) => n + (l.suppressed ?? 0), 0),
    suppressed,
  );
});
