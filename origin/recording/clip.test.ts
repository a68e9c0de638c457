import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cutClip, timelineSec } from './clip.ts';
import type { RecordingManifest } from './manifest.ts';

const variant = { uri: 'r/index.m3u8', bandwidth: 1, averageBandwidth: 1, codecs: 'avc1' };
const seg = (msn: number, durationSec = 2) => ({
  msn,
  run: 0,
  durationSec,
  programDateTimeMs: msn * 2000,
  discontinuitySequence: 0,
  bytes: 10,
});

function manifest(n: number, extraInSecond = 0): RecordingManifest {
  const segs = Array.from({ length: n }, (_, i) => seg(i));
  return {
    version: 1,
    eventId: 'event1',
    zeroMs: 5,
    startedAtMs: 0,
    segmentTargetSec: 2,
    renditions: [
      { name: 'hi', variant, segments: segs },
      { name: 'lo', variant, segments: [...segs, ...Array.from({ length: extraInSecond }, (_, i) => seg(n + i))] },
    ],
  };
}

test('a range becomes the whole segments overlapping it, in every rendition', () => {
  const r = cutClip(manifest(10), 3, 9);
  assert.ok('manifest' in r);
  assert.deepEqual(
    r.manifest.renditions.map((x) => x.segments.map((s) => s.msn)),
    [
      [1, 2, 3, 4],
      [1, 2, 3, 4],
    ],
  );
  assert.equal(r.fromSec, 2);
  assert.equal(r.toSec, 10);
  assert.equal(r.durationSec, 8);
  assert.equal(r.segments, 4);
});

test('segment-aligned ranges are cut exactly', () => {
  const r = cutClip(manifest(10), 4, 8);
  assert.ok('manifest' in r);
  assert.deepEqual(
    r.manifest.renditions[0]!.segments.map((s) => s.msn),
    [2, 3],
  );
  assert.equal(r.durationSec, 4);
});

test('the timeline is the segments every rendition has (a rendition ahead does not lengthen it)', () => {
  const m = manifest(5, 2);
  assert.equal(timelineSec(m), 10);
  const r = cutClip(m, 0, 10);
  assert.ok('manifest' in r);
  assert.deepEqual(
    r.manifest.renditions[1]!.segments.map((s) => s.msn),
    [0, 1, 2, 3, 4],
  );
});

test('bad ranges are refused with a reason', () => {
  assert.equal((cutClip(manifest(10), 5, 5) as { code: string }).code, 'invalid_range');
  assert.equal((cutClip(manifest(10), -1, 5) as { code: string }).code, 'invalid_range');
  assert.equal((cutClip(manifest(10), 6, 2) as { code: string }).code, 'invalid_range');
  const past = cutClip(manifest(10), 15, 25) as { code: string; message: string };
  assert.equal(past.code, 'range_outside_recording');
  assert.match(past.message, /holds 20\.0 s/);
  assert.equal((cutClip(manifest(10), 0, 20.5) as { code: string }).code, 'range_outside_recording');
  assert.equal((cutClip(manifest(0), 0, 1) as { code: string }).code, 'recording_empty');
});
