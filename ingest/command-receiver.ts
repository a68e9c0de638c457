// The ingest's end of the control channel: closes the publisher of an event this node holds when a control node
// ended the event or rotated its key (whichever node took the operator's request). Nodes not holding it stay silent.
import type { Bus } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';
import type { Service } from '../lib/lifecycle.ts';
import { createCommandListener, ingestCommandSchema } from '../lib/bus/control-messages.ts';
import type { PublisherSlots } from './publishers.ts';

/** What the receiver needs from its ingest node. */
export interface IngestCommandReceiverDeps {
  bus: Bus;
  logger: Logger;
  /** This node's id (named in acks). */
  nodeId: string;
  /** The node's publisher registry: who holds an event here, if anyone. */
  publishers: Pick<PublisherSlots, 'holderProtocol'>;
  /** Closes the event's publisher of `protocol` (the RTMP or WHIP ingest's disconnect); false if none. */
  disconnect(eventId: string, protocol: string): boolean;
}

/** Builds the receiver (a Service: start() subscribes, stop() unsubscribes). */
export function createIngestCommandReceiver(deps: IngestCommandReceiverDeps): Service {
  return createCommandListener({
    bus: deps.bus,
    logger: deps.logger,
    nodeId: deps.nodeId,
    target: 'ingest',
    schema: ingestCommandSchema,
    handle(cmd) {
      const protocol = deps.publishers.holderProtocol(cmd.eventId);
      if (protocol === undefined) return undefined;
      return { applied: deps.disconnect(cmd.eventId, protocol) };
    },
  });
}
