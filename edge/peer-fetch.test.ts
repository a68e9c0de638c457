// Tests of one edge machine's workers as one cache: the owner hash, and 3 edges in this process wired as peers
// over real Unix sockets in a temp dir, in front of one real loopback origin that counts requests.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { createHlsEdge, type HlsEdge } from './hls-edge.ts';
import { ownerOf } from './peer-fetch.ts';
import { makeTempDir } from '../test/support/temp-dir.ts';

const SEG = Buffer.alloc(100_000, 7);

test('ownerOf: stable, within 1..count, and spreads keys over the workers', () => {
  const count = 4;
  const per = new Array<number>(count + 1).fill(0);
  for (let i = 0; i < 4000; i++) {
    const key = `/live/evt${i % 50}/720p/seg-${i}.m4s`;
    const o = ownerOf(key, count);
    assert.ok(o >= 1 && o <= count);
    assert.equal(ownerOf(key, count), o, 'same owner for the same key');
    per[o]!++;
  }
  // Each worker owns roughly a quarter (1000): well within 20 %.
  for (let o = 1; o <= count; o++) assert.ok(per[o]! > 800 && per[o]! < 1200, `worker ${o} owns ${per[o]}`);
  assert.equal(ownerOf('/live/a/master.m3u8', 1), 1);
  // Fixed values: the hash must not change between versions running side by side on one machine.
  assert.equal(ownerOf('/live/evt/720p/seg-1.m4s', 3), 2);
  assert.equal(ownerOf('/live/evt/720p/seg-2.m4s', 8), 8);
  assert.equal(ownerOf('/live/evt/720p/index.m3u8?_HLS_msn=5&_HLS_part=1', 8), 1);
});

/** One real origin: counts requests per path; `delayMs` holds every answer. */
class Origin {
  readonly counts = new Map<string, number>();
  delayMs = 0;
  readonly server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    this.counts.set(path, (this.counts.get(path) ?? 0) + 1);
    setTimeout(() => {
      if (path.endsWith('.m4s')) res.writeHead(200, { 'content-length': String(SEG.length) }).end(SEG);
      else if (path.includes('index.m3u8')) res.writeHead(200).end('#EXTM3U\n#EXT-X-TARGETDURATION:1\n');
      else res.writeHead(404).end();
    }, this.delayMs);
  });
  url = '';
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  total(prefix: string): number {
    let n = 0;
    for (const [k, v] of this.counts) if (k.startsWith(prefix)) n += v;
    return n;
  }
}

interface Worker {
  edge: HlsEdge;
  registry: Registry;
  port: number;
  server: Server;
  stopped: boolean;
}

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** `count` edges as the workers of one machine, each behind its own loopback port. */
async function machine(count: number, origins: { upstreams: string[] } | { placements: PlacementSource }): Promise<Worker[]> {
  const dir = makeTempDir('peers');
  cleanups.push(() => dir.remove());
  const workers: Worker[] = [];
  for (let index = 1; index <= count; index++) {
    const registry = createMetricsRegistry();
    const edge = createHlsEdge({
      config: loadConfig({}, { segmentTargetSec: 1, edgeUpstreamTimeoutMs: 2_000 }),
      logger: createLogger('silent'),
      registry,
      peers: { index, count, dir: dir.path },
      ...origins,
    });
    await edge.start();
    const server = createServer((req, res) => edge.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const w: Worker = { edge, registry, server, port: (server.address() as AddressInfo).port, stopped: false };
    workers.push(w);
    cleanups.push(() => stopWorker(w));
  }
  return workers;
}

async function stopWorker(w: Worker): Promise<void> {
  if (w.stopped) return;
  w.stopped = true;
  await w.edge.stop();
  w.server.closeAllConnections();
  await new Promise<void>((r) => w.server.close(() => r()));
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
cleanups.push(() => agent.destroy());

function get(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

/** 50 concurrent requests for `path` spread over every worker; all must be 200 with the full body. */
async function burst(workers: Worker[], path: string): Promise<void> {
  const live = workers.filter((w) => !w.stopped);
  const all = await Promise.all(Array.from({ length: 50 }, (_, i) => get(live[i % live.length]!.port, path)));
  for (const r of all) assert.equal(r.status, 200);
  if (path.endsWith('.m4s')) for (const r of all) assert.ok(r.body.equals(SEG));
}

async function peerCounts(w: Worker): Promise<Record<string, number>> {
  const m = await w.registry.getSingleMetric('onair_edge_peer_requests_total')!.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels.result), v.value]));
}

