// Tests of the HLS edge: a real http server running createHlsEdge in front of small fake origin servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, Agent, type Server, type ServerResponse, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { createHlsEdge } from './hls-edge.ts';
import { waitFor } from '../test/support/wait-for.ts';

const EV = 'evt123abc';
const L = `/live/${EV}`;
const MASTER = '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000\n720p/index.m3u8\n';
const INIT = Buffer.alloc(1300, 1);
const SEG = Buffer.alloc(200_000, 2);
const PART = Buffer.alloc(50_000, 3);

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

/** A fake origin: fixed playlist and media bodies, counts every request by path+query. */
class FakeOrigin {
  readonly counts = new Map<string, number>();
  readonly gates = new Map<string, { wait: Promise<void>; open: () => void }>();
  server: Server;
  url = '';

  constructor(private readonly mode: 'ok' | 'broken' = 'ok') {
    this.server = createServer((req, res) => {
      const key = req.url ?? '/';
      this.counts.set(key, this.count(key) + 1);
      void this.serve(key, res);
    });
  }

  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  private async serve(key: string, res: ServerResponse): Promise<void> {
    if (this.mode === 'broken') {
      res.writeHead(503).end('overloaded');
      return;
    }
    const [path, query] = key.split('?') as [string, string | undefined];
    await this.gates.get(path)?.wait;
    if (path === `${L}/master.m3u8`) {
      res.writeHead(200, { 'content-type': 'text/plain', etag: '"master-1"' }).end(MASTER);
    } else if (path === `${L}/720p/index.m3u8`) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`#EXTM3U\n# query=${query ?? ''}\n`);
    } else if (path === `${L}/720p/init-0.mp4`) {
      res.writeHead(200, { etag: '"init-0"' }).end(INIT);
    } else if (path.startsWith(`${L}/720p/seg-`) && !path.endsWith('seg-999.m4s')) {
      res.writeHead(200, { 'content-length': String(SEG.length) }).end(SEG);
    } else if (path === `${L}/720p/part-1.0.m4s`) {
      res.end(PART);
    } else if (path === `${L}/720p/part-2.0.m4s`) {
      // A preload-hinted part: bytes flow as they are produced.
      res.writeHead(200);
      res.write(PART.subarray(0, 1000));
      await this.gates.get('part-2.0 rest')?.wait;
      res.end(PART.subarray(1000));
    } else if (path === `${L}/720p/hang.m4s`) {
      // never answers
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
    }
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const g of this.gates.values()) g.open();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

interface EdgeUnderTest {
  url: string;
  port: number;
  registry: Registry;
  stop(): Promise<void>;
}

const running: EdgeUnderTest[] = [];

