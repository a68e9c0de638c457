// `--role edge` with 2 workers in front of one counting origin (a loopback HTTP server in this process): the workers
// ask each other, so the origin sees one request per object for the whole machine.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get as httpGet, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';

const SEG = Buffer.alloc(50_000, 5);
const counts = new Map<string, number>();
let origin: Server;
let edge: ServerUnderTest;

/** One request on a new connection (a keep-alive connection stays with the worker that accepted it). */
function get(path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(`${edge.base}${path}`, { agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    })
      .on('timeout', function (this: ClientRequest) {
        this.destroy(new Error('no answer within 10 s'));
      })
      .on('error', reject);
  });
}

before(async () => {
  origin = createServer((req, res) => {
    const path = req.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    // Held briefly, so that requests on both workers overlap.
    setTimeout(() => {
      if (path.endsWith('.m4s')) res.writeHead(200, { 'content-length': String(SEG.length) }).end(SEG);
      else res.writeHead(404).end();
    }, 100);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  edge = await startServer({
    ONAIR_ROLE: 'edge',
    ONAIR_ORIGIN_URLS: `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
    ONAIR_EDGE_WORKERS: '2',
    ONAIR_LOG_LEVEL: 'warn',
  });
});

after(async () => {
  await edge?.stop();
  origin?.closeAllConnections();
  await new Promise<void>((r) => origin?.close(() => r()));
});

test('2 edge workers: one origin request per object for the machine', async () => {
  // Wait until both workers answer (each has its peer socket by then).
  const pids = new Set<number>();
  await waitFor(
    'both workers',
    async () => {
      const h = (await (await fetch(`${edge.base}/healthz`, { headers: { connection: 'close' } })).json()) as { pid: number };
      pids.add(h.pid);
      return pids.size === 2 ? true : undefined;
    },
    30_000,
    50,
  );
  for (let i = 1; i <= 8; i++) {
    const path = `/live/evworkers/360p/seg-${i}.m4s`;
    const all = await Promise.all(Array.from({ length: 20 }, () => get(path)));
    for (const r of all) {
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(SEG));
    }
    assert.equal(counts.get(path), 1, `${path}: origin requests`);
  }
  const text = await (await fetch(`${edge.base}/metrics`)).text();
  const peer = [...text.matchAll(/^onair_edge_peer_requests_total\{[^}]*result="peer"[^}]*\} (\d+)/gm)].reduce(
    (n, m) => n + Number(m[1]),
    0,
  );
  assert.ok(peer >= 1, `objects answered by the owner worker: ${peer}`);
});
