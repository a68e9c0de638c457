// The control plane's composition: operator auth, the /api/v1 management routes and their OpenAPI document,
// ingest health and viewer history, news flashes/disclaimers, ad breaks, webhooks, event status changes, and the chat
// routes (viewer tokens, comments, operator moderation) when given the chat pieces.
// Operator actions on live events (end, key rotation, ad-break marks) go over the bus to whichever ingest and origins
// carry the event (control/commands.ts), in this process (all-in-one) or others (cluster): it holds no handle on them.
import express from 'express';
import cookieParser from 'cookie-parser';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { BusUnavailableError, type Bus } from '../lib/bus/bus.ts';
import type { Db } from '../lib/store/db.ts';
import type { Logger } from '../lib/logger.ts';
import { Gauge, type Registry } from '../lib/metrics.ts';
import type { AttemptLimiter } from '../lib/rate-limit/attempt-limiter.ts';
import { ServiceGroup, type Service } from '../lib/lifecycle.ts';
import { createAuth, type Auth } from './auth.ts';
import { OperatorService } from './operators.ts';
import type { EventRecord, EventService } from './events.ts';
import { apiErrorHandler, createRouteBuilder, type RouteInfo } from './api-routes.ts';
import { registerAuthRoutes } from './api-auth.ts';
import { registerEventRoutes } from './api-events.ts';
import { registerHealthRoutes } from './api-health.ts';
import { registerOverlayRoutes } from './api-overlays.ts';
import { registerAdBreakRoutes } from './api-ad-breaks.ts';
import { registerWebhookRoutes } from './api-webhooks.ts';
import { registerRecordingRoutes } from './api-recordings.ts';
import { registerClipRoutes } from './api-clips.ts';
import { ClipService } from './clips.ts';
import { RecordingService, recordingRetention } from './recordings.ts';
import { createStorage } from '../lib/storage/index.ts';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi.ts';
import { createHealthMonitor, type HealthMonitor, type IngestReport, type TranscodeReport } from './health.ts';
import { ViewerHistory } from './viewer-history.ts';
import { createViewerSignals, type ViewerOverlays, type ViewerSignals } from '../chat/viewer-signals.ts';
import { readViewerOverlays } from './viewer-overlays.ts';
import { registerChatRoutes, type ChatRoutesDeps } from '../chat/routes.ts';
import { OverlayService } from './overlays.ts';
import { createAdBreaks, type AdBreaks } from './ad-breaks.ts';
import { createWebhooks, type Webhooks } from './webhooks.ts';
import { configuredSrtPort, eventUrls, publicBase, srtPublishUrl } from './public-urls.ts';
import { createControlCommands, type ControlCommands } from './commands.ts';
import { createEventStatusWriter } from './event-status.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';

/** What the control plane reads from an origin in its own process (all-in-one): publishing and transcode stats. */
export interface ControlOriginView {
  stream(eventId: string): { publishing: boolean; transcodeStats?: TranscodeReport | undefined } | undefined;
}

/** What the control plane needs from its parent. */
export interface ControlPlaneDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  db: Db;
  events: EventService;
  /** Viewer signals and operator commands go out on it; without one, signals are only logged and commands reach nobody. */
  bus?: Bus;
  /** The origin of this process (all-in-one); absent on a control node. */
  origin?: ControlOriginView;
  /** Where live events run (cluster mode): shown as `placement` in the API, and tells commands how many owners to expect. */
  placements?: PlacementSource;
  /** This node's id, named in logs and command reply channels (default `control`). */
  nodeId?: string;
  /** The SRT ingest's bound port in this process (all-in-one), for the SRT URLs; default: ONAIR_SRT_PORT. */
  srtPort?: () => number | undefined;
  /** How long a command waits for its owners' acks (default ACK_TIMEOUT_MS by bus kind). */
  commandAckTimeoutMs?: number;
  /** How often ad breaks made by any node are checked for their start or end (default 1000 ms). */
  adBreakSweepMs?: number;
  /** Current viewers of an event (the WebSocket gateway's presence), if known. */
  viewerCount(eventId: string): number | undefined;
  /** Counts login attempts; pass the Redis one in cluster mode so every node shares the limit. Default in-process. */
  loginLimiter?: AttemptLimiter;
  /** Recordings (the origin's storage in all-in-one mode); default: over the storage ONAIR_STORAGE_URL names. */
  recordings?: RecordingService;
  /** The chat pieces (chat/role.ts): with them, the chat and moderation routes are served too. */
  chat?: Pick<ChatRoutesDeps, 'tokens' | 'comments' | 'moderation' | 'limiter'>;
}

