// Tests of the HLS edge in cluster mode (placements): real loopback HTTP servers play an event's origin replicas,
// serving canned playlists and media whose bodies name the replica, so each answer shows where it came from.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, Agent, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createHlsEdge } from './hls-edge.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStorage, type Storage } from '../lib/storage/storage.ts';
import type { RecordingManifest } from '../origin/recording/manifest.ts';
import { replayHandler } from '../origin/recording/replay.ts';

/** A canned LL-HLS media playlist whose newest part is `lastPart` of segment `lastMsn` (earlier segments complete). */
function llPlaylist(lastMsn: number, lastPart: number, init = 'init-0.mp4'): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-TARGETDURATION:1', '#EXT-X-PART-INF:PART-TARGET=0.25'];
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${Math.max(0, lastMsn - 3)}`, `#EXT-X-MAP:URI="${init}"`);
  for (let m = Math.max(0, lastMsn - 3); m < lastMsn; m++) {
    for (let i = 0; i < 4; i++) lines.push(`#EXT-X-PART:DURATION=0.25,URI="part-${m}.${i}.m4s"`);
    lines.push('#EXTINF:1.0,', `seg-${m}.m4s`);
  }
  for (let i = 0; i <= lastPart; i++) lines.push(`#EXT-X-PART:DURATION=0.25,URI="part-${lastMsn}.${i}.m4s"`);
  return lines.join('\n') + '\n';
}

/** One origin replica: answers media with `<name> <path>`, playlists at its position; lagging paths answer 404. */
class Replica {
  /** Requests per path (with query), health probes left out. */
  readonly counts = new Map<string, number>();
  /** Paths (without query) this replica does not have yet. */
  readonly missing = new Set<string>();
  /** Paths (without query) it holds without answering until it is killed. */
  readonly hang = new Set<string>();
  /** Paths (without query) whose answer it cuts mid-body: head and half the bytes, then a reset. */
  readonly truncate = new Set<string>();
  /** Where its playlists end. */
  position: [number, number] = [10, 3];
  url = '';
  private readonly server: Server;
  private closed = false;

  constructor(readonly name: string) {
    this.server = createServer((req, res) => this.serve(req.url ?? '/', res));
  }

  count(path: string): number {
    return this.counts.get(path) ?? 0;
  }

  /** Requests for anything but /healthz. */
  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  private serve(url: string, res: ServerResponse): void {
    if (url === '/healthz') return void res.end('ok');
    this.counts.set(url, this.count(url) + 1);
    const path = url.split('?')[0]!;
    if (this.hang.has(path)) return;
    if (this.missing.has(path)) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{}}');
    if (path.endsWith('/master.m3u8')) return void res.end('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n360p/index.m3u8\n');
    if (path.endsWith('/index.m3u8')) return void res.end(llPlaylist(...this.position));
    const body = Buffer.from(`${this.name} ${path}`);
    if (this.truncate.has(path)) {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Dies: every connection is cut (held requests included) and nothing is accepted any more. */
  async kill(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
    await closed;
  }
}

/** A tiny in-memory placement source: each `set` is a new epoch. */
class MemoryPlacements implements PlacementSource {
  private readonly map = new Map<string, Placement>();
  private epoch = 0;
  lookups = 0;

  set(eventId: string, origins: Replica[]): void {
    this.map.set(eventId, {
      eventId,
      epoch: ++this.epoch,
      ingest: 'ingest-1',
      origins: origins.map((r) => ({ id: r.name, url: r.url })),
      timelineZeroMs: 0,
      session: 1,
      updatedAtMs: Date.now(),
    });
  }

  async get(eventId: string): Promise<Placement | undefined> {
    this.lookups++;
    return this.map.get(eventId);
  }
}

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  agent.destroy();
});

function get(port: number, path: string): Promise<Res> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

async function metric(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return Number.NaN;
  let sum = 0;
  for (const v of (await m.get()).values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) sum += v.value;
  }
  return sum;
}

async function replicas(...names: string[]): Promise<Replica[]> {
  const out: Replica[] = [];
  for (const n of names) {
    const r = await new Replica(n).start();
    cleanups.push(() => r.kill());
    out.push(r);
  }
  return out;
}

