// The origin pool as the cluster roles of one process see it: one Redis bus (commands + pub/sub), the origin
// registry and the placements, started once and shared by whichever of ingest, origin, edge and control run here.
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Bus } from '../lib/bus/bus.ts';
import type { RedisClient } from '../lib/bus/redis-connection.ts';
import { createRedisBus } from '../lib/bus/redis-bus.ts';
import type { Service } from '../lib/lifecycle.ts';
import { createOriginRegistry, type OriginRegistry } from '../lib/placement/origin-registry.ts';
import { createPlacements } from '../lib/placement/placements.ts';
import { createPlacementCache } from '../lib/placement/placement-cache.ts';
import type { PlacementSource, Placements } from '../lib/placement/types.ts';

/** What the cluster roles of a process share. */
export interface Pool {
  bus: Bus & { readonly commands: RedisClient };
  registry: OriginRegistry;
  placements: Placements;
  /** Placements read through a local cache kept fresh by the change feed (edges, control nodes). */
  cached: PlacementSource;
}

/** Where the pool's services are added, in start order. */
interface ServiceAdder {
  add<S extends Service>(name: string, svc: S): S;
}

/** Adds the pool's services (bus, placements, cache) to `stage`; `config.redisUrl` must be set. */
export function addPool(stage: ServiceAdder, config: Config, logger: Logger): Pool {
  const log = logger.child({ part: 'pool' });
  const bus = stage.add('pool bus', createRedisBus({ url: config.redisUrl!, mode: config.busChannelMode, logger: log }));
  const registry = createOriginRegistry(bus.commands);
  const placements = stage.add('placements', createPlacements({ redis: bus.commands, bus, registry, logger: log }));
  const cached = stage.add('placement cache', createPlacementCache({ placements }));
  return { bus, registry, placements, cached };
}
