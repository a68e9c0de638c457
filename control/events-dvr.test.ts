// The per-event DVR window (migration 0009_dvr): stored on create and update, null follows ONAIR_DVR_WINDOW_SEC,
// bad values refused with a reason and nothing changed. events-dvr.postgres.test.ts runs it on PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { EventService } from './events.ts';

let store: TestStore | undefined;

after(async () => {
  await store?.cleanup();
});

test('dvrWindowSec is stored per event: a number of seconds, 0 for off, null for the server default', async () => {
  store = await createTestStore('events-dvr');
  const events = new EventService(await store.open());
  const plain = (await events.create({ title: 'Default DVR' })).event;
  assert.equal(plain.dvrWindowSec, null);
  const short = (await events.create({ title: 'Short DVR', dvrWindowSec: 600 })).event;
  assert.equal(short.dvrWindowSec, 600);
  assert.equal((await events.byId(short.id))?.dvrWindowSec, 600);
  assert.equal((await events.update(short.id, { dvrWindowSec: 0 }))?.dvrWindowSec, 0, '0 turns DVR off');
  assert.equal((await events.update(short.id, { dvrWindowSec: null }))?.dvrWindowSec, null);
  await assert.rejects(events.update(plain.id, { dvrWindowSec: -1 }), /dvrWindowSec must be an integer from 0 to 86400/);
  await assert.rejects(events.create({ title: 'Too long', dvrWindowSec: 90_000 }), RangeError);
  await assert.rejects(events.update(plain.id, { dvrWindowSec: 1.5 }), RangeError);
  assert.equal((await events.byId(plain.id))?.dvrWindowSec, null, 'a refused change leaves the event as it was');
});
