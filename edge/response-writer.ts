// Writes the edge's answers to clients: hits (or 304s) from stored entries, streamed misses, stale playlists,
// and the slow-client guard that keeps one slow viewer from holding memory or a socket for long.
import type { ServerResponse } from 'node:http';
import type { CacheEntry, CacheSubscriber, ResponseHead, Subscription } from './coalescing-cache.ts';
import { sendError, UpstreamError } from './edge-errors.ts';

/** RFC 9211 Cache-Status values. */
const STATUS_HIT = 'onair-edge; hit';
const STATUS_MISS = 'onair-edge; fwd=uri-miss';
const STATUS_COALESCED = 'onair-edge; fwd=uri-miss; collapsed';
const STATUS_STALE = 'onair-edge; hit; detail=stale-if-error';

/** What the writer records. */
export interface WriterMetrics {
  /** Records a finished request. */
  count(kind: string, status: number, bytes: number): void;
  /** Clients cut by the slow-client guard, by reason. */
  readonly cut: { buffer: number; stall: number };
  /** Playlists answered from the stale-if-error store. */
  staleServed: number;
}

/** A stale copy of a playlist as the writer serves it. */
export interface StaleCopy {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly storedAt: number;
}

/** Where the writer finds a stale copy for a request whose fetch failed; `R` is the caller's request object. */
export interface StaleSource<R> {
  find(req: R): StaleCopy | undefined;
}

/** Options of a {@link ResponseWriter}. */
export interface ResponseWriterOptions<R> {
  metrics: WriterMetrics;
  stale: StaleSource<R>;
  /** A client whose socket took no bytes for this long is cut, in ms. */
  stallMs: number;
  /** A streamed response whose unsent queue passes this many bytes is cut. */
  bufferBytes: number;
  /** Wall clock for `Age` (default Date.now). */
  now?: () => number;
}

