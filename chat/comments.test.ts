// The chat store over two handles on one store, as two edges share it: concurrent comments get distinct,
// gap-free seqs; likes stay one per viewer; big seq bounds work. Over SQLite; comments.postgres.test.ts runs
// the same over PostgreSQL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestStore, type TestStore } from '../test/support/test-store.ts';
import { CommentStore } from './comments.ts';
import { EventService } from '../control/events.ts';

let testStore: TestStore;
let nodes: CommentStore[];
let eventId: string;

before(async () => {
  testStore = await createTestStore('comments');
  const a = await testStore.open();
  const b = await testStore.open();
  nodes = [new CommentStore(a), new CommentStore(b)];
  eventId = (await new EventService(a).create({ title: 'Store test' })).event.id;
});

after(async () => {
  await testStore?.cleanup();
});

test('concurrent comments from two nodes get distinct, consecutive seqs, and all are stored', async () => {
  const viewer = (i: number) => ({ id: `v_${i}`, name: `V${i}#0001`, role: 'viewer' as const });
  const posted = await Promise.all(Array.from({ length: 40 }, (_, i) => nodes[i % 2]!.append(eventId, viewer(i), `hello ${i}`)));
  const seqs = posted.map((c) => c.seq).sort((x, y) => x - y);
  assert.deepEqual(
    seqs,
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const stored = await nodes[1]!.since(eventId, 0);
  assert.equal(stored.length, 40);
  assert.deepEqual(
    stored.map((c) => c.seq),
    seqs,
    'read back in seq order',
  );
  assert.equal(typeof stored[0]!.at, 'number', 'timestamps come back as numbers');
  assert.equal(await nodes[0]!.maxSeq(eventId), 40);
  assert.equal(await nodes[0]!.countSince(eventId, 10, Number.MAX_SAFE_INTEGER), 30);
  assert.equal((await nodes[0]!.recent(eventId, 5)).at(-1)!.seq, 40);
});

test('likes: one per viewer per event across nodes, totals as numbers', async () => {
  await nodes[0]!.setLike(eventId, 'v_1', 1);
  await nodes[1]!.setLike(eventId, 'v_1', -1);
  await nodes[1]!.setLike(eventId, 'v_2', 1);
  const totals = await nodes[0]!.likeTotals(eventId);
  assert.deepEqual(totals, { likes: 1, dislikes: 1 });
  assert.equal(await nodes[0]!.likeOf(eventId, 'v_1'), -1);
});
