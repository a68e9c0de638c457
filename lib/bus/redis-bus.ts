// Redis bus through ioredis: PUBLISH/SUBSCRIBE, or Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE) for Redis Cluster.
import type { Logger } from '../logger.ts';
import { BusUnavailableError, createStateListeners, type Bus, type Unsubscribe } from './bus.ts';
import { createRedisClient, type RedisClient } from './redis-connection.ts';

/** How channels map onto Redis. */
export type RedisChannelMode = 'pubsub' | 'sharded';

/** Options of the Redis bus. */
export interface RedisBusOptions {
  url: string;
  mode: RedisChannelMode;
  logger: Logger;
}

/** Creates a Redis-backed bus with one publishing and one subscribing connection; both reconnect by themselves. */
export function createRedisBus(options: RedisBusOptions): Bus & { readonly commands: RedisClient } {
  const { logger, mode } = options;
  const pub = createRedisClient(options.url, { offlineQueue: false, connectionName: 'onair-bus-pub' });
  const sub = createRedisClient(options.url, { offlineQueue: true, connectionName: 'onair-bus-sub' });
  const handlers = new Map<string, Set<(message: string) => void>>();
  const state = createStateListeners();
  let up = false;
  let stopped = false;

  const recompute = () => {
    const now = !stopped && pub.status === 'ready' && sub.status === 'ready';
    if (now === up) return;
    up = now;
    logger[now ? 'info' : 'warn']({ mode }, now ? 'bus connected' : 'bus down');
    state.emit(now);
  };
  for (const c of [pub, sub]) {
    c.on('ready', recompute);
    c.on('close', recompute);
    c.on('end', recompute);
    // ioredis emits 'error' on every failed reconnect; the state change above is what matters.
    c.on('error', (err: Error) => logger.debug({ err: err.message }, 'redis error'));
  }
  const onMessage = (channel: string | Buffer, message: string | Buffer) => {
    const set = handlers.get(String(channel));
    if (!set) return;
    const text = String(message);
    for (const h of [...set]) h(text);
  };
  sub.on(mode === 'sharded' ? 'smessage' : 'message', onMessage);

  return {
    kind: 'redis',
    commands: pub,
    async publish(channel, message) {
      if (!up) throw new BusUnavailableError('chat bus (Redis) is unavailable');
      try {
        if (mode === 'sharded') await pub.spublish(channel, message);
        else await pub.publish(channel, message);
      } catch (err) {
        throw new BusUnavailableError(`chat bus (Redis) publish failed: ${(err as Error).message}`);
      }
    },
    async subscribe(channel, handler): Promise<Unsubscribe> {
      let set = handlers.get(channel);
      const h = (m: string) => handler(m);
      if (!set) {
        handlers.set(channel, (set = new Set()));
        // Queued while disconnected; ioredis re-subscribes every channel after a reconnect.
        await (mode === 'sharded' ? sub.ssubscribe(channel) : sub.subscribe(channel));
      }
      set.add(h);
      return async () => {
        set.delete(h);
        if (set.size > 0 || handlers.get(channel) !== set) return;
        handlers.delete(channel);
        if (stopped) return;
        await (mode === 'sharded' ? sub.sunsubscribe(channel) : sub.unsubscribe(channel)).catch(() => undefined);
      };
    },
    isUp: () => up,
    onStateChange: (l) => state.add(l),
    async start() {
      stopped = false;
      // Do not fail start-up when Redis is down: chat reports itself unavailable and recovers when Redis returns.
      await Promise.all([pub.connect(), sub.connect()]).catch((err: Error) => {
        logger.warn({ err: err.message }, 'bus: Redis not reachable yet; retrying in the background');
      });
      recompute();
    },
    async stop() {
      stopped = true;
      handlers.clear();
      recompute();
      await Promise.all([pub.quit().catch(() => pub.disconnect()), sub.quit().catch(() => sub.disconnect())]);
    },
  };
}
