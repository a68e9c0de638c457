// The chat rooms open on one edge: each event's bus subscriptions (chat and operator signals), comment intake in seq
// order with gap fills and resyncs from the store, the flush that sends each room's batch as one frame to all its
// members, and the presence reports that count viewers and close idle rooms.
import type { Logger } from '../lib/logger.ts';
import type { Bus, Unsubscribe } from '../lib/bus/bus.ts';
import type { Presence } from '../lib/bus/presence.ts';
import { chatChannel, decodeChatMessage, encodeChatMessage, type ChatBusMessage, type ChatSettings, type CommentWire } from './channel.ts';
import { decodeViewerSignal, signalsChannel, withRemaining } from './viewer-signals.ts';
import type { BatchFrame, ReactionName } from './protocol.ts';
import { Room, type RoomMember } from './room.ts';

/** Most comments replayed to a reconnecting client or taken in one catch-up; older missed ones are left to the REST history. */
export const HISTORY_MAX = 500;

/** What the rooms need from a member: the shared frame, the identity bans match, and the lastSeq it already has. */
export interface RoomsMember extends RoomMember {
  readonly viewer?: { readonly id: string };
  /** Comments up to this seq are left out of its batches (set at join, cleared once the room flushed past it). */
  skipUpTo?: number;
}

/** The chat store as the rooms read it (chat/comments.ts CommentStore fits). */
export interface RoomsStore {
  since(eventId: string, afterSeq: number, upToSeq?: number, limit?: number): Promise<CommentWire[]>;
  maxSeq(eventId: string): Promise<number>;
  settings(eventId: string): Promise<ChatSettings>;
  likeTotals(eventId: string): Promise<{ likes: number; dislikes: number }>;
}

/** What the rooms need from their parent (the gateway). */
export interface RoomsParent<M extends RoomsMember> {
  logger: Logger;
  bus: Pick<Bus, 'subscribe' | 'publish' | 'isUp'>;
  presence: Pick<Presence, 'report'>;
  store: RoomsStore;
  /** This edge's id in presence and reaction messages. */
  edgeId: string;
  /** Presence report period (ms): reports expire after three, an empty room closes after one. */
  viewerCountMs: number;
  /** Receives an event's viewer total (across edges) after each presence report. */
  onViewerCount?(eventId: string, viewers: number): void;
  /** A member whose viewer was just banned: tell it and close it. */
  banned(member: M): void;
  /** Flush metrics: frames delivered, and a timer around each flush. */
  metrics: { frames: { inc(n: number): void }; flush: { startTimer(): () => unknown } };
}

interface OpenRoom<M extends RoomsMember> {
  room: Room<M>;
  unsubscribe: Promise<Unsubscribe | undefined>;
  unsubscribeSignals: Promise<Unsubscribe | undefined>;
}

/** The rooms of one edge. Building it starts nothing: rooms open on the first join, flushes run when the parent calls. */
export class Rooms<M extends RoomsMember> {
  readonly #parent: RoomsParent<M>;
  /** Opening or open, by event: joiners of a room still loading wait for the same promise. */
  readonly #pending = new Map<string, Promise<Room<M>>>();
  readonly #open = new Map<string, OpenRoom<M>>();
  /** Reactions of this edge's clients since the last flush, published once per room per flush. */
  readonly #localReactions = new Map<Room<M>, Record<string, number>>();

  constructor(parent: RoomsParent<M>) {
    this.#parent = parent;
  }

  /** Rooms open (loaded) on this edge. */
  get size(): number {
    return this.#open.size;
  }

  /** Viewers of an event across edges (last presence total; 0 when the room is not open here). */
  viewerCount(eventId: string): number {
    return this.#open.get(eventId)?.room.viewers ?? 0;
  }

