// The control messages carried on the bus between control nodes and the owners of live events (ingests and origins):
// operator commands (end, key rotated, ad-break marks), their acknowledgements, and ingest health samples.
//
// Wire rules: JSON, one object per message, `v` is the protocol version. A receiver drops (and logs) any message that
// is not valid JSON, has another version or does not match its schema; it never throws into the bus. Fields added
// within one version are ignored by older receivers (non-strict objects), so a rolling upgrade keeps working.
// Delivery is at most once (pub/sub): the sender learns what reached an owner from the acks on its reply channel.
import { z } from 'zod';
import type { Logger } from '../logger.ts';
import type { Service } from '../lifecycle.ts';
import type { Bus, Unsubscribe } from './bus.ts';

/** The version every message carries; a receiver drops other versions. */
export const CONTROL_PROTOCOL_VERSION = 1 as const;

/** Who receives a command: every ingest, or every origin (each acts only on the events it carries). */
export type CommandTarget = 'ingest' | 'origin';

/** Bus channel of the commands for one role. */
export function commandChannel(target: CommandTarget): string {
  return `onair:control:cmd:${target}`;
}

/** Bus channel where one sender (a control plane instance) gets its acks. */
export function ackChannel(senderId: string): string {
  return `onair:control:ack:${senderId}`;
}

/** Bus channel of ingest health samples (every control node listens). */
export const HEALTH_CHANNEL = 'onair:control:health';

const id = z.string().min(1).max(128);
const common = {
  v: z.literal(CONTROL_PROTOCOL_VERSION),
  /** Unique per command: acks name it. */
  id,
  eventId: id,
  /** Ack channel of the sender; absent: no ack wanted. */
  replyTo: z.string().min(1).max(256).optional(),
  /** When the control node sent it (ms since the epoch), for logs. */
  sentAt: z.number().int().nonnegative(),
};

/** Commands for the ingest holding the event: `end` (the event was ended) and `key_rotated` both close its publisher. */
export const ingestCommandSchema = z.discriminatedUnion('kind', [
  z.object({ ...common, kind: z.literal('end') }),
  z.object({ ...common, kind: z.literal('key_rotated') }),
]);
/** A command for ingests. */
export type IngestCommand = z.infer<typeof ingestCommandSchema>;

/** An ad break mark (origin/ad-breaks.ts AdBreakMark) as it travels. */
export const adBreakMarkSchema = z.object({
  seq: z.number().int().nonnegative().max(0xffffffff),
  startMs: z.number().int().nonnegative(),
  plannedDurationSec: z.number().positive().max(86_400),
  endMs: z.number().int().nonnegative().optional(),
});

/** Commands for the origins carrying the event: write (or close) an ad break's DATERANGE in every rendition. */
export const originCommandSchema = z.discriminatedUnion('kind', [
  z.object({ ...common, kind: z.literal('ad_break'), mark: adBreakMarkSchema }),
]);
/** A command for origins. */
export type OriginCommand = z.infer<typeof originCommandSchema>;

/** What an owner answers to a command it carried out (owners that do not carry the event stay silent). */
export const commandAckSchema = z.object({
  v: z.literal(CONTROL_PROTOCOL_VERSION),
  /** The command's id. */
  id,
  /** Node id of the owner that acted. */
  node: id,
  role: z.enum(['ingest', 'origin']),
  /** True when the command changed something there (a publisher closed, renditions marked). */
  applied: z.boolean(),
  /** Origins: renditions that took the mark. */
  renditions: z.number().int().nonnegative().optional(),
});
/** An ack. */
export type CommandAck = z.infer<typeof commandAckSchema>;

/** One ingest health report (control/health.ts IngestReport) as it travels. */
export const healthMessageSchema = z.object({
  v: z.literal(CONTROL_PROTOCOL_VERSION),
  eventId: id,
  /** Node id of the ingest that measured it. */
  node: id,
  report: z.object({
    protocol: z.string().min(1).max(32),
    bitrateKbps: z.number().nonnegative(),
    fps: z.number().nonnegative(),
    keyframeIntervalSec: z.number().nonnegative().nullable(),
    width: z.number().int().nonnegative().nullable(),
    height: z.number().int().nonnegative().nullable(),
    videoCodec: z.string().max(64).nullable(),
    audioCodec: z.string().max(64).nullable(),
    lateFrames: z.number().int().nonnegative(),
    publishStartedAt: z.number().int().nonnegative().optional(),
  }),
});
/** A health message. */
export type HealthMessage = z.infer<typeof healthMessageSchema>;

/** Parses one bus message against `schema`: the value, or why it was dropped. */
export function parseControlMessage<T extends z.ZodType>(
  schema: T,
  raw: string,
): { ok: true; value: z.infer<T> } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  const v = (json as { v?: unknown } | null)?.v;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { ok: false, reason: 'not an object' };
  if (v !== CONTROL_PROTOCOL_VERSION) return { ok: false, reason: `unsupported version ${JSON.stringify(v ?? null)}` };
  const r = schema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0];
    return { ok: false, reason: `${first?.path.join('.') || 'message'}: ${first?.message ?? 'invalid'}` };
  }
  return { ok: true, value: r.data };
}

/** What a receiver's handler answers: an ack to send back, or undefined (this node does not carry the event). */
export type CommandResult = Omit<CommandAck, 'v' | 'id' | 'node' | 'role'> | undefined;

/**
 * A Service that listens on `commandChannel(target)`, hands each valid command to `handle`, and acks the sender when
 * `handle` returns a result. Malformed messages and failing handlers are logged and dropped.
 */
export function createCommandListener<
  T extends z.ZodType<{ id: string; eventId: string; kind: string; replyTo?: string | undefined }>,
>(deps: {
  bus: Bus;
  logger: Logger;
  nodeId: string;
  target: CommandTarget;
  schema: T;
  handle(command: z.infer<T>): CommandResult | Promise<CommandResult>;
}): Service {
  const { bus, nodeId, target } = deps;
  const log = deps.logger.child({ component: `${target}-commands` });
  let unsubscribe: Unsubscribe | undefined;

  const ack = async (cmd: z.infer<T>, result: NonNullable<CommandResult>) => {
    if (!cmd.replyTo) return;
    const a: CommandAck = { v: CONTROL_PROTOCOL_VERSION, id: cmd.id, node: nodeId, role: target, ...result };
    await bus.publish(cmd.replyTo, JSON.stringify(a));
  };

  const onMessage = (raw: string) => {
    const parsed = parseControlMessage(deps.schema, raw);
    if (!parsed.ok) return void log.warn({ reason: parsed.reason, bytes: raw.length }, 'malformed control command dropped');
    const cmd = parsed.value;
    Promise.resolve()
      .then(() => deps.handle(cmd))
      .then(async (result) => {
        if (!result) return;
        log.info({ eventId: cmd.eventId, kind: cmd.kind, commandId: cmd.id, ...result }, 'control command carried out');
        await ack(cmd, result);
      })
      .catch((err: Error) =>
        log.error({ eventId: cmd.eventId, kind: cmd.kind, commandId: cmd.id, err: err.message }, 'control command failed'),
      );
  };

  return {
    async start() {
      unsubscribe = await bus.subscribe(commandChannel(target), onMessage);
    },
    async stop() {
      await unsubscribe?.();
      unsubscribe = undefined;
    },
  };
}
