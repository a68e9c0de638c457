// One event's chat room on one edge: its clients, the batch being gathered for the next flush, and seq bookkeeping.
import type { ChatSettings, CommentWire } from './channel.ts';
import type { ViewerSignal } from './viewer-signals.ts';
import type { BatchFrame, ReactionName } from './protocol.ts';

/** What a room needs from a connection: deliver a pre-serialized frame. */
export interface RoomMember {
  /** Sends the shared frame; the member closes itself if it cannot keep up. */
  deliver(frame: Buffer): void;
}

/**
 * A room. Comments enter through `intake` (serialized on `chain`) in seq order, without gaps or duplicates;
 * `takeBatch` empties everything gathered since the last flush into one frame, serialized once for all members.
 */
export class Room<M extends RoomMember = RoomMember> {
  /** Members that receive batches. */
  readonly members = new Set<M>();
  /** Highest seq queued for delivery (store max at open). */
  lastSeq = 0;
  /** Highest seq included in a frame already sent (or in the store at open): joiners read up to it from the store. */
  flushedSeq = 0;
  /** Serializes comment intake, gap fills and resyncs. */
  chain: Promise<void> = Promise.resolve();
  settings: ChatSettings = { chatEnabled: true, slowModeSec: 0 };
  likes = { likes: 0, dislikes: 0 };
  viewers = 0;
  chatUp = true;
  /** When the room became empty (ms), for closing idle rooms. */
  emptySince = Date.now();
  /** Operator signals delivered in frames so far: a joiner whose overlays snapshot predates a change re-reads it. */
  signalsFlushed = 0;
  private signals: ViewerSignal[] = [];
  private comments: CommentWire[] = [];
  private removed: string[] = [];
  private restored: CommentWire[] = [];
  private reactions: Partial<Record<ReactionName, number>> = {};
  private reactionCount = 0;
  private dirty: { likes?: true; viewers?: true; settings?: true; chat?: true } = {};

  constructor(readonly eventId: string) {}

  /** Queues a comment that arrives in seq order (callers fill gaps first). Returns false for a duplicate. */
  push(c: CommentWire): boolean {
    if (c.seq <= this.lastSeq) return false;
    this.comments.push(c);
    this.lastSeq = c.seq;
    return true;
  }

  /** Removes comments for everyone, including ones not flushed yet. */
  remove(ids: readonly string[]): void {
    const gone = new Set(ids);
    this.comments = this.comments.filter((c) => !gone.has(c.id));
    this.removed.push(...ids);
  }

  /** Shows a previously hidden comment again. */
  restore(c: CommentWire): void {
    this.restored.push(c);
  }

  /** Adds reaction counts (from this edge or another one). */
  addReactions(counts: Partial<Record<string, number>>): void {
    for (const [name, n] of Object.entries(counts)) {
      if (typeof n !== 'number' || !(n > 0)) continue;
      const key = name as ReactionName;
      this.reactions[key] = (this.reactions[key] ?? 0) + Math.floor(n);
      this.reactionCount += n;
    }
  }

  /** Queues an operator signal (news flash, disclaimer, ad break, event status) for the next frame, in arrival order. */
  pushSignal(s: ViewerSignal): void {
    this.signals.push(s);
  }

  setLikes(t: { likes: number; dislikes: number }): void {
    this.likes = { likes: t.likes, dislikes: t.dislikes };
    this.dirty.likes = true;
  }

  setViewers(n: number): void {
    if (n === this.viewers) return;
    this.viewers = n;
    this.dirty.viewers = true;
  }

  setSettings(s: ChatSettings): void {
    this.settings = { ...s };
    this.dirty.settings = true;
  }

  setChatUp(up: boolean): void {
    if (up === this.chatUp) return;
    this.chatUp = up;
    this.dirty.chat = true;
  }

  /** Everything since the last call as one frame, or undefined when nothing happened. Advances `flushedSeq`. */
  takeBatch(): BatchFrame | undefined {
    const f: BatchFrame = { type: 'batch' };
    let any = false;
    if (this.comments.length) {
      f.comments = this.comments;
      this.comments = [];
      any = true;
    }
    if (this.removed.length) {
      f.removed = this.removed;
      this.removed = [];
      any = true;
    }
    if (this.restored.length) {
      f.restored = this.restored;
      this.restored = [];
      any = true;
    }
    if (this.reactionCount > 0) {
      f.reactions = this.reactions;
      this.reactions = {};
      this.reactionCount = 0;
      any = true;
    }
    if (this.signals.length) {
      f.signals = this.signals;
      this.signalsFlushed += this.signals.length;
      this.signals = [];
      any = true;
    }
    if (this.dirty.likes) f.likes = this.likes;
    if (this.dirty.viewers) f.viewers = this.viewers;
    if (this.dirty.settings) f.settings = this.settings;
    if (this.dirty.chat) f.chat = this.chatUp ? 'ok' : 'unavailable';
    any ||= Object.keys(this.dirty).length > 0;
    this.dirty = {};
    this.flushedSeq = this.lastSeq;
    return any ? f : undefined;
  }
}
