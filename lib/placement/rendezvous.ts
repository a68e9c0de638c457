// Weighted rendezvous hashing (highest random weight) over the origin pool: pure, so every ingest ranks the same
// origins the same way for an event without talking to the others.
//
// Each origin with free capacity gets, for an event, the score -weight / ln(u), where u in (0, 1) is a stable hash of
// `${eventId}|${origin.id}`. The highest score wins. With u uniform this is the logarithmic method of weighted
// rendezvous hashing: origin i comes first for a share weight_i / Σ weight of events, and removing an origin moves
// only the events it ranked first (every other pair's scores are unchanged).
//
// Weight rule: free capacity (capacity - liveEvents), scaled by (1 - cpu / 2). A fully busy machine (cpu 1) thus gets
// half the share of an idle one with the same free slots; capacity stays the hard limit, CPU only tilts the choice.
import { createHash } from 'node:crypto';
import type { OriginInfo } from './types.ts';

/** Slots an origin has left: capacity - liveEvents, never negative. */
export function freeSlots(origin: Pick<OriginInfo, 'capacity' | 'liveEvents'>): number {
  return Math.max(0, origin.capacity - origin.liveEvents);
}

/** The origin's rendezvous weight: free slots × (1 − cpu / 2), cpu clamped to 0..1; 0 when it is full. */
export function originWeight(origin: Pick<OriginInfo, 'capacity' | 'liveEvents' | 'cpu'>): number {
  const cpu = Number.isFinite(origin.cpu) ? Math.min(1, Math.max(0, origin.cpu)) : 0;
  return freeSlots(origin) * (1 - cpu / 2);
}

/** A stable uniform number in (0, 1) for the pair (eventId, originId): the top 48 bits of SHA-1, centred in its bucket. */
export function pairHash(eventId: string, originId: string): number {
  const digest = createHash('sha1').update(`${eventId}|${originId}`).digest();
  return (digest.readUIntBE(0, 6) + 0.5) / 2 ** 48;
}

/** The origin's rendezvous score for `eventId` (higher is better): -weight / ln(u). */
export function rendezvousScore(eventId: string, origin: OriginInfo): number {
  return -originWeight(origin) / Math.log(pairHash(eventId, origin.id));
}

/** The origins with free capacity, best first for `eventId`; ties (equal scores) are broken by id. */
export function rankOrigins(eventId: string, origins: readonly OriginInfo[]): OriginInfo[] {
  return origins
    .filter((o) => originWeight(o) > 0)
    .map((o) => ({ o, score: rendezvousScore(eventId, o) }))
    .sort((a, b) => b.score - a.score || (a.o.id < b.o.id ? -1 : a.o.id > b.o.id ? 1 : 0))
    .map((s) => s.o);
}
