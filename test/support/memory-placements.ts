// Test helper: Placements in memory, honest about fencing. Epochs come from one counter, so they strictly increase
// for every new placement of any event (also after a release); replace, renew and release act only at the current
// epoch. Origins are chosen by free capacity (most first, then id), preferring the previous placement's origins;
// an origin marked down is never chosen. Change notifications arrive asynchronously, as from pub/sub.
import { PlacementError, type Placement, type Placements } from '../../lib/placement/types.ts';

/** An origin the test registers. */
export interface MemoryOrigin {
  id: string;
  url: string;
  capacity: number;
  /** False: the origin is gone (never chosen again until it comes back). */
  up: boolean;
}

/** One call made on the placements, for assertions. */
export type PlacementCall =
  | { op: 'place'; eventId: string; ingest: string; replicas: number }
  | { op: 'replace'; eventId: string; epoch: number; failed: string[] }
  | { op: 'renew'; eventId: string; epoch: number; ok: boolean }
  | { op: 'release'; eventId: string; epoch: number; released: boolean };

/** In-memory Placements with a few handles for tests (origins up/down, calls made, epochs). */
export class MemoryPlacements implements Placements {
  readonly origins = new Map<string, MemoryOrigin>();
  readonly calls: PlacementCall[] = [];
  readonly #records = new Map<string, Placement>();
  readonly #listeners = new Set<(eventId: string, placement: Placement | undefined) => void>();
  #epoch = 0;
  /** Set to make the next place()/replace() reject with this error (once). */
  failNext: Error | undefined;

  constructor(
    origins: { id: string; url: string; capacity?: number }[] = [],
    private readonly now: () => number = Date.now,
  ) {
    for (const o of origins) this.addOrigin(o);
  }

  /** Registers (or updates) an origin, up. */
  addOrigin(o: { id: string; url: string; capacity?: number }): void {
    this.origins.set(o.id, { id: o.id, url: o.url, capacity: o.capacity ?? 10, up: true });
  }

  /** Marks an origin up or down. */
  setUp(id: string, up: boolean): void {
    this.origins.get(id)!.up = up;
  }

  /** The record as stored (no copy), for assertions. */
  current(eventId: string): Placement | undefined {
    return this.#records.get(eventId);
  }

  async get(eventId: string): Promise<Placement | undefined> {
    const p = this.#records.get(eventId);
    return p && structuredClone(p);
  }

  async place(eventId: string, opts: { ingest: string; replicas: number }): Promise<Placement> {
    this.calls.push({ op: 'place', eventId, ...opts });
    this.#throwIfAsked();
    const prev = this.#records.get(eventId);
    const chosen = this.#choose(eventId, opts.replicas, prev?.origins.map((o) => o.id) ?? [], new Set());
    const p: Placement = {
      eventId,
      epoch: ++this.#epoch,
      ingest: opts.ingest,
      origins: chosen,
      timelineZeroMs: prev?.timelineZeroMs ?? this.now(),
      session: (prev?.session ?? 0) + 1,
      updatedAtMs: this.now(),
    };
    this.#set(eventId, p);
    return structuredClone(p);
  }

  async replace(eventId: string, epoch: number, failed: readonly string[]): Promise<Placement> {
    this.calls.push({ op: 'replace', eventId, epoch, failed: [...failed] });
    const cur = this.#fenceCheck(eventId, epoch);
    this.#throwIfAsked();
    const gone = new Set(failed);
    const kept = cur.origins.filter((o) => !gone.has(o.id));
    const excluded = new Set([...gone, ...kept.map((o) => o.id)]);
    const wanted = cur.origins.length - kept.length;
    let added: { id: string; url: string }[] = [];
    try {
      added = this.#choose(eventId, wanted, [], excluded);
    } catch (err) {
      if (kept.length === 0) throw err;
    }
    const p: Placement = { ...cur, epoch: ++this.#epoch, origins: [...kept, ...added], updatedAtMs: this.now() };
    this.#set(eventId, p);
    return structuredClone(p);
  }

  async renew(eventId: string, epoch: number): Promise<boolean> {
    const cur = this.#records.get(eventId);
    const ok = cur?.epoch === epoch;
    if (ok) cur.updatedAtMs = this.now();
    this.calls.push({ op: 'renew', eventId, epoch, ok });
    return ok;
  }

  async release(eventId: string, epoch: number): Promise<void> {
    const cur = this.#records.get(eventId);
    const released = cur?.epoch === epoch;
    this.calls.push({ op: 'release', eventId, epoch, released });
    if (!released) return;
    this.#records.delete(eventId);
    this.#emit(eventId, undefined);
  }

  onChange(listener: (eventId: string, placement: Placement | undefined) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Live events placed on `originId` (other than `except`). */
  load(originId: string, except?: string): number {
    let n = 0;
    for (const p of this.#records.values()) if (p.eventId !== except && p.origins.some((o) => o.id === originId)) n++;
    return n;
  }

  #fenceCheck(eventId: string, epoch: number): Placement {
    const cur = this.#records.get(eventId);
    if (!cur || cur.epoch !== epoch) {
      throw new PlacementError('fenced', `event ${eventId} is at epoch ${cur?.epoch ?? 'none'}, not ${epoch}`);
    }
    return cur;
  }

  #throwIfAsked(): void {
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
  }

  #choose(eventId: string, n: number, preferred: string[], excluded: Set<string>): { id: string; url: string }[] {
    const up = [...this.origins.values()].filter((o) => o.up && !excluded.has(o.id));
    if (up.length === 0) throw new PlacementError('no_origins', 'no origin is registered');
    const free = (o: MemoryOrigin) => o.capacity - this.load(o.id, eventId);
    const room = up.filter((o) => free(o) > 0);
    if (room.length === 0 && n > 0) throw new PlacementError('pool_full', 'every origin is at capacity');
    room.sort(
      (a, b) => Number(preferred.includes(b.id)) - Number(preferred.includes(a.id)) || free(b) - free(a) || a.id.localeCompare(b.id),
    );
    return room.slice(0, n).map((o) => ({ id: o.id, url: o.url }));
  }

  #set(eventId: string, p: Placement): void {
    this.#records.set(eventId, p);
    this.#emit(eventId, p);
  }

  #emit(eventId: string, p: Placement | undefined): void {
    const copy = p && structuredClone(p);
    queueMicrotask(() => {
      for (const l of this.#listeners) l(eventId, copy && structuredClone(copy));
    });
  }
}
