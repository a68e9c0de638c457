// Single roles on their own (cluster mode): the edge (one worker per core) and the origin (ingest + origin + store).
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express from 'express';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { AggregatorRegistry, createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { closeServer, listen, sendError, sendJson } from '../lib/http.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';
import { METRICS_UNAUTHORIZED, metricsAllowed } from '../lib/metrics-auth.ts';
import { openStore } from '../lib/store/db.ts';
import { TrustedProxies } from '../lib/client-address.ts';
import { EventService } from '../control/events.ts';
import { createOrigin } from '../origin/origin.ts';
import { checkFfmpeg } from '../origin/transcoder.ts';
import { createIngests } from '../ingest/ingests.ts';
import { createHlsEdge, type HlsEdge } from '../edge/hls-edge.ts';
import { createChatRole, type ChatRole } from '../chat/role.ts';
import { OverlayService } from '../control/overlays.ts';
import { createViewerSignals } from '../chat/viewer-signals.ts';
import { readViewerOverlays } from '../control/viewer-overlays.ts';

/** A running role: its public HTTP port and how to stop it. */
export interface RunningRole {
  readonly httpPort: number;
  stop(): Promise<void>;
}

/** Thrown when a role cannot start with the configuration given (the CLI prints it as a usage error). */
export class RoleConfigError extends Error {
  override name = 'RoleConfigError';
}

/** What the HTTP front of a role serves besides its own routes. */
export interface HttpFrontDeps {
  role: string;
  registry: Registry;
  /** Extra health details (e.g. the edge's origins). */
  health?: () => Record<string, unknown>;
  /** Serves `/live/*`, when the role has HLS to serve. */
  edge?: Pick<HlsEdge, 'handle'>;
  /** The `/metrics` text, when it is not just `registry`'s (an edge worker answers for every worker). */
  metricsText?: () => Promise<string>;
  /** Bearer token `/metrics` asks for (ONAIR_METRICS_TOKEN); unset: open. */
  metricsToken?: string | undefined;
  /** Serves `/whip/*` (WHIP ingest), when the role takes publishers. */
  whip?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** The request handler shared by the HTTP ports of single roles: `/live/*` (edge), `/whip/*` (origin), `/healthz`, `/metrics`, JSON 404. */
export function createHttpFront(deps: HttpFrontDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { edge, registry } = deps;
  return (req, res) => {
    const url = req.url ?? '/';
    if (edge !== undefined && url.startsWith('/live/')) {
      edge.handle(req, res);
      return;
    }
    res.setHeader('x-content-type-options', 'nosniff');
    const path = url.split('?', 1)[0]!;
    if (deps.whip !== undefined && path.startsWith('/whip/')) {
      deps.whip(req, res);
      return;
    }
    if (path === '/healthz') {
      sendJson(res, 200, { status: 'ok', role: deps.role, pid: process.pid, ...deps.health?.() });
      return;
    }
    if (path === '/metrics') {
      if (!metricsAllowed(deps.metricsToken, req.headers.authorization)) {
        const u = METRICS_UNAUTHORIZED;
        sendError(res, u.status, u.code, u.message, u.headers);
        return;
      }
      (deps.metricsText ?? (() => registry.metrics()))().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
          res.end(text);
        },
        () => sendError(res, 500, 'internal', 'metrics unavailable'),
      );
      return;
    }
    sendError(res, 404, 'not_found', 'not found');
  };
}

/** Node's HTTP server settings for a public port holding many keep-alive viewers. */
function tuneServer(server: Server): void {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
}

/** Whether edges host the viewer WebSocket gateway: they need the shared bus and store (cluster mode). */
function edgeHasChat(config: Config): boolean {
  if (!config.redisUrl || !config.databaseUrl) return false;
  if (!config.viewerTokenSecret) {
    throw new RoleConfigError('an edge with chat (REDIS_URL and DATABASE_URL set) needs ONAIR_VIEWER_TOKEN_SECRET, the same on every node');
  }
  return true;
}

