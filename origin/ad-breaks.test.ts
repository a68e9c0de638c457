// SCTE-35 splice_insert encoding, CRC-32/MPEG-2, and the ad-break DATERANGE in a rendered media playlist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import { AD_BREAK_CLASS, adBreakDateRange, crc32Mpeg2, encodeSpliceInsert, markAdBreak } from './ad-breaks.ts';
import { renderDateRange, renderMediaPlaylist, type DateRange, type MediaPlaylistSource } from './playlist.ts';

test('CRC-32/MPEG-2 check value', () => {
  assert.equal(crc32Mpeg2(Buffer.from('123456789')), 0x0376e6e7);
});

test('splice_insert cue-out: header fields, break duration in 90 kHz ticks, CRC over the section', () => {
  const b = encodeSpliceInsert({ spliceEventId: 7, outOfNetwork: true, durationSec: 30 });
  assert.equal(b[0], 0xfc, 'table_id');
  const sectionLength = b.readUInt16BE(1) & 0x0fff;
  assert.equal(sectionLength, b.length - 3);
  assert.equal(b[13], 0x05, 'splice_insert');
  const cmdLen = ((b[11]! & 0x0f) << 8) | b[12]!;
  assert.equal(cmdLen, 15);
  assert.equal(b.readUInt32BE(14), 7, 'splice_event_id');
  assert.equal(b[18]! >> 7, 0, 'not cancelled');
  const flags = b[19]!;
  assert.equal(flags >> 7, 1, 'out_of_network');
  assert.equal((flags >> 6) & 1, 1, 'program_splice');
  assert.equal((flags >> 5) & 1, 1, 'duration_flag');
  assert.equal((flags >> 4) & 1, 1, 'splice_immediate');
  assert.equal(b[20]! >> 7, 1, 'auto_return');
  const ticks = (BigInt(b[20]! & 1) << 32n) | BigInt(b.readUInt32BE(21));
  assert.equal(ticks, 30n * 90_000n);
  assert.equal(crc32Mpeg2(b.subarray(0, b.length - 4)), b.readUInt32BE(b.length - 4));
  assert.equal(crc32Mpeg2(b), 0, 'a section with its CRC has remainder 0');
});

test('splice_insert cue-in has no break duration', () => {
  const b = encodeSpliceInsert({ spliceEventId: 7, outOfNetwork: false });
  assert.equal(((b[11]! & 0x0f) << 8) | b[12]!, 10);
  assert.equal(b[19]! >> 7, 0);
  assert.equal((b[19]! >> 5) & 1, 0);
  assert.equal(crc32Mpeg2(b), 0);
});

test('DATERANGE: cue-out with PLANNED-DURATION, then DURATION and SCTE35-IN, parsed by hls-parser', () => {
  const start = Date.UTC(2025, 0, 1, 12, 0, 0, 250);
  const open = renderDateRange(adBreakDateRange({ seq: 3, startMs: start, plannedDurationSec: 30 }));
  assert.match(
    open,
    /^#EXT-X-DATERANGE:ID="ad-3",CLASS="com\.onair\.ad-break",START-DATE="2025-01-01T12:00:00\.250Z",PLANNED-DURATION=30\.000,SCTE35-OUT=0xFC[0-9A-F]+$/,
  );
  const done = adBreakDateRange({ seq: 3, startMs: start, plannedDurationSec: 30, endMs: start + 12_000 });
  assert.equal(done.durationSec, 12);
  assert.ok(done.scte35In);

  const ranges: DateRange[] = [];
  const src: MediaPlaylistSource = {
    segmentTargetSec: 2,
    partTargetSec: 0.5,
    longestSegmentSec: 2,
    longestPartSec: 0.5,
    discontinuitySequence: 0,
    playlistSegments: [0, 1, 2].map((i) => ({
      msn: i,
      run: 0,
      parts: [],
      durationSec: 2,
      programDateTimeMs: start - 4000 + i * 2000,
      discontinuity: false,
      complete: true,
    })),
    nextPart: { msn: 3, index: 0 },
    dateRanges: ranges,
  };
  // markAdBreak writes the same range to every rendition.
  const targets = [{ setDateRange: (d: DateRange) => ranges.splice(0, ranges.length, d) }, { setDateRange: () => {} }];
  assert.equal(markAdBreak(targets, { seq: 3, startMs: start, plannedDurationSec: 30 }), 2);
  const text = renderMediaPlaylist(src, { lowLatency: false });
  const parsed = HLS.parse(text) as HLS.types.MediaPlaylist;
  const dr = parsed.segments.flatMap((s) => (s.dateRange ? [s.dateRange] : []))[0];
  assert.ok(dr, 'hls-parser finds the DATERANGE');
  assert.equal(dr.id, 'ad-3');
  assert.equal(dr.classId, AD_BREAK_CLASS);
  assert.equal(dr.start?.getTime(), start);
  assert.equal(dr.plannedDuration, 30);
});
