import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlvReader } from '../lib/flv.ts';
import { avcConfig, describeTags, flvHeader, parseFlv, synthStream, videoFrame } from '../test/support/flv-synth.ts';
import { GopCache } from './gop-cache.ts';

function fed(cache: GopCache, pieces: Buffer[], r = new FlvReader()): void {
  for (const p of pieces) {
    for (const t of r.push(p)) cache.push(t);
    cache.header ??= r.header;
  }
}

const names = (s: { buffers: Buffer[] }) => describeTags(parseFlv(Buffer.concat(s.buffers)).tags);

describe('GopCache', () => {
  it('has nothing before the FLV header', () => {
    assert.equal(new GopCache().snapshot(), undefined);
  });

  it('starts a joiner with header, metadata, configs and the GOP since the last keyframe', () => {
    const cache = new GopCache();
    fed(cache, synthStream({ frames: 35, gopFrames: 30 }));
    const s = cache.snapshot()!;
    assert.ok(s.buffers[0]!.equals(flvHeader()));
    assert.equal(s.awaitKeyframe, false);
    const n = names(s);
    assert.deepEqual(n.slice(0, 4), ['meta', 'avc-config', 'aac-config', 'key@1000']);
    assert.equal(n.length, 3 + 5 * 2, 'five video frames with their audio');
  });

  it('gives the decoder configs of the GOP start, and a config change inside the GOP in its place', () => {
    const cache = new GopCache();
    const pieces = synthStream({ frames: 32, gopFrames: 30 });
    pieces.push(avcConfig(), videoFrame(1100, false));
    fed(cache, pieces);
    assert.deepEqual(names(cache.snapshot()!).slice(-2), ['avc-config', 'v@1100']);
  });

  it('drops a GOP over its bound: a joiner gets the configs and waits for the next keyframe', () => {
    const cache = new GopCache(20_000);
    const reader = new FlvReader();
    fed(cache, synthStream({ frames: 20, gopFrames: 60, frameBytes: 2000 }), reader);
    const s = cache.snapshot()!;
    assert.equal(s.awaitKeyframe, true);
    assert.deepEqual(names(s), ['meta', 'avc-config', 'aac-config']);
    assert.equal(cache.gopBytes, 0);
    fed(cache, [videoFrame(3000, true)], reader);
    assert.equal(cache.snapshot()!.awaitKeyframe, false);
  });
});