async function startEdge(placements: PlacementSource, recordings?: Storage): Promise<{ port: number; registry: Registry }> {
  const registry = createMetricsRegistry();
  const edge = createHlsEdge({
    config: loadConfig({}, { segmentTargetSec: 1, edgeUpstreamTimeoutMs: 2_000 }),
    logger: createLogger('silent'),
    registry,
    placements,
    ...(recordings ? { replay: replayHandler(recordings, createLogger('silent')) } : {}),
  });
  await edge.start();
  const server = createServer((req, res) => edge.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    await edge.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, registry };
}

test('events spread over different origins are each served by their own', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-one', [a!]);
  placements.set('event-two', [b!]);
  const { port } = await startEdge(placements);
  for (const [ev, r, other] of [
    ['event-one', a!, b!],
    ['event-two', b!, a!],
  ] as const) {
    const seg = await get(port, `/live/${ev}/360p/seg-9.m4s`);
    assert.equal(seg.status, 200);
    assert.equal(seg.body, `${r.name} /live/${ev}/360p/seg-9.m4s`);
    assert.equal((await get(port, `/live/${ev}/master.m3u8`)).status, 200);
    assert.equal((await get(port, `/live/${ev}/360p/index.m3u8`)).status, 200);
    for (const path of other.counts.keys()) assert.ok(!path.startsWith(`/live/${ev}/`), `${other.name} was asked for ${path}`);
  }
});

test('no placement: 404 not_live without asking any origin', async () => {
  const [a] = await replicas('a');
  const placements = new MemoryPlacements();
  placements.set('event-live', [a!]);
  const { port } = await startEdge(placements);
  for (const path of ['/live/event-gone/master.m3u8', '/live/event-gone/360p/index.m3u8', '/live/event-gone/360p/part-1.0.m4s']) {
    const r = await get(port, path);
    assert.equal(r.status, 404, path);
    assert.equal(JSON.parse(r.body).error.code, 'not_live', path);
    assert.equal(r.headers['cache-control'], 'max-age=1');
  }
  assert.equal(a!.total(), 0, 'no origin was asked');
  assert.equal((await get(port, '/live/event-live/360p/seg-1.m4s')).status, 200, 'a live event still is served');
});

