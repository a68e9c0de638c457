import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import type { MasterPlaylist, MediaPlaylist } from 'hls-parser/types.js';
import { Mp4BoxSplitter } from './mp4.ts';
import { RenditionPackager } from './packager.ts';
import {
  joinLag,
  joinWait,
  keyframeInterval,
  partHoldBack,
  partTarget,
  renderMasterPlaylist,
  renderMediaPlaylist,
  targetDuration,
  variantFor,
  type MediaPlaylistSource,
  type PlaylistPart,
  type PlaylistSegment,
} from './playlist.ts';
import { partUri } from '../lib/hls-path.ts';
import { audioOnlyPlan, planLadder } from './ladder.ts';
import { loadFmp4Fixture, shiftFragment } from '../test/support/fmp4-fixture.ts';

HLS.setOptions({ strictMode: true }); // spec violations throw instead of logging

const OPTS = { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 };
/** The timeline's zero: the epoch, so that msn = floor(t / 2 s). */
const T0 = 0;

const parseMedia = (text: string): MediaPlaylist => {
  const pl = HLS.parse(text);
  assert.equal(pl.isMasterPlaylist, false);
  return pl as MediaPlaylist;
};

describe('playlist', () => {
  let init: Buffer;
  let fragments: Buffer[];

  before(() => {
    const file = loadFmp4Fixture();
    const boxes = new Mp4BoxSplitter().push(file);
    init = Buffer.concat([boxes[0]!.bytes, boxes[1]!.bytes]);
    fragments = [];
    for (let i = 2; i + 1 < boxes.length; i += 2) {
      if (boxes[i]!.type === 'moof') fragments.push(Buffer.concat([boxes[i]!.bytes, boxes[i + 1]!.bytes]));
    }
  });

  const sessions = new WeakMap<RenditionPackager, number>();
  /** The next publish session of `p`, `atMs` after the timeline's zero: the fixture moved there. */
  function runOnce(p: RenditionPackager, atMs: number, end = true): void {
    const session = (sessions.get(p) ?? 0) + 1;
    sessions.set(p, session);
    p.beginRun({ zeroMs: T0, session });
    p.push(init);
    for (const f of fragments) p.push(shiftFragment(f, init, (atMs - T0) / 1000));
    if (end) p.endRun();
  }

  it('renders a plain playlist of complete segments only', () => {
    const p = new RenditionPackager('360p', OPTS);
    runOnce(p, T0, false);
    const text = renderMediaPlaylist(p, { lowLatency: false });
    const pl = parseMedia(text);
    assert.equal(pl.version, 7);
    assert.equal(pl.targetDuration, 2);
    assert.equal(pl.mediaSequenceBase, 0);
    assert.equal(pl.discontinuitySequenceBase, 0);
    assert.equal(pl.independentSegments, true);
    assert.equal(pl.endlist, false);
    assert.equal(pl.lowLatencyCompatibility, undefined);
    assert.deepEqual(
      pl.segments.map((s) => s.uri),
      ['seg-0.m4s', 'seg-1.m4s', 'seg-2.m4s'],
      'the open segment is not listed',
    );
    pl.segments.forEach((s, i) => {
      const seg = p.segment(i)!;
      assert.equal(s.duration, Number(seg.durationSec.toFixed(3)));
      assert.equal(s.programDateTime?.getTime(), Math.floor(seg.programDateTimeMs));
      assert.equal(s.map.uri, 'init-0.mp4');
      assert.equal(s.parts.length, 0);
    });
    assert.doesNotMatch(text, /EXT-X-PART|PRELOAD-HINT|SERVER-CONTROL/);
    assert.match(text, /^#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00\.000Z$/m);
    assert.match(text, /^#EXT-X-MAP:URI="init-0\.mp4"$/m);
    assert.equal(text.match(/EXT-X-MAP/g)?.length, 1);
  });

  it('sets PART-HOLD-BACK to the parts asked for, never under the RFC floor of two', () => {
    const p = new RenditionPackager('360p', OPTS);
    runOnce(p, 0, false);
    const holdBack = (parts?: number) =>
      parseMedia(renderMediaPlaylist(p, { lowLatency: true, ...(parts !== undefined ? { partHoldBackParts: parts } : {}) }))
        .lowLatencyCompatibility!.partHoldBack;
    const pt = partTarget(p);
    assert.equal(holdBack(), Number((2.5 * pt).toFixed(3)));
    assert.equal(holdBack(3), Number((3 * pt).toFixed(3)));
    assert.equal(holdBack(2.5), Number((2.5 * pt).toFixed(3)));
    assert.equal(holdBack(1), Number((2 * pt).toFixed(3)));
  });

  it('renders valid LL-HLS after every part, with a preload hint that names the next part', () => {
    const p = new RenditionPackager('360p', OPTS);
    const reports = [{ uri: '../720p/index.m3u8', lastMsn: 9, lastPart: 2 }];
    let hint: { msn: number; index: number } | undefined;
    let checked = 0;
    const check = (): void => {
      const text = renderMediaPlaylist(p, { lowLatency: true, renditionReports: reports });
      const pl = parseMedia(text);
      const td = targetDuration(p);
      const pt = partTarget(p);
      assert.equal(pl.version, 9);
      assert.equal(pl.targetDuration, td);
      assert.deepEqual(pl.lowLatencyCompatibility, {
        canBlockReload: true,
        canSkipUntil: 6 * td,
        holdBack: undefined,
        partHoldBack: Number((2.5 * pt).toFixed(3)),
      });
      assert.equal(pl.partTargetDuration, Number(pt.toFixed(3)));
      assert.match(text, /^#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=[\d.]+,CAN-SKIP-UNTIL=12\.000$/m);
      const last = pl.segments.at(-1)!;
      const hintPart = last.parts.at(-1)!;
      assert.equal(hintPart.hint, true);
      assert.equal(hintPart.uri, partUri(p.nextPart.msn, p.nextPart.index));
      assert.equal(text.match(/PRELOAD-HINT/g)?.length, 1);
      // parts: the open segment's, and those of segments within 3 target durations of the end
      const listed = pl.segments.flatMap((s) => s.parts.filter((x) => !x.hint));
      const newest = p.playlistSegments.at(-1)!;
      assert.equal(listed.at(-1)?.uri, partUri(newest.msn, newest.parts.length - 1));
      for (const part of listed) {
        const [, msn, index] = /^part-(\d+)\.(\d+)\.m4s$/.exec(part.uri)!.map(Number);
        assert.equal(part.independent, index === 0 ? true : undefined);
        assert.ok(p.part(msn!, index!), `${part.uri} is downloadable`);
      }
      assert.ok(pl.segments.filter((s) => s.parts.length > 0).length <= 4);
      assert.equal(pl.renditionReports.length, 1);
      assert.deepEqual({ ...pl.renditionReports[0] }, { uri: '../720p/index.m3u8', lastMSN: 9, lastPart: 2 });
      checked++;
    };
    p.on('part', (part) => {
      if (hint) assert.deepEqual({ msn: part.msn, index: part.index }, hint, 'the hinted part is the one that came');
      check();
      hint = p.nextPart;
    });
    p.beginRun({ zeroMs: T0, session: 1 });
    p.push(init);
    for (let k = 0; k < 3; k++) for (const f of fragments.slice(0, 12)) p.push(shiftFragment(f, init, k * 6)); // whole GOPs, 6 s apart
    p.endRun();
    check();
    assert.equal(checked, 12 * 3 + 1);
  });

  it('marks a new run with DISCONTINUITY, its own EXT-X-MAP, and counts discontinuities out of the window', () => {
    const p = new RenditionPackager('360p', { ...OPTS, windowSegments: 3 });
    const seenFirstSeq: number[] = [];
    let sawOpenRestart = false;
    const check = (): void => {
      for (const lowLatency of [false, true]) {
        const text = renderMediaPlaylist(p, { lowLatency });
        const pl = parseMedia(text);
        if (pl.segments.length === 0) continue;
        seenFirstSeq.push(pl.discontinuitySequenceBase ?? 0);
        // (hls-parser mis-tags a trailing URI-less segment, so the open one is checked on the text)
        const open = p.playlistSegments.at(-1);
        if (lowLatency && open && !open.complete && open.parts.length === 1 && open.discontinuity) {
          assert.match(
            text,
            new RegExp(
              `#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init-${open.run}\\.mp4"\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXT-X-PART:[^\n]+URI="part-${open.msn}\\.0\\.m4s",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT`,
            ),
          );
          sawOpenRestart = true;
        }
        for (const s of pl.segments.filter((x) => x.uri)) {
          const msn = s.mediaSequenceNumber;
          const seg = p.segment(msn);
          assert.ok(seg, `msn ${msn} listed but not retained:\n${text}`);
          assert.equal(s.discontinuitySequence, seg.discontinuitySequence, `msn ${msn}: every session started a discontinuity`);
          assert.equal(s.discontinuity ?? false, seg.discontinuity);
          assert.equal(s.map.uri, `init-${seg.run}.mp4`);
        }
      }
    };
    p.on('segment', check);
    p.on('part', check);
    for (let run = 0; run < 3; run++) runOnce(p, T0 + run * 8_000); // 7 s of media each: no gap
    const text = renderMediaPlaylist(p, { lowLatency: false });
    assert.match(text, /#EXT-X-DISCONTINUITY-SEQUENCE:2\n/);
    assert.ok(seenFirstSeq.includes(1) && seenFirstSeq.includes(2));
    assert.ok(sawOpenRestart);
    // a window spanning a restart
    const q = new RenditionPackager('360p', OPTS);
    runOnce(q, T0);
    runOnce(q, T0 + 8_000, false);
    const pl = parseMedia(renderMediaPlaylist(q, { lowLatency: false }));
    assert.deepEqual(
      pl.segments.map((s) => s.mediaSequenceNumber),
      [1, 2, 3, 4, 5, 6],
    );
    assert.deepEqual(
      pl.segments.map((s) => s.map.uri),
      ['init-0.mp4', 'init-0.mp4', 'init-0.mp4', 'init-4.mp4', 'init-4.mp4', 'init-4.mp4'],
    );
    assert.deepEqual(
      pl.segments.map((s) => s.discontinuity ?? false),
      [false, false, false, true, false, false],
    );
    assert.equal(pl.segments[3]!.programDateTime?.getTime(), T0 + 8_000);
  });

  it('replaces segments beyond CAN-SKIP-UNTIL with EXT-X-SKIP in delta updates', () => {
    const p = new RenditionPackager('360p', { ...OPTS, windowSegments: 10 });
    for (let run = 0; run < 3; run++) runOnce(p, T0 + run * 8_000, run < 2);
    const full = parseMedia(renderMediaPlaylist(p, { lowLatency: true }));
    const deltaText = renderMediaPlaylist(p, { lowLatency: true, skip: true });
    const delta = parseMedia(deltaText);
    assert.equal(delta.version, 9);
    assert.ok(delta.skip > 0, 'something was skipped');
    assert.equal(delta.mediaSequenceBase, full.mediaSequenceBase);
    const complete = full.segments.filter((s) => s.uri);
    const total = full.segments.reduce((n, s) => n + (s.uri ? s.duration : s.parts.reduce((m, x) => m + (x.duration ?? 0), 0)), 0);
    let end = 0;
    const skippable = complete.filter((s) => ((end += s.duration), total - end >= 12 - 1e-3)).length;
    assert.equal(delta.skip, skippable);
    assert.deepEqual(
      delta.segments.map((s) => s.uri),
      full.segments.slice(skippable).map((s) => s.uri),
    );
    assert.equal(delta.segments[0]!.mediaSequenceNumber, full.segments[skippable]!.mediaSequenceNumber);
    assert.ok(delta.segments[0]!.map.uri, 'EXT-X-MAP is repeated after the skip');
    assert.match(deltaText, new RegExp(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skippable}\\n`));
    assert.doesNotMatch(renderMediaPlaylist(p, { lowLatency: true }), /EXT-X-SKIP/);
    assert.doesNotMatch(renderMediaPlaylist(p, { lowLatency: false, skip: true }), /EXT-X-SKIP/);
  });

  it('lists an audio-only variant without RESOLUTION or FRAME-RATE', () => {
    const rung = audioOnlyPlan().rungs[0]!;
    const v = variantFor(rung, {}, 128);
    assert.deepEqual(v, { uri: 'audio/index.m3u8', bandwidth: 140_800, averageBandwidth: 128_000, codecs: 'mp4a.40.2' });
    assert.equal(
      renderMasterPlaylist([v]),
      '#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=140800,AVERAGE-BANDWIDTH=128000,CODECS="mp4a.40.2"\naudio/index.m3u8\n',
    );
  });

  it('renders the multivariant playlist highest bandwidth first', () => {
    const p = new RenditionPackager('360p', OPTS);
    runOnce(p, T0);
    const variants = [
      {
        uri: '360p/index.m3u8',
        bandwidth: p.bandwidth!,
        averageBandwidth: p.averageBandwidth!,
        codecs: p.codecs!,
        width: p.width!,
        height: p.height!,
        frameRate: p.frameRate!,
      },
      {
        uri: '720p/index.m3u8',
        bandwidth: 3_500_000,
        averageBandwidth: 3_000_000,
        codecs: 'avc1.64001f,mp4a.40.2',
        width: 1280,
        height: 720,
        frameRate: 29.97002997,
      },
      {
        uri: '160p/index.m3u8',
        bandwidth: 50_000,
        averageBandwidth: 40_000,
        codecs: 'avc1.42c00c,mp4a.40.2',
        width: 284,
        height: 160,
        frameRate: 15,
      },
    ];
    const text = renderMasterPlaylist(variants);
    const pl = HLS.parse(text) as MasterPlaylist;
    assert.equal(pl.isMasterPlaylist, true);
    assert.equal(pl.independentSegments, true);
    assert.deepEqual(
      pl.variants.map((v) => v.uri),
      ['720p/index.m3u8', '360p/index.m3u8', '160p/index.m3u8'],
    );
    const v360 = pl.variants[1]!;
    assert.equal(v360.bandwidth, p.bandwidth);
    assert.equal(v360.averageBandwidth, p.averageBandwidth);
    assert.equal(v360.codecs, 'avc1.42c01e,mp4a.40.2');
    assert.deepEqual(v360.resolution, { width: 640, height: 360 });
    assert.equal(v360.frameRate, 30);
    assert.match(text, /FRAME-RATE=29\.970\n/);
    assert.match(text, /CODECS="avc1\.64001f,mp4a\.40\.2"/);
  });

  it("says each rung's true size and frame rate: 59.94 on top, 29.970 below, portrait sizes, 25 kept", () => {
    const ladder = [
      { name: '720p', height: 720, videoKbps: 2800 },
      { name: '360p', height: 360, videoKbps: 700 },
    ];
    const master = (width: number, height: number, fps: number) =>
      renderMasterPlaylist(planLadder(ladder, { width, height, fps }, 2).rungs.map((r) => variantFor(r, {}, 128)))
        .split('\n')
        .filter((l) => l.startsWith('#EXT-X-STREAM-INF'))
        .map((l) => /RESOLUTION=(\d+x\d+),FRAME-RATE=([\d.]+)/.exec(l)!.slice(1).join('@'));
    assert.deepEqual(master(1280, 720, 59.94005994), ['1280x720@59.940', '640x360@29.970']);
    assert.deepEqual(master(1280, 720, 29.97), ['1280x720@29.970', '640x360@29.970']);
    assert.deepEqual(master(720, 1280, 25), ['720x1280@25.000', '360x640@25.000']);
    assert.deepEqual(master(1280, 720, 50), ['1280x720@50.000', '640x360@25.000']);
    const measured = variantFor(planLadder(ladder, {}, 2).rungs[0]!, { width: 960, height: 720, codecs: 'avc1.64001f,mp4a.40.2' }, 128);
    assert.deepEqual([measured.width, measured.height, measured.frameRate], [960, 720, 30], 'the encoded size once known');
  });
});

describe('joinLag, keyframeInterval and joinWait', () => {
  /**
   * A live rendition of 0.2 s parts, a keyframe every `gop` parts, 10 parts per segment: `count` parts so far, the
   * last segment open.
   */
  function source(count: number, gop = 5, segmentParts = 10): MediaPlaylistSource {
    const segments: PlaylistSegment[] = [];
    for (let i = 0; i < count; i++) {
      if (i % segmentParts === 0) {
        segments.push({
          msn: i / segmentParts,
          run: 0,
          parts: [],
          durationSec: 0,
          programDateTimeMs: i * 200,
          discontinuity: false,
          complete: true,
        });
      }
      const seg = segments.at(-1)!;
      (seg.parts as PlaylistPart[]).push({ durationSec: 0.2, independent: i % gop === 0 });
      seg.durationSec += 0.2;
      seg.complete = (i + 1) % segmentParts === 0;
    }
    return {
      segmentTargetSec: 2,
      partTargetSec: 0.2,
      longestSegmentSec: 2,
      longestPartSec: 0.2,
      discontinuitySequence: 0,
      playlistSegments: segments,
      nextPart: { msn: Math.floor(count / segmentParts), index: count % segmentParts },
    };
  }
  const round = (x: number | undefined) => (x === undefined ? x : Math.round(x * 1000) / 1000);

  it('is how far PART-HOLD-BACK from the end lies past the independent part a player decodes from', () => {
    // 0.6 s (3 parts) back from the end of 13 parts is the start of part 10, a keyframe (10 % 5): on target.
    assert.equal(round(joinLag(source(13), 3)), 0);
    // One more part and the aim moves into part 11: the player decodes from part 10, one part earlier.
    assert.equal(round(joinLag(source(14), 3)), 0.2);
    // Up to a GOP less a part behind, and around again.
    assert.deepEqual(
      [15, 16, 17, 18].map((n) => round(joinLag(source(n), 3))),
      [0.4, 0.6, 0.8, 0],
    );
  });

  it('follows PART-HOLD-BACK, which is never under two parts (RFC 8216bis §4.4.3.8)', () => {
    assert.equal(round(joinLag(source(12), 2)), 0);
    assert.equal(round(joinLag(source(12), 1)), 0, 'raised to 2');
    assert.equal(round(joinLag(source(14), 4)), 0);
    assert.equal(round(partHoldBack(source(14))), 0.5, 'PART_HOLD_BACK_PARTS.default: 2.5 parts');
    assert.equal(round(joinLag(source(13))), 0.1, 'by default the aim is half a part into the keyframe part');
    assert.equal(round(partHoldBack(source(14), 1)), 0.4);
  });

  it('is measured across segment boundaries, and undefined before the first independent part', () => {
    // Keyframe every 10 parts (at each segment start): 23 parts end 0.6 s into msn 2, aimed at its keyframe.
    assert.equal(round(joinLag(source(23, 10), 3)), 0);
    assert.equal(round(joinLag(source(21, 10), 3)), 1.6, 'the aim is in msn 1, its keyframe 1.6 s before');
    assert.equal(joinLag(source(2), 3), undefined, 'fewer parts than PART-HOLD-BACK');
  });

  it('keyframeInterval: the time between the last two independent parts, once two are listed', () => {
    assert.equal(round(keyframeInterval(source(13))), 1);
    assert.equal(round(keyframeInterval(source(23, 10))), 2);
    assert.equal(round(keyframeInterval(source(8, 3))), 0.6);
    assert.equal(keyframeInterval(source(5)), undefined, 'one keyframe so far');
  });

  it('joinWait: how long until the aim lands on a keyframe, if keyframes keep their pace', () => {
    assert.equal(round(joinWait(source(13), 3)), 0, 'now');
    assert.equal(round(joinWait(source(11), 3)), 0.4, 'the latest keyframe is 0.2 s old: 0.4 s more');
    assert.equal(round(joinWait(source(14), 3)), 0.8, 'just past: the next keyframe (1 s later) plus PART-HOLD-BACK');
    assert.equal(round(joinWait(source(15), 3)), 0.6);
    // Measured in parts: 0.6 s after source(15) is source(18), which is aligned.
    assert.equal(round(joinLag(source(18), 3)), 0);
    assert.equal(round(joinWait(source(27, 10), 3)), 1.2, 'a 2 s GOP can be further off than a second');
    assert.equal(round(joinWait(source(21, 10), 3)), 0.4);
    assert.equal(round(joinWait(source(14), 2)), 0.6, 'PART-HOLD-BACK 0.4 s: the next keyframe, 0.2 s off, plus 0.4 s');
    assert.equal(joinWait(source(5), 3), undefined, 'one keyframe so far: no pace known');
  });

  it('counts a segment listed without parts as one independent part', () => {
    const s = source(13);
    const whole = { ...s.playlistSegments[0]!, parts: [] };
    const old = { ...s, playlistSegments: [whole, { ...s.playlistSegments[1]!, parts: s.playlistSegments[1]!.parts.slice(0, 1) }] };
    // 0.2 s of msn 1, then msn 0 whole (2 s): the aim (0.6 s back) is 0.4 s into msn 0's last 2 s, 1.6 s past its start.
    assert.equal(round(joinLag(old, 3)), 1.6);
  });
});
