import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NO_MEDIA_SEC, SourceCheck } from './source-check.ts';
import { flvHeader, flvTag } from '../test/support/flv-synth.ts';

test('H.264 and AAC (and what ffmpeg 5.1 decodes from FLV) pass; the check says nothing', () => {
  const c = new SourceCheck(0);
  assert.equal(c.observe(flvHeader()), undefined);
  assert.equal(c.observe(flvTag(9, 0, Buffer.from([0x17, 0x00, 0, 0, 0]))), undefined);
  assert.equal(c.observe(flvTag(8, 0, Buffer.from([0xaf, 0x00, 0x11, 0x90]))), undefined);
  assert.equal(c.observe(flvTag(8, 0, Buffer.from([0x2f, 0xff]))), undefined, 'mp3');
  assert.equal(c.observe(flvTag(9, 0, Buffer.from([0x12, 0x00]))), undefined, 'Sorenson H.263');
  assert.equal(c.overdue(NO_MEDIA_SEC * 1000 + 1), undefined, 'media came');
});

test('HEVC or AV1 (enhanced RTMP or the unofficial ids) and Opus are refused, once, naming the codec', () => {
  const hevc = new SourceCheck(0);
  assert.match(
    hevc.observe(flvTag(9, 0, Buffer.concat([Buffer.from([0x90]), Buffer.from('hvc1')])))!,
    /^video codec hevc is not supported: send H\.264/,
  );
  assert.equal(hevc.observe(flvTag(9, 0, Buffer.concat([Buffer.from([0x91]), Buffer.from('hvc1')]))), undefined, 'said once');
  assert.match(new SourceCheck(0).observe(flvTag(9, 0, Buffer.concat([Buffer.from([0x90]), Buffer.from('av01')])))!, /video codec av1/);
  assert.match(new SourceCheck(0).observe(flvTag(9, 0, Buffer.from([0x1c, 0x00])))!, /video codec hevc/);
  assert.match(new SourceCheck(0).observe(flvTag(8, 0, Buffer.from([0xdf, 0x00])))!, /^audio codec opus is not supported: send AAC/);
});

test('no audio and no video for NO_MEDIA_SEC is refused', () => {
  const c = new SourceCheck(1_000);
  c.observe(flvHeader());
  c.observe(flvTag(18, 0, Buffer.from([2, 0, 10])));
  assert.equal(c.overdue(1_000 + NO_MEDIA_SEC * 1000 - 1), undefined);
  assert.equal(c.overdue(1_000 + NO_MEDIA_SEC * 1000), `no audio or video received in the first ${NO_MEDIA_SEC} s`);
  assert.equal(c.overdue(1_000 + NO_MEDIA_SEC * 2000), undefined, 'said once');
});
