// Webhooks: configured URLs receive event lifecycle notifications as JSON signed with HMAC-SHA256
// (`X-Onair-Signature: t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`), retried with exponential backoff;
// every delivery is kept in a log admins can read.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Db } from '../lib/store/db.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, type Registry } from '../lib/metrics.ts';
import type { WebhookDeliveriesTable, WebhooksTable } from '../lib/store/schema.ts';
import { isIP } from 'node:net';
import { fetch, type Agent } from 'undici';
import { BlockedDestinationError, OutboundGuard, type Resolver } from '../lib/outbound-guard.ts';

/** Notification types a webhook can subscribe to. */
export const webhookEventTypes = ['event.live', 'event.offline', 'event.ended', 'recording.ready'] as const;
/** A notification type. */
export type WebhookEventType = (typeof webhookEventTypes)[number];

/** The signature header. */
export const SIGNATURE_HEADER = 'x-onair-signature';
/** Longest retry delay. */
const MAX_BACKOFF_MS = 10 * 60_000;
/** Deliveries attempted at once. */
const CONCURRENCY = 8;

/** A webhook as the API shows it (the secret only when created). */
export interface Webhook {
  id: string;
  url: string;
  events: WebhookEventType[];
  createdAt: number;
}

/** One delivery in the log. */
export interface WebhookDelivery {
  id: string;
  webhookId: string;
  type: string;
  status: WebhookDeliveriesTable['status'];
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: number;
  nextAttemptAt: number | null;
  deliveredAt: number | null;
}

/** `t=<ts>,v1=<hex>` for `body` sent at `timestampSec`. */
export function signWebhook(secret: string, timestampSec: number, body: string): string {
  return `t=${timestampSec},v1=${createHmac('sha256', secret).update(`${timestampSec}.${body}`).digest('hex')}`;
}

/** Checks a signature header for `body` (what a receiver does); rejects timestamps off by more than `toleranceSec`. */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined,
  body: string,
  toleranceSec = 300,
  nowSec = Date.now() / 1000,
): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((p) => p.trim().split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || Math.abs(nowSec - t) > toleranceSec) return false;
  const expected = Buffer.from(signWebhook(secret, t, body).split('v1=')[1]!, 'hex');
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const toWebhook = (r: WebhooksTable): Webhook => ({
  id: r.id,
  url: r.url,
  events: JSON.parse(r.events) as WebhookEventType[],
  createdAt: Number(r.created_at),
});
const toDelivery = (r: WebhookDeliveriesTable): WebhookDelivery => ({
  id: r.id,
  webhookId: r.webhook_id,
  type: r.event_type,
  status: r.status,
  attempts: Number(r.attempts),
  lastStatusCode: r.last_status_code === null ? null : Number(r.last_status_code),
  lastError: r.last_error,
  createdAt: Number(r.created_at),
  nextAttemptAt: r.next_attempt_at === null ? null : Number(r.next_attempt_at),
  deliveredAt: r.delivered_at === null ? null : Number(r.delivered_at),
});

/** Thrown by create() for a URL whose host may never be reached (`localhost`, a forbidden IP literal). */
export class WebhookDestinationError extends Error {
  override name = 'WebhookDestinationError';
}

/** The BlockedDestinationError in `err`'s cause chain, if the request was refused for its destination. */
function blockedCause(err: unknown): BlockedDestinationError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof BlockedDestinationError) return e;
  }
  return undefined;
}

/** The webhook service. */
export interface Webhooks {
  create(input: { url: string; events?: WebhookEventType[] }): Promise<{ webhook: Webhook; secret: string }>;
  list(): Promise<Webhook[]>;
  /** Deletes a webhook and its log; false if unknown. */
  remove(id: string): Promise<boolean>;
  /** A webhook's newest deliveries; undefined for an unknown webhook. */
  deliveries(id: string, limit?: number): Promise<WebhookDelivery[] | undefined>;
  /** Queues a notification to every webhook subscribed to `type`. */
  emit(type: WebhookEventType, data: Record<string, unknown>): Promise<void>;
  /** Looks for due deliveries now (another writer queued some with queueWebhookDeliveries). */
  deliverNow(): void;
  /** Starts the delivery loop (also resumes deliveries a previous run left pending). */
  start(): Promise<void>;
  /** Stops the loop and waits for attempts in flight. */
  stop(): Promise<void>;
}

