// Ingest stats from FLV tags: bitrate, fps, keyframe interval, codecs, late frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlvStats } from './flv-stats.ts';

function tag(type: number, ts: number, body: number[]): Buffer {
  const b = Buffer.alloc(11 + body.length + 4);
  b[0] = type;
  b.writeUIntBE(body.length, 1, 3);
  b.writeUIntBE(ts & 0xffffff, 4, 3);
  b[7] = (ts >>> 24) & 0xff;
  Buffer.from(body).copy(b, 11);
  b.writeUInt32BE(11 + body.length, 11 + body.length);
  return b;
}
const key = (ts: number) => tag(9, ts, [0x17, 1, 0, 0, 0, 0xaa]);
const inter = (ts: number) => tag(9, ts, [0x27, 1, 0, 0, 0, 0xbb]);
const seqHeader = tag(9, 0, [0x17, 0, 0, 0, 0, 1]);
const aac = (ts: number) => tag(8, ts, [0xaf, 1, 0x21]);

test('30 fps with a keyframe every 2 s, AAC audio, over 2 s', () => {
  const t0 = 10_000;
  const s = new FlvStats('rtmp', t0);
  s.observe(Buffer.from('FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'), t0);
  s.observe(seqHeader, t0);
  let bytes = 13 + seqHeader.length;
  for (let i = 0; i < 60; i++) {
    const ts = Math.round((i * 1000) / 30);
    const v = i % 60 === 0 || i === 59 ? key(i === 59 ? 2000 : ts) : inter(ts);
    s.observe(v, t0 + ts);
    const a = aac(ts);
    s.observe(a, t0 + ts);
    bytes += v.length + a.length;
  }
  const r = s.take({ width: 1280, height: 720 }, t0 + 2000);
  assert.equal(r.fps, 30);
  assert.equal(r.keyframeIntervalSec, 2);
  assert.equal(r.videoCodec, 'h264');
  assert.equal(r.audioCodec, 'aac');
  assert.equal(r.width, 1280);
  assert.equal(r.bitrateKbps, Math.round((bytes * 8) / 2 / 1000));
  assert.equal(r.lateFrames, 0);
  const next = s.take({}, t0 + 4000);
  assert.equal(next.fps, 0, 'counters reset');
  assert.equal(next.keyframeIntervalSec, 2, 'the last interval is kept');
});

test('frames arriving over a second behind the timeline count as late', () => {
  const s = new FlvStats('rtmp', 0);
  s.observe(key(0), 0);
  s.observe(inter(33), 33);
  s.observe(inter(66), 1500);
  assert.equal(s.take({}, 2000).lateFrames, 1);
});
