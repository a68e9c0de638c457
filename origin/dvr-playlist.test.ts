import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import type { MediaPlaylist } from 'hls-parser/types.js';
import { dvrSource, dvrWindowSegments, liveDurationSec, withDvrSegments, type DvrStoredSegment } from './dvr-playlist.ts';
import { renderMediaPlaylist, type MediaPlaylistSource, type PlaylistSegment } from './playlist.ts';

HLS.setOptions({ strictMode: true });

const T0 = Date.UTC(2026, 0, 1);

/** Stored segments msn from..to-1 of 2 s; a reconnect (discontinuity sequence + 1) at each msn of `reconnects`. */
function stored(from: number, to: number, reconnects: number[] = []): DvrStoredSegment[] {
  const out: DvrStoredSegment[] = [];
  let dsn = 0;
  let run = from;
  for (let msn = from; msn < to; msn++) {
    if (reconnects.includes(msn)) {
      dsn++;
      run = msn;
    }
    out.push({ msn, run, durationSec: 2, programDateTimeMs: T0 + msn * 2000, discontinuitySequence: dsn });
  }
  return out;
}

/** A live LL window: complete segments msn from..to-1 (4 parts of 0.5 s), then an open one with 2 parts. */
function live(from: number, to: number, dsn = 0, run = from): MediaPlaylistSource {
  const parts = Array.from({ length: 4 }, (_, i) => ({ durationSec: 0.5, independent: i === 0 }));
  const segs: PlaylistSegment[] = [];
  for (let msn = from; msn <= to; msn++) {
    const open = msn === to;
    segs.push({
      msn,
      run,
      parts: open ? parts.slice(0, 2) : parts,
      durationSec: open ? 0 : 2,
      programDateTimeMs: T0 + msn * 2000,
      discontinuity: false,
      complete: !open,
    });
  }
  return {
    segmentTargetSec: 2,
    partTargetSec: 0.5,
    longestSegmentSec: 2,
    longestPartSec: 0.5,
    discontinuitySequence: dsn,
    playlistSegments: segs,
    nextPart: { msn: to, index: 2 },
  };
}

const parse = (text: string): MediaPlaylist => HLS.parse(text) as MediaPlaylist;

