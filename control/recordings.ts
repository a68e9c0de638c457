// Recordings in the store and in recording storage: the rows the API lists, the hooks the origin's recorder
// reports to (begin / failed / ready, with the `recording.ready` webhook), deletion, and the MP4 download
// (the top rendition's stored segments remuxed by ffmpeg with `-c copy`, never re-encoded).
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Db } from '../lib/store/db.ts';
import type { Logger } from '../lib/logger.ts';
import type { RecordingsTable, RecordingStatus } from '../lib/store/schema.ts';
import { readAll, type Storage } from '../lib/storage/storage.ts';
import type { RecordingHooks, RecordingInfo } from '../origin/recording/recorder.ts';
import { commonSegments, latestKey, objectKey, posterKey, type RecordingManifest } from '../origin/recording/manifest.ts';
import type { ObjectReader } from '../lib/storage/storage.ts';
import { loadManifest } from '../origin/recording/replay.ts';
import { clipKey } from '../origin/recording/clip.ts';
import { queueWebhookDeliveries } from './webhooks.ts';

/** A recording as the API shows it. */
export interface RecordingView {
  id: string;
  eventId: string;
  status: RecordingStatus;
  startedAt: number;
  endedAt: number | null;
  durationSec: number;
  bytes: number;
  /** Why it failed (storage errors), null otherwise. */
  failure: string | null;
  /** The replay URL (the event's hlsUrl) and the MP4 download path (admins). */
  hlsUrl: string;
  downloadUrl: string;
  /** The poster JPEG (admins), and the seek-preview WebVTT of the event's replay (public, beside its hlsUrl). */
  posterUrl: string;
  previewUrl: string;
}

function view(r: RecordingsTable): RecordingView {
  return {
    id: r.id,
    eventId: r.event_id,
    status: r.status,
    startedAt: Number(r.started_at),
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    durationSec: Number(r.duration_ms) / 1000,
    bytes: Number(r.bytes),
    failure: r.failure,
    hlsUrl: `/live/${r.event_id}/master.m3u8`,
    downloadUrl: `/api/v1/recordings/${r.id}/download`,
    posterUrl: `/api/v1/recordings/${r.id}/poster.jpg`,
    previewUrl: `/live/${r.event_id}/thumbnails.vtt`,
  };
}

/** The zeroMs a recording's storage prefix names (`<event>/<zeroMs>/`). */
function zeroOf(r: RecordingsTable): number {
  return Number(r.storage_prefix.split('/')[1]);
}

const HOUR_MS = 3_600_000;

/**
 * The retention sweep (a Service): with `recordingRetentionDays` > 0, deletes expired recordings at start and then
 * hourly. Several control nodes may sweep at once: deleting is idempotent.
 */
