// Placement cache over real placements in a real redis-server: coalesced misses, TTLs (positive and negative), changes
// from another process applied at once, late changes ignored, bounded size, and stale-if-error while Redis is stopped.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { createRedisBus } from '../bus/redis-bus.ts';
import { createRedisClient, type RedisClient } from '../bus/redis-connection.ts';
import type { Bus } from '../bus/bus.ts';
import { createOriginRegistry } from './origin-registry.ts';
import { createPlacements } from './placements.ts';
import { createPlacementCache, type PlacementCacheDeps } from './placement-cache.ts';
import type { Placement, Placements } from './types.ts';

const logger = pino({ level: 'silent' });
let server: RedisTestServer;
const clients: RedisClient[] = [];
const buses: Bus[] = [];
let clock = 1_000_000;
const now = () => clock;
const signal = new AbortController().signal;

async function client(): Promise<RedisClient> {
  const c = createRedisClient(server.url, { offlineQueue: false, connectionName: 'placement-cache-test' });
  c.on('error', () => undefined);
  clients.push(c);
  await c.connect();
  return c;
}

/** One process's placements (own command connection, own bus), with its Redis reads counted. */
async function node() {
  const redis = await client();
  const bus = createRedisBus({ url: server.url, mode: 'pubsub', logger });
  buses.push(bus);
  await bus.start();
  const registry = createOriginRegistry(redis, { ttlMs: 60_000 });
  const placements = createPlacements({ redis, bus, registry, logger });
  await placements.start(signal);
  const counted = {
    reads: 0,
    get(id: string) {
      counted.reads++;
      return placements.get(id);
    },
    onChange: (l: Parameters<Placements['onChange']>[0]) => placements.onChange(l),
  };
  return { redis, registry, placements, counted };
}

async function cacheOn(source: PlacementCacheDeps['placements'], opts: Partial<PlacementCacheDeps> = {}) {
  const cache = createPlacementCache({ placements: source, now, ...opts });
  await cache.start(signal);
  return cache;
}

before(async () => {
  server = await createRedisTestServer();
  await server.start();
});
beforeEach(async () => {
  await (await client()).flushall();
});
after(async () => {
  for (const b of buses) await b.stop();
  for (const c of clients) c.disconnect();
  await server?.stop();
});

