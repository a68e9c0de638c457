// Prometheus metrics: one registry per server instance (no global default registry).
import { Registry, collectDefaultMetrics } from 'prom-client';

export { AggregatorRegistry, Counter, Gauge, Histogram } from 'prom-client';
export type { Registry };

/** Creates a registry with the process metrics (CPU, memory, event loop lag) registered. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
