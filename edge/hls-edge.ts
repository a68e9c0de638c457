// The edge's HLS serving path: raw Node http in front of origins, through the coalescing cache.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool } from 'undici';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts';
import { CoalescingCache, type CacheSubscriber, type FetchSink, type ResponseHead, type Subscription } from './coalescing-cache.ts';
import { parseHlsRequest, type HlsKind, type HlsObject } from '../lib/hls-path.ts';

/** What the HLS edge needs from its parent. */
export interface HlsEdgeDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** Origin base URLs (e.g. `http://origin:9000`), tried in order. */
  upstreams: string[];
}

/** The HLS edge: `handle` serves every request whose path starts with `/live/`. */
export interface HlsEdge {
  handle(req: IncomingMessage, res: ServerResponse): void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Headers and TTL of one kind of object. */
interface Policy {
  contentType: string;
  cacheControl: string;
  ttlMs: number;
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const IMMUTABLE = 'public, max-age=3600, immutable';
const policies: Readonly<Record<HlsKind, Policy>> = {
  master: { contentType: PLAYLIST_TYPE, cacheControl: 'max-age=2', ttlMs: 2_000 },
  playlist: { contentType: PLAYLIST_TYPE, cacheControl: 'max-age=1', ttlMs: 1_000 },
  init: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
  segment: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
  part: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
};
/** A blocking reload (`_HLS_msn`) names one playlist version for good. */
const blockingPolicy: Policy = { contentType: PLAYLIST_TYPE, cacheControl: 'max-age=60', ttlMs: 60_000 };
const NEGATIVE_TTL_MS = 1_000;
const JSON_TYPE = 'application/json; charset=utf-8';
const KIND_LABELS = ['master', 'playlist', 'init', 'segment', 'part', 'invalid'] as const;

/** The edge's JSON error body. */
function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: { code, message } }));
}

/** A failure to get an answer from any upstream; carries the status the client gets. */
class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly status: 502 | 504,
    message: string,
  ) {
    super(message);
  }
}

/** One origin base URL and its keep-alive pool. */
interface Upstream {
  url: string;
  /** Scheme, host and port of `url`. */
  origin: string;
  pool: Pool;
  /** Path prefix of the base URL, without trailing slash. */
  prefix: string;
  /** Skip this upstream (unless all are down) until this time, after a failure. */
  downUntil: number;
}

/** How long an upstream that failed is tried only after the others. */
const DOWN_PENALTY_MS = 2_000;

/** Writes one client's response from a (possibly shared, still streaming) upstream fetch. */
class StreamedResponse implements CacheSubscriber {
  subscription: Subscription | undefined;
  private done = false;
  private status = 0;
  private sent = 0;

  constructor(
    private readonly res: ServerResponse,
    private readonly kind: HlsKind,
    private readonly isHead: boolean,
    private readonly onDone: (kind: string, status: number, bytes: number) => void,
  ) {}

  /** Client went away: stop receiving; the shared fetch goes on for the others. */
  readonly onClose = (): void => {
    this.subscription?.cancel();
    if (this.done) return;
    this.done = true;
    this.onDone(this.kind, 499, this.sent); // nginx's "client closed request"
  };

  head(h: ResponseHead): void {
    if (this.done) return;
    this.status = h.status;
    const headers = flatHeaders(h.headers, h.storedAt);
    this.res.writeHead(h.status, headers);
    if (this.isHead) this.finish();
  }

  data(chunk: Buffer): void {
    if (this.done) return;
    // The chunk is shared by every joiner and held by the in-flight fetch anyway, so a slow client's
    // backlog is references, not copies; one slow viewer must never slow the shared fetch.
    this.res.write(chunk);
    this.sent += chunk.length;
  }

  end(): void {
    if (!this.done) this.finish();
  }

  error(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.subscription?.cancel();
    if (this.res.headersSent) {
      // The status line is gone; cutting the connection is the only honest signal of a truncated body.
      this.res.destroy(err);
      this.onDone(this.kind, this.status, this.sent);
      return;
    }
    const status = err instanceof UpstreamError ? err.status : 502;
    const code = status === 504 ? 'gateway_timeout' : 'bad_gateway';
    sendError(this.res, status, code, err instanceof UpstreamError ? err.message : 'upstream failed');
    this.onDone(this.kind, status, 0);
  }

  private finish(): void {
    this.done = true;
    this.res.end();
    this.onDone(this.kind, this.status, this.sent);
  }
}

/** The stored headers as a flat [name, value, …] list, plus `age`. */
function flatHeaders(h: Readonly<Record<string, string>>, storedAt: number): string[] {
  const out: string[] = [];
  for (const k in h) out.push(k, h[k]!);
  const age = (Date.now() - storedAt) / 1000;
  out.push('age', age > 0 ? String(Math.floor(age)) : '0');
  return out;
}

