// Tests of the coalescing cache against a real, counting HTTP origin on a free port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { Pool } from 'undici';
import { CoalescingCache, type CacheSubscriber, type Fetcher, type ResponseHead } from './coalescing-cache.ts';
import { waitFor } from '../test/support/wait-for.ts';

/** A gate the origin waits on until the test opens it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

const hits = new Map<string, number>();
const gates = new Map<string, { wait: Promise<void>; open: () => void }>();
let server: Server;
let pool: Pool;

function count(path: string): number {
  return hits.get(path) ?? 0;
}

before(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    hits.set(path, count(path) + 1);
    void (async () => {
      if (path.startsWith('/slow/')) {
        await gates.get(path)?.wait;
        res.end(`body of ${path}`);
      } else if (path === '/stream') {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        res.write('AAAA');
        await gates.get('/stream1')?.wait;
        res.write('BBBB');
        await gates.get('/stream2')?.wait;
        res.end('CCCC');
      } else if (path.startsWith('/obj/')) {
        const size = Number(url.searchParams.get('size'));
        res.end(Buffer.alloc(size, path.length));
      } else if (path.startsWith('/fail')) {
        await gates.get(path)?.wait;
        req.socket.destroy();
      } else if (path === '/midfail') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        await gates.get(path)?.wait;
        req.socket.destroy();
      } else {
        res.writeHead(404).end('nope');
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  pool = new Pool(`http://127.0.0.1:${port}`, { connections: 64 });
});

after(async () => {
  await pool.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

/** Fetches `path` from the counting origin; 5xx and transport failures reject. */
function fetcher(path: string, ttlMs: number): Fetcher {
  return async (sink, signal) => {
    const r = await pool.request({ path, method: 'GET', signal });
    if (r.statusCode >= 500) {
      await r.body.dump();
      throw new Error(`origin answered ${r.statusCode}`);
    }
    sink.head(r.statusCode, { 'content-type': 'application/octet-stream' }, ttlMs);
    for await (const c of r.body) sink.data(c as Buffer);
  };
}

/** A subscriber that records what it receives. */
class Recorder implements CacheSubscriber {
  head_: ResponseHead | undefined;
  chunks: Buffer[] = [];
  ended = false;
  err: Error | undefined;
  head(h: ResponseHead): void {
    this.head_ = h;
  }
  data(c: Buffer): void {
    this.chunks.push(c);
  }
  end(): void {
    this.ended = true;
  }
  error(e: Error): void {
    this.err = e;
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

test('500 concurrent gets for one key cause exactly one upstream request and 500 identical bodies', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const path = '/slow/a';
  const g = gate();
  gates.set(path, g);
  const all = Array.from({ length: 500 }, () => cache.get(path, fetcher(path, 60_000)));
  await waitFor('the origin to receive the request', () => count(path) === 1, 10_000, 5);
  assert.equal(cache.misses, 1);
  assert.equal(cache.coalesced, 499);
  assert.equal(cache.inFlight, 1);
  g.open();
  const entries = await Promise.all(all);
  assert.equal(count(path), 1);
  for (const e of entries) {
    assert.equal(e.status, 200);
    assert.equal(e.body.toString(), `body of ${path}`);
  }
  // And now it is stored.
  const again = await cache.get(path, fetcher(path, 60_000));
  assert.equal(again.body.toString(), `body of ${path}`);
  assert.equal(again.headers['content-length'], String(again.body.length));
  assert.equal(cache.hits, 1);
  assert.equal(count(path), 1);
  assert.equal(cache.inFlight, 0);
});

test('an in-flight body streams to an early and a late joiner as it arrives', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const g1 = gate();
  const g2 = gate();
  gates.set('/stream1', g1);
  gates.set('/stream2', g2);
  const early = new Recorder();
  const late = new Recorder();
  const throwing: CacheSubscriber = {
    head() {},
    data() {
      throw new Error('a broken client');
    },
    end() {},
    error() {},
  };
  const s1 = cache.subscribe('/stream', fetcher('/stream', 60_000), early);
  assert.equal(s1.result, 'miss');
  cache.subscribe('/stream', fetcher('/stream', 60_000), throwing);
  await waitFor('the first chunk', () => early.text === 'AAAA', 10_000, 5);

  // A late joiner is brought up to date at once: head and the chunk so far.
  const s2 = cache.subscribe('/stream', fetcher('/stream', 60_000), late);
  assert.equal(s2.result, 'coalesced');
  assert.equal(late.head_?.status, 200);
  assert.equal(late.text, 'AAAA');
  assert.equal(late.ended, false);

  g1.open();
  await waitFor('the second chunk', () => early.text === 'AAAABBBB' && late.text === 'AAAABBBB', 10_000, 5);
  assert.equal(early.ended || late.ended, false, 'chunks flow before the body is complete');
  g2.open();
  await waitFor('the end', () => early.ended && late.ended, 10_000, 5);
  assert.equal(early.text, 'AAAABBBBCCCC');
  assert.equal(late.text, 'AAAABBBBCCCC');
  assert.equal(early.err, undefined);
  assert.equal(count('/stream'), 1);
  assert.equal(cache.lookup('/stream')?.body.toString(), 'AAAABBBBCCCC');
});