async function startEdge(upstreams: string[], overrides: Record<string, unknown> = {}): Promise<EdgeUnderTest> {
  const config = loadConfig({}, { segmentTargetSec: 1, ...overrides });
  const registry = createMetricsRegistry();
  const edge = createHlsEdge({ config, logger: createLogger('silent'), registry, upstreams });
  await edge.start();
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/live/')) edge.handle(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const e: EdgeUnderTest = {
    url: `http://127.0.0.1:${port}`,
    port,
    registry,
    async stop() {
      await edge.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  running.push(e);
  return e;
}

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

/** A raw HTTP request (the path is sent exactly as given, no normalisation). */
function req(port: number, path: string, method = 'GET'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port, path, method, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return Number.NaN;
  const { values } = await m.get();
  let sum = 0;
  for (const v of values) {
    const l = v.labels as Record<string, string | number>;
    if (Object.entries(labels).every(([k, want]) => String(l[k]) === want)) sum += v.value;
  }
  return sum;
}

let origin: FakeOrigin;
let edge: EdgeUnderTest;

before(async () => {
  origin = await new FakeOrigin().start();
  edge = await startEdge([origin.url]);
});

after(async () => {
  for (const e of running) await e.stop();
  await origin.stop();
  agent.destroy();
});

test('each kind gets its content type, cache policy, CORS, length and ETag', async () => {
  const cases: [string, string, string, Buffer | string][] = [
    [`${L}/master.m3u8`, 'application/vnd.apple.mpegurl', 'max-age=2', MASTER],
    [`${L}/720p/index.m3u8`, 'application/vnd.apple.mpegurl', 'max-age=0', '#EXTM3U\n# query=\n'],
    [`${L}/720p/init-0.mp4`, 'video/mp4', 'public, max-age=3600, immutable', INIT],
    [`${L}/720p/seg-1.m4s`, 'video/mp4', 'public, max-age=3600, immutable', SEG],
    [`${L}/720p/part-1.0.m4s`, 'video/mp4', 'public, max-age=3600, immutable', PART],
  ];
  for (const [path, type, cc, body] of cases) {
    for (const round of ['miss', 'hit']) {
      const r = await req(edge.port, path);
      assert.equal(r.status, 200, `${path} ${round}`);
      assert.equal(r.headers['content-type'], type, path);
      assert.equal(r.headers['cache-control'], cc, path);
      assert.equal(r.headers['access-control-allow-origin'], '*', path);
      if (round === 'miss') assert.equal(r.headers.age, '0', path);
      else assert.match(String(r.headers.age), /^\d+$/, path);
      assert.deepEqual(r.body, Buffer.from(body), `${path} ${round}`);
      if (round === 'hit') assert.equal(r.headers['content-length'], String(r.body.length), path);
    }
    assert.equal(origin.count(path), 1, `${path} fetched once`);
  }
  assert.equal((await req(edge.port, `${L}/master.m3u8`)).headers.etag, '"master-1"');
  assert.equal((await req(edge.port, `${L}/720p/init-0.mp4`)).headers.etag, '"init-0"');
});

test('blocking playlist requests keep only the LL-HLS params, canonically, and are cached for 60 s', async () => {
  const path = `${L}/720p/index.m3u8?foo=1&_HLS_part=2&_HLS_msn=7`;
  const r = await req(edge.port, path);
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), '#EXTM3U\n# query=_HLS_msn=7&_HLS_part=2\n');
  assert.equal(r.headers['cache-control'], 'max-age=60');
  await req(edge.port, `${L}/720p/index.m3u8?_HLS_msn=7&_HLS_part=2&bar=2`);
  assert.equal(origin.count(`${L}/720p/index.m3u8?_HLS_msn=7&_HLS_part=2`), 1);
  assert.equal((await req(edge.port, `${L}/720p/index.m3u8?_HLS_part=2`)).status, 400);
});

test('Age grows while the object stays cached', async () => {
  const path = `${L}/720p/seg-2.m4s`;
  assert.equal((await req(edge.port, path)).headers.age, '0');
  await waitFor('Age to reach 1', async () => Number((await req(edge.port, path)).headers.age) >= 1, 5_000, 10);
  assert.equal(origin.count(path), 1);
});

test('origin 404 becomes a short-lived cached 404', async () => {
  const path = `${L}/720p/seg-999.m4s`;
  const r = await req(edge.port, path);
  assert.equal(r.status, 404);
  assert.equal(r.headers['cache-control'], 'max-age=1');
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(JSON.parse(r.body.toString()).error.code, 'not_found');
  assert.equal((await req(edge.port, path)).status, 404);
  assert.equal(origin.count(path), 1, 'the 404 was cached');
});

test('traversal and malformed paths get 400, unknown names 404, with JSON errors, and never reach the origin', async () => {
  const before = [...origin.counts.values()].reduce((a, b) => a + b, 0);
  for (const path of [
    `${L}/../../etc/passwd`,
    `${L}/%2e%2e/master.m3u8`,
    `${L}/720p%2Fseg-1.m4s`,
    `${L}//master.m3u8`,
    `${L}/720p/seg-01.m4s`,
  ]) {
    const r = await req(edge.port, path);
    assert.equal(r.status, 400, path);
    assert.equal(JSON.parse(r.body.toString()).error.code, 'bad_request', path);
  }
  const r = await req(edge.port, `${L}/720p/secret.txt`);
  assert.equal(r.status, 404);
  assert.equal(JSON.parse(r.body.toString()).error.code, 'not_found');
  assert.equal(
    [...origin.counts.values()].reduce((a, b) => a + b, 0),
    before,
  );
});

test('POST gets 405 with a JSON error; HEAD works on miss and hit', async () => {
  const r = await req(edge.port, `${L}/master.m3u8`, 'POST');
  assert.equal(r.status, 405);
  assert.equal(r.headers.allow, 'GET, HEAD');
  assert.equal(JSON.parse(r.body.toString()).error.code, 'method_not_allowed');

  const path = `${L}/720p/seg-3.m4s`;
  for (const round of ['miss', 'hit']) {
    const h = await req(edge.port, path, 'HEAD');
    assert.equal(h.status, 200, round);
    assert.equal(h.headers['content-length'], String(SEG.length), round);
    assert.equal(h.headers['content-type'], 'video/mp4', round);
    assert.equal(h.body.length, 0, round);
  }
  assert.equal((await req(edge.port, path)).body.length, SEG.length);
  assert.equal(origin.count(path), 1);
});

