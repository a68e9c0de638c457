// The edge's HLS serving path: raw Node http in front of origins, through the coalescing cache.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts';
import { CoalescingCache, type CacheEntry, type CacheSubscriber, type FetchSink, type ResponseHead, type Subscription } from './coalescing-cache.ts';
import { createUpstreamSet, type Upstream } from './upstream-set.ts';
import { playlistCoverage, coversRequest, type PlaylistCoverage } from './playlist-coverage.ts';
import { parseHlsRequest, type HlsKind, type HlsObject } from '../lib/hls-path.ts';

/** What the HLS edge needs from its parent. */
export interface HlsEdgeDeps {
  config: Config;
  logger: Logger;
  registry: Registry;
  /** Origin base URLs (e.g. `http://origin:9000`), tried in order. */
  upstreams: string[];
}

/** Health of one origin as the edge sees it. */
export interface UpstreamHealth {
  url: string;
  up: boolean;
}

/** The HLS edge: `handle` serves every request whose path starts with `/live/`. */
export interface HlsEdge {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The origins and whether each is reachable. */
  upstreams(): UpstreamHealth[];
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
/** RFC 9211 Cache-Status values. */
const STATUS_HIT = 'onair-edge; hit';
const STATUS_MISS = 'onair-edge; fwd=uri-miss';
const STATUS_COALESCED = 'onair-edge; fwd=uri-miss; collapsed';
const STATUS_STALE = 'onair-edge; hit; detail=stale-if-error';
/** How often every origin is probed. */
const PROBE_INTERVAL_MS = 1_000;
/** Live playlists kept for stale-if-error (per rendition and skip mode). */
const STALE_MAX_ENTRIES = 10_000;

/** A subscriber that only keeps a background fetch going (its result lands in the cache). */
const IGNORE: CacheSubscriber = { head() {}, data() {}, end() {}, error() {} };

/** The edge's JSON error body. */
function errorBody(code: string, message: string): Buffer {
  return Buffer.from(JSON.stringify({ error: { code, message } }));
}

/** A failure to get an answer from any upstream; carries the status the client gets. */
class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly status: 502 | 503 | 504,
    message: string,
  ) {
    super(message);
  }
}

/** The last good copy of a live media playlist, for stale-if-error. */
interface StalePlaylist {
  body: Buffer;
  headers: Readonly<Record<string, string>>;
  storedAt: number;
  coverage: PlaylistCoverage;
}

/** What a response writer needs from the edge. */
interface WriterContext {
  /** Records a finished request. */
  done(kind: string, status: number, bytes: number): void;
  /** Arms the slow-client guard after a write the socket did not take at once; false if the client was cut. */
  guard(res: ServerResponse, streamed: boolean): boolean;
  /** Serves a stale playlist instead of an error, if one may be served; true if it did. */
  fallback(res: ServerResponse, isHead: boolean): boolean;
}

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
    private readonly ifNoneMatch: string | undefined,
    private readonly ctx: WriterContext,
  ) {}

  /** Client went away: stop receiving; the shared fetch goes on for the others. */
  readonly onClose = (): void => {
    this.subscription?.cancel();
    if (this.done) return;
    this.done = true;
    this.ctx.done(this.kind, 499, this.sent); // nginx's "client closed request"
  };

  head(h: ResponseHead): void {
    if (this.done) return;
    const etag = h.headers.etag;
    if (h.status === 200 && etag !== undefined && this.ifNoneMatch !== undefined && etagMatches(this.ifNoneMatch, etag)) {
      this.status = 304;
      this.res.writeHead(304, notModifiedHeaders(h.headers, ageOf(h.storedAt)));
      this.subscription?.cancel();
      this.finish();
      return;
    }
    this.status = h.status;
    const headers: string[] = [];
    for (const k in h.headers) headers.push(k, h.headers[k]!);
    headers.push('age', String(ageOf(h.storedAt)), 'cache-status', this.subscription === undefined || this.subscription.result === 'coalesced' ? STATUS_COALESCED : STATUS_MISS);
    this.res.writeHead(h.status, headers);
    if (this.isHead) this.finish();
  }

  data(chunk: Buffer): void {
    if (this.done) return;
    // The chunk is shared by every joiner and held by the in-flight fetch anyway, so a slow client's
    // backlog is references, not copies; one slow viewer must never slow the shared fetch.
    this.sent += chunk.length;
    if (!this.res.write(chunk) && !this.ctx.guard(this.res, true)) {
      this.done = true;
      this.subscription?.cancel();
      this.ctx.done(this.kind, this.status, this.sent);
    }
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
      this.ctx.done(this.kind, this.status, this.sent);
      return;
    }
    if (this.kind === 'playlist' && this.ctx.fallback(this.res, this.isHead)) return;
    const status = err instanceof UpstreamError ? err.status : 502;
    const code = status === 504 ? 'gateway_timeout' : status === 503 ? 'unavailable' : 'bad_gateway';
    sendError(this.res, status, code, err instanceof UpstreamError ? err.message : 'upstream failed', status === 503 ? ['retry-after', '1'] : undefined);
    this.ctx.done(this.kind, status, 0);
  }

  private finish(): void {
    this.done = true;
    this.res.end();
    this.ctx.done(this.kind, this.status, this.isHead ? 0 : this.sent);
  }
}

