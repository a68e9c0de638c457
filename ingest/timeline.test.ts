import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FlvError, FlvReader, TagType } from '../lib/flv.ts';
import type { FeedSink, FeedSource } from './feed.ts';
import { createFlvTimelineShift, withTimeline } from './timeline.ts';

const HEADER = Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);

/** One FLV tag (header, body, previous-tag-size) with a 24+8-bit timestamp. */
function tag(type: number, timestamp: number, body: Buffer): Buffer {
  const head = Buffer.alloc(11);
  head[0] = type;
  head.writeUIntBE(body.length, 1, 3);
  head.writeUIntBE(timestamp & 0xffffff, 4, 3);
  head[7] = timestamp >>> 24;
  const size = Buffer.alloc(4);
  size.writeUInt32BE(11 + body.length);
  return Buffer.concat([head, body, size]);
}

/** A small stream: metadata, sequence headers, then audio and video around the 24-bit wrap (0xffffff ms = 4.66 h). */
const SOURCE = [
  tag(TagType.script, 0, Buffer.from([0x02, 0, 10, ...Buffer.from('onMetaData'), 0x05])),
  tag(TagType.video, 0x00fffff0, Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64])),
  tag(TagType.audio, 0x00fffff0, Buffer.from([0xaf, 0x00, 0x11, 0x90])),
  tag(TagType.video, 0x00fffff0, Buffer.from([0x17, 0x01, 0, 0, 0, 0xaa])),
  tag(TagType.audio, 0x00ffffe8, Buffer.from([0xaf, 0x01, 0x21])), // 8 ms before the first: stays at the offset
  tag(TagType.video, 0x01000010, Buffer.from([0x27, 0x01, 0, 0, 0, 0xbb, 0xcc])), // past the 24-bit wrap
];
const STREAM = Buffer.concat([HEADER, ...SOURCE]);

function read(bytes: Buffer[]): { timestamp: number; type: number; body: string }[] {
  const r = new FlvReader();
  const tags = bytes.flatMap((b) => r.push(b));
  assert.equal(r.bufferedBytes, 0);
  assert.ok(r.header?.equals(HEADER));
  return tags.map((t) => ({ timestamp: t.timestamp, type: t.type, body: t.body.toString('hex') }));
}

describe('createFlvTimelineShift', () => {
  const offset = 0x7654321f; // > 24 bits: the extended byte is written
  const expected = [0, 0x00fffff0, 0x00fffff0, 0x00fffff0, 0x00fffff0, 0x01000010].map((ts, i) =>
    i === 0 ? offset : offset + Math.max(0, ts - 0x00fffff0),
  );

  it('moves the first audio/video tag to the offset and keeps the distances, across the 24-bit boundary', () => {
    const out = read(createFlvTimelineShift(offset)(STREAM));
    assert.deepEqual(
      out.map((t) => t.timestamp),
      expected,
    );
    assert.deepEqual(
      out.map((t) => t.body),
      SOURCE.map((s) => s.subarray(11, s.length - 4).toString('hex')),
      'bodies untouched',
    );
  });

  it('gives the same bytes whatever the chunking: split at every byte boundary, and byte by byte', () => {
    const whole = Buffer.concat(createFlvTimelineShift(offset)(STREAM));
    assert.equal(whole.length, STREAM.length);
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const shift = createFlvTimelineShift(offset);
      const got = Buffer.concat([...shift(STREAM.subarray(0, cut)), ...shift(STREAM.subarray(cut))]);
      assert.ok(got.equals(whole), `split at byte ${cut}`);
    }
    const shift = createFlvTimelineShift(offset);
    const bytes: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i++) bytes.push(...shift(STREAM.subarray(i, i + 1)));
    assert.ok(Buffer.concat(bytes).equals(whole), 'one byte at a time');
  });

  it('with offset 0 and a stream starting at 0, changes nothing', () => {
    const zeroBased = Buffer.concat([
      HEADER,
      tag(TagType.video, 0, Buffer.from([0x17, 1, 0, 0, 0])),
      tag(TagType.audio, 21, Buffer.from([0xaf, 1])),
    ]);
    assert.ok(Buffer.concat(createFlvTimelineShift(0)(zeroBased)).equals(zeroBased));
  });

  it('refuses bytes that are not FLV, and a bad offset', () => {
    assert.throws(() => createFlvTimelineShift(0)(Buffer.from('GET / HTTP/1.1')), FlvError);
    const shift = createFlvTimelineShift(0);
    shift(Buffer.from('F'));
    assert.throws(() => shift(Buffer.from('XV')), FlvError);
    assert.throws(() => createFlvTimelineShift(-1), RangeError);
    assert.throws(() => createFlvTimelineShift(1.5), RangeError);
  });
});

describe('withTimeline', () => {
  /** A sink recording each open's timeline and the timestamps written to it. */
  function sink(): FeedSink & { opened: { source: FeedSource; timestamps: number[]; ended: boolean }[] } {
    const opened: { source: FeedSource; timestamps: number[]; ended: boolean }[] = [];
    return {
      opened,
      open(_eventId, source) {
        const rec = { source, timestamps: [] as number[], ended: false };
        opened.push(rec);
        const reader = new FlvReader();
        return {
          write: (chunk) => rec.timestamps.push(...reader.push(chunk).map((t) => t.timestamp)),
          end: () => void (rec.ended = true),
        };
      },
    };
  }
  const source = { protocol: 'rtmp' as const, sessionId: 's', remoteAddress: '127.0.0.1' };
  const publish = Buffer.concat([
    HEADER,
    tag(TagType.video, 500, Buffer.from([0x17, 1, 0, 0, 0])),
    tag(TagType.video, 533, Buffer.from([0x27, 1, 0, 0, 0])),
  ]);

  it('first publish: zero = now, session 1; a return within the window continues the timeline (session 2, offset = the gap)', () => {
    let now = 1_000_000;
    const s = sink();
    const feeds = withTimeline(s, { reconnectWindowSec: 30, now: () => now });
    const a = feeds.open('ev', source);
    a.write(publish);
    now += 12_345;
    a.end();
    now += 20_000;
    const b = feeds.open('ev', source);
    b.write(publish);
    assert.deepEqual(
      s.opened.map((o) => o.source.timeline),
      [
        { zeroMs: 1_000_000, session: 1 },
        { zeroMs: 1_000_000, session: 2 },
      ],
    );
    assert.deepEqual(s.opened[0]!.timestamps, [0, 33]);
    assert.deepEqual(s.opened[1]!.timestamps, [32_345, 32_378]);
    assert.equal(s.opened[0]!.ended, true);
    // A replacing publisher while one is live continues too.
    feeds.open('ev', source);
    assert.deepEqual(s.opened[2]!.source.timeline, { zeroMs: 1_000_000, session: 3 });
  });

  it('after the window, a new broadcast: a new zero, session 1; other events have their own', () => {
    let now = 5_000_000;
    const s = sink();
    const feeds = withTimeline(s, { reconnectWindowSec: 30, now: () => now });
    feeds.open('ev', source).end();
    feeds.open('other', source);
    now += 30_001;
    feeds.open('ev', source).write(publish);
    assert.deepEqual(
      s.opened.map((o) => o.source.timeline),
      [
        { zeroMs: 5_000_000, session: 1 },
        { zeroMs: 5_000_000, session: 1 },
        { zeroMs: 5_030_001, session: 1 },
      ],
    );
    assert.deepEqual(s.opened[2]!.timestamps, [0, 33]);
  });
});
