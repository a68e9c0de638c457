// Placements against a real redis-server: choice of origins, capacity, session and timeline continuity, fencing of
// old epochs and of a slower placer, record expiry, and change notifications between two processes' connections.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createRedisTestServer, type RedisTestServer } from '../../test/support/redis-test-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { createRedisBus } from '../bus/redis-bus.ts';
import { createRedisClient, type RedisClient } from '../bus/redis-connection.ts';
import type { Bus } from '../bus/bus.ts';
import { createOriginRegistry, type OriginRegistry } from './origin-registry.ts';
import { createPlacements, epochKey } from './placements.ts';
import { rankOrigins } from './rendezvous.ts';
import { PlacementError, type OriginInfo, type Placement } from './types.ts';

const logger = pino({ level: 'silent' });
let server: RedisTestServer;
const clients: RedisClient[] = [];
const buses: Bus[] = [];
let registry: OriginRegistry;
let clock = 1_000_000;
const now = () => clock;

async function client(): Promise<RedisClient> {
  const c = createRedisClient(server.url, { offlineQueue: false, connectionName: 'placement-test' });
  c.on('error', () => undefined);
  clients.push(c);
  await c.connect();
  return c;
}

/** One process's worth of placements: its own command connection and its own bus (two more connections). */
async function node(opts: { ttlMs?: number } = {}) {
  const redis = await client();
  const bus = createRedisBus({ url: server.url, mode: 'pubsub', logger });
  buses.push(bus);
  await bus.start();
  const placements = createPlacements({ redis, bus, registry: createOriginRegistry(redis), now, ttlMs: opts.ttlMs, logger });
  await placements.start(new AbortController().signal);
  return { redis, placements };
}

function origin(id: string, capacity = 4, liveEvents = 0): OriginInfo {
  return { id, url: `http://${id}.test`, capacity, liveEvents, cpu: 0, updatedAtMs: 0 };
}

async function register(...origins: OriginInfo[]) {
  for (const o of origins) await registry.heartbeat(o);
}

