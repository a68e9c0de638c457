// Cluster mode's placement in the API: GET /events/:id and /events/:id/status show where a live event runs (ingest,
// origins, epoch, session) read from the PlacementSource; origin URLs only to admins; null once it runs nowhere; and
// `publishing` follows the placement on a control node that has no origin of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import express from 'express';
import { configSchema } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { listen, closeServer } from '../lib/http.ts';
import { createMemoryBus } from '../lib/bus/memory-bus.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { EventService } from './events.ts';
import { createApiRouter } from './api.ts';
import { createControlPlane, type ControlPlane } from './control-plane.ts';

let store: TestStore;
let server: Server;
let base: string;
let control: ControlPlane;
let events: EventService;
let admin: string;
let moderator: string;
const placed = new Map<string, Placement>();
let placementReads = 0;
const placements: PlacementSource = {
  get: async (id) => {
    placementReads++;
    return placed.get(id);
  },
};

before(async () => {
  store = await createTestStore('placement-api');
  const db = await store.open();
  events = new EventService(db);
  const bus = createMemoryBus();
  control = createControlPlane({
    config: configSchema.parse({ dataDir: store.dir }),
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    db,
    events,
    bus,
    placements,
    nodeId: 'control-1',
    viewerCount: () => undefined,
  });
  await control.start();
  server = createServer(express().use('/api/v1', createApiRouter(control.router)));
  base = `http://127.0.0.1:${await listen(server, 0, '127.0.0.1')}`;
  const a = await control.operators.create({ email: 'a@example.com', role: 'admin', password: 'admin-password-1' });
  const m = await control.operators.create({ email: 'm@example.com', role: 'moderator', password: 'moderator-pass-1' });
  admin = (await control.auth.createToken(a.id, 't')).token;
  moderator = (await control.auth.createToken(m.id, 't')).token;
});

after(async () => {
  await control?.stop();
  await closeServer(server);
  await store?.cleanup();
});

const get = async (path: string, token?: string) => {
  const res = await fetch(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, json: (await res.json()) as Record<string, Record<string, unknown>> };
};

test('GET /events/:id and /status show the placement of a live event; origin URLs to admins only; null when not placed', async () => {
  const { event } = await events.create({ title: 'Placed' });
  // Not placed yet: the field is there (cluster mode) and null.
  assert.equal((await get(`/api/v1/events/${event.id}`)).json.event!.placement, null);
  assert.equal((await get(`/api/v1/events/${event.id}/status`, moderator)).json.placement, null);
  assert.equal((await get(`/api/v1/events/${event.id}/status`, moderator)).json.publishing, false);

  placed.set(event.id, {
    eventId: event.id,
    epoch: 12,
    ingest: 'ingest-2',
    origins: [
      { id: 'origin-1', url: 'http://10.0.0.1:8081' },
      { id: 'origin-3', url: 'http://10.0.0.3:8081' },
    ],
    timelineZeroMs: 1_000,
    session: 2,
    updatedAtMs: 2_000,
  });
  const idsOnly = { ingest: 'ingest-2', origins: [{ id: 'origin-1' }, { id: 'origin-3' }], epoch: 12, session: 2 };
  const withUrls = {
    ...idsOnly,
    origins: [
      { id: 'origin-1', url: 'http://10.0.0.1:8081' },
      { id: 'origin-3', url: 'http://10.0.0.3:8081' },
    ],
  };
  assert.deepEqual((await get(`/api/v1/events/${event.id}`)).json.event!.placement, idsOnly, 'anonymous: no URLs');
  assert.deepEqual((await get(`/api/v1/events/${event.id}`, moderator)).json.event!.placement, idsOnly, 'moderator: no URLs');
  assert.deepEqual((await get(`/api/v1/events/${event.id}`, admin)).json.event!.placement, withUrls, 'admin: URLs');
  const status = await get(`/api/v1/events/${event.id}/status`, moderator);
  assert.deepEqual(status.json.placement, idsOnly);
  assert.equal(status.json.publishing, true, 'a control node has no origin: publishing follows the placement');
  assert.deepEqual((await get(`/api/v1/events/${event.id}/status`, admin)).json.placement, withUrls);
  const list = (await get('/api/v1/console/events', moderator)).json.events as unknown as { id: string; publishing: boolean }[];
  assert.equal(list.find((e) => e.id === event.id)?.publishing, true);

  placed.delete(event.id);
  assert.equal((await get(`/api/v1/events/${event.id}`, admin)).json.event!.placement, null);
});

test('the OpenAPI document declares placement on the event and its status, and GET /events/:id stays public', async () => {
  const doc = control.openapi() as unknown as {
    paths: Record<string, Record<string, { 'x-onair-role': string }>>;
    components: { schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }> };
  };
  assert.equal(doc.paths['/api/v1/events/{id}']!.get!['x-onair-role'], 'public');
  assert.equal(doc.paths['/api/v1/events/{id}/status']!.get!['x-onair-role'], 'operator');
  const schemas = doc.components.schemas;
  assert.ok(schemas.Placement, 'Placement component');
  assert.deepEqual(Object.keys(schemas.Placement!.properties).sort(), ['epoch', 'ingest', 'origins', 'session']);
  assert.ok('placement' in schemas.EventDetail!.properties);
  assert.ok(!(schemas.EventDetail!.required ?? []).includes('placement'), 'optional: absent in all-in-one mode');
  assert.ok('placement' in schemas.EventStatus!.properties);
});

test('commands from a control node expect no owner for an event that is not placed: ending it does not wait', async () => {
  const { event } = await events.create({ title: 'Not placed' });
  const reads = placementReads;
  const t0 = Date.now();
  const out = await control.commands.disconnect(event.id, 'end');
  assert.ok(Date.now() - t0 < 200, 'no ack wait');
  assert.deepEqual(out, { published: true, acks: [], timedOut: false });
  assert.ok(placementReads > reads, 'the placement was read');
});
