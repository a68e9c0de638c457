// What the gateway does with each client message: hello (join, welcome, history), comment, react, like, moderate and
// ping, behind the per-connection frame budget, the size limit and the per-viewer and per-address rate limits.
import type { RawData } from 'ws';
import type { Logger } from '../lib/logger.ts';
import type { Bus } from '../lib/bus/bus.ts';
import type { BucketSpec, RateLimiter } from '../lib/rate-limit/token-bucket.ts';
import { chatChannel, encodeChatMessage, type ChatSettings, type CommentWire } from './channel.ts';
import type { LikeTotals, LikeValue } from './comments.ts';
import type { ViewerIdentity } from './viewer-tokens.ts';
import type { ViewerOverlays } from './viewer-signals.ts';
import {
  CloseCode,
  PROTOCOL_VERSION,
  ProtocolError,
  parseClientMessage,
  sanitizeComment,
  type ClientMessage,
  type ErrorCode,
} from './protocol.ts';
import type { Conn } from './connection.ts';
import { isStoreUnavailable } from '../lib/store/unavailable.ts';
import { HISTORY_MAX, type Rooms } from './rooms.ts';

/** Comments shown to a client that joins without a lastSeq. */
const HISTORY_INITIAL = 50;

/** The chat store as the handlers use it (chat/comments.ts CommentStore fits). */
export interface HandlersStore {
  append(eventId: string, viewer: Pick<ViewerIdentity, 'id' | 'name' | 'role'>, text: string): Promise<CommentWire>;
  since(eventId: string, afterSeq: number, upToSeq?: number, limit?: number): Promise<CommentWire[]>;
  recent(eventId: string, limit: number, upToSeq?: number): Promise<CommentWire[]>;
  maxSeq(eventId: string): Promise<number>;
  setLike(eventId: string, viewerId: string, value: LikeValue): Promise<LikeTotals>;
  likeOf(eventId: string, viewerId: string): Promise<LikeValue>;
  isBanned(eventId: string, viewerId: string): Promise<boolean>;
}

/** Settings the handlers read (config/schema.ts names). */
export interface HandlersSettings {
  wsFlushMs: number;
  wsMaxMessageBytes: number;
  chatCommentsPerSec: number;
  chatCommentBurst: number;
  chatReactionsPerSec: number;
  chatReactionBurst: number;
  chatLikesPerSec: number;
  chatLikeBurst: number;
  chatIpFactor: number;
}

/** What the handlers need from their parent (the gateway). */
export interface HandlersParent {
  settings: HandlersSettings;
  logger: Logger;
  bus: Pick<Bus, 'isUp' | 'publish'>;
  limiter: RateLimiter;
  tokens: { verify(token: unknown): ViewerIdentity | undefined };
  store: HandlersStore;
  rooms: Pick<Rooms<Conn>, 'open' | 'deliverComment' | 'react'>;
  /** Parses and applies a moderation request; throws errors with a `code` (invalid_message, not_found, bus_unavailable). */
  moderate(eventId: string, raw: Record<string, unknown>, by: ViewerIdentity): Promise<{ settings?: ChatSettings }>;
  /** What a joining viewer must see, sent in `welcome`. */
  overlays?(eventId: string): Promise<ViewerOverlays | undefined>;
  /** True once the gateway is stopping: nothing new is taken. */
  stopping(): boolean;
  /** Sends an error message (and counts it). */
  sendError(c: Conn, code: ErrorCode, message: string, extra?: { ref?: string; retryAfterMs?: number }): void;
  /** Closes a connection (and counts why). */
  closeConn(c: Conn, code: number, reason: string, label: string): void;
  metrics: { comments: { inc(): void } };
}

/** The message handlers of one gateway. */
export interface Handlers {
  /** Handles one frame of `c`; the caller runs a connection's frames one after the other. */
  onMessage(c: Conn, data: RawData, isBinary: boolean): Promise<void>;
}

/** The `ref` of a frame that was not acted on, if it has a valid one. */
function refOf(text: string): string | undefined {
  try {
    const m = parseClientMessage(text);
    return 'ref' in m ? m.ref : undefined;
  } catch {
    return undefined;
  }
}