describe('DVR window', () => {
  it('adds the stored segments older than the live window, newest first, within the window', () => {
    const s = stored(0, 100);
    // Live: 12 complete segments (24 s) + 1 s of parts = 25 s; a 45 s window leaves room for 10 older segments.
    const dvr = dvrWindowSegments(s, 88, 25, 45);
    assert.deepEqual(
      dvr.map((x) => x.msn),
      [78, 79, 80, 81, 82, 83, 84, 85, 86, 87],
    );
    assert.deepEqual(dvrWindowSegments(s, 88, 25, 0), [], 'a window of 0 is DVR off');
    assert.deepEqual(dvrWindowSegments(s, 88, 25, 20), [], 'a window shorter than the live one adds nothing');
    assert.deepEqual(
      dvrWindowSegments(s, 5, 25, 7200).map((x) => x.msn),
      [0, 1, 2, 3, 4],
      'the whole recording when it is shorter than the window',
    );
    assert.deepEqual(dvrWindowSegments([], 88, 25, 7200), [], 'nothing recorded (recording off): live window only');
    // Segments the recorder stored later than the live window's start are not listed twice.
    assert.deepEqual(
      dvrWindowSegments(s, 50, 0, 4).map((x) => x.msn),
      [48, 49],
    );
  });

  it('renders one continuous playlist: MEDIA-SEQUENCE from the oldest DVR segment, the LL tail unchanged', () => {
    const l = live(88, 100);
    const text = renderMediaPlaylist(dvrSource(l, stored(0, 95), 45), { lowLatency: true });
    const pl = parse(text);
    assert.equal(pl.mediaSequenceBase, 78);
    assert.equal(pl.discontinuitySequenceBase, 0);
    assert.deepEqual(
      pl.segments.map((x) => x.mediaSequenceNumber),
      Array.from({ length: 23 }, (_, i) => 78 + i),
    );
    assert.equal(pl.segments[0]!.uri, 'seg-78.m4s');
    assert.equal(pl.segments[0]!.map?.uri, 'init-0.mp4');
    assert.equal(pl.segments[0]!.parts.length, 0);
    // Everything from the first live segment on is exactly what the live playlist alone renders.
    const liveText = renderMediaPlaylist(l, { lowLatency: true });
    const tail = (t: string) => t.slice(t.indexOf('#EXT-X-PROGRAM-DATE-TIME:' + new Date(T0 + 89 * 2000).toISOString()));
    assert.equal(tail(text), tail(liveText));
    assert.match(text, /PART-HOLD-BACK=1\.250,CAN-SKIP-UNTIL=12\.000/);
    assert.equal(liveDurationSec(l), 25);
  });

  it('marks a publisher reconnect inside the DVR window and keeps DISCONTINUITY-SEQUENCE right as it slides', () => {
    // Reconnects at msn 60 and 80: sequences 0, 1, 2. The live window (from 88) is in sequence 2.
    const s = stored(0, 88, [60, 80]);
    const l = live(88, 100, 2, 80);
    const pl = parse(renderMediaPlaylist(dvrSource(l, s, 80), { lowLatency: true }));
    // 80 s window − 25 s live = 27 DVR segments: msn 61..87 (one reconnect inside, at 80).
    assert.equal(pl.mediaSequenceBase, 61);
    assert.equal(pl.discontinuitySequenceBase, 1);
    const disc = pl.segments.filter((x) => x.discontinuity).map((x) => x.mediaSequenceNumber);
    assert.deepEqual(disc, [80]);
    assert.equal(pl.segments.find((x) => x.mediaSequenceNumber === 80)!.map?.uri, 'init-80.mp4');
    assert.equal(pl.segments.find((x) => x.mediaSequenceNumber === 80)!.discontinuitySequence, 2);
    // The window slid so that the reconnect segment is the first one listed: it carries the tag, the base is one less.
    const pl2 = parse(renderMediaPlaylist(withDvrSegments(l, s.slice(80), s[79]), { lowLatency: true }));
    assert.equal(pl2.mediaSequenceBase, 80);
    assert.equal(pl2.discontinuitySequenceBase, 1);
    assert.equal(pl2.segments[0]!.discontinuity, true);
    assert.equal(pl2.segments[0]!.discontinuitySequence, 2);
    // One segment later: no tag, the base is the segment's own sequence.
    const pl3 = parse(renderMediaPlaylist(withDvrSegments(l, s.slice(81), s[80]), { lowLatency: true }));
    assert.equal(pl3.discontinuitySequenceBase, 2);
    assert.ok(!pl3.segments[0]!.discontinuity);
  });

  it('lists a segment the recording lacks as EXT-X-GAP, keeping every msn', () => {
    const s = stored(0, 88).filter((x) => x.msn !== 84);
    const pl = parse(renderMediaPlaylist(dvrSource(live(88, 100), s, 45), { lowLatency: true }));
    const gap = pl.segments.find((x) => x.mediaSequenceNumber === 84)!;
    assert.equal(gap.gap, true);
    assert.equal(pl.segments.at(-1)!.mediaSequenceNumber, 100);
  });

  it('delta update (_HLS_skip=YES) replaces every segment beyond the skip boundary with EXT-X-SKIP', () => {
    // A 2 h window: 3600 segments.
    const s = stored(0, 4000, [2000]);
    const l = live(3988, 4000, 1, 2000);
    const src = dvrSource(l, s, 7200);
    const full = renderMediaPlaylist(src, { lowLatency: true });
    const delta = renderMediaPlaylist(src, { lowLatency: true, skip: true });
    const pf = parse(full);
    assert.equal(pf.segments.length, 3600);
    assert.equal(pf.mediaSequenceBase, 401);
    // RFC 8216bis §4.4.5.2: SKIPPED-SEGMENTS counts the segments replaced; the rest ends 12 s (6 × 2 s) back at most.
    const m = /#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)\n/.exec(delta);
    assert.ok(m, delta.slice(0, 400));
    const skipped = Number(m[1]);
    // Kept: the segments ending less than CAN-SKIP-UNTIL (12 s) before the playlist's end: 6 complete + the open one.
    assert.equal(skipped, 3600 - 7);
    assert.match(delta, /#EXT-X-VERSION:9/);
    assert.match(delta, /#EXT-X-MEDIA-SEQUENCE:401\n/);
    assert.match(delta, /#EXT-X-DISCONTINUITY-SEQUENCE:0\n/);
    assert.ok(delta.length * 50 < full.length, `delta ${delta.length} B vs full ${full.length} B`);
    // A client merging the delta into its previous playlist finds every msn at the same place.
    const kept = delta.split('\n').filter((x) => x.startsWith('seg-'));
    assert.deepEqual(kept, ['seg-3994.m4s', 'seg-3995.m4s', 'seg-3996.m4s', 'seg-3997.m4s', 'seg-3998.m4s', 'seg-3999.m4s']);
    assert.equal(3994 - 401, skipped);
  });
});
