// One live event at the origin, without ffmpeg: the publisher feed (keyframe gate, bad input, replacement),
// the reconnect window, and ffmpeg restarts with backoff, driven by an ffmpeg path that does not exist (the
// spawn fails at once, no process is started) and mocked timers.
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { AUDIO_ONLY_AFTER_MS, LiveStream, type LiveStreamMetrics } from './live-stream.ts';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const config = configSchema.parse({
  ffmpegPath: '/nonexistent/onair-test-ffmpeg',
  reconnectWindowSec: 10,
  // The encoded rungs below; the source rendition (preset standard) is tested in test/e2e/passthrough.test.ts.
  defaultLadderPreset: 'custom',
  ladder: [
    { name: '720p', height: 720, fps: 30, videoKbps: 2800 },
    { name: '360p', height: 360, fps: 30, videoKbps: 700 },
    { name: '180p', height: 180, fps: 30, videoKbps: 200 },
  ],
});

/** One FLV tag (header, body, previous-tag-size). */
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

const amfString = (s: string): Buffer => {
  const b = Buffer.alloc(2 + Buffer.byteLength(s));
  b.writeUInt16BE(Buffer.byteLength(s));
  b.write(s, 2);
  return b;
};

const FLV = {
  header: Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]),
  /** onMetaData with the source height. */
  meta: (height: number): Buffer => {
    const value = Buffer.alloc(9);
    value[0] = 0x00;
    value.writeDoubleBE(height, 1);
    const count = Buffer.from([0, 0, 0, 1]);
    return tag(
      18,
      0,
      Buffer.concat([
        Buffer.from([0x02]),
        amfString('onMetaData'),
        Buffer.from([0x08]),
        count,
        amfString('height'),
        value,
        amfString(''),
        Buffer.from([0x09]),
      ]),
    );
  },
  avcConfig: tag(9, 0, Buffer.from([0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f])),
  aacConfig: tag(8, 0, Buffer.from([0xaf, 0x00, 0x11, 0x90])),
  keyframe: (ts: number): Buffer => tag(9, ts, Buffer.from([0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65])),
  interframe: (ts: number): Buffer => tag(9, ts, Buffer.from([0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41])),
  audio: (ts: number): Buffer => tag(8, ts, Buffer.from([0xaf, 0x01, 0x21, 0x00])),
};

interface Harness {
  stream: LiveStream;
  metrics: { started: number; restarted: number };
  logs: { msg: string; [k: string]: unknown }[];
  offline: number;
}

function harness(): Harness {
  const logs: Harness['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Harness['logs'][number]);
      done();
    },
  });
  const counts = { started: 0, restarted: 0 };
  const metrics: LiveStreamMetrics = {
    ffmpegStarted: () => void counts.started++,
    ffmpegRestarted: () => void counts.restarted++,
    part: () => {},
    segment: () => {},
  };
  const stream = new LiveStream('event01', config, createLogger('debug', sink), metrics);
  const h: Harness = { stream, metrics: counts, logs, offline: 0 };
  stream.on('offline', () => h.offline++);
  return h;
}

