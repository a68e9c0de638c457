// Placements as an edge or control node reads them: cached per event, kept fresh by the change feed, bounded when
// Redis is away.
//
// - A hit younger than `ttlMs` (a live placement) or `negativeTtlMs` (not live) is served from memory; an older one is
//   read again. Concurrent misses for one event share a single Redis read.
// - Changes from the feed (Placements.onChange: this process's and, through the bus, every other's) replace cached
//   entries at once; a change carrying a lower epoch than the cached one (a late message) is ignored, and a release
//   drops the entry so the next read asks Redis. Only events already cached (or being read) are updated, so the feed
//   does not fill the cache with events nobody here asks about.
// - When the read fails (Redis down), the last known value is served while it is at most `maxStaleMs` old (counted
//   from when it was last read or announced); after that the read's error is thrown.
// - A record that expires un-renewed is not announced: the cache learns it when its entry's TTL runs out.
import { LRUCache } from 'lru-cache';
import type { Service } from '../lifecycle.ts';
import type { Placement, PlacementSource, Placements } from './types.ts';

/** What {@link createPlacementCache} needs. */
export interface PlacementCacheDeps {
  placements: Pick<Placements, 'get' | 'onChange'>;
  /** Clock for entry ages (default Date.now). */
  now?: () => number;
  /** Re-read a live placement after this long, in ms (default 2000). */
  ttlMs?: number;
  /** Re-read a "not live" answer after this long, in ms (default 500): 404 floods cost one read per event per window. */
  negativeTtlMs?: number;
  /** Serve the cached value when Redis fails, while it is at most this old, in ms (default 30000). */
  maxStaleMs?: number;
  /** Events kept, least recently used dropped first (default 10000). */
  maxEntries?: number;
}

interface Entry {
  placement: Placement | undefined;
  /** When the value was read from Redis or announced. */
  at: number;
}

interface Read {
  promise: Promise<Placement | undefined>;
  /** A change arrived while the read was under way: its answer may be older than the cached value. */
  overtaken: boolean;
}

/** Creates the cache; start() follows the change feed, stop() leaves it and empties the cache. */
export function createPlacementCache(deps: PlacementCacheDeps): PlacementSource & Service {
  const { placements } = deps;
  const now = deps.now ?? Date.now;
  const ttlMs = deps.ttlMs ?? 2000;
  const negativeTtlMs = deps.negativeTtlMs ?? 500;
  const maxStaleMs = deps.maxStaleMs ?? 30_000;
  const entries = new LRUCache<string, Entry>({ max: Math.max(1, deps.maxEntries ?? 10_000) });
  const reads = new Map<string, Read>();
  let unsubscribe: (() => void) | undefined;

  const apply = (eventId: string, placement: Placement | undefined) => {
    const read = reads.get(eventId);
    const cached = entries.peek(eventId);
    if (!read && !cached) return;
    if (read) read.overtaken = true;
    if (!placement) {
      entries.delete(eventId);
      return;
    }
    if (cached?.placement && cached.placement.epoch > placement.epoch) return;
    entries.set(eventId, { placement, at: now() });
  };

  const read = (eventId: string): Promise<Placement | undefined> => {
    const r: Read = { promise: Promise.resolve(undefined), overtaken: false };
    reads.set(eventId, r); // before the read starts, so its end (even a synchronous throw) finds and removes it
    r.promise = (async () => {
      try {
        const value = await placements.get(eventId);
        if (!r.overtaken) entries.set(eventId, { placement: value, at: now() });
        else if (entries.peek(eventId)) return entries.peek(eventId)!.placement;
        return value;
      } catch (err) {
        const stale = entries.peek(eventId);
        if (stale && now() - stale.at <= maxStaleMs) return stale.placement;
        throw err;
      } finally {
        if (reads.get(eventId) === r) reads.delete(eventId);
      }
    })();
    return r.promise;
  };

  return {
    async get(eventId) {
      const hit = entries.get(eventId);
      if (hit && now() - hit.at < (hit.placement ? ttlMs : negativeTtlMs)) return hit.placement;
      return (reads.get(eventId) ?? { promise: read(eventId) }).promise;
    },
    async start() {
      unsubscribe ??= placements.onChange(apply);
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      entries.clear();
    },
  };
}