/** RFC 9110 §13.1.2: weak comparison of If-None-Match against an entity tag (`*` matches anything). */
export function etagMatches(ifNoneMatch: string, etag: string): boolean {
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

/** One edge's client-side writing; one instance serves every request (no per-request state). */
export class ResponseWriter<R> {
  private readonly metrics: WriterMetrics;
  private readonly stale: StaleSource<R>;
  private readonly stallMs: number;
  private readonly bufferBytes: number;
  private readonly now: () => number;
  /** A stalled client's 'timeout' listener, one for every response (called with the response as `this`). */
  private readonly onStall: (this: ServerResponse) => void;

  constructor(opts: ResponseWriterOptions<R>) {
    const metrics = opts.metrics;
    this.metrics = metrics;
    this.onStall = function (this: ServerResponse): void {
      metrics.cut.stall++;
      this.destroy();
    };
    this.stale = opts.stale;
    this.stallMs = opts.stallMs;
    this.bufferBytes = opts.bufferBytes;
    this.now = opts.now ?? Date.now;
  }

  /** Records a finished request. */
  count(kind: string, status: number, bytes: number): void {
    this.metrics.count(kind, status, bytes);
  }

  /** Whole seconds since `storedAt` (never negative). */
  age(storedAt: number): number {
    const age = this.now() - storedAt;
    return age > 0 ? Math.floor(age / 1000) : 0;
  }

  /** Answers from a stored entry: 304 when the client's validator matches, else the stored response. */
  serveHit(entry: CacheEntry, kind: string, res: ServerResponse, isHead: boolean, ifNoneMatch: string | undefined): void {
    const count = this.metrics.count;
    if (ifNoneMatch !== undefined && entry.etag !== undefined && etagMatches(ifNoneMatch, entry.etag)) {
      res.writeHead(304, notModifiedHeaders(entry.headers, this.age(entry.storedAt)));
      res.end();
      count(kind, 304, 0);
      return;
    }
    res.writeHead(entry.status, this.hitHeaders(entry, kind));
    if (isHead) {
      res.end();
      count(kind, entry.status, 0);
      return;
    }
    res.end(entry.body);
    count(kind, entry.status, entry.body.length);
    if (res.writableLength > 0) this.guard(res, false);
  }

  /** Answers with `s`, a stale copy of a playlist, marked as such and not to be reused without revalidation. */
  serveStale(s: StaleCopy, res: ServerResponse, kind: string, isHead: boolean): void {
    this.metrics.staleServed++;
    const headers: string[] = [];
    for (const k in s.headers) if (k !== 'cache-control') headers.push(k, s.headers[k]!);
    headers.push('cache-control', 'no-cache', 'age', String(this.age(s.storedAt)), 'cache-status', STATUS_STALE);
    res.writeHead(200, headers);
    res.end(isHead ? undefined : s.body);
    this.metrics.count(kind, 200, isHead ? 0 : s.body.length);
  }

  /** Serves a stale copy for `req` instead of an error, if one may be served; true if it did. */
  fallback(req: R, res: ServerResponse, kind: string, isHead: boolean): boolean {
    const s = this.stale.find(req);
    if (s === undefined) return false;
    this.serveStale(s, res, kind, isHead);
    return true;
  }

  /**
   * After a write the socket could not take at once: start the client's stall clock, and cut a streamed
   * response whose queue passed the buffer bound (a hit queues the one stored body by reference, never a copy).
   * False if the client was cut.
   */
  guard(res: ServerResponse, streamed: boolean): boolean {
    if (streamed && res.writableLength > this.bufferBytes) {
      this.metrics.cut.buffer++;
      res.destroy();
      return false;
    }
    if (res.listenerCount('timeout') === 0) {
      res.once('timeout', this.onStall);
      res.setTimeout(this.stallMs);
    }
    return true;
  }

  /** The entry's headers for a hit, serialized once per `Age` value and reused by every later hit. */
  private hitHeaders(entry: CacheEntry, kind: string): string[] {
    const ageSec = this.age(entry.storedAt);
    const wire = entry.wire;
    if (wire !== undefined && wire.ageSec === ageSec) return wire.headers;
    const headers: string[] = [];
    const h = entry.headers;
    for (const k in h) headers.push(k, h[k]!);
    headers.push('age', String(ageSec), 'cache-status', STATUS_HIT);
    entry.wire = { ageSec, headers, kind };
    return headers;
  }
}

/** Writes one client's response from a (possibly shared, still streaming) upstream fetch. */
export class StreamedResponse<R extends { readonly kind: string }> implements CacheSubscriber {
  subscription: Subscription | undefined;
  private done = false;
  private status = 0;
  private sent = 0;

  constructor(
    private readonly out: ResponseWriter<R>,
    private readonly req: R,
    private readonly res: ServerResponse,
    private readonly isHead: boolean,
    private readonly ifNoneMatch: string | undefined,
  ) {}

  /** Client went away: stop receiving; the shared fetch goes on for the others. */
  readonly onClose = (): void => {
    this.subscription?.cancel();
    if (this.done) return;
    this.done = true;
    this.count(499, this.sent); // nginx's "client closed request"
  };

  head(h: ResponseHead): void {
    if (this.done) return;
    const etag = h.headers.etag;
    if (h.status === 200 && etag !== undefined && this.ifNoneMatch !== undefined && etagMatches(this.ifNoneMatch, etag)) {
      this.status = 304;
      this.res.writeHead(304, notModifiedHeaders(h.headers, this.out.age(h.storedAt)));
      this.subscription?.cancel();
      this.finish();
      return;
    }
    this.status = h.status;
    const headers: string[] = [];
    for (const k in h.headers) headers.push(k, h.headers[k]!);
    headers.push(
      'age',
      String(this.out.age(h.storedAt)),
      'cache-status',
      this.subscription === undefined || this.subscription.result === 'coalesced' ? STATUS_COALESCED : STATUS_MISS,
    );
    this.res.writeHead(h.status, headers);
    if (this.isHead) this.finish();
  }

  data(chunk: Buffer): void {
    if (this.done) return;
    // The chunk is shared by every joiner and held by the in-flight fetch anyway, so a slow client's
    // backlog is references, not copies; one slow viewer must never slow the shared fetch.
    this.sent += chunk.length;
    if (!this.res.write(chunk) && !this.out.guard(this.res, true)) {
      this.done = true;
      this.subscription?.cancel();
      this.count(this.status, this.sent);
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
      this.count(this.status, this.sent);
      return;
    }
    if (this.req.kind === 'playlist' && this.out.fallback(this.req, this.res, this.req.kind, this.isHead)) return;
    const status = err instanceof UpstreamError ? err.status : 502;
    const code = status === 504 ? 'gateway_timeout' : status === 503 ? 'unavailable' : 'bad_gateway';
    sendError(
      this.res,
      status,
      code,
      err instanceof UpstreamError ? err.message : 'upstream failed',
      status === 503 ? ['retry-after', '1'] : undefined,
    );
    this.count(status, 0);
  }

  private finish(): void {
    this.done = true;
    this.res.end();
    this.count(this.status, this.isHead ? 0 : this.sent);
  }

  private count(status: number, bytes: number): void {
    this.out.count(this.req.kind, status, bytes);
  }
}