async function rejectsWith(p: Promise<unknown>, code: PlacementError['code'], message?: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof PlacementError, `a PlacementError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

before(async () => {
  server = await createRedisTestServer();
  await server.start();
  registry = createOriginRegistry(await client(), { ttlMs: 60_000 });
});
beforeEach(async () => {
  await clients[0]!.flushall();
  clock += 1_000_000;
});
after(async () => {
  for (const b of buses) await b.stop();
  for (const c of clients) c.disconnect();
  await server?.stop();
});

test('place: R origins by rendezvous, epoch 1, session 1, timeline zero now; get reads it back', async () => {
  const pool = [origin('a'), origin('b'), origin('c')];
  await register(...pool);
  const { placements } = await node();
  const p = await placements.place('ev1', { ingest: 'ingest-1', replicas: 2 });
  const want = rankOrigins('ev1', pool)
    .slice(0, 2)
    .map((o) => ({ id: o.id, url: o.url }));
  assert.deepEqual(p, {
    eventId: 'ev1',
    epoch: 1,
    ingest: 'ingest-1',
    origins: want,
    timelineZeroMs: clock,
    session: 1,
    updatedAtMs: clock,
  });
  assert.deepEqual(await placements.get('ev1'), p);
  assert.equal(await placements.get('nope'), undefined);
});

test('fewer origins than replicas: placed on what there is', async () => {
  await register(origin('only'), origin('full', 2, 2));
  const { placements } = await node();
  const p = await placements.place('ev', { ingest: 'i', replicas: 3 });
  assert.deepEqual(
    p.origins.map((o) => o.id),
    ['only'],
  );
});

test('no origin registered: no_origins; every origin full: pool_full with the pool in the message', async () => {
  const { placements } = await node();
  await rejectsWith(placements.place('ev', { ingest: 'i', replicas: 2 }), 'no_origins');
  await register(origin('a', 3, 3), origin('b', 4, 4));
  await rejectsWith(
    placements.place('ev', { ingest: 'i', replicas: 2 }),
    'pool_full',
    /^every origin is at capacity \(2 origins, 7 live events\)$/,
  );
  assert.equal(await placements.get('ev'), undefined, 'nothing written');
});

test('a re-place without release continues the broadcast: session + 1, same timeline, the previous origins first', async () => {
  await register(origin('a'), origin('b'), origin('c'));
  const one = await node();
  const first = await one.placements.place('ev', { ingest: 'ingest-1', replicas: 2 });
  const [p0, p1] = first.origins;
  const other = ['a', 'b', 'c'].find((id) => id !== p0!.id && id !== p1!.id)!;
  // The previous origins now look full (they count this event) and a big empty origin joins: they are still kept.
  await register(origin(p0!.id, 4, 4), origin(p1!.id, 4, 4), origin(other, 4, 0), origin('huge', 1000, 0));
  clock += 5_000;
  const two = await node();
  const second = await two.placements.place('ev', { ingest: 'ingest-2', replicas: 2 });
  assert.equal(second.epoch, 2);
  assert.equal(second.session, 2);
  assert.equal(second.timelineZeroMs, first.timelineZeroMs, 'timeline kept');
  assert.equal(second.ingest, 'ingest-2');
  assert.deepEqual(second.origins, first.origins, 'same origins, same order');
  assert.equal(second.updatedAtMs, clock);

  // One previous origin died: the survivor stays first, the free slot goes by rendezvous.
  await registry.remove(p0!.id);
  const third = await one.placements.place('ev', { ingest: 'ingest-1', replicas: 2 });
  assert.equal(third.session, 3);
  assert.equal(third.origins[0]!.id, p1!.id);
  const rest = rankOrigins('ev', await registry.list()).filter((o) => o.id !== p1!.id);
  assert.equal(third.origins[1]!.id, rest[0]!.id);
  assert.equal(third.timelineZeroMs, first.timelineZeroMs);

  // After release the next broadcast starts afresh.
  await one.placements.release('ev', third.epoch);
  clock += 1;
  const fresh = await one.placements.place('ev', { ingest: 'ingest-1', replicas: 1 });
  assert.equal(fresh.session, 1);
  assert.equal(fresh.timelineZeroMs, clock);
  assert.equal(fresh.epoch, 4, 'the epoch counter never resets');
});

test('fencing: an old epoch can neither replace, renew nor release', async () => {
  await register(origin('a'), origin('b'), origin('c'));
  const { placements } = await node();
  const old = await placements.place('ev', { ingest: 'i1', replicas: 2 });
  const cur = await placements.place('ev', { ingest: 'i2', replicas: 2 });
  assert.ok(cur.epoch > old.epoch);
  await rejectsWith(placements.replace('ev', old.epoch, [old.origins[0]!.id]), 'fenced', /epoch 2, not 1/);
  assert.equal(await placements.renew('ev', old.epoch), false);
  await placements.release('ev', old.epoch);
  assert.deepEqual(await placements.get('ev'), cur, 'untouched by the fenced calls');
  assert.equal(await placements.renew('ev', cur.epoch), true);
  await placements.release('ev', cur.epoch);
  assert.equal(await placements.get('ev'), undefined);
  await rejectsWith(placements.replace('ev', cur.epoch, []), 'fenced', /no placement/);
  assert.equal(await placements.renew('ev', cur.epoch), false);
});

test('a slower placer holding an older epoch cannot overwrite a newer placement', async () => {
  await register(origin('a'), origin('b'));
  const slow = await node();
  const fast = await node();
  // Hold the slow placer's write until the fast one has placed: its epoch was drawn first, so it is older.
  const cmd = slow.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = cmd.onairPlacementPlace!.bind(slow.redis);
  let epochDrawn!: () => void;
  const drawn = new Promise<void>((r) => (epochDrawn = r));
  let releaseWrite!: () => void;
  const gate = new Promise<void>((r) => (releaseWrite = r));
  cmd.onairPlacementPlace = async (...args: unknown[]) => {
    epochDrawn();
    await gate;
    return original(...args);
  };
  const slowPlace = slow.placements.place('ev', { ingest: 'slow', replicas: 1 });
  await drawn;
  const winner = await fast.placements.place('ev', { ingest: 'fast', replicas: 1 });
  releaseWrite();
  await rejectsWith(slowPlace, 'fenced', /placed again meanwhile \(epoch 2 > 1\)/);
  assert.equal(winner.epoch, 2);
  assert.deepEqual(await fast.placements.get('ev'), winner);
  assert.equal(await slow.redis.get(epochKey('ev')), '2');
});

test('replace swaps the failed origin for another as a new epoch, keeping the others, the session and the timeline', async () => {
  await register(origin('a'), origin('b'), origin('c'), origin('d'));
  const { placements } = await node();
  await placements.place('ev', { ingest: 'i', replicas: 2 });
  const p = await placements.place('ev', { ingest: 'i', replicas: 2 }); // session 2
  const [primary, secondary] = p.origins;
  clock += 10;
  const r = await placements.replace('ev', p.epoch, [primary!.id]);
  assert.equal(r.epoch, p.epoch + 1);
  assert.equal(r.session, p.session);
  assert.equal(r.timelineZeroMs, p.timelineZeroMs);
  assert.equal(r.ingest, p.ingest);
  assert.equal(r.updatedAtMs, clock);
  const expectedNew = rankOrigins('ev', await registry.list()).find((o) => o.id !== primary!.id && o.id !== secondary!.id)!;
  assert.deepEqual(r.origins, [secondary, { id: expectedNew.id, url: expectedNew.url }]);
  assert.deepEqual(await placements.get('ev'), r);
});

test('replace with nothing left: fewer origins, then pool_full / no_origins when none remains', async () => {
  await register(origin('a'), origin('b'));
  const { placements } = await node();
  const p = await placements.place('ev', { ingest: 'i', replicas: 2 });
  const r = await placements.replace('ev', p.epoch, [p.origins[0]!.id]);
  assert.deepEqual(r.origins, [p.origins[1]], 'no third origin: carries on with the survivor');
  const [failed, survivor] = [p.origins[0]!.id, p.origins[1]!.id];
  await register(origin(failed, 4, 4)); // back, but full
  await rejectsWith(placements.replace('ev', r.epoch, [survivor]), 'pool_full', /\(1 origins, 4 live events\)/);
  await registry.remove(failed);
  await rejectsWith(placements.replace('ev', r.epoch, [survivor]), 'no_origins');
  assert.deepEqual(await placements.get('ev'), r, 'a failed replace changes nothing');
});

test('a record not renewed expires after its TTL; renewing keeps it', async () => {
  await register(origin('a'));
  const { placements } = await node({ ttlMs: 400 });
  const p = await placements.place('ev', { ingest: 'i', replicas: 1 });
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(await placements.renew('ev', p.epoch), true, `renewal ${i}`);
  }
  assert.deepEqual(await placements.get('ev'), p, 'alive after 800 ms thanks to renewals');
  await waitFor('expired', async () => (await placements.get('ev')) === undefined, 2000, 20);
  assert.equal(await placements.renew('ev', p.epoch), false, 'too late to renew');
});

test('the owner restores a record Redis lost (restart, or expiry while out of reach) unless a newer epoch was issued', async () => {
  await register(origin('a'), origin('b'));
  const { placements } = await node();
  const p = await placements.place('ev', { ingest: 'i', replicas: 1 });
  await clients[0]!.flushall(); // Redis came back empty
  assert.equal(await placements.renew('ev', p.epoch), false, 'without its record the owner cannot restore it');
  assert.equal(await placements.renew('ev', p.epoch, p), true, 'with it, it can');
  assert.deepEqual(await placements.get('ev'), p);
  await register(origin('a'), origin('b'));
  const next = await placements.place('ev', { ingest: 'j', replicas: 1 });
  assert.ok(next.epoch > p.epoch, 'the epoch counter was raised to the restored epoch');
  await clients[0]!.del('onair:placement:{ev}');
  assert.equal(await placements.renew('ev', p.epoch, p), false, 'a newer epoch was issued: the old owner is fenced');
  assert.equal(await placements.get('ev'), undefined);
});

test('changes reach the listeners of another process at once, and the maker’s own listeners exactly once', async () => {
  await register(origin('a'), origin('b'), origin('c'));
  const maker = await node();
  const watcher = await node();
  const seenByWatcher: [string, Placement | undefined][] = [];
  const seenByMaker: [string, Placement | undefined][] = [];
  watcher.placements.onChange((id, p) => seenByWatcher.push([id, p]));
  const off = maker.placements.onChange((id, p) => seenByMaker.push([id, p]));

  const p = await maker.placements.place('ev', { ingest: 'i', replicas: 2 });
  assert.deepEqual(seenByMaker, [['ev', p]], 'local listeners hear it before place resolves');
  await waitFor('watcher hears the placement', () => seenByWatcher.length === 1);
  assert.deepEqual(seenByWatcher, [['ev', p]]);
  const r = await maker.placements.replace('ev', p.epoch, [p.origins[0]!.id]);
  await waitFor('watcher hears the replacement', () => seenByWatcher.length === 2);
  assert.deepEqual(seenByWatcher[1], ['ev', r]);
  await maker.placements.release('ev', r.epoch);
  await waitFor('watcher hears the release', () => seenByWatcher.length === 3);
  assert.deepEqual(seenByWatcher[2], ['ev', undefined]);
  assert.deepEqual(
    seenByMaker.map(([, x]) => x?.epoch),
    [p.epoch, r.epoch, undefined],
    'own changes not heard twice over the bus',
  );
  // Fenced calls announce nothing.
  await maker.placements.release('ev', r.epoch);
  assert.equal(await maker.placements.renew('ev', r.epoch), false);

  off();
  await watcher.placements.stop();
  await maker.placements.place('ev', { ingest: 'i', replicas: 1 });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(seenByWatcher.length, 3, 'a stopped watcher hears nothing more');
  assert.equal(seenByMaker.length, 3, 'an unsubscribed listener hears nothing more');
});
