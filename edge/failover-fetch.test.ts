// Tests of the failover fetch against real loopback origins: which origin answers, what the cache is fed,
// what is recorded, and the error each kind of failure becomes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../test/support/free-port.ts';
import { createLogger } from '../lib/logger.ts';
import type { FetchSink } from './coalescing-cache.ts';
import { UpstreamError } from './edge-errors.ts';
import { createFailoverFetch, type FetchRequest } from './failover-fetch.ts';
import { createUpstreamSet, type Upstream, type UpstreamSet } from './upstream-set.ts';

const log = createLogger('silent');
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback origin running `handler`; records the paths it was asked for. */
async function origin(handler: Handler): Promise<{ url: string; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, paths };
}

const ok =
  (body: string, headers: Record<string, string> = {}): Handler =>
  (_req, res) =>
    void res.writeHead(200, { 'content-length': String(Buffer.byteLength(body)), ...headers }).end(body);
const status =
  (code: number): Handler =>
  (_req, res) =>
    void res.writeHead(code).end('no');
/** Never answers (until the server closes its connections). */
const hang: Handler = () => {};

/** Everything the fetch did, through its narrow interfaces. */
function harness(urls: string[], timeoutMs = 2_000) {
  const origins: UpstreamSet = createUpstreamSet({ urls, timeoutMs, longestRequestMs: timeoutMs, probeIntervalMs: 60_000, logger: log });
  cleanups.push(() => origins.stop());
  const answered: string[] = [];
  const durations: number[] = [];
  const remembered: { key: string; body: string }[] = [];
  let t = 0;
  const fetch = createFailoverFetch({
    origins,
    metrics: {
      upstreamAnswered: (u: Upstream, s: string) => void answered.push(`${u.label} ${s}`),
      upstreamDuration: (sec: number) => void durations.push(sec),
    },
    stale: { remember: (key, body) => void remembered.push({ key, body: body.toString() }) },
    logger: log,
    timeoutMs,
    heldTimeoutMs: timeoutMs,
    now: () => (t += 250), // each reading a quarter second later: every request "takes" 0.25 s
  });
  return { origins, fetch, answered, durations, remembered };
}

/** A sink that collects what the fetch feeds the cache. */
function sink(): FetchSink & { status?: number; headers?: Readonly<Record<string, string>>; ttlMs?: number; body: () => string } {
  const chunks: Buffer[] = [];
  const s: FetchSink & { status?: number; headers?: Readonly<Record<string, string>>; ttlMs?: number; body: () => string } = {
    head(st, h, ttl) {
      s.status = st;
      s.headers = h;
      s.ttlMs = ttl;
    },
    data(c) {
      chunks.push(c);
    },
    body: () => Buffer.concat(chunks).toString(),
  };
  return s;
}

const PLAYLIST: FetchRequest = {
  kind: 'playlist',
  cacheKey: '/live/e/720p/index.m3u8',
  upstreamPath: '/live/e/720p/index.m3u8',
  blocking: false,
};
const SEGMENT: FetchRequest = {
  kind: 'segment',
  cacheKey: '/live/e/720p/seg-1.m4s',
  upstreamPath: '/live/e/720p/seg-1.m4s',
  blocking: false,
};
const signal = () => new AbortController().signal;

test('a 200 is fed to the cache with the policy headers and TTL of its kind, and a playlist is kept for stale-if-error', async () => {
  const o = await origin(ok('#EXTM3U\n', { etag: '"v1"', 'last-modified': 'Wed, 02 Dec 2026 08:00:00 GMT', 'x-internal': 'dropped' }));
  const h = harness([o.url + '/base']);
  const s = sink();
  await h.fetch(PLAYLIST, s, signal());
  assert.deepEqual(o.paths, ['/base/live/e/720p/index.m3u8'], 'asked at the base path');
  assert.equal(s.status, 200);
  assert.equal(s.ttlMs, 100, 'a first load gets the live edge: kept at most 100 ms');
  assert.deepEqual(s.headers, {
    'content-type': 'application/vnd.apple.mpegurl',
    'cache-control': 'max-age=0',
    'access-control-allow-origin': '*',
    etag: '"v1"',
    'last-modified': 'Wed, 02 Dec 2026 08:00:00 GMT',
    'content-length': '8',
  });
  assert.equal(s.body(), '#EXTM3U\n');
  assert.deepEqual(h.remembered, [{ key: PLAYLIST.cacheKey, body: '#EXTM3U\n' }]);
  assert.deepEqual(h.answered, ['origin-0 200']);
  assert.deepEqual(h.durations, [0.25], 'the duration is read on the injected clock');

  const seg = sink();
  await h.fetch(SEGMENT, seg, signal());
  assert.equal(seg.headers?.['cache-control'], 'public, max-age=3600, immutable');
  assert.equal(seg.ttlMs, 3_600_000);
  assert.equal(h.remembered.length, 1, 'only playlists are kept for stale-if-error');

  const held = sink();
  await h.fetch(
    { ...PLAYLIST, cacheKey: PLAYLIST.cacheKey + '?_HLS_msn=3', upstreamPath: PLAYLIST.upstreamPath + '?_HLS_msn=3', blocking: true },
    held,
    signal(),
  );
  assert.equal(held.headers?.['cache-control'], 'max-age=60', 'a blocking reload names one playlist version for good');
  assert.equal(held.ttlMs, 60_000);
});

