// The origin's end of the control channel: writes an ad break's DATERANGE (start, or its end) into every rendition
// of an event's live stream when this origin carries the event. Origins not carrying it stay silent.
import type { Bus } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';
import type { Service } from '../lib/lifecycle.ts';
import { createCommandListener, originCommandSchema } from '../lib/bus/control-messages.ts';
import { markAdBreak, type DateRangeTarget } from './ad-breaks.ts';

/** What the receiver needs from its origin. */
export interface OriginCommandReceiverDeps {
  bus: Bus;
  logger: Logger;
  /** This node's id (named in acks). */
  nodeId: string;
  /** The event's live stream here (origin.stream), if any. */
  stream(eventId: string): { packagers: Map<string, DateRangeTarget> } | undefined;
}

/** Builds the receiver (a Service: start() subscribes, stop() unsubscribes). */
export function createOriginCommandReceiver(deps: OriginCommandReceiverDeps): Service {
  return createCommandListener({
    bus: deps.bus,
    logger: deps.logger,
    nodeId: deps.nodeId,
    target: 'origin',
    schema: originCommandSchema,
    handle(cmd) {
      const s = deps.stream(cmd.eventId);
      if (!s) return undefined;
      const { endMs, ...rest } = cmd.mark;
      const renditions = markAdBreak(s.packagers.values(), endMs === undefined ? rest : { ...rest, endMs });
      return { applied: renditions > 0, renditions };
    },
  });
}
