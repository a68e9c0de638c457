// Ingest metrics, shared by the RTMP and WHIP ingests of one registry and labelled by protocol.
import { Counter, Gauge, sharedMetric, type Registry } from '../lib/metrics.ts';

/** The ingest counters and gauges on `registry` (created once, then shared). */
export function ingestMetrics(registry: Registry) {
  return {
    publishes: sharedMetric(registry, Counter, 'onair_ingest_publishes_total', 'Publish sessions accepted by ingest.', ['protocol']),
    rejected: sharedMetric(registry, Counter, 'onair_ingest_rejected_total', 'Publish attempts refused by ingest.', ['protocol', 'reason']),
    active: sharedMetric(registry, Gauge, 'onair_ingest_active_publishers', 'Publishers currently live on ingest.', ['protocol']),
    bytes: sharedMetric(registry, Counter, 'onair_ingest_bytes_total', 'FLV bytes handed from ingest to the origin.', ['protocol']),
  };
}
