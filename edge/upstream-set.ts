// The edge's origins: one keep-alive pool each, health by request outcome and by an active probe, failover order.
import { Pool } from 'undici';
import type { Logger } from '../lib/logger.ts';

/** One origin base URL, its keep-alive pool and its health. */
export interface Upstream {
  /** The configured base URL. */
  readonly url: string;
  /** `origin-<n>` for the n-th configured URL: how metrics and client-facing messages name it (URLs are internal). */
  readonly label: string;
  /** Path prefix of the base URL, without trailing slash. */
  readonly prefix: string;
  /** Keep-alive connection pool to the origin (replaced on restart). */
  pool: Pool;
  /** True while the origin is considered unreachable (a request or probe timed out or failed to connect). */
  down: boolean;
  /** Aborted when the origin is marked down: requests still waiting on it move to the next origin. */
  downSignal: AbortSignal;
}

/** Options of an {@link UpstreamSet}. */
export interface UpstreamSetOptions {
  /** Origin base URLs, in order of preference. */
  urls: string[];
  /** Connect timeout and probe timeout, in ms. */
  timeoutMs: number;
  /** Longest a request may wait for headers or between body bytes (held LL-HLS requests included), in ms. */
  longestRequestMs: number;
  /** How often every origin is probed, in ms. */
  probeIntervalMs: number;
  logger: Logger;
}

/** The origins of one edge, with failover order and self-healing health. */
export interface UpstreamSet {
  readonly list: readonly Upstream[];
  /** Origins in the order to try: those up first, in configured order, then those down. */
  ordered(): Upstream[];
  /** True when every origin is down. */
  allDown(): boolean;
  /** Records a failure to reach `u` (timeout, refused connection). */
  markDown(u: Upstream, reason: string): void;
  /** Records that `u` answered. */
  markUp(u: Upstream): void;
  start(): void;
  stop(): Promise<void>;
}

/** The health and pool bookkeeping shared by the static set and the dynamic pool. */
interface Core {
  /** Every origin known now (the static set's never changes; the pool's grows and is swept). */
  readonly list: Upstream[];
  add(raw: string, label: string): Upstream;
  remove(u: Upstream): void;
  allDown(): boolean;
  markDown(u: Upstream, reason: string): void;
  markUp(u: Upstream): void;
  start(): void;
  stop(): Promise<void>;
}

/** Origin health (by outcome and probe) over a list of origins that may change; probes run between start and stop. */
function createCore(opts: Omit<UpstreamSetOptions, 'urls'>, onProbeRound?: () => void): Core {
  const log = opts.logger;
  const makePool = (origin: string): Pool =>
    new Pool(origin, {
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: opts.timeoutMs },
      headersTimeout: opts.longestRequestMs,
      bodyTimeout: opts.longestRequestMs,
    });
  const aborters = new Map<Upstream, AbortController>();
  const list: Upstream[] = [];
  let timer: NodeJS.Timeout | undefined;
  let probing = false;
  let running = true;

  const core: Core = {
    list,
    add(raw, label) {
      const url = new URL(raw);
      const ac = new AbortController();
      const u: Upstream = {
        url: raw,
        label,
        prefix: url.pathname.replace(/\/+$/, ''),
        pool: makePool(url.origin),
        down: false,
        downSignal: ac.signal,
      };
      aborters.set(u, ac);
      list.push(u);
      return u;
    },
    remove(u) {
      const i = list.indexOf(u);
      if (i !== -1) list.splice(i, 1);
      aborters.delete(u);
      void u.pool.destroy().catch(() => undefined);
    },
    allDown() {
      for (const u of list) if (!u.down) return false;
      return true;
    },
    markDown(u, reason) {
      if (u.down) return;
      u.down = true;
      log.warn({ upstream: u.url, reason }, 'origin marked down');
      // Requests held by this origin move on, but only when another origin may answer them.
      if (!core.allDown()) {
        const old = aborters.get(u);
        if (old === undefined) return;
        const fresh = new AbortController();
        aborters.set(u, fresh);
        u.downSignal = fresh.signal;
        old.abort(new Error(`origin ${u.url} is down`));
      }
    },
    markUp(u) {
      if (!u.down) return;
      u.down = false;
      log.info({ upstream: u.url }, 'origin is back');
    },
    start() {
      running = true;
      for (const u of list) if (u.pool.destroyed || u.pool.closed) u.pool = makePool(new URL(u.url).origin);
      if (timer === undefined) {
        timer = setInterval(() => void probeAll(), opts.probeIntervalMs);
        timer.unref();
      }
    },
    async stop() {
      running = false;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await Promise.all(list.map((u) => u.pool.destroy().catch(() => undefined)));
    },
  };

  async function probe(u: Upstream): Promise<void> {
    try {
      const res = await u.pool.request({
        path: u.prefix + '/healthz',
        method: 'GET',
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: AbortSignal.timeout(opts.timeoutMs + 100),
      });
      await res.body.dump().catch(() => undefined);
      if (running) core.markUp(u);
    } catch (err) {
      if (running && !u.pool.destroyed) core.markDown(u, `probe: ${(err as Error).message}`);
    }
  }

  async function probeAll(): Promise<void> {
    if (probing || !running) return;
    probing = true;
    try {
      onProbeRound?.();
      await Promise.all([...list].map(probe));
    } finally {
      probing = false;
    }
  }

  return core;
}

