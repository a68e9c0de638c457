// The rooms of one edge without sockets: batching into one shared frame per flush, comment intake in seq order
// (gap fills and catch-up from the store), the lastSeq a joiner already has, bans, and viewer counts across edges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryBus } from '../lib/bus/memory-bus.ts';
import { createMemoryPresence, type Presence } from '../lib/bus/presence.ts';
import type { Bus } from '../lib/bus/bus.ts';
import { chatChannel, encodeChatMessage, type ChatBusMessage, type ChatSettings, type CommentWire } from './channel.ts';
import { signalsChannel } from './viewer-signals.ts';
import type { BatchFrame } from './protocol.ts';
import { Rooms, type RoomsMember, type RoomsStore } from './rooms.ts';

const EVENT = 'event-1';

/** A member that records the frames it gets. */
class Member implements RoomsMember {
  readonly frames: Buffer[] = [];
  skipUpTo?: number;
  constructor(readonly viewer?: { id: string }) {}
  deliver(frame: Buffer): void {
    this.frames.push(frame);
  }
  batches(): BatchFrame[] {
    return this.frames.map((f) => JSON.parse(f.toString()) as BatchFrame);
  }
}

function comment(seq: number): CommentWire {
  return { id: `c${seq}`, seq, viewerId: 'v_1', name: 'Alice#0001', role: 'viewer', text: `comment ${seq}`, at: 1_000 + seq };
}

/** An in-memory chat store holding comments 1..n of one event. */
class FakeStore implements RoomsStore {
  comments: CommentWire[] = [];
  settingsOf: ChatSettings = { chatEnabled: true, slowModeSec: 0 };
  likes = { likes: 3, dislikes: 1 };
  add(...seqs: number[]): CommentWire[] {
    const added = seqs.map(comment);
    this.comments.push(...added);
    return added;
  }
  async since(_eventId: string, afterSeq: number, upToSeq = Infinity, limit = Infinity): Promise<CommentWire[]> {
    return this.comments.filter((c) => c.seq > afterSeq && c.seq <= upToSeq).slice(0, limit);
  }
  async maxSeq(): Promise<number> {
    return this.comments.at(-1)?.seq ?? 0;
  }
  async settings(): Promise<ChatSettings> {
    return this.settingsOf;
  }
  async likeTotals(): Promise<{ likes: number; dislikes: number }> {
    return this.likes;
  }
}

function makeRooms(opts: { bus?: Bus; presence?: Presence; store?: FakeStore; edgeId?: string; viewerCountMs?: number } = {}) {
  const bus = opts.bus ?? createMemoryBus();
  const store = opts.store ?? new FakeStore();
  const banned: Member[] = [];
  const counts: { eventId: string; viewers: number }[] = [];
  let frames = 0;
  const rooms = new Rooms<Member>({
    logger: { warn() {}, error() {} } as never,
    bus,
    presence: opts.presence ?? createMemoryPresence(),
    store,
    edgeId: opts.edgeId ?? 'edge-a',
    viewerCountMs: opts.viewerCountMs ?? 1_000,
    onViewerCount: (eventId, viewers) => counts.push({ eventId, viewers }),
    banned: (m) => banned.push(m),
    metrics: { frames: { inc: (n: number) => (frames += n) }, flush: { startTimer: () => () => undefined } },
  });
  return { rooms, bus, store, banned, counts, frames: () => frames };
}

const publish = (bus: Bus, m: ChatBusMessage, eventId = EVENT) => bus.publish(chatChannel(eventId), encodeChatMessage(m));

test('a room opens at the store: newest seq, settings and likes; joiners of a room still opening share it', async () => {
  const store = new FakeStore();
  store.add(1, 2, 3);
  store.settingsOf = { chatEnabled: false, slowModeSec: 5 };
  const { rooms } = makeRooms({ store });
  const [a, b] = await Promise.all([rooms.open(EVENT), rooms.open(EVENT)]);
  assert.equal(a, b);
  assert.equal(a.lastSeq, 3);
  assert.equal(a.flushedSeq, 3);
  assert.deepEqual(a.settings, { chatEnabled: false, slowModeSec: 5 });
  assert.deepEqual(a.likes, { likes: 3, dislikes: 1 });
  assert.equal(rooms.size, 1);
});

