// The one upstream fetch of an object: tries the origins of its route in order until one answers, and turns the
// answer into the head, TTL and body the coalescing cache stores and streams. A route is either the edge's static
// origin list or the replicas of the object's event (cluster mode), where a miss on one replica is not final.
import type { Logger } from '../lib/logger.ts';
import type { HlsKind } from '../lib/hls-path.ts';
import { coversRequest, playlistCoverage, type PlaylistCoverage } from './playlist-coverage.ts';
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
  // A live playlist without `_HLS_msn` is a player's first load (or a legacy poll): it must show the live edge, or
  // the player starts as far behind as the copy is old (a 1 s TTL here let a stock hls.js join up to 1 s late).
  // 100 ms is under half of a default part (0.2 s), and still bounds the upstream cost: at most ~10 requests/s per
  // playlist per edge worker whatever the number of viewers (concurrent misses are one fetch, see coalescing-cache).
  // `max-age=0`: a browser or a peer edge worker (peer-fetch ttlOf) must not keep it either.
  playlist: { contentType: PLAYLIST_TYPE, cacheControl: 'max-age=0', ttlMs: 100 },
  init: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
  segment: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
  part: { contentType: 'video/mp4', cacheControl: IMMUTABLE, ttlMs: 3_600_000 },
  // Live thumbnails change every few seconds; the origin says which type (JPEG, or WebVTT for the preview track).
  thumbnail: { contentType: 'image/jpeg', cacheControl: 'public, max-age=5', ttlMs: 5_000 },
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

/** One origin to ask for an object, and how metrics name it for this request. */
export interface Candidate {
  readonly upstream: Upstream;
  /** `origin-<n>`: the n-th configured origin, or the n-th origin of the event's placement (0 = primary). */
  readonly label: string;
  /** The origin's node id, when the route knows it (placements). */
  readonly id?: string;
}

/** Where one object may be fetched. */
export interface Route {
  /** The origins to ask, in order. */
  readonly candidates: readonly Candidate[];
  /**
   * The candidates are replicas of one event that agree on names (cluster mode). Then a 404 (and a blocking reload's
   * 400) from one is asked of the others before it is final; a body is received whole before it is passed on, so a
   * replica failing mid-body is replaced within the request; and a playlist behind what it must cover (a blocking
   * reload) or behind the last copy served is passed on only when no replica has a newer one.
   */
  readonly replicas: boolean;
  /** Called with the candidate whose 200 was passed on. */
  served?(c: Candidate): void;
}

/** Finds the route of each object and takes the health reports of the origins it names. */
export interface FetchRouter<R extends FetchRequest = FetchRequest> {
  /** The route of `obj`, or undefined when its event is not live anywhere (answered 404 `not_live`, no origin asked). */
  route(obj: R): Route | undefined | Promise<Route | undefined>;
  /** Records a failure to reach `u` (timeout, refused or reset connection). */
  markDown(u: Upstream, reason: string): void;
  /** Records that `u` answered. */
  markUp(u: Upstream): void;
}

/** The static router: every object goes to the configured origins, those up first (today's edge). */
export function staticRouter(origins: FetchOrigins): FetchRouter {
  return {
    route: () => ({ candidates: origins.ordered().map((u) => ({ upstream: u, label: u.label })), replicas: false }),
    markDown: (u, reason) => origins.markDown(u, reason),
    markUp: (u) => origins.markUp(u),
  };
}

/** What the fetch records. */
export interface FetchMetrics {
  /** One request's outcome: an HTTP status, "error", "timeout" or "moved"; `u` is named by its label. */
  upstreamAnswered(u: { readonly label: string }, status: string): void;
  /** One request's duration, headers through last body byte, in seconds. */
  upstreamDuration(seconds: number): void;
  /** One object fetch answered by another origin than the first one asked. */
  replicaFailover?(kind: HlsKind): void;
}

/** Where a complete playlist goes for stale-if-error, and what the edge last served of it. */
export interface FetchStaleStore {
  remember(cacheKey: string, body: Buffer, headers: Readonly<Record<string, string>>): void;
  /** What the latest remembered copy for `cacheKey` lists, while it may still be served. */
  coverage?(cacheKey: string): PlaylistCoverage | undefined;
}