/**
 * Queues a notification to every webhook subscribed to `type` in the store, returning how many deliveries were queued.
 * Any node may call it (e.g. the ingest that wrote an event's status); the control nodes' delivery loops send them.
 */
export async function queueWebhookDeliveries(db: Db, type: WebhookEventType, data: Record<string, unknown>): Promise<number> {
  const hooks = (await db.selectFrom('webhooks').selectAll().where('disabled_at', 'is', null).execute()).filter((h) =>
    (JSON.parse(h.events) as string[]).includes(type),
  );
  if (hooks.length === 0) return 0;
  const now = Date.now();
  const rows = hooks.map((h): WebhookDeliveriesTable => {
    const id = 'dlv_' + randomBytes(9).toString('base64url');
    return {
      id,
      webhook_id: h.id,
      event_type: type,
      payload: JSON.stringify({ id, type, createdAt: new Date(now).toISOString(), data }),
      status: 'pending',
      attempts: 0,
      last_status_code: null,
      last_error: null,
      created_at: now,
      next_attempt_at: now,
      delivered_at: null,
    };
  });
  await db.insertInto('webhook_deliveries').values(rows).execute();
  return rows.length;
}

/** Builds the webhook service. */
export function createWebhooks(deps: {
  db: Db;
  config: Pick<Config, 'webhookMaxAttempts' | 'webhookRetryBaseMs' | 'webhookTimeoutMs' | 'webhookAllowCidrs'>;
  logger: Logger;
  registry: Registry;
  /** Name resolution for deliveries (tests); default the system resolver. */
  resolve?: Resolver;
}): Webhooks {
  const { db, config } = deps;
  const log = deps.logger.child({ component: 'webhooks' });
  const outcomes = new Counter({
    name: 'onair_control_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome (ok, retry, failed).',
    labelNames: ['outcome'],
    registers: [deps.registry],
  });
  // Receivers on loopback, private, link-local… addresses are refused unless allowed (SSRF): at creation for
  // literal hosts, and at every delivery on the resolved addresses, which are the only ones the socket may use.
  const guard = new OutboundGuard(config.webhookAllowCidrs, deps.resolve);
  let agent: Agent | undefined;
  const inFlight = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  function backoff(attempts: number): number {
    const base = config.webhookRetryBaseMs * 2 ** Math.max(0, attempts - 1);
    return Math.min(MAX_BACKOFF_MS, Math.round(base * (1 + Math.random() * 0.2)));
  }

  async function attempt(d: WebhookDeliveriesTable): Promise<void> {
    const hook = await db.selectFrom('webhooks').selectAll().where('id', '=', d.webhook_id).executeTakeFirst();
    if (!hook) return;
    const ts = Math.floor(Date.now() / 1000);
    let statusCode: number | null = null;
    let error: string | null = null;
    let blocked = false;
    try {
      // Node connects to an IP literal without a lookup: check it here; names are checked by the agent's lookup.
      const host = new URL(hook.url).hostname;
      if (isIP(host.replace(/^\[|\]$/g, '')) !== 0) await guard.resolveChecked(host);
      agent ??= guard.dispatcher();
      const res = await fetch(hook.url, {
        dispatcher: agent,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'onair-webhooks/1',
          'x-onair-event': d.event_type,
          'x-onair-delivery': d.id,
          [SIGNATURE_HEADER]: signWebhook(hook.secret, ts, d.payload),
        },
        body: d.payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(config.webhookTimeoutMs),
      });
      statusCode = res.status;
      await res.body?.cancel().catch(() => {});
      if (res.status < 200 || res.status >= 300) error = `receiver answered HTTP ${res.status}`;
    } catch (err) {
      const refused = blockedCause(err);
      blocked = refused !== undefined;
      if (refused) error = refused.message;
      else
        error =
          (err as Error).name === 'TimeoutError'
            ? `no answer within ${config.webhookTimeoutMs} ms`
            : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
    }
    const attempts = Number(d.attempts) + 1;
    const now = Date.now();
    if (error === null) {
      await db
        .updateTable('webhook_deliveries')
        .set({ status: 'delivered', attempts, last_status_code: statusCode, last_error: null, next_attempt_at: null, delivered_at: now })
        .where('id', '=', d.id)
        .execute();
      outcomes.inc({ outcome: 'ok' });
      return;
    }
    // A refused destination fails at once: retrying would only knock again on an address we will not reach.
    const failed = blocked || attempts >= config.webhookMaxAttempts;
    await db
      .updateTable('webhook_deliveries')
      .set({
        status: failed ? 'failed' : 'pending',
        attempts,
        last_status_code: statusCode,
        last_error: error,
        next_attempt_at: failed ? null : now + backoff(attempts),
      })
      .where('id', '=', d.id)
      .execute();
    outcomes.inc({ outcome: failed ? 'failed' : 'retry' });
    log.warn({ webhookId: d.webhook_id, deliveryId: d.id, attempts, error, gaveUp: failed }, 'webhook delivery failed');
  }

  async function tick(): Promise<void> {
    if (!running) return;
    const free = CONCURRENCY - inFlight.size;
    if (free <= 0) return;
    const due = await db
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', Date.now())
      .orderBy('next_attempt_at', 'asc')
      .limit(free + inFlight.size)
      .execute();
    for (const d of due) {
      if (inFlight.has(d.id) || inFlight.size >= CONCURRENCY) continue;
      const p = attempt(d)
        .catch((err: Error) => log.error({ deliveryId: d.id, err: err.message }, 'webhook attempt failed'))
        .finally(() => inFlight.delete(d.id));
      inFlight.set(d.id, p);
    }
  }

  const kick = () => {
    tick().catch((err: Error) => log.error({ err: err.message }, 'webhook loop failed'));
  };

  return {
    async create(input) {
      const refused = guard.urlError(input.url);
      if (refused) throw new WebhookDestinationError(`webhook URL refused: ${refused}`);
      const secret = 'whsec_' + randomBytes(24).toString('base64url');
      const row: WebhooksTable = {
        id: 'wh_' + randomBytes(8).toString('base64url'),
        url: input.url,
        secret,
        events: JSON.stringify(input.events ?? ['event.live', 'event.offline', 'event.ended']),
        created_at: Date.now(),
        disabled_at: null,
      };
      await db.insertInto('webhooks').values(row).execute();
      return { webhook: toWebhook(row), secret };
    },

    async list() {
      return (await db.selectFrom('webhooks').selectAll().orderBy('created_at', 'asc').execute()).map(toWebhook);
    },

    async remove(id) {
      const r = await db.deleteFrom('webhooks').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    },

    async deliveries(id, limit = 100) {
      if (!(await db.selectFrom('webhooks').select('id').where('id', '=', id).executeTakeFirst())) return undefined;
      const rows = await db
        .selectFrom('webhook_deliveries')
        .selectAll()
        .where('webhook_id', '=', id)
        .orderBy('created_at', 'desc')
        .limit(limit)
        .execute();
      return rows.map(toDelivery);
    },

    async emit(type, data) {
      if ((await queueWebhookDeliveries(db, type, data)) > 0) kick();
    },

    deliverNow: () => kick(),

    async start() {
      running = true;
      timer = setInterval(kick, Math.min(1000, Math.max(50, Math.floor(config.webhookRetryBaseMs / 2))));
      timer.unref();
      kick();
    },

    async stop() {
      running = false;
      clearInterval(timer);
      timer = undefined;
      await Promise.all(inFlight.values());
      await agent?.close();
      agent = undefined;
    },
  };
}
