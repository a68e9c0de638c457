// The composition root: which services each role builds, in which order, and that a start failing half-way leaves
// nothing running. Real components throughout (ports 0 on loopback, SQLite in a temp dir, ffmpeg checked, never run).
import { createHook } from 'node:async_hooks';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createIngests } from '../ingest/ingests.ts';
import { createHlsEdge } from '../edge/hls-edge.ts';
import { composeNode } from './compose.ts';
import { RoleConfigError } from './roles.ts';

const logger = createLogger('silent');

function configFor(dataDir: string, env: Record<string, string> = {}) {
  return loadConfig({
    ONAIR_HOST: '127.0.0.1',
    ONAIR_HTTP_PORT: '0',
    ONAIR_RTMP_PORT: '0',
    ONAIR_SRT_PORT: '0',
    ONAIR_DATA_DIR: dataDir,
    ...env,
  });
}

/** A port held by someone else on 127.0.0.1. */
async function takenPort(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/**
 * The resources keeping the event loop alive, as a sorted list of their kinds. One-shot file-system requests (an
 * earlier module's pending read) finish on their own and hold nothing: they are left out, or they blur the comparison.
 */
const activeResources = () =>
  process
    .getActiveResourcesInfo()
    .filter((kind) => !kind.startsWith('FSReq'))
    .sort();

async function withDataDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'onair-compose-'));
  try {
    await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// First in the file: no earlier test's sockets or timers blur the before/after comparison.
test('all-in-one with its HTTP port taken: start rejects naming the port, and nothing keeps running (store closed, no chat timers)', async () => {
  await withDataDir(async (dir) => {
    const taken = await takenPort();
    try {
      const node = composeNode(configFor(dir, { ONAIR_HTTP_PORT: String(taken.port) }), logger);
      const before = activeResources();
      await assert.rejects(node.start(), (err: Error) => {
        assert.match(err.message, new RegExp(`HTTP server cannot listen on 127\\.0\\.0\\.1:${taken.port}: port already in use`));
        return true;
      });
      // Closed handles leave libuv's list on a later turn of the loop: give it a few turns, never a fixed sleep.
      for (let i = 0; i < 20 && activeResources().join() !== before.join(); i++) await new Promise((r) => setImmediate(r));
      assert.deepEqual(activeResources(), before, 'every socket, timer and child started on the way was released');
      // SQLite removes the WAL file when its last connection closes: the store is closed, not left to the GC.
      assert.ok(existsSync(join(dir, 'onair.sqlite')), 'the store was opened');
      assert.ok(!existsSync(join(dir, 'onair.sqlite-wal')), 'the store was closed');
      await node.stop(); // a second stop is harmless
    } finally {
      await new Promise((resolve) => taken.server.close(resolve));
    }
  });
});

test('all-in-one: every role on one port, started in dependency order and stopped in reverse', async () => {
  await withDataDir(async (dir) => {
    const before = activeResources();
    const node = composeNode(configFor(dir), logger);
    assert.deepEqual(node.services, ['ffmpeg check', 'store', 'all-in-one'], 'store-built services are listed once it is open');
    assert.deepEqual(activeResources(), before, 'building starts nothing');
    await node.start();
    try {
      assert.deepEqual(node.services, [
        'ffmpeg check',
        'store',
        'all-in-one',
        'all-in-one/offline sweep',
        'all-in-one/origin',
        'all-in-one/whip',
        'all-in-one/whep',
        'all-in-one/hls edge',
        'all-in-one/chat bus',
        'all-in-one/ingest commands',
        'all-in-one/origin commands',
        'all-in-one/control',
        'all-in-one/http',
        'all-in-one/chat gateway',
        'all-in-one/rtmp',
        'all-in-one/srt',
      ]);
      assert.notEqual(node.httpPort, 0);
      assert.notEqual(node.rtmpPort, 0);
      assert.ok(node.srtPort !== undefined && node.srtPort !== 0);
      const health = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`, { headers: { connection: 'close' } });
      assert.deepEqual(await health.json(), { status: 'ok', role: 'all' });
    } finally {
      await node.stop();
    }
    assert.ok(!existsSync(join(dir, 'onair.sqlite-wal')), 'the store was closed');
  });
});

test('origin role: store, origin, ingests and the HTTP port; the RTMP port taken stops everything that had started', async () => {
  await withDataDir(async (dir) => {
    const taken = await takenPort();
    try {
      const node = composeNode(configFor(dir, { ONAIR_ROLE: 'ingest,origin', ONAIR_RTMP_PORT: String(taken.port) }), logger);
      await assert.rejects(node.start(), new RegExp(`RTMP ingest cannot listen on 127\\.0\\.0\\.1:${taken.port}: port already in use`));
      assert.deepEqual(node.services, [
        'ffmpeg check',
        'store',
        'origin role',
        'origin role/origin',
        'origin role/whip',
        'origin role/http',
        'origin role/rtmp',
        'origin role/srt',
      ]);
      assert.ok(!existsSync(join(dir, 'onair.sqlite-wal')), 'the store was closed');
      // The HTTP port had been bound before the RTMP one failed: it is free again.
      const again = composeNode(configFor(dir, { ONAIR_ROLE: 'ingest,origin' }), logger);
      await again.start();
      try {
        assert.match(again.originUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
        const health = await fetch(`http://127.0.0.1:${again.httpPort}/healthz`, { headers: { connection: 'close' } });
        assert.equal(((await health.json()) as { role: string }).role, 'ingest,origin');
      } finally {
        await again.stop();
      }
    } finally {
      await new Promise((resolve) => taken.server.close(resolve));
    }
  });
});

