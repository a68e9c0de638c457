// All-in-one mode's public HTTP front: every role's routes behind one port (cli/compose.ts builds the services).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { TrustedProxies } from '../lib/client-address.ts';
import { sendError } from '../lib/http.ts';
import { isHlsPath } from '../lib/hls-path.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';
import { METRICS_UNAUTHORIZED, metricsAllowed } from '../lib/metrics-auth.ts';
import { createApiRouter } from '../control/api.ts';
import type { HlsEdge } from '../edge/hls-edge.ts';
import type { WhipIngest } from '../ingest/whip-ingest.ts';
import type { WhepPlayback } from '../ingest/whep-playback.ts';
import type { ControlPlane } from '../control/control-plane.ts';
import { playerDir } from './paths.ts';
import { pageHeadersMiddleware } from '../lib/page-headers.ts';
import { withWatchMeta } from '../lib/page-meta.ts';
import type { EventService } from '../control/events.ts';
import { eventUrls, publicBase } from '../control/public-urls.ts';
import { THUMBNAIL_WIDTH } from '../origin/thumbnails/layout.ts';

/** What the all-in-one front serves. */
export interface AllInOneFrontDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  trustedProxies: TrustedProxies;
  /** Absent on a control node: `/live/*` answers 404. */
  edge?: Pick<HlsEdge, 'handle'>;
  /** Absent on a control node: `/whip` answers 404. */
  whip?: Pick<WhipIngest, 'router'>;
  /** WHEP playback (all-in-one only): absent, `/whep` answers 404. */
  whep?: Pick<WhepPlayback, 'router'>;
  /** WHEP routed to the event's origins (a cluster process that is an edge and a control node, edge/whep-router.ts). */
  whepRoute?: (req: IncomingMessage, res: ServerResponse) => void;
  control: Pick<ControlPlane, 'router'>;
  /** The events, for the watch page's title and link-preview tags (og:image: the live thumbnail). */
  events?: Pick<EventService, 'bySlug'>;
}

/**
 * The request handler of the all-in-one port: `/live/*` (edge), the API, WHIP, pages, `/healthz`, `/metrics`. A
 * control node (cli/control-node.ts) serves the same front without the edge and WHIP.
 */
export function createAllInOneFront(deps: AllInOneFrontDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, logger, registry, trustedProxies, edge } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', (addr: string) => trustedProxies.trusts(addr));
  app.get('/healthz', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok', role: config.role.join(',') });
  });
  app.get('/metrics', async (req, res) => {
    if (!metricsAllowed(config.metricsToken, req.headers.authorization)) {
      const u = METRICS_UNAUTHORIZED;
      return void res
        .status(u.status)
        .set(u.headers)
        .json({ error: { code: u.code, message: u.message } });
    }
    res.set('content-type', registry.contentType).send(await registry.metrics());
  });
  app.use('/api/v1', express.json({ limit: '64kb' }), createApiRouter(deps.control.router, logger));
  if (deps.whip) app.use('/whip', deps.whip.router);
  if (deps.whep) app.use('/whep', deps.whep.router);
  app.use(pageHeadersMiddleware(config));
  const player = playerDir();
  if (!existsSync(join(player, 'watch.html'))) {
    logger.warn({ player }, 'player not built (run npm run build); pages will 404');
  }
  app.use(express.static(player, { index: 'index.html', maxAge: '1h' }));
  let watchHtml: Promise<string> | undefined;
  app.get('/watch/:slug', async (req, res) => {
    const e = await deps.events?.bySlug(req.params.slug).catch((err: Error) => {
      logger.warn({ err: err.message }, 'watch page: event lookup failed; serving the page without its preview tags');
      return undefined;
    });
    if (!e) return res.sendFile(join(player, 'watch.html'));
    watchHtml ??= readFile(join(player, 'watch.html'), 'utf8');
    watchHtml.catch(() => (watchHtml = undefined));
    const urls = eventUrls({ publicUrl: publicBase(config, config.httpPort), rtmpPort: config.rtmpPort }, e);
    const html = withWatchMeta(await watchHtml, {
      title: e.title,
      description: e.description,
      watchUrl: urls.watchUrl,
      imageUrl: urls.thumbnailUrl,
      imageWidth: THUMBNAIL_WIDTH,
    });
    res.status(200).set({ 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).send(html);
  });
  app.get('/clip/:clipId', (_req, res) => res.sendFile(join(player, 'clip.html')));
  // The operator console routes client-side: /console and /console/events/<id> are one page.
  app.get(['/console', '/console/*rest'], (_req, res) => res.sendFile(join(player, 'console.html')));
  app.use((_req, res) => sendError(res, 404, 'not_found', 'not found'));
  // Errors that escape every router (e.g. the JSON parser above) get JSON too, never Express's HTML page.
  app.use(jsonErrorHandler(logger));

  return (req, res) => {
    if (edge && req.url !== undefined && isHlsPath(req.url)) edge.handle(req, res);
    else if (deps.whepRoute && /^\/whep(?:[/?]|$)/.test(req.url ?? '')) {
      res.setHeader('x-content-type-options', 'nosniff');
      deps.whepRoute(req, res);
    } else {
      // Not on /live/: the edge's cached responses carry their own prebuilt header lists.
      res.setHeader('x-content-type-options', 'nosniff');
      app(req, res);
    }
  };
}
