// Token buckets: the in-process and the Redis Lua implementation obey the same rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryRateLimiter, type RateLimiter } from './token-bucket.ts';
import { createRedisRateLimiter } from './redis-token-bucket.ts';
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

const kinds: [string, () => RateLimiter][] = [
  ['memory', () => createMemoryRateLimiter()],
  ['redis', () => createRedisRateLimiter(client, `t${Math.random()}:`)],
];

for (const [name, make] of kinds) {
  test(`${name}: burst, then refusal with retry-after; all-or-nothing across buckets`, async () => {
    const l = make();
    const viewer = { key: '{e}:v', capacity: 3, refillPerSec: 0.5 };
    const ip = { key: '{e}:ip', capacity: 4, refillPerSec: 0.5 };
    for (let i = 0; i < 3; i++) assert.equal((await l.take([viewer, ip])).allowed, true, `take ${i}`);
    const r = await l.take([viewer, ip]);
    assert.equal(r.allowed, false);
    assert.equal(r.blockedBy, 0);
    assert.ok(r.retryAfterMs > 1000 && r.retryAfterMs <= 2000, `retry after ${r.retryAfterMs}`);
    // The refused call took nothing from the IP bucket: one token is still there for another viewer.
    const other = { key: '{e}:v2', capacity: 3, refillPerSec: 0.5 };
    assert.equal((await l.take([other, ip])).allowed, true);
    const r2 = await l.take([other, ip]);
    assert.equal(r2.allowed, false);
    assert.equal(r2.blockedBy, 1, 'now the IP bucket is the one that ran out');
  });
}

test('memory: tokens refill over time', async () => {
  let now = 0;
  const l = createMemoryRateLimiter({ now: () => now });
  const b = { key: 'k', capacity: 2, refillPerSec: 1 };
  await l.take([b]);
  await l.take([b]);
  assert.equal((await l.take([b])).allowed, false);
  now += 1000;
  assert.equal((await l.take([b])).allowed, true);
  assert.equal((await l.take([b])).allowed, false);
});