test('502 when the origin is down, 504 when it does not answer in time', async () => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((r) => dead.close(() => r()));

  const e = await startEdge([deadUrl]);
  const r = await req(e.port, `${L}/master.m3u8`);
  assert.equal(r.status, 502);
  assert.equal(JSON.parse(r.body.toString()).error.code, 'bad_gateway');
  assert.equal(r.headers['cache-control'], 'no-store');

  const slow = await startEdge([origin.url], { edgeUpstreamTimeoutMs: 300 });
  const t = await req(slow.port, `${L}/720p/seg-5.m4s`);
  assert.equal(t.status, 200, 'a fast answer is fine');
  origin.gates.set(`${L}/720p/seg-6.m4s`, gate());
  const started = Date.now();
  const timedOut = await req(slow.port, `${L}/720p/seg-6.m4s`);
  assert.equal(timedOut.status, 504);
  assert.equal(JSON.parse(timedOut.body.toString()).error.code, 'gateway_timeout');
  assert.ok(Date.now() - started < 5_000);
  assert.equal(await metricValue(slow.registry, 'onair_edge_upstream_requests_total', { status: 'timeout' }), 1);
});

test('fails over to the second upstream when the first is down or answers 5xx', async () => {
  const dead = createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${(dead.address() as AddressInfo).port}`;
  await new Promise<void>((r) => dead.close(() => r()));
  const broken = await new FakeOrigin('broken').start();
  try {
    for (const first of [deadUrl, broken.url]) {
      const e = await startEdge([first, origin.url]);
      const r = await req(e.port, `${L}/720p/seg-10.m4s`);
      assert.equal(r.status, 200, first);
      assert.deepEqual(r.body, SEG);
    }
    assert.equal(broken.count(`${L}/720p/seg-10.m4s`), 1);
  } finally {
    await broken.stop();
  }
});

test('500 concurrent requests through the edge cause one upstream request', async () => {
  const e = await startEdge([origin.url]);
  const path = `${L}/720p/seg-50.m4s`;
  const g = gate();
  origin.gates.set(path, g);
  const all = Array.from({ length: 500 }, () => req(e.port, path));
  await waitFor(
    'all 500 requests to reach the edge',
    async () =>
      (await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'miss' })) +
        (await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'coalesced' })) ===
      500,
    30_000,
    10,
  );
  g.open();
  const results = await Promise.all(all);
  assert.equal(origin.count(path), 1);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(SEG));
  }
  assert.equal(await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'miss' }), 1);
  assert.equal(await metricValue(e.registry, 'onair_edge_requests_total', { kind: 'segment', status: '200' }), 500);
  assert.equal(await metricValue(e.registry, 'onair_edge_bytes_sent_total'), 500 * SEG.length);
  assert.ok((await metricValue(e.registry, 'onair_edge_cache_bytes')) >= SEG.length);
  const text = await e.registry.metrics();
  assert.match(text, /onair_edge_upstream_seconds_count 1/);
  assert.match(text, /onair_edge_upstream_requests_total\{upstream="origin-0",status="200"\} 1/);
  assert.ok(!text.includes(origin.url), 'no origin URL in the metrics');
});

test('a non-blocking playlist load gets the live edge (kept 100 ms), and 200 concurrent loads are one upstream request', async () => {
  const e = await startEdge([origin.url]);
  const path = `${L}/720p/index.m3u8`;
  const before = origin.count(path);
  const g = gate();
  origin.gates.set(path, g);
  const all = Array.from({ length: 200 }, () => req(e.port, path));
  await waitFor(
    'all 200 requests to reach the edge',
    async () =>
      (await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'miss' })) +
        (await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'coalesced' })) ===
      200,
    30_000,
    10,
  );
  g.open();
  origin.gates.delete(path);
  for (const r of await Promise.all(all)) assert.equal(r.status, 200);
  assert.equal(origin.count(path) - before, 1, 'concurrent misses are one fetch');
  // Past the TTL (well under the old 1 s), the next load asks the origin again.
  await delay(150);
  assert.equal((await req(e.port, path)).status, 200);
  assert.equal(origin.count(path) - before, 2, 'a load 150 ms later is fetched again: no player starts from a stale copy');
});

test('a streamed part reaches viewers as it arrives; a client leaving does not cancel it for others', async () => {
  const e = await startEdge([origin.url]);
  const path = `${L}/720p/part-2.0.m4s`;
  const rest = gate();
  origin.gates.set('part-2.0 rest', rest);

  // Viewer 1 sees the first bytes before the origin has finished the part.
  const firstBytes: Buffer[] = [];
  const leaver = httpRequest({ host: '127.0.0.1', port: e.port, path, agent: false }, (res) => {
    res.on('data', (c: Buffer) => firstBytes.push(c));
    res.on('error', () => undefined);
  });
  leaver.on('error', () => undefined);
  leaver.end();
  await waitFor('the first kilobyte through the edge', () => Buffer.concat(firstBytes).length === 1000, 15_000, 10);

  // Viewer 2 joins late, viewer 1 leaves; the shared fetch carries on.
  const late = req(e.port, path);
  await waitFor(
    'the late viewer to join',
    async () => (await metricValue(e.registry, 'onair_edge_cache_events_total', { result: 'coalesced' })) === 1,
    15_000,
    10,
  );
  leaver.destroy();
  await waitFor(
    'the edge to notice the client left',
    async () => (await metricValue(e.registry, 'onair_edge_requests_total', { kind: 'part', status: '499' })) === 1,
    15_000,
    10,
  );
  rest.open();
  const r = await late;
  assert.equal(r.status, 200);
  assert.ok(r.body.equals(PART));
  assert.equal(origin.count(path), 1);
  // And it is now cached.
  assert.ok((await req(e.port, path)).body.equals(PART));
  assert.equal(origin.count(path), 1);
});

test('stop() then start() serves again', async () => {
  const config = loadConfig({}, {});
  const edge2 = createHlsEdge({ config, logger: createLogger('silent'), registry: createMetricsRegistry(), upstreams: [origin.url] });
  const server = createServer((q, s) => edge2.handle(q, s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await edge2.start();
    assert.equal((await req(port, `${L}/720p/seg-20.m4s`)).status, 200);
    await edge2.stop();
    await edge2.start();
    assert.equal((await req(port, `${L}/720p/seg-20.m4s`)).status, 200);
    assert.equal(origin.count(`${L}/720p/seg-20.m4s`), 2, 'stop() emptied the cache');
  } finally {
    await edge2.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('ETag: derived when the origin sends none; If-None-Match gets 304 with the validators and no body', async () => {
  const path = `${L}/720p/seg-77.m4s`;
  await req(edge.port, path); // miss: stored with a derived strong ETag
  const hit = await req(edge.port, path);
  const etag = hit.headers.etag;
  assert.match(String(etag), /^"[A-Za-z0-9_-]{27}"$/);
  assert.equal(hit.headers['cache-status'], 'onair-edge; hit');
  const conditional = (inm: string) =>
    new Promise<Res>((resolve, reject) => {
      const r = httpRequest({ host: '127.0.0.1', port: edge.port, path, agent, headers: { 'if-none-match': inm } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      });
      r.on('error', reject);
      r.end();
    });
  const nm = await conditional(`"other", W/${etag}`);
  assert.equal(nm.status, 304);
  assert.equal(nm.body.length, 0);
  assert.equal(nm.headers.etag, etag);
  assert.match(String(nm.headers.age), /^\d+$/);
  assert.equal(nm.headers['cache-control'], 'public, max-age=3600, immutable');
  assert.equal((await conditional('"other"')).status, 200);
  assert.equal(origin.count(path), 1);
});

test('createHlsEdge starts nothing: origins are probed only between start() and stop()', async () => {
  let probes = 0;
  const probed = createServer((q, s) => {
    if (q.url === '/healthz') probes++;
    s.end('ok');
  });
  await new Promise<void>((r) => probed.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(probed.address() as AddressInfo).port}`;
  const edge3 = createHlsEdge({
    config: loadConfig({}, {}),
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    upstreams: [url],
  });
  try {
    await delay(1_500); // absence cannot be awaited: more than one probe interval (1 s) without a probe is the check
    assert.equal(probes, 0, 'no probe before start()');
    await edge3.start();
    await waitFor('the first probe after start()', () => probes > 0);
  } finally {
    await edge3.stop();
    probed.closeAllConnections();
    await new Promise<void>((r) => probed.close(() => r()));
  }
});