  /** The event's room, subscribed and loaded (settings, likes, newest seq); opened on first use. */
  open(eventId: string): Promise<Room<M>> {
    let p = this.#pending.get(eventId);
    if (p) return p;
    const { bus, store, logger } = this.#parent;
    p = (async () => {
      const room = new Room<M>(eventId);
      room.chatUp = bus.isUp();
      // Subscribe first, load after: bus comments wait on the chain until lastSeq is known; earlier ones come from the store.
      let loaded!: () => void;
      room.chain = new Promise<void>((r) => (loaded = r));
      const unsubscribe = bus
        .subscribe(chatChannel(eventId), (text) => this.#onBusMessage(room, text))
        .catch((err: Error) => {
          logger.warn({ eventId, err: err.message }, 'chat subscribe failed');
          return undefined;
        });
      const unsubscribeSignals = bus
        .subscribe(signalsChannel(eventId), (text) => {
          const signal = decodeViewerSignal(text);
          if (signal) room.pushSignal(withRemaining(signal, Date.now()));
        })
        .catch((err: Error) => {
          logger.warn({ eventId, err: err.message }, 'signals subscribe failed');
          return undefined;
        });
      try {
        const [seq, settings, likes] = await Promise.all([store.maxSeq(eventId), store.settings(eventId), store.likeTotals(eventId)]);
        room.lastSeq = room.flushedSeq = seq;
        room.settings = settings;
        room.likes = likes;
      } catch (err) {
        this.#pending.delete(eventId);
        void unsubscribe.then((u) => u?.());
        void unsubscribeSignals.then((u) => u?.());
        loaded();
        throw err;
      }
      loaded();
      this.#open.set(eventId, { room, unsubscribe, unsubscribeSignals });
      return room;
    })();
    this.#pending.set(eventId, p);
    return p;
  }

  /** Unsubscribes the event's room and reports no viewers here any more. */
  close(eventId: string): void {
    const open = this.#open.get(eventId);
    if (!open) return;
    this.#open.delete(eventId);
    this.#pending.delete(eventId);
    void open.unsubscribe.then((u) => u?.()).catch(() => undefined);
    void open.unsubscribeSignals.then((u) => u?.()).catch(() => undefined);
    const { presence, edgeId, viewerCountMs } = this.#parent;
    presence.report(eventId, edgeId, 0, viewerCountMs * 3).then(
      (total) => this.#parent.onViewerCount?.(eventId, total),
      () => undefined,
    );
  }

  /** Closes every room. */
  closeAll(): void {
    for (const eventId of [...this.#open.keys()]) this.close(eventId);
  }

  /** Takes `member` out of its room; an emptied room starts its idle time. */
  leave(room: Room<M>, member: M): void {
    if (room.members.delete(member) && room.members.size === 0) room.emptySince = Date.now();
  }

  /** Queues a comment this edge stored but could not publish: it reaches this edge's clients in seq order anyway. */
  deliverComment(room: Room<M>, c: CommentWire): void {
    this.#enqueue(room, () => this.#intake(room, c));
  }

  /** Counts one reaction of a client of this edge; aggregated and published at the next flush. */
  react(room: Room<M>, reaction: ReactionName): void {
    let counts = this.#localReactions.get(room);
    if (!counts) this.#localReactions.set(room, (counts = {}));
    counts[reaction] = (counts[reaction] ?? 0) + 1;
  }

  /** The bus went down or came back: rooms show it, and catch up from the store when it is back (pub/sub lost messages meanwhile). */
  setBusUp(up: boolean): void {
    for (const { room } of this.#open.values()) {
      room.setChatUp(up);
      if (up) this.#resync(room);
    }
  }

  /** Queues in every room the stored comments it has not received yet; resolves when the rooms have taken them. */
  catchUpAll(): Promise<unknown> {
    return Promise.allSettled(
      [...this.#open.values()].map(({ room }) => {
        this.#catchUp(room);
        return room.chain;
      }),
    );
  }

  /** Sends each room's batch as one frame to its members, and publishes this edge's reaction counts. */
  flush(): void {
    const { bus, edgeId, metrics } = this.#parent;
    const end = metrics.flush.startTimer();
    for (const { room } of this.#open.values()) {
      const mine = this.#localReactions.get(room);
      if (mine) {
        this.#localReactions.delete(room);
        room.addReactions(mine);
        const msg = encodeChatMessage({ t: 'reactions', edge: edgeId, counts: mine });
        bus.publish(chatChannel(room.eventId), msg).catch(() => undefined);
      }
      const batch = room.takeBatch();
      if (!batch || room.members.size === 0) continue;
      const frame = Buffer.from(JSON.stringify(batch));
      for (const c of room.members) {
        if (c.skipUpTo === undefined) c.deliver(frame);
        else this.#deliverSkipping(c, room, batch, frame);
      }
      metrics.frames.inc(room.members.size);
    }
    end();
  }

  /** Reports each room's member count, takes the total across edges, and closes rooms empty for a report period. */
  async reportPresence(): Promise<void> {
    const { presence, edgeId, viewerCountMs } = this.#parent;
    const now = Date.now();
    for (const [eventId, { room }] of this.#open) {
      if (room.members.size === 0 && now - room.emptySince > viewerCountMs) {
        this.close(eventId);
        continue;
      }
      try {
        const total = await presence.report(eventId, edgeId, room.members.size, viewerCountMs * 3);
        room.setViewers(total);
        this.#parent.onViewerCount?.(eventId, total);
      } catch {
        // Presence is best effort: the count stays as it was while Redis is away.
      }
    }
  }

  /** Delivers `batch` without the comments `c` already has (seq ≤ its skipUpTo); a per-client frame only while needed. */
  #deliverSkipping(c: M, room: Room<M>, batch: BatchFrame, frame: Buffer): void {
    const skip = c.skipUpTo!;
    // Comments enter the room in seq order: once it has flushed past `skip`, none at or below it can come again.
    if (room.flushedSeq >= skip) c.skipUpTo = undefined;
    if (!batch.comments?.some((x) => x.seq <= skip)) return c.deliver(frame);
    const own: BatchFrame = { ...batch, comments: batch.comments.filter((x) => x.seq > skip) };
    if (own.comments!.length === 0) delete own.comments;
    if (Object.keys(own).length > 1) c.deliver(Buffer.from(JSON.stringify(own)));
  }

  #enqueue(room: Room<M>, fn: () => Promise<void>): void {
    room.chain = room.chain
      .then(fn)
      .catch((err: Error) => this.#parent.logger.error({ eventId: room.eventId, err: err.message }, 'chat room task failed'));
  }

  /** Delivers a comment in seq order: fills any gap from the store first (pub/sub is at-most-once). */
  async #intake(room: Room<M>, c: CommentWire): Promise<void> {
    if (c.seq <= room.lastSeq) return;
    if (c.seq > room.lastSeq + 1) {
      try {
        for (const missed of await this.#parent.store.since(room.eventId, room.lastSeq, c.seq - 1, c.seq - room.lastSeq)) room.push(missed);
      } catch (err) {
        this.#parent.logger.warn(
          { eventId: room.eventId, err: (err as Error).message },
          'gap fill failed; live viewers miss some comments until they reconnect',
        );
      }
    }
    room.push(c);
  }

