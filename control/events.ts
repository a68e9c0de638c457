// Events and their stream keys: creation, lookup, status changes and key authorization.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../lib/store/db.ts';
import type { EventStatus, EventsTable, EventVisibility, LadderPreset, LatencyMode } from '../lib/store/schema.ts';

/** The ladder presets an event may have. */
export const LADDER_PRESETS: readonly LadderPreset[] = ['standard', 'passthrough', 'audio', 'custom'];
import type { KeySealer } from '../lib/key-seal.ts';
import { rangeIssue, timingIssue, type StreamTiming, type TimingNames } from '../config/timing.ts';

/** An event as the API and the player see it. */
export interface EventRecord {
  id: string;
  slug: string;
  title: string;
  description: string;
  status: EventStatus;
  createdAt: number;
  updatedAt: number;
  liveSince: number | null;
  /** `low` (LL-HLS) or `standard` (plain HLS); the origin reads it when the stream starts. */
  latencyMode: LatencyMode;
  /** `standard`, `passthrough`, `audio` or `custom`; null follows the server's default (the origin reads it when the stream starts). */
  ladderPreset: LadderPreset | null;
  /** Planned start (ms since epoch), if announced. */
  scheduledStart: number | null;
  /** `public` (listed) or `unlisted` (reachable by URL only). */
  visibility: EventVisibility;
  /** When an operator ended it. */
  endedAt: number | null;
  /** Record its broadcasts (true), do not (false), or follow the server's default ONAIR_RECORDING (null). */
  recording: boolean | null;
  /** DVR window in seconds while live (0: off), or null: the server's default ONAIR_DVR_WINDOW_SEC. */
  dvrWindowSec: number | null;
  /** LL-HLS part target in seconds, or null: the node's ONAIR_PART_TARGET_SEC (the origin reads it when the stream starts). */
  partTargetSec: number | null;
  /** Keyframe interval of the encoded ladder in seconds, or null: the node's ONAIR_GOP_SEC (read when the stream starts). */
  gopSec: number | null;
  /** Why the origin could not use the latest publisher's source; null once a publisher went live after it. */
  sourceRefusal: { reason: string; at: number } | null;
}

/** Thrown when a requested slug belongs to another event. */
export class SlugTakenError extends Error {
  override name = 'SlugTakenError';
}

/** Thrown by revealKey() when the sealed key cannot be opened (sealed under another server secret). */
export class SealedKeyError extends Error {
  override name = 'SealedKeyError';
}

/** Slugs are lower-case words joined by dashes. */
export const slugPattern = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;

/** Event ids are URL-safe and appear in playback URLs; stream keys never do. */
export const eventIdPattern = /^[A-Za-z0-9_-]{6,64}$/;

function toRecord(row: EventsTable): EventRecord {
  return {
    id: row.id,
    slug: row.slug,
    title: row.title,
    description: row.description,
    status: row.status,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    liveSince: row.live_since === null ? null : Number(row.live_since),
    latencyMode: row.latency_mode === 'standard' ? 'standard' : 'low',
    scheduledStart: row.scheduled_start === null || row.scheduled_start === undefined ? null : Number(row.scheduled_start),
    visibility: row.visibility === 'unlisted' ? 'unlisted' : 'public',
    endedAt: row.ended_at === null || row.ended_at === undefined ? null : Number(row.ended_at),
    recording: row.recording === null || row.recording === undefined ? null : Number(row.recording) === 1,
    dvrWindowSec: row.dvr_window_sec === null || row.dvr_window_sec === undefined ? null : Number(row.dvr_window_sec),
    partTargetSec: row.part_target_sec === null || row.part_target_sec === undefined ? null : Number(row.part_target_sec),
    gopSec: row.gop_sec === null || row.gop_sec === undefined ? null : Number(row.gop_sec),
    sourceRefusal: sourceRefusal(row),
    ladderPreset: row.ladder_preset && LADDER_PRESETS.includes(row.ladder_preset) ? row.ladder_preset : null,
  };
}

