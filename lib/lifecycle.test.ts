import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceGroup, service, type Service } from './lifecycle.ts';

/** A service that records its calls in `log`; `fail` makes its start reject. */
function probe(name: string, log: string[], fail = false): Service {
  return service(
    async () => {
      log.push(`start ${name}`);
      if (fail) throw new Error(`${name} cannot start`);
    },
    async () => {
      log.push(`stop ${name}`);
    },
  );
}

test('starts in order, stops in reverse, once', async () => {
  const log: string[] = [];
  const g = new ServiceGroup();
  g.add('a', probe('a', log));
  g.add('b', probe('b', log));
  await g.start();
  assert.equal(g.signal.aborted, false);
  await g.stop();
  await g.stop();
  assert.deepEqual(log, ['start a', 'start b', 'stop b', 'stop a']);
  assert.equal(g.signal.aborted, true);
  assert.throws(() => g.add('c', probe('c', log)), /already started/);
});

test('a failed start stops only what started, and names the failed service', async () => {
  const log: string[] = [];
  const g = new ServiceGroup();
  g.add('a', probe('a', log));
  g.add('http', probe('http', log, true));
  g.add('c', probe('c', log));
  await assert.rejects(g.start(), (err: Error) => err.message === 'http: http cannot start' && err.cause instanceof Error);
  assert.deepEqual(log, ['start a', 'start http', 'stop a']);
});

test('stop failures are reported and the rest still stop; groups nest', async () => {
  const log: string[] = [];
  const errors: string[] = [];
  const inner = new ServiceGroup();
  inner.add('x', probe('x', log));
  const g = new ServiceGroup((name, err) => errors.push(`${name}: ${(err as Error).message}`));
  g.add('a', probe('a', log));
  g.add(
    'bad',
    service(
      async () => {},
      async () => {
        throw new Error('boom');
      },
    ),
  );
  g.add('inner', inner);
  await g.start();
  await g.stop();
  assert.deepEqual(log, ['start a', 'start x', 'stop x', 'stop a']);
  assert.deepEqual(errors, ['bad: boom']);
});

test('stop during a start stops the service that was starting too; a parent abort reaches the children', async () => {
  const log: string[] = [];
  let release!: () => void;
  const g = new ServiceGroup();
  g.add('a', probe('a', log));
  g.add(
    'slow',
    service(
      async () => {
        log.push('start slow');
        await new Promise<void>((r) => (release = r));
      },
      async () => {
        log.push('stop slow');
      },
    ),
  );
  g.add('never', probe('never', log));
  const parent = new AbortController();
  const started = g.start(parent.signal);
  await new Promise((r) => setImmediate(r));
  parent.abort();
  assert.equal(g.signal.aborted, true);
  const stopped = g.stop();
  release();
  await assert.rejects(started, /aborted during slow/);
  await stopped;
  assert.deepEqual(log, ['start a', 'start slow', 'stop a', 'stop slow']);
});
