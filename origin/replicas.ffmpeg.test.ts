// Two origin replicas of one event agree: both are fed the same FLV on the event's media timeline (as the ingest
// forwards it, from t = 0), the second from a later source keyframe (a re-placement from the ingest's GOP cache). Every msn both
// publish has the same start (tfdt), parts, PROGRAM-DATE-TIME and discontinuity sequence; the second drops its
// unaligned lead; a reconnect (session 2, later on the timeline) gets larger msns and a DISCONTINUITY on both.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { FlvReader, isSequenceHeader, isVideoKeyframe, TagType } from '../lib/flv.ts';
import { createFlvTimelineShift } from '../ingest/timeline.ts';
import { LiveStream } from './live-stream.ts';
import { renderMediaPlaylist } from './playlist.ts';
import type { Segment } from './packager.ts';
import { parseInit, parseMoof } from './mp4.ts';
import { FFMPEG_TS_OFFSET_SEC } from './transcoder.ts';

const config = configSchema.parse({
  x264Preset: 'ultrafast',
  // The encoded ladder below, without the source rendition the default preset (standard) adds.
  defaultLadderPreset: 'custom',
  windowSegments: 30,
  reconnectWindowSec: 300,
  // Two rates: each rung's first frame sits on its own frame grid, and the keyframes still coincide.
  ladder: [
    { name: '360p', height: 360, fps: 30, videoKbps: 500 },
    { name: '180p', height: 180, fps: 15, videoKbps: 150 },
  ],
});
const TARGET = config.segmentTargetSec;
const ZERO = Date.UTC(2026, 0, 1, 12, 0, 0);
const SESSION_1_AT_MS = 0; // the first go-live: t starts at 0 (the AAC priming before it must not wrap a tfdt)
const SESSION_2_AT_MS = 20_000; // the publisher's return, 20 s after zero
const noMetrics = { ffmpegStarted() {}, ffmpegRestarted() {}, part() {}, segment() {} };

/** 10 s of 640x360@30 H.264 (a keyframe every 2 s) + AAC as FLV, as a publisher sends it (timestamps from 0). */
async function sourceFlv(): Promise<Buffer> {
  const { stdout } = await promisify(execFile)(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=640x360:rate=30[out0];sine=frequency=440:sample_rate=48000[out1]',
      '-t',
      '10',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '60',
      '-keyint_min',
      '60',
      '-sc_threshold',
      '0',
      '-b:v',
      '600k',
      '-c:a',
      'aac',
      '-b:a',
      '64k',
      '-f',
      'flv',
      'pipe:1',
    ],
    { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 },
  );
  return stdout;
}

/** What a replica placed mid-broadcast gets: header, metadata and sequence headers, then the feed from its `n`th video keyframe. */
function fromKeyframe(flv: Buffer, n: number): Buffer {
  const reader = new FlvReader();
  const tags = reader.push(flv);
  const head = tags.filter((t) => t.type === TagType.script || isSequenceHeader(t)).map((t) => t.raw);
  const at = tags.findIndex((t, i) => isVideoKeyframe(t) && tags.slice(0, i + 1).filter(isVideoKeyframe).length === n + 1);
  assert.ok(at > 0, `keyframe ${n}`);
  return Buffer.concat([reader.header!, ...head, ...tags.slice(at).map((t) => t.raw)]);
}

/**
 * Publishes one session into `s` (already shifted onto the timeline) at 1.5 × real time, as a live publisher would
 * (all at once, ffmpeg would still be encoding when the origin kills it 5 s after the publisher left), and waits
 * for ffmpeg to finish with it.
 */
async function publish(s: LiveStream, flv: Buffer, session: number): Promise<void> {
  const feed = s.attach({ zeroMs: ZERO, session });
  const reader = new FlvReader();
  const tags = reader.push(flv);
  feed.write(reader.header!);
  const started = performance.now();
  const firstMs = tags.find((t) => t.type !== TagType.script)!.timestamp;
  for (let i = 0; i < tags.length;) {
    const due = (tags[i]!.timestamp - firstMs) / 1.5;
    const wait = due - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const batch: Buffer[] = [];
    while (i < tags.length && (tags[i]!.timestamp - firstMs) / 1.5 <= due + 50) batch.push(tags[i++]!.raw);
    feed.write(Buffer.concat(batch));
  }
  feed.end();
  await s.closed();
}

const shifted = (flv: Buffer, offsetMs: number) => Buffer.concat(createFlvTimelineShift(offsetMs)(flv));

