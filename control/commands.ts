// The control node's end of the control channel: operator actions on a live event (end, key rotation, ad-break marks)
// sent over the bus to whichever ingest and origins carry it, in this process or another.
//
// Reach is reported by acks: each command names this sender's reply channel, and every owner that carried it out
// answers there. send() resolves once the expected owners answered (1 ingest; the placement's origins, or 1 without a
// placement source) or after `ackTimeoutMs`, with the acks it got. With a placement source that says the event is not
// placed, nothing is expected and send() resolves at once (the command is still published, for a stale cache).
import { randomBytes } from 'node:crypto';
import type { Bus, Unsubscribe } from '../lib/bus/bus.ts';
import type { Logger } from '../lib/logger.ts';
import type { Service } from '../lib/lifecycle.ts';
import type { PlacementSource } from '../lib/placement/types.ts';
import type { AdBreakMark } from '../origin/ad-breaks.ts';
import {
  CONTROL_PROTOCOL_VERSION,
  ackChannel,
  commandAckSchema,
  commandChannel,
  parseControlMessage,
  type CommandAck,
  type CommandTarget,
  type IngestCommand,
  type OriginCommand,
} from '../lib/bus/control-messages.ts';

/** What one command reached. */
export interface CommandOutcome {
  /** False when the bus refused the message (Redis down): nobody got it. */
  published: boolean;
  /** The owners that carried it out, in the order they answered. */
  acks: CommandAck[];
  /** True when fewer owners than expected answered within the timeout. */
  timedOut: boolean;
}

/** Sends operator commands to the owners of live events. */
export interface ControlCommands extends Service {
  /** Closes the event's publisher wherever it is held (`end`: the event ended; `key_rotated`: its key changed). */
  disconnect(eventId: string, kind: IngestCommand['kind']): Promise<CommandOutcome>;
  /** Writes an ad break's DATERANGE (its start, or with `endMs` its end) on every origin carrying the event. */
  markAdBreak(eventId: string, mark: AdBreakMark): Promise<CommandOutcome>;
  /** Subscribes the reply channel. */
  start(signal?: AbortSignal): Promise<void>;
  /** Unsubscribes; pending sends resolve with what they got. */
  stop(): Promise<void>;
}

/** How long a command waits for its owners: in-process delivery is immediate, Redis takes a round trip or two. */
export const ACK_TIMEOUT_MS = { memory: 250, redis: 1_500 } as const;

/** Options of the sender. */
export interface ControlCommandsDeps {
  bus: Bus;
  logger: Logger;
  /** This node's id (a random suffix makes each sender's reply channel unique). */
  nodeId: string;
  /** Where live events are placed (cluster mode): how many origins to expect, and whether anyone owns the event. */
  placements?: PlacementSource;
  /** Default ACK_TIMEOUT_MS by bus kind. */
  ackTimeoutMs?: number;
}

/** Builds the sender. */
export function createControlCommands(deps: ControlCommandsDeps): ControlCommands {
  const { bus, placements } = deps;
  const log = deps.logger.child({ component: 'control-commands' });
  const timeoutMs = deps.ackTimeoutMs ?? ACK_TIMEOUT_MS[bus.kind];
  const senderId = `${deps.nodeId}.${randomBytes(6).toString('hex')}`;
  const replyTo = ackChannel(senderId);
  const pending = new Map<string, { acks: CommandAck[]; expect: number; settle(timedOut: boolean): void }>();
  let unsubscribe: Unsubscribe | undefined;

  const onAck = (raw: string) => {
    const parsed = parseControlMessage(commandAckSchema, raw);
    if (!parsed.ok) return void log.warn({ reason: parsed.reason }, 'malformed command ack dropped');
    const p = pending.get(parsed.value.id);
    if (!p) return; // late (after the timeout) or not ours
    p.acks.push(parsed.value);
    if (p.acks.length >= p.expect) p.settle(false);
  };

  /** How many owners of `target` should answer for `eventId`. */
  async function expected(target: CommandTarget, eventId: string): Promise<number> {
    if (!placements) return 1;
    let placement;
    try {
      placement = await placements.get(eventId);
    } catch (err) {
      log.warn({ eventId, err: (err as Error).message }, 'placement unreadable; expecting one owner');
      return 1;
    }
    if (!placement) return 0;
    return target === 'ingest' ? 1 : Math.max(1, placement.origins.length);
  }

  async function send(target: CommandTarget, command: IngestCommand | OriginCommand): Promise<CommandOutcome> {
    const expect = unsubscribe ? await expected(target, command.eventId) : 0;
    const acks: CommandAck[] = [];
    let settle!: (timedOut: boolean) => void;
    const done = new Promise<boolean>((resolve) => (settle = resolve));
    let timer: NodeJS.Timeout | undefined;
    if (expect > 0) {
      pending.set(command.id, { acks, expect, settle });
      timer = setTimeout(() => settle(true), timeoutMs);
    }
    const wire = unsubscribe ? { ...command, replyTo } : command;
    try {
      await bus.publish(commandChannel(target), JSON.stringify(wire));
    } catch (err) {
      clearTimeout(timer);
      pending.delete(command.id);
      log.warn({ eventId: command.eventId, kind: command.kind, err: (err as Error).message }, 'control command not sent');
      return { published: false, acks: [], timedOut: false };
    }
    const timedOut = expect > 0 ? await done : false;
    clearTimeout(timer);
    pending.delete(command.id);
    const outcome = { published: true, acks: [...acks], timedOut };
    const level = timedOut ? 'warn' : 'info';
    log[level](
      { eventId: command.eventId, kind: command.kind, expected: expect, reached: acks.map((a) => a.node), timedOut },
      'control command sent',
    );
    return outcome;
  }

  const header = (eventId: string) => ({
    v: CONTROL_PROTOCOL_VERSION as typeof CONTROL_PROTOCOL_VERSION,
    id: 'cmd_' + randomBytes(9).toString('base64url'),
    eventId,
    sentAt: Date.now(),
  });

  return {
    disconnect: (eventId, kind) => send('ingest', { ...header(eventId), kind } as IngestCommand),
    markAdBreak: (eventId, mark) => send('origin', { ...header(eventId), kind: 'ad_break', mark }),
    async start() {
      unsubscribe = await bus.subscribe(replyTo, onAck);
    },
    async stop() {
      const u = unsubscribe;
      unsubscribe = undefined;
      for (const p of pending.values()) p.settle(true);
      pending.clear();
      await u?.();
    },
  };
}
