// WHEP's RTP rules: which H.264 packets start a keyframe, and the GOP cache a late viewer starts from. The whole
// path (ffmpeg's RTP into Chromium) runs in test/e2e/whep.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtpGopCache, h264PayloadIsKey, rtpPayloadOffset } from './whep-rtp.ts';

/** An RTP packet (version 2, payload type 96) with `payload`; `ext` adds a one-word header extension. */
function rtp(seq: number, ts: number, payload: number[], ext = false): Buffer {
  const header = Buffer.alloc(12);
  header[0] = 0x80 | (ext ? 0x10 : 0);
  header[1] = 96;
  header.writeUInt16BE(seq, 2);
  header.writeUInt32BE(ts, 4);
  header.writeUInt32BE(0x1234, 8);
  const extension = ext ? Buffer.from([0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]) : Buffer.alloc(0);
  return Buffer.concat([header, extension, Buffer.from(payload)]);
}
const nal = (type: number) => [0x60 | type, 1, 2, 3];
const fuA = (type: number, start: boolean) => [0x7c, (start ? 0x80 : 0) | type, 9, 9];
const stapA = (...types: number[]) => [24, ...types.flatMap((t) => [0, 2, 0x60 | t, 0])];

test('keyframe starts: SPS or IDR as a single NAL, inside a STAP-A, or as the first FU-A fragment', () => {
  assert.equal(h264PayloadIsKey(Buffer.from(nal(7))), true, 'SPS');
  assert.equal(h264PayloadIsKey(Buffer.from(nal(5))), true, 'IDR');
  assert.equal(h264PayloadIsKey(Buffer.from(nal(1))), false, 'P slice');
  assert.equal(h264PayloadIsKey(Buffer.from(nal(6))), false, 'SEI');
  assert.equal(h264PayloadIsKey(Buffer.from(stapA(6, 7, 8))), true, 'STAP-A with SPS');
  assert.equal(h264PayloadIsKey(Buffer.from(stapA(6, 1))), false, 'STAP-A without');
  assert.equal(h264PayloadIsKey(Buffer.from([24, 0, 40, 0x67])), false, 'STAP-A with a size beyond the packet');
  assert.equal(h264PayloadIsKey(Buffer.from(fuA(5, true))), true, 'first fragment of an IDR');
  assert.equal(h264PayloadIsKey(Buffer.from(fuA(5, false))), false, 'a later fragment');
  assert.equal(h264PayloadIsKey(Buffer.from(fuA(1, true))), false, 'first fragment of a P slice');
  assert.equal(h264PayloadIsKey(Buffer.alloc(0)), false);
});

test('the payload starts after the header, CSRCs and extension; a short or non-v2 packet has none', () => {
  assert.equal(rtpPayloadOffset(rtp(1, 0, nal(1))), 12);
  assert.equal(rtpPayloadOffset(rtp(1, 0, nal(1), true)), 20);
  assert.equal(rtpPayloadOffset(Buffer.alloc(8)), undefined);
  assert.equal(rtpPayloadOffset(Buffer.alloc(20)), undefined, 'version 0');
});

test('the GOP cache holds the packets since the last keyframe access unit, with the SEI sent before its SPS', () => {
  const cache = new RtpGopCache();
  cache.push(rtp(1, 1000, nal(1)));
  assert.equal(cache.gop(), undefined, 'no keyframe yet: nothing to start from');
  const sei = rtp(2, 4000, nal(6));
  const sps = rtp(3, 4000, nal(7));
  const idr1 = rtp(4, 4000, fuA(5, true));
  const idr2 = rtp(5, 4000, fuA(5, false));
  const p = rtp(6, 7000, nal(1));
  for (const pk of [sei, sps, idr1, idr2, p]) cache.push(pk);
  assert.deepEqual(cache.gop(), [sei, sps, idr1, idr2, p]);
  const sei2 = rtp(7, 10000, nal(6));
  const key2 = rtp(8, 10000, stapA(7, 8, 5));
  cache.push(sei2);
  assert.equal(cache.gop()!.length, 6, 'an SEI alone does not restart the GOP');
  cache.push(key2);
  assert.deepEqual(cache.gop(), [sei2, key2], 'the next keyframe restarts it at its access unit');
  assert.equal(cache.bytes, sei2.length + key2.length);
});

test('a GOP beyond the byte bound is dropped: joiners wait for the next keyframe', () => {
  const cache = new RtpGopCache(200);
  cache.push(rtp(1, 0, nal(7)));
  for (let i = 0; i < 20; i++) cache.push(rtp(2 + i, 3000 * (i + 1), nal(1)));
  assert.equal(cache.gop(), undefined);
  assert.ok(cache.bytes <= 200);
  cache.push(rtp(30, 90000, nal(5)));
  assert.equal(cache.gop()!.length, 1);
});