/** The running control plane. */
export interface ControlPlane extends Service {
  /** Mount at /api/v1 before any other /api/v1 router; unmatched requests fall through. */
  readonly router: express.Router;
  /** Every route it serves (express paths relative to /api/v1). */
  readonly routes: readonly RouteInfo[];
  readonly auth: Auth;
  readonly operators: OperatorService;
  readonly health: HealthMonitor;
  readonly overlays: OverlayService;
  readonly adBreaks: AdBreaks;
  readonly webhooks: Webhooks;
  readonly recordings: RecordingService;
  readonly signals: ViewerSignals;
  /** Operator commands to the owners of live events (over the bus). */
  readonly commands: ControlCommands;
  /** The OpenAPI document of every route. */
  openapi(): OpenApiDocument;
  /** Records an event status change from the origin and notifies webhooks and viewers when it really changed. */
  setStatus(eventId: string, status: 'live' | 'offline'): Promise<void>;
  /** Ingest health report (wire to the ingest's onHealth). */
  onIngestHealth(eventId: string, report: IngestReport): void;
  /** A viewer total from the WebSocket gateway's presence: sampled into the viewer history. */
  onViewerCount(eventId: string, viewers: number): void;
  /** What a joining viewer must see now (the gateway's welcome): news flashes, disclaimer, ad break, status. */
  viewerOverlays(eventId: string): Promise<ViewerOverlays | undefined>;
  /** Starts session sweeps, health pruning, webhook delivery and ad-break timers; a failure stops those started. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops them in reverse. */
  stop(): Promise<void>;
}

/** A bus that takes nothing (a control plane built without one): commands are reported as not sent. */
const noBus: Bus = {
  kind: 'memory',
  publish: async () => {
    throw new BusUnavailableError('no bus configured');
  },
  subscribe: async () => async () => {},
  isUp: () => false,
  onStateChange: () => () => {},
  start: async () => {},
  stop: async () => {},
};

/** Longest gap between two viewer-history samples of an unchanged count. */
const VIEWER_SAMPLE_MS = 5_000;

