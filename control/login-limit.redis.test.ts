// Login failure limit under parallel requests: the attempt is reserved before the password check, so of 30 parallel
// wrong logins for one account at most loginMaxFailures (5) reach the check (401) and the rest get 429; during the
// lock-out the right password is refused too. Over the in-process limiter and over Redis shared by two nodes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { listen, closeServer } from '../lib/http.ts';
import { createRedisTestServer, type RedisTestServer } from '../test/support/redis-test-server.ts';
import { createRedisClient, type RedisClient } from '../lib/bus/redis-connection.ts';
import { createRedisAttemptLimiter, type AttemptLimiter } from '../lib/rate-limit/attempt-limiter.ts';
import type { Db } from '../lib/store/db.ts';
import { EventService } from './events.ts';
import { createApiRouter } from './api.ts';
import { createControlPlane, type ControlPlane } from './control-plane.ts';

let store: TestStore;
let db: Db;
let redis: RedisTestServer;
let client: RedisClient;
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  store = await createTestStore('login-limit');
  db = await store.open();
  redis = await createRedisTestServer();
  await redis.start();
  client = createRedisClient(redis.url, { offlineQueue: false, connectionName: 'test' });
  await client.connect();
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  client?.disconnect();
  await redis?.stop();
  await store?.cleanup();
});

/** A node: a control plane over the shared store on its own HTTP port. */
async function node(loginLimiter?: AttemptLimiter): Promise<{ base: string; control: ControlPlane }> {
  const control = createControlPlane({
    config: configSchema.parse({ dataDir: store.dir }),
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    db,
    events: new EventService(db),
    viewerCount: () => undefined,
    ...(loginLimiter ? { loginLimiter } : {}),
  });
  await control.start();
  const server: Server = createServer(express().use('/api/v1', createApiRouter(control.router)));
  const base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  cleanups.push(async () => {
    await control.stop();
    await closeServer(server);
  });
  return { base, control };
}

const login = async (base: string, email: string, password: string) => {
  const res = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  return {
    status: res.status,
    code: ((await res.json()) as { error?: { code: string } }).error?.code,
    retryAfter: res.headers.get('retry-after'),
  };
};

async function parallelWrongLogins(bases: string[], email: string) {
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => login(bases[i % bases.length]!, email, `wrong-password-${i}`)));
  const checked = results.filter((r) => r.status === 401);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(checked.length + limited.length, 30, JSON.stringify(results));
  assert.ok(checked.length <= 5, `${checked.length} attempts reached the password check`);
  assert.equal(checked.length, 5, 'the first five are checked (and fail)');
  for (const r of limited) {
    assert.equal(r.code, 'rate_limited');
    assert.ok(Number(r.retryAfter) > 0);
  }
}

test('in-process limiter: 30 parallel wrong logins → 5 checked, 25 refused; the right password waits out the lock-out', async () => {
  const { base, control } = await node();
  await control.operators.create({ email: 'mem@example.com', role: 'admin', password: 'right-password-1' });
  await parallelWrongLogins([base], 'mem@example.com');
  assert.equal((await login(base, 'mem@example.com', 'right-password-1')).status, 429, 'locked out: the right password is refused too');
  // A successful login is not a failure: another account from the same address signs in repeatedly.
  await control.operators.create({ email: 'other@example.com', role: 'moderator', password: 'other-password-1' });
  for (let i = 0; i < 8; i++) assert.equal((await login(base, 'other@example.com', 'other-password-1')).status, 200, `success ${i}`);
});

test('Redis limiter shared by two nodes: 30 parallel wrong logins spread over both → 5 checked; both nodes refuse the right password', async () => {
  const a = await node(createRedisAttemptLimiter(client));
  const b = await node(createRedisAttemptLimiter(client));
  await a.control.operators.create({ email: 'redis@example.com', role: 'admin', password: 'right-password-2' });
  await parallelWrongLogins([a.base, b.base], 'redis@example.com');
  assert.equal((await login(a.base, 'redis@example.com', 'right-password-2')).status, 429);
  assert.equal((await login(b.base, 'redis@example.com', 'right-password-2')).status, 429);
  await a.control.operators.create({ email: 'fine@example.com', role: 'moderator', password: 'fine-password-2' });
  for (let i = 0; i < 8; i++)
    assert.equal((await login(i % 2 ? a.base : b.base, 'fine@example.com', 'fine-password-2')).status, 200, `success ${i}`);
});
