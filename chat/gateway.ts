// The viewer WebSocket gateway (`GET /ws?event=<id>`): chat, reactions, likes, viewer counts, moderation and operator
// signals (news flashes, disclaimer, ad breaks), fanned out through the bus and flushed to clients in batches
// (one frame per client per window, serialized once per room).
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { Logger } from '../lib/logger.ts';
import type { TrustedProxies } from '../lib/client-address.ts';
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts';
import type { Bus, Unsubscribe } from '../lib/bus/bus.ts';
import type { Presence } from '../lib/bus/presence.ts';
import { chatChannel, decodeChatMessage, encodeChatMessage, type ChatBusMessage, type ChatSettings, type CommentWire } from './channel.ts';
import type { BucketSpec, RateLimiter } from '../lib/rate-limit/token-bucket.ts';
import type { ViewerIdentity } from './viewer-tokens.ts';
import type { LikeTotals, LikeValue } from './comments.ts';
import { decodeViewerSignal, signalsChannel, withRemaining, type ViewerOverlays } from './viewer-signals.ts';
import { CloseCode, PROTOCOL_VERSION, ProtocolError, encode, parseClientMessage, sanitizeComment, type BatchFrame, type ClientMessage, type ErrorCode } from './protocol.ts';
import { Room, type RoomMember } from './room.ts';

/** The chat store as the gateway uses it (chat/comments.ts CommentStore fits). */
export interface GatewayChatStore {
  append(eventId: string, viewer: Pick<ViewerIdentity, 'id' | 'name' | 'role'>, text: string): Promise<CommentWire>;
  since(eventId: string, afterSeq: number, upToSeq?: number, limit?: number): Promise<CommentWire[]>;
  recent(eventId: string, limit: number, upToSeq?: number): Promise<CommentWire[]>;
  maxSeq(eventId: string): Promise<number>;
  setLike(eventId: string, viewerId: string, value: LikeValue): Promise<LikeTotals>;
  likeTotals(eventId: string): Promise<LikeTotals>;
  likeOf(eventId: string, viewerId: string): Promise<LikeValue>;
  isBanned(eventId: string, viewerId: string): Promise<boolean>;
  settings(eventId: string): Promise<ChatSettings>;
}

/** Gateway settings (config/schema.ts names). */
export interface GatewaySettings {
  wsFlushMs: number;
  wsViewerCountMs: number;
  wsMaxConnectionsPerIp: number;
  wsMaxBufferedBytes: number;
  wsMaxMessageBytes: number;
  chatCommentsPerSec: number;
  chatCommentBurst: number;
  chatReactionsPerSec: number;
  chatReactionBurst: number;
  chatLikesPerSec: number;
  chatLikeBurst: number;
  chatIpFactor: number;
}

/** What the gateway needs from its parent. */
export interface WsGatewayDeps {
  settings: GatewaySettings;
  logger: Logger;
  registry: Registry;
  bus: Bus;
  presence: Presence;
  limiter: RateLimiter;
  /** Whose X-Forwarded-For names the client: per-address limits and logs count that client, not the proxy. */
  trustedProxies: TrustedProxies;
  tokens: { verify(token: unknown): ViewerIdentity | undefined };
  store: GatewayChatStore;
  /** True if the event exists (and may have chat). */
  eventExists(eventId: string): Promise<boolean>;
  /** Parses and applies a moderation request (chat/moderation.ts); throws ModerationError / BusUnavailableError. */
  moderate(eventId: string, raw: Record<string, unknown>, by: ViewerIdentity): Promise<{ settings?: ChatSettings }>;
  /** What a joining viewer must see (active news flashes, disclaimer, ad break, status), sent in `welcome`; omitted when absent or failing. */
  overlays?(eventId: string): Promise<ViewerOverlays | undefined>;
  /** Called with an event's viewer total (across edges) after each presence report, e.g. for the control plane's history. */
  onViewerCount?(eventId: string, viewers: number): void;
  /** Identifies this edge in presence and reaction messages; random by default. */
  edgeId?: string;
  /** Milliseconds a new connection has to send its hello. */
  helloTimeoutMs?: number;
}