test('one flush sends everything since the last one as one frame, the same bytes to every member; nothing new, no frame', async () => {
  const { rooms, bus, store, frames } = makeRooms();
  const room = await rooms.open(EVENT);
  const [m1, m2] = [new Member({ id: 'v_1' }), new Member()];
  room.members.add(m1).add(m2);
  for (const c of store.add(1, 2, 3)) await publish(bus, { t: 'comment', comment: c });
  await publish(bus, { t: 'reactions', edge: 'edge-b', counts: { heart: 2 } });
  await publish(bus, { t: 'likes', likes: 7, dislikes: 2 });
  await bus.publish(signalsChannel(EVENT), JSON.stringify({ signal: 'event_status', status: 'live' }));
  rooms.react(room, 'heart');
  rooms.react(room, 'clap');
  await room.chain;

  rooms.flush();
  assert.equal(m1.frames.length, 1);
  assert.equal(m1.frames[0], m2.frames[0], 'serialized once for the room');
  const [batch] = m1.batches();
  assert.deepEqual(
    batch!.comments!.map((c) => c.seq),
    [1, 2, 3],
  );
  assert.deepEqual(batch!.reactions, { heart: 3, clap: 1 }, 'this edge and the others, aggregated to counts');
  assert.deepEqual(batch!.likes, { likes: 7, dislikes: 2 });
  assert.deepEqual(batch!.signals, [{ signal: 'event_status', status: 'live' }]);
  assert.equal(room.flushedSeq, 3);
  assert.equal(room.signalsFlushed, 1);
  assert.equal(frames(), 2);

  await room.chain;
  rooms.flush();
  assert.equal(m1.frames.length, 1, 'no frame when nothing happened');
});

test("this edge's reactions are published once per flush and its own echo is not counted twice", async () => {
  const { rooms, bus } = makeRooms({ edgeId: 'edge-a' });
  const room = await rooms.open(EVENT);
  const member = new Member();
  room.members.add(member);
  const seen: ChatBusMessage[] = [];
  await bus.subscribe(chatChannel(EVENT), (t) => seen.push(JSON.parse(t) as ChatBusMessage));
  rooms.react(room, 'fire');
  rooms.react(room, 'fire');
  rooms.flush();
  await new Promise<void>((r) => queueMicrotask(r));
  assert.deepEqual(seen, [{ t: 'reactions', edge: 'edge-a', counts: { fire: 2 } }]);
  rooms.flush();
  assert.deepEqual(
    member.batches().map((b) => b.reactions),
    [{ fire: 2 }],
    'the echo of its own publish is ignored',
  );
});

test('comments enter in seq order: a gap is filled from the store, duplicates and old ones are dropped', async () => {
  const store = new FakeStore();
  store.add(1, 2);
  const { rooms, bus } = makeRooms({ store });
  const room = await rooms.open(EVENT);
  const member = new Member();
  room.members.add(member);
  const [, , c5] = store.add(3, 4, 5);
  await publish(bus, { t: 'comment', comment: c5! }); // 3 and 4 were lost on the bus
  await publish(bus, { t: 'comment', comment: comment(4) }); // late duplicate
  await publish(bus, { t: 'comment', comment: comment(2) }); // already in the store at open
  await room.chain;
  rooms.flush();
  assert.deepEqual(
    member.batches()[0]!.comments!.map((c) => c.seq),
    [3, 4, 5],
  );
  assert.equal(room.lastSeq, 5);
});

test('a member with a lastSeq ahead of the flush gets only later comments, then the shared frame again', async () => {
  const { rooms, bus, store } = makeRooms();
  const room = await rooms.open(EVENT);
  const fresh = new Member();
  const ahead = new Member();
  ahead.skipUpTo = 2; // it already has 1 and 2 (its own acks)
  room.members.add(fresh).add(ahead);
  for (const c of store.add(1, 2)) await publish(bus, { t: 'comment', comment: c });
  await room.chain;
  rooms.flush();
  assert.deepEqual(
    fresh.batches().map((b) => b.comments!.map((c) => c.seq)),
    [[1, 2]],
  );
  assert.equal(ahead.frames.length, 0, 'a frame of only what it has is not sent');
  assert.equal(ahead.skipUpTo, undefined, 'the room flushed past its lastSeq');

  for (const c of store.add(3)) await publish(bus, { t: 'comment', comment: c });
  await room.chain;
  rooms.flush();
  assert.equal(ahead.frames.at(-1), fresh.frames.at(-1), 'back on the shared frame');
  assert.deepEqual(
    ahead.batches().map((b) => b.comments!.map((c) => c.seq)),
    [[3]],
  );
});

