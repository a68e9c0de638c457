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

type MetricCtor<T> = new (cfg: { name: string; help: string; labelNames: string[]; registers: Registry[] }) => T;

/** The metric already on `registry` under `name` (shared by RTMP and WHIP ingest, or a previous instance), or a new one. */
export function sharedMetric<T>(registry: Registry, Ctor: MetricCtor<T>, name: string, help: string, labelNames: string[]): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? new Ctor({ name, help, labelNames, registers: [registry] });
}
