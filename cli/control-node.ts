// The control role's process (cluster mode): the control plane (API, console, webhooks, ad breaks, health, chat
// history and moderation routes) behind its own HTTP port, with no ingest and no origin. Operator actions reach the
// owners of live events over the bus (control/commands.ts), ingest health arrives on it (control/health-feed.ts), and
// placements are read from the PlacementSource. Any number of control nodes may run; none is special.
import { createServer, type Server } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { Db } from '../lib/store/db.ts';
import type { Service } from '../lib/lifecycle.ts';
import { service } from '../lib/lifecycle.ts';
import { httpService } from '../lib/http.ts';
import { TrustedProxies } from '../lib/client-address.ts';
import { createKeySealer } from '../lib/key-seal.ts';
import { loadServerSecret } from '../lib/server-secret.ts';
import type { PlacementSource } from '../lib/placement/types.ts';
import type { RealtimeBackend } from '../chat/backend.ts';
import type { Presence } from '../lib/bus/presence.ts';
import { CommentStore } from '../chat/comments.ts';
import { ModerationService } from '../chat/moderation.ts';
import { ViewerTokens, loadTokenSecret } from '../chat/viewer-tokens.ts';
import { EventService } from '../control/events.ts';
import { timingOf } from '../config/timing.ts';
import { createControlPlane, type ControlPlane } from '../control/control-plane.ts';
import { createHealthFeed } from '../control/health-feed.ts';
import { createAllInOneFront, type AllInOneFrontDeps } from './all-in-one.ts';
import { tuneServer } from './roles.ts';

/** Where the control node adds its services (cli/compose.ts's Stage satisfies it). */
export interface ServiceStage {
  add<S extends Service>(name: string, svc: S): S;
}

/** What a control node is built from. */
export interface ControlNodeDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** The open shared store (PostgreSQL in cluster mode). */
  db: Db;
  /** The realtime backend, started before (Redis in cluster mode): bus, chat rate limiter, login attempt limiter. */
  backend: Pick<RealtimeBackend, 'bus' | 'limiter' | 'attempts' | 'presence'>;
  /** Where live events run (the Redis placements); without one the API has no `placement` field. */
  placements?: PlacementSource;
  /** This node's id (ONAIR_NODE_ID resolved). */
  nodeId: string;
  /** Routes of other roles run by the same process, served on the same port (`/live/*`, `/whep`, `/whip`). */
  front?: Pick<AllInOneFrontDeps, 'edge' | 'whip' | 'whepRoute'>;
}

/** What the control node exposes once added. */
export interface ControlNode {
  readonly control: ControlPlane;
  /** Its HTTP server (other roles of the process attach to it, e.g. the viewer WebSocket). */
  readonly server: Server;
  /** The bound HTTP port (valid once the `http` service started). */
  httpPort(): number;
}

/**
 * Adds a control node's services to `stage`, in start order: `viewer tokens` (loads the shared secret), `control`
 * (the control plane), `health feed` (ingest health from the bus), `http` (API, console and pages on config.httpPort).
 */
export function addControlNode(stage: ServiceStage, deps: ControlNodeDeps): ControlNode {
  const { config, db, backend, registry } = deps;
  const logger = deps.logger.child({ role: 'control', node: deps.nodeId });
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  // Stream keys kept for their one reveal are sealed with the server secret, the same on every node.
  const sealer = createKeySealer(loadServerSecret(config.dataDir, config.viewerTokenSecret));
  const events = new EventService(db, {
    latencyMode: config.defaultLatencyMode,
    ladderPreset: config.defaultLadderPreset,
    sealer,
    timing: timingOf(config),
  });
  const comments = new CommentStore(db);
  const totals = new Map<string, number>();
  const tokens = new ViewerTokens(() => loadTokenSecret(config.dataDir, config.viewerTokenSecret), config.viewerTokenTtlSec);
  stage.add(
    'viewer tokens',
    service(
      async () => tokens.load(),
      async () => {},
    ),
  );
  const control = stage.add(
    'control',
    createControlPlane({
      config,
      logger,
      registry,
      db,
      events,
      bus: backend.bus,
      ...(deps.placements ? { placements: deps.placements } : {}),
      nodeId: deps.nodeId,
      // Viewer totals are counted by the edges' gateways into the shared presence; read back below.
      viewerCount: (id) => totals.get(id),
      loginLimiter: backend.attempts,
      chat: { tokens, comments, moderation: new ModerationService(comments, backend.bus), limiter: backend.limiter },
    }),
  );
  stage.add(
    'viewer totals',
    viewerTotals({ events, presence: backend.presence, nodeId: deps.nodeId, periodMs: config.wsViewerCountMs, totals, logger, control }),
  );
  if (deps.placements) {
    const placements = deps.placements;
    stage.add(
      'orphan sweep',
      orphanSweep({ events, placements, control, graceMs: config.reconnectWindowSec * 1000 + 5_000, periodMs: 5_000, logger }),
    );
  }
  stage.add('health feed', createHealthFeed({ bus: backend.bus, logger, onReport: (id, r) => control.onIngestHealth(id, r) }));
  const server = createServer(createAllInOneFront({ config, logger, registry, trustedProxies, control, events, ...deps.front }));
  tuneServer(server);
  const http = stage.add('http', httpService(server, { port: config.httpPort, host: config.host }));
  return { control, server, httpPort: () => http.port };
}

