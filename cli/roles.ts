// Pieces of the single roles (cluster mode), composed by cli/compose.ts: the HTTP front of an edge or origin port,
// the edge's cluster primary and the workers' shared metrics.
import cluster, { type Worker } from 'node:cluster';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { AggregatorRegistry, type Registry } from '../lib/metrics.ts';
import { sendError, sendJson } from '../lib/http.ts';
import { isHlsPath } from '../lib/hls-path.ts';
import { METRICS_UNAUTHORIZED, metricsAllowed } from '../lib/metrics-auth.ts';
import type { Service } from '../lib/lifecycle.ts';
import type { HlsEdge } from '../edge/hls-edge.ts';
import type { EdgePeers } from '../edge/peer-fetch.ts';

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
  /** Serves `/whep/*` (an edge routing WHEP playback to the event's origins, edge/whep-router.ts). */
  whep?: (req: IncomingMessage, res: ServerResponse) => void;
}

/** The request handler shared by the HTTP ports of single roles: `/live/*` and `/whep/*` (edge), `/whip/*` (origin), `/healthz`, `/metrics`, JSON 404. */
export function createHttpFront(deps: HttpFrontDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { edge, registry } = deps;
  return (req, res) => {
    const url = req.url ?? '/';
    if (edge !== undefined && isHlsPath(url)) {
      edge.handle(req, res);
      return;
    }
    res.setHeader('x-content-type-options', 'nosniff');
    const path = url.split('?', 1)[0]!;
    if (deps.whip !== undefined && path.startsWith('/whip/')) {
      deps.whip(req, res);
      return;
    }
    if (deps.whep !== undefined && (path === '/whep' || path.startsWith('/whep/'))) {
      deps.whep(req, res);
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
export function tuneServer(server: Server): void {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
}

/** Whether edges host the viewer WebSocket gateway: they need the shared bus and store (cluster mode). */
export function edgeHasChat(config: Config): boolean {
  if (!config.redisUrl || !config.databaseUrl) return false;
  if (!config.viewerTokenSecret) {
    throw new RoleConfigError('an edge with chat (REDIS_URL and DATABASE_URL set) needs ONAIR_VIEWER_TOKEN_SECRET, the same on every node');
  }
  return true;
}

let metricsRequests = 0;

/** An edge worker's `/metrics`: every worker's series (each labelled `worker`), gathered by the primary; this worker's alone if that fails. */
export function allWorkersMetrics(registry: Registry, logger: Logger): Promise<string> {
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

/** Fork environment telling an edge worker its place among its machine's workers (see {@link edgePeersFromEnv}). */
// Not ONAIR_*: those are settings, and loadConfig rejects unknown ones.
const PEER_ENV = { index: '_ONAIR_EDGE_WORKER_INDEX', count: '_ONAIR_EDGE_WORKER_COUNT', dir: '_ONAIR_EDGE_PEER_DIR' } as const;

/** In an edge worker: its index, the worker count and the peers' socket directory the primary passed; undefined if absent. */
export function edgePeersFromEnv(env: NodeJS.ProcessEnv = process.env): EdgePeers | undefined {
  const index = Number(env[PEER_ENV.index]);
  const count = Number(env[PEER_ENV.count]);
  const dir = env[PEER_ENV.dir];
  if (!Number.isInteger(index) || !Number.isInteger(count) || !dir || index < 1 || index > count) return undefined;
  return { index, count, dir };
}

/** The cluster primary as a Service: start() forks `count` edge workers (each re-runs this command and serves the shared port) and restarts any that dies; stop() stops them all. */
export function edgePrimary(config: Config, log: Logger, count: number): Service & { readonly httpPort: number } {
  let running: { httpPort: number; stop(): Promise<void> } | undefined;
  return {
    get httpPort() {
      return running?.httpPort ?? config.httpPort;
    },
    async start() {
      running = await startEdgePrimary(config, log, count);
    },
    async stop() {
      await running?.stop();
      running = undefined;
    },
  };
}

/** Forks, watches and restarts edge workers. */
async function startEdgePrimary(config: Config, log: Logger, count: number): Promise<{ httpPort: number; stop(): Promise<void> }> {
  let stopping = false;
  let port = config.httpPort;
  const live = new Set<Worker>();
  const starts: number[] = [];
  const aggregator = new AggregatorRegistry();
  // The workers' sockets for asking each other (one origin request per object per machine); mkdtemp makes it 0700.
  const peerDir = mkdtempSync(join(tmpdir(), 'onair-edge-'));

  /** Forks worker `index` (1..count); a restarted worker keeps its index, so it keeps owning the same objects. */
  const fork = (index: number): Promise<number> =>
    new Promise((resolve, reject) => {
      // listen(0) in every worker would share one random port only after the first has bound: pin it.
      const w = cluster.fork({
        ONAIR_HTTP_PORT: String(port),
        [PEER_ENV.index]: String(index),
        [PEER_ENV.count]: String(count),
        [PEER_ENV.dir]: peerDir,
      });
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
          if (!stopping) fork(index).catch((err: Error) => log.error({ err: err.message }, 'edge worker restart failed'));
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
    rmSync(peerDir, { recursive: true, force: true });
  };

  try {
    port = await fork(1);
    await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 2)));
  } catch (err) {
    await stop();
    throw err;
  }
  return { httpPort: port, stop };
}
