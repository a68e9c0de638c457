// Whole playlists compared as text (as gohlslib's muxer tests do): the committed fMP4 fixture (14 fragments of
// 0.5 s, a keyframe every 4th; the first lasts 0.521 s, hence PART-TARGET 0.522) fed to a packager, rendered.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RenditionPackager, type PackagerOptions } from './packager.ts';
import { renderMasterPlaylist, renderMediaPlaylist } from './playlist.ts';
import { fmp4FixtureFragments, shiftFragment } from '../test/support/fmp4-fixture.ts';
import HLS from 'hls-parser';

const { init, fragments } = fmp4FixtureFragments();
/** The timeline's zero: the epoch, so that msns are small (msn = floor(zero / target) + floor(t / target)). */
const T0 = 0;

/**
 * A packager fed `runs`: each is a publish session (1, 2, ...) starting `atMs` after the timeline's zero, given
 * the init and its first `parts` fragments, moved there on the timeline.
 */
function packaged(runs: { atMs: number; parts: number }[], opts: Partial<PackagerOptions> = {}): RenditionPackager {
  const p = new RenditionPackager('360p', { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6, ...opts });
  runs.forEach((run, i) => {
    p.beginRun({ zeroMs: T0, session: i + 1 });
    p.push(init);
    for (const f of fragments.slice(0, run.parts)) p.push(shiftFragment(f, init, (run.atMs - T0) / 1000));
  });
  return p;
}

/** The expected text: one line per array item, each ending with a newline. */
const lines = (...l: string[]): string => l.join('\n') + '\n';

const LL_HEADER = [
  '#EXTM3U',
  '#EXT-X-VERSION:9',
  '#EXT-X-TARGETDURATION:2',
  '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.305,CAN-SKIP-UNTIL=12.000',
  '#EXT-X-PART-INF:PART-TARGET=0.522',
];