test('edge role: the HLS edge, then its HTTP port (no store, no chat without Redis and PostgreSQL)', async () => {
  const node = composeNode(
    loadConfig(
      { ONAIR_HOST: '127.0.0.1', ONAIR_HTTP_PORT: '0', ONAIR_ROLE: 'edge', ONAIR_EDGE_WORKERS: '1' },
      { originUrls: ['http://127.0.0.1:9'] },
    ),
    logger,
  );
  assert.deepEqual(node.services, ['hls edge', 'http']);
  await node.start();
  try {
    const health = await fetch(`http://127.0.0.1:${node.httpPort}/healthz`, { headers: { connection: 'close' } });
    const body = (await health.json()) as { role: string; chat: boolean };
    assert.equal(body.role, 'edge');
    assert.equal(body.chat, false);
  } finally {
    await node.stop();
  }
});

test('edge role without an origin, or with chat but no shared secret: a configuration error before anything is built', () => {
  assert.throws(() => composeNode(loadConfig({ ONAIR_ROLE: 'edge' }), logger), RoleConfigError);
  const chatEdge = { ONAIR_ROLE: 'edge', ONAIR_REDIS_URL: 'redis://127.0.0.1:1', ONAIR_DATABASE_URL: 'postgres://127.0.0.1:1/onair' };
  assert.throws(() => composeNode(loadConfig(chatEdge, { originUrls: ['http://127.0.0.1:9'] }), logger), /ONAIR_VIEWER_TOKEN_SECRET/);
  // With the secret: the store, the chat bus built from it, the port, then the gateway (which stops before the port closes).
  const secret = { ONAIR_VIEWER_TOKEN_SECRET: 'x'.repeat(32), ONAIR_EDGE_WORKERS: '1' };
  const node = composeNode(loadConfig({ ...chatEdge, ...secret }, { originUrls: ['http://127.0.0.1:9'] }), logger);
  assert.deepEqual(node.services, ['hls edge', 'store', 'chat', 'http', 'chat gateway']);
});

test('building starts nothing: no timer, socket, child process or probe until start()', async () => {
  // Every async resource created while building, unref'd timers included (getActiveResourcesInfo omits those).
  const created: string[] = [];
  // Not counted: promises, and the event-loop-delay sampler of each metrics registry's default metrics (prom-client).
  const hook = createHook({ init: (_id, type) => void (type !== 'PROMISE' && type !== 'ELDHISTOGRAM' && created.push(type)) });
  const build = (what: string, fn: () => void) => {
    hook.enable();
    try {
      fn();
    } finally {
      hook.disable();
    }
    assert.deepEqual(created.splice(0), [], what);
  };
  const config = loadConfig(
    { ONAIR_HOST: '127.0.0.1', ONAIR_HTTP_PORT: '0', ONAIR_RTMP_PORT: '0', ONAIR_EDGE_WORKERS: '1' },
    { originUrls: ['http://127.0.0.1:9'] },
  );
  const deps = {
    config,
    logger,
    registry: createMetricsRegistry(),
    authorize: async () => undefined,
    feeds: { open: () => assert.fail('no feed') },
  };
  build('createIngests', () => void createIngests(deps));
  build(
    'createHlsEdge',
    () => void createHlsEdge({ config, logger, registry: createMetricsRegistry(), upstreams: ['http://127.0.0.1:9'] }),
  );
  build('the edge role', () => void composeNode({ ...config, role: ['edge'] }, logger));
  await withDataDir(async (dir) => {
    build('the all-in-one role', () => void composeNode(configFor(dir), logger));
    build('the ingest,origin roles', () => void composeNode(configFor(dir, { ONAIR_ROLE: 'ingest,origin' }), logger));
  });
});