describe('LiveStream', () => {
  let h: Harness;
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout', 'Date'], now: NOW });
    h = harness();
  });
  afterEach(async () => {
    h.stream.stop();
    await h.stream.closed();
    mock.timers.reset();
  });

  it('starts nothing before the first video keyframe: headers, metadata, audio and inter frames are held back', () => {
    const feed = h.stream.attach();
    assert.equal(h.stream.publishing, true);
    feed.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.audio(0), FLV.interframe(33)]));
    assert.equal(h.metrics.started, 0);
    assert.equal(h.stream.packagers.size, 0);
    assert.deepEqual(h.stream.renditions, []);
  });

  it('on the first keyframe picks the ladder rungs that fit the source', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 1);
    assert.deepEqual(
      h.stream.renditions.map((r) => r.name),
      ['360p', '180p'],
    );
    assert.deepEqual([...h.stream.packagers.keys()], ['360p', '180p']);
  });

  it('runs with the event timing looked up before the first keyframe, and keeps it once the ladder is chosen', async () => {
    h.stream.setTiming(Promise.resolve({ segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 2 }));
    await Promise.resolve();
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.keyframe(0)]));
    assert.deepEqual(
      [...h.stream.packagers.values()].map((p) => [p.segmentTargetSec, p.partTargetSec]),
      [
        [2, 0.5],
        [2, 0.5],
      ],
    );
    // A 2 s GOP at 30 fps: 60 frames between keyframes (the config's 1 s would be 30).
    assert.deepEqual(
      h.stream.renditions.map((r) => r.gop),
      [60, 60],
    );
    // An answer after the ladder was chosen changes nothing (it is logged).
    h.stream.setTiming(Promise.resolve({ segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 }));
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(h.stream.timing, { segmentTargetSec: 2, partTargetSec: 0.5, gopSec: 2 });
    assert.ok(h.logs.some((l) => l.msg.startsWith('event timing known after the stream started')));
  });

  it('without an event timing the stream runs with the config', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.keyframe(0)]));
    assert.deepEqual(h.stream.timing, { segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 });
    assert.equal(h.stream.packagers.get('360p')?.partTargetSec, 0.2);
    assert.deepEqual(
      h.stream.renditions.map((r) => r.gop),
      [30, 30],
    );
  });

  it('a source with no video for a while is audio-only: one audio rendition, started on an audio frame', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.aacConfig, FLV.audio(0), FLV.audio(AUDIO_ONLY_AFTER_MS - 21)]));
    assert.equal(h.metrics.started, 0, 'not before AUDIO_ONLY_AFTER_MS of audio');
    feed.write(FLV.audio(AUDIO_ONLY_AFTER_MS));
    assert.equal(h.metrics.started, 1);
    assert.deepEqual(
      h.stream.renditions.map((r) => [r.name, r.audioOnly]),
      [['audio', true]],
    );
    assert.ok(h.logs.some((l) => l.msg === 'audio-only source: one audio rendition'));
  });

  it('metadata without a videocodecid makes the stream audio-only at its first audio frame', () => {
    const feed = h.stream.attach();
    const meta = tag(
      18,
      0,
      Buffer.concat([
        Buffer.from([0x02]),
        amfString('onMetaData'),
        Buffer.from([0x08, 0, 0, 0, 1]),
        amfString('audiocodecid'),
        Buffer.from([0x00, 0x40, 0x24, 0, 0, 0, 0, 0, 0]), // 10 (AAC)
        amfString(''),
        Buffer.from([0x09]),
      ]),
    );
    feed.write(Buffer.concat([FLV.header, meta, FLV.aacConfig, FLV.audio(0)]));
    assert.equal(h.metrics.started, 1);
    assert.deepEqual(
      h.stream.renditions.map((r) => r.name),
      ['audio'],
    );
  });

  it('a video source whose audio comes first is not taken for audio-only', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.audio(0), FLV.interframe(10)]));
    feed.write(FLV.audio(AUDIO_ONLY_AFTER_MS + 500));
    assert.equal(h.metrics.started, 0, 'video was seen: wait for its keyframe');
    feed.write(FLV.keyframe(AUDIO_ONLY_AFTER_MS + 600));
    assert.deepEqual(
      h.stream.renditions.map((r) => r.name),
      ['360p', '180p'],
    );
  });

  it('a returning publisher without video on a stream with video renditions is waited for, and the log says why', () => {
    const first = h.stream.attach();
    first.write(Buffer.concat([FLV.header, FLV.meta(360), FLV.avcConfig, FLV.aacConfig, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 1);
    first.end();
    const second = h.stream.attach();
    second.write(Buffer.concat([FLV.header, FLV.aacConfig, FLV.audio(10_000), FLV.audio(10_000 + AUDIO_ONLY_AFTER_MS)]));
    assert.equal(h.metrics.started, 1, 'no run without a keyframe');
    const warned = h.logs.filter((l) => l.msg.startsWith('the publisher sends no video'));
    assert.equal(warned.length, 1);
    second.write(FLV.audio(10_000 + 2 * AUDIO_ONLY_AFTER_MS));
    assert.equal(h.logs.filter((l) => l.msg.startsWith('the publisher sends no video')).length, 1, 'said once');
  });

  it('without a timeline from the ingest, keeps its own: zero at the first publisher, a session per publisher', () => {
    h.stream.attach().end();
    mock.timers.tick(3_000);
    h.stream.attach();
    assert.deepEqual(h.stream.feedTimeline, { zeroMs: NOW, session: 2 });
    h.stream.attach({ zeroMs: NOW - 60_000, session: 7 });
    assert.deepEqual(h.stream.feedTimeline, { zeroMs: NOW - 60_000, session: 7 }, "the ingest's timeline wins");
  });

  it('restarts a failing ffmpeg on a later keyframe, after a backoff that doubles', async () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.meta(720), FLV.avcConfig, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 1);
    await h.stream.closed(); // the spawn failed: 'close' comes at once
    assert.equal(h.metrics.restarted, 1);
    const exited = () => h.logs.filter((l) => l.msg === 'ffmpeg exited unexpectedly').map((l) => l.restartInMs);
    assert.deepEqual(exited(), [500]);
    assert.ok(h.logs.some((l) => l.msg === 'ffmpeg failed to start'));

    feed.write(FLV.keyframe(2000)); // within the backoff: no new run
    assert.equal(h.metrics.started, 1);
    mock.timers.tick(500);
    feed.write(FLV.keyframe(4000));
    assert.equal(h.metrics.started, 2, 'a new run on the first keyframe after the backoff');
    assert.deepEqual(h.stream.feedTimeline, { zeroMs: NOW, session: 1 }, 'a restart stays in the session');
    await h.stream.closed();
    assert.equal(h.metrics.restarted, 2);
    assert.deepEqual(exited(), [500, 1000]);
  });

  it('goes offline when the reconnect window ends without a publisher, and not when one comes back in time', () => {
    const first = h.stream.attach();
    first.end();
    assert.equal(h.stream.publishing, false);
    mock.timers.tick(9_999);
    assert.equal(h.offline, 0);
    const second = h.stream.attach();
    mock.timers.tick(60_000);
    assert.equal(h.offline, 0, 'the returning publisher cancelled the window');
    assert.equal(h.stream.publishing, true);
    second.end();
    mock.timers.tick(10_000);
    assert.equal(h.offline, 1);
    assert.ok(h.logs.some((l) => l.msg === 'publisher gone; waiting for it to return' && l.window === 10));
  });

  it('ignores a replaced publisher: its writes and its end', () => {
    const old = h.stream.attach();
    const current = h.stream.attach();
    old.end();
    mock.timers.tick(60_000);
    assert.equal(h.offline, 0);
    assert.equal(h.stream.publishing, true);
    old.write(Buffer.from('not FLV at all'));
    assert.equal(h.stream.publishing, true, "the old session's bytes never reach the reader");
    current.write(Buffer.concat([FLV.header, FLV.avcConfig, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 1);
  });

  it('drops a session that sends bytes that are not FLV', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(h.stream.publishing, false);
    assert.ok(
      h.logs.some((l) => l.msg === 'bad FLV from publisher; dropping the session' && l.err === 'not an FLV stream (bad signature)'),
    );
    feed.write(Buffer.concat([FLV.header, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 0, 'nothing more is read from it');
  });

  it('drops a session that sends 8 MiB without a video keyframe', () => {
    const feed = h.stream.attach();
    feed.write(Buffer.concat([FLV.header, FLV.avcConfig]));
    const big = tag(9, 0, Buffer.concat([Buffer.from([0x27, 0x01, 0, 0, 0]), Buffer.alloc(1024 * 1024 - 100)]));
    for (let i = 0; i < 8 && h.stream.publishing; i++) feed.write(big);
    assert.equal(h.stream.publishing, true, '8 tags of just under 1 MiB stay under the limit');
    feed.write(big);
    assert.equal(h.stream.publishing, false);
    assert.ok(h.logs.some((l) => l.msg === 'no video keyframe in the first 8 MiB from the publisher; dropping the session'));
    assert.equal(h.metrics.started, 0);
  });

  it('starts no run once stopped', () => {
    const feed = h.stream.attach();
    h.stream.stop();
    feed.write(Buffer.concat([FLV.header, FLV.avcConfig, FLV.keyframe(0)]));
    assert.equal(h.metrics.started, 0);
    assert.equal(h.stream.publishing, false);
  });
});
