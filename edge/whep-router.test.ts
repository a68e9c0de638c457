// The edge's WHEP router against fake origins on loopback (real HTTP servers answering as an origin's WHEP endpoint
// would): the order origins are asked in, which refusals move on to the next, the session id that carries its origin,
// and the cap on the offer.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import type { Placement } from '../lib/placement/types.ts';
import { MAX_OFFER_BYTES } from '../lib/http.ts';
import { createWhepRouter, edgeSessionId, originOrder, parseEdgeSessionId, parseWhepPath, rewriteLocation } from './whep-router.ts';

/** What a fake origin saw. */
interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: string;
}

type Behaviour = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A fake origin that records requests and answers by `behave`. */
async function fakeOrigin(behave: Behaviour): Promise<{ url: string; seen: Seen[]; behave: Behaviour }> {
  const o = { url: '', seen: [] as Seen[], behave };
  o.url = await listen((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      o.seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      o.behave(req, res, body);
    });
  });
  return o;
}

const json = (res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code, message: code } }));
};
const serves: Behaviour = (req, res) => {
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { 'accept-post': 'application/sdp', allow: 'POST, OPTIONS' });
    return res.end();
  }
  if (req.method === 'POST') {
    res.writeHead(201, { 'content-type': 'application/sdp', location: '/whep/ev%201/SESSION_1', 'cache-control': 'no-store' });
    return res.end('v=0 answer');
  }
  if (req.method === 'DELETE') return void res.writeHead(200).end();
  json(res, 405, 'method_not_allowed', { allow: 'DELETE, OPTIONS' });
};
const full: Behaviour = (_req, res) => json(res, 503, 'whep_full', { 'retry-after': '10' });
const absent: Behaviour = (_req, res) => json(res, 404, 'not_found');
/** An origin whose port has no WHEP routes (its HLS handler: GET or HEAD only). */
const noRoutes: Behaviour = (_req, res) => json(res, 405, 'method_not_allowed');

/** A closed port: connection refused. */
async function deadUrl(): Promise<string> {
  const url = await listen(() => {});
  const s = servers.pop()!;
  await new Promise((r) => s.close(r));
  return url;
}

/** An edge whose placement of `ev 1` lists `origins` (ids o0, o1, ...); none for other events. */
async function edgeFor(origins: string[], registry?: Registry): Promise<string> {
  const placement: Placement = {
    eventId: 'ev 1',
    epoch: 1,
    ingest: 'ingest-1',
    origins: origins.map((url, i) => ({ id: `o${i}`, url })),
    timelineZeroMs: 0,
    session: 1,
    updatedAtMs: 0,
  };
  const router = createWhepRouter({
    placements: { get: async (id) => (id === 'ev 1' ? placement : undefined) },
    logger: createLogger('silent'),
    ...(registry ? { registry } : {}),
    timeoutMs: 2_000,
  });
  return listen((req, res) => router.handle(req, res));
}

const offer = (token = 'tok') => ({
  method: 'POST',
  headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
  body: 'v=0 offer',
});
const EP = '/whep/ev%201';

test('paths: endpoint, session ids carrying their origin, and what is not one', () => {
  assert.deepEqual(parseWhepPath('/whep/ev%201'), { eventId: 'ev 1' });
  assert.deepEqual(parseWhepPath('/whep/abc?x=1'), { eventId: 'abc' });
  const sid = edgeSessionId('origin-2', 'Zq_9-x');
  assert.match(sid, /^[A-Za-z0-9_-]+\.Zq_9-x$/);
  assert.deepEqual(parseEdgeSessionId(sid), { originId: 'origin-2', sessionId: 'Zq_9-x' });
  assert.deepEqual(parseWhepPath(`/whep/abc/${sid}`), { eventId: 'abc', session: { originId: 'origin-2', sessionId: 'Zq_9-x' } });
  assert.deepEqual(parseWhepPath('/whep/abc/no-dot'), { invalid: true });
  assert.deepEqual(parseWhepPath('/whep/abc/a.b/c'), { invalid: true });
  assert.deepEqual(parseWhepPath('/whep/%E0'), { invalid: true });
  assert.equal(parseWhepPath('/live/abc'), undefined);
  assert.equal(rewriteLocation('/whep/abc/S1', 'abc', 'o1'), `/whep/abc/${edgeSessionId('o1', 'S1')}`);
  assert.equal(rewriteLocation(null, 'abc', 'o1'), undefined);
  const p = {
    origins: [
      { id: 'a', url: 'A' },
      { id: 'b', url: 'B' },
      { id: 'c', url: 'C' },
    ],
  };
  assert.deepEqual(
    originOrder(p, (u) => u === 'A').map((o) => o.id),
    ['b', 'c', 'a'],
  );
});

