// Origin registry against a real redis-server: heartbeats, expiry within the TTL, removal, and the heartbeat service
// through a Redis outage (one warning, not one per beat) and its stop (unlisted at once).
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { createRedisClient, type RedisClient } from '../bus/redis-connection.ts';
import { createOriginRegistry, originHeartbeat, ORIGIN_IDS_KEY } from './origin-registry.ts';
import type { OriginInfo } from './types.ts';

let server: RedisTestServer;
const clients: RedisClient[] = [];

async function client(): Promise<RedisClient> {
  const c = createRedisClient(server.url, { offlineQueue: false, connectionName: 'placement-test' });
  c.on('error', () => undefined);
  clients.push(c);
  await c.connect();
  return c;
}

function info(id: string, extra: Partial<OriginInfo> = {}): OriginInfo {
  return { id, url: `http://${id}.test:8081`, capacity: 4, liveEvents: 1, cpu: 0.25, updatedAtMs: 0, ...extra };
}

before(async () => {
  server = await createRedisTestServer();
  await server.start();
});
beforeEach(async () => {
  const c = await client();
  await c.flushall();
});
after(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

test('a heartbeat lists the origin with its load, stamped with the clock; list is sorted by id', async () => {
  const registry = createOriginRegistry(await client(), { now: () => 1234 });
  await registry.heartbeat(info('o2', { liveEvents: 3, cpu: 0.5 }));
  await registry.heartbeat(info('o1'));
  assert.deepEqual(await registry.list(), [
    { ...info('o1'), updatedAtMs: 1234 },
    { ...info('o2', { liveEvents: 3, cpu: 0.5 }), updatedAtMs: 1234 },
  ]);
  await registry.heartbeat(info('o1', { liveEvents: 2 }));
  assert.equal((await registry.list()).find((o) => o.id === 'o1')?.liveEvents, 2, 'the latest beat wins');
});

test('an origin that stops beating leaves list() within the TTL, and its id is pruned from the index', async () => {
  const redis = await client();
  const registry = createOriginRegistry(redis, { ttlMs: 300 });
  await registry.heartbeat(info('dies'));
  await registry.heartbeat(info('lives'));
  const beatAt = Date.now();
  assert.deepEqual(
    (await registry.list()).map((o) => o.id),
    ['dies', 'lives'],
  );
  const keepAlive = setInterval(() => void registry.heartbeat(info('lives')).catch(() => undefined), 100);
  try {
    // Redis judges freshness by its own clock; the beat was written before beatAt, so at beatAt + ttl it has expired.
    await new Promise((r) => setTimeout(r, Math.max(0, beatAt + 300 + 10 - Date.now())));
    assert.deepEqual(
      (await registry.list()).map((o) => o.id),
      ['lives'],
    );
    assert.deepEqual(await redis.zrange(ORIGIN_IDS_KEY, '0', '-1'), ['lives'], 'the expired id is pruned');
  } finally {
    clearInterval(keepAlive);
  }
});

test('remove unlists at once', async () => {
  const registry = createOriginRegistry(await client(), { ttlMs: 60_000 });
  await registry.heartbeat(info('a'));
  await registry.heartbeat(info('b'));
  await registry.remove('a');
  assert.deepEqual(
    (await registry.list()).map((o) => o.id),
    ['b'],
  );
});

test('heartbeat service: beats at start and every interval, logs one warning per outage, unlists itself on stop', async () => {
  const lines: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const registry = createOriginRegistry(await client(), { ttlMs: 3000 });
  const reader = createOriginRegistry(await client());
  let live = 0;
  const hb = originHeartbeat({ registry, info: () => info('me', { liveEvents: live }), intervalMs: 50, logger });
  const ac = new AbortController();
  await hb.start(ac.signal);
  assert.deepEqual(
    (await reader.list()).map((o) => o.id),
    ['me'],
    'listed as soon as start resolves',
  );
  live = 3;
  await waitFor('load follows', async () => (await reader.list())[0]?.liveEvents === 3);

  await server.stop();
  await new Promise((r) => setTimeout(r, 600)); // a dozen failed beats
  const warnings = lines.filter((l) => l.level === 40);
  assert.equal(warnings.length, 1, `one warning for the outage, got ${JSON.stringify(lines)}`);
  assert.match(warnings[0]!.msg, /heartbeat failed/);
  await server.start();
  await waitFor('listed again', async () => (await reader.list().catch(() => [])).some((o) => o.id === 'me'), 20_000);
  await waitFor('recovery logged', () => lines.some((l) => l.level === 30 && /resumed/.test(l.msg)));
  assert.equal(lines.filter((l) => l.level === 40).length, 1, 'still one warning');

  ac.abort(); // the owner shutting down: the signal stops it first, then the group calls stop(), which waits for it
  await hb.stop();
  assert.deepEqual(await reader.list(), [], 'unlisted at once on stop, not after the TTL');
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(await reader.list(), [], 'no beat after stop');
  await hb.stop(); // idempotent
});
