// A refused source's reason in the store (migration 0006): shown on the event until a publisher goes live after it.
// Over SQLite; source-refusal.postgres.test.ts runs the same over PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { EventService } from './events.ts';

const stores: TestStore[] = [];
after(async () => {
  for (const s of stores) await s.cleanup();
});

test('a refusal is shown on the event until a later publisher goes live', async (t) => {
  const store = await createTestStore('refusal');
  stores.push(store);
  const events = new EventService(await store.open());
  const { event } = await events.create({ title: 'Refused' });
  assert.equal(event.sourceRefusal, null);

  t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
  await events.setStatus(event.id, 'live'); // the refused session went live first
  t.mock.timers.tick(50);
  await events.refuseSource(event.id, 'video codec hevc is not supported: send H.264');
  const refused = await events.byId(event.id);
  assert.deepEqual(refused?.sourceRefusal, { reason: 'video codec hevc is not supported: send H.264', at: 1_000_050 });
  assert.deepEqual((await events.list()).find((e) => e.id === event.id)?.sourceRefusal, refused?.sourceRefusal, 'listed too');

  await events.setStatus(event.id, 'offline');
  assert.notEqual((await events.byId(event.id))?.sourceRefusal, null, 'still shown while offline');
  t.mock.timers.tick(5_000);
  await events.setStatus(event.id, 'live');
  assert.equal((await events.byId(event.id))?.sourceRefusal, null, 'a good publisher clears it');
});