/** Builds the handlers over `parent`. */
export function createHandlers(parent: HandlersParent): Handlers {
  const { settings: cfg, logger, bus, store, limiter, rooms, sendError, closeConn } = parent;

  const bucket = (key: string, perSec: number, burst: number, ip: boolean): BucketSpec => ({
    key,
    refillPerSec: ip ? perSec * cfg.chatIpFactor : perSec,
    capacity: ip ? Math.ceil(burst * cfg.chatIpFactor) : burst,
  });

  /** Takes from the viewer's and the IP's buckets; sends the error and returns false when refused. */
  const limit = async (c: Conn, kind: 'c' | 'r' | 'l', extra: BucketSpec[] = [], ref?: string): Promise<boolean> => {
    const [perSec, burst] =
      kind === 'c'
        ? [cfg.chatCommentsPerSec, cfg.chatCommentBurst]
        : kind === 'r'
          ? [cfg.chatReactionsPerSec, cfg.chatReactionBurst]
          : [cfg.chatLikesPerSec, cfg.chatLikeBurst];
    const tag = `{${c.eventId}}`;
    const specs = [
      bucket(`${tag}:${kind}:v:${c.viewer!.id}`, perSec, burst, false),
      bucket(`${tag}:${kind}:ip:${c.ip}`, perSec, burst, true),
      ...extra,
    ];
    let r;
    try {
      r = await limiter.take(specs);
    } catch {
      sendError(c, 'chat_unavailable', 'chat is temporarily unavailable (rate limiter unreachable); try again', { ref });
      return false;
    }
    if (r.allowed) return true;
    const slow = r.blockedBy >= 2;
    sendError(
      c,
      slow ? 'slow_mode' : 'rate_limited',
      slow ? 'slow mode is on; wait before commenting again' : 'too many requests; slow down',
      {
        ref,
        retryAfterMs: r.retryAfterMs,
      },
    );
    return false;
  };

  const onComment = async (c: Conn, msg: Extract<ClientMessage, { type: 'comment' }>) => {
    const room = c.room!;
    const viewer = c.viewer!;
    const text = sanitizeComment(msg.text);
    if (!room.settings.chatEnabled && viewer.role === 'viewer')
      return sendError(c, 'chat_disabled', 'chat is turned off for this event', { ref: msg.ref });
    if (!bus.isUp())
      return sendError(c, 'chat_unavailable', 'chat is temporarily unavailable; your comment was not posted', { ref: msg.ref });
    const slowSec = room.settings.slowModeSec;
    const extra =
      slowSec > 0 && viewer.role === 'viewer' ? [{ key: `{${c.eventId}}:slow:${viewer.id}`, capacity: 1, refillPerSec: 1 / slowSec }] : [];
    if (!(await limit(c, 'c', extra, msg.ref))) return;
    if (await store.isBanned(c.eventId, viewer.id)) {
      sendError(c, 'banned', 'you are banned from this chat', { ref: msg.ref });
      return closeConn(c, CloseCode.banned, 'banned', 'banned');
    }
    let comment: CommentWire;
    try {
      comment = await store.append(c.eventId, viewer, text);
    } catch (err) {
      logger.error({ eventId: c.eventId, err: (err as Error).message }, 'storing a comment failed');
      return sendError(c, 'chat_unavailable', 'your comment could not be saved; try again', { ref: msg.ref });
    }
    // Durable: acknowledge, then publish. If the publish fails, this edge delivers it and other edges fill the gap from the store.
    parent.metrics.comments.inc();
    c.send({ type: 'ack', ref: msg.ref, id: comment.id, seq: comment.seq });
    bus.publish(chatChannel(c.eventId), encodeChatMessage({ t: 'comment', comment })).catch((err: Error) => {
      logger.warn(
        { eventId: c.eventId, seq: comment.seq, err: err.message },
        'comment stored but not published; edges catch up from the store',
      );
      rooms.deliverComment(room, comment);
    });
  };

  const onLike = async (c: Conn, msg: Extract<ClientMessage, { type: 'like' }>) => {
    const room = c.room!;
    if (!bus.isUp()) return sendError(c, 'chat_unavailable', 'temporarily unavailable; your vote was not counted', { ref: msg.ref });
    if (!(await limit(c, 'l', [], msg.ref))) return;
    const value: LikeValue = msg.value === 'like' ? 1 : msg.value === 'dislike' ? -1 : 0;
    let totals: LikeTotals;
    try {
      totals = await store.setLike(c.eventId, c.viewer!.id, value);
    } catch (err) {
      logger.error({ eventId: c.eventId, err: (err as Error).message }, 'storing a like failed');
      return sendError(c, 'chat_unavailable', 'your vote could not be saved; try again', { ref: msg.ref });
    }
    c.send({ type: 'ack', ref: msg.ref, like: msg.value, ...totals });
    bus.publish(chatChannel(c.eventId), encodeChatMessage({ t: 'likes', ...totals })).catch(() => room.setLikes(totals));
  };

  const onReact = async (c: Conn, msg: Extract<ClientMessage, { type: 'react' }>) => {
    if (!(await limit(c, 'r'))) return;
    rooms.react(c.room!, msg.reaction);
  };

  const onModerate = async (c: Conn, msg: Extract<ClientMessage, { type: 'moderate' }>) => {
    if (c.viewer!.role === 'viewer') return sendError(c, 'forbidden', 'moderation needs a moderator or admin token', { ref: msg.ref });
    try {
      const r = await parent.moderate(c.eventId, msg, c.viewer!);
      c.send({ type: 'ack', ref: msg.ref, ok: true, ...(r.settings ? { settings: r.settings } : {}) });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'invalid_message' || e.code === 'not_found') return sendError(c, e.code, e.message, { ref: msg.ref });
      if (e.code === 'bus_unavailable') return sendError(c, 'chat_unavailable', e.message, { ref: msg.ref });
      logger.error({ eventId: c.eventId, err: e.message }, 'moderation failed');
      sendError(c, 'internal', 'moderation failed', { ref: msg.ref });
    }
  };

  /** The overlays a joiner must see, or undefined (none configured, or unreadable: the client falls back to the REST GET). */
  const readOverlays = async (eventId: string): Promise<ViewerOverlays | undefined> => {
    if (!parent.overlays) return undefined;
    try {
      return await parent.overlays(eventId);
    } catch (err) {
      logger.warn({ eventId, err: (err as Error).message }, 'reading active overlays failed; welcome goes without them');
      return undefined;
    }
  };

  /** Joins the room: with a token as that viewer, without one as a read-only watcher (sees and counts, cannot post). */
  const onHello = async (c: Conn, msg: Extract<ClientMessage, { type: 'hello' }>) => {
    const viewer = msg.token === undefined ? undefined : parent.tokens.verify(msg.token);
    if (msg.token !== undefined && !viewer) {
      sendError(c, 'invalid_token', 'token is invalid or expired; get a new one from POST /api/v1/viewers');
      return closeConn(c, CloseCode.unauthorized, 'invalid token', 'invalid_token');
    }
    c.greeted = c.joining = true;
    clearTimeout(c.helloTimer);
    if (viewer && (await store.isBanned(c.eventId, viewer.id))) {
      sendError(c, 'banned', 'you are banned from this chat');
      return closeConn(c, CloseCode.banned, 'banned', 'banned');
    }
    c.viewer = viewer;
    const room = await rooms.open(c.eventId);
    // Signals flushed after this mark and before the client joins the batches would be missed: re-read then.
    let signalMark = room.signalsFlushed;
    const [mine, overlays] = await Promise.all([viewer ? store.likeOf(c.eventId, viewer.id) : 0, readOverlays(c.eventId)]);
    if (c.closed) return;
    c.send({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      eventId: c.eventId,
      viewer: viewer ? { id: viewer.id, name: viewer.name, role: viewer.role } : null,
      settings: room.settings,
      likes: { ...room.likes, mine: mine === 1 ? 'like' : mine === -1 ? 'dislike' : 'none' },
      viewers: room.viewers,
      chat: room.chatUp ? 'ok' : 'unavailable',
      flushMs: cfg.wsFlushMs,
      ...(overlays ? { overlays } : {}),
    });
    // Backlog from the store up to what the room has flushed, gathered into one history; the next batches carry the
    // rest: no gap, no duplicate. Flushes while reading move the mark: read again up to the new one.
    let cursor = msg.lastSeq;
    // A lastSeq beyond the event's newest comment (another event's, a reset store) would hide comments forever.
    if (cursor !== undefined && cursor > room.flushedSeq) cursor = Math.min(cursor, await store.maxSeq(c.eventId));
    let history: CommentWire[] = [];
    let truncated = false;
    for (;;) {
      const upTo = room.flushedSeq;
      if (cursor === undefined) {
        history = await store.recent(c.eventId, HISTORY_INITIAL, upTo);
      } else if (cursor < upTo) {
        const missed = await store.since(c.eventId, cursor, upTo, HISTORY_MAX + 1);
        if (history.length + missed.length > HISTORY_MAX) {
          history = await store.recent(c.eventId, HISTORY_MAX, upTo);
          truncated = true;
        } else {
          history.push(...missed);
        }
      }
      if (c.closed) return;
      cursor = Math.max(cursor ?? 0, upTo);
      if (room.signalsFlushed !== signalMark) {
        signalMark = room.signalsFlushed;
        const fresh = await readOverlays(c.eventId);
        if (fresh) c.send({ type: 'overlays', ...fresh });
        if (c.closed) return;
      }
      if (room.flushedSeq === upTo && room.signalsFlushed === signalMark) break;
    }
    c.send({ type: 'history', comments: history, truncated });
    // Comments up to a lastSeq the room has not flushed yet are still to come in batches: this client has them.
    if (cursor > room.flushedSeq) c.skipUpTo = cursor;
    room.members.add(c);
    c.room = room;
    c.joining = false;
  };

  const onMessage = async (c: Conn, data: RawData, isBinary: boolean) => {
    if (c.closed) return;
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length;
    const now = Date.now();
    if (!c.frames.take(now)) {
      if (!c.refusals.take(now)) return closeConn(c, CloseCode.flooding, 'flooding', 'flooding');
      // Not acted on. The ref lets a client match the refusal to its request (a comment waiting for its ack).
      return sendError(c, 'rate_limited', 'too many messages on this connection; slow down', {
        ref: isBinary || size > cfg.wsMaxMessageBytes ? undefined : refOf(data.toString()),
        retryAfterMs: c.frames.retryAfterMs(),
      });
    }
    if (isBinary) return sendError(c, 'binary_not_supported', 'binary frames are not supported; send JSON text');
    if (size > cfg.wsMaxMessageBytes)
      return sendError(c, 'message_too_large', `message is ${size} bytes; at most ${cfg.wsMaxMessageBytes}`);
    let msg: ClientMessage;
    let ref: string | undefined;
    try {
      msg = parseClientMessage(data.toString());
      ref = 'ref' in msg ? (msg.ref as string | undefined) : undefined;
      if (msg.type === 'hello') {
        if (c.greeted) return sendError(c, 'already_joined', 'hello was already sent');
        return await onHello(c, msg);
      }
      if (!c.room) return sendError(c, 'hello_required', c.joining ? 'still joining; wait for welcome' : 'send hello first', { ref });
      if (!c.viewer && msg.type !== 'ping') {
        return sendError(
          c,
          'token_required',
          'watching only: pick a display name (POST /api/v1/viewers) and reconnect with its token to take part',
          { ref },
        );
      }
      // What is acknowledged must reach the other clients before the 1001 close: nothing new is taken once stopping.
      if (parent.stopping() && msg.type !== 'ping')
        return sendError(c, 'chat_unavailable', 'server is shutting down; nothing was posted: reconnect and try again', { ref });
      switch (msg.type) {
        case 'comment':
          return await onComment(c, msg);
        case 'react':
          return await onReact(c, msg);
        case 'like':
          return await onLike(c, msg);
        case 'moderate':
          return await onModerate(c, msg);
        case 'ping':
          return c.send({ type: 'pong', ref });
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        sendError(c, err.code, err.message, { ref });
        if (err.code === 'unsupported_version' || (err.code === 'invalid_token' && !c.greeted)) {
          closeConn(c, err.code === 'invalid_token' ? CloseCode.unauthorized : CloseCode.badHello, err.message, err.code);
        }
        return;
      }
      logger.error({ eventId: c.eventId, err: (err as Error).message }, 'ws message handling failed');
      if (isStoreUnavailable(err))
        sendError(c, 'chat_unavailable', 'chat is temporarily unavailable (database unreachable); try again', { ref });
      else sendError(c, 'internal', 'internal error', { ref });
    }
  };

  return { onMessage };
}
