// Events and their stream keys: creation, lookup, status changes and key authorization.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../lib/store/db.ts';
import type { EventStatus, EventsTable } from '../lib/store/schema.ts';

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
}

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
  };
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
  constructor(private readonly db: Db) {}

  /** Creates an event and its first stream key; the key is returned only here. */
  async create(input: { title: string; description?: string }): Promise<{ event: EventRecord; streamKey: string }> {
    const title = input.title.trim();
    if (!title || title.length > 200) throw new RangeError('title must be 1–200 characters');
    const description = (input.description ?? '').trim();
    if (description.length > 5000) throw new RangeError('description must be at most 5000 characters');
    const now = Date.now();
    const id = randomBytes(8).toString('base64url');
    let slug = slugify(title);
    if (await this.db.selectFrom('events').select('id').where('slug', '=', slug).executeTakeFirst()) {
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
    };
    const streamKey = newStreamKey();
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('events').values(row).execute();
      await tx
        .insertInto('stream_keys')
        .values({ event_id: id, key_hash: hashStreamKey(streamKey), created_at: now, revoked_at: null })
        .execute();
    });
    return { event: toRecord(row), streamKey };
  }

  /** All events, newest first, optionally only those with one of `statuses`. */
  async list(statuses?: EventStatus[]): Promise<EventRecord[]> {
    let q = this.db.selectFrom('events').selectAll().orderBy('created_at', 'desc');
    if (statuses?.length) q = q.where('status', 'in', statuses);
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

  /** Records a status change (`live` also stamps `live_since`). */
  async setStatus(id: string, status: EventStatus): Promise<void> {
    const now = Date.now();
    await this.db
      .updateTable('events')
      .set({ status, updated_at: now, ...(status === 'live' ? { live_since: now } : {}) })
      .where('id', '=', id)
      .execute();
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
