// Byte-bounded LRU of complete responses plus coalesced, streamed in-flight upstream fetches.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** A complete, stored response. */
export interface CacheEntry {
  /** HTTP status (200 or 404 when stored). */
  status: number;
  /** Response headers, lower-case names (content-type, content-length, etag, cache-control, …). */
  headers: Readonly<Record<string, string>>;
  /** The whole body. */
  body: Buffer;
  /** Wall-clock time (ms since epoch) the response head arrived from upstream; `Age` counts from here. */
  storedAt: number;
  /** Time to live in the cache, in ms. */
  ttlMs: number;
  /** Strong ETag of a stored 200: the origin's, or one the cache derived from the body. */
  etag?: string;
  /** Response headers serialized by the server using the entry (for the `Age` they carry) and its label; reused across hits. */
  wire?: { ageSec: number; headers: string[]; kind: string };
}

/** The head of a response, known before its body has arrived. */
export interface ResponseHead {
  status: number;
  headers: Readonly<Record<string, string>>;
  storedAt: number;
  ttlMs: number;
}

/** What a fetcher feeds: one head, then body chunks as they arrive. */
export interface FetchSink {
  /** Delivers the response head; `ttlMs` ≤ 0 means do not store. Call once, before any data. */
  head(status: number, headers: Readonly<Record<string, string>>, ttlMs: number): void;
  /** Delivers a body chunk; the buffer must not be modified afterwards (it is shared). */
  data(chunk: Buffer): void;
}

/** Performs the one upstream fetch for a key; resolves when the body is complete, rejects on failure. */
export type Fetcher = (sink: FetchSink, signal: AbortSignal) => Promise<void>;

/** Receives one in-flight response: head, the chunks so far, every later chunk, then end or error. */
export interface CacheSubscriber {
  head(head: ResponseHead): void;
  data(chunk: Buffer): void;
  end(): void;
  error(err: Error): void;
}

/** A subscriber's membership of an in-flight fetch. */
export interface Subscription {
  /** `miss` if this subscription started the upstream fetch, `coalesced` if it joined one. */
  readonly result: 'miss' | 'coalesced';
  /** Stops delivery to this subscriber; the shared fetch carries on for the others (and the cache). */
  cancel(): void;
}

/** Options of a {@link CoalescingCache}. */
export interface CoalescingCacheOptions {
  /** Byte budget for stored entries (bodies plus an estimate of headers and key). */
  maxBytes: number;
  /** Upper bound on the TTL of a stored 404, in ms (default 1000). */
  negativeTtlMs?: number;
  /** Wall clock for `storedAt` (default Date.now). */
  now?: () => number;
}

/** A strong validator for a body: its SHA-1, base64url (the body of a stored entry never changes). */
export function strongEtag(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** Bytes charged per entry on top of its body, for key, headers and bookkeeping. */
const ENTRY_OVERHEAD = 256;

/** One upstream fetch in progress and everyone waiting on it. A subscriber that throws is dropped. */
class InFlight implements FetchSink {
  response: ResponseHead | undefined;
  readonly chunks: Buffer[] = [];
  received = 0;
  readonly subscribers = new Set<CacheSubscriber>();
  readonly abort = new AbortController();
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  head(status: number, headers: Readonly<Record<string, string>>, ttlMs: number): void {
    if (this.response !== undefined) throw new Error('response head delivered twice');
    if (this.abort.signal.aborted) return;
    const head: ResponseHead = { status, headers, storedAt: this.now(), ttlMs };
    this.response = head;
    for (const s of this.subscribers) {
      try {
        s.head(head);
      } catch {
        this.subscribers.delete(s);
      }
    }
  }

  data(chunk: Buffer): void {
    if (this.response === undefined) throw new Error('body data before response head');
    if (this.abort.signal.aborted || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.received += chunk.length;
    for (const s of this.subscribers) {
      try {
        s.data(chunk);
      } catch {
        this.subscribers.delete(s);
      }
    }
  }

  /** Brings a late joiner up to date: head and every chunk so far. */
  replay(s: CacheSubscriber): void {
    const head = this.response;
    if (head === undefined) return;
    try {
      s.head(head);
      const chunks = this.chunks;
      for (let i = 0; i < chunks.length && this.subscribers.has(s); i++) s.data(chunks[i]!);
    } catch {
      this.subscribers.delete(s);
    }
  }

  /** Ends every subscriber's response, with `err` or successfully. */
  finish(err: Error | undefined): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const s of subs) {
      try {
        if (err === undefined) s.end();
        else s.error(err);
      } catch {
        // one subscriber's failure must not stop delivery to the others
      }
    }
  }
}

/**
 * Byte-bounded LRU of complete responses (lru-cache) in front of an upstream, with request coalescing:
 * the first request for a key starts one fetch, concurrent requests join it and receive its body as
 * it streams in; the completed response is stored when cacheable (200, and 404 briefly).
 */