describe('playlists as text', () => {
  it('a Low-Latency playlist mid-segment: parts, one preload hint, a rendition report', () => {
    const p = packaged([{ atMs: T0, parts: 6 }]);
    const text = renderMediaPlaylist(p, { lowLatency: true, renditionReports: [{ uri: '../180p/index.m3u8', lastMsn: 1, lastPart: 1 }] });
    assert.equal(
      text,
      lines(
        ...LL_HEADER,
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-DISCONTINUITY-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="init-0.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z',
        '#EXT-X-PART:DURATION=0.521,URI="part-0.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.500,URI="part-0.1.m4s"',
        '#EXT-X-PART:DURATION=0.500,URI="part-0.2.m4s"',
        '#EXT-X-PART:DURATION=0.500,URI="part-0.3.m4s"',
        '#EXTINF:2.021,',
        'seg-0.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:02.021Z',
        '#EXT-X-PART:DURATION=0.500,URI="part-1.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.500,URI="part-1.1.m4s"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.2.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../180p/index.m3u8",LAST-MSN=1,LAST-PART=1',
      ),
    );
  });

  it('the same moment as plain HLS: complete segments only, no LL tags', () => {
    const p = packaged([{ atMs: T0, parts: 6 }]);
    assert.equal(
      renderMediaPlaylist(p, { lowLatency: false }),
      lines(
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-DISCONTINUITY-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="init-0.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z',
        '#EXTINF:2.021,',
        'seg-0.m4s',
      ),
    );
  });

  it("hints the next segment's first part when a keyframe is due", () => {
    const p = packaged([{ atMs: T0, parts: 4 }]);
    assert.match(
      renderMediaPlaylist(p, { lowLatency: true }),
      /#EXT-X-PART:DURATION=0\.500,URI="part-0\.3\.m4s"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1\.0\.m4s"\n$/,
    );
  });

  it("a publisher reconnect: the old session's last segment closes, GAPs to the new session's msn, DISCONTINUITY, its EXT-X-MAP", () => {
    const p = packaged([
      { atMs: T0, parts: 14 },
      { atMs: T0 + 12_000, parts: 3 },
    ]);
    assert.equal(
      renderMediaPlaylist(p, { lowLatency: true }),
      lines(
        ...LL_HEADER,
        '#EXT-X-MEDIA-SEQUENCE:0',
        '#EXT-X-DISCONTINUITY-SEQUENCE:0',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-MAP:URI="init-0.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z',
        '#EXTINF:2.021,',
        'seg-0.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:02.021Z',
        '#EXTINF:2.000,',
        'seg-1.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:04.021Z',
        '#EXTINF:2.000,',
        'seg-2.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:06.021Z',
        '#EXTINF:1.000,',
        'seg-3.m4s',
        '#EXTINF:2.000,',
        '#EXT-X-GAP',
        'seg-4.m4s',
        '#EXTINF:2.000,',
        '#EXT-X-GAP',
        'seg-5.m4s',
        '#EXT-X-DISCONTINUITY',
        '#EXT-X-MAP:URI="init-6.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:12.000Z',
        '#EXT-X-PART:DURATION=0.521,URI="part-6.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.500,URI="part-6.1.m4s"',
        '#EXT-X-PART:DURATION=0.500,URI="part-6.2.m4s"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-6.3.m4s"',
      ),
    );
  });

  it('GAP entries count among the three segments that may carry parts (RFC 8216bis 4.4.4.9, as players count)', () => {
    // The old session ends on a short segment, one GAP, then a new session's first part: seg-2 starts within three
    // target durations of the end but is the fourth listed segment, so its parts are not listed.
    const p = packaged([
      { atMs: T0, parts: 14 },
      { atMs: T0 + 10_000, parts: 1 },
    ]);
    const text = renderMediaPlaylist(p, { lowLatency: true });
    assert.ok(text.includes('#EXTINF:2.000,\n#EXT-X-GAP\nseg-4.m4s\n'), text);
    assert.ok(text.includes('URI="part-3.0.m4s"') && !text.includes('URI="part-2.'), text);
    HLS.setOptions({ strictMode: true, silent: true });
    assert.doesNotThrow(() => HLS.parse(text));
  });

  it('a reconnect after longer than the window: the old session leaves the playlist at once', () => {
    const p = packaged([
      { atMs: T0, parts: 14 },
      { atMs: T0 + 60_000, parts: 3 },
    ]);
    const text = renderMediaPlaylist(p, { lowLatency: true });
    assert.ok(text.includes('#EXT-X-MEDIA-SEQUENCE:30\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n'), text);
    assert.ok(!text.includes('#EXT-X-GAP') && !text.includes('seg-3.m4s'), text);
    assert.ok(p.segment(3)?.complete, 'the old segments stay downloadable for a while');
  });

  it('a delta update (_HLS_skip=YES): EXT-X-SKIP counts GAPs too, EXT-X-MAP repeated after it', () => {
    const runs = [0, 1, 2].map((k) => ({ atMs: T0 + k * 10_000, parts: 14 }));
    const p = packaged([...runs, { atMs: T0 + 30_000, parts: 2 }], { windowSegments: 16 });
    const full = renderMediaPlaylist(p, { lowLatency: true });
    const delta = renderMediaPlaylist(p, { lowLatency: true, skip: true });
    const tail = [
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:12.021Z',
      '#EXTINF:2.000,',
      'seg-6.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:14.021Z',
      '#EXTINF:2.000,',
      'seg-7.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:16.021Z',
      '#EXTINF:1.000,',
      'seg-8.m4s',
      '#EXTINF:2.000,',
      '#EXT-X-GAP',
      'seg-9.m4s',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="init-10.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:20.000Z',
      '#EXTINF:2.021,',
      'seg-10.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:22.021Z',
      '#EXTINF:2.000,',
      'seg-11.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:24.021Z',
      '#EXTINF:2.000,',
      'seg-12.m4s',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:26.021Z',
      '#EXT-X-PART:DURATION=0.500,URI="part-13.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.500,URI="part-13.1.m4s"',
      '#EXTINF:1.000,',
      'seg-13.m4s',
      '#EXTINF:2.000,',
      '#EXT-X-GAP',
      'seg-14.m4s',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-MAP:URI="init-15.mp4"',
      '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:30.000Z',
      '#EXT-X-PART:DURATION=0.521,URI="part-15.0.m4s",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.500,URI="part-15.1.m4s"',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-15.2.m4s"',
    ];
    const head = [...LL_HEADER, '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-DISCONTINUITY-SEQUENCE:0', '#EXT-X-INDEPENDENT-SEGMENTS'];
    assert.equal(
      full,
      lines(
        ...head,
        '#EXT-X-MAP:URI="init-0.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z',
        '#EXTINF:2.021,',
        'seg-0.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:02.021Z',
        '#EXTINF:2.000,',
        'seg-1.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:04.021Z',
        '#EXTINF:2.000,',
        'seg-2.m4s',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:06.021Z',
        '#EXTINF:1.000,',
        'seg-3.m4s',
        '#EXTINF:2.000,',
        '#EXT-X-GAP',
        'seg-4.m4s',
        '#EXT-X-DISCONTINUITY',
        '#EXT-X-MAP:URI="init-5.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.000Z',
        '#EXTINF:2.021,',
        'seg-5.m4s',
        ...tail,
      ),
    );
    // seg-0..9 (GAPs seg-4 and seg-9 included, 2 s each) start 12 s or more before the end (CAN-SKIP-UNTIL).
    const resume = tail.indexOf('#EXT-X-MAP:URI="init-10.mp4"') - 1; // its DISCONTINUITY
    assert.equal(delta, lines(...head, '#EXT-X-SKIP:SKIPPED-SEGMENTS=10', ...tail.slice(resume)));
  });

  it("the multivariant playlist from the packagers' measured figures, highest bandwidth first", () => {
    const p = packaged([{ atMs: T0, parts: 14 }]);
    p.endRun();
    const v360 = {
      uri: '360p/index.m3u8',
      bandwidth: p.bandwidth!,
      averageBandwidth: p.averageBandwidth!,
      codecs: p.codecs!,
      width: p.width!,
      height: p.height!,
      frameRate: p.frameRate!,
    };
    const v720 = {
      uri: '720p/index.m3u8',
      bandwidth: 3_300_000.4,
      averageBandwidth: 2_999_999.6,
      codecs: 'avc1.64001f,mp4a.40.2',
      width: 1280,
      height: 720,
      frameRate: 30000 / 1001,
    };
    assert.equal(
      renderMasterPlaylist([v360, v720]),
      lines(
        '#EXTM3U',
        '#EXT-X-INDEPENDENT-SEGMENTS',
        '#EXT-X-STREAM-INF:BANDWIDTH=3300000,AVERAGE-BANDWIDTH=3000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970',
        '720p/index.m3u8',
        `#EXT-X-STREAM-INF:BANDWIDTH=${p.bandwidth},AVERAGE-BANDWIDTH=${p.averageBandwidth},CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000`,
        '360p/index.m3u8',
      ),
    );
  });
});
