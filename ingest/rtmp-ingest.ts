// RTMP ingest: node-media-server's RTMP protocol stack behind our own listener, with async stream-key auth,
// one publisher per event, and each accepted publish piped as an FLV byte stream into a FeedSink.
//
// We embed node-media-server (NMS) 4.4.3 through deep imports of its RtmpSession and BroadcastServer, not
// its NodeMediaServer class: that one also starts HTTP, a store, a rate sampler and relay/record servers, and
// calls process.exit(1) when its port is taken. Our own net.Server owns the port and the sockets; per
// connection we replace NMS's protocol callbacks so that:
//  - the stream key never becomes an NMS stream path (paths are `/live/<eventId>`), so NMS never logs it;
//  - authorization is async and happens before NMS's postPublish (media arriving meanwhile is buffered and
//    replayed), so a rejected session never becomes a publisher nor enters NMS's 30 s "reconnecting" grace;
//  - when a publisher goes away its publish is finished at once (grace skipped), so a returning publisher is
//    a fresh publish (new feeds.open(), no timestamp shifting) and never blocked by a dead one;
//  - NetStream.Publish.Start goes out only once the key is authorized and the event claimed (NMS sends it as
//    soon as the publish command arrives), so a wrong key never sees a publish start;
//  - what a connection can make us allocate is bounded before anything is known about it: message sizes
//    (NMS allocates a message's declared length up front) and chunk streams are capped, tighter until live;
//  - from a trusted proxy (config.trustedProxies) a PROXY protocol header may name the client's address.
// NMS keeps process-wide state (Context, its logger): only one RTMP ingest can run per process at a time.
import { createServer, type Server, type Socket } from 'node:net';
import RtmpSession from 'node-media-server/src/session/rtmp_session.js';
import BroadcastServer from 'node-media-server/src/server/broadcast_server.js';
import Context from 'node-media-server/src/core/context.js';
import nmsLogger from 'node-media-server/src/core/logger.js';
import type AVPacket from 'node-media-server/src/core/avpacket.js';
import type { Config } from '../config/schema.ts';
import { TrustedProxies, normalizeAddress } from '../lib/client-address.ts';
import { ProxyHeaderReader, parseProxyHeader } from './proxy-protocol.ts';
import { ingestMetrics } from './metrics.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { FeedRefusal, type IngestDeps, type LiveFeed } from './feed.ts';
import { createPublisherRegistry, type PublisherClaim } from './publishers.ts';
import { FlvStats } from './flv-stats.ts';
import { SourceCheck } from './source-check.ts';

/** The only RTMP application accepted: rtmp://host:port/live/<streamKey>. */
const APP = 'live';
/** How long authorize() may take before the publisher is rejected. */
const AUTH_TIMEOUT_MS = 5_000;
/** Media a publisher may send while its key is being checked (buffered, then replayed). */
const AUTH_BUFFER_MAX_BYTES = 16 * 1024 * 1024;
/** A connection silent this long is dropped (a dead publisher must not hold its event). */
const IDLE_TIMEOUT_MS = 10_000;
/** After a graceful close (status sent, FIN), the socket is destroyed if still open this much later. */
const CLOSE_GRACE_MS = 500;
/**
 * Largest message a connection may announce before its publish is accepted. connect/createStream/publish and
 * the control messages are a few hundred bytes; media is not expected before NetStream.Publish.Start.
 */
export const MAX_MESSAGE_BYTES_BEFORE_LIVE = 64 * 1024;
/** Largest message of a live publisher: a keyframe of a high-bitrate 4K stream is a few MB. */
export const MAX_MESSAGE_BYTES_LIVE = 8 * 1024 * 1024;
/** Chunk streams a connection may open (each keeps its own message buffer); encoders use about five. */
export const MAX_CHUNK_STREAMS = 32;
/** RTMP's only version byte (C0) that NMS speaks. */
const RTMP_VERSION = 3;
/** Marks NMS's process-wide Context as in use by a running ingest. */
const OWNER = Symbol.for('onair.rtmp-ingest.owner');