/**
 * Reads the live events' viewer totals from the shared presence every `periodMs` (the edges' gateways report their
 * connections there), for the API's viewer counts and the viewer history. A zero report under this node's own id adds
 * nothing and returns the total across edges.
 */
function viewerTotals(deps: {
  events: EventService;
  presence: Presence;
  nodeId: string;
  periodMs: number;
  totals: Map<string, number>;
  logger: Logger;
  control: Pick<ControlPlane, 'onViewerCount'>;
}): Service {
  let timer: NodeJS.Timeout | undefined;
  let failing = false;
  let polling = false;
  const poll = async () => {
    if (polling) return; // the previous poll is still waiting on a slow store or Redis
    polling = true;
    try {
      const live = await deps.events.list(['live']);
      const seen = new Set<string>();
      for (const e of live) {
        const n = await deps.presence.report(e.id, `control:${deps.nodeId}`, 0, deps.periodMs * 3);
        deps.totals.set(e.id, n);
        deps.control.onViewerCount(e.id, n);
        seen.add(e.id);
      }
      for (const id of deps.totals.keys()) if (!seen.has(id)) deps.totals.delete(id);
      if (failing) deps.logger.info('viewer totals readable again');
      failing = false;
    } catch (err) {
      if (!failing) deps.logger.warn({ err: (err as Error).message }, 'viewer totals unavailable (presence or store unreachable)');
      failing = true;
    } finally {
      polling = false;
    }
  };
  return service(
    async () => {
      timer = setInterval(() => void poll(), deps.periodMs);
      timer.unref();
    },
    async () => clearInterval(timer),
  );
}

/**
 * Ends the `live` status of events no ingest carries any more: the owning ingest writes `offline` when its publisher
 * does not come back, but an ingest that died cannot. An event whose placement has been gone for `graceMs` (the
 * reconnect window and a margin: a publisher reconnecting through another ingest places it again) is set offline,
 * with its webhooks, by whichever control node sees it first (the status change is conditional, so once).
 */
export function orphanSweep(deps: {
  events: Pick<EventService, 'list'>;
  placements: PlacementSource;
  control: Pick<ControlPlane, 'setStatus'>;
  graceMs: number;
  periodMs: number;
  logger: Logger;
  now?: () => number;
}): Service {
  const now = deps.now ?? Date.now;
  const missingSince = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let sweeping = false;
  const sweep = async () => {
    if (sweeping) return;
    sweeping = true;
    try {
      const live = await deps.events.list(['live']);
      const ids = new Set(live.map((e) => e.id));
      for (const id of missingSince.keys()) if (!ids.has(id)) missingSince.delete(id);
      for (const e of live) {
        if (await deps.placements.get(e.id)) {
          missingSince.delete(e.id);
          continue;
        }
        const since = missingSince.get(e.id) ?? now();
        missingSince.set(e.id, since);
        if (now() - since < deps.graceMs) continue;
        missingSince.delete(e.id);
        deps.logger.warn({ eventId: e.id, goneForMs: now() - since }, 'live event without an ingest: set offline');
        await deps.control.setStatus(e.id, 'offline');
      }
    } catch (err) {
      deps.logger.debug({ err: (err as Error).message }, 'orphan sweep skipped (store or Redis unreachable)');
    } finally {
      sweeping = false;
    }
  };
  return service(
    async () => {
      timer = setInterval(() => void sweep(), deps.periodMs);
      timer.unref();
    },
    async () => clearInterval(timer),
  );
}