describe('two replicas fed the same timeline', () => {
  const a = new LiveStream('replicaEv01', config, createLogger('silent'), noMetrics);
  const b = new LiveStream('replicaEv01', config, createLogger('silent'), noMetrics);

  before(async () => {
    const flv = await sourceFlv();
    const session1 = shifted(flv, SESSION_1_AT_MS);
    const session2 = shifted(flv, SESSION_2_AT_MS);
    // Both replicas run at once, as they do in a cluster: a from the start, b from the source keyframe at 4.021 s.
    await Promise.all([publish(a, session1, 1), publish(b, fromKeyframe(session1, 2), 1)]);
    await Promise.all([publish(a, session2, 2), publish(b, session2, 2)]);
  });

  after(async () => {
    a.stop();
    b.stop();
    await Promise.all([a.closed(), b.closed()]);
  });

  const segments = (s: LiveStream, rendition: string): Segment[] => [...s.packagers.get(rendition)!.playlistSegments];

  for (const rendition of ['360p', '180p']) {
    it(`${rendition}: every msn both publish means the same media: start, parts, PROGRAM-DATE-TIME, discontinuity sequence`, () => {
      const sa = segments(a, rendition);
      const sb = segments(b, rendition);
      const common = sb.filter((s) => sa.some((t) => t.msn === s.msn));
      assert.ok(common.length >= 6, `common msns: ${common.map((s) => s.msn).join(', ')}`);
      for (const s of common) {
        const t = sa.find((x) => x.msn === s.msn)!;
        assert.ok(Math.abs(s.startMediaSec - t.startMediaSec) < 1e-6, `msn ${s.msn} starts at ${s.startMediaSec} and ${t.startMediaSec}`);
        assert.deepEqual(
          s.parts.map((p) => p.durationSec.toFixed(6)),
          t.parts.map((p) => p.durationSec.toFixed(6)),
          `msn ${s.msn} parts`,
        );
        assert.equal(s.programDateTimeMs, t.programDateTimeMs);
        assert.equal(s.programDateTimeMs, ZERO + s.startMediaSec * 1000, 'PDT = zero + t');
        assert.equal(s.discontinuitySequence, t.discontinuitySequence);
        assert.equal(s.discontinuity, t.discontinuity);
        assert.equal(s.msn, Math.floor(ZERO / (TARGET * 1000)) + Math.floor(s.startMediaSec / TARGET + 1e-6), 'msn from t');
      }
      // Every segment starts on the grid (its msn's grid instant), the run's unaligned lead was dropped.
      for (const s of [...sa, ...sb]) {
        const offGrid = s.startMediaSec - Math.floor(s.startMediaSec / TARGET + 1e-6) * TARGET;
        assert.ok(offGrid < 0.001, `msn ${s.msn} starts ${offGrid.toFixed(3)} s after its grid line`);
      }
      const firstA = sa[0]!;
      const firstB = sb[0]!;
      // The source's video starts 21 ms after its first tag (ffmpeg's FLV muxer delays it by the AAC priming).
      assert.equal(firstA.startMediaSec, 2, 'a dropped [0.033 s, 2 s): its first frame was a frame off the grid');
      assert.equal(firstB.startMediaSec, 6, 'b dropped [4.033 s, 6 s): it started at the source keyframe at 4.021 s');
      // Each replica names a run's init after the run's first msn: b's differs from a's (edges take a segment's
      // init from the replica whose playlist named it).
      assert.equal(firstB.run, firstB.msn);
      // Every track's tfdt is the timeline time plus ffmpeg's offset (none wrapped below zero).
      const init = parseInit(a.packagers.get(rendition)!.init(firstA.run)!);
      for (const part of firstA.parts) {
        for (const traf of parseMoof(part.bytes.subarray(0, part.bytes.readUInt32BE(0)), init).trafs) {
          const sec = traf.baseMediaDecodeTime / init.tracks.find((t) => t.id === traf.trackId)!.timescale - FFMPEG_TS_OFFSET_SEC;
          assert.ok(sec > 1 && sec < 4, `tfdt of track ${traf.trackId} at ${sec} s`);
        }
      }
    });

    it(`${rendition}: the reconnect is later on the timeline: larger msns, a DISCONTINUITY, discontinuity sequence 1 on both`, () => {
      for (const s of [a, b]) {
        const list = segments(s, rendition);
        const second = list.filter((x) => x.startMediaSec >= SESSION_2_AT_MS / 1000);
        const first = list.filter((x) => x.startMediaSec < SESSION_2_AT_MS / 1000);
        assert.ok(second.length >= 3 && first.length >= 2, `segments: ${list.map((x) => `${x.msn}@${x.startMediaSec}`).join(', ')}`);
        assert.ok(second[0]!.msn > first.at(-1)!.msn + 1, 'a gap of msns');
        assert.equal(second[0]!.discontinuity, true);
        assert.ok(second.every((x) => x.discontinuitySequence === 1));
        assert.ok(first.every((x) => x.discontinuitySequence === 0));
        const text = renderMediaPlaylist(s.packagers.get(rendition)!, { lowLatency: true });
        assert.match(text, /#EXT-X-GAP\nseg-\d+\.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-\d+\.mp4"\n/);
        assert.match(text, /#EXT-X-DISCONTINUITY-SEQUENCE:0\n/);
      }
      const msns = (s: LiveStream) =>
        segments(s, rendition)
          .filter((x) => x.startMediaSec >= 20)
          .map((x) => x.msn);
      assert.deepEqual(msns(a), msns(b));
    });
  }
});