/** AMF0 string "@setDataFrame": RTMP publishers prefix their metadata with it; FLV files must not. */
const SET_DATA_FRAME = Buffer.from([0x02, 0x00, 0x0d, ...Buffer.from('@setDataFrame', 'latin1')]);

/** NMS forwards RTMP's "@setDataFrame onMetaData {…}" script tags as is; FLV readers expect "onMetaData {…}". */
function flvScriptTagFixed(tag: Buffer): Buffer {
  if (tag[0] !== 18 || !tag.subarray(11, 11 + SET_DATA_FRAME.length).equals(SET_DATA_FRAME)) return tag;
  const body = tag.subarray(11 + SET_DATA_FRAME.length, tag.length - 4);
  const out = Buffer.alloc(11 + body.length + 4);
  tag.copy(out, 0, 0, 11);
  out.writeUIntBE(body.length, 1, 3);
  body.copy(out, 11);
  out.writeUInt32BE(11 + body.length, 11 + body.length);
  return out;
}

/** Why a publish attempt was refused (label of onair_ingest_rejected_total). */
export type RtmpRejectReason =
  | 'bad_app'
  | 'bad_stream_name'
  | 'unknown_key'
  | 'rate_limited'
  | 'already_live'
  | 'auth_error'
  | 'auth_timeout'
  | 'auth_buffer_overflow'
  | 'play_not_allowed'
  | 'protocol'
  | 'malformed'
  | 'too_large'
  | 'feed_error'
  | 'unusable_source';

/** A connection broke a rule of ours while NMS parsed its bytes; thrown inside the parser, caught by its wrapper. */
class RtmpViolation extends Error {
  constructor(
    readonly reason: 'malformed' | 'too_large',
    message: string,
  ) {
    super(message);
  }
}

/** What the RTMP ingest needs from its parent. */
export interface RtmpIngestDeps extends IngestDeps {
  config: Config;
}

/** A running RTMP ingest. */
export interface RtmpIngest {
  /** Binds config.host:config.rtmpPort; rejects if the port is unavailable or another ingest runs in this process. */
  start(): Promise<void>;
  /** Ends every publish (feed.end()), closes all connections and the listener. */
  stop(): Promise<void>;
  /** The bound port once started (config.rtmpPort before). */
  readonly port: number;
  /** Closes the current publisher of `eventId` (its feed ends now); false if none is live. */
  disconnect(eventId: string): boolean;
  /** True while `eventId` has an RTMP publisher. */
  isLive(eventId: string): boolean;
}

type ConnState = 'connecting' | 'authorizing' | 'live' | 'closing' | 'closed';

/** One RTMP connection and what we know about it. */
interface Connection {
  readonly session: RtmpSession;
  readonly socket: Socket;
  /** The client's address: the socket's peer, or what a trusted proxy's PROXY header says. */
  remoteAddress: string;
  state: ConnState;
  app?: string;
  /** Kept only to redact it from NMS log lines; never logged. */
  streamKey?: string;
  pending: AVPacket[];
  pendingBytes: number;
  lastDataAt: number;
  closeReason?: string;
  publish?: Publish;
}

/** One accepted publish session. */
interface Publish {
  readonly eventId: string;
  readonly conn: Connection;
  readonly feed: LiveFeed;
  /** This publish's hold on its event (ingest/publishers.ts). */
  readonly claim: PublisherClaim;
  readonly broadcast: BroadcastServer;
  readonly subscriber: { id: string; ip: string; protocol: string; streamPath: string; endTime: number; sendBuffer(b: Buffer): void };
  bytes: number;
  ended: boolean;
  readonly stats: FlvStats;
  /** Whether the origin can use the media (codecs, any media at all). */
  readonly check: SourceCheck;
}

/** Maps NMS log levels to pino's; NMS `info` is per-session chatter, so it goes to debug. */
const nmsLevels: Record<string, 'trace' | 'debug' | 'warn'> = {
  trace: 'trace',
  debug: 'debug',
  info: 'debug',
  warn: 'warn',
  error: 'warn',
};

