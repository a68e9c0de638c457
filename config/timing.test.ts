// The shared LL-HLS timing rules (config/timing.ts): what the node's settings and each event's overrides must obey.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rangeIssue, resolveTiming, timingIssue, wholeParts } from './timing.ts';

test('wholeParts counts whole parts within float noise and refuses a remainder', () => {
  assert.equal(wholeParts(2, 0.2), 10, '2 / 0.2 is 9.999… in floating point');
  assert.equal(wholeParts(2, 0.5), 4);
  assert.equal(wholeParts(2, 0.3), undefined);
  assert.equal(wholeParts(1, 0.4), undefined);
});

test('timingIssue: parts split the segment into 2 or more, the GOP is whole parts and splits the segment', () => {
  assert.equal(timingIssue({ segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 }), undefined, 'the defaults');
  assert.equal(timingIssue({ segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 2 }), undefined, 'longer parts, 2 s GOP');
  assert.equal(timingIssue({ segmentTargetSec: 2, partTargetSec: 1, gopSec: 1 }), undefined, 'two parts per segment');
  assert.deepEqual(timingIssue({ segmentTargetSec: 2, partTargetSec: 0.3, gopSec: 1 }), {
    key: 'partTargetSec',
    message: '0.3 s must split ONAIR_SEGMENT_TARGET_SEC (2 s) into 2 or more whole parts; write e.g. 1 or 0.5',
  });
  assert.equal(timingIssue({ segmentTargetSec: 2, partTargetSec: 2, gopSec: 2 })?.key, 'partTargetSec', 'one part per segment is not LL');
  assert.deepEqual(timingIssue({ segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 0.75 }), {
    key: 'gopSec',
    message:
      '0.75 s must be a whole number of ONAIR_PART_TARGET_SEC (0.5 s) and split ONAIR_SEGMENT_TARGET_SEC (2 s) into whole GOPs; write e.g. 2 or 1 or 0.5',
  });
  assert.equal(timingIssue({ segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 4 })?.key, 'gopSec', 'a GOP longer than the segment');
  assert.match(
    timingIssue({ segmentTargetSec: 2, partTargetSec: 0.4, gopSec: 1 }, { segment: 'the segment', part: 'the part target' })!.message,
    /^1 s must be a whole number of the part target \(0\.4 s\) and split the segment \(2 s\) into whole GOPs; write e\.g\. 2$/,
    'the caller names the values',
  );
});

test('rangeIssue: the ranges of the settings', () => {
  assert.equal(rangeIssue('partTargetSec', 0.1), undefined);
  assert.equal(rangeIssue('gopSec', 10), undefined);
  assert.equal(rangeIssue('partTargetSec', 0.05)?.message, '0.05 s is out of range: 0.1 to 2 seconds');
  assert.equal(rangeIssue('gopSec', 11)?.message, '11 s is out of range: 0.1 to 10 seconds');
  assert.ok(rangeIssue('gopSec', Number.NaN));
});

test('resolveTiming: event overrides over the node, the node’s timing when they do not fit', () => {
  const node = { segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 };
  assert.deepEqual(resolveTiming(node, { partTargetSec: null, gopSec: null }), { timing: node });
  assert.deepEqual(resolveTiming(node, { partTargetSec: 0.5, gopSec: 2 }).timing, { segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 2 });
  assert.deepEqual(resolveTiming(node, { partTargetSec: null, gopSec: 2 }).timing, { segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 2 });
  // 0.4 s parts fit 2 s segments (where the event was created, say); a 3 s segment target does not take them.
  const r = resolveTiming({ segmentTargetSec: 3, partTargetSec: 0.6, gopSec: 3 }, { partTargetSec: 0.4, gopSec: null });
  assert.deepEqual(r.timing, { segmentTargetSec: 3, partTargetSec: 0.6, gopSec: 3 });
  assert.equal(r.issue?.key, 'partTargetSec');
});
