// Chat persistence: comments with a per-event monotonic seq, likes (one per viewer per event), bans and chat settings.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../lib/store/db.ts';
import type { CommentsTable } from '../lib/store/schema.ts';
import type { ChatSettings, CommentWire } from './channel.ts';
import type { ViewerIdentity } from './viewer-tokens.ts';

/** Like (1), dislike (-1) or neither (0). */
export type LikeValue = 1 | -1 | 0;

/** Like and dislike totals of an event. */
export interface LikeTotals {
  likes: number;
  dislikes: number;
}

/** Chat settings of an event that has none stored. */
export const defaultChatSettings: ChatSettings = { chatEnabled: true, slowModeSec: 0 };

function toWire(row: CommentsTable): CommentWire {
  return {
    id: row.id,
    seq: Number(row.seq),
    viewerId: row.viewer_id,
    name: row.display_name,
    role: row.role as CommentWire['role'],
    text: row.text,
    at: Number(row.created_at),
  };
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    e.code === '23505' ||
    /UNIQUE constraint/.test(e.message ?? '')
  );
}

/** Comments, likes, bans and chat settings in the store. */
export class CommentStore {
  constructor(private readonly db: Db) {}

  /** Per event, the tail of this process's queue of appends (so this node's writers never race for a seq). */
  readonly #appending = new Map<string, Promise<unknown>>();