/** The refusal, unless the event went live after it (the refused session itself went live just before it). */
/** A DVR window (seconds, 0: off) as stored; null follows the server's default. */
function checkDvrWindow(sec: number | null): number | null {
  if (sec === null) return null;
  if (!Number.isInteger(sec) || sec < 0 || sec > 86_400) throw new RangeError('dvrWindowSec must be an integer from 0 to 86400');
  return sec;
}

/** The settings' defaults (config/schema.ts), for an EventService built without the node's timing. */
const DEFAULT_TIMING: StreamTiming = { segmentTargetSec: 2, partTargetSec: 0.2, gopSec: 1 };
const EVENT_TIMING_NAMES: TimingNames = { segment: 'the segment target ONAIR_SEGMENT_TARGET_SEC', part: 'the part target' };

/**
 * Checks an event's part target and GOP (null: the node's setting) against the node's timing, with the rules of the
 * node's settings (config/timing.ts): RangeError `partTargetSec: 0.3 s must split …` when they do not fit.
 */
export function checkEventTiming(node: StreamTiming, t: { partTargetSec: number | null; gopSec: number | null }): void {
  const issue =
    (t.partTargetSec !== null ? rangeIssue('partTargetSec', t.partTargetSec) : undefined) ??
    (t.gopSec !== null ? rangeIssue('gopSec', t.gopSec) : undefined) ??
    timingIssue(
      { segmentTargetSec: node.segmentTargetSec, partTargetSec: t.partTargetSec ?? node.partTargetSec, gopSec: t.gopSec ?? node.gopSec },
      { ...EVENT_TIMING_NAMES, part: t.partTargetSec === null ? 'ONAIR_PART_TARGET_SEC' : EVENT_TIMING_NAMES.part },
    );
  if (!issue) return;
  // The value at fault may be the node's, which the event's other override does not fit.
  if (t[issue.key] !== null) throw new RangeError(`${issue.key}: ${issue.message}`);
  const setting = issue.key === 'gopSec' ? 'ONAIR_GOP_SEC' : 'ONAIR_PART_TARGET_SEC';
  throw new RangeError(`${issue.key}: the node's ${setting} ${issue.message}; set the event's ${issue.key} too`);
}

/** An event's timing overrides for the origin (null each: the node's setting; so too for an unknown event). */
export function eventTiming(e: EventRecord | undefined): { partTargetSec: number | null; gopSec: number | null } {
  return { partTargetSec: e?.partTargetSec ?? null, gopSec: e?.gopSec ?? null };
}

function sourceRefusal(row: EventsTable): EventRecord['sourceRefusal'] {
  if (!row.source_refusal || row.source_refused_at === null || row.source_refused_at === undefined) return null;
  const at = Number(row.source_refused_at);
  return row.live_since !== null && Number(row.live_since) > at ? null : { reason: row.source_refusal, at };
}

/** SHA-256 hex of a stream key: what the store keeps. */
export function hashStreamKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A new random stream key (144 bits of entropy). */
export function newStreamKey(): string {
  return 'sk_' + randomBytes(18).toString('base64url');
}

/** `"My Show: Part 2!"` → `my-show-part-2`. */
export function slugify(title: string): string {
  const s = title
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
  return s || 'event';
}

/** Events repository over the store. */
export class EventService {
  constructor(
    private readonly db: Db,
    /**
     * `latencyMode` of events created without one (config `defaultLatencyMode`); `sealer` seals keys kept for their
     * one reveal (needed for `keepForReveal`); `timing`: the node's settings that `partTargetSec`/`gopSec` must fit.
     */
    private readonly defaults: {
      latencyMode?: LatencyMode;
      ladderPreset?: LadderPreset;
      sealer?: KeySealer;
      /** The node's segment target, part target and GOP (config), which events' overrides must fit; absent: the defaults. */
      timing?: StreamTiming;
    } = {},
  ) {}

