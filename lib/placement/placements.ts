// Placements of live events on origins, in Redis, fenced by an epoch; changes are announced on the bus.
//
// Keys (one hash tag per event, so each script touches one slot and runs on Redis Cluster):
// - `onair:placement:{<eventId>}:epoch` — the event's epoch counter. INCR gives every placement a strictly greater
//   epoch, whoever makes it; it never expires or resets (one small key per event ever placed).
// - `onair:placement:{<eventId>}` — the placement record (JSON), SET with PX ttl, renewed by the owning ingest.
//
// Fencing. Every write is a script that compares the stored record's epoch first: place() writes only over a lower
// epoch (so a slower placer holding an older epoch can never overwrite a newer placement; it gets `fenced`), and
// replace/renew/release act only when the stored epoch equals theirs. An expired record counts as fenced for
// replace/renew/release; place() over it starts a new placement (session + 1 only while the old record still exists).
//
// Concurrency contract (for ingests):
// - Two ingests may place the same event at once (a publisher reconnecting through the balancer while the old ingest
//   has not noticed). Both calls get an epoch; the later epoch wins: the earlier placer either rejects with `fenced`
//   or succeeds and is overwritten a moment later, and then learns it is fenced when renew() returns false or an
//   origin refuses its epoch. Only the current epoch's ingest may forward a feed.
// - Capacity is read from heartbeats, so two ingests can place on the same nearly-full origin. The origin itself
//   refuses a feed over its capacity (not this module's part); the ingest then calls replace(eventId, epoch,
//   [thatOrigin]) to move that replica elsewhere.
// - A previous origin is preferred even when its heartbeat says it is exactly full: its liveEvents count includes
//   this event while the record lives. If it dropped the event meanwhile, it refuses and the ingest replaces it.
//
// Change feed. Every change is published on the bus channel `onair:placements` as
// `{"eventId", "placement": Placement | null, "epoch", "from"}` and given to local onChange listeners at once (our own
// messages coming back over the bus are skipped). A record that expires un-renewed is not announced: readers learn it
// by reading again (placement-cache.ts re-reads after its TTL), which keyspace notifications would only shorten.
import { randomUUID } from 'node:crypto';
import type { Bus, Unsubscribe } from '../bus/bus.ts';
import type { RedisClient } from '../bus/redis-connection.ts';
import type { Service } from '../lifecycle.ts';
import type { Logger } from '../logger.ts';
import type { OriginRegistry } from './origin-registry.ts';
import { rankOrigins } from './rendezvous.ts';
import { PlacementError, type OriginInfo, type Placement, type Placements } from './types.ts';

/** The bus channel placement changes are announced on. */
export const PLACEMENT_CHANNEL = 'onair:placements';

/** Redis key of an event's placement record. */
export function placementKey(eventId: string): string {
  return `onair:placement:{${eventId}}`;
}

/** Redis key of an event's epoch counter. */
export function epochKey(eventId: string): string {
  return `onair:placement:{${eventId}}:epoch`;
}

/** What one message on {@link PLACEMENT_CHANNEL} carries. */
export interface PlacementChange {
  eventId: string;
  /** The new placement, or null when it was released. */
  placement: Placement | null;
  /** The epoch written (or released). */
  epoch: number;
  /** The instance that made the change (its own listeners already heard it). */
  from: string;
}

/** What {@link createPlacements} needs. */
export interface PlacementsDeps {
  /** A command connection (fails fast while Redis is down). */
  redis: RedisClient;
  /** Carries change notifications between processes. */
  bus: Bus;
  registry: Pick<OriginRegistry, 'list'>;
  /** Wall clock for timelineZeroMs and updatedAtMs (default Date.now). */
  now?: () => number;
  /** Lifetime of a record not renewed, in ms (default 30000); the owning ingest renews it. */
  ttlMs?: number;
  /** Receives (at debug level) change notifications that could not be published. */
  logger?: Logger;
}

// ARGV[1] = new epoch, ARGV[2] = record, ARGV[3] = ttl. Writes over a lower epoch or nothing; returns {1} or {0, stored}.
const PLACE_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local e = tonumber(cjson.decode(cur).epoch) or 0
  if e >= tonumber(ARGV[1]) then return {0, e} end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
`;

// ARGV[1] = expected epoch, ARGV[2] = record, ARGV[3] = ttl. Returns {1}, {0, stored} or {-1} (no record).
const REPLACE_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur then return {-1} end
local e = tonumber(cjson.decode(cur).epoch) or 0
if e ~= tonumber(ARGV[1]) then return {0, e} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1}
`;

