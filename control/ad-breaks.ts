// Ad breaks: started now or scheduled, recorded (start, duration, viewers at start), marked in every rendition
// by the origin (EXT-X-DATERANGE with SCTE-35) and signalled to viewers; the active one is readable for late joiners.
//
// The store is the only state: a break's start and planned end are its row. Each transition (scheduled → active →
// done, scheduled → cancelled) is a conditional update, so whichever control node makes it first makes it alone (one
// mark, one signal), any node can end a break, and a restarted or other node finishes breaks by the periodic sweep
// (`sweepMs`); the timers a node arms for its own breaks only make it punctual.
import { randomBytes } from 'node:crypto';
import type { Db } from '../lib/store/db.ts';
import type { Logger } from '../lib/logger.ts';
import type { AdBreaksTable } from '../lib/store/schema.ts';
import type { AdBreakWire, ViewerSignals } from '../chat/viewer-signals.ts';

/** An ad break as the API shows it. */
export interface AdBreakRecord extends AdBreakWire {
  eventId: string;
  seq: number;
  status: AdBreaksTable['status'];
  /** When it really ended (early end or planned end). */
  endedAt: number | null;
  viewersAtStart: number | null;
  createdAt: number;
  /** Set on what create()/end() return when that call started or ended the break: renditions that took the mark (0: no origin answered). */
  markedRenditions?: number;
}

/** Where ad breaks are marked in the media (the origin). */
export interface AdBreakMarker {
  /** Writes the break into every rendition of the event's live stream (wherever it runs); resolves to how many renditions took it. */
  mark(eventId: string, mark: { seq: number; startMs: number; plannedDurationSec: number; endMs?: number }): number | Promise<number>;
}

/** Thrown when a new break overlaps a scheduled or running one. */
export class AdBreakConflictError extends Error {
  override name = 'AdBreakConflictError';
}

/** Longest delay a break can be scheduled ahead. */
export const MAX_SCHEDULE_AHEAD_MS = 7 * 86_400_000;

const toRecord = (r: AdBreaksTable): AdBreakRecord => ({
  id: r.id,
  eventId: r.event_id,
  seq: Number(r.seq),
  startAt: Number(r.start_at),
  durationSec: Number(r.duration_ms) / 1000,
  creativeUrl: r.creative_url,
  status: r.status,
  endedAt: r.ended_at === null ? null : Number(r.ended_at),
  viewersAtStart: r.viewers_at_start === null ? null : Number(r.viewers_at_start),
  createdAt: Number(r.created_at),
});

/** The ad-break service. */
export interface AdBreaks {
  /** Starts a break now (no `startAt`) or schedules one. */
  create(
    eventId: string,
    input: { durationSec: number; startAt?: number; creativeUrl?: string | null },
    by?: string,
  ): Promise<AdBreakRecord>;
  /** Cancels a scheduled break or ends a running one now; undefined if unknown or already over. */
  end(eventId: string, id: string): Promise<AdBreakRecord | undefined>;
  /** The running break of an event, if any. */
  active(eventId: string): Promise<AdBreakRecord | undefined>;
  /** Every break of an event, newest first. */
  list(eventId: string): Promise<AdBreakRecord[]>;
  /** Re-arms timers of breaks a previous run (or another node) left scheduled or running, and starts the sweep. */
  start(): Promise<void>;
  /** Clears timers and the sweep (breaks stay recorded; start() re-arms them). */
  stop(): Promise<void>;
}

/** The event's ad break on air now, if any, read from the store (any node can ask). */
export async function activeAdBreak(db: Db, eventId: string): Promise<AdBreakRecord | undefined> {
  const r = await db.selectFrom('ad_breaks').selectAll().where('event_id', '=', eventId).where('status', '=', 'active').executeTakeFirst();
  return r && toRecord(r);
}

