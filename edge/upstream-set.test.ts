// Tests of the edge's origin set: failover order, health by outcome and by probe, and its start/stop lifecycle,
// against real loopback HTTP servers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../test/support/free-port.ts';
import { createLogger } from '../lib/logger.ts';
import { createUpstreamPool, createUpstreamSet, type UpstreamSet } from './upstream-set.ts';

const log = createLogger('silent');
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A loopback origin that answers every request 200 and counts its health probes. */
async function origin(): Promise<{ url: string; probes: () => number; server: Server }> {
  let probes = 0;
  const server = createServer((req, res) => {
    if (req.url?.endsWith('/healthz')) probes++;
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, probes: () => probes, server };
}

function set(urls: string[], probeIntervalMs = 60_000): UpstreamSet {
  const s = createUpstreamSet({ urls, timeoutMs: 500, longestRequestMs: 1_000, probeIntervalMs, logger: log });
  cleanups.push(() => s.stop());
  return s;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

test('each origin is named by its position and keeps its base path as prefix', () => {
  const s = set(['http://127.0.0.1:1/', 'http://127.0.0.1:2/base/path/']);
  assert.deepEqual(
    s.list.map((u) => [u.url, u.label, u.prefix]),
    [
      ['http://127.0.0.1:1/', 'origin-0', ''],
      ['http://127.0.0.1:2/base/path/', 'origin-1', '/base/path'],
    ],
  );
});

test('failover order: origins up first in configured order, then those down; markUp restores the order', () => {
  const s = set(['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3']);
  const [a, b, c] = s.list as [(typeof s.list)[0], (typeof s.list)[0], (typeof s.list)[0]];
  assert.deepEqual(s.ordered(), [a, b, c]);
  assert.equal(s.allDown(), false);
  s.markDown(a, 'test');
  assert.equal(a.down, true);
  assert.deepEqual(s.ordered(), [b, c, a]);
  s.markDown(c, 'test');
  assert.deepEqual(s.ordered(), [b, a, c]);
  s.markDown(b, 'test');
  assert.equal(s.allDown(), true);
  assert.deepEqual(s.ordered(), [a, b, c]);
  s.markUp(c);
  assert.equal(c.down, false);
  assert.equal(s.allDown(), false);
  assert.deepEqual(s.ordered(), [c, a, b]);
});

test('marking an origin down aborts the requests held on it only while another origin may answer them', () => {
  const s = set(['http://127.0.0.1:1', 'http://127.0.0.1:2']);
  const [a, b] = s.list as [(typeof s.list)[0], (typeof s.list)[0]];
  const heldOnA = a.downSignal;
  s.markDown(a, 'test');
  assert.equal(heldOnA.aborted, true, 'requests waiting on a move to b');
  assert.equal(a.downSignal.aborted, false, 'later requests to a get a fresh signal');
  s.markDown(a, 'again');
  assert.equal(a.downSignal.aborted, false, 'marking a down origin down again changes nothing');
  const heldOnB = b.downSignal;
  s.markDown(b, 'test');
  assert.equal(heldOnB.aborted, false, 'the last origin keeps its requests: there is nowhere to move them');
});

test('probing starts only with start(): a dead origin is marked down, a live one back up, and stop() ends it', async () => {
  const live = await origin();
  const dead = `http://127.0.0.1:${await freePort()}`;
  const s = set([live.url, dead], 20);
  const [up, down] = s.list as [(typeof s.list)[0], (typeof s.list)[0]];
  s.markDown(up, 'test');
  await delay(100); // absence of probes cannot be awaited; five intervals without one is the check
  assert.equal(live.probes(), 0, 'creating the set starts no probe');
  assert.equal(down.down, false);
  s.start();
  await waitFor(() => !up.down, 'the live origin to be probed back up');
  await waitFor(() => down.down, 'the dead origin to be probed down');
  assert.ok(live.probes() > 0);
  await s.stop();
  assert.equal(up.pool.destroyed, true, 'stop() closes the pools');
  const probesAtStop = live.probes();
  await delay(100);
  assert.equal(live.probes(), probesAtStop, 'no probe after stop()');
});

test('start() after stop() gives every origin a fresh pool that serves requests again', async () => {
  const live = await origin();
  const s = set([live.url]);
  const [u] = s.list as [(typeof s.list)[0]];
  s.start();
  await s.stop();
  assert.equal(u.pool.destroyed, true);
  s.start();
  assert.equal(u.pool.destroyed, false);
  const res = await u.pool.request({ path: '/x', method: 'GET' });
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'ok');
});

test('the pool learns origins on first use, probes them once started, and forgets those idle past idleMs', async () => {
  const live = await origin();
  const dead = `http://127.0.0.1:${await freePort()}`;
  let t = 0;
  const p = createUpstreamPool({ timeoutMs: 500, longestRequestMs: 1_000, probeIntervalMs: 20, idleMs: 1_000, logger: log, now: () => t });
  cleanups.push(() => p.stop());
  const u = p.get(live.url);
  assert.equal(p.get(live.url), u, 'one upstream per base URL');
  const d = p.get(dead);
  assert.equal(p.list.length, 2);
  p.start();
  await waitFor(() => d.down, 'the dead origin to be probed down');
  await waitFor(() => live.probes() > 0, 'the live origin to be probed');
  t = 900;
  p.get(live.url); // used lately: kept
  t = 1_500;
  await waitFor(() => p.list.length === 1, 'the idle origin to be forgotten');
  assert.equal(p.list[0], u);
  assert.equal(d.pool.destroyed, true, 'its connections are closed');
  await p.stop();
  assert.equal(p.list.length, 0);
  assert.equal(u.pool.destroyed, true);
});
