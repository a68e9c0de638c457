// All-in-one mode: every role in one process behind one public HTTP port and the RTMP port.
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express from 'express';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { openStore } from '../lib/store/db.ts';
import { TrustedProxies } from '../lib/client-address.ts';
import { createKeySealer } from '../lib/key-seal.ts';
import { loadServerSecret } from '../lib/server-secret.ts';
import { closeServer, listen, sendError } from '../lib/http.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';
import { METRICS_UNAUTHORIZED, metricsAllowed } from '../lib/metrics-auth.ts';
import { EventService } from '../control/events.ts';
import { createApiRouter } from '../control/api.ts';
import { createOrigin } from '../origin/origin.ts';
import { checkFfmpeg } from '../origin/transcoder.ts';
import { createIngests } from '../ingest/ingests.ts';
import { createHlsEdge } from '../edge/hls-edge.ts';
import { createChatRole } from '../chat/role.ts';
import { createControlPlane, type ControlPlane } from '../control/control-plane.ts';
import { playerDir } from './paths.ts';
import { pageHeadersMiddleware } from '../lib/page-headers.ts';

/** A running all-in-one server. */
export interface AllInOne {
  readonly httpPort: number;
  readonly rtmpPort: number;
  stop(): Promise<void>;
}

/** Starts every role in this process. */
export async function startAllInOne(config: Config, logger: Logger): Promise<AllInOne> {
  const ffmpegVersion = await checkFfmpeg(config.ffmpegPath);
  logger.info({ ffmpeg: ffmpegVersion }, 'ffmpeg found');
  const registry = createMetricsRegistry();
  // One rule for the client's address (HTTP, WebSocket, WHIP), handed to each part that counts or logs addresses.
  const trustedProxies = new TrustedProxies(config.trustedProxies);
  const db = await openStore(config);
  // Keys kept for their one reveal are sealed with a key derived from the server secret (same on every node).
  const sealer = createKeySealer(loadServerSecret(config.dataDir, config.viewerTokenSecret));
  const events = new EventService(db, { latencyMode: config.defaultLatencyMode, sealer });
  // No stream is live at start-up: whatever a previous run left live went offline with it. Not so with a shared
  // PostgreSQL store, where other nodes' live events are listed too.
  if (!config.databaseUrl) for (const e of await events.list(['live'])) await events.setStatus(e.id, 'offline');
  const stoppers: (() => Promise<void>)[] = [() => db.destroy()];
  const stop = async () => {
    for (const s of stoppers.reverse()) await s().catch((err: Error) => logger.error({ err: err.message }, 'stop failed'));
  };
  // Created once the bus is up; the origin's first status change comes after that (a publisher needs ingest).
  let control: ControlPlane | undefined;
  try {
    const origin = createOrigin({
      config,
      logger,
      registry,
      bindHost: '127.0.0.1',
      parent: {
        onStatus: (eventId, status) => {
          (control ? control.setStatus(eventId, status) : events.setStatus(eventId, status)).catch((err: Error) =>
            logger.error({ eventId, err: err.message }, 'status update failed'),
          );
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
      onHealth: (id, stats) => control?.onIngestHealth(id, stats),
    });
    stoppers.push(() => whip.stop());

    const edge = createHlsEdge({
      config,
      logger: logger.child({ role: 'edge' }),
      registry,
      upstreams: config.originUrls.length ? config.originUrls : [origin.url],
    });
    await edge.start();
    stoppers.push(() => edge.stop());

    const app = express();
    app.disable('x-powered-by');
    app.set('trust proxy', (addr: string) => trustedProxies.trusts(addr));
    app.get('/healthz', (_req, res) => {
      res.set('cache-control', 'no-store').json({ status: 'ok', role: config.role });
    });
    app.get('/metrics', async (req, res) => {
      if (!metricsAllowed(config.metricsToken, req.headers.authorization)) {
        const u = METRICS_UNAUTHORIZED;
        return void res.status(u.status).set(u.headers).json({ error: { code: u.code, message: u.message } });
      }
      res.set('content-type', registry.contentType).send(await registry.metrics());
    });
    // Live interaction: bus from ONAIR_REDIS_URL / REDIS_URL (cluster mode) or in-process.
    // The gateway reads joiners' overlays from, and reports viewer totals to, the control plane created just below.
    const chat = createChatRole({
      config,
      logger: logger.child({ role: 'chat' }),
      registry,
      db,
      trustedProxies,
      eventExists: async (id) => (await events.byId(id)) !== undefined,
      overlays: async (id) => control?.viewerOverlays(id),
      onViewerCount: (id, n) => control?.onViewerCount(id, n),
    });
    await chat.start();
    const controlPlane = createControlPlane({
      config,
      logger,
      registry,
      db,
      events,
      bus: chat.backend.bus,
      origin: { stream: (id) => origin.stream(id) },
      disconnect: (id) => rtmp.disconnect(id) || whip.disconnect(id),
      viewerCount: (id) => chat.gateway.viewerCount(id),
      loginLimiter: chat.backend.attempts,
      chat: { tokens: chat.tokens, comments: chat.comments, moderation: chat.moderation, limiter: chat.backend.limiter },
    });
    control = controlPlane;
    await controlPlane.start();
    stoppers.push(() => controlPlane.stop());
    app.use('/api/v1', express.json({ limit: '64kb' }), createApiRouter(controlPlane.router, logger));
    app.use('/whip', whip.router);
    app.use(pageHeadersMiddleware(config));
    const player = playerDir();
    if (!existsSync(join(player, 'watch.html'))) {
      logger.warn({ player }, 'player not built (run npm run build); pages will 404');
    }
    app.use(express.static(player, { index: 'index.html', maxAge: '1h' }));
    app.get('/watch/:slug', (_req, res) => res.sendFile(join(player, 'watch.html')));
    // The operator console routes client-side: /console and /console/events/<id> are one page.
    app.get(['/console', '/console/*rest'], (_req, res) => res.sendFile(join(player, 'console.html')));
    app.use((_req, res) => sendError(res, 404, 'not_found', 'not found'));
    // Errors that escape every router (e.g. the JSON parser above) get JSON too, never Express's HTML page.
    app.use(jsonErrorHandler(logger));

    const server: Server = createServer((req, res) => {
      if (req.url?.startsWith('/live/')) edge.handle(req, res);
      else {
        // Not on /live/: the edge's cached responses carry their own prebuilt header lists.
        res.setHeader('x-content-type-options', 'nosniff');
        app(req, res);
      }
    });
    server.keepAliveTimeout = 65_000;
    server.on('upgrade', (req, socket, head) => chat.gateway.handleUpgrade(req, socket, head));
    const httpPort = await listen(server, config.httpPort, config.host);
    stoppers.push(() => closeServer(server));
    stoppers.push(() => chat.stop()); // runs before closeServer: WebSockets hold the server open

    await rtmp.start();
    stoppers.push(() => rtmp.stop());

    logger.info({ httpPort, rtmpPort: rtmp.port }, 'onair is up');
    return { httpPort, rtmpPort: rtmp.port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
