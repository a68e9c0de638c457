// The viewer WebSocket gateway (`GET /ws?event=<id>`): chat, reactions, likes, viewer counts, moderation and operator
// signals (news flashes, disclaimer, ad breaks), fanned out through the bus and flushed to clients in batches
// (one frame per client per window, serialized once per room). This file takes the upgrades (per-address limits),
// keeps the connections (hello timeout, heartbeat) and runs the timers; rooms.ts owns the rooms and their flush,
// handlers.ts what each client message does.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../lib/logger.ts';
import type { TrustedProxies } from '../lib/client-address.ts';
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts';
import type { Bus } from '../lib/bus/bus.ts';
import type { Presence } from '../lib/bus/presence.ts';
import type { RateLimiter } from '../lib/rate-limit/token-bucket.ts';
import type { Service } from '../lib/lifecycle.ts';
import type { ChatSettings } from './channel.ts';
import type { ViewerIdentity } from './viewer-tokens.ts';
import type { ViewerOverlays } from './viewer-signals.ts';
import { CloseCode, type ErrorCode } from './protocol.ts';
import { Conn } from './connection.ts';
import { Rooms, type RoomsStore } from './rooms.ts';
import { createHandlers, type HandlersSettings, type HandlersStore } from './handlers.ts';

/** The chat store as the gateway uses it (chat/comments.ts CommentStore fits): what its rooms and handlers read and write. */
export interface GatewayChatStore extends RoomsStore, HandlersStore {}

/** Gateway settings (config/schema.ts names): the handlers' and its own. */
export interface GatewaySettings extends HandlersSettings {
  wsViewerCountMs: number;
  wsMaxConnectionsPerIp: number;
  wsMaxBufferedBytes: number;
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

/** The gateway: hand it HTTP upgrades for `/ws`. Creating it starts nothing (no timer, no listener). */
export interface WsGateway extends Service {
  /** Handles an HTTP upgrade; answers non-/ws paths with 404. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** This edge's id. */
  readonly edgeId: string;
  /** Connected clients (joined or not). */
  connectionCount(): number;
  /** Viewers of an event across edges (last presence total; 0 when no one watches on this edge). */
  viewerCount(eventId: string): number;
  /** Starts the flush, presence and heartbeat timers and watches the bus. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops taking messages, delivers what was acknowledged, closes every client (1001) and the rooms. */
  stop(): Promise<void>;
}

const HEARTBEAT_MS = 30_000;
const EVENT_ID = /^[A-Za-z0-9_-]{6,64}$/;

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
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: cfg.wsMaxMessageBytes * 16,
    perMessageDeflate: false,
    clientTracking: false,
  });
  // Handshakes ws refuses (no key, bad version, another Upgrade) get the documented JSON error; its messages are fixed texts.
  wss.on('wsClientError', (err, socket) => {
    m.rejected.inc({ reason: 'bad_handshake' });
    rejectUpgrade(socket, 400, 'bad_handshake', `not a WebSocket handshake: ${err.message}`, { 'sec-websocket-version': '13' });
  });
  const conns = new Set<Conn>();
  const ipCounts = new Map<string, number>();
  const timers: ReturnType<typeof setInterval>[] = [];
  let stopBusWatch: (() => void) | undefined;
  let stopping = false;

  const m = {
    connections: new Gauge({
      name: 'onair_ws_connections',
      help: 'Open viewer WebSocket connections',
      registers: [deps.registry],
      collect() {
        this.set(conns.size);
      },
    }),
    rooms: new Gauge({
      name: 'onair_ws_rooms',
      help: 'Events with chat rooms open on this edge',
      registers: [deps.registry],
      collect() {
        this.set(rooms.size);
      },
    }),
    frames: new Counter({ name: 'onair_ws_batch_frames_total', help: 'Batch frames delivered to clients', registers: [deps.registry] }),
    comments: new Counter({
      name: 'onair_ws_comments_total',
      help: 'Comments accepted (stored and acknowledged) on this edge',
      registers: [deps.registry],
    }),
    errors: new Counter({
      name: 'onair_ws_errors_total',
      help: 'Error messages sent to clients, by code',
      labelNames: ['code'],
      registers: [deps.registry],
    }),
    closed: new Counter({
      name: 'onair_ws_closed_total',
      help: 'Connections closed by the gateway, by reason',
      labelNames: ['reason'],
      registers: [deps.registry],
    }),
    flush: new Histogram({
      name: 'onair_ws_flush_seconds',
      help: 'Time to build and write one flush across all rooms',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [deps.registry],
    }),
    rejected: new Counter({
      name: 'onair_ws_upgrades_rejected_total',
      help: 'WebSocket upgrades refused, by reason',
      labelNames: ['reason'],
      registers: [deps.registry],
    }),
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

  const rooms = new Rooms<Conn>({
    logger,
    bus,
    presence: deps.presence,
    store,
    edgeId,
    viewerCountMs: cfg.wsViewerCountMs,
    onViewerCount: deps.onViewerCount,
    banned: (c) => {
      sendError(c, 'banned', 'you are banned from this chat');
      closeConn(c, CloseCode.banned, 'banned', 'banned');
    },
    metrics: m,
  });
  const handlers = createHandlers({
    settings: cfg,
    logger,
    bus,
    limiter,
    tokens: deps.tokens,
    store,
    rooms,
    moderate: deps.moderate,
    overlays: deps.overlays,
    stopping: () => stopping,
    sendError,
    closeConn,
    metrics: m,
  });

  // ---- connections ---------------------------------------------------------------------------------------------

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
      c.queue = c.queue.then(() => handlers.onMessage(c, data, isBinary));
    });
    ws.on('error', (err) => logger.debug({ ip, err: err.message }, 'ws error'));
    ws.on('close', () => {
      c.closed = true;
      clearTimeout(c.helloTimer);
      conns.delete(c);
      if (c.room) rooms.leave(c.room, c);
    });
  };

  return {
    edgeId,
    connectionCount: () => conns.size,
    viewerCount: (eventId) => rooms.viewerCount(eventId),
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
        return rejectUpgrade(socket, 429, 'too_many_connections', `at most ${cfg.wsMaxConnectionsPerIp} connections per address`, {
          'retry-after': '10',
        });
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
      timers.push(setInterval(() => rooms.flush(), cfg.wsFlushMs));
      let reporting = false;
      timers.push(
        setInterval(() => {
          if (reporting) return;
          reporting = true;
          void rooms.reportPresence().finally(() => (reporting = false));
        }, cfg.wsViewerCountMs),
      );
      timers.push(setInterval(heartbeat, HEARTBEAT_MS));
      stopBusWatch = bus.onStateChange((up) => rooms.setBusUp(up));
    },
    async stop() {
      stopping = true;
      for (const t of timers.splice(0)) clearInterval(t);
      stopBusWatch?.();
      // Acknowledged comments reach the clients before they are told to go: finish the messages being handled,
      // take from the store what the rooms have not received yet (it may still be on the bus), flush, then close.
      const within = (p: Promise<unknown>, ms: number) => Promise.race([p, new Promise((r) => setTimeout(r, ms).unref())]);
      await within(Promise.allSettled([...conns].map((c) => c.queue)), 2_000);
      await within(rooms.catchUpAll(), 2_000);
      rooms.flush();
      for (const c of conns) closeConn(c, CloseCode.goingAway, 'server shutting down', 'shutdown');
      const deadline = Date.now() + 2_000;
      while (conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const c of conns) c.ws.terminate();
      rooms.closeAll();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}