/** Builds the control plane. */
export function createControlPlane(deps: ControlPlaneDeps): ControlPlane {
  const { config, db, events, registry } = deps;
  const logger = deps.logger.child({ role: 'control' });
  const operators = new OperatorService(db);
  const auth = createAuth({ config, db, operators, logger, registry, ...(deps.loginLimiter ? { loginLimiter: deps.loginLimiter } : {}) });
  const signals = createViewerSignals({ bus: deps.bus, logger });
  const health = createHealthMonitor({ config, logger, registry, transcodeStats: (id) => deps.origin?.stream(id)?.transcodeStats });
  const commands = createControlCommands({
    bus: deps.bus ?? noBus,
    logger,
    nodeId: deps.nodeId ?? 'control',
    ...(deps.placements ? { placements: deps.placements } : {}),
    ...(deps.commandAckTimeoutMs !== undefined ? { ackTimeoutMs: deps.commandAckTimeoutMs } : {}),
  });
  /** The event's placement; undefined when not placed, or unreadable (logged). */
  const placementOf = async (eventId: string): Promise<Placement | undefined> => {
    try {
      return await deps.placements?.get(eventId);
    } catch (err) {
      logger.warn({ eventId, err: (err as Error).message }, 'placement unreadable');
      return undefined;
    }
  };
  const viewers = new ViewerHistory();
  const overlays = new OverlayService(db, signals);
  const adBreaks = createAdBreaks({
    db,
    logger,
    signals,
    viewerCount: deps.viewerCount,
    defaultCreativeUrl: config.adCreativeUrl,
    ...(deps.adBreakSweepMs !== undefined ? { sweepMs: deps.adBreakSweepMs } : {}),
    marker: {
      mark: async (eventId, mark) => (await commands.markAdBreak(eventId, mark)).acks.reduce((n, a) => n + (a.renditions ?? 0), 0),
    },
  });
  const webhooks = createWebhooks({ db, config, logger, registry });
  const status = createEventStatusWriter({ db, events, signals, config, queued: () => webhooks.deliverNow() });
  // Viewer history samples: every count change, and otherwise one per VIEWER_SAMPLE_MS per event.
  const lastSample = new Map<string, { at: number; viewers: number }>();
  const sampleViewers = (eventId: string, n: number) => {
    const now = Date.now();
    const prev = lastSample.get(eventId);
    if (prev && prev.viewers === n && now - prev.at < VIEWER_SAMPLE_MS) return;
    viewers.record(eventId, n);
    if (n === 0) lastSample.delete(eventId);
    else lastSample.set(eventId, { at: now, viewers: n });
  };
  const server = { publicUrl: publicBase(config, config.httpPort), rtmpPort: config.rtmpPort, srtPort: configuredSrtPort(config) };

  const router = express.Router();
  router.use(cookieParser(), express.json({ limit: '64kb' }));
  const b = createRouteBuilder({ router, auth });
  registerAuthRoutes(b, { auth, operators });
  registerEventRoutes(b, {
    events,
    health,
    adBreaks,
    disconnect: async (id, kind) => (await commands.disconnect(id, kind)).acks.some((a) => a.applied),
    publishing: async (id) => {
      const local = deps.origin?.stream(id)?.publishing;
      if (local !== undefined) return local;
      return deps.placements ? (await placementOf(id)) !== undefined : false;
    },
    ...(deps.placements ? { placement: placementOf } : {}),
    principal: (req) => auth.principal(req),
    viewerCount: deps.viewerCount,
    ended: (e: EventRecord) => status.notify('event.ended', e),
    ingestUrls: (e, streamKey) => {
      const { rtmpUrl, whipUrl } = eventUrls(server, e);
      const srtUrl = srtPublishUrl({ ...server, srtPort: deps.srtPort?.() ?? server.srtPort }, streamKey);
      return { rtmpUrl, whipUrl, ...(srtUrl ? { srtUrl } : {}) };
    },
  });
  registerHealthRoutes(b, { events, health, viewers });
  registerOverlayRoutes(b, { events, overlays, adBreaks });
  registerAdBreakRoutes(b, { events, adBreaks });
  registerWebhookRoutes(b, { webhooks });
  const recordings = deps.recordings ?? new RecordingService(db, createStorage(config), config, logger);
  registerRecordingRoutes(b, { recordings });
  registerClipRoutes(b, { clips: new ClipService(db, recordings.storage, config) });
  const retention = recordingRetention(recordings, config.recordingRetentionDays, logger);
  // One per registry (a test may build several control planes on one).
  if (!registry.getSingleMetric('onair_recordings_stored_bytes'))
    new Gauge({
      name: 'onair_recordings_stored_bytes',
      help: 'bytes of the recordings the store lists, by status (a recording counts once ready)',
      labelNames: ['status'],
      registers: [registry],
      async collect() {
        try {
          for (const u of await recordings.usage()) this.set({ status: u.status }, u.bytes);
        } catch {
          // The store is away: the last values stay.
        }
      },
    });
  if (deps.chat) {
    const tokenLimit = { perSec: config.viewerTokensPerSec, burst: config.viewerTokenBurst };
    registerChatRoutes(b, { ...deps.chat, auth, tokenLimit, eventExists: async (id) => (await events.byId(id)) !== undefined });
  }
  let doc: OpenApiDocument | undefined;
  b.route({
    method: 'get',
    path: '/openapi.json',
    summary: 'This OpenAPI document',
    tags: ['meta'],
    access: 'public',
    responses: { 200: { description: 'OpenAPI 3.1 document', schema: z.record(z.string(), z.unknown()) } },
    handler: async () => openapi(),
  });
  router.use(apiErrorHandler(logger));

  let parts: ServiceGroup | undefined;

  function openapi(): OpenApiDocument {
    doc ??= buildOpenApiDocument(b.registry, { version: '1.0.0', serverUrl: server.publicUrl });
    return doc;
  }

  return {
    router,
    routes: b.routes,
    auth,
    operators,
    health,
    overlays,
    adBreaks,
    webhooks,
    recordings,
    signals,
    commands,
    openapi,

    setStatus: (eventId, s) => status.set(eventId, s),

    onIngestHealth(eventId, report) {
      health.ingest(eventId, report);
      const n = deps.viewerCount(eventId);
      if (n !== undefined) sampleViewers(eventId, n);
    },

    onViewerCount(eventId, n) {
      sampleViewers(eventId, n);
    },

    viewerOverlays: (eventId) => readViewerOverlays({ db, events, overlays }, eventId),

    async start(signal) {
      // A fresh group per start: the parts can start again after a stop.
      const group = new ServiceGroup((name, err) => logger.error({ part: name, err: (err as Error).message }, 'stop failed'));
      group.add('commands', commands);
      group.add('auth', auth);
      group.add('health', health);
      group.add('webhooks', webhooks);
      group.add('ad breaks', adBreaks);
      group.add('recording retention', retention);
      parts = group;
      await group.start(signal);
    },

    async stop() {
      await parts?.stop();
      parts = undefined;
    },
  };
}