  /**
   * Stores a comment with the event's next seq (one statement: max+1) and returns it. Appends from this process
   * are queued per event; one that loses the race for a seq to another node is retried. Only after this resolves
   * is the comment acknowledged.
   */
  append(eventId: string, viewer: Pick<ViewerIdentity, 'id' | 'name' | 'role'>, text: string): Promise<CommentWire> {
    // The queue's tail never rejects: one failed append does not hold up the next.
    const run = (this.#appending.get(eventId) ?? Promise.resolve()).then(() => this.#insert(eventId, viewer, text));
    const tail = run.catch(() => undefined);
    this.#appending.set(eventId, tail);
    void tail.then(() => {
      if (this.#appending.get(eventId) === tail) this.#appending.delete(eventId);
    });
    return run;
  }

  async #insert(eventId: string, viewer: Pick<ViewerIdentity, 'id' | 'name' | 'role'>, text: string): Promise<CommentWire> {
    const id = 'c_' + randomBytes(9).toString('base64url');
    const now = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const result = await sql<{ seq: number }>`
          INSERT INTO comments (id, event_id, seq, viewer_id, display_name, role, text, created_at, hidden, deleted_at)
          SELECT CAST(${id} AS text), CAST(${eventId} AS text), COALESCE(MAX(seq), 0) + 1, CAST(${viewer.id} AS text),
            CAST(${viewer.name} AS text), CAST(${viewer.role} AS text), CAST(${text} AS text), CAST(${now} AS bigint), 0, NULL
          FROM comments WHERE event_id = ${eventId}
          RETURNING seq`.execute(this.db);
        const seq = Number(result.rows[0]?.seq);
        return { id, seq, viewerId: viewer.id, name: viewer.name, role: viewer.role, text, at: now };
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 8) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
      }
    }
  }

  /** Visible comments with `afterSeq < seq <= upToSeq`, oldest first, at most `limit`. */
  async since(eventId: string, afterSeq: number, upToSeq = Number.MAX_SAFE_INTEGER, limit = 500): Promise<CommentWire[]> {
    const rows = await this.db
      .selectFrom('comments')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upToSeq)
      .where('hidden', '=', 0)
      .where('deleted_at', 'is', null)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toWire);
  }

  /** The last `limit` visible comments with `seq <= upToSeq`, oldest first. */
  async recent(eventId: string, limit: number, upToSeq = Number.MAX_SAFE_INTEGER): Promise<CommentWire[]> {
    const rows = await this.db
      .selectFrom('comments')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('seq', '<=', upToSeq)
      .where('hidden', '=', 0)
      .where('deleted_at', 'is', null)
      .orderBy('seq', 'desc')
      .limit(limit)
      .execute();
    return rows.reverse().map(toWire);
  }

  /** Number of visible comments with `afterSeq < seq <= upToSeq`. */
  async countSince(eventId: string, afterSeq: number, upToSeq: number): Promise<number> {
    const row = await this.db
      .selectFrom('comments')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('event_id', '=', eventId)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upToSeq)
      .where('hidden', '=', 0)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Every comment with `seq > afterSeq` (hidden and deleted ones too, flagged), oldest first, at most `limit`: the moderators' feed. */
  async allSince(eventId: string, afterSeq: number, limit: number): Promise<(CommentWire & { hidden: boolean; deleted: boolean })[]> {
    const rows = await this.db
      .selectFrom('comments')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('seq', '>', afterSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ ...toWire(row), hidden: row.hidden === 1, deleted: row.deleted_at !== null }));
  }

  /** The event's bans, newest first. */
  async bans(eventId: string): Promise<{ viewerId: string; bannedBy: string; reason: string; at: number }[]> {
    const rows = await this.db.selectFrom('bans').selectAll().where('event_id', '=', eventId).orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({ viewerId: r.viewer_id, bannedBy: r.banned_by, reason: r.reason, at: Number(r.created_at) }));
  }

  /** The highest seq of the event (hidden comments included), 0 if none. */
  async maxSeq(eventId: string): Promise<number> {
    const row = await this.db
      .selectFrom('comments')
      .select((eb) => eb.fn.max('seq').as('m'))
      .where('event_id', '=', eventId)
      .executeTakeFirst();
    return Number(row?.m ?? 0);
  }

  /** One comment of the event (hidden or not), or undefined. */
  async byId(eventId: string, commentId: string): Promise<(CommentWire & { hidden: boolean; deleted: boolean }) | undefined> {
    const row = await this.db
      .selectFrom('comments')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('id', '=', commentId)
      .executeTakeFirst();
    return row && { ...toWire(row), hidden: row.hidden === 1, deleted: row.deleted_at !== null };
  }

  /** Hides (or shows again) a comment; true if it exists. */
  async setHidden(eventId: string, commentId: string, hidden: boolean): Promise<boolean> {
    const r = await this.db
      .updateTable('comments')
      .set({ hidden: hidden ? 1 : 0 })
      .where('event_id', '=', eventId)
      .where('id', '=', commentId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Deletes a comment for good: its text is erased, its seq stays taken. True if it existed. */
  async delete(eventId: string, commentId: string): Promise<boolean> {
    const r = await this.db
      .updateTable('comments')
      .set({ deleted_at: Date.now(), text: '' })
      .where('event_id', '=', eventId)
      .where('id', '=', commentId)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Sets a viewer's like/dislike (0 removes it) and returns the new totals. */
  async setLike(eventId: string, viewerId: string, value: LikeValue): Promise<LikeTotals> {
    if (value === 0) {
      await this.db.deleteFrom('likes').where('event_id', '=', eventId).where('viewer_id', '=', viewerId).execute();
    } else {
      const now = Date.now();
      await this.db
        .insertInto('likes')
        .values({ event_id: eventId, viewer_id: viewerId, value, updated_at: now })
        .onConflict((oc) => oc.columns(['event_id', 'viewer_id']).doUpdateSet({ value, updated_at: now }))
        .execute();
    }
    return this.likeTotals(eventId);
  }

  /** Like and dislike totals of the event. */
  async likeTotals(eventId: string): Promise<LikeTotals> {
    const rows = await this.db
      .selectFrom('likes')
      .select(['value', (eb) => eb.fn.countAll<number>().as('n')])
      .where('event_id', '=', eventId)
      .groupBy('value')
      .execute();
    let likes = 0;
    let dislikes = 0;
    for (const r of rows) {
      if (Number(r.value) === 1) likes = Number(r.n);
      else if (Number(r.value) === -1) dislikes = Number(r.n);
    }
    return { likes, dislikes };
  }

  /** The viewer's own like value for the event. */
  async likeOf(eventId: string, viewerId: string): Promise<LikeValue> {
    const row = await this.db
      .selectFrom('likes')
      .select('value')
      .where('event_id', '=', eventId)
      .where('viewer_id', '=', viewerId)
      .executeTakeFirst();
    return row ? (Number(row.value) as LikeValue) : 0;
  }

  /** Bans a viewer from the event's chat (idempotent). */
  async ban(eventId: string, viewerId: string, bannedBy: string, reason = ''): Promise<void> {
    await this.db
      .insertInto('bans')
      .values({ event_id: eventId, viewer_id: viewerId, banned_by: bannedBy, reason: reason.slice(0, 200), created_at: Date.now() })
      .onConflict((oc) => oc.columns(['event_id', 'viewer_id']).doNothing())
      .execute();
  }

  /** Lifts a ban; true if there was one. */
  async unban(eventId: string, viewerId: string): Promise<boolean> {
    const r = await this.db.deleteFrom('bans').where('event_id', '=', eventId).where('viewer_id', '=', viewerId).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** True if the viewer is banned from the event's chat. */
  async isBanned(eventId: string, viewerId: string): Promise<boolean> {
    const row = await this.db
      .selectFrom('bans')
      .select('viewer_id')
      .where('event_id', '=', eventId)
      .where('viewer_id', '=', viewerId)
      .executeTakeFirst();
    return row !== undefined;
  }

  /** The event's chat settings (defaults when none were set). */
  async settings(eventId: string): Promise<ChatSettings> {
    const row = await this.db.selectFrom('chat_settings').selectAll().where('event_id', '=', eventId).executeTakeFirst();
    return row ? { chatEnabled: row.chat_enabled === 1, slowModeSec: Number(row.slow_mode_sec) } : { ...defaultChatSettings };
  }

  /** Changes some of the event's chat settings (only the given columns, so concurrent changes do not undo each other) and returns them all. */
  async updateSettings(eventId: string, patch: Partial<ChatSettings>): Promise<ChatSettings> {
    const set: { chat_enabled?: number; slow_mode_sec?: number; updated_at: number } = { updated_at: Date.now() };
    if (patch.chatEnabled !== undefined) set.chat_enabled = patch.chatEnabled ? 1 : 0;
    if (patch.slowModeSec !== undefined) set.slow_mode_sec = Math.max(0, Math.floor(patch.slowModeSec));
    await this.db
      .insertInto('chat_settings')
      .values({
        event_id: eventId,
        chat_enabled: set.chat_enabled ?? (defaultChatSettings.chatEnabled ? 1 : 0),
        slow_mode_sec: set.slow_mode_sec ?? defaultChatSettings.slowModeSec,
        updated_at: set.updated_at,
      })
      .onConflict((oc) => oc.column('event_id').doUpdateSet(set))
      .execute();
    return this.settings(eventId);
  }
}
