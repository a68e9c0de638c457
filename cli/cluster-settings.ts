// What the cluster roles (ingest, origin, edge, control as separate processes) derive from the configuration: the
// node's id, an origin's capacity and advertised URL, and the checks that stop a role missing what it needs.
import { availableParallelism, hostname } from 'node:os';
import type { Config, Role } from '../config/schema.ts';
import { RoleConfigError } from './roles.ts';

/** This node's id in the cluster: ONAIR_NODE_ID, else `<hostname>-<pid>` (characters outside the id alphabet dropped). */
export function nodeIdOf(config: Pick<Config, 'nodeId'>): string {
  return (
    config.nodeId ??
    `${
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '')
        .slice(0, 48) || 'node'
    }-${process.pid}`
  );
}

/** Live events this origin accepts: ONAIR_ORIGIN_CAPACITY, or one per CPU core when it is 0. */
export function originCapacityOf(config: Pick<Config, 'originCapacity'>): number {
  return config.originCapacity > 0 ? config.originCapacity : availableParallelism();
}

/** The base URL ingests and edges reach this origin on, once its port is bound. */
export function advertisedOriginUrl(config: Pick<Config, 'originAdvertiseUrl' | 'host'>, boundPort: number): string {
  if (config.originAdvertiseUrl) return config.originAdvertiseUrl.replace(/\/+$/, '');
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
}

/** Replicas per live event: ONAIR_REPLICAS, else 2 (the placement takes what the pool has, so 1 with one origin). */
export function replicasOf(config: Pick<Config, 'replicas'>): number {
  return config.replicas ?? 2;
}

/**
 * Stops a cluster role that lacks what it needs, with a message naming the setting: every cluster role finds its
 * peers through Redis; ingests and origins authenticate feeds with the cluster secret; control nodes share the
 * viewer-token secret (tokens, sealed stream keys); ingests (stream keys, event status) and control nodes share the
 * PostgreSQL store.
 */
export function checkClusterRoles(roles: ReadonlySet<Role>, config: Config): void {
  const named = [...roles].join(',');
  if (!config.redisUrl) {
    throw new RoleConfigError(`--role ${named} runs in a cluster: it needs Redis to find its peers (REDIS_URL or ONAIR_REDIS_URL)`);
  }
  if ((roles.has('ingest') || roles.has('origin')) && !config.clusterSecret) {
    throw new RoleConfigError(
      `--role ${named} needs ONAIR_CLUSTER_SECRET (at least 32 characters, the same on every node) to authenticate live feeds`,
    );
  }
  if (roles.has('control') && !config.viewerTokenSecret) {
    throw new RoleConfigError(
      `--role ${named} needs ONAIR_VIEWER_TOKEN_SECRET (at least 32 characters, the same on every node): viewer tokens and sealed stream keys must read alike on every control node`,
    );
  }
  if ((roles.has('ingest') || roles.has('control')) && !config.databaseUrl) {
    throw new RoleConfigError(`--role ${named} needs the cluster's shared PostgreSQL store (DATABASE_URL or ONAIR_DATABASE_URL)`);
  }
}
