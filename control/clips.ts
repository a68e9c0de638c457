// Clips: a range of a live or recorded event's recording made its own short VOD, played at /clips/<clipId>/ through
// the edges and watched at /clip/<clipId>. Made from the stored segments without re-encoding: the clip's manifest
// (origin/recording/clip.ts) lists the whole segments covering the range, so it starts and ends at segment
// (keyframe) boundaries. It references the recording's objects and holds none of its own: deleting the recording
// (by hand or by retention) deletes its clips too.
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Db } from '../lib/store/db.ts';
import type { ClipsTable } from '../lib/store/schema.ts';
import type { Storage } from '../lib/storage/storage.ts';
import { clipKey, cutClip, timelineSec, type ClipRangeError } from '../origin/recording/clip.ts';
import { loadManifest } from '../origin/recording/replay.ts';

/** A clip as the API shows it. */
export interface ClipView {
  id: string;
  eventId: string;
  recordingId: string;
  title: string;
  /** Where the clip starts and ends in its recording (s): the segment boundaries covering the range asked for. */
  startSec: number;
  endSec: number;
  durationSec: number;
  segments: number;
  createdAt: number;
  hlsUrl: string;
  watchUrl: string;
}

/** A clip request refused: HTTP status, code and message for the API. */
export class ClipError extends Error {
  override name = 'ClipError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The range of a new clip: seconds into the broadcast, or the last `lastSec` seconds recorded. */
export type ClipRange = { startSec: number; endSec: number } | { lastSec: number };

function view(r: ClipsTable): ClipView {
  return {
    id: r.id,
    eventId: r.event_id,
    recordingId: r.recording_id,
    title: r.title,
    startSec: Number(r.start_ms) / 1000,
    endSec: Number(r.end_ms) / 1000,
    durationSec: Number(r.duration_ms) / 1000,
    segments: Number(r.segments),
    createdAt: Number(r.created_at),
    hlsUrl: `/clips/${r.id}/master.m3u8`,
    watchUrl: `/clip/${r.id}`,
  };
}

const RANGE_STATUS: Record<ClipRangeError['code'], number> = {
  invalid_range: 400,
  range_outside_recording: 422,
  recording_empty: 409,
};

/** Clips in the store, their manifests in the recording storage. */
export class ClipService {
  constructor(
    private readonly db: Db,
    private readonly storage: Storage,
    private readonly config: Pick<Config, 'recording'>,
  ) {}

  /** Clips, newest first (at most 1000), optionally of one event. */
  async list(eventId?: string): Promise<ClipView[]> {
    let q = this.db.selectFrom('clips').selectAll().orderBy('created_at', 'desc');
    if (eventId !== undefined) q = q.where('event_id', '=', eventId);
    return (await q.limit(1000).execute()).map(view);
  }

  async byId(id: string): Promise<ClipView | undefined> {
    const r = await this.db.selectFrom('clips').selectAll().where('id', '=', id).executeTakeFirst();
    return r && view(r);
  }

  /**
   * Makes a clip of event `eventId`'s newest recording (or `recordingId`, one of its recordings), live or ended.
   * Throws ClipError: 404 `not_found` (no such event or recording), 409 `recording_off` (the event is not
   * recorded and has no recording), 409 `no_recording` (never broadcast), 409 `recording_empty`, 400
   * `invalid_range`, 422 `range_outside_recording` (the message says how much is recorded).
   */
  async create(eventId: string, range: ClipRange, opts: { recordingId?: string; title?: string } = {}): Promise<ClipView> {
    const event = await this.db.selectFrom('events').select(['id', 'title', 'recording']).where('id', '=', eventId).executeTakeFirst();
    if (!event) throw new ClipError(404, 'not_found', 'no such event');
    let q = this.db.selectFrom('recordings').selectAll().where('event_id', '=', eventId);
    q = opts.recordingId !== undefined ? q.where('id', '=', opts.recordingId) : q.orderBy('started_at', 'desc').limit(1);
    const rec = await q.executeTakeFirst();
    if (!rec) {
      if (opts.recordingId !== undefined) throw new ClipError(404, 'not_found', 'the event has no such recording');
      const on = event.recording === null || event.recording === undefined ? this.config.recording === 'on' : Number(event.recording) === 1;
      if (!on) throw new ClipError(409, 'recording_off', 'recording is off for this event, and it has no recording to clip');
      throw new ClipError(409, 'no_recording', 'the event has not been broadcast yet: there is nothing recorded to clip');
    }
    const zeroMs = Number(rec.storage_prefix.split('/')[1]);
    const m = await loadManifest(this.storage, eventId, zeroMs);
    if (!m) throw new ClipError(409, 'recording_empty', 'the recording holds no segments yet');
    let startSec: number;
    let endSec: number;
    if ('lastSec' in range) {
      endSec = timelineSec(m);
      startSec = Math.max(0, endSec - range.lastSec);
    } else ({ startSec, endSec } = range);
    const cut = cutClip(m, startSec, endSec);
    if ('code' in cut) throw new ClipError(RANGE_STATUS[cut.code], cut.code, cut.message);
    const id = randomBytes(8).toString('base64url');
    const title = opts.title ?? `${event.title} — clip`;
    // The manifest first: a row never names a clip that cannot play.
    await this.storage.put(clipKey(id), Buffer.from(JSON.stringify(cut.manifest)));
    const row: ClipsTable = {
      id,
      event_id: eventId,
      recording_id: rec.id,
      title,
      start_ms: Math.round(cut.fromSec * 1000),
      end_ms: Math.round(cut.toSec * 1000),
      duration_ms: Math.round(cut.durationSec * 1000),
      segments: cut.segments,
      created_at: Date.now(),
    };
    try {
      await this.db.insertInto('clips').values(row).execute();
    } catch (err) {
      await this.storage.delete(clipKey(id)).catch(() => {});
      throw err;
    }
    return view(row);
  }

  /** Deletes a clip (its manifest, then its row); false when there was none. The recording is untouched. */
  async remove(id: string): Promise<boolean> {
    const r = await this.db.selectFrom('clips').select('id').where('id', '=', id).executeTakeFirst();
    if (!r) return false;
    await this.storage.delete(clipKey(id));
    await this.db.deleteFrom('clips').where('id', '=', id).execute();
    return true;
  }
}
