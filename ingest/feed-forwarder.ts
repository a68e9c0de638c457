// Cluster ingest: the FeedSink that forwards each live feed to its event's R origins. open() places the event
// (Placements.place: a new epoch); then every origin of the placement gets one streaming HTTP request,
// `PUT <origin>/internal/v1/feeds/<eventId>`, signed with the cluster secret (lib/cluster-auth.ts), whose chunked
// body is the FLV stream. A GOP cache (ingest/gop-cache.ts) lets an origin joining mid-stream start at a keyframe.
//
// Failure rules:
//  - an origin connection that fails (connect error, non-2xx such as 503 origin_full or 409 fenced, a reset, more
//    than maxQueuedBytes queued, no progress for stallMs) makes Placements.replace swap that origin; the new one
//    starts at once from the GOP cache. Replaces are serialized (each needs the current epoch).
//  - a fenced placement (replace rejects `fenced`, renew answers false) means another ingest owns the event: every
//    origin request is dropped and the next write throws, so the ingest ends the publish. Nothing is released.
//  - the publisher leaving (LiveFeed.end) ends the origin requests; the placement is renewed for reconnectWindowSec,
//    then released, unless a new open() for the event came (it places again: session + 1, same timeline).
//  - stop() drops every request and timer but releases nothing: the records expire, and a publisher reconnecting
//    through another ingest keeps the event's session and timeline meanwhile.
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { URL } from 'node:url';
import type { Logger } from '../lib/logger.ts';
import { Counter, sharedMetric, type Registry } from '../lib/metrics.ts';
import type { Service } from '../lib/lifecycle.ts';
import { FlvReader, isVideoKeyframe, isSequenceHeader, TagType, type FlvTag } from '../lib/flv.ts';
import { PlacementError, type Placement, type Placements } from '../lib/placement/types.ts';
import { feedPath, feedRequestHeaders } from '../lib/cluster-auth.ts';
import { FeedRefusal, type FeedSource, type LiveFeed } from './feed.ts';
import { GopCache, DEFAULT_MAX_GOP_BYTES } from './gop-cache.ts';

/** What a timeline shifter is made from: the placement's timeline, at the start of one publish session. */
export interface ShiftContext {
  eventId: string;
  /** Placement.timelineZeroMs: feed timestamps are to be ms since this instant. */
  timelineZeroMs: number;
  /** Placement.session. */
  session: number;
  /** When the publish session started (ms since the epoch). */
  startedAtMs: number;
}

/** Why an origin connection was given up (label of onair_ingest_forward_origin_failures_total). */
export type OriginFailure =
  'connect_error' | 'connect_timeout' | 'reset' | 'origin_full' | 'fenced' | 'refused' | 'closed_early' | 'overflow' | 'stalled';

/** What the forwarder needs from its parent. */
export interface FeedForwarderDeps {
  placements: Placements;
  /** This ingest's node id (Placement.ingest). */
  nodeId: string;
  /** Origins per event for the next placement (ONAIR_REPLICAS resolved against the pool). */
  replicas: () => number;
  /** The cluster secret (never logged). */
  secret: string;
  logger: Logger;
  registry: Registry;
  /** How long a placement outlives its publisher, waiting for it to come back. */
  reconnectWindowSec: number;
  /** The publisher did not come back within the reconnect window: the broadcast ended (its placement is released). */
  onReleased?: (eventId: string) => void;
  /**
   * Hook for the streaming FLV timestamp shifter (ingest/timeline.ts): made once per publish session, it maps the
   * publisher's bytes to bytes on the event's timeline, before the GOP cache, so every origin gets the same bytes.
   * Unset: bytes pass as they are.
   */
  shifter?: (ctx: ShiftContext) => (chunk: Buffer) => Buffer[];
  /** How often a live placement is renewed (default 2000 ms). */
  renewIntervalMs?: number;
  /** Bytes queued for one origin (not yet taken by its socket) before it counts as failed (default 8 MiB). */
  maxQueuedBytes?: number;
  /** An origin that takes no byte for this long while bytes wait for it counts as failed (default 5000 ms). */
  stallMs?: number;
  /** Time to connect to an origin (default 3000 ms). */
  connectTimeoutMs?: number;
  /** Time place() may take before the publisher is refused (default 5000 ms). */
  placeTimeoutMs?: number;
  /** Bound on the cached GOP (default 32 MiB). */
  maxGopBytes?: number;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
}

