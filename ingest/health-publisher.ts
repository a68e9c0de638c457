// Ingest health over the bus (cluster mode): each report the ingest takes of a live publisher is published on the
// health channel, so every control node's health panel shows it whichever node the operator uses. Fire-and-forget:
// a report the bus cannot take (Redis down) is dropped; the next one comes a few seconds later.
import type { Bus } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';
import { CONTROL_PROTOCOL_VERSION, HEALTH_CHANNEL, type HealthMessage } from '../lib/bus/control-messages.ts';
import type { IngestStats } from './flv-stats.ts';

/** Publishes ingest health reports; pass `onHealth` as the ingests' onHealth. */
export interface HealthPublisher {
  onHealth(eventId: string, stats: IngestStats): void;
}

/** Builds the publisher for the ingest `nodeId`. */
export function createHealthPublisher(deps: { bus: Bus; logger: Logger; nodeId: string }): HealthPublisher {
  const log = deps.logger.child({ component: 'health-publisher' });
  let warned = false;
  return {
    onHealth(eventId, s) {
      const msg: HealthMessage = {
        v: CONTROL_PROTOCOL_VERSION,
        eventId,
        node: deps.nodeId,
        report: {
          protocol: s.protocol,
          bitrateKbps: s.bitrateKbps,
          fps: s.fps,
          keyframeIntervalSec: s.keyframeIntervalSec,
          width: s.width,
          height: s.height,
          videoCodec: s.videoCodec,
          audioCodec: s.audioCodec,
          lateFrames: s.lateFrames,
          publishStartedAt: s.publishStartedAt,
        },
      };
      deps.bus.publish(HEALTH_CHANNEL, JSON.stringify(msg)).then(
        () => (warned = false),
        (err: Error) => {
          // One warning per outage, not one per report.
          if (!warned) log.warn({ err: err.message }, 'health report not published; dropping until the bus is back');
          warned = true;
        },
      );
    },
  };
}
