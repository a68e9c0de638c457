import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Mp4BoxSplitter, Mp4Error, parseInit, parseMoof } from './mp4.ts';
import type { Mp4Box } from './mp4.ts';
import { loadFmp4Fixture } from '../test/support/fmp4-fixture.ts';

function splitAll(buf: Buffer, sizes: () => number): Mp4Box[] {
  const s = new Mp4BoxSplitter();
  const boxes: Mp4Box[] = [];
  for (let i = 0; i < buf.length;) {
    const n = sizes();
    boxes.push(...s.push(buf.subarray(i, i + n)));
    i += n;
  }
  assert.equal(s.bufferedBytes, 0);
  return boxes;
}

function box(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

describe('mp4', () => {
  let file: Buffer;
  let boxes: Mp4Box[];

  before(() => {
    file = loadFmp4Fixture();
    boxes = new Mp4BoxSplitter().push(file);
  });

  it('splits ffmpeg output into ftyp, moov, moof+mdat pairs', () => {
    const types = boxes.map((b) => b.type);
    assert.deepEqual(types.slice(0, 2), ['ftyp', 'moov']);
    const media = types.slice(2).filter((t) => t !== 'mfra');
    assert.ok(media.length >= 26, `expected ~14 fragments, got ${media.length / 2}`);
    media.forEach((t, i) => assert.equal(t, i % 2 === 0 ? 'moof' : 'mdat'));
    assert.equal(Buffer.concat(boxes.map((b) => b.bytes)).equals(file), true);
  });

  it('gives identical boxes for 1-byte and random-size chunks', () => {
    const one = splitAll(file, () => 1);
    let seed = 42;
    const random = splitAll(file, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 1 + (seed % 40_000);
    });
    for (const got of [one, random]) {
      assert.equal(got.length, boxes.length);
      got.forEach((b, i) => {
        assert.equal(b.type, boxes[i]!.type);
        assert.ok(b.bytes.equals(boxes[i]!.bytes), `box ${i} differs`);
      });
    }
  });

  it('handles 64-bit largesize boxes', () => {
    const payload = Buffer.from('hello largesize');
    const head = Buffer.alloc(16);
    head.writeUInt32BE(1);
    head.write('free', 4, 'latin1');
    head.writeBigUInt64BE(BigInt(16 + payload.length), 8);
    const large = Buffer.concat([head, payload]);
    const stream = Buffer.concat([large, boxes[0]!.bytes]);
    const got = splitAll(stream, () => 1);
    assert.deepEqual(
      got.map((b) => b.type),
      ['free', 'ftyp'],
    );
    assert.ok(got[0]!.bytes.equals(large));
  });

  it('rejects corrupt headers with Mp4Error naming the byte offset', () => {
    const ftyp = boxes[0]!.bytes;
    const tooSmall = Buffer.from([0, 0, 0, 4, 0x6d, 0x6f, 0x6f, 0x66]);
    assert.throws(
      () => new Mp4BoxSplitter().push(Buffer.concat([ftyp, tooSmall])),
      (err: Error) => {
        assert.ok(err instanceof Mp4Error);
        assert.match(err.message, new RegExp(`offset ${ftyp.length}\\b`));
        return true;
      },
    );
    const binaryType = Buffer.from([0, 0, 0, 16, 0x00, 0xff, 0x01, 0x02]);
    assert.throws(() => new Mp4BoxSplitter().push(binaryType), /invalid box type 0x00ff0102 at byte offset 0/);
    const s = new Mp4BoxSplitter({ maxBoxBytes: 1024 });
    const huge = Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x6d, 0x64, 0x61, 0x74]);
    assert.throws(
      () => s.push(huge),
      (err: Error) => err instanceof Mp4Error && /exceeds the 1024-byte limit/.test(err.message),
    );
    assert.ok(s.bufferedBytes <= 8, 'an oversized box is refused before it is buffered');
    const sizeZero = Buffer.from([0, 0, 0, 0, 0x6d, 0x64, 0x61, 0x74]); // "to end of file" makes no sense on a pipe
    assert.throws(() => new Mp4BoxSplitter().push(sizeZero), /size 0 < 8 at byte offset 0/);
  });

  it('buffers a truncated box without emitting it, and at most one box', () => {
    const s = new Mp4BoxSplitter();
    const moofAt = boxes[0]!.bytes.length + boxes[1]!.bytes.length;
    const mdat = boxes[3]!.bytes;
    const cut = moofAt + boxes[2]!.bytes.length + Math.floor(mdat.length / 2);
    const got = s.push(file.subarray(0, cut));
    assert.deepEqual(
      got.map((b) => b.type),
      ['ftyp', 'moov', 'moof'],
    );
    assert.equal(s.bufferedBytes, Math.floor(mdat.length / 2));
    assert.deepEqual(
      s.push(file.subarray(cut, cut + 1)).map((b) => b.type),
      [],
    );
  });

  it('parses the init segment: codecs, size, timescales', () => {
    const init = Buffer.concat([boxes[0]!.bytes, boxes[1]!.bytes]);
    const { tracks } = parseInit(init);
    const video = tracks.find((t) => t.kind === 'video');
    const audio = tracks.find((t) => t.kind === 'audio');
    assert.ok(video && audio);
    assert.equal(video.codec, 'avc1.42c01e'); // x264 ultrafast: constrained baseline, level 3.0
    assert.equal(video.width, 640);
    assert.equal(video.height, 360);
    assert.equal(video.timescale, 15360);
    assert.equal(audio.codec, 'mp4a.40.2');
    assert.equal(audio.timescale, 48000);
    assert.equal(audio.sampleRate, 48000);
    assert.equal(audio.channels, 2);
    assert.notEqual(video.id, audio.id);
  });

  it('parses moofs: tfdt, durations, keyframe every 4th fragment', () => {
    const info = parseInit(Buffer.concat([boxes[0]!.bytes, boxes[1]!.bytes]));
    const video = info.tracks.find((t) => t.kind === 'video')!;
    const moofs = boxes.filter((b) => b.type === 'moof').map((b) => parseMoof(b.bytes, info));
    const next = new Map<number, number>();
    moofs.forEach((m, i) => {
      assert.equal(m.trafs.length, 2, 'muxed video + audio');
      for (const traf of m.trafs) {
        assert.equal(traf.defaultBaseIsMoof, true);
        assert.ok(traf.sampleCount > 0);
        if (next.has(traf.trackId)) assert.equal(traf.baseMediaDecodeTime, next.get(traf.trackId), 'contiguous tfdt');
        next.set(traf.trackId, traf.baseMediaDecodeTime + traf.duration);
        if (traf.trackId !== video.id) assert.equal(traf.firstSampleSync, true);
      }
      const v = m.trafs.find((t) => t.trackId === video.id)!;
      assert.equal(v.firstSampleSync, i % 4 === 0, `fragment ${i} sync`);
      if (i > 0 && i < moofs.length - 1) assert.ok(Math.abs(v.duration / video.timescale - 0.5) < 0.01, `fragment ${i} lasts 0.5 s`);
    });
    assert.equal(moofs[0]!.trafs.find((t) => t.trackId === video.id)!.baseMediaDecodeTime, 0);
    assert.ok(Math.abs(next.get(video.id)! / video.timescale - 7) < 0.1);
  });

  it('throws Mp4Error, not RangeError, on truncated or corrupt boxes', () => {
    const moof = boxes[2]!.bytes;
    const init = Buffer.concat([boxes[0]!.bytes, boxes[1]!.bytes]);
    for (const bad of [moof.subarray(0, moof.length - 20), Buffer.concat([moof.subarray(0, 40), Buffer.alloc(moof.length - 40, 0xff)])]) {
      const fixed = Buffer.from(bad);
      fixed.writeUInt32BE(fixed.length);
      assert.throws(() => parseMoof(fixed), Mp4Error);
    }
    assert.throws(() => parseMoof(box('mdat', Buffer.alloc(4))), Mp4Error);
    assert.throws(() => parseInit(boxes[0]!.bytes), /no moov/);
    const cut = Buffer.from(init.subarray(0, init.length - 300));
    cut.writeUInt32BE(cut.length - boxes[0]!.bytes.length, boxes[0]!.bytes.length);
    assert.throws(() => parseInit(cut), Mp4Error);
  });
});
