// The one upstream fetch of an object: tries the origins in failover order until one answers, and turns the
// answer into the head, TTL and body the coalescing cache stores and streams.
import type { Logger } from '../lib/logger.ts';
import type { HlsKind } from '../lib/hls-path.ts';
import type { FetchSink } from './coalescing-cache.ts';
import type { Upstream, UpstreamSet } from './upstream-set.ts';
import { errorBody, JSON_TYPE, UpstreamError } from './edge-errors.ts';

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

/** How long a live media playlist stays fresh at the edge, in ms. */
export const PLAYLIST_TTL_MS = policies.playlist.ttlMs;
/** How long an origin's 404 is remembered, in ms. */
export const NEGATIVE_TTL_MS = 1_000;

/** The object to fetch (an `HlsObject` fits). */
export interface FetchRequest {
  readonly kind: HlsKind;
  readonly cacheKey: string;
  /** Path (with canonical query) to request at an origin base URL. */
  readonly upstreamPath: string;
  /** A blocking reload, held at the origin until the playlist it names exists. */
  readonly blocking: boolean;
}

/** The origins as the fetch uses them: failover order and health reports. */
export type FetchOrigins = Pick<UpstreamSet, 'ordered' | 'markDown' | 'markUp'>;

/** What the fetch records. */
export interface FetchMetrics {
  /** One request's outcome: an HTTP status, "error", "timeout" or "moved". */
  upstreamAnswered(u: Upstream, status: string): void;
  /** One request's duration, headers through last body byte, in seconds. */
  upstreamDuration(seconds: number): void;
}

/** Where a complete playlist goes for stale-if-error. */
export interface FetchStaleStore {
  remember(cacheKey: string, body: Buffer, headers: Readonly<Record<string, string>>): void;
}

/** Options of {@link createFailoverFetch}. */
export interface FailoverFetchOptions {
  origins: FetchOrigins;
  metrics: FetchMetrics;
  stale: FetchStaleStore;
  logger: Logger;
  /** Longest wait for headers or between body bytes of an ordinary request, in ms. */
  timeoutMs: number;
  /** The same for a held request (a blocking reload or a part), which the origin may hold until it exists. */
  heldTimeoutMs: number;
  /** Monotonic clock for durations, in ms (default performance.now). */
  now?: () => number;
}

/** Performs the one upstream fetch for `obj` into `sink`; rejects with an {@link UpstreamError} when no origin answers. */
export type FailoverFetch = (obj: FetchRequest, sink: FetchSink, signal: AbortSignal) => Promise<void>;

/** Builds the failover fetch: origins in order until one answers (a 4xx is an answer; 5xx, timeouts and errors move on). */
export function createFailoverFetch(opts: FailoverFetchOptions): FailoverFetch {
  const { origins, metrics, stale, logger: log, timeoutMs: baseTimeoutMs, heldTimeoutMs } = opts;
  const now = opts.now ?? (() => performance.now());

  return async function fetchUpstream(obj, sink, signal) {
    const timeoutMs = obj.blocking || obj.kind === 'part' ? heldTimeoutMs : baseTimeoutMs;
    let timedOut = false;
    let lastProblem = 'no upstream configured';
    let unavailable: string | undefined;
    for (const up of origins.ordered()) {
      const started = now();
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
        metrics.upstreamDuration((now() - started) / 1000);
        if (moved.aborted) {
          metrics.upstreamAnswered(up, 'moved');
          lastProblem = `${up.label}: origin went down`;
          continue;
        }
        const code = (err as { code?: string }).code;
        const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
        timedOut ||= timeout;
        metrics.upstreamAnswered(up, timeout ? 'timeout' : 'error');
        origins.markDown(up, (err as Error).message);
        lastProblem = `${up.label}: ${timeout ? 'timed out' : (code ?? 'unreachable')}`;
        log.warn({ upstream: up.url, path: obj.upstreamPath, err: (err as Error).message }, 'upstream request failed');
        continue;
      }
      const status = res.statusCode;
      metrics.upstreamAnswered(up, String(status));
      origins.markUp(up);

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
          metrics.upstreamDuration((now() - started) / 1000);
        }
        if (keep !== undefined) stale.remember(obj.cacheKey, Buffer.concat(keep), headers);
        return;
      }

      await res.body.dump().catch(() => undefined);
      metrics.upstreamDuration((now() - started) / 1000);
      if (status >= 400 && status < 500) {
        const notFound = status === 404;
        const body = notFound ? errorBody('not_found', 'no such HLS object') : errorBody('upstream_rejected', `origin answered ${status}`);
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
      if (status === 503) unavailable = `${up.label}: answered 503`;
      lastProblem = `${up.label}: answered ${status}`;
      log.warn({ upstream: up.url, path: obj.upstreamPath, status }, 'upstream answered with an error');
    }
    if (unavailable !== undefined && !timedOut) throw new UpstreamError(503, `origin cannot serve this now (${unavailable})`);
    throw timedOut
      ? new UpstreamError(504, `upstream timed out (${lastProblem})`)
      : new UpstreamError(502, `no upstream could serve the request (${lastProblem})`);
  };
}
