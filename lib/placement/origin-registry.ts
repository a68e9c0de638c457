// The origin pool's membership in Redis: each origin heartbeats its load; readers list the origins heard from within
// the TTL. One hash per origin (expiring with PEXPIRE) plus a sorted set of ids scored by expiry, which list() prunes.
//
// Freshness is judged by Redis's own clock (TIME inside the scripts), so clock skew between hosts cannot make a live
// origin look dead or a dead one alive; `now` only stamps OriginInfo.updatedAtMs. Every key shares the hash tag
// `{origins}`, so the scripts touch one slot and run on Redis Cluster too (the pool is small: one slot suffices).
import type { Logger } from '../logger.ts';
import type { Service } from '../lifecycle.ts';
import type { RedisClient } from '../bus/redis-connection.ts';
import type { OriginInfo } from './types.ts';

/** The sorted set of origin ids, scored by the expiry (Redis ms) of their last heartbeat. */
export const ORIGIN_IDS_KEY = 'onair:{origins}:ids';

/** Redis key of one origin's hash. */
export function originKey(id: string): string {
  return `onair:{origins}:origin:${id}`;
}

/** Registers and lists the origins of the pool. */
export interface OriginRegistry {
  /** Writes `info` (updatedAtMs stamped now) and keeps the origin listed for the TTL. */
  heartbeat(info: OriginInfo): Promise<void>;
  /** The origins whose last heartbeat is younger than the TTL, by id. Rejects when Redis is unreachable. */
  list(): Promise<OriginInfo[]>;
  /** Unlists the origin at once (it is stopping). */
  remove(id: string): Promise<void>;
}

/** Options of {@link createOriginRegistry}. */
export interface OriginRegistryOptions {
  /** How long a heartbeat keeps its origin listed, in ms (default 3000). */
  ttlMs?: number;
  /** Wall clock for updatedAtMs (default Date.now). */
  now?: () => number;
}

const HEARTBEAT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[7])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'id', ARGV[1], 'url', ARGV[2], 'capacity', ARGV[3], 'liveEvents', ARGV[4], 'cpu', ARGV[5], 'updatedAtMs', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
return 1
`;

// Returns { id1, {field, value, ...}, id2, ... } for the listed origins, dropping expired ids on the way.
const LIST_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
`;

const REMOVE_LUA = `
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
`;

interface RegistryCommands {
  onairOriginHeartbeat(ids: string, key: string, ...args: (string | number)[]): Promise<number>;
  onairOriginList(ids: string, prefix: string): Promise<(string | string[])[]>;
  onairOriginRemove(ids: string, key: string, id: string): Promise<number>;
}

function parseOrigin(id: string, flat: string[]): OriginInfo | undefined {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  const info = {
    id,
    url: h.url ?? '',
    capacity: Number(h.capacity),
    liveEvents: Number(h.liveEvents),
    cpu: Number(h.cpu),
    updatedAtMs: Number(h.updatedAtMs),
  };
  const numbersOk = [info.capacity, info.liveEvents, info.cpu, info.updatedAtMs].every(Number.isFinite);
  return numbersOk && info.url !== '' ? info : undefined;
}

/** Creates the registry on `redis` (a command connection: fails fast while Redis is down). */
export function createOriginRegistry(redis: RedisClient, opts: OriginRegistryOptions = {}): OriginRegistry {
  const ttlMs = Math.max(1, Math.ceil(opts.ttlMs ?? 3000));
  const now = opts.now ?? Date.now;
  redis.defineCommand('onairOriginHeartbeat', { numberOfKeys: 2, lua: HEARTBEAT_LUA });
  redis.defineCommand('onairOriginList', { numberOfKeys: 1, lua: LIST_LUA });
  redis.defineCommand('onairOriginRemove', { numberOfKeys: 2, lua: REMOVE_LUA });
  const cmd = redis as unknown as RegistryCommands;
  return {
    async heartbeat(info) {
      await cmd.onairOriginHeartbeat(
        ORIGIN_IDS_KEY,
        originKey(info.id),
        info.id,
        info.url,
        info.capacity,
        info.liveEvents,
        info.cpu,
        now(),
        ttlMs,
      );
    },
    async list() {
      const flat = await cmd.onairOriginList(ORIGIN_IDS_KEY, originKey(''));
      const out: OriginInfo[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const info = parseOrigin(String(flat[i]), flat[i + 1] as string[]);
        if (info) out.push(info);
      }
      return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    async remove(id) {
      await cmd.onairOriginRemove(ORIGIN_IDS_KEY, originKey(id), id);
    },
  };
}

/** What {@link originHeartbeat} needs. */
export interface OriginHeartbeatDeps {
  registry: Pick<OriginRegistry, 'heartbeat' | 'remove'>;
  /** This origin as it is now (read at every beat). */
  info: () => OriginInfo;
  /** Time between beats, in ms (default 1000; keep it well under the registry's TTL). */
  intervalMs?: number;
  logger: Logger;
}

/**
 * Keeps this origin registered: a heartbeat at start and every interval. Redis being unreachable neither fails start
 * nor floods the log: one warning when beats start failing, one info when they work again. Stop unlists the origin
 * at once, so placements skip it without waiting for the TTL.
 */
export function originHeartbeat(deps: OriginHeartbeatDeps): Service {
  const intervalMs = Math.max(10, deps.intervalMs ?? 1000);
  const { registry, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let failing = false;
  let running = false;
  let id: string | undefined;

  const beat = (): Promise<void> => {
    if (inFlight) return inFlight; // a slow beat is not doubled up
    inFlight = (async () => {
      try {
        const info = deps.info();
        id = info.id;
        await registry.heartbeat(info);
        if (failing) logger.info({ origin: info.id }, 'origin registry: Redis reachable again; heartbeats resumed');
        failing = false;
      } catch (err) {
        if (!failing) logger.warn({ err: (err as Error).message }, 'origin registry: heartbeat failed (Redis unreachable?); retrying');
        failing = true;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  let stopping: Promise<void> = Promise.resolve();
  // Every caller (the abort signal, then the group's stop) waits for the one unlisting, before Redis is closed.
  const stop = (): Promise<void> => {
    if (!running) return stopping;
    running = false;
    clearInterval(timer);
    timer = undefined;
    stopping = (async () => {
      await inFlight;
      if (id === undefined) return;
      await registry.remove(id).catch((err: unknown) => {
        logger.warn({ err: (err as Error).message, origin: id }, 'origin registry: could not unlist this origin; it expires with its TTL');
      });
    })();
    return stopping;
  };

  return {
    async start(signal) {
      if (running) return;
      running = true;
      await beat();
      if (!running) return; // stopped while the first beat ran
      timer = setInterval(() => void beat(), intervalMs);
      timer.unref?.();
      signal.addEventListener('abort', () => void stop(), { once: true });
    },
    stop,
  };
}
