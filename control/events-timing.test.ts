// The per-event part target and GOP (migration 0011_event_timing): stored on create and update, null follows the
// node's ONAIR_PART_TARGET_SEC / ONAIR_GOP_SEC, values that break the timing rules (config/timing.ts) refused with
// a reason and nothing changed. events-timing.postgres.test.ts runs it on PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { EventService } from './events.ts';

let store: TestStore | undefined;

after(async () => {
  await store?.cleanup();
});

test('partTargetSec and gopSec are stored per event, null for the node settings, checked against the node timing', async () => {
  store = await createTestStore('events-timing');
  const db = await store.open();
  const events = new EventService(db, { timing: { segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 } });
  const plain = (await events.create({ title: 'Node timing' })).event;
  assert.deepEqual([plain.partTargetSec, plain.gopSec], [null, null]);
  const relaxed = (await events.create({ title: 'Relaxed', partTargetSec: 0.5, gopSec: 2 })).event;
  assert.deepEqual([relaxed.partTargetSec, relaxed.gopSec], [0.5, 2]);
  const stored = await events.byId(relaxed.id);
  assert.deepEqual([stored?.partTargetSec, stored?.gopSec], [0.5, 2], 'read back as numbers');
  const gopOnly = (await events.create({ title: 'GOP only', gopSec: 2 })).event;
  assert.deepEqual([gopOnly.partTargetSec, gopOnly.gopSec], [null, 2], '2 s GOP over the node’s 0.2 s parts');

  await assert.rejects(
    events.create({ title: 'Odd parts', partTargetSec: 0.3 }),
    /^RangeError: partTargetSec: 0\.3 s must split the segment target ONAIR_SEGMENT_TARGET_SEC \(2 s\) into 2 or more whole parts; write e\.g\. 1 or 0\.5$/,
  );
  await assert.rejects(
    events.create({ title: 'Odd GOP', partTargetSec: 0.5, gopSec: 0.75 }),
    /gopSec: 0\.75 s must be a whole number of the part target \(0\.5 s\)/,
  );
  // 0.4 s parts split 2 s segments, but not the node's 1 s GOP.
  await assert.rejects(
    events.create({ title: 'Parts vs node GOP', partTargetSec: 0.4 }),
    /gopSec: the node's ONAIR_GOP_SEC 1 s must be a whole number of the part target \(0\.4 s\).*write e\.g\. 2; set the event's gopSec too$/,
  );
  await assert.rejects(
    events.create({ title: 'Too short', partTargetSec: 0.05 }),
    /partTargetSec: 0\.05 s is out of range: 0\.1 to 2 seconds/,
  );
  await assert.rejects(events.create({ title: 'Too long', gopSec: 20 }), /gopSec: 20 s is out of range: 0\.1 to 10 seconds/);
  assert.equal((await events.list()).length, 3, 'refused events were not created');

  // Update: a patch is checked with the value it leaves alone.
  assert.deepEqual(
    [(await events.update(plain.id, { partTargetSec: 0.5 }))?.partTargetSec, (await events.byId(plain.id))?.gopSec],
    [0.5, null],
    '0.5 s parts fit the node’s 1 s GOP',
  );
  await assert.rejects(
    events.update(relaxed.id, { partTargetSec: 0.4, gopSec: 1 }),
    /gopSec: 1 s must be a whole number of the part target \(0\.4 s\)/,
  );
  await assert.rejects(events.update(relaxed.id, { gopSec: 0.2 }), /gopSec: 0\.2 s must be a whole number of the part target \(0\.5 s\)/);
  const back = await events.byId(relaxed.id);
  assert.deepEqual([back?.partTargetSec, back?.gopSec], [0.5, 2], 'a refused change leaves the event as it was');
  const both = await events.update(relaxed.id, { partTargetSec: 0.25, gopSec: 0.5 });
  assert.deepEqual([both?.partTargetSec, both?.gopSec], [0.25, 0.5]);
  const reset = await events.update(relaxed.id, { partTargetSec: null, gopSec: null });
  assert.deepEqual([reset?.partTargetSec, reset?.gopSec], [null, null], 'null returns to the node settings');
  assert.equal(await events.update('no-such-event', { gopSec: 2 }), undefined);

  // Another node timing (3 s segments, 0.6 s parts, 3 s GOP): the defaults do not apply.
  const other = new EventService(db, { timing: { segmentTargetSec: 3, partTargetSec: 0.6, gopSec: 3 } });
  await assert.rejects(other.create({ title: 'Short parts', partTargetSec: 0.4 }), /partTargetSec: 0\.4 s must split .*\(3 s\)/);
  assert.equal((await other.create({ title: 'Longer parts', partTargetSec: 1, gopSec: 3 })).event.partTargetSec, 1);
});