export function recordingRetention(recordings: RecordingService, days: number, logger: Logger, everyMs = HOUR_MS) {
  let timer: NodeJS.Timeout | undefined;
  const sweep = () =>
    recordings
      .sweep(Date.now() - days * 86_400_000)
      .then((n) => {
        if (n > 0) logger.info({ deleted: n, days }, 'expired recordings deleted');
      })
      .catch((err: Error) => logger.error({ err: err.message }, 'recording retention sweep failed'));
  return {
    async start() {
      if (days <= 0) return;
      void sweep();
      timer = setInterval(() => void sweep(), everyMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
    },
  };
}

/** The recordings of the store and of the storage. */
export class RecordingService {
  constructor(
    private readonly db: Db,
    readonly storage: Storage,
    private readonly config: Pick<Config, 'recording' | 'ffmpegPath' | 'recordingRetentionDays'>,
    private readonly logger: Logger,
  ) {}

  /** Recordings, newest first, optionally of one event. */
  async list(eventId?: string): Promise<RecordingView[]> {
    let q = this.db.selectFrom('recordings').selectAll().orderBy('started_at', 'desc');
    if (eventId !== undefined) q = q.where('event_id', '=', eventId);
    return (await q.limit(1000).execute()).map(view);
  }

  async byId(id: string): Promise<RecordingView | undefined> {
    const r = await this.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    return r && view(r);
  }

  /** Deletes a recording's objects, its clips and its row; false if there was none. */
  async remove(id: string): Promise<boolean> {
    const r = await this.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return false;
    // The pointer first, so that the replay stops naming it, then the objects, then the row.
    const latest = await readAll(this.storage, latestKey(r.event_id));
    if (latest && (JSON.parse(latest.toString('utf8')) as { zeroMs?: number }).zeroMs === zeroOf(r))
      await this.storage.delete(latestKey(r.event_id));
    // Its clips name its objects (control/clips.ts): they go with it.
    const clips = await this.db.selectFrom('clips').select('id').where('recording_id', '=', id).execute();
    for (const c of clips) {
      await this.storage.delete(clipKey(c.id));
      await this.db.deleteFrom('clips').where('id', '=', c.id).execute();
    }
    await this.storage.deletePrefix(r.storage_prefix);
    await this.db.deleteFrom('recordings').where('id', '=', id).execute();
    return true;
  }

  /**
   * Marks every `recording` row failed (start-up of a single node: nothing is being recorded, so these were cut
   * short by a crash); what was stored before the crash still replays. Resolves to how many.
   */
  async markInterrupted(): Promise<number> {
    const r = await this.db
      .updateTable('recordings')
      .set({
        status: 'failed',
        failure: 'interrupted: the server stopped while recording (what was stored before replays)',
        ended_at: Date.now(),
      })
      .where('status', '=', 'recording')
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** Deletes recordings (not being recorded) that ended before `before` (ms); resolves to how many. */
  async sweep(before: number): Promise<number> {
    const old = await this.db
      .selectFrom('recordings')
      .select('id')
      .where('status', '!=', 'recording')
      .where('ended_at', '<', before)
      .limit(1000)
      .execute();
    let n = 0;
    for (const r of old) if (await this.remove(r.id)) n++;
    return n;
  }

  /** Bytes and count of stored recordings by status (what the store knows; `recording` ones count 0 bytes until ready). */
  async usage(): Promise<{ status: RecordingStatus; count: number; bytes: number }[]> {
    const rows = await this.db
      .selectFrom('recordings')
      .select((eb) => ['status', eb.fn.countAll<number>().as('count'), eb.fn.sum<number>('bytes').as('bytes')])
      .groupBy('status')
      .execute();
    return rows.map((r) => ({ status: r.status, count: Number(r.count), bytes: Number(r.bytes ?? 0) }));
  }

  /** The hooks an origin's recorder reports to. */
  hooks(): RecordingHooks {
    const log = this.logger.child({ component: 'recordings' });
    const update = (id: string, set: Partial<RecordingsTable>, what: string) => {
      this.db
        .updateTable('recordings')
        .set(set)
        .where('id', '=', id)
        .execute()
        .catch((err: Error) => log.error({ recording: id, err: err.message }, `could not record that the recording ${what}`));
    };
    return {
      begin: async (r: RecordingInfo) => {
        const e = await this.db.selectFrom('events').select(['id', 'recording']).where('id', '=', r.eventId).executeTakeFirst();
        if (!e) return false;
        const on = e.recording === null || e.recording === undefined ? this.config.recording === 'on' : Number(e.recording) === 1;
        if (!on) return false;
        // Replicas of one event record the same broadcast under the same id (and the same keys): the first one inserts.
        await this.db
          .insertInto('recordings')
          .values({
            id: r.id,
            event_id: r.eventId,
            status: 'recording',
            storage_prefix: r.storagePrefix,
            started_at: r.startedAtMs,
            ended_at: null,
            duration_ms: 0,
            bytes: 0,
            failure: null,
          })
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
        return true;
      },
      failed: (r, reason) => update(r.id, { status: 'failed', failure: reason.slice(0, 1000), ended_at: Date.now() }, 'failed'),
      ready: (r, s) => {
        void (async () => {
          // A recording another replica marked failed stays failed.
          await this.db
            .updateTable('recordings')
            .set({ status: 'ready', ended_at: s.endedAtMs, duration_ms: Math.round(s.durationSec * 1000), bytes: s.bytes })
            .where('id', '=', r.id)
            .where('status', '=', 'recording')
            .execute();
          const row = await this.byId(r.id);
          if (row?.status === 'ready') await queueWebhookDeliveries(this.db, 'recording.ready', { recording: row });
        })().catch((err: Error) => log.error({ recording: r.id, err: err.message }, 'could not record that the recording is ready'));
      },
    };
  }

  /**
   * Remuxes a recording's top rendition into one MP4 file (ffmpeg `-c copy`, faststart) in a temporary directory;
   * the caller streams it and calls `cleanup`. Undefined when the recording or its manifest is gone.
   */
  /** A recording's stored poster; undefined when there is no such recording or it has none (yet). */
  async poster(id: string): Promise<ObjectReader | undefined> {
    const r = await this.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.storage.get(posterKey(r.event_id, zeroOf(r))) : undefined;
  }

  async mp4(id: string): Promise<{ path: string; cleanup: () => Promise<void> } | undefined> {
    const r = await this.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    const m = await loadManifest(this.storage, r.event_id, zeroOf(r));
    if (!m) return undefined;
    const top = [...m.renditions].sort((a, b) => b.variant.bandwidth - a.variant.bandwidth)[0];
    if (!top) return undefined;
    const dir = await mkdtemp(join(tmpdir(), 'onair-mp4-'));
    const cleanup = () => rm(dir, { recursive: true, force: true });
    try {
      const spans = await this.writeSpans(m, top.name, dir);
      if (spans.length === 0) {
        await cleanup();
        return undefined;
      }
      // The concat demuxer lays the spans (one per publish session or gap) end to end; each is init + its segments.
      const list = spans.map((f) => `file '${f}'`).join('\n') + '\n';
      await writeFile(join(dir, 'list.txt'), list);
      const out = join(dir, 'recording.mp4');
      await new Promise<void>((resolve, reject) => {
        execFile(
          this.config.ffmpegPath,
          [
            '-hide_banner',
            '-loglevel',
            'error',
            '-f',
            'concat',
            '-safe',
            '0',
            '-i',
            join(dir, 'list.txt'),
            '-c',
            'copy',
            '-movflags',
            '+faststart',
            '-y',
            out,
          ],
          { timeout: 10 * 60_000, maxBuffer: 1024 * 1024 },
          (err, _stdout, stderr) =>
            err ? reject(new Error(`ffmpeg remux failed: ${String(stderr).trim().slice(0, 500) || err.message}`)) : resolve(),
        );
      });
      return { path: out, cleanup };
    } catch (err) {
      await cleanup();
      throw err;
    }
  }

  /** Writes span files (init + consecutive segments of one run and session) of `rendition`; returns their paths. */
  private async writeSpans(m: RecordingManifest, rendition: string, dir: string): Promise<string[]> {
    const segments = commonSegments(m, rendition).sort((a, b) => a.msn - b.msn);
    const spans: (typeof segments)[] = [];
    for (const s of segments) {
      const cur = spans.at(-1);
      const prev = cur?.at(-1);
      if (cur && prev && prev.msn + 1 === s.msn && prev.run === s.run && prev.discontinuitySequence === s.discontinuitySequence)
        cur.push(s);
      else spans.push([s]);
    }
    const paths: string[] = [];
    for (const [i, span] of spans.entries()) {
      const path = join(dir, `span-${i}.mp4`);
      const f = await open(path, 'w');
      try {
        // One object in memory at a time.
        const init = await readAll(this.storage, objectKey(m.eventId, m.zeroMs, rendition, `init-${span[0]!.run}.mp4`));
        if (!init) throw new Error(`init segment of run ${span[0]!.run} is missing from storage`);
        await f.write(init);
        for (const s of span) {
          const b = await readAll(this.storage, objectKey(m.eventId, m.zeroMs, rendition, `seg-${s.msn}.m4s`));
          if (!b) throw new Error(`segment ${s.msn} is missing from storage`);
          await f.write(b);
        }
      } finally {
        await f.close();
      }
      paths.push(path);
    }
    return paths;
  }
}
