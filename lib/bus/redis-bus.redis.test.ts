// Redis bus against a real redis-server: both channel modes, failure while Redis is down, recovery and re-subscription.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { createRedisBus } from './redis-bus.ts';
import { createMemoryBus } from './memory-bus.ts';
import { BusUnavailableError, type Bus } from './bus.ts';
import { createRedisPresence } from './redis-presence.ts';
import { createMemoryPresence } from './presence.ts';
import { waitFor } from '../../test/support/wait-for.ts';

const logger = pino({ level: 'silent' });
let redis: RedisTestServer;
const buses: Bus[] = [];

before(async () => {
  redis = await createRedisTestServer();
  await redis.start();
});
after(async () => {
  for (const b of buses) await b.stop();
  await redis?.stop();
});

for (const mode of ['pubsub', 'sharded'] as const) {
  test(`${mode}: a message published by one bus reaches every subscriber, the publisher's own included`, async () => {
    const a = createRedisBus({ url: redis.url, mode, logger });
    const b = createRedisBus({ url: redis.url, mode, logger });
    buses.push(a, b);
    await a.start();
    await b.start();
    const gotA: string[] = [];
    const gotB: string[] = [];
    await a.subscribe(`ch-${mode}`, (m) => gotA.push(m));
    const unsub = await b.subscribe(`ch-${mode}`, (m) => gotB.push(m));
    await a.publish(`ch-${mode}`, 'one');
    await waitFor('both got it', () => gotA.length === 1 && gotB.length === 1);
    await unsub();
    await a.publish(`ch-${mode}`, 'two');
    await waitFor('a got two', () => gotA.length === 2);
    assert.deepEqual(gotB, ['one'], 'unsubscribed handler gets nothing more');
  });
}

test('while Redis is down publish rejects with BusUnavailableError; after it returns, subscriptions work again', async () => {
  const bus = createRedisBus({ url: redis.url, mode: 'pubsub', logger });
  buses.push(bus);
  await bus.start();
  const states: boolean[] = [];
  bus.onStateChange((up) => states.push(up));
  const got: string[] = [];
  await bus.subscribe('resub', (m) => got.push(m));
  await redis.stop();
  await waitFor('bus down', () => !bus.isUp());
  await assert.rejects(bus.publish('resub', 'lost'), BusUnavailableError);
  await redis.start();
  await waitFor('bus up again', () => bus.isUp(), 20_000);
  // Re-subscription happens on reconnect; publish until it is seen.
  await waitFor(
    'message after recovery',
    () => {
      void bus.publish('resub', 'back').catch(() => undefined);
      return got.includes('back');
    },
    20_000,
  );
  assert.ok(!got.includes('lost'));
  assert.deepEqual(states.slice(0, 2), [false, true]);
});

test('memory bus delivers asynchronously, in order; stopped it rejects', async () => {
  const bus = createMemoryBus();
  const got: string[] = [];
  await bus.subscribe('c', (m) => got.push(m));
  const p1 = bus.publish('c', '1');
  const p2 = bus.publish('c', '2');
  assert.deepEqual(got, [], 'not delivered synchronously');
  await Promise.all([p1, p2]);
  await waitFor('delivered', () => got.length === 2);
  assert.deepEqual(got, ['1', '2']);
  await bus.stop();
  await assert.rejects(bus.publish('c', '3'), BusUnavailableError);
});

test('presence sums edges and forgets expired reports (Redis and in-process alike)', async () => {
  const bus = createRedisBus({ url: redis.url, mode: 'pubsub', logger });
  buses.push(bus);
  await bus.start();
  for (const p of [createRedisPresence(bus.commands), createMemoryPresence()]) {
    assert.equal(await p.report('ev1', 'e1', 3, 10_000), 3);
    assert.equal(await p.report('ev1', 'e2', 4, 150), 7);
    await new Promise((r) => setTimeout(r, 300)); // let e2's report expire (expiry is what is under test)
    assert.equal(await p.report('ev1', 'e1', 3, 10_000), 3);
    assert.equal(await p.report('ev1', 'e1', 0, 10_000), 0);
  }
});