/** Sends a JSON error response. */
function sendError(res: ServerResponse, status: number, code: string, message: string, extra?: string[]): void {
  const body = errorBody(code, message);
  const headers = [
    'content-type', JSON_TYPE,
    'content-length', String(body.length),
    'cache-control', status === 404 ? 'max-age=1' : 'no-store',
    'access-control-allow-origin', '*',
  ];
  if (extra !== undefined) headers.push(...extra);
  res.writeHead(status, headers);
  res.end(body);
}

/** Builds the HLS edge: parses the path, serves hits from memory, coalesces misses upstream with failover. */
export function createHlsEdge(deps: HlsEdgeDeps): HlsEdge {
  const { config, registry } = deps;
  const log = deps.logger.child({ component: 'hls-edge' });
  const cache = new CoalescingCache({ maxBytes: config.edgeCacheBytes, negativeTtlMs: NEGATIVE_TTL_MS });
  const baseTimeoutMs = config.edgeUpstreamTimeoutMs;
  const blockingTimeoutMs = baseTimeoutMs + 3 * config.segmentTargetSec * 1000;

  const makePool = (origin: string): Pool =>
    new Pool(origin, {
      connections: 128,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      connect: { timeout: baseTimeoutMs },
      headersTimeout: blockingTimeoutMs,
      bodyTimeout: blockingTimeoutMs,
    });
  const upstreams: Upstream[] = deps.upstreams.map((u) => {
    const url = new URL(u);
    return { url: u, origin: url.origin, pool: makePool(url.origin), prefix: url.pathname.replace(/\/+$/, ''), downUntil: 0 };
  });

  // Hot-path counters are plain numbers, turned into Prometheus samples only when scraped.
  const requestCounts: Record<string, Float64Array> = {};
  for (const k of KIND_LABELS) requestCounts[k] = new Float64Array(600);
  let bytesSent = 0;

  new Counter({
    name: 'onair_edge_requests_total',
    help: 'HLS requests served by the edge, by object kind and response status.',
    labelNames: ['kind', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const kind of KIND_LABELS) {
        const counts = requestCounts[kind]!;
        for (let s = 0; s < counts.length; s++) if (counts[s]! > 0) this.inc({ kind, status: String(s) }, counts[s]!);
      }
    },
  });
  new Counter({
    name: 'onair_edge_cache_events_total',
    help: 'Edge cache lookups: hit (stored), miss (started an upstream fetch), coalesced (joined one).',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (cache.hits > 0) this.inc({ result: 'hit' }, cache.hits);
      if (cache.misses > 0) this.inc({ result: 'miss' }, cache.misses);
      if (cache.coalesced > 0) this.inc({ result: 'coalesced' }, cache.coalesced);
    },
  });
  const upstreamRequests = new Counter({
    name: 'onair_edge_upstream_requests_total',
    help: 'Requests from the edge to origins, by status (HTTP status, "error" or "timeout").',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const upstreamSeconds = new Histogram({
    name: 'onair_edge_upstream_seconds',
    help: 'Duration of edge-to-origin requests, headers through last body byte.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8],
    registers: [registry],
  });
  new Counter({
    name: 'onair_edge_bytes_sent_total',
    help: 'HLS body bytes the edge sent to clients.',
    registers: [registry],
    collect() {
      this.reset();
      if (bytesSent > 0) this.inc(bytesSent);
    },
  });
  new Gauge({
    name: 'onair_edge_cache_bytes',
    help: 'Bytes held by the edge cache.',
    registers: [registry],
    collect() {
      this.set(cache.bytes);
    },
  });

  const count = (kind: string, status: number, bytes: number): void => {
    const c = requestCounts[kind];
    if (c !== undefined && status >= 0 && status < c.length) c[status]!++;
    bytesSent += bytes;
  };

  /** Upstreams in the order to try: healthy ones first, in configured order. */
  function upstreamOrder(): Upstream[] {
    const now = Date.now();
    const up = upstreams.filter((u) => u.downUntil <= now);
    if (up.length === upstreams.length) return up;
    for (const u of upstreams) if (u.downUntil > now) up.push(u);
    return up;
  }

  /** The one upstream fetch for an object: failover across origins until one answers. */
  async function fetchUpstream(obj: HlsObject, sink: FetchSink, signal: AbortSignal): Promise<void> {
    const timeoutMs = obj.blocking ? blockingTimeoutMs : baseTimeoutMs;
    let timedOut = false;
    let lastProblem = 'no upstream configured';
    for (const up of upstreamOrder()) {
      const started = performance.now();
      let res: Awaited<ReturnType<Pool['request']>>;
      try {
        res = await up.pool.request({
          path: up.prefix + obj.upstreamPath,
          method: 'GET',
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal,
        });
      } catch (err) {
        if (signal.aborted) throw err;
        const code = (err as { code?: string }).code;
        const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
        timedOut ||= timeout;
        upstreamRequests.inc({ status: timeout ? 'timeout' : 'error' });
        upstreamSeconds.observe((performance.now() - started) / 1000);
        up.downUntil = Date.now() + DOWN_PENALTY_MS;
        lastProblem = `${up.url}: ${(err as Error).message}`;
        log.warn({ upstream: up.url, path: obj.upstreamPath, err: (err as Error).message }, 'upstream request failed');
        continue;
      }
      const status = res.statusCode;
      upstreamRequests.inc({ status: String(status) });

      if (status === 200) {
        const policy = obj.blocking ? blockingPolicy : policies[obj.kind];
        const headers: Record<string, string> = {
          'content-type': policy.contentType,
          'cache-control': policy.cacheControl,
          'access-control-allow-origin': '*',
        };
        const etag = res.headers.etag;
        if (typeof etag === 'string') headers.etag = etag;
        const lastModified = res.headers['last-modified'];
        if (typeof lastModified === 'string') headers['last-modified'] = lastModified;
        const length = res.headers['content-length'];
        if (typeof length === 'string') headers['content-length'] = length;
        up.downUntil = 0;
        sink.head(200, headers, policy.ttlMs);
        try {
          for await (const chunk of res.body) sink.data(chunk as Buffer);
        } finally {
          upstreamSeconds.observe((performance.now() - started) / 1000);
        }
        return;
      }

      await res.body.dump().catch(() => undefined);
      upstreamSeconds.observe((performance.now() - started) / 1000);
      if (status >= 400 && status < 500) {
        up.downUntil = 0;
        const notFound = status === 404;
        const body = notFound
          ? errorBody('not_found', 'no such HLS object')
          : errorBody('upstream_rejected', `origin answered ${status}`);
        sink.head(
          status,
          {
            'content-type': JSON_TYPE,
            'cache-control': notFound ? 'max-age=1' : 'no-store',
            'access-control-allow-origin': '*',
            'content-length': String(body.length),
          },
          notFound ? NEGATIVE_TTL_MS : 0,
        );
        sink.data(body);
        return;
      }
      // 5xx or anything unexpected: this origin cannot serve it now, try the next.
      up.downUntil = Date.now() + DOWN_PENALTY_MS;
      lastProblem = `${up.url}: answered ${status}`;
      log.warn({ upstream: up.url, path: obj.upstreamPath, status }, 'upstream answered with an error');
    }
    throw timedOut
      ? new UpstreamError(504, `upstream timed out (${lastProblem})`)
      : new UpstreamError(502, `no upstream could serve the request (${lastProblem})`);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method;
    const isHead = method === 'HEAD';
    if (method !== 'GET' && !isHead) {
      sendError(res, 405, 'method_not_allowed', 'only GET and HEAD are allowed', ['allow', 'GET, HEAD']);
      count('invalid', 405, 0);
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const parsed = q === -1 ? parseHlsRequest(url, '') : parseHlsRequest(url.slice(0, q), url.slice(q));
    if ('error' in parsed) {
      const status = parsed.error === 'bad_request' ? 400 : 404;
      sendError(res, status, parsed.error, parsed.message);
      count('invalid', status, 0);
      return;
    }

    const entry = cache.lookup(parsed.cacheKey);
    if (entry !== undefined) {
      res.writeHead(entry.status, flatHeaders(entry.headers, entry.storedAt));
      if (isHead) {
        res.end();
        count(parsed.kind, entry.status, 0);
      } else {
        res.end(entry.body);
        count(parsed.kind, entry.status, entry.body.length);
      }
      return;
    }

    const writer = new StreamedResponse(res, parsed.kind, isHead, count);
    const obj = parsed;
    writer.subscription = cache.subscribe(obj.cacheKey, (sink, signal) => fetchUpstream(obj, sink, signal), writer);
    if (res.destroyed || req.destroyed) writer.onClose();
    else res.once('close', writer.onClose);
  }

  let stopped = false;
  return {
    handle,
    async start() {
      if (!stopped) return;
      stopped = false;
      for (const u of upstreams) u.pool = makePool(u.origin);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      cache.clear();
      await Promise.all(upstreams.map((u) => u.pool.destroy().catch(() => undefined)));
    },
  };
}