test('no placement, a recording in the shared storage: the edge replays it as VOD, and its clips (a live event is still served live)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'onair-edge-rec-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const storage = new LocalStorage(dir);
  const zero = 1_764_000_000_000;
  const manifest: RecordingManifest = {
    version: 1,
    eventId: 'event-gone',
    zeroMs: zero,
    startedAtMs: zero,
    endedAtMs: zero + 4000,
    segmentTargetSec: 1,
    renditions: [
      {
        name: '360p',
        variant: {
          uri: '360p/index.m3u8',
          bandwidth: 800_000,
          averageBandwidth: 700_000,
          codecs: 'avc1.64001e',
          width: 640,
          height: 360,
          frameRate: 30,
        },
        segments: [7, 8].map((msn) => ({
          msn,
          run: 7,
          durationSec: 1,
          programDateTimeMs: zero + msn * 1000,
          discontinuitySequence: 0,
          bytes: 9,
        })),
      },
    ],
  };
  await storage.put(`event-gone/${zero}/manifest.json`, Buffer.from(JSON.stringify(manifest)));
  await storage.put('event-gone/latest.json', Buffer.from(JSON.stringify({ zeroMs: zero })));
  await storage.put(`event-gone/${zero}/360p/init-7.mp4`, Buffer.from('init-7...'));
  await storage.put(`event-gone/${zero}/360p/seg-8.m4s`, Buffer.from('segment 8'));
  const [a] = await replicas('a');
  const placements = new MemoryPlacements();
  placements.set('event-live', [a!]);
  const { port } = await startEdge(placements, storage);
  const master = await get(port, '/live/event-gone/master.m3u8');
  assert.equal(master.status, 200);
  assert.match(master.body, /RESOLUTION=640x360[^\n]*\n360p\/index.m3u8/);
  const media = await get(port, '/live/event-gone/360p/index.m3u8');
  assert.match(media.body, /#EXT-X-PLAYLIST-TYPE:VOD/);
  assert.match(media.body, /seg-7.m4s\n#EXTINF:1.000,\nseg-8.m4s\n#EXT-X-ENDLIST\n$/);
  assert.equal((await get(port, '/live/event-gone/360p/seg-8.m4s')).body, 'segment 8');
  assert.equal((await get(port, '/live/event-gone/360p/seg-9.m4s')).status, 404, 'not in the recording');
  assert.equal((await get(port, '/live/event-gone/360p/seg-7.m4s')).status, 404, 'listed but missing from storage');
  assert.equal((await get(port, '/live/event-none/master.m3u8')).status, 404, 'no recording');
  // A clip (origin/recording/clip.ts) is answered from the recordings too, even when its id is a live event's.
  const clip = { ...manifest, renditions: manifest.renditions.map((r) => ({ ...r, segments: r.segments.filter((x) => x.msn === 8) })) };
  await storage.put('clips/event-live.json', Buffer.from(JSON.stringify(clip)));
  assert.match((await get(port, '/clips/event-live/master.m3u8')).body, /360p\/index.m3u8/);
  const clipMedia = await get(port, '/clips/event-live/360p/index.m3u8');
  assert.match(
    clipMedia.body,
    /#EXT-X-MAP:URI="init-7.mp4"\n#EXT-X-PROGRAM-DATE-TIME:[^\n]*\n#EXTINF:1.000,\nseg-8.m4s\n#EXT-X-ENDLIST\n$/,
  );
  assert.equal((await get(port, '/clips/event-live/360p/seg-8.m4s')).body, 'segment 8', "the recording's object");
  assert.equal((await get(port, '/clips/event-live/360p/seg-7.m4s')).status, 404, 'not in the clip');
  assert.equal((await get(port, '/clips/no-such-clip/master.m3u8')).status, 404, 'no such clip');
  assert.equal(a!.total(), 0, 'no origin was asked');
  assert.equal((await get(port, '/live/event-live/360p/seg-1.m4s')).status, 200, 'a live event still is served');
});

test('a 404 from a lagging replica falls through to one that has the object; the msn then sticks to it', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-lag', [a!, b!]);
  const { port, registry } = await startEdge(placements);
  const L = '/live/event-lag/360p';

  // A playlist the primary does not have yet comes from the other replica; the init follows that replica.
  a!.missing.add(`${L}/index.m3u8`);
  const pl = await get(port, `${L}/index.m3u8`);
  assert.equal(pl.status, 200);
  assert.equal(b!.count(`${L}/index.m3u8`), 1);
  assert.equal((await get(port, `${L}/init-0.mp4`)).body, `b ${L}/init-0.mp4`);
  assert.equal(a!.count(`${L}/init-0.mp4`), 0, 'the init is asked of the replica that served the playlist first');
  a!.missing.clear();

  // Parts of msn 11 start on b (the playlist's replica); b lags on part 11.2, a has it; 11.3 then stays on a.
  assert.equal((await get(port, `${L}/part-11.0.m4s`)).body, `b ${L}/part-11.0.m4s`);
  b!.missing.add(`${L}/part-11.2.m4s`);
  const lagged = await get(port, `${L}/part-11.2.m4s`);
  assert.equal(lagged.status, 200);
  assert.equal(lagged.body, `a ${L}/part-11.2.m4s`);
  assert.equal((await get(port, `${L}/part-11.3.m4s`)).body, `a ${L}/part-11.3.m4s`);
  assert.equal(b!.count(`${L}/part-11.3.m4s`), 0, 'the rest of the msn comes from the replica that had it');
  assert.equal(await metric(registry, 'onair_edge_replica_failovers_total', { kind: 'part' }), 1);

  // An object no replica has is a (briefly cached) 404, after asking each once.
  a!.missing.add(`${L}/seg-99.m4s`);
  b!.missing.add(`${L}/seg-99.m4s`);
  for (let i = 0; i < 2; i++) assert.equal((await get(port, `${L}/seg-99.m4s`)).status, 404);
  assert.equal(a!.count(`${L}/seg-99.m4s`) + b!.count(`${L}/seg-99.m4s`), 2);
  const text = await registry.metrics();
  assert.ok(!text.includes(a!.url) && !text.includes(b!.url), 'no origin URL in the metrics');
});