test('an unreachable origin is marked down and the next one answers', async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const o = await origin(ok('seg'));
  const h = harness([dead, o.url]);
  const s = sink();
  await h.fetch(SEGMENT, s, signal());
  assert.equal(s.body(), 'seg');
  assert.deepEqual(h.answered, ['origin-0 error', 'origin-1 200']);
  assert.equal(h.origins.list[0]!.down, true);
  // The next fetch tries the live origin first.
  await h.fetch(SEGMENT, sink(), signal());
  assert.deepEqual(h.answered.slice(2), ['origin-1 200']);
});

test('a 5xx moves on without marking the origin down; a 404 is an answer, stored briefly, with no failover', async () => {
  const broken = await origin(status(500));
  const missing = await origin(status(404));
  const never = await origin(ok('unused'));
  const h = harness([broken.url, missing.url, never.url]);
  const s = sink();
  await h.fetch(SEGMENT, s, signal());
  assert.equal(s.status, 404);
  assert.equal(s.ttlMs, 1_000);
  assert.equal(s.headers?.['content-type'], 'application/json; charset=utf-8');
  assert.deepEqual(JSON.parse(s.body()), { error: { code: 'not_found', message: 'no such HLS object' } });
  assert.deepEqual(h.answered, ['origin-0 500', 'origin-1 404']);
  assert.equal(h.origins.list[0]!.down, false, 'an origin that answers is up');
  assert.deepEqual(never.paths, []);

  const rejecting = await origin(status(403));
  const r = sink();
  await harness([rejecting.url]).fetch(SEGMENT, r, signal());
  assert.equal(r.status, 403);
  assert.equal(r.ttlMs, 0, 'a rejection is not stored');
  assert.equal(JSON.parse(r.body()).error.code, 'upstream_rejected');
});

test('no origin can serve: 503 when one said so, 502 otherwise, 504 when one timed out; the message names origins, not URLs', async () => {
  const starting = await origin(status(503));
  const failing = await origin(status(502));
  const err503 = await harness([failing.url, starting.url])
    .fetch(SEGMENT, sink(), signal())
    .catch((e: unknown) => e);
  assert.ok(err503 instanceof UpstreamError);
  assert.equal(err503.status, 503);
  assert.match(err503.message, /origin-1: answered 503/);
  assert.doesNotMatch(err503.message, /127\.0\.0\.1/);

  const err502 = await harness([failing.url])
    .fetch(SEGMENT, sink(), signal())
    .catch((e: unknown) => e);
  assert.ok(err502 instanceof UpstreamError);
  assert.equal(err502.status, 502);
  assert.match(err502.message, /origin-0: answered 502/);

  const slow = await origin(hang);
  const h = harness([slow.url, starting.url], 300);
  const err504 = await h.fetch(SEGMENT, sink(), signal()).catch((e: unknown) => e);
  assert.ok(err504 instanceof UpstreamError);
  assert.equal(err504.status, 504, 'a timeout outranks a 503 elsewhere');
  assert.deepEqual(h.answered, ['origin-0 timeout', 'origin-1 503']);
  assert.equal(h.origins.list[0]!.down, true);

  const none = await harness([])
    .fetch(SEGMENT, sink(), signal())
    .catch((e: unknown) => e);
  assert.ok(none instanceof UpstreamError);
  assert.equal(none.status, 502);
  assert.match(none.message, /no upstream configured/);
});

test('a request held on an origin that goes down moves to the next origin', async () => {
  let received!: () => void;
  const arrived = new Promise<void>((r) => (received = r));
  const holding = await origin(() => received());
  const o = await origin(ok('part'));
  const h = harness([holding.url, o.url]);
  const s = sink();
  const done = h.fetch(SEGMENT, s, signal());
  await arrived;
  h.origins.markDown(h.origins.list[0]!, 'test');
  await done;
  assert.equal(s.body(), 'part');
  assert.deepEqual(h.answered, ['origin-0 moved', 'origin-1 200']);
});

test('the caller aborting ends the fetch with the abort, not a failover', async () => {
  let received!: () => void;
  const arrived = new Promise<void>((r) => (received = r));
  const holding = await origin(() => received());
  const o = await origin(ok('unused'));
  const h = harness([holding.url, o.url]);
  const ac = new AbortController();
  const done = h.fetch(SEGMENT, sink(), ac.signal).catch((e: unknown) => e);
  await arrived;
  ac.abort(new Error('cancelled'));
  const err = await done;
  assert.ok(!(err instanceof UpstreamError));
  assert.deepEqual(o.paths, []);
  assert.equal(h.origins.list[0]!.down, false);
});
