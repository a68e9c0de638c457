// The origin's end of the cluster feed transport: `PUT /internal/v1/feeds/:eventId` from an ingest
// (ingest/feed-forwarder.ts), whose chunked body is the event's FLV stream. Checked in this order:
//  1. authentication (lib/cluster-auth.ts: HMAC with the cluster secret, bounded clock skew, one use): 401;
//  2. fencing: the event's placement must be at the request's epoch and list this origin: 409 `fenced`;
//  3. capacity: this origin already carries `capacity` other live events: 503 `origin_full`.
// Then the body is piped into the origin's FeedSink (as a local publisher would be), with the placement's
// timeline. A feed for an event already carried replaces the old one, as a republish does. While the feed runs,
// a placement change to a newer epoch without this origin closes it (409). The answer to a feed that ran to its
// end is 200 with a small JSON summary.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../lib/logger.ts';
import { Counter, Gauge, sharedMetric, type Registry } from '../lib/metrics.ts';
import type { Service } from '../lib/lifecycle.ts';
import { sendError, sendJson } from '../lib/http.ts';
import type { Placement, Placements } from '../lib/placement/types.ts';
import { DEFAULT_MAX_SKEW_MS, FEED_PATH_PREFIX, ReplayGuard, readFeedRequest, type FeedRequestMeta } from '../lib/cluster-auth.ts';
import { FeedRefusal, type IngestFeedSink, type LiveFeed } from '../ingest/feed.ts';
import { normalizeAddress } from '../lib/client-address.ts';

/** What the receiver needs from its parent. */
export interface FeedReceiverDeps {
  /** Read for fencing: the event's current placement, and its changes. */
  placements: Pick<Placements, 'get' | 'onChange'>;
  /** This origin's node id (as placements list it). */
  nodeId: string;
  /** The cluster secret (never logged). */
  secret: string;
  /** Most live events this origin carries (ONAIR_ORIGIN_CAPACITY resolved). */
  capacity: number | (() => number);
  /** Where feeds go: the origin's FeedSink (`origin.feeds`). */
  feeds: IngestFeedSink;
  logger: Logger;
  registry: Registry;
  /** Bound on the ingest's clock skew (default 60 s). */
  maxSkewMs?: number;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
}

/** The origin's feed endpoint; a Service (start subscribes to placement changes, stop closes every feed). */
export interface FeedReceiver extends Service {
  /** Handles a request under `/internal/v1/feeds/`; false (the request untouched) for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Events whose feed arrives here now (for the origin's heartbeat). */
  liveEvents(): number;
  /** True while a feed for `eventId` arrives here. */
  carries(eventId: string): boolean;
}

/** One feed being received. */
interface Inbound {
  readonly eventId: string;
  readonly meta: FeedRequestMeta;
  /** The placement epoch the feed runs under (raised when a newer placement still lists this origin). */
  epoch: number;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  feed: LiveFeed | undefined;
  bytes: number;
  readonly startedAt: number;
  closed: boolean;
}

const EVENT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** After a refusal is sent, a client still sending is cut off this much later. */
const REFUSAL_LINGER_MS = 1000;
/** When the request's epoch is newer than the placement read here, re-read (a cache may lag) this many times. */
const EPOCH_RETRIES = [100, 250, 500];

