import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBehind, timeAtFraction } from './dvr-bar.ts';

test('formatBehind shows minutes:seconds, hours past an hour', () => {
  assert.equal(formatBehind(0), '−0:00');
  assert.equal(formatBehind(20.4), '−0:20');
  assert.equal(formatBehind(65), '−1:05');
  assert.equal(formatBehind(7199.6), '−2:00:00');
  assert.equal(formatBehind(3725), '−1:02:05');
  assert.equal(formatBehind(-3), '−0:00');
});

test('timeAtFraction maps the bar onto the seekable range, clamped', () => {
  const r = { start: 100, end: 7300 };
  assert.equal(timeAtFraction(r, 0), 100);
  assert.equal(timeAtFraction(r, 1), 7300);
  assert.equal(timeAtFraction(r, 0.5), 3700);
  assert.equal(timeAtFraction(r, -1), 100);
  assert.equal(timeAtFraction(r, 2), 7300);
});
