// The workers of one edge machine as one cache: each object has an owner worker (a stable hash of its cache key),
// and a worker that does not own an object asks the owner for it over the owner's Unix socket instead of asking
// origins, so origins see one request per object per machine. The owner answers exactly as it answers a viewer
// (its own coalescing cache, held LL-HLS requests, parts streamed as bytes arrive). An owner that cannot be reached
// (dead, restarting) is skipped: the worker fetches from origins itself.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import type { Logger } from '../lib/logger.ts';
import type { FetchSink } from './coalescing-cache.ts';
import { UpstreamError } from './edge-errors.ts';
import type { FetchRequest, FetchStaleStore } from './failover-fetch.ts';

/** This worker's place among the workers of its machine. */
export interface EdgePeers {
  /** This worker's index, 1..count (kept across restarts). */
  index: number;
  /** How many workers the machine runs. */
  count: number;
  /** Private directory (0700) holding every worker's socket. */
  dir: string;
}

/** The socket of worker `index` in `dir`. */
export function peerSocketPath(dir: string, index: number): string {
  return join(dir, `worker-${index}.sock`);
}

/** The owner (1..count) of `key`: FNV-1a of the key modulo the worker count; the same on every worker. */
export function ownerOf(key: string, count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche so keys differing only in their last characters spread too.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return 1 + ((h >>> 0) % count);
}

/** How a fetch through the peers went: `peer` (the owner answered), `owner` (this worker owns it), `fallback`. */
export type PeerResult = 'peer' | 'owner' | 'fallback';

/** Options of {@link createPeerFetch}. */
export interface PeerFetchOptions<R extends FetchRequest> {
  peers: EdgePeers;
  /** The origin fetch, for objects this worker owns and when the owner cannot be reached. */
  fetchUpstream: (obj: R, sink: FetchSink, signal: AbortSignal) => Promise<void>;
  stale: FetchStaleStore;
  /** Longest wait for the owner's headers or between its body bytes (it may hold a request at an origin), in ms. */
  timeoutMs: number;
  /** Counts each fetch by how it went. */
  count(result: PeerResult): void;
  logger: Logger;
}

/** The peer-aware fetch, and `close` for its connections to the other workers. */
export interface PeerFetch<R extends FetchRequest> {
  fetch(obj: R, sink: FetchSink, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Response headers of the owner passed on to the cache (hop and cache-status headers are this worker's own). */
const KEPT = ['content-type', 'cache-control', 'etag', 'last-modified', 'content-length', 'access-control-allow-origin'];

/** The TTL the owner's answer allows: its max-age less its age; 0 for no-cache, no-store or none. */
function ttlOf(headers: Record<string, string>, age: string | undefined): number {
  const cc = headers['cache-control'] ?? '';
  if (/no-cache|no-store/.test(cc)) return 0;
  const m = /max-age=(\d+)/.exec(cc);
  if (m === null) return 0;
  return Math.max(0, Number(m[1]) - (Number(age) || 0)) * 1000;
}

/** Errors raised before the owner sent a head that mean it is not there (no socket, refused, reset, closed). */
const UNREACHABLE = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);

/**
 * True when the owner is not there, so this worker asks origins itself. An owner that is there but slow (a held
 * request, origins timing out behind it) is not: asking origins again would only double the wait.
 */
function unreachable(err: unknown): boolean {
  return UNREACHABLE.has((err as { code?: string }).code ?? '');
}

/** Builds the fetch that asks an object's owner worker, or origins for an object this worker owns. */
export function createPeerFetch<R extends FetchRequest>(opts: PeerFetchOptions<R>): PeerFetch<R> {
  const { peers, fetchUpstream, stale, timeoutMs, count, logger: log } = opts;
  const pools = new Map<number, Pool>();
  const poolOf = (owner: number): Pool => {
    let p = pools.get(owner);
    if (p === undefined) {
      // As many connections as the origin pools: held requests (blocking reloads, hinted parts) each keep one busy.
      p = new Pool('http://onair-edge-peer', {
        socketPath: peerSocketPath(peers.dir, owner),
        connections: 256,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        connect: { timeout: 1_000 },
      });
      pools.set(owner, p);
    }
    return p;
  };

  async function fetch(obj: R, sink: FetchSink, signal: AbortSignal): Promise<void> {
    const owner = ownerOf(obj.cacheKey, peers.count);
    if (owner === peers.index) {
      count('owner');
      return fetchUpstream(obj, sink, signal);
    }
    let res: Awaited<ReturnType<Pool['request']>>;
    try {
      res = await poolOf(owner).request({
        path: obj.upstreamPath,
        method: 'GET',
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      if ((err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT')
        throw new UpstreamError(504, 'owner worker did not answer in time');
      if (!unreachable(err)) throw err;
      count('fallback');
      log.warn({ owner, path: obj.upstreamPath, err: (err as Error).message }, 'owner worker unreachable; asking origins');
      return fetchUpstream(obj, sink, signal);
    }
    count('peer');
    const status = res.statusCode;
    if (status >= 500) {
      const text = await res.body.text().catch(() => '');
      let message = `owner worker answered ${status}`;
      try {
        message = (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        // not the edge's JSON error: keep the generic message
      }
      throw new UpstreamError(status === 503 || status === 504 ? status : 502, message);
    }
    const headers: Record<string, string> = {};
    for (const k of KEPT) {
      const v = res.headers[k];
      if (typeof v === 'string') headers[k] = v;
    }
    const age = res.headers.age;
    const ttlMs = ttlOf(headers, typeof age === 'string' ? age : undefined);
    sink.head(status, headers, ttlMs);
    const keep: Buffer[] | undefined = obj.kind === 'playlist' && status === 200 && ttlMs > 0 ? [] : undefined;
    for await (const chunk of res.body) {
      sink.data(chunk as Buffer);
      keep?.push(chunk as Buffer);
    }
    if (keep !== undefined) stale.remember(obj.cacheKey, Buffer.concat(keep), headers);
  }

  return {
    fetch,
    async close() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
    },
  };
}

/** The owner side: a node:http server on this worker's socket answering `GET <upstreamPath>` with `handle`. */
export class PeerServer {
  private server: Server | undefined;

  constructor(
    private readonly path: string,
    private readonly handle: (req: IncomingMessage, res: ServerResponse) => void,
  ) {}

  /** Listens on the socket, replacing the file a previous run of this worker left. */
  async start(): Promise<void> {
    if (this.server !== undefined) return;
    await unlink(this.path).catch(() => undefined);
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 65_000;
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** Stops listening and closes the peers' connections. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    await unlink(this.path).catch(() => undefined);
  }
}
