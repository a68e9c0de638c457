// Stream keys at rest: a key kept for its one reveal is stored sealed (AES-256-GCM under the server secret), never in
// plain text; after the reveal only its hash stays. Migration 0005 seals the plain keys earlier versions kept.
// Over SQLite; stream-keys.postgres.test.ts runs the same over PostgreSQL.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { openStore, type Db } from '../lib/store/db.ts';
import { createKeySealer } from '../lib/key-seal.ts';
import { loadServerSecret } from '../lib/server-secret.ts';
import { EventService, SealedKeyError, hashStreamKey, newStreamKey } from './events.ts';

const stores: TestStore[] = [];
after(async () => {
  for (const s of stores) await s.cleanup();
});

async function rawKeys(db: Db): Promise<string> {
  return JSON.stringify((await sql`select * from stream_keys`.execute(db)).rows);
}

/** Every byte the SQLite store holds on disk (database and WAL); empty for PostgreSQL. */
function sqliteBytes(dir: string): string {
  return ['onair.sqlite', 'onair.sqlite-wal']
    .map((f) => join(dir, f))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f).toString('latin1'))
    .join('');
}

test('a key kept for its reveal is stored sealed, reveals once, and still authorizes publishing', async () => {
  const store = await createTestStore('seal');
  stores.push(store);
  const db = await store.open();
  const events = new EventService(db, { sealer: createKeySealer(randomBytes(32)) });
  const { event, streamKey } = await events.create({ title: 'Sealed', keepForReveal: true });
  const raw = await rawKeys(db);
  assert.ok(!raw.includes(streamKey), 'no plain key in the row');
  assert.ok(!raw.includes(streamKey.slice(3)), 'not even without its prefix');
  assert.match(raw, /"reveal_sealed":"v1\.[A-Za-z0-9_-]+"/);
  assert.ok(!sqliteBytes(store.dir).includes(streamKey.slice(3)), 'no plain key anywhere in the database files');

  assert.equal(await events.revealKey(event.id), streamKey, 'the first reveal gives the key');
  assert.equal(await events.revealKey(event.id), undefined, 'a second reveal does not');
  assert.match(await rawKeys(db), /"reveal_sealed":null/);
  assert.equal(await events.authorize(streamKey), event.id, 'the key publishes');

  // Rotation kept for a reveal: sealed too; parallel reveals give it out once.
  const rotated = await events.rotateKey(event.id, { keepForReveal: true });
  assert.ok(!(await rawKeys(db)).includes(rotated.slice(3)));
  const reveals = await Promise.all(Array.from({ length: 5 }, () => events.revealKey(event.id)));
  assert.deepEqual(reveals.filter(Boolean), [rotated]);
  assert.equal(await events.authorize(rotated), event.id);
  assert.equal(await events.authorize(streamKey), undefined, 'the old key is revoked');
});

test('a key sealed under another secret is not revealed, and stays for a node that has the right one', async () => {
  const store = await createTestStore('seal-other');
  stores.push(store);
  const db = await store.open();
  const secret = randomBytes(32);
  const { event, streamKey } = await new EventService(db, { sealer: createKeySealer(secret) }).create({
    title: 'Other',
    keepForReveal: true,
  });
  await assert.rejects(new EventService(db, { sealer: createKeySealer(randomBytes(32)) }).revealKey(event.id), SealedKeyError);
  assert.equal(await new EventService(db, { sealer: createKeySealer(secret) }).revealKey(event.id), streamKey);
  await assert.rejects(new EventService(db).create({ title: 'No sealer', keepForReveal: true }), /key sealer/);
});

test('migration 0005 seals the plain keys an older version kept for their reveal', async () => {
  const store = await createTestStore('seal-migration');
  stores.push(store);
  const old = await openStore(store.location, { migrateTo: '0004_control' });
  const streamKey = newStreamKey();
  const now = Date.now();
  await sql`insert into events (id, slug, title, description, status, created_at, updated_at, latency_mode, visibility)
    values ('ev_old_1', 'old-show', 'Old show', '', 'idle', ${now}, ${now}, 'low', 'public')`.execute(old);
  await sql`insert into stream_keys (event_id, key_hash, created_at, reveal_key) values ('ev_old_1', ${hashStreamKey(streamKey)}, ${now}, ${streamKey})`.execute(
    old,
  );
  await old.destroy();

  const db = await store.open();
  const raw = await rawKeys(db);
  assert.ok(!raw.includes(streamKey), `the plain key is gone: ${raw}`);
  assert.match(raw, /"reveal_sealed":"v1\./);
  // Sealed under the server secret generated into the data dir (none configured here).
  const events = new EventService(db, { sealer: createKeySealer(loadServerSecret(store.dir)) });
  assert.equal(await events.revealKey('ev_old_1'), streamKey);
  assert.equal(await events.revealKey('ev_old_1'), undefined);
  assert.equal(await events.authorize(streamKey), 'ev_old_1');
});