/** Builds the ad-break service. */
export function createAdBreaks(deps: {
  db: Db;
  logger: Logger;
  signals: ViewerSignals;
  marker: AdBreakMarker;
  viewerCount(eventId: string): number | undefined;
  defaultCreativeUrl?: string;
  now?: () => number;
  /** How often the store is checked for breaks due to start or end (made by any node); default 1000 ms. */
  sweepMs?: number;
}): AdBreaks {
  const { db, signals, marker } = deps;
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'ad-breaks' });
  const timers = new Map<string, NodeJS.Timeout>();
  const sweepMs = deps.sweepMs ?? 1_000;
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping = false;

  const arm = (id: string, atMs: number, fn: () => Promise<void>) => {
    clearTimeout(timers.get(id));
    const t = setTimeout(
      () => {
        timers.delete(id);
        fn().catch((err: Error) => log.error({ adBreakId: id, err: err.message }, 'ad break transition failed'));
      },
      Math.max(0, atMs - now()),
    );
    timers.set(id, t);
  };

  async function row(id: string): Promise<AdBreaksTable | undefined> {
    return db.selectFrom('ad_breaks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Moves a break from `from` to the new values; true only for the one caller (on any node) whose update took. */
  async function transition(id: string, from: AdBreaksTable['status'], set: Partial<AdBreaksTable>): Promise<boolean> {
    const r = await db.updateTable('ad_breaks').set(set).where('id', '=', id).where('status', '=', from).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Marks the break in the media; a failing marker is logged, the break goes on (viewers still get the signal). */
  async function markMedia(eventId: string, mark: Parameters<AdBreakMarker['mark']>[1]): Promise<number> {
    try {
      return await marker.mark(eventId, mark);
    } catch (err) {
      log.error({ eventId, seq: mark.seq, err: (err as Error).message }, 'ad break mark failed');
      return 0;
    }
  }

  async function begin(id: string): Promise<number | undefined> {
    const r = await row(id);
    if (!r || r.status !== 'scheduled') return undefined;
    const startMs = now();
    const viewers = deps.viewerCount(r.event_id) ?? null;
    if (!(await transition(id, 'scheduled', { status: 'active', start_at: startMs, viewers_at_start: viewers }))) return undefined;
    const rec = toRecord({ ...r, status: 'active', start_at: startMs, viewers_at_start: viewers });
    const renditions = await markMedia(r.event_id, { seq: rec.seq, startMs, plannedDurationSec: rec.durationSec });
    log.info({ eventId: r.event_id, adBreakId: id, durationSec: rec.durationSec, renditions, viewers }, 'ad break started');
    await signals.send(r.event_id, {
      signal: 'ad_break_start',
      adBreak: { id, startAt: startMs, durationSec: rec.durationSec, creativeUrl: rec.creativeUrl },
    });
    arm(id, startMs + rec.durationSec * 1000, async () => void (await finish(id)));
    return renditions;
  }

  async function finish(id: string): Promise<AdBreakRecord | undefined> {
    clearTimeout(timers.get(id));
    timers.delete(id);
    const r = await row(id);
    if (!r || r.status !== 'active') return undefined;
    const endMs = Math.min(now(), Number(r.start_at) + Number(r.duration_ms));
    if (!(await transition(id, 'active', { status: 'done', ended_at: endMs }))) return undefined;
    const renditions = await markMedia(r.event_id, {
      seq: Number(r.seq),
      startMs: Number(r.start_at),
      plannedDurationSec: Number(r.duration_ms) / 1000,
      endMs,
    });
    log.info({ eventId: r.event_id, adBreakId: id, renditions }, 'ad break ended');
    await signals.send(r.event_id, { signal: 'ad_break_end', id });
    return { ...toRecord({ ...r, status: 'done', ended_at: endMs }), markedRenditions: renditions };
  }

  /** Starts and ends the breaks that are due, whichever node created them (the transitions make it once). */
  async function sweep(): Promise<void> {
    const t = now();
    const open = await db
      .selectFrom('ad_breaks')
      .selectAll()
      .where('status', 'in', ['scheduled', 'active'])
      .where('start_at', '<=', t)
      .execute();
    for (const r of open) {
      const end = Number(r.start_at) + Number(r.duration_ms);
      if (r.status === 'active' && end <= t) await finish(r.id);
      else if (r.status === 'scheduled' && end <= t) await transition(r.id, 'scheduled', { status: 'cancelled' });
      else if (r.status === 'scheduled') await begin(r.id);
    }
  }

  return {
    async create(eventId, input, by) {
      const t = now();
      const startAt = input.startAt ?? t;
      const durationMs = Math.round(input.durationSec * 1000);
      if (startAt < t - 1000) throw new RangeError('startAt is in the past');
      if (startAt > t + MAX_SCHEDULE_AHEAD_MS) throw new RangeError('startAt is more than 7 days ahead');
      const open = await db
        .selectFrom('ad_breaks')
        .select(['id', 'start_at', 'duration_ms'])
        .where('event_id', '=', eventId)
        .where('status', 'in', ['scheduled', 'active'])
        .execute();
      const clash = open.find((o) => Number(o.start_at) < startAt + durationMs && startAt < Number(o.start_at) + Number(o.duration_ms));
      if (clash) throw new AdBreakConflictError(`overlaps ad break ${clash.id}`);
      const last = await db
        .selectFrom('ad_breaks')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      const r: AdBreaksTable = {
        id: 'ad_' + randomBytes(8).toString('base64url'),
        event_id: eventId,
        seq: Number(last?.seq ?? 0) + 1,
        start_at: startAt,
        duration_ms: durationMs,
        ended_at: null,
        creative_url: input.creativeUrl ?? deps.defaultCreativeUrl ?? null,
        viewers_at_start: null,
        status: 'scheduled',
        created_at: t,
        created_by: by ?? null,
      };
      await db.insertInto('ad_breaks').values(r).execute();
      let renditions: number | undefined;
      if (input.startAt === undefined || startAt <= t) {
        renditions = await begin(r.id);
      } else {
        arm(r.id, startAt, async () => void (await begin(r.id)));
        log.info({ eventId, adBreakId: r.id, startAt: new Date(startAt).toISOString() }, 'ad break scheduled');
      }
      const rec = toRecord((await row(r.id))!);
      return renditions === undefined ? rec : { ...rec, markedRenditions: renditions };
    },

    async end(eventId, id) {
      const r = await row(id);
      if (!r || r.event_id !== eventId) return undefined;
      if (r.status === 'active') return finish(id);
      if (r.status !== 'scheduled') return undefined;
      clearTimeout(timers.get(id));
      timers.delete(id);
      if (await transition(id, 'scheduled', { status: 'cancelled' })) return toRecord({ ...r, status: 'cancelled' });
      // It started meanwhile (on this node or another): end it now.
      return finish(id);
    },

    active: (eventId) => activeAdBreak(db, eventId),

    async list(eventId) {
      return (await db.selectFrom('ad_breaks').selectAll().where('event_id', '=', eventId).orderBy('start_at', 'desc').execute()).map(
        toRecord,
      );
    },

    async start() {
      const open = await db.selectFrom('ad_breaks').selectAll().where('status', 'in', ['scheduled', 'active']).execute();
      const t = now();
      for (const r of open) {
        const end = Number(r.start_at) + Number(r.duration_ms);
        if (r.status === 'active') {
          if (end <= t) await finish(r.id);
          else arm(r.id, end, async () => void (await finish(r.id)));
        } else if (end <= t) {
          await transition(r.id, 'scheduled', { status: 'cancelled' });
        } else {
          arm(r.id, Number(r.start_at), async () => void (await begin(r.id)));
        }
      }
      sweeper = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        sweep()
          .catch((err: Error) => log.error({ err: err.message }, 'ad break sweep failed'))
          .finally(() => (sweeping = false));
      }, sweepMs);
      sweeper.unref();
    },

    async stop() {
      clearInterval(sweeper);
      sweeper = undefined;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
