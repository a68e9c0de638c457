// Webhooks: signed deliveries reach a real HTTP receiver; a failing receiver is retried with backoff until it answers 2xx.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { openStore, type Db } from '../lib/store/db.ts';
import { listen, closeServer } from '../lib/http.ts';
import {
  createWebhooks,
  signWebhook,
  verifyWebhookSignature,
  SIGNATURE_HEADER,
  WebhookDestinationError,
  type Webhooks,
} from './webhooks.ts';
import { waitFor } from '../test/support/wait-for.ts';

let dir: string;
let db: Db;
let hooks: Webhooks;
let receiver: Server;
let url: string;
/** Per path: how many more requests answer 500 before 200. */
const failFirst = new Map<string, number>();
/** TCP connections the receiver accepted. */
let connections = 0;
const received: { path: string; body: string; signature: string | undefined; event: string | undefined; at: number }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'onair-webhooks-'));
  db = await openStore({ dataDir: dir });
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({
        path,
        body,
        signature: req.headers[SIGNATURE_HEADER] as string | undefined,
        event: req.headers['x-onair-event'] as string | undefined,
        at: Date.now(),
      });
      const left = failFirst.get(path) ?? 0;
      if (left > 0) failFirst.set(path, left - 1);
      res.writeHead(left > 0 ? 500 : 204).end();
    });
  });
  receiver.on('connection', () => connections++);
  url = `http://127.0.0.1:${await listen(receiver, 0, '127.0.0.1')}`;
  hooks = createWebhooks({
    db,
    // The receiver is on loopback, which webhooks refuse unless allowed.
    config: { webhookMaxAttempts: 3, webhookRetryBaseMs: 100, webhookTimeoutMs: 2000, webhookAllowCidrs: ['127.0.0.0/8'] },
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
  });
  await hooks.start();
});

