// The clip service over the store (migration 0010) and a local storage: a clip of a recording's manifest, its
// refusals, listing, deletion, and deletion with its recording. clips.postgres.test.ts runs the same on PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import type { Db } from '../lib/store/db.ts';
import { createLogger } from '../lib/logger.ts';
import { LocalStorage, readAll } from '../lib/storage/storage.ts';
import { EventService } from './events.ts';
import { RecordingService } from './recordings.ts';
import { ClipError, ClipService } from './clips.ts';
import { clipKey } from '../origin/recording/clip.ts';
import { manifestKey, type RecordingManifest } from '../origin/recording/manifest.ts';

let store: TestStore;
let db: Db;

after(async () => {
  await store?.cleanup();
});

const variant = { uri: 'r/index.m3u8', bandwidth: 1, averageBandwidth: 1, codecs: 'avc1' };

async function refused(p: Promise<unknown>, status: number, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof ClipError && err.status === status && err.code === code);
}

test('a clip of a recording: cut, listed, refused when it cannot be, deleted alone or with its recording', async () => {
  store = await createTestStore('clips');
  db = await store.open();
  const storage = new LocalStorage(join(store.dir, 'recordings'));
  const events = new EventService(db);
  const recordings = new RecordingService(
    db,
    storage,
    { recording: 'on', ffmpegPath: 'ffmpeg', recordingRetentionDays: 0 },
    createLogger('silent'),
  );
  const clips = new ClipService(db, storage, { recording: 'on' });

  const ev = (await events.create({ title: 'Show' })).event;
  const off = (await events.create({ title: 'Off', recording: false })).event;
  await refused(clips.create('nOsUcHeVeNt', { lastSec: 30 }), 404, 'not_found');
  await refused(clips.create(off.id, { lastSec: 30 }), 409, 'recording_off');
  await refused(clips.create(ev.id, { lastSec: 30 }), 409, 'no_recording');

  const zero = 1_764_000_000_000;
  assert.equal(
    await recordings
      .hooks()
      .begin({ id: `${ev.id}.${zero}`, eventId: ev.id, zeroMs: zero, storagePrefix: `${ev.id}/${zero}/`, startedAtMs: zero }),
    true,
  );
  await refused(clips.create(ev.id, { lastSec: 30 }), 409, 'recording_empty');
  const segs = Array.from({ length: 10 }, (_, msn) => ({
    msn,
    run: 0,
    durationSec: 2,
    programDateTimeMs: zero + msn * 2000,
    discontinuitySequence: 0,
    bytes: 5,
  }));
  const m: RecordingManifest = {
    version: 1,
    eventId: ev.id,
    zeroMs: zero,
    startedAtMs: zero,
    segmentTargetSec: 2,
    renditions: [{ name: '360p', variant, segments: segs }],
  };
  await storage.put(manifestKey(ev.id, zero), Buffer.from(JSON.stringify(m)));

  const c = await clips.create(ev.id, { startSec: 3, endSec: 9 });
  assert.deepEqual([c.startSec, c.endSec, c.durationSec, c.segments], [2, 10, 8, 4]);
  assert.equal(c.recordingId, `${ev.id}.${zero}`);
  assert.equal(c.title, 'Show — clip');
  const stored = JSON.parse((await readAll(storage, clipKey(c.id)))!.toString()) as RecordingManifest;
  assert.deepEqual(
    stored.renditions[0]!.segments.map((s) => s.msn),
    [1, 2, 3, 4],
  );
  const last = await clips.create(ev.id, { lastSec: 5 }, { title: 'Finale' });
  assert.deepEqual([last.startSec, last.endSec, last.title], [14, 20, 'Finale']);
  await refused(clips.create(ev.id, { startSec: 10, endSec: 30 }), 422, 'range_outside_recording');
  await refused(clips.create(ev.id, { startSec: 0, endSec: 5 }, { recordingId: `${ev.id}.1` }), 404, 'not_found');
  assert.deepEqual((await clips.list(ev.id)).map((x) => x.id).sort(), [c.id, last.id].sort());
  assert.deepEqual(await clips.byId(c.id), c);

  assert.equal(await clips.remove(last.id), true);
  assert.equal(await clips.remove(last.id), false);
  assert.equal(await readAll(storage, clipKey(last.id)), undefined);
  // Deleting the recording deletes the clips naming its objects.
  assert.equal(await recordings.remove(`${ev.id}.${zero}`), true);
  assert.deepEqual(await clips.list(), []);
  assert.equal(await readAll(storage, clipKey(c.id)), undefined);
});
