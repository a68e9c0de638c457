// Unit tests of the latency bench's pure reductions: quantiles, freezes between displayed frames, and a page state
// reduced to the reported figures (a real-time run has no hls.js latency nor PDT, and counts frames per mode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freezes, quantile, summarize } from './measure.ts';
import type { LatencyPageState } from './page.ts';

test('quantile is nearest rank, null when empty', () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([5, 1, 3], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.95), 4);
});

test('a freeze is a gap above max(3 × median gap, median + 150 ms)', () => {
  const at30fps = Array.from({ length: 100 }, (_, i) => i * 33);
  assert.deepEqual(freezes(at30fps), { count: 0, ms: 0 }, 'steady 30 fps');
  // Median 33 ms: the threshold is 183 ms. 150 ms is jitter, 400 ms a freeze.
  const times = [...at30fps];
  for (let i = 50; i < times.length; i++) times[i]! += 117; // a 150 ms gap at 50
  for (let i = 80; i < times.length; i++) times[i]! += 367; // a 400 ms gap at 80
  assert.deepEqual(freezes(times), { count: 1, ms: 400 });
  // At 5 fps (200 ms frames) the threshold is 600 ms.
  assert.deepEqual(freezes([0, 200, 400, 600, 1200, 1400, 2100]), { count: 1, ms: 700 });
  assert.deepEqual(freezes([]), { count: 0, ms: 0 });
  assert.deepEqual(freezes([42]), { count: 0, ms: 0 });
});

test('summarize: a real-time run (no hls.js, no PDT) reports no hls.js latency, and counts frames per mode', () => {
  const state: LatencyPageState = {
    samples: [
      [1000, 300, 540, -1, -1],
      [1033, 320, 540, -1, -1],
      [1066, 280, 540, -1, -1],
      [1600, 310, 540, -1, -1],
    ],
    frames: 5,
    misreads: 1,
    stalls: 0,
    stalledMs: 0,
    ttffMs: 812.4,
    ttffFromPageMs: 812.4,
    errors: ['x', 'x', 'y'],
    targetLatencyMs: null,
    modes: { whep: 5 },
  };
  const s = summarize(state);
  assert.equal(s.p50, 300);
  assert.equal(s.p95, 320);
  assert.equal(s.hlsLatencyP50, null);
  assert.equal(s.ingestToDisplayP50, null);
  assert.deepEqual({ freezes: s.freezes, frozenMs: s.frozenMs }, { freezes: 1, frozenMs: 534 });
  assert.equal(s.ttffMs, 812);
  assert.deepEqual(s.modes, { whep: 5 });
  assert.deepEqual(s.heights, { 540: 4 });
  assert.deepEqual(s.errors, ['x', 'y']);
});

test('summarize: an hls.js run keeps its latency estimate and display minus PDT', () => {
  const state: LatencyPageState = {
    samples: [
      [0, 900, 480, 700, 600],
      [33, 910, 480, 710, -1],
    ],
    frames: 2,
    misreads: 0,
    stalls: 1,
    stalledMs: 120.6,
    ttffMs: undefined,
    ttffFromPageMs: undefined,
    errors: [],
    targetLatencyMs: 800,
    modes: { hls: 2 },
  };
  const s = summarize(state);
  assert.equal(s.hlsLatencyP50, 700);
  assert.equal(s.ingestToDisplayP50, 600);
  assert.equal(s.ttffMs, null);
  assert.equal(s.stalledMs, 121);
});