test('a member ahead by part of a batch gets its own frame without the comments it has', async () => {
  const { rooms, bus, store } = makeRooms();
  const room = await rooms.open(EVENT);
  const ahead = new Member();
  ahead.skipUpTo = 2;
  room.members.add(ahead);
  for (const c of store.add(1, 2, 3)) await publish(bus, { t: 'comment', comment: c });
  await room.chain;
  rooms.flush();
  assert.deepEqual(
    ahead.batches().map((b) => b.comments!.map((c) => c.seq)),
    [[3]],
  );
});

test('catch-up takes from the store what the bus has not delivered; removals and bans reach the members', async () => {
  const { rooms, bus, store, banned } = makeRooms();
  const room = await rooms.open(EVENT);
  const bob = new Member({ id: 'v_bob' });
  const eve = new Member({ id: 'v_eve' });
  room.members.add(bob).add(eve);
  store.add(1, 2); // stored on another edge, not (yet) on the bus
  await rooms.catchUpAll();
  await publish(bus, { t: 'remove', ids: ['c1'] });
  await publish(bus, { t: 'ban', viewerId: 'v_eve' });
  rooms.flush();
  const [batch] = bob.batches();
  assert.deepEqual(
    batch!.comments!.map((c) => c.seq),
    [2],
    'the removed one never goes out',
  );
  assert.deepEqual(batch!.removed, ['c1']);
  assert.deepEqual(banned, [eve]);
});

test('the bus going down and back shows in the batch and resyncs settings and likes from the store', async () => {
  const { rooms, store } = makeRooms();
  const room = await rooms.open(EVENT);
  const member = new Member();
  room.members.add(member);
  rooms.setBusUp(false);
  rooms.flush();
  assert.equal(member.batches().at(-1)!.chat, 'unavailable');
  store.likes = { likes: 10, dislikes: 0 };
  store.settingsOf = { chatEnabled: true, slowModeSec: 30 };
  store.add(1);
  rooms.setBusUp(true);
  await room.chain;
  rooms.flush();
  const last = member.batches().at(-1)!;
  assert.equal(last.chat, 'ok');
  assert.deepEqual(last.likes, { likes: 10, dislikes: 0 });
  assert.deepEqual(last.settings, { chatEnabled: true, slowModeSec: 30 });
  assert.deepEqual(
    last.comments!.map((c) => c.seq),
    [1],
  );
});

test('viewer counts: each edge reports its members, every room shows the total; an idle room closes and reports zero', async () => {
  const presence = createMemoryPresence();
  const bus = createMemoryBus();
  const a = makeRooms({ bus, presence, edgeId: 'edge-a' });
  const b = makeRooms({ bus, presence, edgeId: 'edge-b' });
  const roomA = await a.rooms.open(EVENT);
  const roomB = await b.rooms.open(EVENT);
  roomA.members.add(new Member()).add(new Member());
  const lone = new Member();
  roomB.members.add(lone);
  await a.rooms.reportPresence();
  await b.rooms.reportPresence();
  await a.rooms.reportPresence();
  assert.equal(a.rooms.viewerCount(EVENT), 3);
  assert.equal(b.rooms.viewerCount(EVENT), 3);
  assert.deepEqual(a.counts.at(-1), { eventId: EVENT, viewers: 3 });
  b.rooms.flush();
  assert.equal(lone.batches().at(-1)!.viewers, 3);

  b.rooms.leave(roomB, lone);
  assert.equal(roomB.members.size, 0);
  roomB.emptySince = Date.now() - 2_000; // longer than viewerCountMs
  await b.rooms.reportPresence();
  assert.equal(b.rooms.size, 0, 'closed');
  assert.equal(b.rooms.viewerCount(EVENT), 0);
  await a.rooms.reportPresence();
  assert.equal(a.rooms.viewerCount(EVENT), 2, 'the closed room no longer counts');
});
