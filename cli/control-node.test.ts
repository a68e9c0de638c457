// A control node on its own: API and pages on its HTTP port, no edge and no WHIP, placement in the API, ingest health
// and operator commands over its bus, and a clean stop of everything it started.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { ServiceGroup } from '../lib/lifecycle.ts';
import { createRealtimeBackend } from '../chat/backend.ts';
import { createTestStore } from '../test/support/test-store.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createIngestCommandReceiver } from '../ingest/command-receiver.ts';
import { createHealthPublisher } from '../ingest/health-publisher.ts';
import type { Placement } from '../lib/placement/types.ts';
import type { EventService } from '../control/events.ts';
import { addControlNode, orphanSweep } from './control-node.ts';

test('control node: API with placement, no /live or /whip, commands and health over its bus', async () => {
  const store = await createTestStore('control-node');
  const group = new ServiceGroup();
  try {
    const logger = createLogger('silent');
    const db = await store.open();
    const config = configSchema.parse({ dataDir: store.dir, httpPort: 0, host: '127.0.0.1', role: ['control'], wsViewerCountMs: 200 });
    const backend = createRealtimeBackend({ mode: 'pubsub', logger });
    group.add('bus', backend);
    const placement: Placement = {
      eventId: '',
      epoch: 1,
      ingest: 'ingest-1',
      origins: [{ id: 'origin-1', url: 'http://10.1.1.1:8081' }],
      timelineZeroMs: 0,
      session: 1,
      updatedAtMs: 0,
    };
    const node = addControlNode(group, {
      config,
      logger,
      registry: createMetricsRegistry(),
      db,
      backend,
      nodeId: 'control-1',
      placements: { get: async (id) => (id === liveId ? { ...placement, eventId: id } : undefined) },
    });
    let liveId = '';
    const closed: string[] = [];
    group.add(
      'ingest commands',
      createIngestCommandReceiver({
        bus: backend.bus,
        logger,
        nodeId: 'ingest-1',
        publishers: { holderProtocol: (id) => (id === liveId ? 'rtmp' : undefined) },
        disconnect: (id) => (closed.push(id), true),
      }),
    );
    await group.start();
    const base = `http://127.0.0.1:${node.httpPort()}`;

    const op = await node.control.operators.create({ email: 'a@example.com', role: 'admin', password: 'admin-password-1' });
    const auth = { authorization: `Bearer ${(await node.control.auth.createToken(op.id, 't')).token}` };
    const res = await fetch(`${base}/api/v1/events`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'On a control node' }),
    });
    assert.equal(res.status, 201);
    const { event } = (await res.json()) as { event: { id: string } };
    liveId = event.id;
    const end = await fetch(`${base}/api/v1/events/${event.id}/end`, { method: 'POST', headers: auth });
    assert.equal(((await end.json()) as { disconnected: boolean }).disconnected, true, 'the end reached the ingest over the bus');
    assert.deepEqual(closed, [event.id]);
    const got = (await (await fetch(`${base}/api/v1/events/${event.id}`)).json()) as { event: { placement: unknown } };
    assert.deepEqual(got.event.placement, { ingest: 'ingest-1', origins: [{ id: 'origin-1' }], epoch: 1, session: 1 });

    for (const path of [`/live/${event.id}/master.m3u8`, `/whip/${event.id}`]) {
      const res = await fetch(base + path);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
    }
    assert.equal((await fetch(`${base}/healthz`)).status, 200);

    createHealthPublisher({ bus: backend.bus, logger, nodeId: 'ingest-1' }).onHealth(event.id, {
      protocol: 'whip',
      intervalSec: 2,
      publishStartedAt: Date.now(),
      bitrateKbps: 900,
      fps: 25,
      keyframeIntervalSec: 2,
      width: 640,
      height: 360,
      videoCodec: 'h264',
      audioCodec: 'aac',
      lateFrames: 0,
    });
    const sample = await waitFor('health sample', () => node.control.health.latest(event.id), 3_000);
    assert.equal(sample.protocol, 'whip');

    // Viewer totals: the edges' gateways report into the shared presence; the control node reads them back.
    const made = await fetch(`${base}/api/v1/events`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Watched' }),
    });
    const watched = ((await made.json()) as { event: { id: string } }).event.id;
    await node.control.setStatus(watched, 'live');
    await backend.presence.report(watched, 'edge-1', 5, 60_000);
    await backend.presence.report(watched, 'edge-2', 2, 60_000);
    const viewers = async () =>
      ((await (await fetch(`${base}/api/v1/events/${watched}/status`, { headers: auth })).json()) as { viewers: number | null }).viewers;
    await waitFor('viewers across edges', async () => (await viewers()) === 7, 5_000);
  } finally {
    await group.stop();
    await store.cleanup();
  }
});

test('orphan sweep: a live event whose placement stays gone past the grace is set offline once; a placed one is left', async () => {
  const placed = new Set(['carried', 'back']);
  const live = new Set(['carried', 'orphan', 'back']);
  const offline: string[] = [];
  const sweep = orphanSweep({
    events: { list: async () => [...live].map((id) => ({ id })) as Awaited<ReturnType<EventService['list']>> },
    placements: { get: async (id) => (placed.has(id) ? ({ eventId: id } as Placement) : undefined) },
    control: {
      setStatus: async (id) => {
        offline.push(id);
        live.delete(id);
      },
    },
    graceMs: 300,
    periodMs: 30,
    logger: createLogger('silent'),
  });
  await sweep.start(new AbortController().signal);
  try {
    placed.delete('back'); // its ingest died; a reconnect through another ingest places it again within the grace
    await new Promise((r) => setTimeout(r, 150));
    placed.add('back');
    await waitFor('orphan set offline', () => offline.includes('orphan'), 3_000);
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(offline, ['orphan'], 'once, and never the carried or the re-placed event');
  } finally {
    await sweep.stop();
  }
});
