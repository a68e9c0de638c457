// An event's status changes and what follows them: the store's status, the webhooks (queued in the store, sent by the
// control nodes' delivery loops) and the viewers' `event_status` signal (the bus). One writer per event: in all-in-one
// mode the control plane (fed by the origin), in cluster mode the node that owns the event (its ingest) — never both,
// and never every control node, or webhooks would go out once per node.
import type { Config } from '../config/schema.ts';
import type { Db } from '../lib/store/db.ts';
import type { ViewerSignals } from '../chat/viewer-signals.ts';
import { eventView } from './api-events.ts';
import type { EventRecord, EventService } from './events.ts';
import { eventUrls, publicBase } from './public-urls.ts';
import { queueWebhookDeliveries } from './webhooks.ts';

/** Writes status changes and notifies once per real change. */
export interface EventStatusWriter {
  /** Records `status`; when it really changed, queues `event.live`/`event.offline` webhooks and signals viewers. */
  set(eventId: string, status: 'live' | 'offline'): Promise<void>;
  /** Queues the webhook `type` for `e` and signals viewers its status (also used for `event.ended`). */
  notify(type: 'event.live' | 'event.offline' | 'event.ended', e: EventRecord): Promise<void>;
}

/** Builds the writer; `queued` is called after webhooks were queued (the local delivery loop's kick, if any). */
export function createEventStatusWriter(deps: {
  db: Db;
  events: EventService;
  signals: ViewerSignals;
  config: Pick<Config, 'publicUrl' | 'httpPort' | 'rtmpPort'>;
  queued?: () => void;
}): EventStatusWriter {
  const { db, events, signals, config } = deps;
  const server = { publicUrl: publicBase(config, config.httpPort), rtmpPort: config.rtmpPort };
  const notify: EventStatusWriter['notify'] = async (type, e) => {
    const n = await queueWebhookDeliveries(db, type, { event: { ...eventView(e), watchUrl: eventUrls(server, e).watchUrl } });
    if (n > 0) deps.queued?.();
    await signals.send(e.id, { signal: 'event_status', status: e.status });
  };
  return {
    notify,
    async set(eventId, status) {
      if (!(await events.setStatus(eventId, status))) return;
      const e = await events.byId(eventId);
      if (e) await notify(status === 'live' ? 'event.live' : 'event.offline', e);
    },
  };
}
