// The edge's HLS serving path: raw Node http in front of origins (a static list, or in cluster mode each event's
// replicas from its placement), through the coalescing cache. This file wires the pieces (cache, origins, router,
// failover fetch, stale playlists, response writer, metrics) and holds the request handler.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { closeServer, listen } from '../lib/http.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { PlacementSource } from '../lib/placement/types.ts';
import { parseHlsRequest, type HlsObject } from '../lib/hls-path.ts';
import { CoalescingCache, type CacheSubscriber } from './coalescing-cache.ts';
import { sendError } from './edge-errors.ts';
import { EdgeMetrics } from './edge-metrics.ts';
import { createFailoverFetch, NEGATIVE_TTL_MS, PLAYLIST_TTL_MS, staticRouter, type FetchRouter } from './failover-fetch.ts';
import { createPeerFetch, PeerServer, peerSocketPath, type EdgePeers, type PeerFetch } from './peer-fetch.ts';
import { createReplicaRouter, type ReplicaRouter } from './replica-router.ts';
import { ResponseWriter, StreamedResponse } from './response-writer.ts';
import { StalePlaylists } from './stale-playlists.ts';
import { createUpstreamPool, createUpstreamSet, type Upstream, type UpstreamPool, type UpstreamSet } from './upstream-set.ts';

/** What the HLS edge needs from its parent: its origins, either a static list or the events' placements. */
export type HlsEdgeDeps = {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** The other workers of this machine (more than one worker): objects another worker owns are asked of it. */
  peers?: EdgePeers;
} & (
  | {
      /** Origin base URLs (e.g. `http://origin:9000`), tried in order for every event (all-in-one, `--origin`). */
      upstreams: string[];
      placements?: undefined;
    }
  | {
      /** Cluster mode: each event is fetched from the origins of its placement, sticking to one replica at a time. */
      placements: PlacementSource;
      upstreams?: undefined;
      /**
       * Answers HLS requests of events that are not live from their recordings (in the shared ONAIR_STORAGE_URL): an
       * event without a placement is asked of it through a loopback server of this process, and its answers are
       * cached like any origin's. Absent: 404 `not_live`.
       */
      replay?: (req: IncomingMessage, res: ServerResponse) => void;
    }
);

/** Counts of the origins the edge knows and of those it considers reachable (no URLs: `/healthz` is open). */
export interface UpstreamHealth {
  /** Configured origins, or (placements) those learnt from placements and used lately. */
  total: number;
  up: number;
}

/** The HLS edge: `handle` serves every request whose path starts with `/live/` (or `/clips/`, answered from recordings). */
export interface HlsEdge {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** How many origins the edge knows and how many of them are reachable. */
  upstreams(): UpstreamHealth;
  /** Starts probing the origins (the lifecycle.ts Service contract; creating the edge starts nothing). */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops probing, closes the origin pools and drops the cache; start() may bring it up again. */
  stop(): Promise<void>;
}

/** How often every origin is probed. */
const PROBE_INTERVAL_MS = 1_000;
/** An origin learnt from placements that no request used for this long is forgotten. */
const ORIGIN_IDLE_MS = 5 * 60_000;

/** A subscriber that only keeps a background fetch going (its result lands in the cache). */
const IGNORE: CacheSubscriber = { head() {}, data() {}, end() {}, error() {} };

/** The value of request header `name` (lower case) from the raw list, without building `req.headers`. */
function rawHeader(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && k.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
}

/** How many of `list` there are and how many are up. */
function countUp(list: readonly Upstream[]): UpstreamHealth {
  let up = 0;
  for (const u of list) if (!u.down) up++;
  return { total: list.length, up };
}

