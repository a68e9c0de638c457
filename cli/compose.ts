// The one composition root: builds the services of the roles this process runs into one ServiceGroup, which starts
// them in order and stops them in reverse, so a start that fails half-way leaves nothing running. Building starts
// nothing; parts that take the database when they are built are built once the store is open (builtAtStart).
//   all (all-in-one): every role behind one HTTP port and the RTMP port;
//   origin: store, origin (HLS for edges on originPort), ingests; /healthz, /metrics and WHIP on httpPort;
//   edge: HLS edge workers, with the viewer WebSocket gateway in cluster mode (Redis and PostgreSQL).
import cluster from 'node:cluster';
import { availableParallelism, loadavg } from 'node:os';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express from 'express';
import type { Config, Role } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { AggregatorRegistry, createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { ServiceGroup, service, type Service, type StopErrorHandler } from '../lib/lifecycle.ts';
import { httpService } from '../lib/http.ts';
import { createStore, type Db, type Store } from '../lib/store/db.ts';
import { TrustedProxies } from '../lib/client-address.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';
import { createKeySealer } from '../lib/key-seal.ts';
import { loadServerSecret } from '../lib/server-secret.ts';
import { EventService, eventTiming } from '../control/events.ts';
import { timingOf } from '../config/timing.ts';
import { createControlPlane } from '../control/control-plane.ts';
import { OverlayService } from '../control/overlays.ts';
import { createViewerSignals } from '../chat/viewer-signals.ts';
import { readViewerOverlays } from '../control/viewer-overlays.ts';
import { createOrigin, type Origin } from '../origin/origin.ts';
import { checkFfmpeg } from '../origin/transcoder.ts';
import { withTimeline } from '../ingest/timeline.ts';
import { createIngests } from '../ingest/ingests.ts';
import { createFeedTaps, type FeedTaps } from '../ingest/feed-taps.ts';
import { createWhepPlayback } from '../ingest/whep-playback.ts';
import { createIngestCommandReceiver } from '../ingest/command-receiver.ts';
import { createOriginCommandReceiver } from '../origin/command-receiver.ts';
import { createHealthPublisher } from '../ingest/health-publisher.ts';
import { createEventStatusWriter } from '../control/event-status.ts';
import { createRealtimeBackend } from '../chat/backend.ts';
import { addControlNode } from './control-node.ts';
import type { RtmpIngest } from '../ingest/rtmp-ingest.ts';
import type { SrtIngest } from '../ingest/srt-ingest.ts';
import type { WhipIngest } from '../ingest/whip-ingest.ts';
import type { IngestDeps } from '../ingest/feed.ts';
import { createHlsEdge } from '../edge/hls-edge.ts';
import { RecordingService } from '../control/recordings.ts';
import type { RecordingHooks } from '../origin/recording/recorder.ts';
import { replayHandler } from '../origin/recording/replay.ts';
import { createStorage } from '../lib/storage/index.ts';
import { createChatRole, type ChatRole } from '../chat/role.ts';
import { createWhepRouter } from '../edge/whep-router.ts';
import { createOriginWhep } from './origin-whep.ts';
import { createAllInOneFront } from './all-in-one.ts';
import { addPool } from './pool.ts';
import { advertisedOriginUrl, checkClusterRoles, nodeIdOf, originCapacityOf, replicasOf } from './cluster-settings.ts';
import { createFeedForwarder } from '../ingest/feed-forwarder.ts';
import { createFeedReceiver, type FeedReceiver } from '../origin/feed-receiver.ts';
import { originHeartbeat } from '../lib/placement/origin-registry.ts';
import { createFlvTimelineShift } from '../ingest/timeline.ts';
import {
  RoleConfigError,
  allWorkersMetrics,
  createHttpFront,
  edgeHasChat,
  edgePeersFromEnv,
  edgePrimary,
  edgeWorkerCount,
  tuneServer,
} from './roles.ts';
import type { EdgePeers } from '../edge/peer-fetch.ts';

/** The services of one process, built and not started. */
export interface OnairNode extends Service {
  /** The roles it runs, comma-separated. */
  readonly role: string;
  /** The public HTTP port (the bound one once started). */
  readonly httpPort: number;
  /** The RTMP port of the roles that ingest (the bound one once started). */
  readonly rtmpPort: number | undefined;
  /** The SRT (UDP) port of the roles that ingest once started; undefined when SRT is off or before. */
  readonly srtPort: number | undefined;
  /** Where edges pull HLS from, for the roles that run an origin (set once started). */
  readonly originUrl: string | undefined;
  /** Every service's name in start order; those built from the open store (`stage/name`) are listed once started. */
  readonly services: readonly string[];
  /** Starts every service in order; rejects naming the one that failed, after stopping those that had started. */
  start(signal?: AbortSignal): Promise<void>;
}

/** Where services are added: a group, and the list of names in start order. */
interface Stage {
  add<S extends Service>(name: string, svc: S): S;
  /** A nested stage built when it starts (after the services added before it), e.g. from the open store. */
  later(name: string, build: (stage: Stage) => void): void;
  /** One service built when it starts, from what started before it (e.g. the origin's bound URL); the getter throws before. */
  deferred<S extends Service>(name: string, build: () => S): () => S;
}

/** A stage adding to `group` and listing each name in `names` where it starts: a nested stage's right after its own. */
function stageOf(group: ServiceGroup, names: string[], onStopError: StopErrorHandler, parent?: string): Stage {
  const record = (name: string): string => {
    if (parent === undefined) return (names.push(name), name);
    const full = `${parent}/${name}`;
    const last = names.findLastIndex((n) => n === parent || n.startsWith(`${parent}/`));
    names.splice(last + 1, 0, full);
    return full;
  };
  return {
    add(name, svc) {
      record(name);
      return group.add(name, svc);
    },
    deferred(name, build) {
      let built: ReturnType<typeof build> | undefined;
      record(name);
      group.add(
        name,
        service(
          async (signal) => {
            built = build();
            await built.start(signal);
          },
          async () => {
            await built?.stop();
          },
        ),
      );
      return () => {
        if (!built) throw new Error(`${name} has not started`);
        return built;
      };
    },
    later(name, build) {
      let built: ServiceGroup | undefined;
      const full = record(name);
      group.add(
        name,
        service(
          async (signal) => {
            built = new ServiceGroup(onStopError);
            build(stageOf(built, names, onStopError, full));
            await built.start(signal);
          },
          async () => {
            await built?.stop();
          },
        ),
      );
    },
  };
}

/** Builds the services of `config.role` for this process (throws RoleConfigError when the configuration cannot run it). */
export function composeNode(config: Config, logger: Logger): OnairNode {
  const onStopError: StopErrorHandler = (name, err) => logger.error({ service: name, err: (err as Error)?.message }, 'stop failed');
  const group = new ServiceGroup(onStopError);
  const names: string[] = [];
  const stage = stageOf(group, names, onStopError);
  const ports = composeRoles(stage, config, logger);
  return {
    role: roleName(config.role),
    get httpPort() {
      return ports.httpPort();
    },
    get rtmpPort() {
      return ports.rtmpPort?.();
    },
    get srtPort() {
      return ports.srtPort?.();
    },
    get originUrl() {
      return ports.originUrl?.();
    },
    services: names,
    async start(signal) {
      await group.start(signal);
      await ports.started?.();
    },
    stop: () => group.stop(),
  };
}

/** The role list of a process as one word for logs and /healthz: `all`, `edge`, `ingest,origin`. */
export function roleName(roles: readonly Role[]): string {
  return roles.join(',');
}

/** What the role list of `config` builds: all-in-one, an edge, or ingest + origin in one process (HLS for edges on originPort). */
function composeRoles(stage: Stage, config: Config, logger: Logger): RolePorts {
  const set = new Set(config.role);
  const exactly = (...want: Role[]) => set.size === want.length && want.every((r) => set.has(r));
  if (exactly('all')) return composeAll(stage, config, logger);
  if (exactly('edge')) return composeEdge(stage, config, logger);
  // Without the cluster secret, ingest + origin is one standalone transcoding node that edges list by URL.
  if (exactly('ingest', 'origin') && !config.clusterSecret) return composeOrigin(stage, config, logger);
  return composeCluster(stage, config, logger, set);
}

/** How a composed role tells its ports once started, and what it does once everything is up. */
interface RolePorts {
  httpPort(): number;
  rtmpPort?(): number;
  srtPort?(): number | undefined;
  originUrl?(): string;
  started?(): Promise<void> | void;
}

/** Checks ffmpeg before anything else starts: every role that ingests needs it. */
function ffmpegCheck(config: Config, logger: Logger): Service {
  return service(
    async () => {
      const version = await checkFfmpeg(config.ffmpegPath);
      logger.info({ ffmpeg: version }, 'ffmpeg found');
    },
    async () => {},
  );
}

/** The origin and the ingests that feed it; the caller adds the RTMP and SRT ingests last (they open public ports). */
function addOriginAndIngests(
  stage: Stage,
  deps: {
    config: Config;
    logger: Logger;
    registry: Registry;
    events: EventService;
    bindHost: string;
    onStatus(eventId: string, status: 'live' | 'offline'): void;
    /** Recordings of this origin's broadcasts (and their replay). */
    recordings: RecordingService;
    /** Taps the feeds for WHEP playback. */
    taps?: FeedTaps;
  } & Pick<IngestDeps, 'onHealth'>,
): { origin: Origin; rtmp: RtmpIngest; whip: WhipIngest; srt: SrtIngest } & Pick<
  ReturnType<typeof createIngests>,
  'publishers' | 'disconnect'
> {
  const { config, logger, registry, events } = deps;
  const origin = stage.add(
    'origin',
    createOrigin({
      config,
      logger,
      registry,
      bindHost: deps.bindHost,
      recording: { storage: deps.recordings.storage, hooks: deps.recordings.hooks() },
      parent: {
        onStatus: deps.onStatus,
        latencyMode: async (eventId) => (await events.byId(eventId))?.latencyMode ?? config.defaultLatencyMode,
        dvrWindowSec: async (eventId) => (await events.byId(eventId))?.dvrWindowSec ?? config.dvrWindowSec,
        ladderPreset: async (eventId) => (await events.byId(eventId))?.ladderPreset ?? null,
        timing: async (eventId) => eventTiming(await events.byId(eventId)),
      },
    }),
  );
  const { rtmp, whip, srt, publishers, disconnect } = createIngests({
    config,
    logger: logger.child({ role: 'ingest' }),
    registry,
    authorize: (k) => events.authorize(k),
    // Feeds reach the origin on the event's media timeline, numbered exactly as the cluster's forwarder numbers them.
    feeds: withTimeline(origin.feeds, { reconnectWindowSec: config.reconnectWindowSec }),
    ...(deps.onHealth ? { onHealth: deps.onHealth } : {}),
    onSourceRefused: sourceRefusalRecorder(events, logger),
    ...(deps.taps ? { taps: deps.taps } : {}),
  });
  stage.add('whip', whip);
  return { origin, rtmp, whip, srt, publishers, disconnect };
}

/**
 * Recording on a cluster origin: the shared storage (ONAIR_STORAGE_URL) only, and only the placement's first origin
 * records an event (the replicas' encodes are not byte-identical, so one writer keeps inits and segments of one
 * encode together). If that origin fails mid-broadcast, the recording stops there and its row stays `recording`
 * (what was stored replays): the known limit of this choice.
 */
function clusterRecording(
  db: Db,
  config: Config,
  logger: Logger,
  nodeId: string,
  placements: { get(eventId: string): Promise<{ origins: { id: string }[] } | undefined> },
): { storage: ReturnType<typeof createStorage>; hooks: RecordingHooks } {
  const recordings = new RecordingService(db, createStorage(config), config, logger);
  const hooks = recordings.hooks();
  return {
    storage: recordings.storage,
    hooks: {
      ...hooks,
      begin: async (r) => {
        const p = await placements.get(r.eventId);
        if (p?.origins[0]?.id !== nodeId) {
          logger.info({ eventId: r.eventId }, 'not recording here: the placement’s first origin records');
          return false;
        }
        return hooks.begin(r);
      },
    },
  };
}

/** Records in the store why a publisher's source was refused (the console and `event list` show it). */
function sourceRefusalRecorder(events: EventService, logger: Logger): NonNullable<IngestDeps['onSourceRefused']> {
  return (eventId, reason) => {
    events.refuseSource(eventId, reason).catch((err: Error) => logger.error({ eventId, err: err.message }, 'source refusal not recorded'));
  };
}

/** The viewer WebSocket gateway on `server`; added after the HTTP port so that it stops (closing WebSockets, which hold the server open) before the port closes. */
function chatGateway(chat: () => ChatRole, server: Server, logger: Logger, config: Config): Service {
  const onUpgrade: Parameters<Server['on']>[1] = (req, socket, head) => chat().gateway.handleUpgrade(req, socket, head);
  return service(
    async () => {
      await chat().gateway.start();
      server.on('upgrade', onUpgrade);
      logger.info({ bus: chat().backend.bus.kind, mode: config.redisUrl ? config.busChannelMode : 'memory' }, 'chat gateway ready');
    },
    async () => {
      server.off('upgrade', onUpgrade);
      await chat().gateway.stop();
    },
  );
}

/** The realtime backend (bus, presence, limiters) of a chat role. */
function chatBus(chat: ChatRole): Service {
  return service(
    () => chat.backend.start(),
    () => chat.backend.stop(),
  );
}

/** All-in-one: every role in this process behind one public HTTP port and the RTMP port. */
function composeAll(stage: Stage, config: Config, logger: Logger): RolePorts {
  const registry = createMetricsRegistry();
  // One rule for the client's address (HTTP, WebSocket, WHIP), handed to each part that counts or logs addresses.
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  stage.add('ffmpeg check', ffmpegCheck(config, logger));
  const store = stage.add('store', createStore(config));
  let http = { port: config.httpPort };
  let rtmp = { port: config.rtmpPort };
  let srt: SrtIngest | undefined;
  stage.later('all-in-one', (s) => {
    const db = store.db;
    // Keys kept for their one reveal are sealed with a key derived from the server secret (same on every node).
    const sealer = createKeySealer(loadServerSecret(config.dataDir, config.viewerTokenSecret));
    const events = new EventService(db, {
      latencyMode: config.defaultLatencyMode,
      ladderPreset: config.defaultLadderPreset,
      sealer,
      timing: timingOf(config),
    });
    const recordings = new RecordingService(db, createStorage(config), config, logger);
    // No stream is live at start-up: whatever a previous run left live went offline with it. Not so with a shared
    // PostgreSQL store, where other nodes' live events are listed too. Likewise, nothing is being recorded.
    s.add(
      'offline sweep',
      service(
        async () => {
          if (!config.databaseUrl) {
            for (const e of await events.list(['live'])) await events.setStatus(e.id, 'offline');
            const n = await recordings.markInterrupted();
            if (n > 0) logger.warn({ recordings: n }, 'recordings cut short by the previous run marked failed');
          }
        },
        async () => {},
      ),
    );
    // Live feeds tapped for WHEP playback (real-time viewers are served by the node that holds the feed).
    const taps = createFeedTaps(logger.child({ role: 'ingest' }));
    // The closures below use the control plane built further down: they run only once every service started.
    const ingest = addOriginAndIngests(s, {
      taps,
      config,
      logger,
      registry,
      events,
      recordings,
      bindHost: '127.0.0.1',
      onStatus: (eventId, status) => {
        control.setStatus(eventId, status).catch((err: Error) => logger.error({ eventId, err: err.message }, 'status update failed'));
      },
      onHealth: (id, stats) => control.onIngestHealth(id, stats),
    });
    const { origin, whip } = ingest;
    // Viewer tokens are checked by the chat role built below (the closure runs per request).
    const whep = s.add(
      'whep',
      createWhepPlayback({
        config,
        logger: logger.child({ role: 'ingest' }),
        registry,
        taps,
        verifyViewer: (token) => chat.tokens.verify(token) !== undefined,
      }),
    );
    // Pulls from the origin's bound URL (known once it listens) unless told other origins.
    const hlsEdge = s.deferred('hls edge', () =>
      createHlsEdge({
        config,
        logger: logger.child({ role: 'edge' }),
        registry,
        upstreams: config.originUrls.length ? config.originUrls : [origin.url],
      }),
    );
    const edge = { handle: (req: IncomingMessage, res: ServerResponse) => hlsEdge().handle(req, res) };
    // Live interaction: bus from ONAIR_REDIS_URL / REDIS_URL (cluster mode) or in-process.
    // The gateway reads joiners' overlays from, and reports viewer totals to, the control plane created just below.
    const chat = createChatRole({
      config,
      logger: logger.child({ role: 'chat' }),
      registry,
      db,
      trustedProxies,
      eventExists: async (id) => (await events.byId(id)) !== undefined,
      overlays: (id) => control.viewerOverlays(id),
      onViewerCount: (id, n) => control.onViewerCount(id, n),
    });
    s.add('chat bus', chatBus(chat));
    // Operator commands (end, key rotation, ad-break marks) reach this process's ingest and origin over the bus.
    s.add(
      'ingest commands',
      createIngestCommandReceiver({
        bus: chat.backend.bus,
        logger: logger.child({ role: 'ingest' }),
        nodeId: 'all',
        publishers: ingest.publishers,
        disconnect: ingest.disconnect,
      }),
    );
    s.add(
      'origin commands',
      createOriginCommandReceiver({
        bus: chat.backend.bus,
        logger: logger.child({ role: 'origin' }),
        nodeId: 'all',
        stream: (id) => origin.stream(id),
      }),
    );
    const control = s.add(
      'control',
      createControlPlane({
        config,
        logger,
        registry,
        db,
        events,
        bus: chat.backend.bus,
        origin: { stream: (id) => origin.stream(id) },
        nodeId: 'all',
        srtPort: () => srt?.port,
        recordings,
        viewerCount: (id) => chat.gateway.viewerCount(id),
        loginLimiter: chat.backend.attempts,
        chat: { tokens: chat.tokens, comments: chat.comments, moderation: chat.moderation, limiter: chat.backend.limiter },
      }),
    );
    const server = createServer(
      createAllInOneFront({
        config,
        logger,
        registry,
        trustedProxies,
        edge,
        whip,
        // ONAIR_WHEP_MAX_VIEWERS=0: no /whep (404), and the watch page offers no real time.
        ...(config.whepMaxViewers > 0 ? { whep } : {}),
        control,
        events,
      }),
    );
    server.keepAliveTimeout = 65_000;
    http = s.add('http', httpService(server, { port: config.httpPort, host: config.host }));
    s.add(
      'chat gateway',
      chatGateway(() => chat, server, logger.child({ role: 'chat' }), config),
    );
    rtmp = s.add('rtmp', ingest.rtmp);
    srt = s.add('srt', ingest.srt);
  });
  return {
    httpPort: () => http.port,
    rtmpPort: () => rtmp.port,
    srtPort: () => srt?.port,
    started: () => logger.info({ httpPort: http.port, rtmpPort: rtmp.port, srtPort: srt?.port }, 'onair is up'),
  };
}

/**
 * Cluster roles (any of ingest, origin, edge, control in this process) on the shared pool: Redis (placements, bus),
 * PostgreSQL (events, keys, chat) and the cluster secret (feeds between ingests and origins).
 *   ingest: RTMP and WHIP; places each live event on R origins and forwards its feed to them (ingest/feed-forwarder.ts);
 *           writes the event's status (live on a placed publish, offline once its placement is released);
 *   origin: transcodes and packages the feeds it receives (origin/feed-receiver.ts on originPort, next to its HLS),
 *           serves WHEP playback from them there (cli/origin-whep.ts) and heartbeats its load into the registry;
 *   edge:   HLS and WHEP signalling routed by each event's placement (edge/whep-router.ts), and the viewer WebSocket;
 * all behind one HTTP port (/healthz, /metrics, and each role's routes).
 */
function composeCluster(stage: Stage, config: Config, logger: Logger, roles: ReadonlySet<Role>): RolePorts {
  checkClusterRoles(roles, config);
  const nodeId = nodeIdOf(config);
  const log = logger.child({ node: nodeId });
  const name = roleName([...roles]);
  const registry = createMetricsRegistry();
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  const secret = config.clusterSecret!;
  if (roles.has('ingest') || roles.has('origin')) stage.add('ffmpeg check', ffmpegCheck(config, log));
  const pool = addPool(stage, config, log);
  const store = stage.add('store', createStore(config));
  let http = { port: config.httpPort };
  let rtmp: { port: number } | undefined;
  let srt: SrtIngest | undefined;
  let origin: Origin | undefined;
  stage.later('cluster', (s) => {
    const db = store.db;
    const events = new EventService(db, {
      latencyMode: config.defaultLatencyMode,
      ladderPreset: config.defaultLadderPreset,
      timing: timingOf(config),
    });
    let receiver: FeedReceiver | undefined;
    let originWhep: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
    if (roles.has('origin')) {
      const capacity = originCapacityOf(config);
      const o = s.add(
        'origin',
        createOrigin({
          config,
          logger: log,
          registry,
          bindHost: config.host,
          // The owning ingest writes the event's status; an origin only carries replicas.
          parent: {
            onStatus: () => {},
            latencyMode: async (eventId) => (await events.byId(eventId))?.latencyMode ?? config.defaultLatencyMode,
            dvrWindowSec: async (eventId) => (await events.byId(eventId))?.dvrWindowSec ?? config.dvrWindowSec,
            ladderPreset: async (eventId) => (await events.byId(eventId))?.ladderPreset ?? null,
            timing: async (eventId) => eventTiming(await events.byId(eventId)),
          },
          ...(config.storageUrl !== undefined ? { recording: clusterRecording(db, config, log, nodeId, pool.placements) } : {}),
          routes: (req, res) => (receiver?.handle(req, res) ?? false) || (originWhep?.(req, res) ?? false),
        }),
      );
      origin = o;
      // WHEP playback from the feeds this origin receives (edges route viewers' signalling here, edge/whep-router.ts).
      const taps = createFeedTaps(log.child({ role: 'origin' }));
      const originPlayback = createOriginWhep({ config, logger: log, registry, taps, trustedProxies });
      if (originPlayback.playback) s.add('whep', originPlayback.playback);
      originWhep = originPlayback.route;
      const feeds = (receiver = s.add(
        'feed receiver',
        createFeedReceiver({ placements: pool.placements, nodeId, secret, capacity, feeds: taps.wrap(o.feeds), logger: log, registry }),
      ));
      s.add(
        'origin heartbeat',
        originHeartbeat({
          registry: pool.registry,
          logger: log,
          info: () => ({
            id: nodeId,
            url: advertisedOriginUrl(config, Number(new URL(o.url).port)),
            capacity,
            liveEvents: feeds.liveEvents(),
            cpu: Math.min(1, loadavg()[0]! / availableParallelism()),
            updatedAtMs: Date.now(),
          }),
        }),
      );
      s.add('origin commands', createOriginCommandReceiver({ bus: pool.bus, logger: log, nodeId, stream: (id) => o.stream(id) }));
    }
    let whip: WhipIngest | undefined;
    let rtmpIngest: RtmpIngest | undefined;
    let srtIngest: SrtIngest | undefined;
    if (roles.has('ingest')) {
      // The owning ingest is the one writer of its event's status (with its webhooks and viewer signal).
      const status = createEventStatusWriter({ db, events, signals: createViewerSignals({ bus: pool.bus, logger: log }), config });
      const setStatus = (eventId: string, to: 'live' | 'offline') =>
        status.set(eventId, to).catch((err: Error) => log.error({ eventId, status: to, err: err.message }, 'status update failed'));
      const forwarder = s.add(
        'feed forwarder',
        createFeedForwarder({
          placements: pool.placements,
          nodeId,
          replicas: () => replicasOf(config),
          secret,
          logger: log,
          registry,
          reconnectWindowSec: config.reconnectWindowSec,
          // Every origin gets the publisher's bytes on the event's media timeline, so replicas number alike.
          shifter: (ctx) => createFlvTimelineShift(Math.max(0, Math.round(ctx.startedAtMs - ctx.timelineZeroMs))),
          onReleased: (eventId) => void setStatus(eventId, 'offline'),
        }),
      );
      const ingests = createIngests({
        config,
        logger: log.child({ role: 'ingest' }),
        registry,
        authorize: (k) => events.authorize(k),
        feeds: {
          open: async (eventId, source) => {
            const feed = await forwarder.open(eventId, source);
            void setStatus(eventId, 'live');
            return feed;
          },
        },
        // Health goes to whichever control node an operator watches.
        onHealth: createHealthPublisher({ bus: pool.bus, logger: log, nodeId }).onHealth,
        onSourceRefused: sourceRefusalRecorder(events, log),
      });
      whip = s.add('whip', ingests.whip);
      rtmpIngest = ingests.rtmp;
      srtIngest = ingests.srt;
      s.add(
        'ingest commands',
        createIngestCommandReceiver({ bus: pool.bus, logger: log, nodeId, publishers: ingests.publishers, disconnect: ingests.disconnect }),
      );
    }
    const edge = roles.has('edge')
      ? s.add(
          'hls edge',
          createHlsEdge({
            config,
            logger: log,
            registry,
            placements: pool.cached,
            // Events that are not live replay their recordings from the shared storage.
            ...(config.storageUrl !== undefined ? { replay: replayHandler(createStorage(config), log, config) } : {}),
          }),
        )
      : undefined;
    // WHEP signalling goes to the event's origins, as HLS does (stateless: the session URL names its origin).
    const whepRoute = edge ? createWhepRouter({ placements: pool.cached, logger: log, registry }).handle : undefined;
    let chat: ChatRole | undefined;
    if (roles.has('edge') && edgeHasChat(config)) {
      chat = createChatRole({
        config,
        logger: log.child({ role: 'chat' }),
        registry,
        db,
        trustedProxies,
        eventExists: async (id) => (await events.byId(id)) !== undefined,
        overlays: storedOverlays(db, events, log),
      });
      s.add('chat bus', chatBus(chat));
    }
    let server: Server;
    if (roles.has('control')) {
      // API, console and pages, on the same port as this process's other roles.
      const backend = s.add('control bus', createRealtimeBackend({ redisUrl: config.redisUrl, mode: config.busChannelMode, logger: log }));
      const node = addControlNode(s, {
        config,
        logger: log,
        registry,
        db,
        backend,
        placements: pool.cached,
        nodeId,
        front: { ...(edge && whepRoute ? { edge, whepRoute } : {}), ...(whip ? { whip } : {}) },
      });
      server = node.server;
      http = {
        get port() {
          return node.httpPort();
        },
      };
    } else {
      const whipRoutes = whip ? whipApp(whip, trustedProxies, log) : undefined;
      server = createServer(
        createHttpFront({
          role: name,
          registry,
          metricsToken: config.metricsToken,
          ...(edge && whepRoute ? { edge, whep: whepRoute } : {}),
          ...(whipRoutes ? { whip: whipRoutes } : {}),
          health: () => ({
            node: nodeId,
            ...(edge ? { origins: edge.upstreams() } : {}),
            ...(receiver ? { liveEvents: receiver.liveEvents() } : {}),
          }),
        }),
      );
      tuneServer(server);
      http = s.add('http', httpService(server, { port: config.httpPort, host: config.host }));
    }
    if (chat)
      s.add(
        'chat gateway',
        chatGateway(() => chat, server, log.child({ role: 'chat' }), config),
      );
    if (rtmpIngest) rtmp = s.add('rtmp', rtmpIngest);
    if (srtIngest) srt = s.add('srt', srtIngest);
  });
  return {
    httpPort: () => http.port,
    ...(roles.has('ingest') ? { rtmpPort: () => rtmp?.port ?? config.rtmpPort, srtPort: () => srt?.port } : {}),
    ...(roles.has('origin') ? { originUrl: () => origin?.url ?? '' } : {}),
    started: () =>
      log.info(
        { roles: name, httpPort: http.port, rtmpPort: rtmp?.port, srtPort: srt?.port, originUrl: origin?.url },
        'onair cluster node is up',
      ),
  };
}

/** The origin role: store (stream-key auth, event status), ingests and the origin, whose HLS port (`originPort` on `host`) edges pull from. */
function composeOrigin(stage: Stage, config: Config, logger: Logger): RolePorts {
  const registry = createMetricsRegistry();
  // WHIP counts wrong keys per client address (req.ip): the same trusted-proxy rule as everywhere.
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  stage.add('ffmpeg check', ffmpegCheck(config, logger));
  const store = stage.add('store', createStore(config));
  let http = { port: config.httpPort };
  let rtmp = { port: config.rtmpPort };
  let srt: SrtIngest | undefined;
  let origin: Origin | undefined;
  stage.later('origin role', (s) => {
    const events = new EventService(store.db, { latencyMode: config.defaultLatencyMode, timing: timingOf(config) });
    const parts = addOriginAndIngests(s, {
      config,
      logger,
      registry,
      events,
      recordings: new RecordingService(store.db, createStorage(config), config, logger),
      bindHost: config.host,
      onStatus: (eventId, status) => {
        events.setStatus(eventId, status).catch((err: Error) => logger.error({ eventId, err: err.message }, 'status update failed'));
      },
    });
    origin = parts.origin;

    const server = createServer(
      createHttpFront({
        role: 'ingest,origin',
        registry,
        metricsToken: config.metricsToken,
        health: () => ({ originUrl: parts.origin.url }),
        whip: whipApp(parts.whip, trustedProxies, logger),
      }),
    );
    tuneServer(server);
    http = s.add('http', httpService(server, { port: config.httpPort, host: config.host }));
    rtmp = s.add('rtmp', parts.rtmp);
    srt = s.add('srt', parts.srt);
  });
  return {
    httpPort: () => http.port,
    rtmpPort: () => rtmp.port,
    srtPort: () => srt?.port,
    originUrl: () => origin?.url ?? '',
    started: () =>
      logger.info({ httpPort: http.port, originUrl: origin?.url, rtmpPort: rtmp.port, srtPort: srt?.port }, 'onair origin is up'),
  };
}

/**
 * The edge role. With one worker it runs in this process; with more, this process is the cluster primary: it forks
 * the workers (each re-runs this command and serves the shared port) and restarts any that dies.
 */
function composeEdge(stage: Stage, config: Config, logger: Logger): RolePorts {
  if (config.originUrls.length === 0 && !config.redisUrl) {
    throw new RoleConfigError(
      'the edge role needs its origins: the pool through Redis (REDIS_URL), or a fixed list with --origin http://HOST:PORT (ONAIR_ORIGIN_URLS)',
    );
  }
  const withChat = edgeHasChat(config); // a chat edge without the shared secret stops here, before any worker starts
  const workers = edgeWorkerCount(config);
  if (cluster.isWorker) {
    const id = cluster.worker!.id;
    const ports = composeEdgeProcess(stage, config, logger.child({ role: 'edge', worker: id }), id, withChat, edgePeersFromEnv());
    return { ...ports, started: () => void process.send?.({ type: 'onair-edge-listening', port: ports.httpPort() }) };
  }
  if (workers === 1) {
    const ports = composeEdgeProcess(stage, config, logger.child({ role: 'edge' }), undefined, withChat);
    return {
      ...ports,
      started: () => logger.info({ httpPort: ports.httpPort(), origins: originsOf(config), workers: 1 }, 'onair edge is up'),
    };
  }
  const primary = stage.add('edge workers', edgePrimary(config, logger.child({ role: 'edge-primary' }), workers));
  return {
    httpPort: () => primary.httpPort,
    started: () => logger.info({ httpPort: primary.httpPort, origins: originsOf(config), workers }, 'onair edge is up'),
  };
}

/** One complete edge in this process on `config.httpPort`: HLS, and the chat gateway in cluster mode. */
function composeEdgeProcess(
  stage: Stage,
  config: Config,
  logger: Logger,
  worker: number | undefined,
  withChat: boolean,
  peers?: EdgePeers,
): RolePorts {
  const registry = createMetricsRegistry();
  if (worker !== undefined) {
    registry.setDefaultLabels({ worker: String(worker) });
    // The primary gathers every worker's registry through prom-client's cluster IPC.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  // A fixed list of origins, or each event's replicas from the pool's placements.
  const origins = config.originUrls.length ? { upstreams: config.originUrls } : { placements: addPool(stage, config, logger).cached };
  const edge = stage.add('hls edge', createHlsEdge({ config, logger, registry, ...origins, ...(peers ? { peers } : {}) }));
  // WHEP signalling goes to the event's origins (placements only: a fixed list of origins has no feeds to place).
  const whep = origins.placements ? createWhepRouter({ placements: origins.placements, logger, registry }) : undefined;
  let chat: ChatRole | undefined;
  if (withChat) {
    // Redis bus, PostgreSQL store, overlays read from the store (operators change them on a main node).
    const store: Store = stage.add('store', createStore(config));
    stage.later('chat', (s) => {
      const db = store.db;
      const events = new EventService(db);
      chat = createChatRole({
        config,
        logger: logger.child({ part: 'chat' }),
        registry,
        db,
        trustedProxies: new TrustedProxies(config.trustedProxies),
        eventExists: async (id) => (await events.byId(id)) !== undefined,
        overlays: storedOverlays(db, events, logger),
      });
      s.add('chat bus', chatBus(chat));
    });
  }
  const server = createServer(
    createHttpFront({
      role: 'edge',
      registry,
      edge,
      ...(whep ? { whep: whep.handle } : {}),
      metricsToken: config.metricsToken,
      health: () => ({ worker, origins: edge.upstreams(), chat: chat !== undefined }),
      ...(worker !== undefined ? { metricsText: () => allWorkersMetrics(registry, logger) } : {}),
    }),
  );
  tuneServer(server);
  const http = stage.add('http', httpService(server, { port: config.httpPort, host: config.host, graceMs: 1_000 }));
  if (withChat)
    stage.add(
      'chat gateway',
      chatGateway(() => chat!, server, logger.child({ part: 'chat' }), config),
    );
  return { httpPort: () => http.port };
}

/** How an edge finds its origins, for its start-up log line: a fixed count, or the pool's placements. */
function originsOf(config: Config): string {
  return config.originUrls.length ? `${config.originUrls.length} fixed` : 'placements (Redis)';
}

/** The WHIP routes of a single-role HTTP port: client addresses by the trusted-proxy rule, errors as JSON. */
function whipApp(whip: WhipIngest, trustedProxies: TrustedProxies, logger: Logger): express.Express {
  return express()
    .disable('x-powered-by')
    .set('trust proxy', (addr: string) => trustedProxies.trusts(addr))
    .use('/whip', whip.router)
    .use(jsonErrorHandler(logger));
}

/** Overlays for joining viewers on a node without a control plane: read from the shared store (operators set them elsewhere; no signals sent). */
function storedOverlays(db: Db, events: EventService, logger: Logger): (eventId: string) => ReturnType<typeof readViewerOverlays> {
  const overlays = new OverlayService(db, createViewerSignals({ logger }));
  return (id) => readViewerOverlays({ db, events, overlays }, id);
}
