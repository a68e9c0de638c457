import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Mp4BoxSplitter, Mp4Error } from './mp4.ts';
import { RenditionPackager } from './packager.ts';
import type { Part, Segment } from './packager.ts';
import { loadFmp4Fixture, shiftFragment } from '../test/support/fmp4-fixture.ts';

const OPTS = { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 };
/** The timeline's zero in most tests: the epoch, so that msn = floor(t / 2 s). */
const T0 = 0;
/** Session `n` of a broadcast whose timeline starts at T0. */
const session = (n: number) => ({ zeroMs: T0, session: n });

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

  it('numbers from the timeline: msn = floor(zero / target) + floor(t / target), PDT = zero + t, init named after its first msn', () => {
    const zeroMs = Date.UTC(2025, 0, 1, 12, 0, 1); // 1 s past a multiple of the target: the base rounds down
    const base = Math.floor(zeroMs / 2000);
    const p = new RenditionPackager('360p', OPTS);
    assert.equal(p.latestRun, undefined);
    const r = record(p);
    p.beginRun({ zeroMs, session: 1 });
    p.push(file.subarray(0, initLen));
    for (const f of fragments) p.push(shiftFragment(f, file.subarray(0, initLen), 100)); // t = 100 s: segment 50
    p.endRun();
    assert.deepEqual(r.inits, [base + 50]);
    assert.equal(p.latestRun, base + 50);
    assert.ok(p.init(base + 50));
    assert.deepEqual(
      r.segments.map((s) => s.msn),
      [50, 51, 52, 53].map((k) => base + k),
    );
    for (const s of r.segments) assert.equal(s.programDateTimeMs, zeroMs + s.startMediaSec * 1000);
    assert.equal(r.segments[0]!.startMediaSec, 100);
  });

  it('cuts 2 s segments of four 0.5 s parts at keyframes, with consistent PDT', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(session(1));
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

  it('a later session: its own init, a DISCONTINUITY, msns from its place on the timeline, discontinuity sequence session - 1', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(session(1));
    feed(p, file);
    p.beginRun(session(2)); // implicit endRun
    p.push(file.subarray(0, initLen));
    for (const f of fragments) p.push(shiftFragment(f, file.subarray(0, initLen), 10)); // back 10 s after zero
    p.endRun();
    assert.deepEqual(r.inits, [0, 5]);
    assert.equal(p.latestRun, 5);
    assert.deepEqual(
      r.segments.map((s) => [s.msn, s.run, s.discontinuity, s.discontinuitySequence]),
      [
        [0, 0, false, 0],
        [1, 0, false, 0],
        [2, 0, false, 0],
        [3, 0, false, 0],
        [5, 5, true, 1],
        [6, 5, false, 1],
        [7, 5, false, 1],
        [8, 5, false, 1],
      ],
    );
    assert.equal(r.segments[4]!.programDateTimeMs, T0 + 10_000);
    assert.equal(p.discontinuitySequence, 0);
    // A replica placed during session 2 has never seen session 1: the same msn has the same discontinuity sequence.
    const q = new RenditionPackager('360p', OPTS);
    q.beginRun(session(2));
    q.push(file.subarray(0, initLen));
    for (const f of fragments) q.push(shiftFragment(f, file.subarray(0, initLen), 10));
    assert.equal(q.segment(5)!.discontinuitySequence, 1);
    assert.equal(q.discontinuitySequence, 1);
  });

  it('drops the unaligned lead of a run (started at a keyframe off the grid), and segments not past the last msn', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(session(1));
    p.push(file.subarray(0, initLen));
    for (const f of fragments.slice(4)) p.push(f); // starts at the keyframe at 2.021 s: not segment 1's instant (2.000)
    assert.equal(r.parts[0]!.independent, true);
    assert.equal(r.parts.length, fragments.length - 8, 'the lead segment (4 parts) is not published');
    assert.equal(r.parts[0]!.msn, 2);
    assert.deepEqual(r.inits, [2], 'the init is named after the first published msn');
    for (const f of fragments) p.push(f); // same run, timestamps jump back to 0: nothing is renumbered
    p.endRun();
    assert.deepEqual(
      r.segments.map((s) => s.msn),
      [2, 3],
    );
    assert.equal(p.segment(1), undefined);
  });

  it('a replica that starts later publishes the same msns with the same timing and parts as one that started first', () => {
    const a = new RenditionPackager('360p', OPTS);
    const b = new RenditionPackager('360p', OPTS);
    a.beginRun(session(1));
    feed(a, file);
    a.endRun();
    b.beginRun(session(1));
    b.push(file.subarray(0, initLen));
    // Mid-GOP: parts before its first keyframe are dropped, then that keyframe's segment (4.021 s is not the
    // fixture's grid instant 4.000 s, so it counts as an unaligned lead).
    for (const f of fragments.slice(5)) b.push(f);
    b.endRun();
    assert.deepEqual(
      b.playlistSegments.map((s) => s.msn),
      [3],
    );
    for (const s of b.playlistSegments) {
      const t = a.segment(s.msn)!;
      assert.equal(s.startMediaSec, t.startMediaSec);
      assert.equal(s.programDateTimeMs, t.programDateTimeMs);
      assert.deepEqual(
        s.parts.map((x) => x.durationSec),
        t.parts.map((x) => x.durationSec),
      );
      assert.ok(s.bytes().equals(t.bytes()), 'the same bytes (the same fixture fed both)');
    }
    // A run whose first keyframe is exactly on the grid publishes its first segment.
    const c = new RenditionPackager('360p', OPTS);
    c.beginRun(session(1));
    c.push(file.subarray(0, initLen));
    for (const f of fragments) c.push(shiftFragment(f, file.subarray(0, initLen), 4));
    assert.equal(c.playlistSegments[0]!.msn, 2);
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
      p.beginRun(session(run + 1));
      p.push(file.subarray(0, initLen));
      for (const f of fragments) p.push(shiftFragment(f, file.subarray(0, initLen), run * 10));
    }
    p.endRun();
    assert.ok(gone.size >= 6);
    for (const [msn, at] of gone) {
      const retainedFor = at - left.get(msn)!;
      assert.ok(retainedFor >= 6 - 1e-9 && retainedFor <= 6 + 0.53, `segment ${msn} retained ${retainedFor} s after leaving the playlist`);
    }
    assert.equal(p.init(0), undefined, 'inits of dropped runs are released');
    assert.ok(p.init(10));
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
    const init = file.subarray(0, initLen);
    for (let run = 0; run < 25; run++) {
      p.beginRun(session(run + 1));
      p.push(init);
      // Reuse fragments (0-6 s), three times per run, each time further on the timeline.
      for (let k = 0; k < 3; k++) for (const f of fragments.slice(0, 12)) p.push(shiftFragment(f, init, run * 20 + k * 6));
    }
    p.endRun();
    assert.equal(segments, 25 * 9);
    // window (6) + retired for 6 s (3) + open (1) + slack for a short segment, plus a few inits
    const bound = (OPTS.windowSegments + 3 + 2) * maxSegment + 4 * initLen;
    assert.ok(peak <= bound, `peak ${peak} > bound ${bound}`);
    assert.ok(p.retainedBytes <= bound);
    assert.equal(p.lastMsn, 24 * 10 + 8);
    assert.equal(p.segment(0), undefined);
    assert.equal(p.init(0), undefined);
  });

  it('rejects corrupt and truncated input with Mp4Error, keeps what it had, and recovers on the next run', () => {
    const p = new RenditionPackager('360p', OPTS);
    const r = record(p);
    p.beginRun(session(1));
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

    p.beginRun(session(2));
    assert.throws(() => p.push(fragments[0]!), /moof before moov/);
    p.beginRun(session(3));
    const huge = Buffer.from([0x7f, 0xff, 0xff, 0xff, 0x6d, 0x64, 0x61, 0x74]);
    assert.throws(() => p.push(huge), /exceeds/);

    p.beginRun(session(4));
    p.push(file.subarray(0, initLen));
    p.push(shiftFragment(fragments[0]!, file.subarray(0, initLen), 30));
    const before = p.retainedBytes;
    p.push(shiftFragment(fragments[1]!, file.subarray(0, initLen), 30).subarray(0, 1000)); // truncated: ffmpeg dies mid-fragment
    assert.equal(p.retainedBytes, before + 1000);
    p.endRun();
    assert.equal(p.retainedBytes, before, 'the partial box was released');
    assert.equal(r.segments.at(-1)!.parts.length, 1, 'the truncated fragment was dropped');
    assert.equal(r.segments.at(-1)!.discontinuity, true);
    assert.equal(r.segments.at(-1)!.msn, 15);
  });

  it('source keyframes: a segment per keyframe slot wherever the keyframes fall, numbered one by one, honest durations', () => {
    // The fixture has a keyframe every 2 s; with a 1 s target every keyframe is a new slot, two slots apart: the
    // numbers still count by one (no gaps), and each segment lasts the source's 2 s keyframe interval.
    const p = new RenditionPackager('source', { ...OPTS, segmentTargetSec: 1, sourceKeyframes: true });
    const r = record(p);
    p.beginRun(session(1));
    const init = file.subarray(0, initLen);
    p.push(init);
    for (const f of fragments) p.push(shiftFragment(f, init, 100.3)); // off every grid: t = 100.3 s
    p.endRun();
    assert.deepEqual(
      r.segments.map((s) => s.msn),
      [100, 101, 102, 103],
    );
    for (const s of r.segments) {
      if (s !== r.segments.at(-1)) assert.ok(Math.abs(s.durationSec - 2) < 0.05, `segment ${s.msn} lasts ${s.durationSec} s`);
      assert.equal(s.parts[0]!.independent, true, 'a segment starts with a keyframe');
      assert.ok(
        s.parts.slice(1).every((part) => !part.independent),
        'only keyframe parts are INDEPENDENT',
      );
    }
    assert.ok(Math.abs(r.segments[0]!.startMediaSec - 100.3) < 1e-6, 'the first keyframe starts a segment even off the grid');
    assert.ok(p.longestSegmentSec > 1.9, 'TARGETDURATION follows the longest segment');
    // A keyframe is not due at the target: the hint stays in the open segment.
    const q = new RenditionPackager('source', { ...OPTS, segmentTargetSec: 1, sourceKeyframes: true });
    q.beginRun(session(1));
    q.push(init);
    for (const f of fragments.slice(0, 3)) q.push(shiftFragment(f, init, 100.3));
    assert.deepEqual(q.nextPart, { msn: 100, index: 3 });
  });
});