  /** The sealed form of a key kept for its reveal; the plain key is never stored. */
  private sealForReveal(streamKey: string, keyHash: string): string {
    if (!this.defaults.sealer) throw new Error('keeping a stream key for its reveal needs a key sealer (server secret)');
    return this.defaults.sealer.seal(streamKey, keyHash);
  }

  /** Creates an event and its first stream key; the key is returned only here. */
  async create(input: {
    title: string;
    description?: string;
    latencyMode?: LatencyMode;
    /** Omitted: the server's default (`ladderPreset` of the constructor's defaults), stored with the event. */
    ladderPreset?: LadderPreset;
    slug?: string;
    scheduledStart?: number | null;
    visibility?: EventVisibility;
    /** Record its broadcasts; omitted: the server's default. */
    recording?: boolean | null;
    /** DVR window in seconds (0: off); omitted or null: the server's default. */
    dvrWindowSec?: number | null;
    /** LL-HLS part target in seconds; omitted or null: the node's ONAIR_PART_TARGET_SEC. */
    partTargetSec?: number | null;
    /** Keyframe interval in seconds; omitted or null: the node's ONAIR_GOP_SEC. */
    gopSec?: number | null;
    /** Keep the key until revealed once (the API's reveal-once flow). */
    keepForReveal?: boolean;
  }): Promise<{ event: EventRecord; streamKey: string }> {
    const title = input.title.trim();
    if (!title || title.length > 200) throw new RangeError('title must be 1–200 characters');
    const description = (input.description ?? '').trim();
    if (description.length > 5000) throw new RangeError('description must be at most 5000 characters');
    const latencyMode = input.latencyMode ?? this.defaults.latencyMode ?? 'low';
    if (latencyMode !== 'low' && latencyMode !== 'standard') throw new RangeError('latency mode must be low or standard');
    const ladderPreset = input.ladderPreset ?? this.defaults.ladderPreset ?? null;
    if (ladderPreset !== null && !LADDER_PRESETS.includes(ladderPreset))
      throw new RangeError(`ladder preset must be one of ${LADDER_PRESETS.join(', ')}`);
    const timing = { partTargetSec: input.partTargetSec ?? null, gopSec: input.gopSec ?? null };
    checkEventTiming(this.defaults.timing ?? DEFAULT_TIMING, timing);
    const now = Date.now();
    const id = randomBytes(8).toString('base64url');
    let slug = input.slug ?? slugify(title);
    if (input.slug !== undefined && !slugPattern.test(slug))
      throw new RangeError('slug must be lower-case letters, digits and dashes (1–64)');
    if (await this.db.selectFrom('events').select('id').where('slug', '=', slug).executeTakeFirst()) {
      if (input.slug !== undefined) throw new SlugTakenError(`slug "${slug}" is taken`);
      slug = `${slug}-${randomBytes(3).toString('hex')}`;
    }
    const row: EventsTable = {
      id,
      slug,
      title,
      description,
      status: 'idle',
      created_at: now,
      updated_at: now,
      live_since: null,
      latency_mode: latencyMode,
      scheduled_start: input.scheduledStart ?? null,
      visibility: input.visibility ?? 'public',
      ended_at: null,
      recording: input.recording === undefined || input.recording === null ? null : input.recording ? 1 : 0,
      dvr_window_sec: checkDvrWindow(input.dvrWindowSec ?? null),
      source_refusal: null,
      source_refused_at: null,
      ladder_preset: ladderPreset,
      part_target_sec: timing.partTargetSec,
      gop_sec: timing.gopSec,
    };
    const streamKey = newStreamKey();
    const keyHash = hashStreamKey(streamKey);
    const sealed = input.keepForReveal ? this.sealForReveal(streamKey, keyHash) : null;
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('events').values(row).execute();
      await tx
        .insertInto('stream_keys')
        .values({ event_id: id, key_hash: keyHash, created_at: now, revoked_at: null, reveal_sealed: sealed })
        .execute();
    });
    return { event: toRecord(row), streamKey };
  }

  /** All events, newest first, optionally only those with one of `statuses`. */
  async list(statuses?: EventStatus[], opts: { visibility?: EventVisibility } = {}): Promise<EventRecord[]> {
    let q = this.db.selectFrom('events').selectAll().orderBy('created_at', 'desc');
    if (statuses?.length) q = q.where('status', 'in', statuses);
    if (opts.visibility) q = q.where('visibility', '=', opts.visibility);
    return (await q.execute()).map(toRecord);
  }

  async byId(id: string): Promise<EventRecord | undefined> {
    const row = await this.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async bySlug(slug: string): Promise<EventRecord | undefined> {
    const row = await this.db.selectFrom('events').selectAll().where('slug', '=', slug).executeTakeFirst();
    return row && toRecord(row);
  }

  /** Records a status change (`live` also stamps `live_since`); an ended event stays ended. True if the status changed. */
  async setStatus(id: string, status: EventStatus): Promise<boolean> {
    const now = Date.now();
    const before = await this.db.selectFrom('events').select('status').where('id', '=', id).executeTakeFirst();
    if (!before || before.status === 'ended') return false;
    await this.db
      .updateTable('events')
      .set({ status, updated_at: now, ...(status === 'live' ? { live_since: now } : {}) })
      .where('id', '=', id)
      .where('status', '!=', 'ended')
      .execute();
    return before.status !== status;
  }

  /** Records why a publisher's source was refused (shown until a publisher goes live again). */
  async refuseSource(id: string, reason: string): Promise<void> {
    await this.db
      .updateTable('events')
      .set({ source_refusal: reason.slice(0, 500), source_refused_at: Date.now() })
      .where('id', '=', id)
      .execute();
  }

  /** Changes an event's editable fields; undefined for an unknown event. */
  async update(
    id: string,
    patch: {
      title?: string;
      description?: string;
      slug?: string;
      scheduledStart?: number | null;
      visibility?: EventVisibility;
      recording?: boolean | null;
      dvrWindowSec?: number | null;
      /** Takes effect at the event's next go-live (a live stream keeps its renditions). */
      ladderPreset?: LadderPreset;
      /** Takes effect at the event's next go-live, like the ladder preset; null: the node's setting. */
      partTargetSec?: number | null;
      gopSec?: number | null;
    },
  ): Promise<EventRecord | undefined> {
    const set: Partial<EventsTable> = { updated_at: Date.now() };
    if (patch.title !== undefined) {
      const title = patch.title.trim();
      if (!title || title.length > 200) throw new RangeError('title must be 1–200 characters');
      set.title = title;
    }
    if (patch.description !== undefined) set.description = patch.description.trim();
    if (patch.scheduledStart !== undefined) set.scheduled_start = patch.scheduledStart;
    if (patch.visibility !== undefined) set.visibility = patch.visibility;
    if (patch.recording !== undefined) set.recording = patch.recording === null ? null : patch.recording ? 1 : 0;
    if (patch.dvrWindowSec !== undefined) set.dvr_window_sec = checkDvrWindow(patch.dvrWindowSec);
    if (patch.ladderPreset !== undefined) {
      if (!LADDER_PRESETS.includes(patch.ladderPreset)) throw new RangeError(`ladder preset must be one of ${LADDER_PRESETS.join(', ')}`);
      set.ladder_preset = patch.ladderPreset;
    }
    if (patch.partTargetSec !== undefined || patch.gopSec !== undefined) {
      // Checked together with the value the patch leaves alone: a 2 s GOP fits 0.5 s parts, not 0.3 s ones.
      const before = await this.byId(id);
      if (!before) return undefined;
      const timing = {
        partTargetSec: patch.partTargetSec === undefined ? before.partTargetSec : patch.partTargetSec,
        gopSec: patch.gopSec === undefined ? before.gopSec : patch.gopSec,
      };
      checkEventTiming(this.defaults.timing ?? DEFAULT_TIMING, timing);
      set.part_target_sec = timing.partTargetSec;
      set.gop_sec = timing.gopSec;
    }
    if (patch.slug !== undefined) {
      if (!slugPattern.test(patch.slug)) throw new RangeError('slug must be lower-case letters, digits and dashes (1–64)');
      const other = await this.db.selectFrom('events').select('id').where('slug', '=', patch.slug).executeTakeFirst();
      if (other && other.id !== id) throw new SlugTakenError(`slug "${patch.slug}" is taken`);
      set.slug = patch.slug;
    }
    await this.db.updateTable('events').set(set).where('id', '=', id).execute();
    return this.byId(id);
  }

  /** Deletes an event with its keys; false if there was none. */
  async remove(id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('events').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Revokes every key of the event and issues a new one (kept for one reveal if asked). */
  async rotateKey(id: string, opts: { keepForReveal?: boolean } = {}): Promise<string> {
    const now = Date.now();
    const streamKey = newStreamKey();
    const keyHash = hashStreamKey(streamKey);
    const sealed = opts.keepForReveal ? this.sealForReveal(streamKey, keyHash) : null;
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('stream_keys')
        .set({ revoked_at: now, reveal_sealed: null })
        .where('event_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      await tx
        .insertInto('stream_keys')
        .values({ event_id: id, key_hash: keyHash, created_at: now, revoked_at: null, reveal_sealed: sealed })
        .execute();
    });
    return streamKey;
  }

  /**
   * The current key if it was never revealed (and forgets its sealed copy: only the hash stays); undefined once
   * revealed. Throws SealedKeyError, keeping the sealed copy, when this server's secret cannot open it.
   */
  async revealKey(id: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('stream_keys')
      .select(['id', 'key_hash', 'reveal_sealed'])
      .where('event_id', '=', id)
      .where('revoked_at', 'is', null)
      .where('reveal_sealed', 'is not', null)
      .executeTakeFirst();
    if (!row?.reveal_sealed) return undefined;
    const key = this.defaults.sealer?.open(row.reveal_sealed, row.key_hash);
    if (key === undefined)
      throw new SealedKeyError(
        'the stream key was sealed with another server secret (ONAIR_VIEWER_TOKEN_SECRET must be the same on every node); rotate it to get a new one',
      );
    // Only the request that clears the sealed copy reveals the key, however many ask at once.
    const cleared = await this.db
      .updateTable('stream_keys')
      .set({ reveal_sealed: null })
      .where('id', '=', row.id)
      .where('reveal_sealed', 'is not', null)
      .executeTakeFirst();
    return Number(cleared.numUpdatedRows) === 1 ? key : undefined;
  }

  /** Ends the event for good: status `ended`, every key revoked. False if it was already ended or unknown. */
  async end(id: string): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('events')
        .set({ status: 'ended', ended_at: now, updated_at: now })
        .where('id', '=', id)
        .where('status', '!=', 'ended')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await tx
        .updateTable('stream_keys')
        .set({ revoked_at: now, reveal_sealed: null })
        .where('event_id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      return true;
    });
  }

  /** The id of the event a stream key publishes to, or undefined for an unknown, revoked or ended one. */
  async authorize(streamKey: string): Promise<string | undefined> {
    if (!/^sk_[A-Za-z0-9_-]{24}$/.test(streamKey)) return undefined;
    const hash = hashStreamKey(streamKey);
    const row = await this.db
      .selectFrom('stream_keys')
      .innerJoin('events', 'events.id', 'stream_keys.event_id')
      .select(['stream_keys.event_id as eventId', 'stream_keys.key_hash as keyHash', 'events.status as status'])
      .where('stream_keys.key_hash', '=', hash)
      .where('stream_keys.revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row || row.status === 'ended') return undefined;
    // The lookup is by hash already; compare once more in constant time for defence in depth.
    return timingSafeEqual(Buffer.from(row.keyHash), Buffer.from(hash)) ? row.eventId : undefined;
  }
}
