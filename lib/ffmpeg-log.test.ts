import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Writable } from 'node:stream';
import { once } from 'node:events';
import { createLogger } from './logger.ts';
import { createMetricsRegistry } from './metrics.ts';
import { LineBudget, ffmpegLogCounter, logFfmpegStderr } from './ffmpeg-log.ts';

test('a line budget logs N lines per window, then counts the rest and reports them once', () => {
  let now = 1_000;
  const budget = new LineBudget(3, 10_000, () => now);
  const takes = Array.from({ length: 10 }, () => budget.take());
  assert.deepEqual(
    takes.map((t) => t.log),
    [true, true, true, false, false, false, false, false, false, false],
  );
  assert.ok(takes.every((t) => t.summary === undefined));
  assert.equal(budget.windowEnd, 11_000);
  now = 10_999;
  assert.deepEqual(budget.take(), { log: false, summary: undefined }, 'same window');
  now = 11_000;
  assert.deepEqual(budget.take(), { log: true, summary: 8 }, 'a new window reports the last one');
  assert.equal(budget.drain(), 0);
  now = 50_000;
  assert.deepEqual(budget.take(), { log: true, summary: undefined }, 'nothing left out, nothing to report');
  budget.take();
  budget.take();
  budget.take();
  assert.equal(budget.drain(), 1, 'drained on demand (process exit, window timer)');
  assert.equal(budget.drain(), 0);
});

/** pino JSON lines written to a buffer. */
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

test('a flood of ffmpeg lines stays bounded in the log and is counted in the metrics', async () => {
  let now = 0;
  const { logger, lines } = capture();
  const registry = createMetricsRegistry();
  const stderr = new PassThrough();
  logFfmpegStderr(stderr, {
    logger,
    msg: 'ffmpeg',
    fields: { eventId: 'ev1' },
    source: 'transcoder',
    level: (l) => (l.startsWith('note') ? 'debug' : 'warn'),
    counter: ffmpegLogCounter(registry),
    budget: new LineBudget(5, 10_000, () => now),
  });
  const write = async (text: string) => {
    stderr.write(text);
    await new Promise((r) => setImmediate(r)); // readline emits on the next turn
  };
  // 20 s of a corrupt stream: 200 lines a second.
  for (let s = 0; s < 20; s++) {
    now = s * 1000;
    await write('[h264 @ 0x55] non-existing PPS 0 referenced\n'.repeat(200));
  }
  await write('note: expected\n\n   \n');
  stderr.end();
  await once(stderr, 'end');
  await new Promise((r) => setImmediate(r));

  const perLine = lines.filter((l) => l.msg === 'ffmpeg');
  const summaries = lines.filter((l) => String(l.msg).includes('suppressed'));
  assert.equal(perLine.length, 10, 'five lines in each of two windows');
  assert.ok(perLine.every((l) => l.eventId === 'ev1' && l.level === 40 && String(l.ffmpeg).includes('non-existing PPS')));
  assert.deepEqual(
    summaries.map((l) => [l.msg, l.suppressed, l.eventId]),
    [
      ['ffmpeg: suppressed 1995 lines', 1995, 'ev1'],
      ['ffmpeg: suppressed 1996 lines', 1996, 'ev1'], // the second window's, and the note, reported at exit
    ],
  );
  const counts = (await registry.getSingleMetric('onair_ffmpeg_log_lines_total')!.get()).values;
  const count = (level: string, suppressed: string) =>
    counts.find((v) => v.labels.source === 'transcoder' && v.labels.level === level && v.labels.suppressed === suppressed)?.value;
  assert.equal(count('warn', 'false'), 10);
  assert.equal(count('warn', 'true'), 3990);
  assert.equal(count('debug', 'true'), 1);
});

test('the summary goes out when the window ends, even if ffmpeg falls silent', async () => {
  const { logger, lines } = capture();
  const stderr = new PassThrough();
  logFfmpegStderr(stderr, { logger, msg: 'whip ffmpeg', source: 'whip', budget: new LineBudget(1, 50) });
  stderr.write('a\nb\nc\n');
  const deadline = Date.now() + 5_000;
  while (!lines.some((l) => l.msg === 'whip ffmpeg: suppressed 2 lines')) {
    assert.ok(Date.now() < deadline, 'no summary line');
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(lines.filter((l) => l.msg === 'whip ffmpeg').length, 1);
  stderr.end();
});