/** Options of {@link createFailoverFetch}: `router`, or `origins` for the static router over them. */
export interface FailoverFetchOptions<R extends FetchRequest = FetchRequest> {
  origins?: FetchOrigins;
  router?: FetchRouter<R>;
  metrics: FetchMetrics;
  stale: FetchStaleStore;
  logger: Logger;
  /** Longest wait for headers or between body bytes of an ordinary request, in ms. */
  timeoutMs: number;
  /** The same for a held request (a media playlist or a part), which the origin may hold until it exists. */
  heldTimeoutMs: number;
  /** Monotonic clock for durations, in ms (default performance.now). */
  now?: () => number;
}

/** Performs the one upstream fetch for `obj` into `sink`; rejects with an {@link UpstreamError} when no origin answers. */
export type FailoverFetch<R extends FetchRequest = FetchRequest> = (obj: R, sink: FetchSink, signal: AbortSignal) => Promise<void>;

/** True when playlist coverage `a` lists less than `b` (an older version of the same live playlist). */
export function isBehind(a: PlaylistCoverage, b: PlaylistCoverage): boolean {
  if (a.lastSegment !== b.lastSegment) return a.lastSegment < b.lastSegment;
  if (a.lastPartMsn !== b.lastPartMsn) return a.lastPartMsn < b.lastPartMsn;
  return a.lastPart < b.lastPart;
}

/** Writes a 4xx answer (404 `not_found`, or `upstream_rejected`) into `sink`; a 404 is stored briefly. */
function rejection(sink: FetchSink, status: number, code?: string, message?: string): void {
  const notFound = status === 404;
  const body = notFound
    ? errorBody(code ?? 'not_found', message ?? 'no such HLS object')
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
}

/** A playlist held back because it is behind, in case no replica has a newer one. */
interface HeldBack {
  c: Candidate;
  body: Buffer;
  headers: Record<string, string>;
  coverage: PlaylistCoverage;
}

/**
 * Builds the failover fetch: the route's origins in order until one answers. A 4xx is an answer (in a route of
 * replicas, a 404 only once every replica said so); 5xx, timeouts and errors move on.
 */