test('concurrent misses share one read; hits are served until the TTL, then read again', async () => {
  const { registry, placements, counted } = await node();
  await registry.heartbeat({ id: 'o', url: 'http://o.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  const p = await placements.place('ev', { ingest: 'i', replicas: 1 });
  const cache = await cacheOn(counted);
  const all = await Promise.all(Array.from({ length: 50 }, () => cache.get('ev')));
  assert.equal(counted.reads, 1, 'one Redis read for 50 concurrent misses');
  assert.ok(all.every((x) => x?.epoch === p.epoch));
  clock += 1999;
  assert.deepEqual(await cache.get('ev'), p);
  assert.equal(counted.reads, 1, 'a hit within the TTL');
  clock += 1;
  assert.deepEqual(await cache.get('ev'), p);
  assert.equal(counted.reads, 2, 're-read after the TTL (2000 ms)');
});

test('"not live" is cached briefly, so a 404 flood costs one read per window', async () => {
  const { counted } = await node();
  const cache = await cacheOn(counted);
  for (let i = 0; i < 100; i++) assert.equal(await cache.get('nobody'), undefined);
  assert.equal(counted.reads, 1);
  clock += 499;
  await cache.get('nobody');
  assert.equal(counted.reads, 1);
  clock += 1;
  await cache.get('nobody');
  assert.equal(counted.reads, 2, 're-read after the negative TTL (500 ms)');
});

test('a change made by another process reaches the cache at once, without waiting for the TTL', async () => {
  const maker = await node();
  const watcher = await node();
  await maker.registry.heartbeat({ id: 'a', url: 'http://a.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  await maker.registry.heartbeat({ id: 'b', url: 'http://b.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  const cache = await cacheOn(watcher.counted);
  assert.equal(await cache.get('ev'), undefined, 'not live yet (cached as such)');

  const p = await maker.placements.place('ev', { ingest: 'i', replicas: 2 });
  await waitFor('placement seen', async () => (await cache.get('ev'))?.epoch === p.epoch);
  const r = await maker.placements.replace('ev', p.epoch, [p.origins[0]!.id]);
  await waitFor('replacement seen', async () => (await cache.get('ev'))?.epoch === r.epoch);
  assert.deepEqual(await cache.get('ev'), r);
  assert.equal(watcher.counted.reads, 1, 'no read needed: the clock never moved past a TTL');

  await maker.placements.release('ev', r.epoch);
  await waitFor('release seen', async () => (await cache.get('ev')) === undefined);
  assert.equal(watcher.counted.reads, 2, 'a release drops the entry; the next get reads Redis');
});

test('a late change carrying an older epoch does not replace a newer cached placement', async () => {
  const { registry, placements } = await node();
  await registry.heartbeat({ id: 'a', url: 'http://a.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  let push: ((id: string, p: Placement | undefined) => void) | undefined;
  const source = {
    get: (id: string) => placements.get(id),
    onChange: (l: (id: string, p: Placement | undefined) => void) => {
      push = l;
      return () => undefined;
    },
  };
  const cache = await cacheOn(source);
  const old = await placements.place('ev', { ingest: 'i', replicas: 1 });
  const cur = await placements.place('ev', { ingest: 'j', replicas: 1 });
  assert.deepEqual(await cache.get('ev'), cur);
  push!('ev', old);
  assert.deepEqual(await cache.get('ev'), cur, 'the older epoch is ignored');
  push!('unknown', cur);
  assert.equal(await cache.get('unknown'), undefined, 'an event not cached here is not added by the feed (Redis has none)');
});

test('the cache is bounded: the least recently used event is dropped', async () => {
  const { counted } = await node();
  const cache = await cacheOn(counted, { maxEntries: 2 });
  await cache.get('e1');
  await cache.get('e2');
  await cache.get('e1'); // e1 is now the most recent
  await cache.get('e3'); // drops e2
  assert.equal(counted.reads, 3);
  await cache.get('e1');
  assert.equal(counted.reads, 3, 'e1 kept');
  await cache.get('e2');
  assert.equal(counted.reads, 4, 'e2 was dropped');
});

test('Redis stopped: cached values are served while at most maxStaleMs old, then the error surfaces', async () => {
  const { registry, placements, counted } = await node();
  await registry.heartbeat({ id: 'a', url: 'http://a.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  const p = await placements.place('ev', { ingest: 'i', replicas: 1 });
  const cache = await cacheOn(counted, { maxStaleMs: 30_000 });
  assert.deepEqual(await cache.get('ev'), p);
  assert.equal(await cache.get('gone'), undefined);
  await server.stop();
  try {
    clock += 2_000;
    await assert.rejects(placements.get('ev'), 'Redis is really unreachable');
    const readsBefore = counted.reads;
    assert.deepEqual(await cache.get('ev'), p, 'stale, 2 s old');
    assert.ok(counted.reads > readsBefore, 'it did try Redis first');
    assert.equal(await cache.get('gone'), undefined, 'a stale "not live" too');
    clock += 28_000;
    assert.deepEqual(await cache.get('ev'), p, 'stale, 30 s old: still within maxStaleMs');
    clock += 1;
    await assert.rejects(cache.get('ev'), 'beyond maxStaleMs the read error surfaces');
    await assert.rejects(cache.get('never-seen'), 'nothing cached: the error surfaces at once');
  } finally {
    await server.start();
  }
  await waitFor(
    'redis back',
    async () =>
      (await placements
        .get('ev')
        .then(() => true)
        .catch(() => false)) || undefined,
  );
  assert.equal(await cache.get('ev'), undefined, 'the record went with the restarted Redis (no persistence)');
});

test('a read overtaken by a change does not put its older answer in the cache', async () => {
  const { registry, placements } = await node();
  await registry.heartbeat({ id: 'a', url: 'http://a.test', capacity: 4, liveEvents: 0, cpu: 0, updatedAtMs: 0 });
  let push: ((id: string, p: Placement | undefined) => void) | undefined;
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  let answered!: () => void;
  const hasAnswer = new Promise<void>((r) => (answered = r));
  const source = {
    // Reads Redis, then is held: its answer is old by the time it arrives.
    get: async (id: string) => {
      const v = await placements.get(id);
      answered();
      await gate;
      return v;
    },
    onChange: (l: (id: string, p: Placement | undefined) => void) => {
      push = l;
      return () => undefined;
    },
  };
  const cache = await cacheOn(source);
  const old = await placements.place('ev', { ingest: 'i', replicas: 1 });
  const slowRead = cache.get('ev');
  await hasAnswer; // the read has its (old) answer
  const cur = await placements.place('ev', { ingest: 'j', replicas: 1 });
  push!('ev', cur);
  open();
  assert.equal((await slowRead)?.epoch, cur.epoch, 'the waiting caller gets the newer value');
  assert.equal((await cache.get('ev'))?.epoch, cur.epoch, 'and the cache keeps it');
  assert.notEqual(old.epoch, cur.epoch);
});
