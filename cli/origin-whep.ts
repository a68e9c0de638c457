// WHEP playback on a cluster origin's port (the one edges pull HLS from): viewers' signalling comes through the edges
// (edge/whep-router.ts), the media goes from this origin's ICE addresses (ONAIR_WHIP_ICE_ADDRESSES / _PORTS), fed by
// the feeds the origin receives from ingests (tapped, ingest/feed-taps.ts). Viewer tokens are verified with the
// cluster's shared secret (ONAIR_VIEWER_TOKEN_SECRET), so an origin without it offers no WHEP, nor one with
// ONAIR_WHEP_MAX_VIEWERS=0: then `/whep/*` answers 404, and edges ask the event's next origin.
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import { sendError } from '../lib/http.ts';
import type { TrustedProxies } from '../lib/client-address.ts';
import { jsonErrorHandler } from '../lib/express-errors.ts';
import { ViewerTokens } from '../chat/viewer-tokens.ts';
import type { FeedTaps } from '../ingest/feed-taps.ts';
import { createWhepPlayback, type WhepPlayback } from '../ingest/whep-playback.ts';

/** What an origin's WHEP needs. */
export interface OriginWhepDeps {
  config: Pick<
    Config,
    'ffmpegPath' | 'audioKbps' | 'whipIceAddresses' | 'whipIcePorts' | 'whepMaxViewers' | 'viewerTokenSecret' | 'viewerTokenTtlSec'
  >;
  logger: Logger;
  registry: Registry;
  /** The taps on the feeds this origin receives. */
  taps: Pick<FeedTaps, 'live'>;
  /** Who may name the client (X-Forwarded-For), for logs. */
  trustedProxies: Pick<TrustedProxies, 'trusts'>;
}

/** An origin's WHEP: the route for its port, and the playback service to start and stop (absent when off). */
export interface OriginWhep {
  /** Takes a request under `/whep` (true), or leaves it to the origin's other routes (false). */
  route(req: IncomingMessage, res: ServerResponse): boolean;
  playback?: WhepPlayback;
}

/** True for `/whep` and paths under it. */
function isWhepPath(url: string | undefined): boolean {
  return /^\/whep(?:[/?]|$)/.test(url ?? '');
}

/** Builds the WHEP of one cluster origin (nothing starts until `playback` does). */
export function createOriginWhep(deps: OriginWhepDeps): OriginWhep {
  const { config, logger } = deps;
  const none = (why: string): OriginWhep => ({
    route(req, res) {
      if (!isWhepPath(req.url)) return false;
      sendError(res, 404, 'not_found', `this origin offers no WHEP playback (${why})`);
      return true;
    },
  });
  if (config.whepMaxViewers === 0) return none('ONAIR_WHEP_MAX_VIEWERS=0');
  if (!config.viewerTokenSecret) {
    logger.warn('no WHEP playback on this origin: set ONAIR_VIEWER_TOKEN_SECRET (the same on every node) to verify viewer tokens');
    return none('no ONAIR_VIEWER_TOKEN_SECRET');
  }
  const tokens = new ViewerTokens(Buffer.from(config.viewerTokenSecret, 'utf8'), config.viewerTokenTtlSec);
  const playback = createWhepPlayback({
    config,
    logger: logger.child({ role: 'origin' }),
    registry: deps.registry,
    taps: deps.taps,
    verifyViewer: (token) => tokens.verify(token) !== undefined,
  });
  const app = express()
    .disable('x-powered-by')
    .set('trust proxy', (addr: string) => deps.trustedProxies.trusts(addr))
    .use('/whep', playback.router)
    .use(jsonErrorHandler(logger));
  return {
    playback,
    route(req, res) {
      if (!isWhepPath(req.url)) return false;
      app(req, res);
      return true;
    },
  };
}
