// ioredis clients with the options onair relies on: fail fast while down, reconnect forever in the background.
import { Cluster, Redis } from 'ioredis';

/** A standalone or cluster ioredis client. */
export type RedisClient = Redis | Cluster;

/** Options shared by every onair Redis client. */
export interface RedisClientOptions {
  /** Queue commands while disconnected (subscriber) instead of failing them at once (commands). */
  offlineQueue: boolean;
  /** Name shown by CLIENT LIST. */
  connectionName: string;
}

/** Reconnect delay: 100 ms growing to 2 s, never giving up. */
export function retryDelay(times: number): number {
  return Math.min(100 * times, 2_000);
}

/**
 * Creates a client for `url`. A comma-separated list of URLs means Redis Cluster (seed nodes),
 * with sharded subscribers so SSUBSCRIBE reaches the node owning each channel's slot.
 */
export function createRedisClient(url: string, options: RedisClientOptions): RedisClient {
  const urls = url
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  const common = {
    lazyConnect: true,
    enableOfflineQueue: options.offlineQueue,
    maxRetriesPerRequest: options.offlineQueue ? null : 1,
    connectionName: options.connectionName,
    commandTimeout: options.offlineQueue ? undefined : 2_000,
    retryStrategy: retryDelay,
  };
  if (urls.length > 1) {
    const nodes = urls.map((u) => {
      const p = new URL(u);
      return { host: p.hostname, port: Number(p.port || 6379) };
    });
    const first = new URL(urls[0]!);
    return new Cluster(nodes, {
      lazyConnect: true,
      enableOfflineQueue: options.offlineQueue,
      shardedSubscribers: true,
      clusterRetryStrategy: retryDelay,
      redisOptions: { ...common, password: first.password || undefined, username: first.username || undefined },
    });
  }
  return new Redis(urls[0] ?? 'redis://127.0.0.1:6379', common);
}
