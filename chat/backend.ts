// Builds the realtime backend an edge gateway needs from config: Redis bus + presence + Lua rate limits, or in-process ones.
import type { Logger } from '../lib/logger.ts';
import type { Bus } from '../lib/bus/bus.ts';
import type { Service } from '../lib/lifecycle.ts';
import { createMemoryBus } from '../lib/bus/memory-bus.ts';
import { createRedisBus, type RedisChannelMode } from '../lib/bus/redis-bus.ts';
import { createMemoryPresence, type Presence } from '../lib/bus/presence.ts';
import { createRedisPresence } from '../lib/bus/redis-presence.ts';
import { createMemoryRateLimiter, type RateLimiter } from '../lib/rate-limit/token-bucket.ts';
import { createRedisRateLimiter } from '../lib/rate-limit/redis-token-bucket.ts';
import { createMemoryAttemptLimiter, createRedisAttemptLimiter, type AttemptLimiter } from '../lib/rate-limit/attempt-limiter.ts';

/** Bus, presence and rate limiter, sharing one Redis command connection in cluster mode. */
export interface RealtimeBackend extends Service {
  bus: Bus;
  presence: Presence;
  limiter: RateLimiter;
  /** Fixed-window attempt counters (login failures), on the same Redis in cluster mode. */
  attempts: AttemptLimiter;
  /** Connects the bus (Redis in cluster mode). */
  start(signal?: AbortSignal): Promise<void>;
  /** Disconnects the bus. */
  stop(): Promise<void>;
}

/** Redis when `redisUrl` is set, in-process otherwise. */
export function createRealtimeBackend(options: { redisUrl?: string; mode: RedisChannelMode; logger: Logger }): RealtimeBackend {
  if (!options.redisUrl) {
    const bus = createMemoryBus();
    return {
      bus,
      presence: createMemoryPresence(),
      limiter: createMemoryRateLimiter(),
      attempts: createMemoryAttemptLimiter(),
      start: () => bus.start(),
      stop: () => bus.stop(),
    };
  }
  const bus = createRedisBus({ url: options.redisUrl, mode: options.mode, logger: options.logger });
  return {
    bus,
    presence: createRedisPresence(bus.commands),
    limiter: createRedisRateLimiter(bus.commands),
    attempts: createRedisAttemptLimiter(bus.commands),
    start: () => bus.start(),
    stop: () => bus.stop(),
  };
}