/** The viewer WebSocket gateway of a cluster edge: Redis bus, PostgreSQL store, overlays read from the store. */
async function startEdgeChat(config: Config, logger: Logger, registry: Registry): Promise<{ chat: ChatRole; stop(): Promise<void> }> {
  const db = await openStore(config);
  const events = new EventService(db);
  const chat = createChatRole({
    config,
    logger: logger.child({ part: 'chat' }),
    registry,
    db,
    trustedProxies: new TrustedProxies(config.trustedProxies),
    eventExists: async (id) => (await events.byId(id)) !== undefined,
    overlays: (id) => readViewerOverlays({ db, events, overlays }, id),
  });
  // Only read here (operators change overlays on a main node): no signals to send.
  const overlays = new OverlayService(db, createViewerSignals({ logger }));
  try {
    await chat.start();
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return {
    chat,
    async stop() {
      await chat.stop();
      await db.destroy();
    },
  };
}

/** Runs one complete edge in this process on `config.httpPort`: HLS, and the chat gateway in cluster mode. */
async function startEdgeProcess(config: Config, logger: Logger, worker: number | undefined): Promise<RunningRole> {
  const registry = createMetricsRegistry();
  if (worker !== undefined) {
    registry.setDefaultLabels({ worker: String(worker) });
    // The primary gathers every worker's registry through prom-client's cluster IPC.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([registry]);
  }
  const edge = createHlsEdge({ config, logger, registry, upstreams: config.originUrls });
  await edge.start();
  const stoppers: (() => Promise<void>)[] = [() => edge.stop()];
  const stop = async () => {
    for (const s of stoppers.reverse()) await s().catch((err: Error) => logger.error({ err: err.message }, 'stop failed'));
  };
  try {
    const chat = edgeHasChat(config) ? await startEdgeChat(config, logger, registry) : undefined;
    if (chat) stoppers.push(() => chat.stop());
    const server = createServer(
      createHttpFront({
        role: 'edge',
        registry,
        edge,
        metricsToken: config.metricsToken,
        health: () => ({ worker, origins: edge.upstreams(), chat: chat !== undefined }),
        ...(worker !== undefined ? { metricsText: () => allWorkersMetrics(registry, logger) } : {}),
      }),
    );
    tuneServer(server);
    if (chat) server.on('upgrade', (req, socket, head) => chat.chat.gateway.handleUpgrade(req, socket, head));
    const httpPort = await listen(server, config.httpPort, config.host);
    // Stops after chat (whose WebSockets would hold it open) and before the HLS edge.
    stoppers.splice(1, 0, () => closeServer(server, 1_000));
    return { httpPort, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

let metricsRequests = 0;

/** An edge worker's `/metrics`: every worker's series (each labelled `worker`), gathered by the primary; this worker's alone if that fails. */
function allWorkersMetrics(registry: Registry, logger: Logger): Promise<string> {
  const id = `${process.pid}-${++metricsRequests}`;
  return new Promise<string>((resolve) => {
    const done = (text: string | undefined, why?: string) => {
      clearTimeout(timer);
      process.off('message', onMessage);
      if (text !== undefined) return resolve(text);
      logger.warn({ why }, 'cluster metrics unavailable; answering with this worker’s own');
      resolve(registry.metrics());
    };
    const onMessage = (m: { type?: string; id?: string; text?: string; error?: string }) => {
      if (m?.type === 'onair-metrics' && m.id === id) done(m.text, m.error);
    };
    const timer = setTimeout(() => done(undefined, 'no answer from the primary'), 6_000);
    process.on('message', onMessage);
    process.send!({ type: 'onair-metrics-request', id });
  });
}

/** How many edge workers `config` asks for (0 = one per core). */
export function edgeWorkerCount(config: Config): number {
  return config.edgeWorkers > 0 ? config.edgeWorkers : availableParallelism();
}

/**
 * Starts the edge role. With one worker it runs in this process; with more, this process becomes the
 * cluster primary: it forks the workers (each re-runs this command and serves the shared port), restarts
 * any that dies, and stops them all on stop().
 */
export async function startEdgeRole(config: Config, logger: Logger): Promise<RunningRole> {
  if (config.originUrls.length === 0) {
    throw new RoleConfigError('the edge role needs at least one origin: --origin http://HOST:PORT (or ONAIR_ORIGIN_URLS)');
  }
  edgeHasChat(config); // a chat edge without the shared secret stops here, before any worker starts
  const workers = edgeWorkerCount(config);
  if (cluster.isWorker) {
    const id = cluster.worker!.id;
    const role = await startEdgeProcess(config, logger.child({ role: 'edge', worker: id }), id);
    process.send?.({ type: 'onair-edge-listening', port: role.httpPort });
    return role;
  }
  if (workers === 1) {
    const role = await startEdgeProcess(config, logger.child({ role: 'edge' }), undefined);
    logger.info({ httpPort: role.httpPort, origins: config.originUrls, workers: 1 }, 'onair edge is up');
    return role;
  }
  return startEdgePrimary(config, logger.child({ role: 'edge-primary' }), workers);
}

/** The cluster primary: forks, watches and restarts edge workers. */
async function startEdgePrimary(config: Config, log: Logger, count: number): Promise<RunningRole> {
  let stopping = false;
  let port = config.httpPort;
  const live = new Set<Worker>();
  const starts: number[] = [];
  const aggregator = new AggregatorRegistry();

  const fork = (): Promise<number> =>
    new Promise((resolve, reject) => {
      // listen(0) in every worker would share one random port only after the first has bound: pin it.
      const w = cluster.fork({ ONAIR_HTTP_PORT: String(port) });
      live.add(w);
      starts.push(Date.now());
      let listening = false;
      w.on('message', (m: { type?: string; port?: number; id?: string }) => {
        if (m?.type === 'onair-edge-listening' && typeof m.port === 'number') {
          listening = true;
          resolve(m.port);
        } else if (m?.type === 'onair-metrics-request') {
          aggregator.clusterMetrics().then(
            (text) => w.isConnected() && w.send({ type: 'onair-metrics', id: m.id, text }),
            (err: Error) => w.isConnected() && w.send({ type: 'onair-metrics', id: m.id, error: err.message }),
          );
        }
      });
      w.on('exit', (code, signal) => {
        live.delete(w);
        if (!listening) reject(new Error(`edge worker exited before listening (code ${code}, signal ${signal})`));
        if (stopping) return;
        // Back off when workers die young, so a crash loop does not spin the machine.
        const recent = starts.filter((t) => Date.now() - t < 30_000).length;
        const delayMs = Math.min(30_000, recent > count ? 1_000 * (recent - count) : 200);
        log.error({ pid: w.process.pid, code, signal, restartInMs: delayMs }, 'edge worker died; restarting');
        setTimeout(() => {
          if (!stopping) fork().catch((err: Error) => log.error({ err: err.message }, 'edge worker restart failed'));
        }, delayMs).unref();
      });
    });

  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(
      [...live].map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const t = setTimeout(() => w.process.kill('SIGKILL'), 10_000);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.process.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    port = await fork();
    await Promise.all(Array.from({ length: count - 1 }, fork));
  } catch (err) {
    await stop();
    throw err;
  }
  log.info({ httpPort: port, origins: config.originUrls, workers: count }, 'onair edge is up');
  return { httpPort: port, stop };
}

/**
 * Starts the origin role: store (stream-key auth, event status), RTMP ingest and the origin, whose HLS port
 * (`originPort` on `host`) edges pull from; `/healthz` and `/metrics` on `httpPort`.
 */
export async function startOriginRole(config: Config, logger: Logger): Promise<RunningRole & { originUrl: string }> {
  const ffmpegVersion = await checkFfmpeg(config.ffmpegPath);
  logger.info({ ffmpeg: ffmpegVersion }, 'ffmpeg found');
  const registry = createMetricsRegistry();
  const db = await openStore(config);
  const events = new EventService(db, { latencyMode: config.defaultLatencyMode });
  const stoppers: (() => Promise<void>)[] = [() => db.destroy()];
  const stop = async (): Promise<void> => {
    for (const s of stoppers.reverse()) await s().catch((err: Error) => logger.error({ err: err.message }, 'stop failed'));
  };
  try {
    const origin = createOrigin({
      config,
      logger,
      registry,
      bindHost: config.host,
      parent: {
        onStatus: (eventId, status) => {
          events.setStatus(eventId, status).catch((err: Error) => logger.error({ eventId, err: err.message }, 'status update failed'));
        },
        latencyMode: async (eventId) => (await events.byId(eventId))?.latencyMode ?? config.defaultLatencyMode,
      },
    });
    await origin.start();
    stoppers.push(() => origin.stop());

    const { rtmp, whip } = createIngests({
      config,
      logger: logger.child({ role: 'ingest' }),
      registry,
      authorize: (k) => events.authorize(k),
      feeds: origin.feeds,
    });
    stoppers.push(() => whip.stop());
    // WHIP counts wrong keys per client address (req.ip): the same trusted-proxy rule as everywhere.
    const trustedProxies = new TrustedProxies(config.trustedProxies);
    const whipApp = express()
      .disable('x-powered-by')
      .set('trust proxy', (addr: string) => trustedProxies.trusts(addr))
      .use('/whip', whip.router)
      .use(jsonErrorHandler(logger));
    const server = createServer(
      createHttpFront({ role: 'origin', registry, metricsToken: config.metricsToken, health: () => ({ originUrl: origin.url }), whip: whipApp }),
    );
    tuneServer(server);
    const httpPort = await listen(server, config.httpPort, config.host);
    stoppers.push(() => closeServer(server));

    await rtmp.start();
    stoppers.push(() => rtmp.stop());
    logger.info({ httpPort, originUrl: origin.url, rtmpPort: rtmp.port }, 'onair origin is up');
    return { httpPort, originUrl: origin.url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
