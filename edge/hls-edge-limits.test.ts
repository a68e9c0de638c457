// The edge's resource bounds: a client that reads nothing is cut and pins no copies; the cache holds its byte budget under churn.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { createHlsEdge, type HlsEdge } from './hls-edge.ts';

const BIG = Buffer.alloc(16 * 1024 * 1024, 7);
const SMALL = Buffer.alloc(100 * 1024, 9);
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function listenOn(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A fake origin: a 16 MB segment for event `bigevent1`, 100 KB segments for any other event. */
async function startOrigin(): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/live/')) n++;
    const body = req.url?.startsWith('/live/bigevent1/') ? BIG : SMALL;
    if (req.url?.includes('/seg-')) res.writeHead(200, { 'content-length': String(body.length) }).end(body);
    else res.writeHead(404).end();
  });
  return { url: await listenOn(server), requests: () => n };
}

async function startEdge(origin: string, overrides: Record<string, unknown>): Promise<{ port: number; registry: Registry; edge: HlsEdge }> {
  const config = loadConfig({}, overrides);
  const registry = createMetricsRegistry();
  const edge = createHlsEdge({ config, logger: createLogger('silent'), registry, upstreams: [origin] });
  await edge.start();
  closers.push(() => edge.stop());
  const url = await listenOn(createServer((req, res) => edge.handle(req, res)));
  return { port: Number(new URL(url).port), registry, edge };
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

test('clients that read nothing pin no copies of the body and are cut after the stall bound', async () => {
  const origin = await startOrigin();
  const e = await startEdge(origin.url, { edgeClientStallMs: 1_000 });
  const path = '/live/bigevent1/720p/seg-1.m4s';
  const warm = await fetch(`http://127.0.0.1:${e.port}${path}`);
  assert.equal((await warm.arrayBuffer()).byteLength, BIG.length);

  global.gc?.();
  const before = process.memoryUsage().arrayBuffers;
  const sockets: Socket[] = [];
  for (let i = 0; i < 20; i++) {
    const s = connect(e.port, '127.0.0.1');
    s.pause(); // never read a byte
    s.write(`GET ${path} HTTP/1.1\r\nHost: edge\r\n\r\n`);
    sockets.push(s);
    s.on('error', () => {});
  }
  // Let every response be written as far as the sockets take it.
  const deadline = Date.now() + 10_000;
  while ((await metric(e.registry, 'onair_edge_requests_total', { kind: 'segment', status: '200' })) < 21 && Date.now() < deadline)
    await delay(20);
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 2 * BIG.length, `20 stalled clients grew array buffers by ${grown} bytes (one copy each would be ${20 * BIG.length})`);

  // (A paused client never reads the FIN, so watch the edge's side.)
  const cutBy = Date.now() + 15_000;
  while ((await metric(e.registry, 'onair_edge_clients_cut_total', { reason: 'stall' })) < 20 && Date.now() < cutBy) await delay(50);
  assert.equal(await metric(e.registry, 'onair_edge_clients_cut_total', { reason: 'stall' }), 20);
  while ((await metric(e.registry, 'onair_edge_open_connections')) > 1 && Date.now() < cutBy) await delay(50);
  assert.ok((await metric(e.registry, 'onair_edge_open_connections')) <= 1, 'the stalled connections are closed');
  assert.equal(origin.requests(), 1, 'served from the cache');
  for (const s of sockets) s.destroy();
});

test('the cache stays within its byte budget under a churn of many events', async () => {
  const origin = await startOrigin();
  const budget = 1 << 20;
  const e = await startEdge(origin.url, { edgeCacheBytes: budget });
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`http://127.0.0.1:${e.port}/live/event${String(i).padStart(4, '0')}/720p/seg-${i}.m4s`);
    assert.equal((await r.arrayBuffer()).byteLength, SMALL.length);
    const bytes = await metric(e.registry, 'onair_edge_cache_bytes');
    assert.ok(bytes <= budget, `cache holds ${bytes} bytes, budget ${budget}`);
  }
  assert.ok((await metric(e.registry, 'onair_edge_cache_bytes')) > budget / 2, 'the cache is in use');
  assert.equal(origin.requests(), 200);
});
