// Control over a real Redis bus, every role on its own connection as in a cluster: a control node ends a stream whose
// publisher another "process" holds (the real publisher registry), ad breaks reach the origins carrying the event and
// are ended by a second control node, a break left running by a stopped control node is finished by the other, ingest
// health reaches every control node, and commands nobody answers are reported as timed out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { pino } from 'pino';
import { configSchema } from '../config/schema.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { listen, closeServer } from '../lib/http.ts';
import { createRedisBus } from '../lib/bus/redis-bus.ts';
import type { Bus } from '../lib/bus/bus.ts';
import type { Service } from '../lib/lifecycle.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { createRedisTestServer, type RedisTestServer } from '../test/support/redis-test-server.ts';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createPublisherRegistry, type PublisherClaim } from '../ingest/publishers.ts';
import { createIngestCommandReceiver } from '../ingest/command-receiver.ts';
import { createHealthPublisher } from '../ingest/health-publisher.ts';
import { createOriginCommandReceiver } from '../origin/command-receiver.ts';
import type { DateRange } from '../origin/playlist.ts';
import { EventService } from './events.ts';
import { createApiRouter } from './api.ts';
import { createControlPlane, type ControlPlane } from './control-plane.ts';
import { createHealthFeed } from './health-feed.ts';

const logger = pino({ level: 'silent' });
const signal = new AbortController().signal;
let redis: RedisTestServer;
let store: TestStore;
const stops: (() => Promise<void>)[] = [];
const placed = new Map<string, Placement>();
const placements: PlacementSource = { get: async (id) => placed.get(id) };

before(async () => {
  redis = await createRedisTestServer();
  await redis.start();
  store = await createTestStore('control-bus');
});
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => undefined);
  await store?.cleanup();
  await redis?.stop();
});

/** A Redis bus connection of its own (one per simulated process). */
async function bus(): Promise<Bus> {
  const b = createRedisBus({ url: redis.url, mode: 'pubsub', logger });
  await b.start();
  stops.push(() => b.stop());
  return b;
}

async function started<S extends Service>(s: S): Promise<S> {
  await s.start(signal);
  stops.push(() => s.stop());
  return s;
}

/** A control node: control plane + API on its own HTTP port, its own bus connection, the shared store. */
async function controlNode(nodeId: string, opts: { adBreakSweepMs?: number } = {}) {
  const b = await bus();
  const db = await store.open();
  const events = new EventService(db);
  const control = createControlPlane({
    config: configSchema.parse({ dataDir: store.dir }),
    logger,
    registry: createMetricsRegistry(),
    db,
    events,
    bus: b,
    placements,
    nodeId,
    viewerCount: () => undefined,
    ...opts,
  });
  await control.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await control.stop();
  };
  stops.push(stop);
  await started(createHealthFeed({ bus: b, logger, onReport: (id, r) => control.onIngestHealth(id, r) }));
  const server: Server = createServer(express().use('/api/v1', createApiRouter(control.router)));
  const base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  stops.push(() => closeServer(server));
  return { control, events, base, stop };
}

async function adminToken(control: ControlPlane, email: string): Promise<string> {
  const op = await control.operators.create({ email, role: 'admin', password: 'admin-password-1' });
  return (await control.auth.createToken(op.id, 't')).token;
}

async function call(base: string, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, Record<string, unknown>> };
}

/** An origin "process" carrying `eventIds` with `renditions` renditions each; returns the DATERANGEs written. */
async function originNode(nodeId: string, eventIds: Set<string>, renditions: string[]) {
  const ranges = new Map<string, DateRange[]>();
  const packagers = new Map(
    renditions.map((r) => {
      const list: DateRange[] = [];
      ranges.set(r, list);
      return [r, { setDateRange: (d: DateRange) => void list.splice(0, list.length, ...list.filter((x) => x.id !== d.id), d) }];
    }),
  );
  await started(
    createOriginCommandReceiver({ bus: await bus(), logger, nodeId, stream: (id) => (eventIds.has(id) ? { packagers } : undefined) }),
  );
  return ranges;
}

const placementOf = (eventId: string, origins = ['origin-1', 'origin-2']): Placement => ({
  eventId,
  epoch: 5,
  ingest: 'ingest-1',
  origins: origins.map((id, i) => ({ id, url: `http://127.0.0.1:${i + 1}` })),
  timelineZeroMs: 0,
  session: 1,
  updatedAtMs: 0,
});