test('the sticky replica dies mid-segment: the held part and the next come from the other, without an error status', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-kill', [a!, b!]);
  const { port, registry } = await startEdge(placements);
  const L = '/live/event-kill/360p';
  assert.equal((await get(port, `${L}/part-20.0.m4s`)).body, `a ${L}/part-20.0.m4s`);
  // Part 20.1 is the preload hint: a holds it, and dies while holding it.
  a!.hang.add(`${L}/part-20.1.m4s`);
  const held = get(port, `${L}/part-20.1.m4s`);
  await waitFor('the held part to reach the sticky replica', () => a!.count(`${L}/part-20.1.m4s`) === 1);
  await a!.kill();
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.body, `b ${L}/part-20.1.m4s`);
  const next = await get(port, `${L}/part-20.2.m4s`);
  assert.equal(next.status, 200);
  assert.equal(next.body, `b ${L}/part-20.2.m4s`);
  assert.equal((await get(port, `${L}/seg-20.m4s`)).body, `b ${L}/seg-20.m4s`);
  assert.equal((await get(port, `${L}/index.m3u8`)).status, 200);
  const errors =
    (await metric(registry, 'onair_edge_requests_total')) - (await metric(registry, 'onair_edge_requests_total', { status: '200' }));
  assert.equal(errors, 0, 'every answer was a 200');
  assert.ok((await metric(registry, 'onair_edge_replica_failovers_total', { kind: 'part' })) >= 1);
});

test('all parts of one msn come from the replica that served the first, even when the playlist moves', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-msn', [a!, b!]);
  const { port } = await startEdge(placements);
  const L = '/live/event-msn/360p';
  assert.equal((await get(port, `${L}/part-70.0.m4s`)).body, `a ${L}/part-70.0.m4s`);
  a!.missing.add(`${L}/index.m3u8`);
  assert.equal((await get(port, `${L}/index.m3u8`)).status, 200);
  assert.equal(b!.count(`${L}/index.m3u8`), 1, 'the playlist came from b');
  a!.missing.clear();
  assert.equal((await get(port, `${L}/part-70.1.m4s`)).body, `a ${L}/part-70.1.m4s`, 'msn 70 stays on a');
  assert.equal((await get(port, `${L}/seg-70.m4s`)).body, `a ${L}/seg-70.m4s`, 'its segment too');
  assert.equal((await get(port, `${L}/part-71.0.m4s`)).body, `b ${L}/part-71.0.m4s`, 'msn 71 starts on the playlist replica');
});

test('a replica that fails mid-body is replaced within the request: the viewer gets the whole object from another', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-cut', [a!, b!]);
  const { port, registry } = await startEdge(placements);
  const path = '/live/event-cut/360p/seg-80.m4s';
  a!.truncate.add(path);
  const r = await get(port, path);
  assert.equal(r.status, 200);
  assert.equal(r.body, `b ${path}`);
  assert.equal(a!.count(path), 1);
  assert.equal(await metric(registry, 'onair_edge_replica_failovers_total', { kind: 'segment' }), 1);
  assert.equal(await metric(registry, 'onair_edge_upstream_requests_total', { upstream: 'origin-0' }), 1, 'one outcome per request');
  assert.equal(await metric(registry, 'onair_edge_upstream_requests_total', { upstream: 'origin-0', status: 'error' }), 1);
  assert.equal(await metric(registry, 'onair_edge_upstream_requests_total', { upstream: 'origin-1', status: '200' }), 1);
});

test('100 concurrent requests with placements cause one upstream request, to the sticky replica', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-many', [a!, b!]);
  const { port, registry } = await startEdge(placements);
  const path = '/live/event-many/360p/seg-30.m4s';
  a!.hang.add(path); // held until every request has reached the edge; then a dies and b answers them all
  const all = Array.from({ length: 100 }, () => get(port, path));
  await waitFor(
    'all 100 requests to reach the edge',
    async () =>
      (await metric(registry, 'onair_edge_cache_events_total', { result: 'miss' })) +
        (await metric(registry, 'onair_edge_cache_events_total', { result: 'coalesced' })) ===
      100,
    30_000,
    10,
  );
  assert.equal(a!.count(path), 1);
  await a!.kill();
  for (const r of await Promise.all(all)) {
    assert.equal(r.status, 200);
    assert.equal(r.body, `b ${path}`);
  }
  assert.equal(b!.count(path), 1);
  assert.equal(await metric(registry, 'onair_edge_cache_events_total', { result: 'miss' }), 1);
  // Stored: a later request is a hit.
  assert.equal((await get(port, path)).headers['cache-status'], 'onair-edge; hit');
  assert.equal(b!.count(path), 1);
});