test('static origins: 50 concurrent requests over 3 workers reach the origin once, also when held', async () => {
  const origin = await new Origin().start();
  cleanups.push(() => {
    origin.server.closeAllConnections();
    origin.server.close();
  });
  const workers = await machine(3, { upstreams: [origin.url] });

  for (let i = 1; i <= 6; i++) {
    const path = `/live/evstatic/720p/seg-${i}.m4s`;
    await burst(workers, path);
    assert.equal(origin.counts.get(path), 1, `${path} fetched once`);
  }
  // A held object: the origin answers after 300 ms, while every worker's viewers wait.
  origin.delayMs = 300;
  for (let i = 7; i <= 9; i++) {
    const path = `/live/evstatic/720p/seg-${i}.m4s`;
    await burst(workers, path);
    assert.equal(origin.counts.get(path), 1, `${path} fetched once`);
  }
  // A blocking playlist reload, held at the origin until it exists.
  const blocking = '/live/evstatic/720p/index.m3u8?_HLS_msn=5';
  await burst(workers, blocking);
  assert.equal(origin.total(blocking), 1, 'blocking reload fetched once');
  origin.delayMs = 0;
  const playlist = '/live/evstatic/720p/index.m3u8';
  await burst(workers, playlist);
  assert.equal(origin.counts.get(playlist), 1);

  const totals = { peer: 0, owner: 0, fallback: 0 } as Record<string, number>;
  for (const w of workers) for (const [k, v] of Object.entries(await peerCounts(w))) totals[k]! += v;
  assert.equal(totals.owner, 11, 'each object fetched from the origin by its owner only');
  assert.equal(totals.fallback, 0);
  assert.ok(totals.peer! >= 11, `non-owners asked the owner (${totals.peer})`);
});

test('placements: one origin request per object; the owner stopped, the others fetch from origins themselves', async () => {
  const origin = await new Origin().start();
  cleanups.push(() => {
    origin.server.closeAllConnections();
    origin.server.close();
  });
  const placement: Placement = {
    eventId: 'evplaced',
    epoch: 1,
    ingest: 'ingest-1',
    origins: [{ id: 'o1', url: origin.url }],
    timelineZeroMs: 0,
    session: 1,
    updatedAtMs: Date.now(),
  };
  const placements: PlacementSource = { get: async (id) => (id === placement.eventId ? placement : undefined) };
  const workers = await machine(3, { placements });
  for (let i = 1; i <= 6; i++) {
    const path = `/live/evplaced/720p/seg-${i}.m4s`;
    await burst(workers, path);
    assert.equal(origin.counts.get(path), 1, `${path} fetched once`);
  }

  // Stop worker 1, then ask the others for objects it owns: each surviving worker fetches them itself.
  await stopWorker(workers[0]!);
  const owned: string[] = [];
  for (let i = 100; owned.length < 3; i++) {
    const path = `/live/evplaced/720p/seg-${i}.m4s`;
    if (ownerOf(path, 3) === 1) owned.push(path);
  }
  for (const path of owned) {
    await burst(workers, path);
    const n = origin.counts.get(path) ?? 0;
    assert.ok(n >= 1 && n <= 2, `${path}: one origin request per surviving worker at most (${n})`);
  }
  let fallback = 0;
  for (const w of workers.slice(1)) fallback += (await peerCounts(w)).fallback ?? 0;
  assert.ok(fallback >= 3, `fallbacks counted (${fallback})`);
});

test('a hinted part is streamed from the owner as its bytes arrive', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let originRequests = 0;
  const server = createServer((_req, res) => {
    originRequests++;
    res.writeHead(200);
    res.write(SEG.subarray(0, 1000));
    void gate.then(() => res.end(SEG.subarray(1000)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    release();
    server.closeAllConnections();
    server.close();
  });
  const workers = await machine(2, { upstreams: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
  // A part owned by worker 1, asked of worker 2.
  let path = '';
  for (let i = 0; path === ''; i++) if (ownerOf(`/live/evpart/720p/part-${i}.0.m4s`, 2) === 1) path = `/live/evpart/720p/part-${i}.0.m4s`;
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    httpRequest({ host: '127.0.0.1', port: workers[1]!.port, path, agent }, (res) => {
      assert.equal(res.statusCode, 200);
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        // The first bytes reached the viewer of the non-owner while the origin still holds the rest.
        release();
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
  assert.ok(body.equals(SEG));
  assert.equal(originRequests, 1);
  assert.equal((await peerCounts(workers[1]!)).peer, 1);
});