  /** Queues every stored comment the room has not received yet (e.g. still on the bus, or lost there). */
  #catchUp(room: Room<M>): void {
    this.#enqueue(room, async () => {
      for (const c of await this.#parent.store.since(room.eventId, room.lastSeq, undefined, HISTORY_MAX)) room.push(c);
    });
  }

  /** Catches up from the store after the bus was down (messages published meanwhile are gone). */
  #resync(room: Room<M>): void {
    const { store } = this.#parent;
    this.#enqueue(room, async () => {
      for (const c of await store.since(room.eventId, room.lastSeq, undefined, HISTORY_MAX)) room.push(c);
      room.setSettings(await store.settings(room.eventId));
      room.setLikes(await store.likeTotals(room.eventId));
    });
  }

  #onBusMessage(room: Room<M>, text: string): void {
    const msg = decodeChatMessage(text);
    if (!msg) return;
    this.#handleBus(room, msg);
  }

  #handleBus(room: Room<M>, msg: ChatBusMessage): void {
    switch (msg.t) {
      case 'comment':
        this.#enqueue(room, () => this.#intake(room, msg.comment));
        break;
      case 'restore':
        room.restore(msg.comment);
        break;
      case 'reactions':
        if (msg.edge !== this.#parent.edgeId) room.addReactions(msg.counts);
        break;
      case 'likes':
        room.setLikes(msg);
        break;
      case 'remove':
        room.remove(msg.ids);
        break;
      case 'unban':
        // Nothing to undo on the edge: bans are checked in the store at hello and on posting.
        break;
      case 'ban':
        for (const c of room.members) if (c.viewer?.id === msg.viewerId) this.#parent.banned(c);
        break;
      case 'settings':
        room.setSettings(msg.settings);
        break;
    }
  }
}
