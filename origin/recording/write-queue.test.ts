import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Storage } from '../../lib/storage/storage.ts';
import { WriteQueue, type WriteQueueOptions } from './write-queue.ts';

const OPTS: WriteQueueOptions = { maxBytes: 1000, maxItems: 100, concurrency: 2, attempts: 3, retryBaseMs: 10, attemptTimeoutMs: 1000 };

/** A store whose put() is decided by `behave` (per call). */
function fakeStorage(behave: (key: string, n: number) => Promise<void>): Storage & { stored: string[]; calls: number } {
  const s = {
    kind: 'local' as const,
    where: 'fake',
    stored: [] as string[],
    calls: 0,
    async put(key: string) {
      s.calls++;
      await behave(key, s.calls);
      s.stored.push(key);
    },
    get: () => Promise.resolve(undefined),
    list: () => Promise.resolve([]),
    delete: () => Promise.resolve(),
    deletePrefix: () => Promise.resolve(0),
  };
  return s;
}

test('writes everything, a few at a time, calling done after each put', async () => {
  let inFlight = 0;
  let most = 0;
  const storage = fakeStorage(async () => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
  });
  const done: string[] = [];
  const q = new WriteQueue(storage, OPTS, () => assert.fail('must not fail'));
  for (let i = 0; i < 6; i++)
    assert.equal(
      q.enqueue(`k${i}`, Buffer.alloc(10), () => done.push(`k${i}`)),
      true,
    );
  await q.idle();
  assert.deepEqual(done.sort(), ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
  assert.equal(most, 2, 'concurrency');
  assert.equal(q.storedBytes, 60);
  assert.equal(q.pendingBytes, 0);
});

test('a failing put is retried with backoff; a put that recovers is stored', async () => {
  const storage = fakeStorage(async (_k, n) => {
    if (n < 3) throw new Error('503 Slow Down');
  });
  const q = new WriteQueue(storage, OPTS, () => assert.fail('must not fail'));
  q.enqueue('k', Buffer.alloc(1));
  await q.idle();
  assert.equal(storage.calls, 3);
  assert.deepEqual(storage.stored, ['k']);
});

test('a store that keeps failing fails the queue once, with the reason; later writes are refused', async () => {
  const storage = fakeStorage(async () => {
    throw new Error('ENOSPC: no space left on device');
  });
  const reasons: string[] = [];
  const q = new WriteQueue(storage, OPTS, (r) => reasons.push(r));
  q.enqueue('a', Buffer.alloc(1));
  q.enqueue('b', Buffer.alloc(1));
  await q.idle();
  assert.equal(reasons.length, 1);
  assert.match(reasons[0]!, /failed 3 times: ENOSPC: no space left on device/);
  assert.equal(q.failed, reasons[0]);
  assert.equal(q.enqueue('c', Buffer.alloc(1)), false);
  assert.equal(q.pendingBytes, 0);
  assert.equal(q.pendingItems, 0);
});

test('a slow store never makes enqueue wait: past the byte bound the queue fails instead of growing', async () => {
  const stalls: (() => void)[] = [];
  const storage = fakeStorage(() => new Promise<void>((resolve) => stalls.push(resolve)));
  const reasons: string[] = [];
  const q = new WriteQueue(storage, OPTS, (r) => reasons.push(r));
  const started = performance.now();
  let accepted = 0;
  for (let i = 0; i < 50; i++) if (q.enqueue(`k${i}`, Buffer.alloc(100))) accepted++;
  const tookMs = performance.now() - started;
  assert.ok(tookMs < 50, `enqueue took ${tookMs} ms`);
  assert.equal(accepted, 10, '1000 bytes of 100-byte objects');
  assert.match(reasons[0]!, /storage too slow: 10 writes \(1000 bytes\) still pending/);
  for (const s of stalls) s();
  await q.idle();
});

test('an attempt that never answers times out and counts as a failure', async () => {
  const storage = fakeStorage(() => new Promise<void>(() => {}));
  const reasons: string[] = [];
  const q = new WriteQueue(storage, { ...OPTS, attempts: 2, attemptTimeoutMs: 20 }, (r) => reasons.push(r));
  q.enqueue('k', Buffer.alloc(1));
  await q.idle();
  assert.match(reasons[0]!, /failed 2 times: no answer within 20 ms/);
});

test('paused: nothing is written until resume(); fail() drops what waits', async () => {
  const storage = fakeStorage(async () => {});
  const q = new WriteQueue(storage, OPTS, () => {}, true);
  q.enqueue('a', Buffer.alloc(1));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(storage.calls, 0);
  q.resume();
  await q.idle();
  assert.deepEqual(storage.stored, ['a']);
  const q2 = new WriteQueue(storage, OPTS, () => {}, true);
  q2.enqueue('b', Buffer.alloc(5));
  q2.fail('recording is off');
  assert.equal(q2.pendingBytes, 0);
  await q2.idle();
  assert.deepEqual(storage.stored, ['a']);
});