test('a subscriber going away does not cancel the shared fetch', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const path = '/slow/cancel';
  const g = gate();
  gates.set(path, g);
  const leaver = new Recorder();
  const stayer = new Recorder();
  const sub = cache.subscribe(path, fetcher(path, 60_000), leaver);
  cache.subscribe(path, fetcher(path, 60_000), stayer);
  await waitFor('the origin request', () => count(path) === 1, 10_000, 5);
  sub.cancel();
  g.open();
  await waitFor('the stayer to finish', () => stayer.ended, 10_000, 5);
  assert.equal(stayer.text, `body of ${path}`);
  assert.equal(leaver.ended, false);
  assert.equal(leaver.head_, undefined);
  assert.ok(cache.lookup(path));
  assert.equal(count(path), 1);
});

test('the byte bound holds under churn of many keys', async () => {
  const maxBytes = 64 * 1024;
  const cache = new CoalescingCache({ maxBytes });
  let maxSeen = 0;
  for (let batch = 0; batch < 30; batch++) {
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const n = batch * 10 + i;
        const path = `/obj/${n}?size=${1000 + ((n * 7919) % 9000)}`;
        const e = await cache.get(path, fetcher(path, 60_000));
        assert.equal(e.status, 200);
        maxSeen = Math.max(maxSeen, cache.bytes);
        assert.ok(cache.bytes <= maxBytes, `cache holds ${cache.bytes} > ${maxBytes}`);
      }),
    );
  }
  // Too big to store at all: served, never stored, budget intact.
  const huge = '/obj/huge?size=100000';
  assert.equal((await cache.get(huge, fetcher(huge, 60_000))).body.length, 100_000);
  assert.equal(cache.lookup(huge), undefined);
  assert.ok(cache.bytes <= maxBytes);
  assert.ok(maxSeen > maxBytes / 2, `cache should fill up (max ${maxSeen})`);
  assert.ok(cache.entries < 300, 'old entries were evicted');
  assert.equal(cache.lookup('/obj/0?size=1000'), undefined, 'the oldest key was evicted');
  const newest = '/obj/299?size=' + (1000 + ((299 * 7919) % 9000));
  assert.ok(cache.lookup(newest), 'the newest key is kept');
});

test('expired entries are fetched again', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const path = '/obj/ttl?size=10';
  await cache.get(path, fetcher(path, 150));
  await cache.get(path, fetcher(path, 150));
  assert.equal(count('/obj/ttl'), 1);
  assert.equal(cache.hits, 1);
  await delay(300); // let the 150 ms TTL run out
  assert.equal(cache.lookup(path), undefined);
  await cache.get(path, fetcher(path, 150));
  assert.equal(count('/obj/ttl'), 2);
});

test('404s are stored only for the negative TTL; uncacheable TTLs are not stored', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20, negativeTtlMs: 150 });
  const e = await cache.get('/missing', fetcher('/missing', 60_000));
  assert.equal(e.status, 404);
  assert.equal(cache.lookup('/missing')?.ttlMs, 150);
  await delay(300);
  await cache.get('/missing', fetcher('/missing', 60_000));
  assert.equal(count('/missing'), 2);

  await cache.get('/obj/nostore?size=5', fetcher('/obj/nostore?size=5', 0));
  assert.equal(cache.lookup('/obj/nostore?size=5'), undefined);
});

test('errors reach every joiner and are not cached', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const path = '/fail/1';
  const g = gate();
  gates.set(path, g);
  const all = Array.from({ length: 50 }, () => cache.get(path, fetcher(path, 60_000)));
  await waitFor('the origin request', () => count(path) === 1, 10_000, 5);
  g.open();
  const results = await Promise.allSettled(all);
  assert.ok(results.every((r) => r.status === 'rejected'));
  assert.equal(count(path), 1);
  assert.equal(cache.lookup(path), undefined);
  assert.equal(cache.inFlight, 0);
  gates.delete(path);
  await assert.rejects(cache.get(path, fetcher(path, 60_000)));
  assert.equal(count(path), 2, 'the failure was not cached');

  // Failing mid-body: joiners got the head and some bytes, then the error.
  const mg = gate();
  gates.set('/midfail', mg);
  const a = new Recorder();
  const b = new Recorder();
  cache.subscribe('/midfail', fetcher('/midfail', 60_000), a);
  await waitFor('the partial body', () => a.text === 'partial', 10_000, 5);
  cache.subscribe('/midfail', fetcher('/midfail', 60_000), b);
  mg.open();
  await waitFor('the errors', () => a.err !== undefined && b.err !== undefined, 10_000, 5);
  assert.equal(b.text, 'partial');
  assert.equal(a.ended || b.ended, false);
  assert.equal(cache.lookup('/midfail'), undefined);
});

test('clear() aborts fetches in flight and tells their subscribers', async () => {
  const cache = new CoalescingCache({ maxBytes: 1 << 20 });
  const path = '/slow/clear';
  const g = gate();
  gates.set(path, g);
  const r = new Recorder();
  cache.subscribe(path, fetcher(path, 60_000), r);
  await waitFor('the origin request', () => count(path) === 1, 10_000, 5);
  cache.clear();
  assert.ok(r.err);
  assert.equal(cache.inFlight, 0);
  g.open();
});
