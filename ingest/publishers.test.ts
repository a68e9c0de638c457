// Tests of the publisher registry: one publisher per event across protocols, take-over of a silent one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublisherRegistry, type Publisher, type PublisherClaim } from './publishers.ts';

/** A registry on a fake clock whose waits advance the clock. */
function setup() {
  const clock = { now: 10_000 };
  const registry = createPublisherRegistry({
    staleMs: 3_000,
    pollMs: 50,
    now: () => clock.now,
    sleep: async (ms) => {
      clock.now += ms;
    },
  });
  return { clock, registry };
}

/** A publisher whose last activity the test sets. */
function publisher(protocol: string, lastActiveAt: number) {
  const p = { protocol, last: lastActiveAt, evicted: [] as number[] };
  const view: Publisher = { protocol, lastActiveAt: () => p.last, evict: (silentMs) => p.evicted.push(silentMs) };
  return Object.assign(p, { view });
}

const always = () => true;

async function claimed(r: ReturnType<typeof setup>['registry'], eventId: string, p: Publisher): Promise<PublisherClaim> {
  const result = await r.claim(eventId, p, always);
  assert.ok(result.ok, 'claimed');
  return result.claim;
}

test('a free event is claimed at once; a second claim is refused while the holder keeps sending', async () => {
  const { clock, registry } = setup();
  const a = publisher('rtmp', clock.now);
  const claim = await claimed(registry, 'ev1', a.view);
  assert.equal(claim.held, true);
  assert.equal(registry.holderProtocol('ev1'), 'rtmp');
  assert.equal(registry.holderProtocol('ev2'), undefined);

  // The holder sends something after the newcomer arrived: the newcomer is refused, whatever its protocol.
  const b = publisher('whip', clock.now);
  const pending = registry.claim('ev1', b.view, () => {
    a.last = clock.now; // activity while the newcomer waits
    return true;
  });
  assert.deepEqual(await pending, { ok: false, reason: 'already_live' });
  assert.deepEqual(a.evicted, []);
  assert.equal(claim.held, true);
  assert.equal(registry.holderProtocol('ev1'), 'rtmp');
});

test('a holder that cannot be taken over (+Infinity, e.g. still connecting) refuses a newcomer at once', async () => {
  const { clock, registry } = setup();
  await claimed(registry, 'ev1', publisher('whip', Number.POSITIVE_INFINITY).view);
  const start = clock.now;
  assert.deepEqual(await registry.claim('ev1', publisher('rtmp', clock.now).view, always), { ok: false, reason: 'already_live' });
  assert.equal(clock.now, start, 'no waiting');
});

test('a release frees the event for the next publisher', async () => {
  const { clock, registry } = setup();
  const claim = await claimed(registry, 'ev1', publisher('rtmp', clock.now).view);
  claim.release();
  assert.equal(claim.held, false);
  assert.equal(registry.holderProtocol('ev1'), undefined);
  claim.release(); // twice is harmless
  const next = await claimed(registry, 'ev1', publisher('whip', clock.now).view);
  assert.equal(next.held, true);
});

test('a holder silent for the stale time is evicted and the newcomer takes over; its late release frees nothing', async () => {
  const { clock, registry } = setup();
  const old = publisher('rtmp', clock.now);
  const oldClaim = await claimed(registry, 'ev1', old.view);
  clock.now += 1_000; // silent for 1 s: the newcomer waits for 2 s more
  const fresh = publisher('whip', clock.now);
  const result = await registry.claim('ev1', fresh.view, always);
  assert.ok(result.ok);
  assert.equal(clock.now, 10_000 + 3_000, 'taken over exactly at the stale time');
  assert.deepEqual(old.evicted, [3_000]);
  assert.equal(oldClaim.held, false);
  assert.equal(registry.holderProtocol('ev1'), 'whip');

  oldClaim.release(); // the superseded holder cleans up after its eviction
  assert.equal(result.claim.held, true, "the new holder's claim survives");
  assert.equal(registry.holderProtocol('ev1'), 'whip');
});

test('a claimant that goes away while waiting gives up, and the holder keeps the event', async () => {
  const { clock, registry } = setup();
  const holder = publisher('rtmp', clock.now);
  const claim = await claimed(registry, 'ev1', holder.view);
  let polls = 0;
  const result = await registry.claim('ev1', publisher('rtmp', clock.now).view, () => ++polls < 3);
  assert.deepEqual(result, { ok: false, reason: 'gone' });
  assert.equal(claim.held, true);
  assert.deepEqual(holder.evicted, []);
});
