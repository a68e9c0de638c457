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

/** Builds the upstream set; probes (`GET /healthz`, any HTTP answer counts as alive) run between start and stop. */
export function createUpstreamSet(opts: UpstreamSetOptions): UpstreamSet {
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
  const list: Upstream[] = opts.urls.map((raw, i) => {
    const url = new URL(raw);
    const ac = new AbortController();
    const u: Upstream = {
      url: raw,
      label: `origin-${i}`,
      prefix: url.pathname.replace(/\/+$/, ''),
      pool: makePool(url.origin),
      down: false,
      downSignal: ac.signal,
    };
    aborters.set(u, ac);
    return u;
  });
  let timer: NodeJS.Timeout | undefined;
  let probing = false;
  let running = true;

  const set: UpstreamSet = {
    list,
    ordered() {
      let anyDown = false;
      for (const u of list) if (u.down) anyDown = true;
      if (!anyDown) return list;
      return [...list.filter((u) => !u.down), ...list.filter((u) => u.down)];
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
      if (!set.allDown()) {
        const old = aborters.get(u)!;
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
      if (running) set.markUp(u);
    } catch (err) {
      if (running) set.markDown(u, `probe: ${(err as Error).message}`);
    }
  }

  async function probeAll(): Promise<void> {
    if (probing || !running) return;
    probing = true;
    try {
      await Promise.all(list.map(probe));
    } finally {
      probing = false;
    }
  }

  return set;
}