/** Builds the HLS edge: parses the path, serves hits from memory, coalesces misses upstream with failover. */
export function createHlsEdge(deps: HlsEdgeDeps): HlsEdge {
  const { config } = deps;
  const log = deps.logger.child({ component: 'hls-edge' });
  const cache = new CoalescingCache({ maxBytes: config.edgeCacheBytes, negativeTtlMs: NEGATIVE_TTL_MS });
  const baseTimeoutMs = config.edgeUpstreamTimeoutMs;
  /** Held requests (blocking reloads, hinted parts) may legitimately wait 3 target durations at the origin. */
  const heldTimeoutMs = baseTimeoutMs + 3 * config.segmentTargetSec * 1000;
  const upstreamOptions = {
    timeoutMs: Math.min(2_000, baseTimeoutMs),
    longestRequestMs: heldTimeoutMs,
    probeIntervalMs: PROBE_INTERVAL_MS,
    logger: log,
  };
  // Static: one fixed set, today's failover order. Placements: origins learnt per event, with replica stickiness.
  let upstreams: UpstreamSet | undefined;
  let origins: UpstreamSet | UpstreamPool;
  let router: FetchRouter<HlsObject>;
  let replicaRouter: ReplicaRouter | undefined;
  let replayServer: Server | undefined;
  let replayUrl: string | undefined;
  if (deps.placements !== undefined) {
    const pool = createUpstreamPool({ ...upstreamOptions, idleMs: ORIGIN_IDLE_MS });
    if (deps.replay !== undefined) replayServer = createServer(deps.replay);
    replicaRouter = createReplicaRouter({
      placements: deps.placements,
      pool,
      replay: () => (replayUrl === undefined ? undefined : { upstream: pool.get(replayUrl), label: 'recordings' }),
    });
    router = replicaRouter;
    origins = pool;
  } else {
    upstreams = createUpstreamSet({ ...upstreamOptions, urls: deps.upstreams });
    router = staticRouter(upstreams);
    origins = upstreams;
  }
  const stale = new StalePlaylists({ boundMs: PLAYLIST_TTL_MS + config.edgeStaleIfErrorMs });
  const metrics = new EdgeMetrics(deps.registry, cache, { list: origins.list, byPosition: upstreams !== undefined });
  const out = new ResponseWriter<HlsObject>({
    metrics,
    stale,
    stallMs: config.edgeClientStallMs,
    bufferBytes: config.edgeClientBufferBytes,
  });
  const fetchUpstream = createFailoverFetch<HlsObject>({ router, metrics, stale, logger: log, timeoutMs: baseTimeoutMs, heldTimeoutMs });
  const count = metrics.count;
  // Several workers on one machine: each object is fetched from origins by its owner worker only.
  const peers = deps.peers !== undefined && deps.peers.count > 1 ? deps.peers : undefined;
  let peerFetch: PeerFetch<HlsObject> | undefined;
  let peerServer: PeerServer | undefined;
  if (peers !== undefined) {
    peerFetch = createPeerFetch<HlsObject>({
      peers,
      fetchUpstream,
      stale,
      timeoutMs: heldTimeoutMs + baseTimeoutMs,
      count: (result) => metrics.peerRequest(result),
      logger: log,
    });
    peerServer = new PeerServer(peerSocketPath(peers.dir, peers.index), (req, res) => handle(req, res));
  }
  const fetchObject = peerFetch?.fetch ?? fetchUpstream;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    metrics.track(req.socket);
    const method = req.method;
    const isHead = method === 'HEAD';
    if (method !== 'GET' && !isHead) {
      sendError(res, 405, 'method_not_allowed', 'only GET and HEAD are allowed', ['allow', 'GET, HEAD']);
      count('invalid', 405, 0);
      return;
    }
    const url = req.url ?? '/';
    const ifNoneMatch = rawHeader(req.rawHeaders, 'if-none-match');
    // Fast path: a URL that is itself a stored key (keys only ever come from validated paths) needs no parsing.
    const known = cache.lookup(url);
    if (known !== undefined && known.wire !== undefined) {
      out.serveHit(known, known.wire.kind, res, isHead, ifNoneMatch);
      return;
    }
    const q = url.indexOf('?');
    const parsed = q === -1 ? parseHlsRequest(url, '') : parseHlsRequest(url.slice(0, q), url.slice(q));
    if ('error' in parsed) {
      const status = parsed.error === 'bad_request' ? 400 : 404;
      sendError(res, status, parsed.error, parsed.message);
      count('invalid', status, 0);
      return;
    }
    const entry = known ?? cache.lookup(parsed.cacheKey);
    if (entry !== undefined) {
      out.serveHit(entry, parsed.kind, res, isHead, ifNoneMatch);
      return;
    }

    const obj = parsed;
    // No (static) origin reachable: a playlist within its stale bound is answered at once rather than after timeouts,
    // while one (coalesced) fetch in the background finds out whether an origin answers again.
    if (obj.kind === 'playlist' && upstreams?.allDown() === true) {
      const s = stale.find(obj);
      if (s !== undefined) {
        out.serveStale(s, res, obj.kind, isHead);
        cache.subscribe(obj.cacheKey, (sink, signal) => fetchObject(obj, sink, signal), IGNORE);
        return;
      }
    }

    const writer = new StreamedResponse(out, obj, res, isHead, ifNoneMatch);
    writer.subscription = cache.subscribe(obj.cacheKey, (sink, signal) => fetchObject(obj, sink, signal), writer);
    if (res.destroyed || req.destroyed) writer.onClose();
    else res.once('close', writer.onClose);
  }

  let running = false;
  return {
    handle,
    upstreams: () => countUp(origins.list),
    async start() {
      if (running) return;
      running = true;
      if (replayServer !== undefined && replayUrl === undefined) {
        replayUrl = `http://127.0.0.1:${await listen(replayServer, 0, '127.0.0.1')}`;
      }
      origins.start();
      await peerServer?.start();
    },
    async stop() {
      // Unconditional: a request handled before start() opens pool connections that stop must still close.
      running = false;
      await peerServer?.stop();
      await peerFetch?.close();
      cache.clear();
      stale.clear();
      replicaRouter?.clear();
      await origins.stop();
      if (replayServer !== undefined && replayUrl !== undefined) {
        replayUrl = undefined;
        await closeServer(replayServer, 500);
      }
    },
  };
}
