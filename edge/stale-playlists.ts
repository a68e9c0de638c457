// Stale-if-error: the last good copy of each live media playlist, answered when no origin can.
import { LRUCache } from 'lru-cache';
import { coversRequest, playlistCoverage, type PlaylistCoverage } from './playlist-coverage.ts';

/** The last good copy of a live media playlist. */
export interface StalePlaylist {
  body: Buffer;
  headers: Readonly<Record<string, string>>;
  /** Wall-clock time (ms) the copy was complete; its `Age` and the stale bound count from here. */
  storedAt: number;
  coverage: PlaylistCoverage;
}

/** The playlist request a stale copy may answer (an `HlsObject` fits). */
export interface StaleRequest {
  readonly cacheKey: string;
  readonly upstreamPath: string;
  /** A blocking reload (`_HLS_msn`) may only be answered by a copy that already covers what it waits for. */
  readonly blocking: boolean;
}

/** Options of a {@link StalePlaylists} store. */
export interface StalePlaylistsOptions {
  /** How long after it was stored a copy may still be served, in ms. */
  boundMs: number;
  /** Most copies kept (per rendition and skip mode); the least recently used go first. Default 10,000. */
  maxEntries?: number;
  /** Wall clock (default Date.now). */
  now?: () => number;
}

/** The stale-if-error key of a playlist cache key: its path, and whether it is a delta update (`_HLS_skip`). */
export function staleKey(cacheKey: string): string {
  const q = cacheKey.indexOf('?');
  if (q === -1) return cacheKey;
  return cacheKey.includes('_HLS_skip=', q) ? cacheKey.slice(0, q) + '#skip' : cacheKey.slice(0, q);
}

/** The last good copy of each live playlist (every blocking reload folds into its rendition's copy). */
export class StalePlaylists {
  private readonly boundMs: number;
  private readonly now: () => number;
  // The LRU's own TTL only bounds memory (on its own clock); `find` applies the bound on ours.
  private readonly copies: LRUCache<string, StalePlaylist>;

  constructor(opts: StalePlaylistsOptions) {
    this.boundMs = opts.boundMs;
    this.now = opts.now ?? Date.now;
    this.copies = new LRUCache<string, StalePlaylist>({ max: opts.maxEntries ?? 10_000, ttl: opts.boundMs + 60_000 });
  }

  /** Keeps `body` (a complete 200 playlist) as the latest copy for the request with `cacheKey`. */
  remember(cacheKey: string, body: Buffer, headers: Readonly<Record<string, string>>): void {
    this.copies.set(staleKey(cacheKey), { body, headers, storedAt: this.now(), coverage: playlistCoverage(body) });
  }

  /** A copy that may answer `req` now (within the bound, and covering a blocking request), if any. */
  find(req: StaleRequest): StalePlaylist | undefined {
    const s = this.copies.get(staleKey(req.cacheKey));
    if (s === undefined || this.now() - s.storedAt > this.boundMs) return undefined;
    if (req.blocking && !coversRequest(s.coverage, req.upstreamPath)) return undefined;
    return s;
  }

  /** What the copy for the request with `cacheKey` lists, while it may still be served. */
  coverage(cacheKey: string): PlaylistCoverage | undefined {
    const s = this.copies.get(staleKey(cacheKey));
    return s === undefined || this.now() - s.storedAt > this.boundMs ? undefined : s.coverage;
  }

  /** Forgets every copy. */
  clear(): void {
    this.copies.clear();
  }
}