/** The gateway: hand it HTTP upgrades for `/ws`. */
export interface WsGateway {
  /** Handles an HTTP upgrade; answers non-/ws paths with 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** This edge's id. */
  readonly edgeId: string;
  /** Connected clients (joined or not). */
  connectionCount(): number;
  /** Viewers of an event across edges (last presence total; 0 when no one watches on this edge). */
  viewerCount(eventId: string): number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Most comments replayed to a reconnecting client; older missed ones are left to the REST history. */
const HISTORY_MAX = 500;
/** Comments shown to a client that joins without a lastSeq. */
const HISTORY_INITIAL = 50;
/**
 * Frames one connection may send: burst and per second. A frame over this budget is refused (`rate_limited`) and not
 * acted on; refused frames spend a second budget of the same size, and a client that exhausts that one too is closed (4429).
 */
const FRAME_BURST = 60;
const FRAME_RATE = 20;
const HEARTBEAT_MS = 30_000;
const EVENT_ID = /^[A-Za-z0-9_-]{6,64}$/;

/** A token bucket of frames for one connection. */
class FrameBudget {
  private tokens = FRAME_BURST;
  private at = Date.now();

  /** Takes one frame; false when the budget is spent. */
  take(now: number): boolean {
    this.tokens = Math.min(FRAME_BURST, this.tokens + ((now - this.at) * FRAME_RATE) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next frame is allowed. */
  retryAfterMs(): number {
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / FRAME_RATE));
  }
}

/** One WebSocket connection. */
class Conn implements RoomMember {
  /** The token's identity; undefined for a read-only watcher (hello without a token). */
  viewer?: ViewerIdentity;
  room?: Room<Conn>;
  /** Hello received (joining or joined). */
  greeted = false;
  joining = false;
  alive = true;
  closed = false;
  readonly frames = new FrameBudget();
  readonly refusals = new FrameBudget();
  /**
   * The client's lastSeq when it was ahead of what the room had flushed at join (e.g. the seq of an ack whose batch
   * was still pending): comments up to it are left out of this client's batches until the room has flushed past it.
   */
  skipUpTo?: number;
  helloTimer?: ReturnType<typeof setTimeout>;
  /** Messages of one connection are handled one after the other, in order. */
  queue: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    readonly ip: string,
    readonly eventId: string,
    private readonly maxBuffered: number,
    private readonly onSlow: (c: Conn) => void,
  ) {}