/** Whole seconds since `storedAt` (never negative). */
function ageOf(storedAt: number): number {
  const age = Date.now() - storedAt;
  return age > 0 ? Math.floor(age / 1000) : 0;
}

/** RFC 9110 §13.1.2: weak comparison of If-None-Match against an entity tag (`*` matches anything). */
function etagMatches(ifNoneMatch: string, etag: string): boolean {
  if (ifNoneMatch === etag) return true;
  const tag = etag.startsWith('W/') ? etag.slice(2) : etag;
  for (const raw of ifNoneMatch.split(',')) {
    const t = raw.trim();
    if (t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === tag) return true;
  }
  return false;
}

/** Headers of a 304: the validators and caching headers of the full response. */
function notModifiedHeaders(h: Readonly<Record<string, string>>, ageSec: number): string[] {
  const out = ['etag', h.etag ?? '', 'age', String(ageSec), 'access-control-allow-origin', '*', 'cache-status', STATUS_HIT];
  if (h['cache-control'] !== undefined) out.push('cache-control', h['cache-control']);
  if (h['last-modified'] !== undefined) out.push('last-modified', h['last-modified']);
  return out;
}

/** The value of request header `name` (lower case) from the raw list, without building `req.headers`. */
function rawHeader(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!;
    if (k.length === name.length && k.toLowerCase() === name) return raw[i + 1];
  }
  return undefined;
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

/** The entry's headers for a hit, serialized once per `Age` value and reused by every later hit. */
function hitHeaders(entry: CacheEntry, kind: HlsKind): string[] {
  const ageSec = ageOf(entry.storedAt);
  const wire = entry.wire;
  if (wire !== undefined && wire.ageSec === ageSec) return wire.headers;
  const headers: string[] = [];
  const h = entry.headers;
  for (const k in h) headers.push(k, h[k]!);
  headers.push('age', String(ageSec), 'cache-status', STATUS_HIT);
  entry.wire = { ageSec, headers, kind };
  return headers;
}

