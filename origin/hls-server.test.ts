// The origin's HLS handler without ffmpeg: packagers fed the committed fMP4 fixture, fragment by fragment, while
// requests wait. Blocking reloads and preload-hinted parts are answered when the part arrives, with whole
// playlists compared as text. (origin/hls-server.ffmpeg.test.ts runs the same handler against a live ffmpeg.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { closeServer, listen } from '../lib/http.ts';
import type { LatencyMode } from '../lib/store/schema.ts';
import { createOriginHlsHandler } from './hls-server.ts';
import { planLadder } from './ladder.ts';
import { LiveStream } from './live-stream.ts';
import { RenditionPackager } from './packager.ts';
import { fmp4FixtureFragments } from '../test/support/fmp4-fixture.ts';
import { waitFor } from '../test/support/wait-for.ts';

const { init, fragments } = fmp4FixtureFragments();
/** The timeline's zero: the epoch, so that msn = floor(t / 2 s). */
const T0 = 0;
const config = configSchema.parse({
  ladder: [
    { name: '360p', height: 360, fps: 30, videoKbps: 600 },
    { name: '180p', height: 180, fps: 30, videoKbps: 200 },
  ],
});
const LL = 'llEvent001';
const PLAIN = 'plainEvent01';
const noMetrics = { ffmpegStarted() {}, ffmpegRestarted() {}, part() {}, segment() {} };

/** A live stream whose packagers the test feeds by hand (no ffmpeg run). */
function stream(eventId: string, mode: LatencyMode): LiveStream {
  const s = new LiveStream(eventId, config, createLogger('silent'), noMetrics);
  s.latencyMode = Promise.resolve(mode);
  s.renditions = planLadder(config.ladder, { width: 640, height: 360, fps: 30 }, config.segmentTargetSec).rungs;
  for (const r of s.renditions) {
    const p = new RenditionPackager(r.name, { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 });
    p.beginRun({ zeroMs: T0, session: 1 });
    p.push(init);
    s.packagers.set(r.name, p);
  }
  return s;
}

/** Pushes the next `n` fixture fragments into every rendition of `s`, in the same tick (as ffmpeg's outputs arrive). */
const fed = new Map<LiveStream, number>();
function feed(s: LiveStream, n: number): void {
  const from = fed.get(s) ?? 0;
  for (const p of s.packagers.values()) for (const f of fragments.slice(from, from + n)) p.push(f);
  fed.set(s, from + n);
}

const streams = new Map<string, LiveStream>();
let server: Server;
let base: string;
let arrivals = 0;

before(async () => {
  streams.set(LL, stream(LL, 'low'));
  streams.set(PLAIN, stream(PLAIN, 'standard'));
  feed(streams.get(LL)!, 6); // segment 0 complete (4 parts), segment 1 open with 2
  feed(streams.get(PLAIN)!, 6);
  const handler = createOriginHlsHandler({ config, streams: (id) => streams.get(id) });
  server = createServer((req, res) => {
    arrivals++;
    handler(req, res);
  });
  base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
});

after(async () => {
  await closeServer(server, 100);
});

async function get(path: string): Promise<{ status: number; type: string | null; text: string; body: Buffer }> {
  const r = await fetch(`${base}/live/${path}`);
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, type: r.headers.get('content-type'), text: body.toString(), body };
}

/** Sends a request that the origin is expected to hold; resolves once the handler is waiting on it. */
async function held(path: string): Promise<{ settled: () => boolean; response: ReturnType<typeof get> }> {
  const before = arrivals;
  let settled = false;
  const response = get(path).finally(() => (settled = true));
  await waitFor(`${path} to reach the origin`, () => arrivals > before);
  // The handler reaches its wait within microtasks of the request's arrival.
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false, `${path} is held`);
  return { settled: () => settled, response };
}

const lines = (...l: string[]): string => l.join('\n') + '\n';
const HEADER = [
  '#EXTM3U',
  '#EXT-X-VERSION:9',
  '#EXT-X-TARGETDURATION:2',
  '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.305,CAN-SKIP-UNTIL=12.000',
  '#EXT-X-PART-INF:PART-TARGET=0.522',
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
];