export function createFailoverFetch<R extends FetchRequest = FetchRequest>(opts: FailoverFetchOptions<R>): FailoverFetch<R> {
  const { metrics, stale, logger: log, timeoutMs: baseTimeoutMs, heldTimeoutMs } = opts;
  const router: FetchRouter<R> | undefined = opts.router ?? (opts.origins !== undefined ? staticRouter(opts.origins) : undefined);
  if (router === undefined) throw new Error('createFailoverFetch needs origins or a router');
  const now = opts.now ?? (() => performance.now());

  /** Whether a playlist a replica sent is behind what the request needs or what the edge already served. */
  const behind = (obj: R, cov: PlaylistCoverage): boolean => {
    if (obj.blocking) return !coversRequest(cov, obj.upstreamPath);
    const last = stale.coverage?.(obj.cacheKey);
    return last !== undefined && isBehind(cov, last);
  };

  return async function fetchUpstream(obj, sink, signal) {
    let route: Route | undefined;
    try {
      const r = router.route(obj);
      route = r instanceof Promise ? await r : r;
    } catch (err) {
      if (signal.aborted) throw err;
      log.warn({ path: obj.upstreamPath, err: (err as Error).message }, 'cannot route the request');
      throw new UpstreamError(503, "cannot find the event's origins now");
    }
    if (route === undefined) {
      rejection(sink, 404, 'not_live', 'event is not live');
      return;
    }
    const { candidates, replicas } = route;
    // Held at the origin: a blocking reload, a hinted part, and a media playlist's first load (held up to 1 s for a
    // keyframe-aligned join, origin/hls-server.ts JOIN_WAIT_MAX_SEC).
    const timeoutMs = obj.kind === 'playlist' || obj.kind === 'part' ? heldTimeoutMs : baseTimeoutMs;
    let timedOut = false;
    let lastProblem = 'no upstream configured';
    let unavailable: string | undefined;
    /** Replicas: the 4xx a replica gave that is final once no other has the object. */
    let missing: number | undefined;
    /** Replicas: some replica failed (error, timeout, 5xx), so a miss elsewhere may only be lag. */
    let failed = false;
    let heldBack: HeldBack | undefined;
    const policy = obj.blocking ? blockingPolicy : policies[obj.kind];
    const served = (c: Candidate): void => {
      if (c !== candidates[0]) metrics.replicaFailover?.(obj.kind);
      route.served?.(c);
    };

    for (const c of candidates) {
      const up = c.upstream;
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
        failed = true;
        if (moved.aborted) {
          metrics.upstreamAnswered(c, 'moved');
          lastProblem = `${c.label}: origin went down`;
          continue;
        }
        const code = (err as { code?: string }).code;
        const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
        timedOut ||= timeout;
        metrics.upstreamAnswered(c, timeout ? 'timeout' : 'error');
        router.markDown(up, (err as Error).message);
        lastProblem = `${c.label}: ${timeout ? 'timed out' : (code ?? 'unreachable')}`;
        log.warn({ upstream: up.url, path: obj.upstreamPath, err: (err as Error).message }, 'upstream request failed');
        continue;
      }
      const status = res.statusCode;
      // A replica's 200 is counted once its body is whole (it may yet fail mid-body).
      if (!(replicas && status === 200)) metrics.upstreamAnswered(c, String(status));
      router.markUp(up);

      if (status === 200) {
        const headers: Record<string, string> = {
          'content-type': policy.contentType,
          'cache-control': policy.cacheControl,
          'access-control-allow-origin': '*',
        };
        const type = res.headers['content-type'];
        if (obj.kind === 'thumbnail' && (type === 'text/vtt; charset=utf-8' || type === 'image/jpeg')) headers['content-type'] = type;
        const etag = res.headers.etag;
        if (typeof etag === 'string') headers.etag = etag;
        const lastModified = res.headers['last-modified'];
        if (typeof lastModified === 'string') headers['last-modified'] = lastModified;
        const length = res.headers['content-length'];
        if (typeof length === 'string') headers['content-length'] = length;

        if (!replicas) {
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
          served(c);
          return;
        }

        // A replica's body is received whole first: one that fails mid-body is replaced by the next, unseen by viewers.
        const chunks: Buffer[] = [];
        try {
          for await (const chunk of res.body) chunks.push(chunk as Buffer);
        } catch (err) {
          if (signal.aborted) throw err;
          metrics.upstreamDuration((now() - started) / 1000);
          failed = true;
          metrics.upstreamAnswered(c, moved.aborted ? 'moved' : 'error');
          if (!moved.aborted) router.markDown(up, (err as Error).message);
          lastProblem = `${c.label}: failed mid-body`;
          log.warn({ upstream: up.url, path: obj.upstreamPath, err: (err as Error).message }, 'upstream body failed');
          continue;
        }
        metrics.upstreamDuration((now() - started) / 1000);
        metrics.upstreamAnswered(c, '200');
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (obj.kind === 'playlist') {
          const coverage = playlistCoverage(body);
          if (behind(obj, coverage)) {
            if (heldBack === undefined || isBehind(heldBack.coverage, coverage)) heldBack = { c, body, headers, coverage };
            lastProblem = `${c.label}: playlist behind`;
            continue;
          }
          stale.remember(obj.cacheKey, body, headers);
        }
        sink.head(200, headers, policy.ttlMs);
        sink.data(body);
        served(c);
        return;
      }

      await res.body.dump().catch(() => undefined);
      metrics.upstreamDuration((now() - started) / 1000);
      if (status >= 400 && status < 500) {
        // A replica that lags has no such object yet (404), or refuses a blocking reload too far ahead of it (400).
        if (replicas && (status === 404 || (status === 400 && obj.blocking))) {
          missing ??= status;
          lastProblem = `${c.label}: answered ${status}`;
          continue;
        }
        rejection(sink, status);
        return;
      }
      // 5xx: this origin is up but cannot serve it now (e.g. 503 while a stream starts); try the next.
      failed = true;
      if (status === 503) unavailable = `${c.label}: answered 503`;
      lastProblem = `${c.label}: answered ${status}`;
      log.warn({ upstream: up.url, path: obj.upstreamPath, status }, 'upstream answered with an error');
    }

    if (heldBack !== undefined) {
      // No replica has anything newer: the newest there is, not stored, so the next request asks again.
      const headers = { ...heldBack.headers, 'cache-control': 'no-cache' };
      // Stickiness does not move to a replica that lags.
      sink.head(200, headers, 0);
      sink.data(heldBack.body);
      if (heldBack.c !== candidates[0]) metrics.replicaFailover?.(obj.kind);
      return;
    }
    // Every replica lacks the object. A playlist some replica failed to answer is an error instead, so that the
    // edge's stale copy may stand in (a replica that lags may simply not have it yet).
    if (missing !== undefined && !(failed && obj.kind === 'playlist')) {
      rejection(sink, missing);
      return;
    }
    if (unavailable !== undefined && !timedOut) throw new UpstreamError(503, `origin cannot serve this now (${unavailable})`);
    throw timedOut
      ? new UpstreamError(504, `upstream timed out (${lastProblem})`)
      : new UpstreamError(502, `no upstream could serve the request (${lastProblem})`);
  };
}
