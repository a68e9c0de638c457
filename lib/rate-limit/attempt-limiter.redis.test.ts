// Attempt limiter: the in-process and the Redis Lua implementation reserve before the work, atomically.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryAttemptLimiter, createRedisAttemptLimiter, type AttemptLimiter } from './attempt-limiter.ts';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { createRedisClient, type RedisClient } from '../bus/redis-connection.ts';

let redis: RedisTestServer;
let client: RedisClient;
before(async () => {
  redis = await createRedisTestServer();
  await redis.start();
  client = createRedisClient(redis.url, { offlineQueue: false, connectionName: 'test' });
  await client.connect();
});
after(async () => {
  client?.disconnect();
  await redis?.stop();
});

const kinds: [string, () => AttemptLimiter][] = [
  ['memory', () => createMemoryAttemptLimiter()],
  ['redis', () => createRedisAttemptLimiter(client, `t${Math.random()}:`)],
];

for (const [name, make] of kinds) {
  test(`${name}: 30 parallel reservations, at most max pass; all or none across keys; release gives one back`, async () => {
    const l = make();
    const acct = { key: '{ip}:acct', max: 5 };
    const addr = { key: '{ip}:addr', max: 50 };
    const results = await Promise.all(Array.from({ length: 30 }, () => l.reserve([acct, addr], 60_000)));
    assert.equal(results.filter((r) => r.allowed).length, 5);
    for (const r of results.filter((x) => !x.allowed))
      assert.ok(r.retryAfterMs > 50_000 && r.retryAfterMs <= 60_000, `retry after ${r.retryAfterMs}`);
    // The refused ones took nothing from the address counter: 45 more attempts fit there for other accounts.
    const others = await Promise.all(
      Array.from({ length: 50 }, (_, i) => l.reserve([{ key: `{ip}:acct${i % 10}`, max: 5 }, addr], 60_000)),
    );
    assert.equal(others.filter((r) => r.allowed).length, 45);
    await l.release([acct.key]);
    assert.equal((await l.reserve([acct], 60_000)).allowed, true, 'a released reservation is free again');
    assert.equal((await l.reserve([acct], 60_000)).allowed, false);
    await l.reset(acct.key);
    assert.equal((await l.reserve([acct], 60_000)).allowed, true, 'reset forgets the attempts');
  });
}

test('memory: the window ends, and the count starts again', async () => {
  let now = 0;
  const l = createMemoryAttemptLimiter({ now: () => now });
  const k = { key: 'k', max: 2 };
  assert.equal((await l.reserve([k], 1000)).allowed, true);
  now = 500;
  assert.equal((await l.reserve([k], 1000)).allowed, true);
  const refused = await l.reserve([k], 1000);
  assert.deepEqual(refused, { allowed: false, retryAfterMs: 500 });
  now = 1000;
  assert.equal((await l.reserve([k], 1000)).allowed, true);
});

test('redis: counters expire with their window', async () => {
  const l = createRedisAttemptLimiter(client, 'exp:');
  await l.reserve([{ key: 'w', max: 1 }], 10_000);
  const ttl = await client.pttl('exp:w');
  assert.ok(ttl > 9_000 && ttl <= 10_000, `ttl ${ttl}`);
});
