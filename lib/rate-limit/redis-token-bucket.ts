// Token buckets in Redis: one atomic Lua script checks every bucket and takes from all or none (cluster mode).
import type { RedisClient } from '../bus/redis-connection.ts';
import type { RateLimiter } from './token-bucket.ts';

/**
 * KEYS: bucket keys. ARGV[1]: cost; then per key: capacity, refill per second.
 * Returns {1, 0, -1} when allowed, {0, retryAfterMs, blockedIndex(0-based)} when not. Time comes from the server.
 */
const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local levels = {}
local wait, blocked = 0, -1
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1]) / 1000
  local v = redis.call('HMGET', key, 'tokens', 'at')
  local tokens, at = tonumber(v[1]), tonumber(v[2])
  if tokens == nil or at == nil then tokens, at = cap, now end
  tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
  levels[i] = tokens
  if tokens < cost then
    local ms = math.ceil((cost - tokens) / rate)
    if ms > wait then wait, blocked = ms, i - 1 end
  end
end
if blocked >= 0 then return {0, wait, blocked} end
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1]) / 1000
  local tokens = levels[i] - cost
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', key, math.ceil((cap - tokens) / rate) + 1000)
end
return {1, 0, -1}
`;

type TakeCommand = (...args: (string | number)[]) => Promise<[number, number, number]>;

/**
 * Creates a Redis-backed limiter on `redis` (a command connection that fails fast while down).
 * On Redis Cluster every key of one call must share a hash tag (e.g. `{eventId}`).
 */
export function createRedisRateLimiter(redis: RedisClient, prefix = 'onair:rl:'): RateLimiter {
  redis.defineCommand('onairTakeTokens', { lua: TAKE_LUA });
  const run = (redis as unknown as { onairTakeTokens: TakeCommand }).onairTakeTokens.bind(redis);
  return {
    async take(specs, cost = 1) {
      if (specs.length === 0) return { allowed: true, retryAfterMs: 0, blockedBy: -1 };
      const args: (string | number)[] = [specs.length, ...specs.map((s) => prefix + s.key), cost];
      for (const s of specs) args.push(s.capacity, s.refillPerSec);
      const [ok, wait, blocked] = await run(...args);
      return { allowed: ok === 1, retryAfterMs: Number(wait), blockedBy: Number(blocked) };
    },
  };
}
