// The control node's end of ingest health over the bus (cluster mode): every valid report on the health channel is
// handed to the control plane (onIngestHealth), whichever ingest measured it. Malformed messages are logged and dropped.
import type { Bus, Unsubscribe } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';
import type { Service } from '../lib/lifecycle.ts';
import { HEALTH_CHANNEL, healthMessageSchema, parseControlMessage } from '../lib/bus/control-messages.ts';
import type { IngestReport } from './health.ts';

/** Builds the subscriber (a Service: start() subscribes, stop() unsubscribes). */
export function createHealthFeed(deps: { bus: Bus; logger: Logger; onReport(eventId: string, report: IngestReport): void }): Service {
  const log = deps.logger.child({ component: 'health-feed' });
  let unsubscribe: Unsubscribe | undefined;
  const onMessage = (raw: string) => {
    const parsed = parseControlMessage(healthMessageSchema, raw);
    if (!parsed.ok) return void log.warn({ reason: parsed.reason, bytes: raw.length }, 'malformed health message dropped');
    const { eventId, report } = parsed.value;
    try {
      deps.onReport(eventId, report);
    } catch (err) {
      log.error({ eventId, err: (err as Error).message }, 'health report failed');
    }
  };
  return {
    async start() {
      unsubscribe = await deps.bus.subscribe(HEALTH_CHANNEL, onMessage);
    },
    async stop() {
      await unsubscribe?.();
      unsubscribe = undefined;
    },
  };
}