/** Creates the receiver; mount handle() on the origin's HTTP server, before the HLS handler. */
export function createFeedReceiver(deps: FeedReceiverDeps): FeedReceiver {
  const { nodeId } = deps;
  const log = deps.logger.child({ component: 'feed-receiver' });
  const now = deps.now ?? Date.now;
  const maxSkewMs = deps.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  const replay = new ReplayGuard(2 * maxSkewMs);
  const capacity = typeof deps.capacity === 'function' ? deps.capacity : () => deps.capacity as number;
  const inbound = new Map<string, Inbound>();
  let unsubscribe: (() => void) | undefined;
  let running = false;

  const m = {
    accepted: sharedMetric(deps.registry, Counter, 'onair_origin_feeds_total', 'Feed requests from ingests accepted.', []),
    refused: sharedMetric(deps.registry, Counter, 'onair_origin_feed_refusals_total', 'Feed requests refused or closed, by reason.', [
      'reason',
    ]),
    bytes: sharedMetric(deps.registry, Counter, 'onair_origin_feed_bytes_total', 'FLV bytes received from ingests.', []),
  };
  const active = sharedMetric(deps.registry, Gauge, 'onair_origin_feeds_active', 'Feeds from ingests arriving now.', []);
  const track = (ib: Inbound) => {
    inbound.set(ib.eventId, ib);
    active.inc();
  };
  const untrack = (ib: Inbound) => {
    if (inbound.get(ib.eventId) !== ib) return;
    inbound.delete(ib.eventId);
    active.dec();
  };

  /** Answers an error and makes sure a client that keeps sending is cut off. */
  function refuse(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, reason = code): void {
    m.refused.inc({ reason });
    if (res.headersSent) {
      req.destroy();
      return;
    }
    res.on('finish', () => {
      const t = setTimeout(() => req.destroy(), REFUSAL_LINGER_MS);
      t.unref();
      req.socket.once('close', () => clearTimeout(t));
    });
    sendError(res, status, code, message, { connection: 'close' });
    req.resume(); // discard what the ingest still sends
  }

  /** Ends a feed once: the origin's LiveFeed ends; the ingest gets `status` unless the request already finished. */
  function close(ib: Inbound, status: number, code: string, message: string): void {
    if (ib.closed) return;
    ib.closed = true;
    untrack(ib);
    endFeed(ib);
    log.warn({ eventId: ib.eventId, epoch: ib.epoch, ingest: ib.meta.ingest, bytes: ib.bytes, status, code, why: message }, 'feed closed');
    refuse(ib.req, ib.res, status, code, message);
  }

  function endFeed(ib: Inbound): void {
    const feed = ib.feed;
    ib.feed = undefined;
    try {
      feed?.end();
    } catch (err) {
      log.error({ err, eventId: ib.eventId }, 'feed end failed');
    }
  }

  async function readPlacement(eventId: string, epoch: number): Promise<Placement | undefined> {
    let p = await deps.placements.get(eventId);
    for (const wait of EPOCH_RETRIES) {
      if (!p || p.epoch >= epoch) break;
      await new Promise((r) => setTimeout(r, wait));
      p = await deps.placements.get(eventId);
    }
    return p;
  }

  async function receive(req: IncomingMessage, res: ServerResponse, eventId: string): Promise<void> {
    const remoteAddress = normalizeAddress(req.socket.remoteAddress ?? '');
    const auth = readFeedRequest(deps.secret, eventId, req.headers, { nowMs: now(), maxSkewMs, replay });
    if (!auth.ok) {
      log.warn({ eventId, remoteAddress, reason: auth.reason }, 'feed request refused: authentication');
      if (auth.reason === 'bad_headers') return refuse(req, res, 400, 'bad_request', auth.message);
      return refuse(req, res, 401, 'unauthorized', auth.message, auth.reason);
    }
    const { meta } = auth;
    if (meta.origin !== nodeId) {
      log.warn({ eventId, remoteAddress, ingest: meta.ingest, epoch: meta.epoch }, 'feed request for another origin');
      return refuse(req, res, 409, 'fenced', 'this feed was signed for another origin', 'wrong_origin');
    }
    let placement: Placement | undefined;
    try {
      placement = await readPlacement(eventId, meta.epoch);
    } catch (err) {
      log.error({ eventId, err: (err as Error).message }, 'placement lookup failed');
      return refuse(req, res, 503, 'placement_unavailable', 'the placement cannot be read now; try again');
    }
    if (!running) return refuse(req, res, 503, 'unavailable', 'origin is stopping');
    if (!placement || placement.epoch !== meta.epoch || !placement.origins.some((o) => o.id === nodeId)) {
      const why = !placement
        ? 'the event has no placement'
        : placement.epoch !== meta.epoch
          ? `the placement is at epoch ${placement.epoch}, not ${meta.epoch}`
          : 'the placement does not list this origin';
      log.warn({ eventId, ingest: meta.ingest, epoch: meta.epoch, why }, 'feed request refused: fenced');
      return refuse(req, res, 409, 'fenced', why);
    }
    const old = inbound.get(eventId);
    const others = inbound.size - (old ? 1 : 0);
    const cap = capacity();
    if (others >= cap) {
      log.warn({ eventId, ingest: meta.ingest, live: others, capacity: cap }, 'feed request refused: origin full');
      return refuse(req, res, 503, 'origin_full', `this origin carries ${others} live events, its capacity`);
    }
    if (old) close(old, 409, 'fenced', `replaced by a feed at epoch ${meta.epoch}`);
    const ib: Inbound = { eventId, meta, epoch: meta.epoch, req, res, feed: undefined, bytes: 0, startedAt: now(), closed: false };
    track(ib);
    let feed: LiveFeed;
    try {
      feed = await deps.feeds.open(eventId, {
        protocol: meta.protocol,
        sessionId: meta.publish,
        remoteAddress,
        timeline: { zeroMs: meta.timelineZeroMs, session: meta.session },
      });
    } catch (err) {
      untrack(ib);
      ib.closed = true;
      log.error({ eventId, err: (err as Error).message }, 'feed open failed');
      const code = err instanceof FeedRefusal ? err.code : 'feed_error';
      return refuse(req, res, 503, code, err instanceof FeedRefusal ? err.message : 'the origin cannot take the feed now', 'feed_error');
    }
    if (ib.closed) {
      // Replaced or fenced while the feed opened.
      feed.end();
      return;
    }
    ib.feed = feed;
    m.accepted.inc();
    log.info({ eventId, ingest: meta.ingest, epoch: meta.epoch, session: meta.session, protocol: meta.protocol }, 'feed from ingest');
    req.on('data', (chunk: Buffer) => {
      if (ib.closed || !ib.feed) return;
      ib.bytes += chunk.length;
      m.bytes.inc(chunk.length);
      try {
        ib.feed.write(chunk);
      } catch (err) {
        log.error({ eventId, err: (err as Error).message }, 'feed write failed');
        close(ib, 503, 'feed_error', 'the origin could not take the feed');
      }
    });
    req.on('end', () => {
      if (ib.closed) return;
      ib.closed = true;
      untrack(ib);
      endFeed(ib);
      const durationMs = now() - ib.startedAt;
      log.info({ eventId, epoch: ib.epoch, bytes: ib.bytes, durationMs }, 'feed ended by the ingest');
      sendJson(res, 200, { eventId, epoch: ib.epoch, session: meta.session, bytes: ib.bytes, durationMs });
    });
    req.on('close', () => {
      if (ib.closed) return;
      ib.closed = true;
      untrack(ib);
      endFeed(ib);
      m.refused.inc({ reason: 'lost' });
      log.warn({ eventId, epoch: ib.epoch, bytes: ib.bytes }, 'feed connection lost');
    });
  }

  function onPlacementChange(eventId: string, p: Placement | undefined): void {
    const ib = inbound.get(eventId);
    if (!ib || !p || p.epoch <= ib.epoch) return;
    if (p.origins.some((o) => o.id === nodeId)) {
      ib.epoch = p.epoch; // still ours, at a newer epoch (another origin of the event was replaced)
      return;
    }
    close(ib, 409, 'fenced', `the placement moved to epoch ${p.epoch} without this origin`);
  }

  return {
    handle(req, res) {
      const path = (req.url ?? '').split('?')[0]!;
      if (!path.startsWith(FEED_PATH_PREFIX)) return false;
      let eventId = '';
      try {
        eventId = decodeURIComponent(path.slice(FEED_PATH_PREFIX.length));
      } catch {
        // not valid percent-encoding: refused below
      }
      if (!EVENT_ID_RE.test(eventId)) {
        refuse(req, res, 404, 'not_found', 'no such feed endpoint');
        return true;
      }
      if (req.method !== 'PUT') {
        m.refused.inc({ reason: 'method' });
        sendError(res, 405, 'method_not_allowed', 'feeds are sent with PUT', { allow: 'PUT', connection: 'close' });
        return true;
      }
      if (!running) {
        refuse(req, res, 503, 'unavailable', 'origin is not accepting feeds');
        return true;
      }
      receive(req, res, eventId).catch((err: Error) => {
        log.error({ eventId, err: err.message }, 'feed request failed');
        refuse(req, res, 500, 'internal', 'internal error');
      });
      return true;
    },
    liveEvents: () => inbound.size,
    carries: (eventId) => inbound.has(eventId),
    async start() {
      running = true;
      unsubscribe = deps.placements.onChange(onPlacementChange);
    },
    async stop() {
      running = false;
      unsubscribe?.();
      unsubscribe = undefined;
      for (const ib of [...inbound.values()]) close(ib, 503, 'unavailable', 'origin is stopping');
    },
  };
}