/** Builds the upstream set; probes (`GET /healthz`, any HTTP answer counts as alive) run between start and stop. */
export function createUpstreamSet(opts: UpstreamSetOptions): UpstreamSet {
  const core = createCore(opts);
  opts.urls.forEach((raw, i) => core.add(raw, `origin-${i}`));
  const list = core.list;
  return {
    list,
    ordered() {
      let anyDown = false;
      for (const u of list) if (u.down) anyDown = true;
      if (!anyDown) return list;
      return [...list.filter((u) => !u.down), ...list.filter((u) => u.down)];
    },
    allDown: core.allDown,
    markDown: core.markDown,
    markUp: core.markUp,
    start: core.start,
    stop: core.stop,
  };
}

/** Options of an {@link UpstreamPool}. */
export interface UpstreamPoolOptions extends Omit<UpstreamSetOptions, 'urls'> {
  /** An origin no request has used for this long is forgotten (its connections closed), in ms. */
  idleMs: number;
  /** Monotonic clock, in ms (default performance.now). */
  now?: () => number;
}

/** Origins learnt at run time (from placements): one keep-alive pool and health per base URL, forgotten when idle. */
export interface UpstreamPool {
  /** Every origin known now. */
  readonly list: readonly Upstream[];
  /** The origin with base URL `url`, created on first use; each call counts as a use. */
  get(url: string): Upstream;
  markDown(u: Upstream, reason: string): void;
  markUp(u: Upstream): void;
  start(): void;
  /** Stops probing and forgets every origin (closing its connections). */
  stop(): Promise<void>;
}

/** Builds an upstream pool; probes run between start and stop, and each probe round forgets the idle origins. */
export function createUpstreamPool(opts: UpstreamPoolOptions): UpstreamPool {
  const now = opts.now ?? (() => performance.now());
  const byUrl = new Map<string, Upstream>();
  const lastUsed = new Map<Upstream, number>();
  const sweep = (): void => {
    const t = now();
    for (const [url, u] of byUrl) {
      if (t - lastUsed.get(u)! < opts.idleMs) continue;
      byUrl.delete(url);
      lastUsed.delete(u);
      core.remove(u);
    }
  };
  const core = createCore(opts, sweep);
  return {
    list: core.list,
    get(url) {
      let u = byUrl.get(url);
      if (u === undefined) {
        // Internal label only: metrics name an event's origins by their position in its placement.
        u = core.add(url, 'origin');
        byUrl.set(url, u);
      }
      lastUsed.set(u, now());
      return u;
    },
    markDown: core.markDown,
    markUp: core.markUp,
    start: core.start,
    async stop() {
      await core.stop();
      for (const u of [...core.list]) core.remove(u);
      byUrl.clear();
      lastUsed.clear();
    },
  };
}
