import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeTarget, mergeIntervals, missedTarget, summarizeWindow, type ViewerRecord } from './measure.ts';

const base: ViewerRecord = {
  now: 20_000,
  firstPlayingAt: 1_000,
  waits: [],
  freezes: [],
  fatal: [],
  errors: [],
  ccChanges: [],
  rebuilds: [],
  states: [],
  position: 19,
  lastProgressAt: 20_000,
};

test('mergeIntervals joins overlapping waits and freezes and closes open ones at now', () => {
  assert.deepEqual(
    mergeIntervals([{ start: 5_000, end: 6_000 }, { start: 5_500, end: 7_000 }, { start: 9_000 }, { start: 1_000, end: 1_100 }], 10_000),
    [
      { start: 1_000, end: 1_100, open: false },
      { start: 5_000, end: 7_000, open: false },
      { start: 9_000, end: 10_000, open: true },
    ],
  );
  // An open interval inside a longer closed one leaves the merged interval closed.
  assert.deepEqual(mergeIntervals([{ start: 1_000, end: 9_000 }, { start: 2_000 }], 5_000), [{ start: 1_000, end: 9_000, open: false }]);
});

test('summarizeWindow counts stalls overlapping the window, clipped, and ignores blips under 250 ms', () => {
  const rec: ViewerRecord = {
    ...base,
    waits: [
      { start: 2_000, end: 2_100 }, // a blip
      { start: 8_000, end: 8_700 },
    ],
    freezes: [{ start: 8_500, end: 9_200 }],
    fatal: [
      [3_000, 'networkError/levelLoadError'],
      [9_000, 'mediaError/bufferStalledError'],
    ],
    ccChanges: [[8_900, 0, 1]],
    states: [
      [8_100, 'loading'],
      [9_200, 'playing'],
    ],
  };
  const all = summarizeWindow(rec, 0);
  assert.equal(all.stalls, 1);
  assert.equal(all.longestStallSec, 1.2);
  assert.equal(all.fatalErrors, 2);
  assert.equal(all.discontinuities, 1);
  assert.equal(all.stalledAtEnd, false);
  const win = summarizeWindow(rec, 8_800, 12_000);
  assert.equal(win.stalls, 1);
  assert.equal(win.longestStallSec, 0.4, 'clipped to the window');
  assert.deepEqual(win.stallList, [{ atSec: -0.8, sec: 0.4 }]);
  assert.deepEqual(win.fatalDetails, ['mediaError/bufferStalledError']);
  assert.deepEqual(win.states, ['playing']);
  assert.equal(summarizeWindow(rec, 10_000).stalls, 0);
});

test('an open stall is counted up to the reading and flagged', () => {
  const s = summarizeWindow({ ...base, freezes: [{ start: 18_000 }] }, 15_000);
  assert.equal(s.stalls, 1);
  assert.equal(s.longestStallSec, 2);
  assert.equal(s.stalledAtEnd, true);
});

test('missedTarget names every limit exceeded and every failed check', () => {
  const t = { maxStalls: 1, maxStallSec: 1, maxFatalErrors: 0, maxCommentsLost: 0, checks: { 'a new replica is placed': false } };
  assert.deepEqual(missedTarget({ stalls: 1, longestStallSec: 0.8, fatalErrors: 0 }, 0, { ...t, checks: {} }), []);
  assert.deepEqual(missedTarget({ stalls: 2, longestStallSec: 1.5, fatalErrors: 1 }, 3, t), [
    '2 stalls > 1',
    'longest stall 1.5 s > 1 s',
    '1 fatal errors > 0',
    '3 acknowledged comments lost > 0',
    'failed: a new replica is placed',
  ]);
  assert.equal(describeTarget(t), '≤ 1 stall; each ≤ 1 s; 0 fatal errors; 0 acked comments lost; a new replica is placed');
});