// KEYS[1] = record, KEYS[2] = epoch counter; ARGV[1] = expected epoch, ARGV[2] = ttl, ARGV[3] = the owner's record
// (or ''). Returns 1 when renewed, 2 when a lost record was restored (Redis restarted empty, or it expired while
// its ingest could not reach Redis) because no newer epoch was issued meanwhile; the counter is raised to it.
const RENEW_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur then
  if ARGV[3] == '' then return 0 end
  local issued = tonumber(redis.call('GET', KEYS[2])) or 0
  if issued > tonumber(ARGV[1]) then return 0 end
  if issued < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2])
  return 2
end
if (tonumber(cjson.decode(cur).epoch) or 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

// ARGV[1] = expected epoch. Returns 1 when deleted.
const RELEASE_LUA = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if (tonumber(cjson.decode(cur).epoch) or 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;

interface PlacementCommands {
  onairPlacementPlace(key: string, epoch: number, record: string, ttl: number): Promise<number[]>;
  onairPlacementReplace(key: string, epoch: number, record: string, ttl: number): Promise<number[]>;
  onairPlacementRenew(key: string, epochKey: string, epoch: number, ttl: number, record: string): Promise<number>;
  onairPlacementRelease(key: string, epoch: number): Promise<number>;
}

function isPlacement(v: unknown): v is Placement {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  return (
    typeof p.eventId === 'string' &&
    typeof p.epoch === 'number' &&
    typeof p.ingest === 'string' &&
    Array.isArray(p.origins) &&
    p.origins.every((o: unknown) => typeof o === 'object' && o !== null && typeof (o as { id?: unknown }).id === 'string') &&
    typeof p.timelineZeroMs === 'number' &&
    typeof p.session === 'number' &&
    typeof p.updatedAtMs === 'number'
  );
}

/** Parses a stored record; undefined when it is not a placement. */
export function parsePlacement(text: string): Placement | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return isPlacement(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** The error for a placement that found no origin to use among `registered`. */
function noRoom(registered: readonly OriginInfo[]): PlacementError {
  if (registered.length === 0) return new PlacementError('no_origins', 'no origin is registered');
  const live = registered.reduce((n, o) => n + o.liveEvents, 0);
  return new PlacementError('pool_full', `every origin is at capacity (${registered.length} origins, ${live} live events)`);
}

/** Creates the Redis-backed placements; start() subscribes to the change channel, stop() unsubscribes. */
export function createPlacements(deps: PlacementsDeps): Placements & Service {
  const { redis, bus, registry, logger } = deps;
  const now = deps.now ?? Date.now;
  const ttlMs = Math.max(1, Math.ceil(deps.ttlMs ?? 30_000));
  const self = randomUUID();
  const listeners = new Set<(eventId: string, placement: Placement | undefined) => void>();
  let subscription: Promise<Unsubscribe> | undefined;
  let running = false;

  redis.defineCommand('onairPlacementPlace', { numberOfKeys: 1, lua: PLACE_LUA });
  redis.defineCommand('onairPlacementReplace', { numberOfKeys: 1, lua: REPLACE_LUA });
  redis.defineCommand('onairPlacementRenew', { numberOfKeys: 2, lua: RENEW_LUA });
  redis.defineCommand('onairPlacementRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  const cmd = redis as unknown as PlacementCommands;

  const emit = (eventId: string, placement: Placement | undefined) => {
    for (const l of [...listeners]) {
      try {
        l(eventId, placement);
      } catch (err) {
        logger?.warn({ err: (err as Error).message }, 'placements: a change listener threw');
      }
    }
  };

  /** Tells local listeners now and other processes through the bus (best effort: readers re-read after their TTL). */
  const announce = async (eventId: string, placement: Placement | undefined, epoch: number) => {
    emit(eventId, placement);
    const change: PlacementChange = { eventId, placement: placement ?? null, epoch, from: self };
    await bus.publish(PLACEMENT_CHANNEL, JSON.stringify(change)).catch((err: unknown) => {
      logger?.debug({ err: (err as Error).message, eventId }, 'placements: change not announced (bus down)');
    });
  };

  const onMessage = (message: string) => {
    let change: Partial<PlacementChange>;
    try {
      change = JSON.parse(message) as Partial<PlacementChange>;
    } catch {
      return;
    }
    if (change.from === self || typeof change.eventId !== 'string') return;
    if (change.placement === null) emit(change.eventId, undefined);
    else if (isPlacement(change.placement) && change.placement.eventId === change.eventId) emit(change.eventId, change.placement);
  };

  const get = async (eventId: string): Promise<Placement | undefined> => {
    const text = await redis.get(placementKey(eventId));
    return text === null ? undefined : parsePlacement(text);
  };

  const record = (p: Placement) => JSON.stringify(p);

  return {
    get,

    async place(eventId, { ingest, replicas }) {
      const [previous, registered] = await Promise.all([get(eventId), registry.list()]);
      const want = Math.max(1, Math.floor(replicas));
      const byId = new Map(registered.map((o) => [o.id, o]));
      const chosen: OriginInfo[] = [];
      // The previous origins still alive carry the event already (counted in their liveEvents): room means liveEvents ≤ capacity.
      for (const o of previous?.origins ?? []) {
        const info = byId.get(o.id);
        if (info && info.liveEvents <= info.capacity && chosen.length < want && !chosen.includes(info)) chosen.push(info);
      }
      for (const info of rankOrigins(eventId, registered)) {
        if (chosen.length >= want) break;
        if (!chosen.includes(info)) chosen.push(info);
      }
      if (chosen.length === 0) throw noRoom(registered);

      const epoch = Number(await redis.incr(epochKey(eventId)));
      const t = now();
      const placement: Placement = {
        eventId,
        epoch,
        ingest,
        origins: chosen.map((o) => ({ id: o.id, url: o.url })),
        timelineZeroMs: previous?.timelineZeroMs ?? t,
        session: (previous?.session ?? 0) + 1,
        updatedAtMs: t,
      };
      const [ok, stored] = await cmd.onairPlacementPlace(placementKey(eventId), epoch, record(placement), ttlMs);
      if (ok !== 1) throw new PlacementError('fenced', `event ${eventId} was placed again meanwhile (epoch ${stored} > ${epoch})`);
      await announce(eventId, placement, epoch);
      return placement;
    },

    async replace(eventId, epoch, failed) {
      const [current, registered] = await Promise.all([get(eventId), registry.list()]);
      if (!current) throw new PlacementError('fenced', `event ${eventId} has no placement (it expired or was released)`);
      if (current.epoch !== epoch) throw new PlacementError('fenced', `event ${eventId} is at epoch ${current.epoch}, not ${epoch}`);
      const gone = new Set(failed);
      const kept = current.origins.filter((o) => !gone.has(o.id));
      const taken = new Set([...current.origins.map((o) => o.id), ...failed]);
      const origins = [...kept];
      for (const info of rankOrigins(eventId, registered)) {
        if (origins.length >= current.origins.length) break;
        if (!taken.has(info.id)) origins.push({ id: info.id, url: info.url });
      }
      if (origins.length === 0) throw noRoom(registered.filter((o) => !gone.has(o.id)));

      const next = Number(await redis.incr(epochKey(eventId)));
      const placement: Placement = { ...current, epoch: next, origins, updatedAtMs: now() };
      const [ok, stored] = await cmd.onairPlacementReplace(placementKey(eventId), epoch, record(placement), ttlMs);
      if (ok === -1) throw new PlacementError('fenced', `event ${eventId} has no placement (it expired or was released)`);
      if (ok !== 1) throw new PlacementError('fenced', `event ${eventId} is at epoch ${stored}, not ${epoch}`);
      await announce(eventId, placement, next);
      return placement;
    },

    async renew(eventId, epoch, owned) {
      const record = owned && owned.eventId === eventId && owned.epoch === epoch ? JSON.stringify(owned) : '';
      const done = await cmd.onairPlacementRenew(placementKey(eventId), epochKey(eventId), epoch, ttlMs, record);
      if (done === 2) await announce(eventId, owned, epoch);
      return done !== 0;
    },

    async release(eventId, epoch) {
      if ((await cmd.onairPlacementRelease(placementKey(eventId), epoch)) === 1) await announce(eventId, undefined, epoch);
    },

    onChange(listener) {
      const l = (eventId: string, p: Placement | undefined) => listener(eventId, p);
      listeners.add(l);
      return () => void listeners.delete(l);
    },

    async start() {
      if (running) return;
      running = true;
      const sub = bus.subscribe(PLACEMENT_CHANNEL, onMessage);
      subscription = sub;
      // While Redis is down the subscription waits for it; start does not (the bus subscribes when it comes back).
      if (bus.isUp()) await sub;
      else sub.catch((err: unknown) => logger?.warn({ err: (err as Error).message }, 'placements: could not subscribe to changes'));
    },

    async stop() {
      if (!running) return;
      running = false;
      const sub = subscription;
      subscription = undefined;
      // An unsubscribe that cannot be had yet (Redis down) is applied when the subscription completes.
      const done = sub?.then((unsubscribe) => unsubscribe()).catch(() => undefined);
      if (bus.isUp()) await done;
    },
  };
}