test('a placement change (a new epoch on other origins) is followed', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-move', [a!]);
  const { port } = await startEdge(placements);
  const L = '/live/event-move/360p';
  assert.equal((await get(port, `${L}/part-40.0.m4s`)).body, `a ${L}/part-40.0.m4s`);
  assert.equal((await get(port, `${L}/index.m3u8`)).status, 200);
  placements.set('event-move', [b!]);
  assert.equal((await get(port, `${L}/part-40.1.m4s`)).body, `b ${L}/part-40.1.m4s`, 'even mid-msn');
  await waitFor('the playlist to come from the new origin', async () => {
    await get(port, `${L}/index.m3u8`);
    return b!.count(`${L}/index.m3u8`) === 1;
  });
  assert.equal(a!.count(`${L}/part-40.1.m4s`), 0);
});

test('a blocking reload moved off a dead replica is never answered with a playlist behind the one asked for', async () => {
  const [a, b, c] = await replicas('a', 'b', 'c');
  const placements = new MemoryPlacements();
  placements.set('event-block', [a!, b!, c!]);
  const { port } = await startEdge(placements);
  const L = '/live/event-block/360p';
  a!.position = [50, 0];
  const first = await get(port, `${L}/index.m3u8`);
  assert.match(first.body, /part-50\.0\.m4s/);
  // The player blocks on 50.1; a holds it and dies. b lags (still at 49.3); c is at 50.1.
  a!.hang.add(`${L}/index.m3u8`);
  b!.position = [49, 3];
  c!.position = [50, 1];
  const blocked = get(port, `${L}/index.m3u8?_HLS_msn=50&_HLS_part=1`);
  await waitFor('the blocking reload to reach the sticky replica', () => a!.count(`${L}/index.m3u8?_HLS_msn=50&_HLS_part=1`) === 1);
  await a!.kill();
  const r = await blocked;
  assert.equal(r.status, 200);
  assert.match(r.body, /part-50\.1\.m4s/);
  assert.equal(b!.count(`${L}/index.m3u8?_HLS_msn=50&_HLS_part=1`), 1, 'b was asked and its answer passed over');
  // A plain reload is not answered with b's older playlist either: c, which served the last one, is asked first.
  await new Promise((res) => setTimeout(res, 1_100)); // the 1 s playlist TTL
  const plain = await get(port, `${L}/index.m3u8`);
  assert.match(plain.body, /part-50\.1\.m4s/);
});

test('a plain reload only a lagging replica answers is passed on unstored; the newer replica wins again', async () => {
  const [a, b] = await replicas('a', 'b');
  const placements = new MemoryPlacements();
  placements.set('event-behind', [a!, b!]);
  const { port } = await startEdge(placements);
  const L = '/live/event-behind/360p';
  a!.position = [60, 2];
  b!.position = [60, 0];
  assert.match((await get(port, `${L}/index.m3u8`)).body, /part-60\.2\.m4s/);
  await new Promise((res) => setTimeout(res, 1_100)); // the 1 s playlist TTL
  a!.position = [60, 3];
  // a (sticky) now misses it; b answers, but behind the copy served before. No replica has a newer one, so the edge
  // passes b's on rather than failing, unstored; once a answers again its newer playlist wins.
  a!.missing.add(`${L}/index.m3u8`);
  const lag = await get(port, `${L}/index.m3u8`);
  assert.equal(lag.status, 200);
  assert.equal(lag.headers['cache-control'], 'no-cache');
  a!.missing.clear();
  assert.match((await get(port, `${L}/index.m3u8`)).body, /part-60\.3\.m4s/, 'not stored: the next request asks again');
});
