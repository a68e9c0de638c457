// Viewer presence: each edge reports its connection count per event; totals sum every edge whose report has not expired.

/** Aggregates per-edge viewer counts into per-event totals. */
export interface Presence {
  /** Records `count` viewers of `eventId` on `edgeId`, valid for `ttlMs`; resolves to the event's total across edges. */
  report(eventId: string, edgeId: string, count: number, ttlMs: number): Promise<number>;
}

/** In-process presence (all-in-one): one map, entries expire like the Redis ones. */
export function createMemoryPresence(now: () => number = Date.now): Presence {
  const events = new Map<string, Map<string, { count: number; expires: number }>>();
  return {
    async report(eventId, edgeId, count, ttlMs) {
      let edges = events.get(eventId);
      if (!edges) events.set(eventId, (edges = new Map()));
      const t = now();
      if (count > 0) edges.set(edgeId, { count, expires: t + ttlMs });
      else edges.delete(edgeId);
      let total = 0;
      for (const [id, e] of edges) {
        if (e.expires <= t) edges.delete(id);
        else total += e.count;
      }
      if (edges.size === 0) events.delete(eventId);
      return total;
    },
  };
}
