// The edge's metrics: hot-path counts kept as plain numbers, turned into Prometheus samples only when scraped.
import type { Socket } from 'node:net';
import { Counter, Gauge, Histogram, type Registry } from '../lib/metrics.ts';

/** What the metrics read from the cache when scraped. */
export interface MetricsCache {
  readonly hits: number;
  readonly misses: number;
  readonly coalesced: number;
  readonly bytes: number;
  readonly inFlight: number;
}

/** An origin as the metrics name it: by its position in the configuration, never its (internal) URL. */
export interface MetricsUpstream {
  readonly label: string;
  readonly down: boolean;
}

/** What the metrics read from the origins when scraped. */
export interface MetricsUpstreams {
  readonly list: readonly MetricsUpstream[];
  /** False when the list is learnt at run time (placements): then origins are counted, not listed by label. */
  readonly byPosition?: boolean;
}

const KIND_LABELS = ['master', 'playlist', 'init', 'segment', 'part', 'thumbnail', 'invalid'] as const;
const OBJECT_KINDS = ['master', 'playlist', 'init', 'segment', 'part', 'thumbnail'] as const;
/** Statuses counted per kind (index = status); anything outside is not counted. */
const STATUS_SLOTS = 600;

/** Counters of one edge, registered on its registry; the hot-path ones are plain fields read at scrape time. */
export class EdgeMetrics {
  /** Requests per kind label, indexed by response status. */
  private readonly requestCounts: Record<string, Float64Array> = {};
  /** HLS body bytes sent to clients. */
  bytesSent = 0;
  /** Client connections that made an HLS request and are still open. */
  openConnections = 0;
  /** Playlists answered from the stale-if-error store. */
  staleServed = 0;
  /** Clients cut by the slow-client guard, by reason. */
  readonly cut = { buffer: 0, stall: 0 };
  /** Object fetches answered by another origin than the first one asked, by kind. */
  private readonly failovers: Record<string, number> = {};
  /** Object fetches of a multi-worker edge: answered by the owner worker, by origins as owner, or by origins as fallback. */
  private readonly peerRequests = { peer: 0, owner: 0, fallback: 0 };
  private readonly seenSockets = new WeakSet<Socket>();
  private readonly upstreamRequests: Counter<'upstream' | 'status'>;
  private readonly upstreamSeconds: Histogram;

  constructor(registry: Registry, cache: MetricsCache, upstreams: MetricsUpstreams) {
    // prom-client calls collect() with the metric as `this`, so the collectors reach these fields through `m`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const m = this;
    for (const k of KIND_LABELS) this.requestCounts[k] = new Float64Array(STATUS_SLOTS);
    new Counter({
      name: 'onair_edge_requests_total',
      help: 'HLS requests served by the edge, by object kind and response status.',
      labelNames: ['kind', 'status'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const kind of KIND_LABELS) {
          const counts = m.requestCounts[kind]!;
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
        if (m.staleServed > 0) this.inc({ result: 'stale' }, m.staleServed);
      },
    });
    this.upstreamRequests = new Counter({
      name: 'onair_edge_upstream_requests_total',
      help: 'Requests from the edge to origins, by origin (origin-<n>: the n-th configured URL, or the n-th origin of the event placement, 0 = primary) and status (HTTP status, "error", "timeout" or "moved" when failed over).',
      labelNames: ['upstream', 'status'] as const,
      registers: [registry],
    });
    this.upstreamSeconds = new Histogram({
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
        if (m.bytesSent > 0) this.inc(m.bytesSent);
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
        this.set(m.openConnections);
      },
    });
    new Gauge({
      name: 'onair_edge_upstream_up',
      help: 'Whether the edge considers an origin (origin-<n>: the n-th configured URL) reachable (1) or down (0).',
      labelNames: ['upstream'] as const,
      registers: [registry],
      collect() {
        if (upstreams.byPosition === false) return;
        for (const u of upstreams.list) this.set({ upstream: u.label }, u.down ? 0 : 1);
      },
    });
    new Gauge({
      name: 'onair_edge_origins',
      help: 'Origins the edge knows (configured, or learnt from placements and used lately), by state: "up" or "down".',
      labelNames: ['state'] as const,
      registers: [registry],
      collect() {
        let down = 0;
        for (const u of upstreams.list) if (u.down) down++;
        this.set({ state: 'up' }, upstreams.list.length - down);
        this.set({ state: 'down' }, down);
      },
    });
    new Counter({
      name: 'onair_edge_replica_failovers_total',
      help: 'Object fetches answered by another origin than the first one asked (the sticky replica of the event, or the first origin up), by object kind.',
      labelNames: ['kind'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const kind of OBJECT_KINDS) if ((m.failovers[kind] ?? 0) > 0) this.inc({ kind }, m.failovers[kind]);
      },
    });
    new Counter({
      name: 'onair_edge_peer_requests_total',
      help: 'Object fetches of a multi-worker edge, by result: "peer" (answered by the worker owning the object), "owner" (this worker owns it: fetched from origins), "fallback" (owner unreachable: fetched from origins).',
      labelNames: ['result'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [result, n] of Object.entries(m.peerRequests)) if (n > 0) this.inc({ result }, n);
      },
    });
    new Counter({
      name: 'onair_edge_clients_cut_total',
      help: 'Clients disconnected by the slow-client guard: "buffer" (too much queued), "stall" (took no bytes for edgeClientStallMs).',
      labelNames: ['reason'] as const,
      registers: [registry],
      collect() {
        this.reset();
        if (m.cut.buffer > 0) this.inc({ reason: 'buffer' }, m.cut.buffer);
        if (m.cut.stall > 0) this.inc({ reason: 'stall' }, m.cut.stall);
      },
    });
  }

  /** Records a finished request (an arrow so it can be handed on unbound). */
  readonly count = (kind: string, status: number, bytes: number): void => {
    const c = this.requestCounts[kind];
    if (c !== undefined && status >= 0 && status < c.length) c[status]!++;
    this.bytesSent += bytes;
  };

  /** Counts the connection of a request as open until it closes (once per socket). */
  track(socket: Socket): void {
    if (this.seenSockets.has(socket)) return;
    this.seenSockets.add(socket);
    this.openConnections++;
    socket.once('close', this.onSocketClose);
  }

  private readonly onSocketClose = (): void => {
    this.openConnections--;
  };

  /** Records one edge-to-origin request's outcome: an HTTP status, "error", "timeout" or "moved". */
  upstreamAnswered(u: { readonly label: string }, status: string): void {
    this.upstreamRequests.inc({ upstream: u.label, status });
  }

  /** Records an object fetch answered by another origin than the first one asked. */
  replicaFailover(kind: string): void {
    this.failovers[kind] = (this.failovers[kind] ?? 0) + 1;
  }

  /** Records one object fetch of a multi-worker edge by how it went. */
  peerRequest(result: 'peer' | 'owner' | 'fallback'): void {
    this.peerRequests[result]++;
  }

  /** Records how long one edge-to-origin request took, in seconds. */
  upstreamDuration(seconds: number): void {
    this.upstreamSeconds.observe(seconds);
  }
}
