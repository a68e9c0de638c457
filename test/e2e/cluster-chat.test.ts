// Cluster mode: a main node and a separate edge role (2 workers) sharing Redis and PostgreSQL. Viewers on the
// edge chat with viewers on the main node: comments both ways, stored once in the shared store, overlays for
// joiners read from it; a second main node starting on the store leaves the first one's live event live; an edge
// with chat but no shared token secret refuses to start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { createRedisTestServer, type RedisTestServer } from '../support/redis-test-server.ts';
import { startPostgresTestServer, type PostgresTestServer } from '../support/postgres-test-server.ts';
import { connectClient, until, type TestClient } from '../support/ws-test-client.ts';
import { openStore } from '../../lib/store/db.ts';
import { createLogger } from '../../lib/logger.ts';
import { OverlayService } from '../../control/overlays.ts';
import { createViewerSignals } from '../../chat/viewer-signals.ts';

let redis: RedisTestServer;
let postgres: PostgresTestServer;
let main: ServerUnderTest;
let edge: ServerUnderTest;
let shared: Record<string, string>;
let eventId: string;
const clients: TestClient[] = [];

before(async () => {
  redis = await createRedisTestServer();
  await redis.start();
  postgres = await startPostgresTestServer();
  shared = {
    REDIS_URL: redis.url,
    DATABASE_URL: await postgres.createDatabase('cluster'),
    ONAIR_VIEWER_TOKEN_SECRET: 'a-cluster-wide-secret-of-at-least-32-chars',
    ONAIR_WS_FLUSH_MS: '100',
  };
  main = await startServer(shared);
  edge = await startServer({ ...shared, ONAIR_ROLE: 'edge', ONAIR_EDGE_WORKERS: '2', ONAIR_ORIGIN_URLS: main.base });
  eventId = (JSON.parse(await main.cli(['event', 'create', '--title', 'Cluster chat', '--json'])) as { id: string }).id;
});

after(async () => {
  for (const c of clients) await c.close().catch(() => undefined);
  await edge?.stop();
  await main?.stop();
  await postgres?.stop();
  await redis?.stop();
});

async function viewer(node: ServerUnderTest, name: string): Promise<TestClient> {
  // Tokens come from the main node's API; the edge accepts them through the shared secret.
  const r = await fetch(`${main.base}/api/v1/viewers`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ displayName: name }),
  });
  assert.equal(r.status, 201);
  const { token } = (await r.json()) as { token: string };
  const c = await connectClient(`ws://127.0.0.1:${node.httpPort}/ws?event=${eventId}`, { token });
  clients.push(c);
  await c.waitFor((m) => m.type === 'welcome', 'welcome');
  return c;
}

test('the edge role hosts chat: comments cross between edge and main node, stored once in PostgreSQL', async () => {
  const health = (await (await fetch(`${edge.base}/healthz`)).json()) as { role: string; chat: boolean };
  assert.deepEqual([health.role, health.chat], ['edge', true]);
  const onEdge = await viewer(edge, 'Edda');
  const onMain = await viewer(main, 'Maya');
  onEdge.send({ type: 'comment', text: 'hello from the edge', ref: 'e1' });
  const ack = await onEdge.waitFor((m) => m.type === 'ack' && m.ref === 'e1', 'ack on the edge');
  await until('main viewer has the edge comment', () => onMain.comments().some((c) => c.text === 'hello from the edge'));
  onMain.send({ type: 'comment', text: 'hello from main', ref: 'm1' });
  await onMain.waitFor((m) => m.type === 'ack' && m.ref === 'm1', 'ack on main');
  await until('edge viewer has the main comment', () => onEdge.comments().some((c) => c.text === 'hello from main'));
  const stored = (await (await fetch(`${main.base}/api/v1/events/${eventId}/comments`)).json()) as {
    comments: { text: string; seq: number }[];
  };
  assert.deepEqual(
    stored.comments.map((c) => c.text),
    ['hello from the edge', 'hello from main'],
  );
  assert.equal(stored.comments[0]!.seq, ack.seq, 'the seq the edge acked is the stored one');
});

test('a viewer joining on the edge gets the overlays operators set, read from the shared store', async () => {
  // What the main node's control API does for an operator, through the same service on the shared database.
  const db = await openStore({ dataDir: main.dataDir, databaseUrl: shared.DATABASE_URL });
  try {
    const overlays = new OverlayService(db, createViewerSignals({ logger: createLogger('silent') }));
    await overlays.postNewsFlash(eventId, { text: 'Road closed at exit 4', severity: 'warning', durationSec: 60 });
    await overlays.setDisclaimer(eventId, { text: 'Contains flashing lights', severity: 'info' });
  } finally {
    await db.destroy();
  }
  const onEdge = await viewer(edge, 'Late');
  const welcome = onEdge.messages.find((m) => m.type === 'welcome') as {
    overlays?: { eventStatus: string; newsFlashes: { text: string }[]; disclaimer: { text: string } | null };
  };
  assert.equal(welcome.overlays?.eventStatus, 'idle');
  assert.deepEqual(
    welcome.overlays?.newsFlashes.map((f) => f.text),
    ['Road closed at exit 4'],
  );
  assert.equal(welcome.overlays?.disclaimer?.text, 'Contains flashing lights');
});

test('a second main node starting on the shared store leaves the first node’s live event live', async () => {
  const ev = JSON.parse(await main.cli(['event', 'create', '--title', 'Live elsewhere', '--json'])) as { id: string; streamKey: string };
  const status = async () =>
    ((await (await fetch(`${main.base}/api/v1/events/${ev.id}`)).json()) as { event: { status: string } }).event.status;
  const publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${main.rtmpPort}/live/${ev.streamKey}`,
    width: 320,
    height: 240,
    fps: 15,
    videoKbps: 300,
  });
  try {
    await waitFor('the event to go live', async () => ((await status()) === 'live' ? true : undefined), 30_000, 250);
    const second = await startServer(shared);
    try {
      assert.equal(await status(), 'live');
    } finally {
      await second.stop();
    }
  } finally {
    publisher.child.kill('SIGKILL');
    await publisher.done;
  }
});

test('an edge with Redis and PostgreSQL but no shared token secret refuses to start, saying why', async () => {
  const env: NodeJS.ProcessEnv = { ...edge.env, ONAIR_HTTP_PORT: '0' };
  delete env.ONAIR_VIEWER_TOKEN_SECRET;
  const cli = join(import.meta.dirname, '..', '..', 'cli', 'onair.ts');
  const err = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'start'], { env, timeout: 30_000 }).then(
    () => undefined,
    (e: { code?: number; stderr?: string }) => e,
  );
  assert.ok(err, 'start failed');
  assert.match(err.stderr ?? '', /an edge with chat .* needs ONAIR_VIEWER_TOKEN_SECRET, the same on every node/);
  assert.doesNotMatch(err.stderr ?? '', /exited before listening/, 'refused by the primary, before any worker starts');
});