export class CoalescingCache {
  private readonly lru: LRUCache<string, CacheEntry>;
  private readonly inflight = new Map<string, InFlight>();
  private readonly negativeTtlMs: number;
  private readonly now: () => number;
  private hitCount = 0;
  private missCount = 0;
  private coalescedCount = 0;

  constructor(opts: CoalescingCacheOptions) {
    this.negativeTtlMs = opts.negativeTtlMs ?? 1000;
    this.now = opts.now ?? Date.now;
    this.lru = new LRUCache<string, CacheEntry>({
      maxSize: opts.maxBytes,
      sizeCalculation: (e, key) => e.body.length + key.length + ENTRY_OVERHEAD,
    });
  }

  /** Requests served from a stored entry. */
  get hits(): number {
    return this.hitCount;
  }
  /** Requests that started an upstream fetch. */
  get misses(): number {
    return this.missCount;
  }
  /** Requests that joined a fetch already in flight. */
  get coalesced(): number {
    return this.coalescedCount;
  }
  /** Bytes currently charged to stored entries (never above `maxBytes`). */
  get bytes(): number {
    return this.lru.calculatedSize;
  }
  /** Number of stored entries (some may be expired and not yet evicted). */
  get entries(): number {
    return this.lru.size;
  }
  /** Number of upstream fetches in progress. */
  get inFlight(): number {
    return this.inflight.size;
  }

  /** Returns the fresh stored entry for `key` (counted as a hit), or undefined. */
  lookup(key: string): CacheEntry | undefined {
    const e = this.lru.get(key);
    if (e !== undefined) this.hitCount++;
    return e;
  }

  /**
   * Joins the in-flight fetch for `key`, or starts one with `fetcher`. The subscriber gets the head
   * and chunks received so far at once (synchronously), then the rest as it arrives. Call
   * {@link lookup} first: this does not consult stored entries.
   */
  subscribe(key: string, fetcher: Fetcher, subscriber: CacheSubscriber): Subscription {
    let f = this.inflight.get(key);
    let result: 'miss' | 'coalesced';
    if (f !== undefined) {
      result = 'coalesced';
      this.coalescedCount++;
      f.subscribers.add(subscriber);
      f.replay(subscriber);
    } else {
      result = 'miss';
      this.missCount++;
      f = new InFlight(this.now);
      f.subscribers.add(subscriber);
      this.inflight.set(key, f);
      this.run(key, f, fetcher);
    }
    const flight = f;
    return {
      result,
      cancel: () => {
        flight.subscribers.delete(subscriber);
      },
    };
  }

  /** Convenience: the stored entry, or the complete response of the (possibly shared) fetch. */
  get(key: string, fetcher: Fetcher): Promise<CacheEntry> {
    const hit = this.lookup(key);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise<CacheEntry>((resolve, reject) => {
      let head: ResponseHead | undefined;
      const chunks: Buffer[] = [];
      this.subscribe(key, fetcher, {
        head: (h) => {
          head = h;
        },
        data: (c) => {
          chunks.push(c);
        },
        end: () => {
          const h = head!;
          resolve({ status: h.status, headers: h.headers, body: Buffer.concat(chunks), storedAt: h.storedAt, ttlMs: h.ttlMs });
        },
        error: reject,
      });
    });
  }

  /** Drops a stored entry. */
  delete(key: string): void {
    this.lru.delete(key);
  }

  /** Drops every stored entry and aborts every fetch in flight (its subscribers get an error). */
  clear(): void {
    this.lru.clear();
    const flights = [...this.inflight.values()];
    this.inflight.clear();
    const err = new Error('cache cleared');
    for (const f of flights) {
      f.abort.abort(err);
      f.finish(err);
    }
  }

  private run(key: string, f: InFlight, fetcher: Fetcher): void {
    let p: Promise<void>;
    try {
      p = fetcher(f, f.abort.signal);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      () => this.complete(key, f),
      (err: unknown) => {
        if (this.inflight.get(key) === f) this.inflight.delete(key);
        f.finish(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private complete(key: string, f: InFlight): void {
    if (this.inflight.get(key) !== f) return; // cleared meanwhile
    this.inflight.delete(key);
    const head = f.response;
    if (head === undefined) {
      f.finish(new Error('upstream fetch finished without a response'));
      return;
    }
    let ttl = head.ttlMs;
    if (head.status === 404) ttl = Math.min(ttl, this.negativeTtlMs);
    if ((head.status === 200 || head.status === 404) && ttl > 0) {
      const body = f.chunks.length === 1 ? f.chunks[0]! : Buffer.concat(f.chunks, f.received);
      const headers: Record<string, string> = { ...head.headers, 'content-length': String(body.length) };
      let etag: string | undefined;
      if (head.status === 200) {
        etag = headers.etag ?? strongEtag(body);
        headers.etag = etag;
      }
      this.lru.set(key, { status: head.status, headers, body, storedAt: head.storedAt, ttlMs: ttl, etag }, { ttl });
    }
    f.finish(undefined);
  }
}