/** Builds the HLS edge: parses the path, serves hits from memory, coalesces misses upstream with failover. */
export function createHlsEdge(deps: HlsEdgeDeps): HlsEdge {
  const { config, registry } = deps;
  const log = deps.logger.child({ component: 'hls-edge' });
  const cache = new CoalescingCache({ maxBytes: config.edgeCacheBytes, negativeTtlMs: NEGATIVE_TTL_MS });
  const baseTimeoutMs = config.edgeUpstreamTimeoutMs;
  /** Held requests (blocking reloads, hinted parts) may legitimately wait 3 target durations at the origin. */
  const heldTimeoutMs = baseTimeoutMs + 3 * config.segmentTargetSec * 1000;
  const staleBoundMs = policies.playlist.ttlMs + config.edgeStaleIfErrorMs;
  const stallMs = config.edgeClientStallMs;
  const clientBufferBytes = config.edgeClientBufferBytes;
  const upstreams = createUpstreamSet({
    urls: deps.upstreams,
    timeoutMs: Math.min(2_000, baseTimeoutMs),
    longestRequestMs: heldTimeoutMs,
    probeIntervalMs: PROBE_INTERVAL_MS,
    logger: log,
  });
  const stale = new LRUCache<string, StalePlaylist>({ max: STALE_MAX_ENTRIES, ttl: staleBoundMs + 60_000 });

  // Hot-path counters are plain numbers, turned into Prometheus samples only when scraped.
  const requestCounts: Record<string, Float64Array> = {};
  for (const k of KIND_LABELS) requestCounts[k] = new Float64Array(600);
  let bytesSent = 0;
  let openConnections = 0;
  let staleServed = 0;
  const cut = { buffer: 0, stall: 0 };
  const seenSockets = new WeakSet<Socket>();

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
    help: 'Edge cache lookups: hit (stored), miss (started an upstream fetch), coalesced (joined one), stale (stale-if-error).',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (cache.hits > 0) this.inc({ result: 'hit' }, cache.hits);
      if (cache.misses > 0) this.inc({ result: 'miss' }, cache.misses);
      if (cache.coalesced > 0) this.inc({ result: 'coalesced' }, cache.coalesced);
      if (staleServed > 0) this.inc({ result: 'stale' }, staleServed);
    },
  });
  // Metrics name an origin by its position in the configuration, not its URL: /metrics may be public, origin URLs are internal.
  const upstreamLabel = (u: Upstream): string => `origin-${upstreams.list.indexOf(u)}`;
  const upstreamRequests = new Counter({
    name: 'onair_edge_upstream_requests_total',
    help: 'Requests from the edge to origins, by origin (origin-<n>: the n-th configured URL) and status (HTTP status, "error", "timeout" or "moved" when failed over).',
    labelNames: ['upstream', 'status'] as const,
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
  new Gauge({
    name: 'onair_edge_upstream_fetches_in_flight',
    help: 'Upstream fetches in progress (each shared by every viewer waiting for the object).',
    registers: [registry],
    collect() {
      this.set(cache.inFlight);
    },
  });
  new Gauge({
    name: 'onair_edge_open_connections',
    help: 'Client connections that made an HLS request and are still open.',
    registers: [registry],
    collect() {
      this.set(openConnections);
    },
  });
  new Gauge({
    name: 'onair_edge_upstream_up',
    help: 'Whether the edge considers an origin (origin-<n>: the n-th configured URL) reachable (1) or down (0).',
    labelNames: ['upstream'] as const,
    registers: [registry],
    collect() {
      for (const u of upstreams.list) this.set({ upstream: upstreamLabel(u) }, u.down ? 0 : 1);
    },
  });
  new Counter({
    name: 'onair_edge_clients_cut_total',
    help: 'Clients disconnected by the slow-client guard: "buffer" (too much queued), "stall" (took no bytes for edgeClientStallMs).',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (cut.buffer > 0) this.inc({ reason: 'buffer' }, cut.buffer);
      if (cut.stall > 0) this.inc({ reason: 'stall' }, cut.stall);
    },
  });

  const count = (kind: string, status: number, bytes: number): void => {
    const c = requestCounts[kind];
    if (c !== undefined && status >= 0 && status < c.length) c[status]!++;
    bytesSent += bytes;
  };

  const onStall = function (this: ServerResponse): void {
    cut.stall++;
    this.destroy();
  };
  /**
   * After a write the socket could not take at once: start the client's stall clock, and cut a streamed
   * response whose queue passed the buffer bound. (A hit queues the one stored body by reference, never a copy.)
   */
  const guard = (res: ServerResponse, streamed: boolean): boolean => {
    if (streamed && res.writableLength > clientBufferBytes) {
      cut.buffer++;
      res.destroy();
      return false;
    }
    if (res.listenerCount('timeout') === 0) {
      res.once('timeout', onStall);
      res.setTimeout(stallMs);
    }
    return true;
  };

  const onSocketClose = (): void => {
    openConnections--;
  };
  const track = (socket: Socket): void => {
    if (seenSockets.has(socket)) return;
    seenSockets.add(socket);
    openConnections++;
    socket.once('close', onSocketClose);
  };

  /** The stale-if-error key of a playlist request: the path and whether it is a delta update. */
  const staleKey = (key: string): string => {
    const q = key.indexOf('?');
    if (q === -1) return key;
    return key.includes('_HLS_skip=', q) ? key.slice(0, q) + '#skip' : key.slice(0, q);
  };

  /** A stale playlist that may answer `obj` now (within the bound, and covering a blocking request), if any. */
  const stalePlaylistFor = (obj: HlsObject): StalePlaylist | undefined => {
    const s = stale.get(staleKey(obj.cacheKey));
    if (s === undefined || Date.now() - s.storedAt > staleBoundMs) return undefined;
    if (obj.blocking && !coversRequest(s.coverage, obj.upstreamPath)) return undefined;
    return s;
  };

  const serveStale = (s: StalePlaylist, res: ServerResponse, kind: HlsKind, isHead: boolean): void => {
    staleServed++;
    const headers: string[] = [];
    for (const k in s.headers) if (k !== 'cache-control') headers.push(k, s.headers[k]!);
    headers.push('cache-control', 'no-cache', 'age', String(ageOf(s.storedAt)), 'cache-status', STATUS_STALE);
    res.writeHead(200, headers);
    res.end(isHead ? undefined : s.body);
    count(kind, 200, isHead ? 0 : s.body.length);
  };

  /** The one upstream fetch for an object: failover across origins until one answers. */
  async function fetchUpstream(obj: HlsObject, sink: FetchSink, signal: AbortSignal): Promise<void> {
    const timeoutMs = obj.blocking || obj.kind === 'part' ? heldTimeoutMs : baseTimeoutMs;
    let timedOut = false;
    let lastProblem = 'no upstream configured';
    let unavailable: string | undefined;
    for (const up of upstreams.ordered()) {
      const started = performance.now();
      const moved = up.downSignal;
      let res: Awaited<ReturnType<Upstream['pool']['request']>>;
      try {
        res = await up.pool.request({
          path: up.prefix + obj.upstreamPath,
          method: 'GET',
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.any([signal, moved]),
        });
      } catch (err) {
        if (signal.aborted) throw err;
        upstreamSeconds.observe((performance.now() - started) / 1000);
        if (moved.aborted) {
          upstreamRequests.inc({ upstream: upstreamLabel(up), status: 'moved' });
          lastProblem = `${upstreamLabel(up)}: origin went down`;
          continue;
        }
        const code = (err as { code?: string }).code;
        const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
        timedOut ||= timeout;
        upstreamRequests.inc({ upstream: upstreamLabel(up), status: timeout ? 'timeout' : 'error' });
        upstreams.markDown(up, (err as Error).message);
        lastProblem = `${upstreamLabel(up)}: ${timeout ? 'timed out' : code ?? 'unreachable'}`;
        log.warn({ upstream: up.url, path: obj.upstreamPath, err: (err as Error).message }, 'upstream request failed');
        continue;
      }
      const status = res.statusCode;
      upstreamRequests.inc({ upstream: upstreamLabel(up), status: String(status) });
      upstreams.markUp(up);

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
        sink.head(200, headers, policy.ttlMs);
        const keep: Buffer[] | undefined = obj.kind === 'playlist' ? [] : undefined;
        try {
          for await (const chunk of res.body) {
            sink.data(chunk as Buffer);
            keep?.push(chunk as Buffer);
          }
        } finally {
          upstreamSeconds.observe((performance.now() - started) / 1000);
        }
        if (keep !== undefined) {
          const body = Buffer.concat(keep);
          stale.set(staleKey(obj.cacheKey), { body, headers, storedAt: Date.now(), coverage: playlistCoverage(body) });
        }
        return;
      }

      await res.body.dump().catch(() => undefined);
      upstreamSeconds.observe((performance.now() - started) / 1000);
      if (status >= 400 && status < 500) {
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
      // 5xx: this origin is up but cannot serve it now (e.g. 503 while a stream starts); try the next.
      if (status === 503) unavailable = `${upstreamLabel(up)}: answered 503`;
      lastProblem = `${upstreamLabel(up)}: answered ${status}`;
      log.warn({ upstream: up.url, path: obj.upstreamPath, status }, 'upstream answered with an error');
    }
    if (unavailable !== undefined && !timedOut) throw new UpstreamError(503, `origin cannot serve this now (${unavailable})`);
    throw timedOut
      ? new UpstreamError(504, `upstream timed out (${lastProblem})`)
      : new UpstreamError(502, `no upstream could serve the request (${lastProblem})`);
  }

  /** Answers from a stored entry: 304 when the client's validator matches, else the stored response. */
  function serveHit(entry: CacheEntry, kind: HlsKind, res: ServerResponse, isHead: boolean, ifNoneMatch: string | undefined): void {
    if (ifNoneMatch !== undefined && entry.etag !== undefined && etagMatches(ifNoneMatch, entry.etag)) {
      res.writeHead(304, notModifiedHeaders(entry.headers, ageOf(entry.storedAt)));
      res.end();
      count(kind, 304, 0);
      return;
    }
    res.writeHead(entry.status, hitHeaders(entry, kind));
    if (isHead) {
      res.end();
      count(kind, entry.status, 0);
      return;
    }
    res.end(entry.body);
    count(kind, entry.status, entry.body.length);
    if (res.writableLength > 0) guard(res, false);
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    track(req.socket);
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
      serveHit(known, known.wire.kind as HlsKind, res, isHead, ifNoneMatch);
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
      serveHit(entry, parsed.kind, res, isHead, ifNoneMatch);
      return;
    }

    const obj = parsed;
    // No origin reachable: a playlist within its stale bound is answered at once rather than after timeouts,
    // while one (coalesced) fetch in the background finds out whether an origin answers again.
    if (obj.kind === 'playlist' && upstreams.allDown()) {
      const s = stalePlaylistFor(obj);
      if (s !== undefined) {
        serveStale(s, res, obj.kind, isHead);
        cache.subscribe(obj.cacheKey, (sink, signal) => fetchUpstream(obj, sink, signal), IGNORE);
        return;
      }
    }

    const ctx: WriterContext = {
      done: count,
      guard,
      fallback(r, head) {
        const s = stalePlaylistFor(obj);
        if (s === undefined) return false;
        serveStale(s, r, obj.kind, head);
        return true;
      },
    };
    const writer = new StreamedResponse(res, parsed.kind, isHead, ifNoneMatch, ctx);
    writer.subscription = cache.subscribe(obj.cacheKey, (sink, signal) => fetchUpstream(obj, sink, signal), writer);
    if (res.destroyed || req.destroyed) writer.onClose();
    else res.once('close', writer.onClose);
  }

  // Probes start with start(), not here: building the edge starts nothing.
  let stopped = true;
  return {
    handle,
    upstreams: () => upstreams.list.map((u) => ({ url: u.url, up: !u.down })),
    async start() {
      if (!stopped) return;
      stopped = false;
      upstreams.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      cache.clear();
      stale.clear();
      await upstreams.stop();
    },
  };
}
