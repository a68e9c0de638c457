// The recordings service over the store (migration 0007) and a local storage: the recorder's hooks (the event's
// switch, the server default, idempotent registration, failed/ready, the recording.ready webhook), listing,
// deletion, retention and usage. recordings.postgres.test.ts runs the same on PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import type { Db } from '../lib/store/db.ts';
import { createLogger } from '../lib/logger.ts';
import { LocalStorage } from '../lib/storage/storage.ts';
import { EventService } from './events.ts';
import { RecordingService } from './recordings.ts';
import type { RecordingInfo } from '../origin/recording/recorder.ts';

let store: TestStore;
let db: Db;
const logger = createLogger('silent');

after(async () => {
  await store?.cleanup();
});

async function setup() {
  store ??= await createTestStore('recordings');
  db ??= await store.open();
  const storage = new LocalStorage(join(store.dir, 'recordings'));
  const events = new EventService(db);
  const cfg = { recording: 'on' as const, ffmpegPath: 'ffmpeg', recordingRetentionDays: 0 };
  return {
    storage,
    events,
    recordings: new RecordingService(db, storage, cfg, logger),
    off: new RecordingService(db, storage, { ...cfg, recording: 'off' }, logger),
  };
}

const info = (eventId: string, zeroMs: number): RecordingInfo => ({
  id: `${eventId}.${zeroMs}`,
  eventId,
  zeroMs,
  storagePrefix: `${eventId}/${zeroMs}/`,
  startedAtMs: zeroMs,
});

const until = async (cond: () => Promise<boolean>) => {
  for (let i = 0; i < 100 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 10));
};

test('begin follows the event switch, else the server default; replicas register one row', async () => {
  const { events, recordings, off } = await setup();
  const def = (await events.create({ title: 'Default' })).event;
  const no = (await events.create({ title: 'No', recording: false })).event;
  const yes = (await events.create({ title: 'Yes', recording: true })).event;
  assert.equal(await recordings.hooks().begin(info(def.id, 1000)), true);
  assert.equal(await recordings.hooks().begin(info(def.id, 1000)), true, 'a second replica: same id, no error');
  assert.equal(await recordings.hooks().begin(info(no.id, 1000)), false);
  assert.equal(await off.hooks().begin(info(def.id, 2000)), false, 'ONAIR_RECORDING=off');
  assert.equal(await off.hooks().begin(info(yes.id, 1000)), true, 'the event asks');
  assert.equal(await recordings.hooks().begin(info('nOsUcHeVeNt', 1000)), false);
  assert.deepEqual(
    (await recordings.list(def.id)).map((r) => [r.id, r.status]),
    [[`${def.id}.1000`, 'recording']],
  );
  assert.equal((await events.update(no.id, { recording: null }))?.recording, null);
});

test('failed keeps the reason; ready records duration and bytes and queues recording.ready; usage sums bytes', async () => {
  const { events, recordings } = await setup();
  const e = (await events.create({ title: 'Show' })).event;
  await db
    .insertInto('webhooks')
    .values({
      id: 'wh1',
      url: 'http://127.0.0.1:9/hook',
      secret: 's',
      events: JSON.stringify(['recording.ready']),
      created_at: 1,
      disabled_at: null,
    })
    .execute();
  const hooks = recordings.hooks();
  await hooks.begin(info(e.id, 5000));
  hooks.ready(info(e.id, 5000), { durationSec: 12.5, bytes: 4242, segments: 7, endedAtMs: 9000 });
  await until(async () => (await recordings.byId(`${e.id}.5000`))?.status === 'ready');
  const r = await recordings.byId(`${e.id}.5000`);
  assert.deepEqual(
    { status: r?.status, durationSec: r?.durationSec, bytes: r?.bytes, endedAt: r?.endedAt, hlsUrl: r?.hlsUrl },
    { status: 'ready', durationSec: 12.5, bytes: 4242, endedAt: 9000, hlsUrl: `/live/${e.id}/master.m3u8` },
  );
  await until(async () => (await db.selectFrom('webhook_deliveries').selectAll().execute()).length > 0);
  const d = await db.selectFrom('webhook_deliveries').selectAll().executeTakeFirstOrThrow();
  assert.equal(d.event_type, 'recording.ready');
  assert.equal((JSON.parse(d.payload) as { data: { recording: { id: string } } }).data.recording.id, `${e.id}.5000`);

  await hooks.begin(info(e.id, 6000));
  hooks.failed(info(e.id, 6000), 'storage write of x failed 4 times: ENOSPC');
  await until(async () => (await recordings.byId(`${e.id}.6000`))?.status === 'failed');
  assert.match((await recordings.byId(`${e.id}.6000`))!.failure!, /ENOSPC/);
  // A replica's later `ready` does not turn a failed recording ready.
  hooks.ready(info(e.id, 6000), { durationSec: 1, bytes: 1, segments: 1, endedAtMs: 9500 });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await recordings.byId(`${e.id}.6000`))!.status, 'failed');
  const usage = await recordings.usage();
  assert.equal(usage.find((u) => u.status === 'ready')?.bytes, 4242);
});

test('remove deletes the media, the replay pointer naming it and the row; sweep removes only expired ended ones', async () => {
  const { events, recordings, storage } = await setup();
  const e = (await events.create({ title: 'Old show' })).event;
  const hooks = recordings.hooks();
  for (const zero of [100, 200]) {
    await hooks.begin(info(e.id, zero));
    await storage.put(`${e.id}/${zero}/360p/seg-1.m4s`, Buffer.from('x'));
    hooks.ready(info(e.id, zero), { durationSec: 2, bytes: 1, segments: 1, endedAtMs: zero * 10 });
  }
  await hooks.begin(info(e.id, 300)); // still recording: never swept
  await storage.put(`${e.id}/latest.json`, Buffer.from(JSON.stringify({ zeroMs: 200 })));
  await until(async () => (await recordings.list(e.id)).filter((r) => r.status === 'ready').length === 2);
  assert.equal(await recordings.sweep(1500), 1, 'the one that ended at 1000');
  assert.deepEqual(await storage.list(`${e.id}/100/`), []);
  assert.deepEqual((await recordings.list(e.id)).map((r) => r.id).sort(), [`${e.id}.200`, `${e.id}.300`]);
  assert.equal(await recordings.remove(`${e.id}.200`), true);
  assert.equal(await storage.get(`${e.id}/latest.json`), undefined, 'the replay no longer names it');
  assert.equal(await recordings.remove(`${e.id}.200`), false);
  assert.deepEqual(
    (await recordings.list(e.id)).map((r) => r.id),
    [`${e.id}.300`],
  );
});
