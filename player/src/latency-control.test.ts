// Unit tests of the watch page's catch-up: a simulated playhead converges to the target after a GOP-late join and
// after a stall, and never eats into the buffer that absorbs a late part.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUp, trueLatency, CATCH_UP_INTERVAL_MS, MIN_AHEAD_SEC, MAX_RATE, type PlaybackSample } from './latency-control.ts';

/**
 * Plays a live stream for `seconds`: the live edge advances at 1×, parts land every 0.2 s (bufferedEnd = edge − the
 * part not yet complete), the playhead at the controller's rate. Returns the latency after each sample.
 */
function simulate(startLatency: number, target: number, seconds: number): number[] {
  let edge = 100;
  let t = edge - startLatency;
  let rate = 1;
  const out: number[] = [];
  const dt = CATCH_UP_INTERVAL_MS / 1000;
  for (let i = 0; i < seconds / dt; i++) {
    edge += dt;
    t += dt * rate;
    const bufferedEnd = Math.floor(edge / 0.2) * 0.2;
    t = Math.min(t, bufferedEnd);
    const s: PlaybackSample = { latency: edge - t, target, currentTime: t, bufferedEnd };
    const a = catchUp(s);
    if (a.seekTo !== undefined) {
      assert.ok(a.seekTo <= bufferedEnd - MIN_AHEAD_SEC + 1e-9, 'a skip stays inside the buffer');
      t = a.seekTo;
    }
    assert.ok(a.rate >= 1 && a.rate <= MAX_RATE);
    rate = a.rate;
    out.push(edge - t);
  }
  return out;
}

test('a join a whole 1 s GOP behind the 0.6 s target converges within 10 s and stays there', () => {
  const lat = simulate(1.6, 0.6, 20);
  const at10 = lat[Math.round(10_000 / CATCH_UP_INTERVAL_MS) - 1]!;
  assert.ok(at10 <= 0.6 + 0.1, `latency ${at10.toFixed(2)} s after 10 s`);
  assert.ok(Math.max(...lat.slice(-20)) <= 0.7, 'stays at the target');
});

test('after a 3 s stall (latency 3.6 s) the player skips ahead inside its buffer, then converges', () => {
  const lat = simulate(3.6, 0.6, 12);
  assert.ok(lat[0]! < 1.8, `first sample ${lat[0]!.toFixed(2)} s: a skip, not 10 s at 1.25×`);
  assert.ok(lat.at(-1)! <= 0.7, `latency ${lat.at(-1)!.toFixed(2)} s after 12 s`);
});

test('no speed-up without buffer ahead, none at the target, none when ahead of it', () => {
  assert.deepEqual(catchUp({ latency: 1.5, target: 0.6, currentTime: 10, bufferedEnd: 10.2 }), { rate: 1 });
  assert.deepEqual(catchUp({ latency: 0.62, target: 0.6, currentTime: 10, bufferedEnd: 10.5 }), { rate: 1 });
  assert.deepEqual(catchUp({ latency: 0.3, target: 0.6, currentTime: 10, bufferedEnd: 10.5 }), { rate: 1 });
  assert.deepEqual(catchUp({ latency: Number.NaN, target: 0.6, currentTime: 10, bufferedEnd: 11 }), { rate: 1 });
  assert.equal(catchUp({ latency: 0.9, target: 0.6, currentTime: 10, bufferedEnd: 10.8 }).rate, 1.15);
});

test('true latency: wall clock minus the PDT of the frame on screen, else the playlist latency', () => {
  assert.equal(trueLatency(10_850, 10_000, 0.7), 0.85);
  assert.equal(trueLatency(10_000, undefined, 0.7), 0.7);
  assert.equal(trueLatency(10_000, 20_000, 0.7), 0.7, 'a PDT in the future: clocks disagree');
  assert.equal(trueLatency(100_000, 10_000, null), null, 'over a minute: clocks disagree');
});