test('POST goes to the primary; the session URL it returns brings DELETE and PATCH back to that origin', async () => {
  const a = await fakeOrigin(serves);
  const b = await fakeOrigin(serves);
  const registry = createMetricsRegistry();
  const edge = await edgeFor([a.url, b.url], registry);
  const r = await fetch(edge + EP, offer());
  assert.equal(r.status, 201);
  assert.equal(await r.text(), 'v=0 answer');
  assert.equal(r.headers.get('content-type'), 'application/sdp');
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.match(r.headers.get('access-control-expose-headers')!, /Location/);
  const location = r.headers.get('location')!;
  assert.equal(location, `/whep/ev%201/${edgeSessionId('o0', 'SESSION_1')}`);
  assert.deepEqual(a.seen, [{ method: 'POST', url: EP, auth: 'Bearer tok', body: 'v=0 offer' }]);
  assert.equal(b.seen.length, 0);

  const patch = await fetch(edge + location, { method: 'PATCH', body: 'x' });
  assert.equal(patch.status, 405);
  assert.equal(patch.headers.get('allow'), 'DELETE, OPTIONS');
  assert.equal(((await patch.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
  const del = await fetch(edge + location, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.deepEqual(
    a.seen.slice(1).map((s) => `${s.method} ${s.url}`),
    ['PATCH /whep/ev%201/SESSION_1', 'DELETE /whep/ev%201/SESSION_1'],
  );
  assert.equal(b.seen.length, 0);

  // The same session id naming the other origin goes there; one naming no origin of the placement is not found.
  assert.equal((await fetch(`${edge}/whep/ev%201/${edgeSessionId('o1', 'SESSION_1')}`, { method: 'DELETE' })).status, 200);
  assert.equal(b.seen.at(-1)!.url, '/whep/ev%201/SESSION_1');
  const stranger = await fetch(`${edge}/whep/ev%201/${edgeSessionId('o9', 'SESSION_1')}`, { method: 'DELETE' });
  assert.equal(stranger.status, 404);
  assert.equal(((await stranger.json()) as { error: { code: string } }).error.code, 'not_found');

  // OPTIONS is asked of the origins too: whether real time is offered is theirs to say.
  const options = await fetch(edge + EP, { method: 'OPTIONS' });
  assert.equal(options.status, 204);
  assert.equal(options.headers.get('accept-post'), 'application/sdp');
  assert.equal(options.headers.get('access-control-allow-origin'), '*');

  const metrics = await registry.metrics();
  assert.match(metrics, /onair_edge_whep_requests_total\{kind="offer",status="201"\} 1/);
  assert.match(metrics, /onair_edge_whep_requests_total\{kind="session",status="200"\} 2/);
  assert.match(metrics, /onair_edge_whep_requests_total\{kind="session",status="404"\} 1/);
});

test('a full, absent or unreachable origin passes the viewer on to the next replica', async () => {
  for (const first of [full, absent, noRoutes, 'dead'] as const) {
    const b = await fakeOrigin(serves);
    const a = first === 'dead' ? { url: await deadUrl(), seen: [] } : await fakeOrigin(first);
    const edge = await edgeFor([a.url, b.url]);
    const r = await fetch(edge + EP, offer());
    assert.equal(r.status, 201, `after ${first === 'dead' ? 'dead' : first === full ? 'full' : first === absent ? 'absent' : '405'}`);
    assert.equal(r.headers.get('location'), `/whep/ev%201/${edgeSessionId('o1', 'SESSION_1')}`);
    assert.equal(b.seen.length, 1);
  }
});

test('refusals: token and offer errors are the origin’s answer; none serving says why', async () => {
  // A refused token is not retried elsewhere (every origin checks the same secret).
  const unauthorized = await fakeOrigin((_req, res) =>
    json(res, 401, 'unauthorized', { 'www-authenticate': 'Bearer error="invalid_token"' }),
  );
  const b = await fakeOrigin(serves);
  let edge = await edgeFor([unauthorized.url, b.url]);
  let r = await fetch(edge + EP, offer('bad'));
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unauthorized');
  assert.equal(b.seen.length, 0);

  // Every origin full: 503 whep_full with its Retry-After (a full origin says more than a missing one).
  edge = await edgeFor([(await fakeOrigin(absent)).url, (await fakeOrigin(full)).url]);
  r = await fetch(edge + EP, offer());
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '10');
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'whep_full');

  // No origin offers WHEP (ONAIR_WHEP_MAX_VIEWERS=0, or no feed yet): 404 not_live.
  edge = await edgeFor([(await fakeOrigin(absent)).url, (await fakeOrigin(absent)).url]);
  r = await fetch(edge + EP, offer());
  assert.equal(r.status, 404);
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'not_live');
  assert.equal((await fetch(edge + EP, { method: 'OPTIONS' })).status, 404);

  // None reachable: 503 unavailable.
  edge = await edgeFor([await deadUrl()]);
  r = await fetch(edge + EP, offer());
  assert.equal(r.status, 503);
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unavailable');

  // Not live: no placement.
  r = await fetch(`${edge}/whep/other`, offer());
  assert.equal(r.status, 404);
  const body = (await r.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'not_live');
  assert.match(body.error.message, /HLS/);
});

test('placements that cannot be read: 503 unavailable, not a 500', async () => {
  const router = createWhepRouter({
    placements: {
      get: async () => {
        throw new Error('redis is away');
      },
    },
    logger: createLogger('silent'),
  });
  const edge = await listen((req, res) => router.handle(req, res));
  for (const r of [await fetch(edge + EP, offer()), await fetch(`${edge}/whep/ev%201/${edgeSessionId('o0', 'S')}`, { method: 'DELETE' })]) {
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'unavailable');
    assert.equal(r.headers.get('retry-after'), '5');
  }
});

test('the offer is capped before any origin is asked; other methods are refused at the edge', async () => {
  const a = await fakeOrigin(serves);
  const edge = await edgeFor([a.url]);
  const big = 'a'.repeat(MAX_OFFER_BYTES + 1);
  const r = await fetch(edge + EP, { ...offer(), body: big });
  assert.equal(r.status, 413);
  assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'too_large');
  const get = await fetch(edge + EP);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST, OPTIONS');
  assert.equal((await fetch(`${edge}/whep/ev%201/not-a-session`, { method: 'DELETE' })).status, 404);
  assert.equal(a.seen.length, 0);
});
