import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Mp4BoxSplitter, Mp4Error } from './mp4.ts';
import { RenditionPackager } from './packager.ts';
import type { Part, Segment } from './packager.ts';
import { loadFmp4Fixture } from '../test/support/fmp4-fixture.ts';

const OPTS = { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 };
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

/** Feeds a buffer in pseudo-random chunks. */
function feed(p: RenditionPackager, buf: Buffer, seed = 7): void {
  for (let i = 0; i < buf.length;) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (seed % 50_000);
    p.push(buf.subarray(i, i + n));
    i += n;
  }
}

function record(p: RenditionPackager): { inits: number[]; parts: Part[]; segments: Segment[] } {
  const r = { inits: [] as number[], parts: [] as Part[], segments: [] as Segment[] };
  p.on('init', (run) => r.inits.push(run));
  p.on('part', (part) => r.parts.push(part));
  p.on('segment', (s) => r.segments.push(s));
  return r;
}

describe('RenditionPackager', () => {
  let file: Buffer;
  let initLen: number; // bytes of ftyp+moov
  let fragments: Buffer[]; // moof+mdat pairs

  before(() => {
    file = loadFmp4Fixture();
    const boxes = new Mp4BoxSplitter().push(file);
    initLen = boxes[0]!.bytes.length + boxes[1]!.bytes.length;
    fragments = [];
    for (let i = 2; i + 1 < boxes.length; i += 2) {
      if (boxes[i]!.type === 'moof') fragments.push(Buffer.concat([boxes[i]!.bytes, boxes[i + 1]!.bytes]));
    }
  });

  it('numbers runs and segments from the bases it is given, so a restarted stream gets new URLs', () => {
    const p = new RenditionPackager('360p', { ...OPTS, firstRun: 1_700_000_000, firstMsn: 850_000_000 });
    assert.equal(p.latestRun, undefined);
    assert.deepEqual(p.nextPart, { msn: 850_000_000, index: 0 });
    const r = record(p);
    p.beginRun(T0);
    feed(p, file);
    p.endRun();
    assert.deepEqual(r.inits, [1_700_000_000]);
    assert.equal(p.latestRun, 1_700_000_000);
    assert.ok(p.init(1_700_000_000));
    assert.equal(r.segments[0]!.msn, 850_000_000);
    assert.deepEqual(
      r.segments.map((s) => s.msn),
      r.segments.map((_, i) => 850_000_000 + i),
    );
  });

  it('cuts 2 s segments of four 0.5 s parts at keyframes, with consistent PDT', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(T0);
    feed(p, file);
    assert.deepEqual(r.inits, [0]);
    assert.ok(p.init(0)?.equals(file.subarray(0, initLen)));
    assert.equal(r.parts.length, fragments.length);
    assert.equal(r.segments.length, 3, 'the 4th segment stays open until the run ends');
    p.endRun();
    assert.equal(r.segments.length, 4);
    r.segments.forEach((s, i) => {
      assert.equal(s.msn, i);
      assert.equal(s.run, 0);
      assert.equal(s.complete, true);
      assert.equal(s.discontinuity, false);
      assert.equal(s.parts[0]!.independent, true);
      assert.ok(s.parts.slice(1).every((part) => !part.independent));
      s.parts.forEach((part, j) => {
        assert.equal(part.msn, s.msn);
        assert.equal(part.index, j);
        assert.ok(Math.abs(part.durationSec - 0.5) < 0.05, `part ${s.msn}.${j} lasts ${part.durationSec}`);
        assert.equal(p.part(s.msn, j), part);
      });
      const total = s.parts.reduce((n, part) => n + part.durationSec, 0);
      assert.ok(Math.abs(s.durationSec - total) < 1e-9);
      assert.ok(Buffer.concat(s.parts.map((part) => part.bytes)).equals(s.bytes()));
      if (i < 3) {
        assert.equal(s.parts.length, 4);
        assert.ok(Math.abs(s.durationSec - 2) <= 0.5, `segment ${i} lasts ${s.durationSec}`);
      }
      assert.equal(s.programDateTimeMs, T0 + s.startMediaSec * 1000);
      if (i > 0) {
        const prev = r.segments[i - 1]!;
        assert.ok(Math.abs(s.programDateTimeMs - (prev.programDateTimeMs + prev.durationSec * 1000)) < 1, 'PDT advances by the EXTINF');
      }
    });
    assert.equal(
      Buffer.concat([p.init(0)!, ...r.segments.map((s) => s.bytes())]).equals(
        file.subarray(0, initLen + fragments.reduce((n, f) => n + f.length, 0)),
      ),
      true,
    );
    assert.equal(p.lastMsn, 3);
    assert.equal(p.lastPartIndex, r.segments[3]!.parts.length - 1);
    assert.equal(p.codecs, 'avc1.42c01e,mp4a.40.2');
    assert.equal(p.width, 640);
    assert.equal(p.height, 360);
    assert.ok(Math.abs(p.frameRate! - 30) < 0.01, `frame rate ${p.frameRate}`);
    const rates = r.segments.map((s) => (s.bytes().length * 8) / s.durationSec);
    assert.equal(p.bandwidth, Math.round(Math.max(...rates)));
    assert.ok(p.averageBandwidth! > 0 && p.averageBandwidth! <= p.bandwidth!);
  });

  it('starts a new run with its own init, a DISCONTINUITY and increasing msns', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(T0);
    feed(p, file);
    p.beginRun(T0 + 60_000); // implicit endRun
    assert.equal(p.latestRun, 1);
    feed(p, file, 99);
    p.endRun();
    assert.deepEqual(r.inits, [0, 1]);
    assert.ok(p.init(1));
    assert.deepEqual(
      r.segments.map((s) => s.msn),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.deepEqual(
      r.segments.map((s) => s.run),
      [0, 0, 0, 0, 1, 1, 1, 1],
    );
    assert.deepEqual(
      r.segments.map((s) => s.discontinuity),
      [false, false, false, false, true, false, false, false],
    );
    assert.equal(r.segments[4]!.programDateTimeMs, T0 + 60_000);
    assert.equal(p.discontinuitySequence, 0);
  });

  it('drops parts before the first keyframe and keeps msns strictly increasing', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(T0);
    p.push(file.subarray(0, initLen));
    for (const f of fragments.slice(2)) p.push(f); // joins mid-GOP
    assert.equal(r.parts[0]!.independent, true);
    assert.equal(r.parts.length, fragments.length - 4);
    assert.equal(r.parts[0]!.msn, 1, 'msn from tfdt: 2.02 s / 2 s');
    for (const f of fragments) p.push(f); // same run, timestamps jump back to 0
    p.endRun();
    const msns = r.segments.map((s) => s.msn);
    assert.deepEqual(msns, [1, 2, 3, 4, 5, 6, 7]);
  });

  it('keeps the window, retains retired objects for 3 target durations, then drops them', () => {
    const p = new RenditionPackager('360p', { ...OPTS, windowSegments: 2 });
    let clock = 0;
    const left = new Map<number, number>(); // msn -> media clock when it left the playlist
    const gone = new Map<number, number>(); // msn -> media clock when it stopped being downloadable
    const seen = new Set<number>();
    const check = (): void => {
      const listed = new Set(p.playlistSegments.map((s) => s.msn));
      assert.ok(p.playlistSegments.filter((s) => s.complete).length <= 2);
      for (const msn of seen) {
        if (!listed.has(msn) && !left.has(msn)) left.set(msn, clock);
        if (!p.segment(msn) && !gone.has(msn)) gone.set(msn, clock);
      }
    };
    p.on('part', (part) => {
      clock += part.durationSec;
      seen.add(part.msn);
      check();
    });
    p.on('segment', check);
    for (let run = 0; run < 3; run++) {
      p.beginRun(T0 + run * 10_000);
      feed(p, file, run + 1);
    }
    p.endRun();
    assert.ok(gone.size >= 6);
    for (const [msn, at] of gone) {
      const retainedFor = at - left.get(msn)!;
      assert.ok(retainedFor >= 6 - 1e-9 && retainedFor <= 6 + 0.53, `segment ${msn} retained ${retainedFor} s after leaving the playlist`);
    }
    assert.equal(p.init(0), undefined, 'inits of dropped runs are released');
    assert.ok(p.init(2));
  });

  it('holds bounded memory over many runs and fragments', () => {
    const p = new RenditionPackager('360p', OPTS);
    const maxSegment = 4 * Math.max(...fragments.map((f) => f.length));
    let peak = 0;
    let segments = 0;
    p.on('segment', () => {
      segments++;
      peak = Math.max(peak, p.retainedBytes);
    });
    for (let run = 0; run < 25; run++) {
      p.beginRun(T0 + run * 10_000);
      p.push(file.subarray(0, initLen));
      for (let k = 0; k < 3; k++) for (const f of fragments.slice(0, 12)) p.push(f); // reuse fragments
    }
    p.endRun();
    assert.equal(segments, 25 * 9);
    // window (6) + retired for 6 s (3) + open (1) + slack for a short segment, plus a few inits
    const bound = (OPTS.windowSegments + 3 + 2) * maxSegment + 4 * initLen;
    assert.ok(peak <= bound, `peak ${peak} > bound ${bound}`);
    assert.ok(p.retainedBytes <= bound);
    assert.equal(p.lastMsn, 25 * 9 - 1);
    assert.equal(p.segment(0), undefined);
    assert.equal(p.init(0), undefined);
  });

  it('rejects corrupt and truncated input with Mp4Error, keeps what it had, and recovers on the next run', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(T0);
    p.push(file.subarray(0, initLen));
    for (const f of fragments.slice(0, 6)) p.push(f);
    const garbage = Buffer.from([0x00, 0x00, 0x00, 0x02, 0x13, 0x37, 0x00, 0x01, ...Buffer.alloc(100)]);
    assert.throws(
      () => p.push(garbage),
      (err: Error) => err instanceof Mp4Error && /offset/.test(err.message),
    );
    assert.equal(r.segments.length, 2, 'the open segment was closed');
    assert.ok(p.segment(1)?.complete);
    p.push(fragments[6]!); // ffmpeg still writing before it is killed: ignored
    assert.equal(r.parts.length, 6);
    assert.ok(p.retainedBytes < file.length, 'nothing buffered after the error');

    p.beginRun(T0 + 10_000);
    assert.throws(() => p.push(fragments[0]!), /moof before moov/);
    p.beginRun(T0 + 20_000);
    const huge = Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x6d, 0x64, 0x61, 0x74]);
    assert.throws(() => p.push(huge), /exceeds/);

    p.beginRun(T0 + 30_000);
    p.push(file.subarray(0, initLen));
    p.push(fragments[0]!);
    const before = p.retainedBytes;
    p.push(fragments[1]!.subarray(0, 1000)); // truncated: ffmpeg dies mid-fragment
    assert.equal(p.retainedBytes, before + 1000);
    p.endRun();
    assert.equal(p.retainedBytes, before, 'the partial box was released');
    assert.equal(r.segments.at(-1)!.parts.length, 1, 'the truncated fragment was dropped');
    assert.equal(r.segments.at(-1)!.discontinuity, true);
    assert.equal(r.segments.at(-1)!.msn, 2);
  });
});
