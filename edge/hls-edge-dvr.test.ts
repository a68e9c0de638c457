// DVR through the edge, without ffmpeg: a live stream fed the committed fMP4 fixture (40 s, 20 segments) with a
// 6-segment memory window, recorded by the real Recorder to local disk, served by the origin's HLS handler behind a
// real HLS edge. The playlist lists the recorded segments older than the memory window; the edge fetches them (the
// origin reads them back from storage) and caches them as immutable; delta updates skip them.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import HLS from 'hls-parser';
import type { MediaPlaylist } from 'hls-parser/types.js';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { closeServer, listen } from '../lib/http.ts';
import { LocalStorage } from '../lib/storage/storage.ts';
import { createOriginHlsHandler } from '../origin/hls-server.ts';
import { planLadder } from '../origin/ladder.ts';
import { LiveStream } from '../origin/live-stream.ts';
import { RenditionPackager } from '../origin/packager.ts';
import { Recorder } from '../origin/recording/recorder.ts';
import { DEFAULT_WRITE_QUEUE } from '../origin/recording/write-queue.ts';
import { variantFor } from '../origin/playlist.ts';
import { fmp4FixtureFragments, shiftFragment } from '../test/support/fmp4-fixture.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createHlsEdge, type HlsEdge } from './hls-edge.ts';

HLS.setOptions({ strictMode: true });

const { init, fragments } = fmp4FixtureFragments();
const EV = 'dvrEvent0001';
const config = configSchema.parse({ ladder: [{ name: '360p', height: 360, fps: 30, videoKbps: 600 }] });
const logger = createLogger('silent');
const noMetrics = { ffmpegStarted() {}, ffmpegRestarted() {}, part() {}, segment() {} };

let dir: string;
let stream: LiveStream;
let packager: RenditionPackager;
let recorder: Recorder;
let origin: Server;
let edgeServer: Server;
let edge: HlsEdge;
let base: string;
/** Requests the origin received, by path. */
const originHits: string[] = [];
/** Every complete segment's bytes as the packager produced them. */
const produced = new Map<number, Buffer>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'onair-dvr-edge-'));
  stream = new LiveStream(EV, config, logger, noMetrics);
  stream.latencyMode = Promise.resolve('low');
  stream.dvrWindowSec = Promise.resolve(30);
  stream.renditions = planLadder(config.ladder, { width: 640, height: 360, fps: 30 }, 2).rungs;
  packager = new RenditionPackager('360p', { segmentTargetSec: 2, partTargetSec: 0.5, windowSegments: 6 });
  stream.packagers.set('360p', packager);
  packager.on('segment', (s) => produced.set(s.msn, Buffer.from(s.bytes())));
  recorder = new Recorder({
    eventId: EV,
    zeroMs: 0,
    storage: new LocalStorage(dir),
    queue: DEFAULT_WRITE_QUEUE,
    hooks: { begin: async () => true, failed: () => {}, ready: () => {} },
    logger,
    segmentTargetSec: 2,
    variants: () => stream.renditions.map((r) => variantFor(r, packager, 128)),
  });
  recorder.attach(packager);
  // 5 × the 7 s fixture, every 8 s (a 1 s hole each time): segments 0..19, the last one open.
  packager.beginRun({ zeroMs: 0, session: 1 });
  packager.push(init);
  for (let k = 0; k < 5; k++) for (const f of fragments) packager.push(shiftFragment(f, init, k * 8));
  await waitFor('segments stored', () => recorder.storedSegments('360p').length >= 15, 5000);

  const handler = createOriginHlsHandler({ config, streams: (id) => (id === EV ? stream : undefined), dvr: () => recorder });
  origin = createServer((req, res) => {
    originHits.push(req.url ?? '');
    handler(req, res);
  });
  const originUrl = `http://127.0.0.1:${await listen(origin, 0, '127.0.0.1')}`;
  edge = createHlsEdge({ config, logger, registry: createMetricsRegistry(), upstreams: [originUrl] });
  await edge.start();
  edgeServer = createServer((req, res) => edge.handle(req, res));
  base = `http://127.0.0.1:${await listen(edgeServer, 0, '127.0.0.1')}/live/${EV}/360p/`;
});

after(async () => {
  await edge.stop();
  await closeServer(edgeServer, 100);
  await closeServer(origin, 100);
  await recorder.end(2000);
  rmSync(dir, { recursive: true, force: true });
});

