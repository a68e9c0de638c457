import { test } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import { renderVodPlaylist, vodDurationSec, type VodSegment } from './vod-playlist.ts';

HLS.setOptions({ strictMode: true });

const T0 = Date.parse('2026-12-02T10:00:00.000Z');
const seg = (msn: number, over: Partial<VodSegment> = {}): VodSegment => ({
  msn,
  run: 100,
  durationSec: 2,
  programDateTimeMs: T0 + (msn - 100) * 2000,
  discontinuitySequence: 0,
  ...over,
});

test('a VOD playlist: PLAYLIST-TYPE VOD, ENDLIST, the same segment names as live, its duration', () => {
  const text = renderVodPlaylist(2, [seg(101), seg(100), seg(102, { durationSec: 1.5 })]);
  const p = HLS.parse(text) as HLS.types.MediaPlaylist;
  assert.equal(p.playlistType, 'VOD');
  assert.equal(p.endlist, true);
  assert.equal(p.mediaSequenceBase, 100);
  assert.deepEqual(
    p.segments.map((s) => s.uri),
    ['seg-100.m4s', 'seg-101.m4s', 'seg-102.m4s'],
  );
  assert.equal(p.segments[0]!.map?.uri, 'init-100.mp4');
  assert.equal(vodDurationSec([seg(100), seg(101), seg(102, { durationSec: 1.5 })]), 5.5);
  assert.equal(
    p.segments.reduce((n, s) => n + s.duration, 0),
    5.5,
  );
  assert.match(text, /^#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:00.000Z$/m);
  assert.ok(!text.includes('#EXT-X-DISCONTINUITY'), text);
});

test('a reconnect (new discontinuity sequence, new run) gets EXT-X-DISCONTINUITY, a new MAP and its PDT', () => {
  const text = renderVodPlaylist(2, [seg(100), seg(101), seg(110, { run: 110, discontinuitySequence: 1, programDateTimeMs: T0 + 20_000 })]);
  const p = HLS.parse(text) as HLS.types.MediaPlaylist;
  assert.deepEqual(
    p.segments.map((s) => s.discontinuity === true),
    [false, false, true],
  );
  assert.equal(p.segments[2]!.map?.uri, 'init-110.mp4');
  assert.match(
    text,
    /#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-110.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-12-02T10:00:20.000Z\n#EXTINF:2.000,\nseg-110.m4s/,
  );
});

test('missing segments (an msn gap) are a discontinuity; a new run without one gets only a new MAP', () => {
  const text = renderVodPlaylist(2, [seg(100), seg(102), seg(103, { run: 103 })]);
  const p = HLS.parse(text) as HLS.types.MediaPlaylist;
  assert.deepEqual(
    p.segments.map((s) => s.discontinuity === true),
    [false, true, false],
  );
  assert.equal(p.segments[2]!.map?.uri, 'init-103.mp4');
});

test('TARGETDURATION covers every EXTINF rounded (RFC 8216bis 4.4.3.1); empty segments are left out', () => {
  const text = renderVodPlaylist(2, [seg(100, { durationSec: 3.6 }), seg(101, { durationSec: 0 })]);
  assert.match(text, /^#EXT-X-TARGETDURATION:4$/m);
  assert.ok(!text.includes('seg-101'));
  const empty = renderVodPlaylist(2, []);
  assert.match(empty, /#EXT-X-ENDLIST\n$/);
});