describe('origin HLS handler, fed by hand', () => {
  // The tests run in order and move the LL stream forward: 6 fragments, then 7, then 8.
  it('answers a playlist at once when no directive asks to wait', async () => {
    const r = await get(`${LL}/360p/index.m3u8`);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/vnd.apple.mpegurl');
    assert.equal(
      r.text,
      lines(
        ...HEADER,
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.2.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../180p/index.m3u8",LAST-MSN=1,LAST-PART=1',
      ),
    );
  });

  it('holds _HLS_msn/_HLS_part until that part exists, then answers with it listed', async () => {
    const req = await held(`${LL}/360p/index.m3u8?_HLS_msn=1&_HLS_part=2`);
    feed(streams.get(LL)!, 1);
    const r = await req.response;
    assert.equal(r.status, 200);
    assert.equal(
      r.text,
      lines(
        ...HEADER,
        '#EXT-X-PART:DURATION=0.500,URI="part-1.2.m4s"',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-1.3.m4s"',
        '#EXT-X-RENDITION-REPORT:URI="../180p/index.m3u8",LAST-MSN=1,LAST-PART=2',
      ),
    );
  });

  it('answers an _HLS_msn that is already complete at once, and a delta update with nothing to skip in full', async () => {
    const plain = await get(`${LL}/180p/index.m3u8`);
    const old = await get(`${LL}/180p/index.m3u8?_HLS_msn=0&_HLS_skip=YES`);
    assert.equal(old.status, 200);
    assert.equal(old.text, plain.text);
    assert.doesNotMatch(old.text, /EXT-X-SKIP/);
  });

  it('holds the preload-hinted part and answers with its bytes when it arrives; refuses a part that is not hinted', async () => {
    const notHinted = await get(`${LL}/360p/part-1.5.m4s`);
    assert.equal(notHinted.status, 404);
    assert.deepEqual(JSON.parse(notHinted.text), { error: { code: 'not_found', message: 'no such part' } });
    const req = await held(`${LL}/360p/part-1.3.m4s`);
    feed(streams.get(LL)!, 1);
    const r = await req.response;
    assert.equal(r.status, 200);
    assert.equal(r.type, 'video/mp4');
    assert.ok(r.body.equals(fragments[7]!), 'the part is the fragment (moof+mdat) as ffmpeg wrote it');
  });

  it('refuses directives too far ahead with 400 and a reason', async () => {
    // The playlist ends at part 1.3 (8 fragments); PART-TARGET 0.522 s allows floor(3 / 0.522) = 5 parts ahead.
    const tooFar = await get(`${LL}/360p/index.m3u8?_HLS_msn=4`);
    assert.equal(tooFar.status, 400);
    assert.deepEqual(JSON.parse(tooFar.text), {
      error: { code: 'msn_too_far', message: '_HLS_msn 4 is more than two segments past the last one (1)' },
    });
    const partTooFar = await get(`${LL}/360p/index.m3u8?_HLS_msn=3&_HLS_part=1`);
    assert.equal(partTooFar.status, 400);
    assert.deepEqual(JSON.parse(partTooFar.text), {
      error: { code: 'part_too_far', message: '_HLS_msn 3 _HLS_part 1 is beyond the advance part limit (5 parts past 1.3)' },
    });
    const partWithoutMsn = await get(`${LL}/360p/index.m3u8?_HLS_part=1`);
    assert.equal(partWithoutMsn.status, 400);
  });

  it("serves the multivariant playlist from the packagers' figures", async () => {
    const p = streams.get(LL)!.packagers.get('360p')!;
    const q = streams.get(LL)!.packagers.get('180p')!;
    assert.equal(p.bandwidth, q.bandwidth, 'both renditions were fed the same bytes');
    const r = await get(`${LL}/master.m3u8`);
    assert.equal(r.status, 200);
    const inf = `#EXT-X-STREAM-INF:BANDWIDTH=${p.bandwidth},AVERAGE-BANDWIDTH=${p.averageBandwidth},CODECS="avc1.42c01e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=30.000`;
    assert.equal(r.text, lines('#EXTM3U', '#EXT-X-INDEPENDENT-SEGMENTS', inf, '360p/index.m3u8', inf, '180p/index.m3u8'));
  });

  it('serves a standard-latency event as plain HLS: directives ignored, no parts', async () => {
    const r = await get(`${PLAIN}/360p/index.m3u8?_HLS_msn=3&_HLS_part=0&_HLS_skip=YES`);
    assert.equal(r.status, 200);
    assert.equal(
      r.text,
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
    const part = await get(`${PLAIN}/360p/part-0.0.m4s`);
    assert.equal(part.status, 404);
    assert.equal(JSON.parse(part.text).error.message, 'this event is served as plain HLS: no parts');
    const seg = await get(`${PLAIN}/360p/seg-0.m4s`);
    assert.equal(seg.status, 200);
    assert.ok(seg.body.equals(Buffer.concat(fragments.slice(0, 4))));
    const initSeg = await get(`${PLAIN}/360p/init-0.mp4`);
    assert.ok(initSeg.body.equals(init));
  });

  it('answers 404 for an event that is not live, an unknown rendition or object, and 405 for other methods', async () => {
    assert.equal((await get('otherEvent01/360p/index.m3u8')).status, 404);
    assert.equal((await get(`${LL}/1080p/index.m3u8`)).status, 404);
    assert.equal((await get(`${LL}/360p/seg-99.m4s`)).status, 404);
    assert.equal((await get(`${LL}/360p/init-7.mp4`)).status, 404);
    const post = await fetch(`${base}/live/${LL}/360p/index.m3u8`, { method: 'POST' });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  });
});