async function get(name: string): Promise<{ status: number; body: Buffer; cacheControl: string | null }> {
  const r = await fetch(base + name);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()), cacheControl: r.headers.get('cache-control') };
}

describe('DVR through the edge', () => {
  it('lists recorded segments older than the memory window, within the DVR window', async () => {
    const firstLive = packager.playlistSegments[0]!.msn;
    const r = await get('index.m3u8');
    assert.equal(r.status, 200);
    const pl = HLS.parse(r.body.toString()) as MediaPlaylist;
    const listed = pl.segments.filter((s) => !s.gap);
    assert.ok(pl.mediaSequenceBase! < firstLive, `MEDIA-SEQUENCE ${pl.mediaSequenceBase} before the live window (${firstLive})`);
    const older = listed.filter((s) => s.mediaSequenceNumber < firstLive);
    assert.ok(older.length >= 3, `${older.length} DVR segments`);
    const total = listed.reduce((n, s) => n + (s.duration ?? 0), 0);
    assert.ok(total <= 30 + 1e-6, `listed ${total} s within the 30 s window`);
    // The LL part of the playlist is still there: parts and the preload hint.
    assert.ok(pl.prefetchSegments.length > 0 || /#EXT-X-PRELOAD-HINT/.test(r.body.toString()));
  });

  it('serves an older segment from storage through the edge, cached there as immutable', async () => {
    const firstLive = packager.playlistSegments[0]!.msn;
    const msn = recorder.storedSegments('360p').find((s) => s.msn < firstLive - 1)!.msn;
    assert.equal(packager.segment(msn), undefined, 'the segment is no longer in the origin’s memory');
    const before = originHits.length;
    const a = await get(`seg-${msn}.m4s`);
    assert.equal(a.status, 200);
    assert.ok(a.body.equals(produced.get(msn)!), 'the bytes the packager produced');
    assert.match(a.cacheControl ?? '', /immutable/);
    const b = await get(`seg-${msn}.m4s`);
    assert.ok(b.body.equals(a.body));
    assert.equal(originHits.filter((u) => u.endsWith(`seg-${msn}.m4s`)).length, 1, 'the second request is an edge cache hit');
    assert.equal(originHits.length, before + 1);
    const initRes = await get('init-0.mp4');
    assert.equal(initRes.status, 200);
    // A recorded segment whose object went missing from storage: 404 with a reason; the live window is unaffected.
    const lost = recorder.storedSegments('360p').find((s) => s.msn !== msn && s.msn < firstLive)!.msn;
    rmSync(join(dir, EV, '0', '360p', `seg-${lost}.m4s`));
    const missing = await get(`seg-${lost}.m4s`);
    assert.equal(missing.status, 404);
    assert.ok(
      originHits.some((u) => u.endsWith(`seg-${lost}.m4s`)),
      'asked of the origin, which found no stored object',
    );
    assert.equal((await get(`seg-${firstLive}.m4s`)).status, 200);
  });

  it('delta updates skip the DVR segments: EXT-X-SKIP with the count, the same playlist once merged', async () => {
    const full = (await get('index.m3u8')).body.toString();
    const delta = (await get('index.m3u8?_HLS_skip=YES')).body.toString();
    const m = /#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)/.exec(delta);
    assert.ok(m, delta);
    const pf = HLS.parse(full) as MediaPlaylist;
    const kept = delta.split('\n').filter((l) => /^seg-\d+\.m4s$/.test(l));
    // Skipped + listed = every complete segment of the full playlist, in order.
    const rest = pf.segments.slice(Number(m[1])).filter((s) => s.uri && !s.gap);
    assert.deepEqual(
      rest.map((s) => s.uri),
      kept,
    );
    assert.ok(Number(m[1]) >= 5, `${m[1]} segments skipped`);
    assert.ok(delta.length < full.length - Number(m[1]) * 60, `delta ${delta.length} B, full ${full.length} B`);
  });

  it('DVR window 0 lists the live window only', async () => {
    stream.dvrWindowSec = Promise.resolve(0);
    try {
      // A blocking reload the playlist already satisfies (a URL the edge has not cached yet).
      const r = await fetch(base + 'index.m3u8?_HLS_msn=1');
      const pl = HLS.parse(Buffer.from(await r.arrayBuffer()).toString()) as MediaPlaylist;
      assert.equal(pl.mediaSequenceBase, packager.playlistSegments[0]!.msn);
    } finally {
      stream.dvrWindowSec = Promise.resolve(30);
    }
  });
});
