// The origin pool's shared vocabulary (cluster mode): origins that register with their load, and the placement of
// each live event on R of them, fenced by an epoch. Implemented on Redis by origin-registry.ts and placements.ts;
// read by ingests (who place), origins (who check the fence), edges (who route) and control nodes (who show it).

/** One origin of the pool, as its last heartbeat described it. */
export interface OriginInfo {
  /** Stable node id (ONAIR_NODE_ID). */
  id: string;
  /** Base URL ingests push feeds to and edges pull HLS from (no trailing slash). */
  url: string;
  /** Most live events it accepts (ONAIR_ORIGIN_CAPACITY resolved). */
  capacity: number;
  /** Live events it carries now. */
  liveEvents: number;
  /** CPU load, 0..1 of the machine (1-minute load average / cores, capped at 1). */
  cpu: number;
  /** When the heartbeat was written (ms since the epoch). */
  updatedAtMs: number;
}

/** Where one live event runs: which ingest owns it, and its origins (primary first). */
export interface Placement {
  eventId: string;
  /**
   * Fencing token: strictly greater for every new placement of this event, whoever made it. An origin accepts a feed
   * only with the current epoch; an ingest whose epoch is no longer current stops forwarding.
   */
  epoch: number;
  /** Node id of the ingest that owns the event. */
  ingest: string;
  /** The origins carrying it, primary first. */
  origins: { id: string; url: string }[];
  /**
   * Wall-clock ms of the event's media timeline zero: feed timestamps are ms since this instant, so every replica
   * numbers segments (msn = floor(t / segment target)) and dates them (PROGRAM-DATE-TIME) alike. Kept across
   * re-placements and publisher reconnects of one broadcast.
   */
  timelineZeroMs: number;
  /** Publish session number of the broadcast (1 for the first, +1 per reconnect): its discontinuity sequence. */
  session: number;
  updatedAtMs: number;
}

/** Why a placement could not be made. */
export class PlacementError extends Error {
  override name = 'PlacementError';
  constructor(
    /** `pool_full`: every origin is at capacity; `no_origins`: none registered; `fenced`: another epoch owns the event. */
    readonly code: 'pool_full' | 'no_origins' | 'fenced',
    message: string,
  ) {
    super(message);
  }
}

/** Reads placements, cached and kept fresh by pub/sub (edges, control nodes). */
export interface PlacementSource {
  /** The event's current placement, or undefined when it is not live anywhere. */
  get(eventId: string): Promise<Placement | undefined>;
}

/** Places live events on origins and fences them (ingests); read by origins to check a feed's epoch. */
export interface Placements extends PlacementSource {
  /**
   * A publisher started (or came back) for `eventId` at `ingest`: a new epoch on `replicas` origins chosen by weighted
   * rendezvous over free capacity, preferring the origins of the event's previous placement that are still alive and
   * have room. `session` is the previous placement's + 1 (1 for none); `timelineZeroMs` is kept from it, else now.
   * Rejects with PlacementError `no_origins` or `pool_full`.
   */
  place(eventId: string, opts: { ingest: string; replicas: number }): Promise<Placement>;
  /**
   * Swaps `failed` origins of the placement at `epoch` for others (same session and timeline), as a new epoch.
   * Rejects with PlacementError `fenced` when `epoch` is no longer current, `pool_full`/`no_origins` when none is left.
   */
  replace(eventId: string, epoch: number, failed: readonly string[]): Promise<Placement>;
  /**
   * Keeps the placement at `epoch` alive (its record expires when its ingest stops renewing it); false when fenced.
   * With `owned` (the placement the caller holds at `epoch`), a record found missing while no newer epoch was issued
   * (Redis restarted empty, or the record expired while Redis was out of reach) is written back: the owner keeps it.
   */
  renew(eventId: string, epoch: number, owned?: Placement): Promise<boolean>;
  /** Removes the placement at `epoch` (the broadcast ended); a no-op when fenced. */
  release(eventId: string, epoch: number): Promise<void>;
  /** Calls `listener` with every placement change (undefined: released or expired) made anywhere; returns an unsubscribe. */
  onChange(listener: (eventId: string, placement: Placement | undefined) => void): () => void;
}
