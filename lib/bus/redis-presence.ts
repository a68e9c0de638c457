// Presence in a Redis hash per event (field = edge id, value = "count:expiresAtMs"), key expiring with its last report.
import type { Presence } from './presence.ts';
import type { RedisClient } from './redis-connection.ts';

/** Report, drop expired fields and sum, atomically; one key, so it works on Redis Cluster too. */
const REPORT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if count > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], count .. ':' .. (now + ttl))
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local c, exp = string.match(all[i + 1], '^(%d+):(%d+)$')
  if c == nil or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    total = total + tonumber(c)
  end
end
if total > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return total
`;

/** Redis key of an event's presence hash. */
export function presenceKey(eventId: string): string {
  return `onair:viewers:{${eventId}}`;
}

/** Creates Redis-backed presence on `redis` (a command connection, not a subscriber). */
export function createRedisPresence(redis: RedisClient): Presence {
  redis.defineCommand('onairPresenceReport', { numberOfKeys: 1, lua: REPORT_LUA });
  const run = (
    redis as unknown as { onairPresenceReport(key: string, edge: string, count: number, ttl: number): Promise<number> }
  ).onairPresenceReport.bind(redis);
  return {
    async report(eventId, edgeId, count, ttlMs) {
      return Number(await run(presenceKey(eventId), edgeId, Math.max(0, Math.floor(count)), Math.max(1, Math.ceil(ttlMs))));
    },
  };
}
