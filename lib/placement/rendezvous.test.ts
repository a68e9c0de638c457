// Weighted rendezvous hashing: determinism, shares proportional to weight, minimal disruption, full origins excluded.
// The event ids are fixed, so the statistical checks give the same figures on every run and cannot flake.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { originWeight, pairHash, rankOrigins } from './rendezvous.ts';
import type { OriginInfo } from './types.ts';

function origin(id: string, capacity: number, liveEvents = 0, cpu = 0): OriginInfo {
  return { id, url: `http://${id}.test`, capacity, liveEvents, cpu, updatedAtMs: 0 };
}

const EVENT_IDS = Array.from({ length: 6000 }, (_, i) => `event-${i}`);

function firstShares(origins: readonly OriginInfo[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of EVENT_IDS) {
    const top = rankOrigins(id, origins)[0]!.id;
    counts.set(top, (counts.get(top) ?? 0) + 1);
  }
  return new Map([...counts].map(([k, v]) => [k, v / EVENT_IDS.length]));
}

test('the ranking is deterministic and does not depend on the order origins are listed in', () => {
  const pool = [origin('a', 4), origin('b', 4, 1), origin('c', 8, 2, 0.5), origin('d', 2)];
  for (const id of EVENT_IDS.slice(0, 200)) {
    const once = rankOrigins(id, pool).map((o) => o.id);
    assert.deepEqual(
      rankOrigins(id, pool).map((o) => o.id),
      once,
    );
    assert.deepEqual(
      rankOrigins(id, [...pool].reverse()).map((o) => o.id),
      once,
    );
    assert.equal(once.length, 4);
  }
  const u = pairHash('e', 'o');
  assert.ok(u > 0 && u < 1);
  assert.equal(pairHash('e', 'o'), u);
});

test('each origin comes first for a share of events proportional to its free capacity', () => {
  // Weights 1 : 2 : 3 (free slots 10, 20, 30).
  const shares = firstShares([origin('a', 10), origin('b', 25, 5), origin('c', 30)]);
  const expected = { a: 1 / 6, b: 2 / 6, c: 3 / 6 };
  for (const [id, want] of Object.entries(expected)) {
    const got = shares.get(id) ?? 0;
    // Binomial sd at n = 6000 is at most 0.0065; 0.03 is over 4 sd, and the ids are fixed.
    assert.ok(Math.abs(got - want) < 0.03, `${id}: share ${got.toFixed(4)}, expected ${want.toFixed(4)}`);
  }
});

test('CPU load tilts the share: a fully busy origin weighs half an idle one with the same free slots', () => {
  assert.equal(originWeight(origin('a', 10, 0, 1)), 5);
  assert.equal(originWeight(origin('a', 10, 0, 0)), 10);
  const shares = firstShares([origin('idle', 10, 0, 0), origin('busy', 10, 0, 1)]);
  assert.ok(Math.abs((shares.get('idle') ?? 0) - 2 / 3) < 0.03, `idle share ${shares.get('idle')}`);
});

test('removing an origin moves only the events it ranked first; the others keep their order', () => {
  const pool = ['a', 'b', 'c', 'd', 'e'].map((id, i) => origin(id, 10 + i * 3, i));
  const without = pool.filter((o) => o.id !== 'c');
  let moved = 0;
  for (const id of EVENT_IDS) {
    const before = rankOrigins(id, pool).map((o) => o.id);
    const after = rankOrigins(id, without).map((o) => o.id);
    assert.deepEqual(
      after,
      before.filter((o) => o !== 'c'),
      `${id}: the remaining origins keep their relative order`,
    );
    if (before[0] === 'c') moved++;
    else assert.equal(after[0], before[0], `${id} stays on its origin`);
  }
  assert.ok(moved > 0, 'some events were on the removed origin');
});

test('full origins are never chosen; a full pool ranks nothing', () => {
  const pool = [origin('full', 4, 4), origin('over', 2, 3), origin('zero', 0), origin('free', 4, 3)];
  for (const id of EVENT_IDS.slice(0, 500))
    assert.deepEqual(
      rankOrigins(id, pool).map((o) => o.id),
      ['free'],
    );
  assert.deepEqual(rankOrigins('x', [origin('full', 4, 4), origin('zero', 0)]), []);
  assert.deepEqual(rankOrigins('x', []), []);
});