/** The cluster ingest's FeedSink; a Service whose stop() drops every forward. */
export interface FeedForwarder extends Service {
  /** Places `eventId` on origins and starts forwarding; rejects with a FeedRefusal when no origin can take it. */
  open(eventId: string, source: FeedSource): Promise<LiveFeed>;
  /** The placement this ingest forwards `eventId` under (also while waiting for a reconnect), if any. */
  placement(eventId: string): Placement | undefined;
  /** Origin ids `eventId`'s feed is flowing to now. */
  connectedOrigins(eventId: string): string[];
}

const MIB = 1024 * 1024;
/** Least time between two replaces of one event, doubled per replace until all its origins take the feed again. */
const REPAIR_MIN_GAP_MS = 300;
const REPAIR_MAX_GAP_MS = 5000;
/** Bytes of an origin's error answer read to learn its code. */
const MAX_ERROR_BODY = 4096;

/** Creates the forwarder; it starts nothing until a publisher opens a feed. */
export function createFeedForwarder(deps: FeedForwarderDeps): FeedForwarder {
  const { placements, nodeId } = deps;
  const log = deps.logger.child({ component: 'feed-forwarder' });
  const now = deps.now ?? Date.now;
  const opts = {
    renewIntervalMs: deps.renewIntervalMs ?? 2000,
    maxQueuedBytes: deps.maxQueuedBytes ?? 8 * MIB,
    stallMs: deps.stallMs ?? 5000,
    connectTimeoutMs: deps.connectTimeoutMs ?? 3000,
    placeTimeoutMs: deps.placeTimeoutMs ?? 5000,
    maxGopBytes: deps.maxGopBytes ?? DEFAULT_MAX_GOP_BYTES,
  };
  const m = {
    feeds: sharedMetric(
      deps.registry,
      Counter,
      'onair_ingest_forward_feeds_total',
      'Publish sessions placed and forwarded to origins.',
      [],
    ),
    bytes: sharedMetric(
      deps.registry,
      Counter,
      'onair_ingest_forward_bytes_total',
      'FLV bytes written to origin feed requests (all replicas).',
      [],
    ),
    failures: sharedMetric(
      deps.registry,
      Counter,
      'onair_ingest_forward_origin_failures_total',
      'Origin feed connections given up, by reason.',
      ['reason'],
    ),
    failovers: sharedMetric(
      deps.registry,
      Counter,
      'onair_ingest_forward_failovers_total',
      'Placement replaces after origin failures (a new origin took over).',
      [],
    ),
    refusals: sharedMetric(
      deps.registry,
      Counter,
      'onair_ingest_placement_refusals_total',
      'Publishes refused because no placement could be made, by reason.',
      ['reason'],
    ),
  };
  const events = new Map<string, EventFeed>();
  let stopped = false;

  /** One origin's feed request. */
  class OriginLink {
    state: 'connecting' | 'open' | 'ending' | 'done' | 'failed' = 'connecting';
    readonly req: ClientRequest;
    #headerSent = false;
    #awaitKeyframe = false;
    #connectTimer: NodeJS.Timeout | undefined;
    #lastFlushed = 0;
    /** The joining snapshot's bytes, queued at once: allowed on top of maxQueuedBytes. */
    #allowance = 0;
    #lastProgressAt = now();
    #refused: { status: number; body: Buffer[]; bytes: number } | undefined;

    constructor(
      readonly feed: EventFeed,
      readonly origin: { id: string; url: string },
      readonly epoch: number,
    ) {
      const p = feed.placement;
      const url = new URL(origin.url + feedPath(feed.eventId));
      const headers = feedRequestHeaders(
        deps.secret,
        {
          eventId: feed.eventId,
          epoch,
          session: p.session,
          timelineZeroMs: p.timelineZeroMs,
          ingest: nodeId,
          origin: origin.id,
          protocol: feed.source.protocol,
          publish: feed.source.sessionId,
        },
        now(),
      );
      this.req = request(url, { method: 'PUT', agent: false, headers: { ...headers, 'content-type': 'video/x-flv' } });
      this.req.setNoDelay(true);
      this.#connectTimer = setTimeout(
        () => this.#fail('connect_timeout', `no connection within ${opts.connectTimeoutMs} ms`),
        opts.connectTimeoutMs,
      );
      this.req.on('socket', (socket) => {
        socket.once('connect', () => {
          clearTimeout(this.#connectTimer);
          if (this.state === 'connecting') this.state = 'open';
        });
      });
      this.req.on('response', (res) => this.#onResponse(res));
      this.req.on('error', (err: NodeJS.ErrnoException) =>
        this.#fail(this.state === 'connecting' ? 'connect_error' : 'reset', err.code ?? err.message),
      );
      this.req.on('close', () => {
        clearTimeout(this.#connectTimer);
        if (this.state === 'ending') this.#fail('closed_early', 'connection closed before the origin answered');
        else this.#fail('reset', 'connection closed');
      });
      this.req.flushHeaders(); // the origin may refuse before any byte of the body
    }

    /** Sends the joining bytes: header, configs and the cached GOP (or nothing before the FLV header). */
    start(snapshot: ReturnType<GopCache['snapshot']>): void {
      if (!snapshot) return;
      this.#headerSent = true;
      this.#awaitKeyframe = snapshot.awaitKeyframe;
      this.#allowance = snapshot.buffers.reduce((n, b) => n + b.length, 0);
      for (const b of snapshot.buffers) this.#write(b);
    }

    /** The stream's FLV header arrived (for a link opened before it). */
    header(buf: Buffer): void {
      if (this.#headerSent) return;
      this.#headerSent = true;
      this.#write(buf);
    }

    tag(tag: FlvTag): void {
      if (!this.#headerSent) return; // cannot happen: the header comes first
      if (this.#awaitKeyframe && tag.type !== TagType.script && !isSequenceHeader(tag)) {
        if (!isVideoKeyframe(tag)) return;
        this.#awaitKeyframe = false;
      }
      this.#write(tag.raw);
    }

    get live(): boolean {
      return this.state === 'connecting' || this.state === 'open';
    }

    #write(buf: Buffer): void {
      if (!this.live) return;
      this.req.write(buf);
      m.bytes.inc(buf.length);
      if (this.req.writableLength > opts.maxQueuedBytes + this.#allowance) {
        this.#fail('overflow', `more than ${opts.maxQueuedBytes} bytes queued for the origin`);
      }
    }

    /** Fails the link if bytes wait and the socket took none for stallMs. */
    checkStall(t: number): void {
      if (this.state !== 'open') return;
      // bytesWritten counts the bytes still queued in the socket too.
      const socket = this.req.socket;
      const flushed = socket ? socket.bytesWritten - socket.writableLength : 0;
      if (this.req.writableLength === 0 || flushed !== this.#lastFlushed) {
        this.#lastFlushed = flushed;
        this.#lastProgressAt = t;
      } else if (t - this.#lastProgressAt > opts.stallMs) {
        this.#fail('stalled', `no byte taken for ${t - this.#lastProgressAt} ms`);
      }
    }

    /** Ends the request body (the publisher left); the origin answers 200. */
    end(): void {
      if (!this.live) return;
      this.state = 'ending';
      this.req.end();
    }

    /** Drops the request without a failure (dropped from the placement, fenced, stopping). */
    abort(): void {
      if (this.state === 'done' || this.state === 'failed') return;
      this.state = 'done';
      clearTimeout(this.#connectTimer);
      this.#drop();
    }

    /**
     * Drops the connection with a reset: bytes still queued for a stalled origin would otherwise keep the closed
     * socket (and the origin's side of it) alive until the kernel gives up.
     */
    #drop(): void {
      const socket = this.req.socket;
      if (socket && !socket.destroyed && this.req.writableLength > 0) socket.resetAndDestroy();
      this.req.destroy();
    }

    #onResponse(res: IncomingMessage): void {
      const status = res.statusCode ?? 0;
      if (status >= 200 && status < 300) {
        res.resume();
        if (this.state === 'ending') {
          this.state = 'done';
          clearTimeout(this.#connectTimer);
          log.debug({ eventId: this.feed.eventId, origin: this.origin.id, status }, 'origin feed ended');
        } else this.#fail('closed_early', `origin answered ${status} before the feed ended`);
        return;
      }
      const refused = { status, body: [] as Buffer[], bytes: 0 };
      this.#refused = refused;
      res.on('data', (c: Buffer) => {
        if (refused.bytes < MAX_ERROR_BODY) refused.body.push(c);
        refused.bytes += c.length;
      });
      const settle = () => {
        let code = '';
        try {
          code = String((JSON.parse(Buffer.concat(refused.body).toString('utf8')) as { error?: { code?: unknown } }).error?.code ?? '');
        } catch {
          // not our JSON error
        }
        const reason: OriginFailure = code === 'fenced' ? 'fenced' : code === 'origin_full' ? 'origin_full' : 'refused';
        this.#fail(reason, `origin answered ${status}${code ? ` ${code}` : ''}`);
      };
      res.once('end', settle);
      res.once('error', settle);
      res.once('close', settle);
    }

    #fail(reason: OriginFailure, detail: string): void {
      if (this.state === 'done' || this.state === 'failed') return;
      // A reset after an error answer arrived is that answer's doing.
      if (this.#refused && (reason === 'reset' || reason === 'closed_early')) return;
      const wasEnding = this.state === 'ending';
      this.state = 'failed';
      clearTimeout(this.#connectTimer);
      this.#drop();
      if (wasEnding) {
        log.debug({ eventId: this.feed.eventId, origin: this.origin.id, reason, detail }, 'origin feed ended without an answer');
        return;
      }
      m.failures.inc({ reason });
      this.feed.linkFailed(this, reason, detail);
    }
  }

  /** One publish session of one event: its placement, origin links, GOP cache and timers. */
  class EventFeed {
    state: 'live' | 'lingering' | 'fenced' | 'closed' = 'live';
    readonly links = new Map<string, OriginLink>();
    readonly gop = new GopCache(opts.maxGopBytes);
    readonly reader = new FlvReader();
    readonly shift: ((chunk: Buffer) => Buffer[]) | undefined;
    readonly log: Logger;
    #renewTimer: NodeJS.Timeout | undefined;
    #lingerTimer: NodeJS.Timeout | undefined;
    #lingerUntil = 0;
    #repairing = false;
    #lastRepairAt = 0;
    /** Replaces since every origin of the placement last had a working link (backs off an origin that fails at once). */
    #repairStreak = 0;
    #retryTimer: NodeJS.Timeout | undefined;
    bytesIn = 0;

    constructor(
      readonly eventId: string,
      readonly source: FeedSource,
      public placement: Placement,
    ) {
      this.log = log.child({ eventId });
      this.shift = deps.shifter?.({ eventId, timelineZeroMs: placement.timelineZeroMs, session: placement.session, startedAtMs: now() });
    }

    /** Closed or fenced: nothing more to do for this publish. */
    get gone(): boolean {
      return this.state === 'closed' || this.state === 'fenced';
    }

    start(): void {
      for (const o of this.placement.origins) this.#openLink(o);
      this.#renewTimer = setInterval(() => void this.#tick(), opts.renewIntervalMs);
      this.#renewTimer.unref();
      this.log.info(
        { epoch: this.placement.epoch, session: this.placement.session, origins: this.placement.origins.map((o) => o.id) },
        'forwarding feed to origins',
      );
    }

    write(chunk: Buffer): void {
      if (this.state === 'fenced') throw new FeedRefusal('fenced', 'another ingest owns this event now; ending the publish');
      if (this.state !== 'live') return;
      this.bytesIn += chunk.length;
      for (const piece of this.shift ? this.shift(chunk) : [chunk]) {
        const hadHeader = this.reader.header !== undefined;
        const tags = this.reader.push(piece); // throws FlvError for bytes that are not FLV: the publish ends
        if (!hadHeader && this.reader.header) {
          this.gop.header = this.reader.header;
          for (const l of this.links.values()) l.header(this.reader.header);
        }
        for (const tag of tags) {
          this.gop.push(tag);
          for (const l of this.links.values()) l.tag(tag);
        }
      }
    }

    /** The publisher left: end the origin requests, keep the placement for the reconnect window, then release it. */
    publisherLeft(why: string): void {
      if (this.state !== 'live') return;
      this.state = 'lingering';
      for (const l of this.links.values()) l.end();
      this.links.clear();
      clearTimeout(this.#retryTimer);
      this.log.info(
        { epoch: this.placement.epoch, bytes: this.bytesIn, reason: why, reconnectWindowSec: deps.reconnectWindowSec },
        'feed ended',
      );
      this.#lingerUntil = now() + deps.reconnectWindowSec * 1000;
      this.resumeLinger();
    }

    /** A new publish of the event is being placed: hold the release until it is known whether that worked. */
    pauseLinger(): void {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
    }

    /** The new publish could not be placed: the reconnect window runs on, to its original end. */
    resumeLinger(): void {
      if (this.state !== 'lingering') return;
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = setTimeout(() => void this.#release(), Math.max(0, this.#lingerUntil - now()));
      this.#lingerTimer.unref();
    }

    /** A newer placement of this ingest took over (a republish), or the forwarder stops: drop everything, release nothing. */
    close(): void {
      if (this.state === 'closed') return;
      this.state = 'closed';
      this.#clearTimers();
      for (const l of this.links.values()) l.abort();
      this.links.clear();
      if (events.get(this.eventId) === this) events.delete(this.eventId);
    }

    linkFailed(link: OriginLink, reason: OriginFailure, detail: string): void {
      if (this.links.get(link.origin.id) !== link) return;
      this.links.delete(link.origin.id);
      if (this.state !== 'live') return;
      this.log.warn({ origin: link.origin.id, epoch: link.epoch, reason, detail }, 'origin feed failed; replacing the origin');
      void this.#repair();
    }

    #openLink(o: { id: string; url: string }): void {
      const link = new OriginLink(this, o, this.placement.epoch);
      this.links.set(o.id, link);
      link.start(this.gop.snapshot());
    }

    /** Swaps the origins of the placement that have no working link, one replace at a time. */
    async #repair(): Promise<void> {
      if (this.#repairing) return;
      this.#repairing = true;
      try {
        while (this.state === 'live') {
          const failed = this.placement.origins.filter((o) => !this.links.get(o.id)?.live).map((o) => o.id);
          if (failed.length === 0) return;
          const gap = this.#repairStreak === 0 ? 0 : Math.min(REPAIR_MIN_GAP_MS * 2 ** (this.#repairStreak - 1), REPAIR_MAX_GAP_MS);
          const wait = this.#lastRepairAt + gap - now();
          if (wait > 0) {
            await new Promise((r) => setTimeout(r, wait));
            continue;
          }
          this.#lastRepairAt = now();
          this.#repairStreak++;
          const epoch = this.placement.epoch;
          let next: Placement;
          try {
            next = await placements.replace(this.eventId, epoch, failed);
          } catch (err) {
            if (err instanceof PlacementError && err.code === 'fenced') {
              this.fence(`replace at epoch ${epoch} was fenced`);
              return;
            }
            const reason = err instanceof PlacementError ? err.code : 'error';
            this.log.warn({ failed, epoch, reason, err: (err as Error).message }, 'no origin to replace the failed ones; retrying');
            clearTimeout(this.#retryTimer);
            this.#retryTimer = setTimeout(() => void this.#repair(), opts.renewIntervalMs);
            this.#retryTimer.unref();
            return;
          }
          if (this.gone) return; // closed or fenced while the replace was under way
          m.failovers.inc();
          this.#apply(next, failed);
        }
      } finally {
        this.#repairing = false;
      }
    }

    /** Adopts a newer placement of ours: links to dropped origins go, new origins start from the GOP cache. */
    #apply(next: Placement, failed: string[]): void {
      const before = this.placement;
      this.placement = next;
      const ids = new Set(next.origins.map((o) => o.id));
      for (const [id, l] of this.links) {
        if (!ids.has(id)) {
          l.abort();
          this.links.delete(id);
        }
      }
      const added = next.origins.filter((o) => !before.origins.some((b) => b.id === o.id)).map((o) => o.id);
      this.log.info({ epoch: next.epoch, failed, added, origins: next.origins.map((o) => o.id) }, 'placement replaced');
      if (this.state !== 'live') return;
      for (const o of next.origins) if (!this.links.has(o.id)) this.#openLink(o);
    }

    /** Another epoch owns the event: stop forwarding; the next write ends the publish. */
    fence(why: string): void {
      if (this.state === 'fenced' || this.state === 'closed') return;
      const wasLive = this.state === 'live';
      this.state = 'fenced';
      this.#clearTimers();
      for (const l of this.links.values()) l.abort();
      this.links.clear();
      if (events.get(this.eventId) === this) events.delete(this.eventId);
      this.log.warn(
        { epoch: this.placement.epoch, why },
        wasLive ? 'placement fenced: another ingest owns the event; ending the publish' : 'placement fenced while waiting for a reconnect',
      );
    }

    async #tick(): Promise<void> {
      if (this.state === 'live') {
        for (const l of this.links.values()) l.checkStall(now());
        if (this.placement.origins.every((o) => this.links.get(o.id)?.state === 'open')) this.#repairStreak = 0;
      }
      const epoch = this.placement.epoch;
      let ok: boolean;
      try {
        ok = await placements.renew(this.eventId, epoch, this.placement);
      } catch (err) {
        this.log.warn({ epoch, err: (err as Error).message }, 'placement renew failed; retrying');
        return;
      }
      // A replace may have moved the epoch on while the renew was under way: only the current epoch's answer counts.
      if (!ok && this.placement.epoch === epoch) this.fence(`renew at epoch ${epoch} refused`);
    }

    async #release(): Promise<void> {
      if (this.state !== 'lingering') return;
      this.state = 'closed';
      this.#clearTimers();
      if (events.get(this.eventId) === this) events.delete(this.eventId);
      deps.onReleased?.(this.eventId);
      try {
        await placements.release(this.eventId, this.placement.epoch);
        this.log.info({ epoch: this.placement.epoch }, 'no reconnect within the window; placement released');
      } catch (err) {
        this.log.warn({ epoch: this.placement.epoch, err: (err as Error).message }, 'placement release failed; it will expire');
      }
    }

    #clearTimers(): void {
      clearInterval(this.#renewTimer);
      clearTimeout(this.#lingerTimer);
      clearTimeout(this.#retryTimer);
      this.#renewTimer = this.#lingerTimer = this.#retryTimer = undefined;
    }
  }

  async function place(eventId: string): Promise<Placement> {
    let timer: NodeJS.Timeout | undefined;
    const placing = placements.place(eventId, { ingest: nodeId, replicas: deps.replicas() });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new FeedRefusal('unavailable', `placement took longer than ${opts.placeTimeoutMs} ms`)),
        opts.placeTimeoutMs,
      );
    });
    try {
      return await Promise.race([placing, timeout]);
    } catch (err) {
      // A placement made after we gave up is nobody's: give it back.
      placing.then((p) => placements.release(eventId, p.epoch)).catch(() => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async open(eventId, source) {
      if (stopped) throw new FeedRefusal('unavailable', 'ingest is stopping');
      const prev = events.get(eventId);
      prev?.publisherLeft('replaced by a new publish');
      prev?.pauseLinger();
      let placement: Placement;
      try {
        placement = await place(eventId);
      } catch (err) {
        prev?.resumeLinger();
        const code = err instanceof PlacementError || err instanceof FeedRefusal ? err.code : 'error';
        m.refusals.inc({ reason: code });
        const why =
          code === 'pool_full'
            ? 'every origin is at capacity (pool_full)'
            : code === 'no_origins'
              ? 'no origin is registered (no_origins)'
              : code === 'fenced'
                ? 'another ingest placed the event meanwhile (fenced)'
                : `placement failed: ${(err as Error).message}`;
        log.warn({ eventId, protocol: source.protocol, reason: code, why }, 'publish refused: no placement');
        throw new FeedRefusal(code === 'error' ? 'unavailable' : code, why);
      }
      if (stopped) {
        void placements.release(eventId, placement.epoch).catch(() => {});
        throw new FeedRefusal('unavailable', 'ingest is stopping');
      }
      prev?.close();
      const current = events.get(eventId);
      if (current && current !== prev) current.close(); // a concurrent open of the same event: the newest epoch wins
      const feed = new EventFeed(eventId, source, placement);
      events.set(eventId, feed);
      feed.start();
      m.feeds.inc();
      return {
        write: (chunk) => feed.write(chunk),
        end: () => feed.publisherLeft('publisher left'),
      };
    },
    placement: (eventId) => events.get(eventId)?.placement,
    connectedOrigins: (eventId) =>
      [...(events.get(eventId)?.links.values() ?? [])].filter((l) => l.state === 'open').map((l) => l.origin.id),
    async start() {
      stopped = false;
    },
    async stop() {
      stopped = true;
      for (const f of [...events.values()]) f.close();
      events.clear();
    },
  };
}