  deliver(frame: Buffer): void {
    if (this.closed) return;
    if (this.ws.bufferedAmount > this.maxBuffered) {
      this.onSlow(this);
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  send(m: Record<string, unknown> & { type: string }): void {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(m));
  }

  error(code: ErrorCode, message: string, extra: { ref?: string; retryAfterMs?: number } = {}): void {
    this.send({ type: 'error', code, message, ...extra });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ws.close(code, reason);
    // A peer that never completes the closing handshake is cut off.
    setTimeout(() => this.ws.terminate(), 2_000).unref();
  }
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

function rejectUpgrade(socket: Duplex, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } });
  const reason = { 400: 'Bad Request', 404: 'Not Found', 429: 'Too Many Requests', 503: 'Service Unavailable' }[status] ?? 'Error';
  const headers = [
    `HTTP/1.1 ${status} ${reason}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    'connection: close',
    ...Object.entries(extra).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(headers.join('\r\n') + '\r\n\r\n' + body);
  socket.destroy();
}

/** Creates the gateway. */
export function createWsGateway(deps: WsGatewayDeps): WsGateway {
  const { settings: cfg, logger, bus, store, limiter } = deps;
  const edgeId = deps.edgeId ?? 'edge-' + randomBytes(6).toString('hex');
  const helloTimeoutMs = deps.helloTimeoutMs ?? 10_000;
  const wss = new WebSocketServer({ noServer: true, maxPayload: cfg.wsMaxMessageBytes * 16, perMessageDeflate: false, clientTracking: false });
  // Handshakes ws refuses (no key, bad version, another Upgrade) get the documented JSON error; its messages are fixed texts.
  wss.on('wsClientError', (err, socket) => {
    m.rejected.inc({ reason: 'bad_handshake' });
    rejectUpgrade(socket, 400, 'bad_handshake', `not a WebSocket handshake: ${err.message}`, { 'sec-websocket-version': '13' });
  });
  const conns = new Set<Conn>();
  const ipCounts = new Map<string, number>();
  const rooms = new Map<string, Promise<Room<Conn>>>();
  const openRooms = new Map<string, { room: Room<Conn>; unsubscribe: Promise<Unsubscribe | undefined>; unsubscribeSignals: Promise<Unsubscribe | undefined> }>();
  const timers: ReturnType<typeof setInterval>[] = [];
  let stopBusWatch: (() => void) | undefined;
  let stopping = false;

  const m = {
    connections: new Gauge({ name: 'onair_ws_connections', help: 'Open viewer WebSocket connections', registers: [deps.registry], collect() { this.set(conns.size); } }),
    rooms: new Gauge({ name: 'onair_ws_rooms', help: 'Events with chat rooms open on this edge', registers: [deps.registry], collect() { this.set(openRooms.size); } }),
    frames: new Counter({ name: 'onair_ws_batch_frames_total', help: 'Batch frames delivered to clients', registers: [deps.registry] }),
    comments: new Counter({ name: 'onair_ws_comments_total', help: 'Comments accepted (stored and acknowledged) on this edge', registers: [deps.registry] }),
    errors: new Counter({ name: 'onair_ws_errors_total', help: 'Error messages sent to clients, by code', labelNames: ['code'], registers: [deps.registry] }),
    closed: new Counter({ name: 'onair_ws_closed_total', help: 'Connections closed by the gateway, by reason', labelNames: ['reason'], registers: [deps.registry] }),
    flush: new Histogram({ name: 'onair_ws_flush_seconds', help: 'Time to build and write one flush across all rooms', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers: [deps.registry] }),
    rejected: new Counter({ name: 'onair_ws_upgrades_rejected_total', help: 'WebSocket upgrades refused, by reason', labelNames: ['reason'], registers: [deps.registry] }),
  };

  const sendError = (c: Conn, code: ErrorCode, message: string, extra: { ref?: string; retryAfterMs?: number } = {}) => {
    m.errors.inc({ code });
    c.error(code, message, extra);
  };
  const closeConn = (c: Conn, code: number, reason: string, label: string) => {
    if (c.closed) return;
    m.closed.inc({ reason: label });
    c.close(code, reason);
  };
  const onSlow = (c: Conn) => closeConn(c, CloseCode.slowConsumer, 'slow consumer: too much data queued', 'slow_consumer');

  // ---- rooms -------------------------------------------------------------------------------------------------

  const enqueue = (room: Room<Conn>, fn: () => Promise<void>) => {
    room.chain = room.chain.then(fn).catch((err: Error) => logger.error({ eventId: room.eventId, err: err.message }, 'chat room task failed'));
  };

  /** Delivers a comment in seq order: fills any gap from the store first (pub/sub is at-most-once). */
  const intake = async (room: Room<Conn>, c: CommentWire) => {
    if (c.seq <= room.lastSeq) return;
    if (c.seq > room.lastSeq + 1) {
      try {
        for (const missed of await store.since(room.eventId, room.lastSeq, c.seq - 1, c.seq - room.lastSeq)) room.push(missed);
      } catch (err) {
        logger.warn({ eventId: room.eventId, err: (err as Error).message }, 'gap fill failed; live viewers miss some comments until they reconnect');
      }
    }
    room.push(c);
  };

  /** Queues every stored comment the room has not received yet (e.g. still on the bus, or lost there). */
  const catchUp = (room: Room<Conn>) =>
    enqueue(room, async () => {
      for (const c of await store.since(room.eventId, room.lastSeq, undefined, HISTORY_MAX)) room.push(c);
    });

  /** Catches up from the store after the bus was down (messages published meanwhile are gone). */
  const resync = (room: Room<Conn>) =>
    enqueue(room, async () => {
      for (const c of await store.since(room.eventId, room.lastSeq, undefined, HISTORY_MAX)) room.push(c);
      room.setSettings(await store.settings(room.eventId));
      room.setLikes(await store.likeTotals(room.eventId));
    });

  const onBusMessage = (room: Room<Conn>, text: string) => {
    const msg = decodeChatMessage(text);
    if (!msg) return;
    handleBus(room, msg);
  };

  const handleBus = (room: Room<Conn>, msg: ChatBusMessage) => {
    switch (msg.t) {
      case 'comment':
        enqueue(room, () => intake(room, msg.comment));
        break;
      case 'restore':
        room.restore(msg.comment);
        break;
      case 'reactions':
        if (msg.edge !== edgeId) room.addReactions(msg.counts);
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
        for (const c of room.members) {
          if (c.viewer?.id !== msg.viewerId) continue;
          sendError(c, 'banned', 'you are banned from this chat');
          closeConn(c, CloseCode.banned, 'banned', 'banned');
        }
        break;
      case 'settings':
        room.setSettings(msg.settings);
        break;
    }
  };

  const openRoom = (eventId: string): Promise<Room<Conn>> => {
    let p = rooms.get(eventId);
    if (p) return p;
    p = (async () => {
      const room = new Room<Conn>(eventId);
      room.chatUp = bus.isUp();
      // Subscribe first, load after: bus comments wait on the chain until lastSeq is known; earlier ones come from the store.
      let loaded!: () => void;
      room.chain = new Promise<void>((r) => (loaded = r));
      const unsubscribe = bus.subscribe(chatChannel(eventId), (text) => onBusMessage(room, text)).catch((err: Error) => {
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
        rooms.delete(eventId);
        void unsubscribe.then((u) => u?.());
        void unsubscribeSignals.then((u) => u?.());
        loaded();
        throw err;
      }
      loaded();
      openRooms.set(eventId, { room, unsubscribe, unsubscribeSignals });
      return room;
    })();
    rooms.set(eventId, p);
    return p;
  };

  const closeRoom = (eventId: string) => {
    const open = openRooms.get(eventId);
    if (!open) return;
    openRooms.delete(eventId);
    rooms.delete(eventId);
    void open.unsubscribe.then((u) => u?.()).catch(() => undefined);
    void open.unsubscribeSignals.then((u) => u?.()).catch(() => undefined);
    deps.presence.report(eventId, edgeId, 0, cfg.wsViewerCountMs * 3).then(
      (total) => deps.onViewerCount?.(eventId, total),
      () => undefined,
    );
  };

  // ---- flush, presence, heartbeat ------------------------------------------------------------------------------

  const localReactions = new Map<Room<Conn>, Record<string, number>>();

  const flush = () => {
    const end = m.flush.startTimer();
    for (const { room } of openRooms.values()) {
      const mine = localReactions.get(room);
      if (mine) {
        localReactions.delete(room);
        room.addReactions(mine);
        const msg = encodeChatMessage({ t: 'reactions', edge: edgeId, counts: mine });
        bus.publish(chatChannel(room.eventId), msg).catch(() => undefined);
      }
      const batch = room.takeBatch();
      if (!batch || room.members.size === 0) continue;
      const frame = Buffer.from(JSON.stringify(batch));
      for (const c of room.members) {
        if (c.skipUpTo === undefined) c.deliver(frame);
        else deliverSkipping(c, room, batch, frame);
      }
      m.frames.inc(room.members.size);
    }
    end();
  };

  /** Delivers `batch` without the comments `c` already has (seq ≤ its skipUpTo); a per-client frame only while needed. */
  const deliverSkipping = (c: Conn, room: Room<Conn>, batch: BatchFrame, frame: Buffer) => {
    const skip = c.skipUpTo!;
    // Comments enter the room in seq order: once it has flushed past `skip`, none at or below it can come again.
    if (room.flushedSeq >= skip) c.skipUpTo = undefined;
    if (!batch.comments?.some((x) => x.seq <= skip)) return c.deliver(frame);
    const own: BatchFrame = { ...batch, comments: batch.comments.filter((x) => x.seq > skip) };
    if (own.comments!.length === 0) delete own.comments;
    if (Object.keys(own).length > 1) c.deliver(Buffer.from(JSON.stringify(own)));
  };

  const reportPresence = async () => {
    const now = Date.now();
    for (const [eventId, { room }] of openRooms) {
      if (room.members.size === 0 && now - room.emptySince > cfg.wsViewerCountMs) {
        closeRoom(eventId);
        continue;
      }
      try {
        const total = await deps.presence.report(eventId, edgeId, room.members.size, cfg.wsViewerCountMs * 3);
        room.setViewers(total);
        deps.onViewerCount?.(eventId, total);
      } catch {
        // Presence is best effort: the count stays as it was while Redis is away.
      }
    }
  };

  const heartbeat = () => {
    for (const c of conns) {
      if (!c.alive) {
        m.closed.inc({ reason: 'heartbeat' });
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  };

  // ---- client messages -----------------------------------------------------------------------------------------

  const bucket = (key: string, perSec: number, burst: number, ip: boolean): BucketSpec => ({
    key,
    refillPerSec: ip ? perSec * cfg.chatIpFactor : perSec,
    capacity: ip ? Math.ceil(burst * cfg.chatIpFactor) : burst,
  });

  /** Takes from the viewer's and the IP's buckets; sends the error and returns false when refused. */
  const limit = async (c: Conn, kind: 'c' | 'r' | 'l', extra: BucketSpec[] = [], ref?: string): Promise<boolean> => {
    const [perSec, burst] =
      kind === 'c' ? [cfg.chatCommentsPerSec, cfg.chatCommentBurst] : kind === 'r' ? [cfg.chatReactionsPerSec, cfg.chatReactionBurst] : [cfg.chatLikesPerSec, cfg.chatLikeBurst];
    const tag = `{${c.eventId}}`;
    const specs = [bucket(`${tag}:${kind}:v:${c.viewer!.id}`, perSec, burst, false), bucket(`${tag}:${kind}:ip:${c.ip}`, perSec, burst, true), ...extra];
    let r;
    try {
      r = await limiter.take(specs);
    } catch {
      sendError(c, 'chat_unavailable', 'chat is temporarily unavailable (rate limiter unreachable); try again', { ref });
      return false;
    }
    if (r.allowed) return true;
    const slow = r.blockedBy >= 2;
    sendError(c, slow ? 'slow_mode' : 'rate_limited', slow ? 'slow mode is on; wait before commenting again' : 'too many requests; slow down', {
      ref,
      retryAfterMs: r.retryAfterMs,
    });
    return false;
  };

  const onComment = async (c: Conn, msg: Extract<ClientMessage, { type: 'comment' }>) => {
    const room = c.room!;
    const viewer = c.viewer!;
    const text = sanitizeComment(msg.text);
    if (!room.settings.chatEnabled && viewer.role === 'viewer') return sendError(c, 'chat_disabled', 'chat is turned off for this event', { ref: msg.ref });
    if (!bus.isUp()) return sendError(c, 'chat_unavailable', 'chat is temporarily unavailable; your comment was not posted', { ref: msg.ref });
    const slowSec = room.settings.slowModeSec;
    const extra = slowSec > 0 && viewer.role === 'viewer' ? [{ key: `{${c.eventId}}:slow:${viewer.id}`, capacity: 1, refillPerSec: 1 / slowSec }] : [];
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
    m.comments.inc();
    c.send({ type: 'ack', ref: msg.ref, id: comment.id, seq: comment.seq });
    bus.publish(chatChannel(c.eventId), encodeChatMessage({ t: 'comment', comment })).catch((err: Error) => {
      logger.warn({ eventId: c.eventId, seq: comment.seq, err: err.message }, 'comment stored but not published; edges catch up from the store');
      enqueue(room, () => intake(room, comment));
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
    const room = c.room!;
    let counts = localReactions.get(room);
    if (!counts) localReactions.set(room, (counts = {}));
    counts[msg.reaction] = (counts[msg.reaction] ?? 0) + 1;
  };

  const onModerate = async (c: Conn, msg: Extract<ClientMessage, { type: 'moderate' }>) => {
    if (c.viewer!.role === 'viewer') return sendError(c, 'forbidden', 'moderation needs a moderator or admin token', { ref: msg.ref });
    try {
      const r = await deps.moderate(c.eventId, msg, c.viewer!);
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
    if (!deps.overlays) return undefined;
    try {
      return await deps.overlays(eventId);
    } catch (err) {
      logger.warn({ eventId, err: (err as Error).message }, 'reading active overlays failed; welcome goes without them');
      return undefined;
    }
  };

  /** Joins the room: with a token as that viewer, without one as a read-only watcher (sees and counts, cannot post). */
  const onHello = async (c: Conn, msg: Extract<ClientMessage, { type: 'hello' }>) => {
    const viewer = msg.token === undefined ? undefined : deps.tokens.verify(msg.token);
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
    const room = await openRoom(c.eventId);
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
    if (size > cfg.wsMaxMessageBytes) return sendError(c, 'message_too_large', `message is ${size} bytes; at most ${cfg.wsMaxMessageBytes}`);
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
        return sendError(c, 'token_required', 'watching only: pick a display name (POST /api/v1/viewers) and reconnect with its token to take part', { ref });
      }
      // What is acknowledged must reach the other clients before the 1001 close: nothing new is taken once stopping.
      if (stopping && msg.type !== 'ping') return sendError(c, 'chat_unavailable', 'server is shutting down; nothing was posted: reconnect and try again', { ref });
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
      sendError(c, 'internal', 'internal error', { ref });
    }
  };

  const onConnection = (ws: WebSocket, ip: string, eventId: string) => {
    const c = new Conn(ws, ip, eventId, cfg.wsMaxBufferedBytes, onSlow);
    conns.add(c);
    c.helloTimer = setTimeout(() => {
      if (!c.greeted) {
        sendError(c, 'hello_required', `no hello within ${helloTimeoutMs} ms`);
        closeConn(c, CloseCode.helloTimeout, 'hello timeout', 'hello_timeout');
      }
    }, helloTimeoutMs);
    ws.on('pong', () => (c.alive = true));
    ws.on('message', (data, isBinary) => {
      c.queue = c.queue.then(() => onMessage(c, data, isBinary));
    });
    ws.on('error', (err) => logger.debug({ ip, err: err.message }, 'ws error'));
    ws.on('close', () => {
      c.closed = true;
      clearTimeout(c.helloTimer);
      conns.delete(c);
      const room = c.room;
      if (room && room.members.delete(c) && room.members.size === 0) room.emptySince = Date.now();
    });
  };

  return {
    edgeId,
    connectionCount: () => conns.size,
    viewerCount: (eventId) => openRooms.get(eventId)?.room.viewers ?? 0,
    handleUpgrade(req, socket, head) {
      const url = new URL(req.url ?? '/', 'http://edge');
      if (url.pathname !== '/ws') return rejectUpgrade(socket, 404, 'not_found', 'WebSocket endpoint is /ws?event=<id>');
      if (stopping) return rejectUpgrade(socket, 503, 'unavailable', 'server is shutting down');
      const eventId = url.searchParams.get('event') ?? '';
      if (!EVENT_ID.test(eventId)) {
        m.rejected.inc({ reason: 'bad_event' });
        return rejectUpgrade(socket, 400, 'invalid_event', 'event must be an event id: /ws?event=<id>');
      }
      // Behind a trusted proxy (load balancer), the viewer's address; a header from anyone else is ignored.
      const ip = deps.trustedProxies.clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for']);
      if (socket.destroyed) return; // gone already: its 'close' may have passed, so no slot to give back
      const n = ipCounts.get(ip) ?? 0;
      if (n >= cfg.wsMaxConnectionsPerIp) {
        m.rejected.inc({ reason: 'ip_limit' });
        logger.debug({ ip }, 'websocket refused: too many connections from this address');
        return rejectUpgrade(socket, 429, 'too_many_connections', `at most ${cfg.wsMaxConnectionsPerIp} connections per address`, { 'retry-after': '10' });
      }
      // The slot is reserved before the lookup (parallel upgrades cannot slip past the cap) and belongs to the
      // socket: given back when it closes, however that happens (a handshake ws refuses, a failed lookup, a
      // client that leaves, or the WebSocket's end).
      ipCounts.set(ip, n + 1);
      socket.once('close', () => {
        const k = (ipCounts.get(ip) ?? 1) - 1;
        if (k <= 0) ipCounts.delete(ip);
        else ipCounts.set(ip, k);
      });
      deps.eventExists(eventId).then(
        (exists) => {
          if (!exists) {
            m.rejected.inc({ reason: 'unknown_event' });
            return rejectUpgrade(socket, 404, 'not_found', 'no event with that id');
          }
          if (socket.destroyed) return;
          wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, ip, eventId));
        },
        (err: Error) => {
          logger.error({ err: err.message }, 'event lookup failed');
          rejectUpgrade(socket, 503, 'unavailable', 'cannot look up the event right now');
        },
      );
    },
    async start() {
      stopping = false;
      timers.push(setInterval(flush, cfg.wsFlushMs));
      let reporting = false;
      timers.push(
        setInterval(() => {
          if (reporting) return;
          reporting = true;
          void reportPresence().finally(() => (reporting = false));
        }, cfg.wsViewerCountMs),
      );
      timers.push(setInterval(heartbeat, HEARTBEAT_MS));
      stopBusWatch = bus.onStateChange((up) => {
        for (const { room } of openRooms.values()) {
          room.setChatUp(up);
          if (up) resync(room);
        }
      });
    },
    async stop() {
      stopping = true;
      for (const t of timers.splice(0)) clearInterval(t);
      stopBusWatch?.();
      // Acknowledged comments reach the clients before they are told to go: finish the messages being handled,
      // take from the store what the rooms have not received yet (it may still be on the bus), flush, then close.
      const within = (p: Promise<unknown>, ms: number) => Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
      await within(Promise.allSettled([...conns].map((c) => c.queue)), 2_000);
      await within(
        Promise.allSettled(
          [...openRooms.values()].map(({ room }) => {
            catchUp(room);
            return room.chain;
          }),
        ),
        2_000,
      );
      flush();
      for (const c of conns) closeConn(c, CloseCode.goingAway, 'server shutting down', 'shutdown');
      const deadline = Date.now() + 2_000;
      while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of conns) c.ws.terminate();
      for (const eventId of [...openRooms.keys()]) closeRoom(eventId);
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
