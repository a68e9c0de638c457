// Attempt limits in fixed windows (login failures): an attempt is reserved before the work it guards, so parallel
// requests cannot all pass a check made before any of them failed; an attempt that turns out fine is given back.
// In-process, or one atomic Lua script per call on Redis (cluster mode).
import type { RedisClient } from '../bus/redis-connection.ts';

/** One counter to reserve an attempt under: at most `max` attempts per window. */
export interface AttemptKey {
  key: string;
  max: number;
}

/** Outcome of {@link AttemptLimiter.reserve}. */
export interface ReserveResult {
  allowed: boolean;
  /** When refused: milliseconds until the fullest counter's window ends. */
  retryAfterMs: number;
}

/** Fixed-window attempt counters with reservations. */
export interface AttemptLimiter {
  /**
   * Reserves one attempt under every key, or under none when any key already holds its `max` (refused).
   * A key's window starts with its first attempt and lasts `windowMs`. Rejects if the backing store is down.
   */
  reserve(keys: readonly AttemptKey[], windowMs: number): Promise<ReserveResult>;
  /** Gives back one reserved attempt under each key (the attempt was not a failure). */
  release(keys: readonly string[]): Promise<void>;
  /** Forgets every attempt under `key`. */
  reset(key: string): Promise<void>;
}

/** Creates an in-process limiter (all-in-one without Redis). Check and count happen in one synchronous step. */
export function createMemoryAttemptLimiter(options: { now?: () => number } = {}): AttemptLimiter {
  const now = options.now ?? Date.now;
  const counters = new Map<string, { count: number; endsAt: number }>();
  const live = (key: string, t: number) => {
    const c = counters.get(key);
    if (c && c.endsAt <= t) counters.delete(key);
    return c && c.endsAt > t ? c : undefined;
  };
  return {
    async reserve(keys, windowMs) {
      const t = now();
      let wait = 0;
      for (const k of keys) {
        const c = live(k.key, t);
        if (c && c.count >= k.max) wait = Math.max(wait, c.endsAt - t);
      }
      if (wait > 0) return { allowed: false, retryAfterMs: wait };
      for (const k of keys) {
        const c = live(k.key, t);
        if (c) c.count++;
        else counters.set(k.key, { count: 1, endsAt: t + windowMs });
      }
      if (counters.size > 100_000) for (const key of counters.keys()) live(key, t);
      return { allowed: true, retryAfterMs: 0 };
    },
    async release(keys) {
      const t = now();
      for (const key of keys) {
        const c = live(key, t);
        if (c && c.count > 0) c.count--;
      }
    },
    async reset(key) {
      counters.delete(key);
    },
  };
}

/** KEYS: counters. ARGV[1]: window ms; ARGV[1 + i]: max of KEYS[i]. Returns {1, 0} or {0, retryAfterMs}. */
const RESERVE_LUA = `
local window = tonumber(ARGV[1])
local wait = -1
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      ttl = window
      redis.call('PEXPIRE', key, window)
    end
    if ttl > wait then wait = ttl end
  end
end
if wait >= 0 then return {0, wait} end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
return {1, 0}
`;

/** KEYS: counters to give one attempt back to (never below zero; the window is left as it is). */
const RELEASE_LUA = `
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then redis.call('DECR', key) end
end
return 1
`;

type LuaCommand<T> = (...args: (string | number)[]) => Promise<T>;

/**
 * Creates a Redis-backed limiter on `redis` (a command connection that fails fast while down).
 * On Redis Cluster the keys of one call must share a hash tag (e.g. `{<address>}`).
 */
export function createRedisAttemptLimiter(redis: RedisClient, prefix = 'onair:attempts:'): AttemptLimiter {
  redis.defineCommand('onairReserveAttempt', { lua: RESERVE_LUA });
  redis.defineCommand('onairReleaseAttempt', { lua: RELEASE_LUA });
  const commands = redis as unknown as { onairReserveAttempt: LuaCommand<[number, number]>; onairReleaseAttempt: LuaCommand<number> };
  return {
    async reserve(keys, windowMs) {
      if (keys.length === 0) return { allowed: true, retryAfterMs: 0 };
      const [ok, wait] = await commands.onairReserveAttempt.call(
        redis,
        keys.length,
        ...keys.map((k) => prefix + k.key),
        Math.max(1, Math.round(windowMs)),
        ...keys.map((k) => k.max),
      );
      return { allowed: ok === 1, retryAfterMs: Number(wait) };
    },
    async release(keys) {
      if (keys.length > 0) await commands.onairReleaseAttempt.call(redis, keys.length, ...keys.map((k) => prefix + k));
    },
    async reset(key) {
      await redis.del(prefix + key);
    },
  };
}