/** Creates the RTMP ingest (node-media-server embedded); call start() to listen. */
export function createRtmpIngest(deps: RtmpIngestDeps): RtmpIngest {
  const { config, registry, feeds } = deps;
  const log = deps.logger.child({ component: 'rtmp-ingest' });
  const nmsLog = deps.logger.child({ component: 'node-media-server' });

  const { publishes, rejected, active, bytes: bytesTotal } = ingestMetrics(registry);

  const keyGuesses = deps.keyGuesses ?? createKeyGuessLimiter();
  const publishers = deps.publishers ?? createPublisherRegistry();
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  const connections = new Set<Connection>();
  const live = new Map<string, Publish>();
  let server: Server | undefined;
  let boundPort = config.rtmpPort;
  let healthTimer: NodeJS.Timeout | undefined;
  let sourceTimer: NodeJS.Timeout | undefined;

  function reportHealth(): void {
    for (const [eventId, p] of live) {
      const s = p.conn.session as unknown as { videoWidth?: number; videoHeight?: number };
      try {
        deps.onHealth?.(eventId, p.stats.take({ width: s.videoWidth, height: s.videoHeight }));
      } catch (err) {
        log.error({ err, eventId }, 'health report failed');
      }
    }
  }

  const ctx = Context as unknown as Record<symbol, unknown>;

  function redact(message: string): string {
    let out = message;
    for (const c of connections) if (c.streamKey) out = out.split(c.streamKey).join('[redacted]');
    return out;
  }

  function installNmsLogger(): void {
    nmsLogger.log = (message: string, level = 'info') => {
      nmsLog[nmsLevels[level] ?? 'debug'](redact(String(message)));
    };
  }

  function restoreNmsLogger(): void {
    // `log` lives on NMS Logger's prototype; removing our own property restores it.
    delete (nmsLogger as { log?: unknown }).log;
  }

  /** Sends what we have (FIN after pending writes), destroys the socket if the peer lingers. */
  function closeSocket(socket: Socket): void {
    if (socket.destroyed) return;
    socket.end();
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  function reject(conn: Connection, reason: RtmpRejectReason, eventId?: string): void {
    if (conn.state === 'closing' || conn.state === 'closed') return;
    conn.state = 'closing';
    conn.closeReason = reason;
    conn.pending = [];
    conn.pendingBytes = 0;
    rejected.inc({ protocol: 'rtmp', reason });
    log.warn({ eventId, sessionId: conn.session.id, remoteAddress: conn.remoteAddress, reason }, 'rtmp publish rejected');
    const code = reason === 'already_live' || reason === 'bad_app' ? 'NetStream.Publish.BadName' : 'NetStream.Publish.Denied';
    try {
      conn.session.rtmp.sendStatusMessage(conn.session.rtmp.streamId, 'error', code, `publish rejected: ${reason}`);
    } catch {
      // the socket may already be gone
    }
    closeSocket(conn.socket);
  }

  /** Drops a connection that sent bytes NMS cannot parse, or too big for us; other connections are unaffected. */
  function malformed(conn: Connection, err: unknown): void {
    const eventId = conn.publish?.eventId;
    const reason = err instanceof RtmpViolation ? err.reason : 'malformed';
    log.warn(
      { eventId, sessionId: conn.session.id, remoteAddress: conn.remoteAddress, reason, error: (err as Error).message },
      reason === 'too_large' ? 'RTMP message too large, closing connection' : 'malformed RTMP, closing connection',
    );
    conn.closeReason = reason === 'too_large' ? 'RTMP message too large' : 'malformed RTMP';
    if (conn.publish) finish(conn.publish, conn.closeReason);
    else if (conn.state === 'authorizing' || conn.state === 'connecting') rejected.inc({ protocol: 'rtmp', reason });
    conn.state = 'closing';
    conn.pending = [];
    conn.socket.destroy();
  }

  /** Ends a publish exactly once: NMS publish finished (no grace), our subscriber removed, feed ended. */
  function finish(publish: Publish, why: string): void {
    if (publish.ended) return;
    publish.ended = true;
    const { conn, broadcast, eventId } = publish;
    if (conn.state === 'live') conn.state = 'closing';
    if (live.get(eventId) === publish) live.delete(eventId);
    publish.claim.release();
    if (broadcast.publisher === conn.session) broadcast._finishPublish();
    broadcast.donePlay(publish.subscriber);
    active.dec({ protocol: 'rtmp' });
    try {
      publish.feed.end();
    } catch (err) {
      log.error({ err, eventId }, 'feed end failed');
    }
    log.info(
      { eventId, sessionId: conn.session.id, remoteAddress: conn.remoteAddress, bytes: publish.bytes, reason: why },
      'rtmp publish ended',
    );
  }

  /** Ends a publish whose media the origin cannot use, telling the publisher (onStatus), the log and the parent why. */
  function refuseSource(publish: Publish, reason: string): void {
    if (publish.ended) return;
    const { conn, eventId } = publish;
    rejected.inc({ protocol: 'rtmp', reason: 'unusable_source' });
    log.warn({ eventId, sessionId: conn.session.id, remoteAddress: conn.remoteAddress, why: reason }, 'rtmp source refused');
    try {
      conn.session.rtmp.sendStatusMessage(conn.session.rtmp.streamId, 'error', 'NetStream.Publish.Rejected', `source refused: ${reason}`);
    } catch {
      // the socket may already be gone
    }
    finish(publish, 'source refused');
    closeSocket(conn.socket);
    try {
      deps.onSourceRefused?.(eventId, reason);
    } catch (err) {
      log.error({ err, eventId }, 'source refusal report failed');
    }
  }

  async function accept(conn: Connection, eventId: string, claim: PublisherClaim): Promise<void> {
    const { session } = conn;
    const streamPath = `/${APP}/${eventId}`;
    session.streamName = eventId;
    session.streamPath = streamPath;
    session.streamQuery = {};
    const existing = Context.broadcasts.get(streamPath);
    // Defensive: a publish left in NMS's grace state would turn this publish into a "resume".
    if (existing && existing.getPublishStatus() === 'reconnecting') existing._finishPublish();
    const broadcast = Context.broadcasts.get(streamPath) ?? new BroadcastServer(streamPath);
    Context.broadcasts.set(streamPath, broadcast);
    session.broadcast = broadcast;
    session.onPush();
    if (!session.isPublisher) {
      claim.release();
      reject(conn, 'already_live', eventId);
      return;
    }
    // Media arriving while the feed opens (cluster: the event is being placed on origins) is buffered in
    // conn.pending, as during the key check: the state stays 'authorizing' until the feed is there.
    let feed: LiveFeed;
    try {
      feed = await feeds.open(eventId, { protocol: 'rtmp', sessionId: session.id, remoteAddress: conn.remoteAddress });
    } catch (err) {
      if (err instanceof FeedRefusal) log.warn({ eventId, reason: err.code, why: err.message }, 'feed refused');
      else log.error({ err, eventId }, 'feed open failed');
      claim.release();
      if (broadcast.publisher === session) broadcast._finishPublish();
      reject(conn, 'feed_error', eventId);
      return;
    }
    if (conn.state !== 'authorizing' || !claim.held) {
      // Went away, or was rejected or taken over, while the feed opened.
      log.info({ eventId, sessionId: session.id, remoteAddress: conn.remoteAddress }, 'rtmp publisher left while its feed opened');
      claim.release();
      if (broadcast.publisher === session) broadcast._finishPublish();
      try {
        feed.end();
      } catch (err) {
        log.error({ err, eventId }, 'feed end failed');
      }
      return;
    }
    const publish: Publish = {
      eventId,
      conn,
      feed,
      claim,
      broadcast,
      bytes: 0,
      ended: false,
      stats: new FlvStats('rtmp'),
      check: new SourceCheck(),
      subscriber: {
        id: `onair-feed-${session.id}`,
        ip: '', // empty ip: an internal subscriber (no NMS play events, no auth)
        protocol: 'flv',
        streamPath,
        endTime: 0,
        // Called once per FLV header or tag.
        sendBuffer: (buffer: Buffer) => {
          if (publish.ended) return;
          const chunk = flvScriptTagFixed(buffer);
          publish.bytes += chunk.length;
          publish.stats.observe(chunk);
          const unusable = publish.check.observe(chunk);
          if (unusable) {
            // Not from inside NMS's fan-out loop (finishing takes this subscriber off the broadcast).
            setImmediate(() => refuseSource(publish, unusable));
            return;
          }
          bytesTotal.inc({ protocol: 'rtmp' }, chunk.length);
          try {
            feed.write(chunk);
          } catch (err) {
            log.error({ err, eventId }, 'feed write failed; disconnecting publisher');
            finish(publish, 'feed_error');
            closeSocket(conn.socket);
          }
        },
      },
    };
    conn.publish = publish;
    live.set(eventId, publish);
    publishes.inc({ protocol: 'rtmp' });
    active.inc({ protocol: 'rtmp' });
    log.info({ eventId, sessionId: session.id, remoteAddress: conn.remoteAddress }, 'rtmp publish started');
    // The publisher learns it is on air only now (NMS's own Publish.Start was withheld in onConnection).
    session.rtmp.sendStatusMessage(session.rtmp.streamId, 'status', 'NetStream.Publish.Start', 'Publishing started.');
    // FLV header (+ metadata/sequence headers/GOP if any), then what arrived while authorizing, then live tags.
    broadcast.postPlay(publish.subscriber);
    conn.state = 'live';
    const pending = conn.pending;
    conn.pending = [];
    conn.pendingBytes = 0;
    for (const packet of pending) {
      if (conn.state !== 'live') break;
      session.onPacket(packet);
    }
  }

  /**
   * Claims `eventId` for `conn` (the node's one-publisher-per-event rule, ingest/publishers.ts): a current
   * publisher, of any protocol, that sends anything after `conn` arrived keeps the event and `conn` is rejected
   * (already_live); one silent for STALE_PUBLISHER_MS (e.g. a hung encoder whose TCP connection is still open)
   * is closed and `conn` takes over. Resolves the claim when `conn` may be accepted now.
   */
  async function claimEvent(conn: Connection, eventId: string): Promise<PublisherClaim | undefined> {
    const result = await publishers.claim(
      eventId,
      {
        protocol: 'rtmp',
        lastActiveAt: () => conn.lastDataAt,
        evict: (silentMs) => {
          const current = conn.publish;
          log.warn({ eventId, sessionId: conn.session.id, remoteAddress: conn.remoteAddress, silentMs }, 'replacing a stalled publisher');
          if (current) finish(current, 'stalled, replaced by a new publisher');
          conn.socket.destroy();
        },
      },
      () => conn.state === 'authorizing',
    );
    if (result.ok) return result.claim;
    if (result.reason === 'already_live') reject(conn, 'already_live', eventId);
    return undefined;
  }

  async function onPublish(conn: Connection): Promise<void> {
    if (conn.state !== 'connecting') {
      reject(conn, 'protocol');
      return;
    }
    conn.state = 'authorizing';
    if (conn.app !== APP) return reject(conn, 'bad_app');
    if ((await keyGuesses.blockedFor(conn.remoteAddress)) !== undefined) return reject(conn, 'rate_limited');
    if (conn.state !== 'authorizing') return; // went away meanwhile
    const key = conn.streamKey;
    if (!key || key.length > 512) {
      await keyGuesses.failed(conn.remoteAddress);
      return reject(conn, 'bad_stream_name');
    }
    const timer = setTimeout(() => reject(conn, 'auth_timeout'), AUTH_TIMEOUT_MS);
    timer.unref();
    let eventId: string | undefined;
    try {
      eventId = await deps.authorize(key);
    } catch (err) {
      log.error({ err, sessionId: conn.session.id, remoteAddress: conn.remoteAddress }, 'stream key check failed');
      if (conn.state === 'authorizing') reject(conn, 'auth_error');
      return;
    } finally {
      clearTimeout(timer);
    }
    if (conn.state !== 'authorizing') return; // went away, or timed out, while we waited
    if (!eventId) {
      await keyGuesses.failed(conn.remoteAddress);
      return reject(conn, 'unknown_key');
    }
    const claim = await claimEvent(conn, eventId);
    if (!claim) return;
    await accept(conn, eventId, claim);
  }

  function onConnection(socket: Socket): void {
    const session = new RtmpSession(socket);
    const conn: Connection = {
      session,
      socket,
      remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
      state: 'connecting',
      pending: [],
      pendingBytes: 0,
      lastDataAt: Date.now(),
    };
    connections.add(conn);
    session.run();
    Context.sessions.set(session.id, session);
    const { rtmp } = session;
    // Only a trusted proxy may put a PROXY header first; from it the header is optional.
    let proxyHeader = trustedProxies.trusts(conn.remoteAddress) ? new ProxyHeaderReader() : undefined;
    let handshakeStarted = false;
    // NMS's parser throws on some malformed input (e.g. bad AMF), which would crash the process.
    const parse = rtmp.parserData.bind(rtmp);
    rtmp.parserData = (data) => {
      if (conn.state === 'closing' || conn.state === 'closed') return null;
      try {
        let bytes = data;
        if (proxyHeader) {
          const r = proxyHeader.push(data);
          if (r.kind === 'incomplete') return null;
          if (r.kind === 'invalid') throw new RtmpViolation('malformed', `bad PROXY protocol header: ${r.reason}`);
          proxyHeader = undefined;
          if (r.kind === 'header' && r.header.command === 'proxy' && r.header.source) {
            conn.remoteAddress = normalizeAddress(r.header.source.address);
            session.ip = `${conn.remoteAddress}:${r.header.source.port}`;
          }
          bytes = r.rest;
          if (bytes.length === 0) return null;
        }
        if (!handshakeStarted) {
          handshakeStarted = true;
          if (parseProxyHeader(bytes).kind !== 'none')
            throw new RtmpViolation('malformed', 'PROXY protocol header from a peer that is not a trusted proxy');
          if (bytes[0] !== RTMP_VERSION) throw new RtmpViolation('malformed', `not an RTMP handshake (version byte ${bytes[0]})`);
        }
        return parse(bytes);
      } catch (err) {
        malformed(conn, err);
        return null;
      }
    };
    // NMS sends NetStream.Publish.Start on the publish command, before any key check: accept() sends it.
    rtmp.respondPublish = () => {};
    // NMS allocates each message's declared length (up to 16 MiB) before its payload arrives, per chunk stream.
    const parseChunkHeader = rtmp.packetParse.bind(rtmp);
    rtmp.packetParse = () => {
      parseChunkHeader();
      if (rtmp.inPackets.size > MAX_CHUNK_STREAMS) throw new RtmpViolation('malformed', `more than ${MAX_CHUNK_STREAMS} chunk streams`);
    };
    const allocPayload = rtmp.packetAlloc.bind(rtmp);
    rtmp.packetAlloc = () => {
      const { length } = rtmp.parserPacket.header;
      const max = conn.state === 'live' ? MAX_MESSAGE_BYTES_LIVE : MAX_MESSAGE_BYTES_BEFORE_LIVE;
      if (length > max) {
        const when = conn.state === 'live' ? '' : ' before the publish is accepted';
        throw new RtmpViolation('too_large', `a ${length}-byte message, over the ${max}-byte limit${when}`);
      }
      allocPayload();
    };
    // A chunk size of 0 (or with the high bit set, which RTMP forbids) would stall NMS's parser for good.
    const control = rtmp.controlHandler.bind(rtmp);
    rtmp.controlHandler = () => {
      control();
      if (!(rtmp.inChunkSize >= 1 && rtmp.inChunkSize <= 0x7fffffff))
        throw new RtmpViolation('malformed', `chunk size ${rtmp.inChunkSize} out of range`);
    };
    // NMS's onConnect would register a broadcast under /live/<streamKey>; we only note app and key.
    rtmp.onConnectCallback = (req) => {
      conn.app = req.app;
      conn.streamKey = req.name;
      session.streamApp = req.app;
      session.streamHost = req.host;
    };
    rtmp.onPushCallback = () => {
      void onPublish(conn);
    };
    rtmp.onPlayCallback = () => reject(conn, 'play_not_allowed');
    rtmp.onPacketCallback = (packet) => {
      if (conn.state === 'live') {
        session.onPacket(packet);
      } else if (conn.state === 'authorizing') {
        // NMS reuses the parser's buffer for the next message: keep a copy.
        packet.data = Buffer.from(packet.data.subarray(0, packet.size));
        conn.pending.push(packet);
        conn.pendingBytes += packet.size;
        if (conn.pendingBytes > AUTH_BUFFER_MAX_BYTES) reject(conn, 'auth_buffer_overflow');
      }
    };
    socket.on('data', () => {
      conn.lastDataAt = Date.now();
    });
    socket.setTimeout(IDLE_TIMEOUT_MS);
    socket.on('timeout', () => {
      conn.closeReason = 'idle';
      log.warn(
        { eventId: conn.publish?.eventId, sessionId: session.id, remoteAddress: conn.remoteAddress },
        'rtmp connection idle, closing',
      );
      socket.destroy();
    });
    // Registered after session.run(): runs after NMS's own onClose.
    socket.on('close', () => {
      const wasAuthorizing = conn.state === 'authorizing';
      conn.state = 'closed';
      conn.pending = [];
      connections.delete(conn);
      if (conn.publish) finish(conn.publish, conn.closeReason ?? 'publisher disconnected');
      // Never leave a session of ours in NMS's reconnect grace.
      if (session.isPublisher && session.broadcast.publisher === session) session.broadcast._finishPublish();
      if (wasAuthorizing) log.info({ sessionId: session.id, remoteAddress: conn.remoteAddress }, 'rtmp publisher left during key check');
    });
  }

  return {
    get port() {
      return boundPort;
    },

    async start() {
      if (server) throw new Error('RTMP ingest already started');
      if (ctx[OWNER]) {
        throw new Error('another RTMP ingest is running in this process (node-media-server keeps process-wide state): stop it first');
      }
      ctx[OWNER] = true;
      Context.config = {}; // no NMS auth, relay, record or notify settings
      installNmsLogger();
      const srv = createServer(onConnection);
      try {
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(config.rtmpPort, config.host, () => {
            srv.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        restoreNmsLogger();
        delete ctx[OWNER];
        const e = err as NodeJS.ErrnoException;
        const why = e.code === 'EADDRINUSE' ? 'port already in use' : e.message;
        throw new Error(`RTMP ingest cannot listen on ${config.host}:${config.rtmpPort}: ${why}`, { cause: err });
      }
      srv.on('error', (err) => log.error({ err }, 'rtmp server error'));
      const address = srv.address();
      boundPort = typeof address === 'object' && address ? address.port : config.rtmpPort;
      server = srv;
      if (deps.onHealth) {
        healthTimer = setInterval(reportHealth, config.healthIntervalSec * 1000);
        healthTimer.unref();
      }
      sourceTimer = setInterval(() => {
        for (const p of [...live.values()]) {
          const reason = p.check.overdue();
          if (reason) refuseSource(p, reason);
        }
      }, 1000);
      sourceTimer.unref();
      log.info({ host: config.host, port: boundPort }, 'rtmp ingest listening');
    },

    async stop() {
      const srv = server;
      if (!srv) return;
      server = undefined;
      clearInterval(healthTimer);
      healthTimer = undefined;
      clearInterval(sourceTimer);
      sourceTimer = undefined;
      for (const publish of [...live.values()]) finish(publish, 'ingest stopping');
      const closed: Promise<unknown>[] = [new Promise<void>((resolve) => srv.close(() => resolve()))];
      for (const conn of connections) {
        closed.push(new Promise((resolve) => conn.socket.once('close', resolve)));
        conn.socket.destroy();
      }
      await Promise.all(closed); // NMS's own close handlers (and their log lines) have run

      restoreNmsLogger();
      delete ctx[OWNER];
      log.info({ port: boundPort }, 'rtmp ingest stopped');
    },

    disconnect(eventId) {
      const publish = live.get(eventId);
      if (!publish) return false;
      publish.conn.closeReason = 'disconnected';
      finish(publish, 'disconnected');
      closeSocket(publish.conn.socket);
      return true;
    },
    isLive: (eventId) => live.has(eventId),
  };
}