after(async () => {
  await hooks?.stop();
  await closeServer(receiver);
  await db?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('signatures verify, and fail for another body, secret or an old timestamp', () => {
  const body = '{"a":1}';
  const now = 1_700_000_000;
  const sig = signWebhook('s3cret', now, body);
  assert.match(sig, /^t=1700000000,v1=[0-9a-f]{64}$/);
  assert.ok(verifyWebhookSignature('s3cret', sig, body, 300, now + 10));
  assert.ok(!verifyWebhookSignature('s3cret', sig, '{"a":2}', 300, now));
  assert.ok(!verifyWebhookSignature('other', sig, body, 300, now));
  assert.ok(!verifyWebhookSignature('s3cret', sig, body, 300, now + 301));
  assert.ok(!verifyWebhookSignature('s3cret', undefined, body));
});

test('subscribed receivers get signed JSON; others do not', async () => {
  const { webhook, secret } = await hooks.create({ url: `${url}/ok`, events: ['event.live', 'event.ended'] });
  await hooks.create({ url: `${url}/offline-only`, events: ['event.offline'] });
  await hooks.emit('event.live', { event: { id: 'ev1', title: 'T' } });
  const got = await waitFor('delivery', () => received.find((r) => r.path === '/ok'));
  assert.equal(got.event, 'event.live');
  assert.ok(verifyWebhookSignature(secret, got.signature, got.body), 'valid HMAC-SHA256 signature');
  const payload = JSON.parse(got.body) as { id: string; type: string; createdAt: string; data: { event: { id: string } } };
  assert.equal(payload.type, 'event.live');
  assert.equal(payload.data.event.id, 'ev1');
  const log = await waitFor('delivered log', async () => {
    const l = await hooks.deliveries(webhook.id);
    return l?.[0]?.status === 'delivered' ? l : undefined;
  });
  assert.equal(log[0]!.attempts, 1);
  assert.equal(log[0]!.lastStatusCode, 204);
  assert.equal(log[0]!.id, payload.id);
  assert.ok(!received.some((r) => r.path === '/offline-only'));
});

test('a failing receiver is retried with backoff until it succeeds; one that keeps failing is given up', async () => {
  failFirst.set('/flaky', 2);
  failFirst.set('/down', 100);
  const flaky = await hooks.create({ url: `${url}/flaky`, events: ['event.ended'] });
  const down = await hooks.create({ url: `${url}/down`, events: ['event.ended'] });
  await hooks.emit('event.ended', { event: { id: 'ev2' } });
  const log = await waitFor('flaky delivered', async () => {
    const l = await hooks.deliveries(flaky.webhook.id);
    return l?.[0]?.status === 'delivered' ? l : undefined;
  });
  assert.equal(log[0]!.attempts, 3);
  const tries = received.filter((r) => r.path === '/flaky');
  assert.equal(tries.length, 3);
  assert.equal(new Set(tries.map((t) => t.body)).size, 1, 'the same payload on every attempt');
  assert.ok(tries[2]!.at - tries[1]!.at >= tries[1]!.at - tries[0]!.at - 50, 'backoff grows');
  for (const t of tries) assert.ok(verifyWebhookSignature(flaky.secret, t.signature, t.body));
  const failed = await waitFor('down given up', async () => {
    const l = await hooks.deliveries(down.webhook.id);
    return l?.[0]?.status === 'failed' ? l : undefined;
  });
  assert.equal(failed[0]!.attempts, 3);
  assert.equal(failed[0]!.lastStatusCode, 500);
  assert.match(failed[0]!.lastError ?? '', /HTTP 500/);
});

test('an unreachable receiver is logged with the network error', async () => {
  const dead = await hooks.create({ url: 'http://127.0.0.1:9/nothing', events: ['event.offline'] });
  await hooks.emit('event.offline', { event: { id: 'ev3' } });
  const l = await waitFor('error logged', async () => {
    const x = await hooks.deliveries(dead.webhook.id);
    return x?.[0]?.lastError ? x : undefined;
  });
  assert.ok(l[0]!.lastError);
  assert.equal(l[0]!.lastStatusCode, null);
});

let storeCount = 0;
/**
 * Another service on a store of its own (so the main service never tries its deliveries), allowing `allow`, and
 * resolving names only through `names`: no test asks the system resolver or sends anywhere but loopback.
 */
async function guarded(allow: string[], names: Record<string, string>): Promise<Webhooks & { db: Db }> {
  const own = await openStore({ dataDir: join(dir, `guarded-${++storeCount}`) });
  const w = createWebhooks({
    db: own,
    config: { webhookMaxAttempts: 3, webhookRetryBaseMs: 100, webhookTimeoutMs: 2000, webhookAllowCidrs: allow },
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    resolve: async (host) => {
      const address = names[host];
      if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return [{ address, family: address.includes(':') ? 6 : 4 }];
    },
  });
  await w.start();
  return {
    ...w,
    db: own,
    async stop() {
      await w.stop();
      await own.destroy();
    },
  };
}

test('creation refuses localhost and loopback, link-local, private, CGNAT and mapped literals unless allowed', async () => {
  const w = await guarded([], {});
  try {
    for (const bad of [
      'http://127.0.0.1/h',
      'http://127.1.2.3:8080/h',
      'http://169.254.169.254/latest/meta-data',
      'http://10.1.2.3/h',
      'http://172.16.0.1/h',
      'http://192.168.1.1/h',
      'http://100.64.0.1/h',
      'http://0.0.0.0/h',
      'http://224.0.0.1/h',
      'http://[::1]/h',
      'http://[::ffff:127.0.0.1]/h',
      'http://[::ffff:a9fe:a9fe]/h',
      'http://[fd00::1]/h',
      'http://[fe80::1]/h',
      'http://localhost:8080/h',
      'http://localhost./h',
      'http://api.localhost/h',
      'http://2130706433/h',
    ]) {
      await assert.rejects(w.create({ url: bad }), WebhookDestinationError, bad);
    }
    // Public literals and names are accepted at creation (names are checked when sending). Nothing is sent here.
    const ok = await w.create({ url: 'http://93.184.215.14/h', events: ['recording.ready'] });
    await w.remove(ok.webhook.id);
    const named = await w.create({ url: 'https://hooks.example.com/h', events: ['recording.ready'] });
    await w.remove(named.webhook.id);
  } finally {
    await w.stop();
  }
  const allowed = await guarded(['127.0.0.0/8'], {});
  try {
    const made = await allowed.create({ url: 'http://127.0.0.1:9/h', events: ['recording.ready'] });
    await allowed.remove(made.webhook.id);
  } finally {
    await allowed.stop();
  }
});

test('a name resolving to loopback is refused at send time, with no connection to the receiver; allowed by 127.0.0.0/8', async () => {
  const port = new URL(url).port;
  const names = { 'hooks.example.test': '127.0.0.1' };
  const w = await guarded([], names);
  try {
    const hook = await w.create({ url: `http://hooks.example.test:${port}/rebind`, events: ['recording.ready'] });
    const before = connections;
    await w.emit('recording.ready', { n: 1 });
    const log = await waitFor('blocked delivery', async () => {
      const l = await w.deliveries(hook.webhook.id);
      return l?.[0]?.status === 'failed' ? l : undefined;
    });
    assert.equal(log[0]!.attempts, 1, 'failed at once, not retried');
    assert.equal(log[0]!.lastStatusCode, null);
    assert.match(log[0]!.lastError ?? '', /blocked: hooks\.example\.test resolves to 127\.0\.0\.1 is a loopback address/);
    assert.equal(connections, before, 'no connection reached the receiver');
    assert.ok(!received.some((r) => r.path === '/rebind'));
  } finally {
    await w.stop();
  }

  const allowed = await guarded(['127.0.0.0/8'], names);
  try {
    const hook = await allowed.create({ url: `http://hooks.example.test:${port}/allowed`, events: ['recording.ready'] });
    await allowed.emit('recording.ready', { n: 2 });
    const got = await waitFor('delivery through the allowed name', () => received.find((r) => r.path === '/allowed'));
    assert.ok(got);
    await waitFor('delivered', async () => ((await allowed.deliveries(hook.webhook.id))?.[0]?.status === 'delivered' ? true : undefined));
  } finally {
    await allowed.stop();
  }
});