test('over Redis: end and key rotation reach the ingest holding the publisher; ad breaks reach both origins and any control node ends them', async () => {
  const one = await controlNode('control-1');
  const two = await controlNode('control-2');
  const token1 = await adminToken(one.control, 'one@example.com');
  const token2 = await adminToken(two.control, 'two@example.com');

  const { event: live } = await one.events.create({ title: 'Live over the bus' });
  const { event: idle } = await one.events.create({ title: 'Held by nobody' });
  await one.events.setStatus(live.id, 'live');
  placed.set(live.id, placementOf(live.id));

  // The ingest "process": the real publisher registry, holding the live event for a fake RTMP publisher.
  const publishers = createPublisherRegistry();
  const claims = new Map<string, PublisherClaim>();
  const take = async (id: string) => {
    const r = await publishers.claim(id, { protocol: 'rtmp', lastActiveAt: () => Date.now(), evict: () => {} }, () => true);
    assert.ok(r.ok);
    claims.set(id, r.claim);
  };
  await take(live.id);
  const closed: string[] = [];
  const ingestBus = await bus();
  await started(
    createIngestCommandReceiver({
      bus: ingestBus,
      logger,
      nodeId: 'ingest-1',
      publishers,
      disconnect: (id) => {
        closed.push(id);
        claims.get(id)?.release();
        return true;
      },
    }),
  );
  const carried = new Set([live.id]);
  const o1 = await originNode('origin-1', carried, ['720p', '360p']);
  const o2 = await originNode('origin-2', carried, ['720p']);

  // Ad break started on control 1: both origins mark it (2 + 1 renditions) before the answer.
  const started1 = await call(one.base, token1, 'POST', `/api/v1/events/${live.id}/ad-breaks`, { durationSec: 60 });
  assert.equal(started1.status, 201);
  const ad = started1.json.adBreak as { id: string; status: string; markedRenditions: number };
  assert.equal(ad.status, 'active');
  assert.equal(ad.markedRenditions, 3);
  for (const ranges of [o1, o2])
    for (const list of ranges.values()) {
      assert.equal(list.length, 1);
      assert.equal(list[0]!.scte35In, undefined, 'cue-out only while running');
    }
  const startDates = [...o1.values(), ...o2.values()].map((l) => l[0]!.startDateMs);
  assert.equal(new Set(startDates).size, 1, 'the same START-DATE on every replica');

  // Ended on control 2, which did not start it: the cue-in reaches both origins.
  const ended = await call(two.base, token2, 'DELETE', `/api/v1/events/${live.id}/ad-breaks/${ad.id}`);
  assert.equal(ended.status, 200);
  assert.equal((ended.json.adBreak as { status: string }).status, 'done');
  assert.equal((ended.json.adBreak as { markedRenditions: number }).markedRenditions, 3);
  for (const ranges of [o1, o2]) for (const list of ranges.values()) assert.ok(list[0]!.scte35In, 'cue-in everywhere');

  // Key rotation from control 2 closes the publisher held by the ingest process.
  const rotated = await call(two.base, token2, 'POST', `/api/v1/events/${live.id}/stream-key/rotate`);
  assert.equal(rotated.status, 200);
  assert.equal(rotated.json.disconnected as unknown, true);
  assert.deepEqual(closed, [live.id]);
  assert.equal(publishers.holderProtocol(live.id), undefined);

  // The publisher comes back; control 1 ends the event: disconnected again.
  await take(live.id);
  const end = await call(one.base, token1, 'POST', `/api/v1/events/${live.id}/end`);
  assert.equal(end.status, 200);
  assert.equal(end.json.disconnected as unknown, true);
  assert.deepEqual(closed, [live.id, live.id]);

  // Placed but its ingest holds nothing (it died): the command times out and the operator sees `false`.
  placed.set(idle.id, placementOf(idle.id));
  const t0 = Date.now();
  const out = await two.control.commands.disconnect(idle.id, 'key_rotated');
  assert.ok(Date.now() - t0 >= 1_400, 'waited for the ack timeout');
  assert.deepEqual(out, { published: true, acks: [], timedOut: true });
  const rotatedIdle = await call(one.base, token1, 'POST', `/api/v1/events/${idle.id}/stream-key/rotate`);
  assert.equal(rotatedIdle.json.disconnected as unknown, false);
  // One origin of two answers: the acks say which, and that the other did not.
  carried.clear();
  const partial = await originNode('origin-3', new Set([idle.id]), ['720p']);
  const mark = await one.control.commands.markAdBreak(idle.id, { seq: 99, startMs: Date.now(), plannedDurationSec: 10 });
  assert.equal(mark.timedOut, true);
  assert.deepEqual(
    mark.acks.map((a) => a.node),
    ['origin-3'],
  );
  assert.equal(partial.get('720p')!.length, 1);
  placed.clear();
});

test('over Redis: a break left running by a stopped control node is ended on time by another; ingest health reaches every control node', async () => {
  const one = await controlNode('control-a', { adBreakSweepMs: 100 });
  const two = await controlNode('control-b', { adBreakSweepMs: 100 });
  const { event } = await one.events.create({ title: 'Timing' });
  await one.events.setStatus(event.id, 'live');
  placed.set(event.id, placementOf(event.id, ['origin-1']));
  const o1 = await originNode('origin-1', new Set([event.id]), ['720p']);

  const ad = await one.control.adBreaks.create(event.id, { durationSec: 1 });
  assert.equal(ad.status, 'active');
  assert.equal(ad.markedRenditions, 1);
  await one.stop(); // its timer dies with it
  const done = await waitFor(
    'the other node ends the break',
    async () => {
      const b = (await two.control.adBreaks.list(event.id)).find((x) => x.id === ad.id);
      return b?.status === 'done' ? b : undefined;
    },
    5_000,
  );
  const seenAfterMs = Date.now() - done.startAt;
  assert.ok(seenAfterMs >= 1_000 && seenAfterMs < 1_000 + 600, `ended near its planned end (seen done ${seenAfterMs} ms after the start)`);
  assert.equal(done.endedAt! - done.startAt, 1_000, 'recorded with its planned end');
  await waitFor('cue-in marked', () => o1.get('720p')![0]?.scte35In !== undefined, 3_000);
  assert.equal(o1.get('720p')!.length, 1);

  const health = createHealthPublisher({ bus: await bus(), logger, nodeId: 'ingest-1' });
  health.onHealth(event.id, {
    protocol: 'rtmp',
    intervalSec: 2,
    publishStartedAt: Date.now(),
    bitrateKbps: 1800,
    fps: 30,
    keyframeIntervalSec: 1,
    width: 640,
    height: 360,
    videoCodec: 'h264',
    audioCodec: 'aac',
    lateFrames: 0,
  });
  const sample = await waitFor('health on control-b', () => two.control.health.latest(event.id), 3_000);
  assert.equal(sample.bitrateKbps, 1800);
  assert.equal(sample.width, 640);
  placed.clear();
});
