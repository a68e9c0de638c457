// Authentication of the cluster's internal HTTP traffic: an ingest pushing a live feed to an origin. Both ends share
// the cluster secret (ONAIR_CLUSTER_SECRET); a request carries an HMAC-SHA256 over its method, path, placement epoch,
// a timestamp, a nonce and the other headers that steer the receiver (target origin, ingest, session, timeline). So
// a captured header cannot be used for another event, epoch, origin or timeline, nor after `maxSkewMs`, and with a
// ReplayGuard not even twice within it. MACs are compared in constant time; neither the secret nor a MAC is logged.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Header carrying the MAC: `OnAir-HMAC-SHA256 t=<ms>,n=<nonce>,mac=<base64url>`. */
export const CLUSTER_AUTH_HEADER = 'x-onair-auth';
/** Default bound on the difference between the sender's and the receiver's clocks. */
export const DEFAULT_MAX_SKEW_MS = 60_000;

const SCHEME = 'OnAir-HMAC-SHA256';
const VERSION = 'onair-cluster-v1';
const MAC_BYTES = 32;
const NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/;
const HEADER_RE = /^OnAir-HMAC-SHA256 t=(\d{1,16}),n=([A-Za-z0-9_-]{8,64}),mac=([A-Za-z0-9_-]{43})$/;

/** What a signature binds: the request line, the placement epoch, and further values the receiver acts on. */
export interface ClusterRequestClaims {
  method: string;
  path: string;
  epoch: number;
  /** Further values bound into the MAC, in an order both ends agree on (e.g. header values). */
  bound?: readonly string[];
}

/** Why a request's authentication was refused. */
export type ClusterAuthFailure = 'missing' | 'malformed' | 'skew' | 'bad_mac' | 'replayed';

/** The outcome of verifyClusterRequest. */
export type ClusterAuthResult = { ok: true; timestampMs: number; nonce: string } | { ok: false; reason: ClusterAuthFailure };

function mac(secret: string, claims: ClusterRequestClaims, timestampMs: number, nonce: string): Buffer {
  if (!secret) throw new Error('cluster secret is empty');
  // A JSON array is unambiguous whatever the values contain (no separator games).
  const text = JSON.stringify([
    VERSION,
    claims.method.toUpperCase(),
    claims.path,
    claims.epoch,
    timestampMs,
    nonce,
    ...(claims.bound ?? []),
  ]);
  return createHmac('sha256', secret).update(text).digest();
}

/** The CLUSTER_AUTH_HEADER value for a request with `claims`, signed at `nowMs`. */
export function signClusterRequest(
  secret: string,
  claims: ClusterRequestClaims,
  nowMs: number = Date.now(),
  nonce: string = randomBytes(12).toString('base64url'),
): string {
  if (!NONCE_RE.test(nonce)) throw new Error('nonce must be 8-64 base64url characters');
  const t = Math.floor(nowMs);
  return `${SCHEME} t=${t},n=${nonce},mac=${mac(secret, claims, t, nonce).toString('base64url')}`;
}

/**
 * Remembers the nonces of accepted requests for the skew window, so each signed header is accepted once. Bounded:
 * at `maxEntries` the oldest entries go first (a header older than what is kept may then be accepted again).
 */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  constructor(
    private readonly windowMs: number = 2 * DEFAULT_MAX_SKEW_MS,
    private readonly maxEntries: number = 100_000,
  ) {}

  /** Records `nonce`; false when it was already seen within the window. */
  accept(nonce: string, nowMs: number): boolean {
    for (const [n, at] of this.#seen) {
      if (at > nowMs - this.windowMs && this.#seen.size < this.maxEntries) break;
      this.#seen.delete(n); // insertion order: oldest first
    }
    if (this.#seen.has(nonce)) return false;
    this.#seen.set(nonce, nowMs);
    return true;
  }

  /** Nonces currently remembered. */
  get size(): number {
    return this.#seen.size;
  }
}

/** Checks a CLUSTER_AUTH_HEADER value against `claims`, at `nowMs`, within `maxSkewMs`; constant-time MAC compare. */
export function verifyClusterRequest(
  secret: string,
  header: string | undefined,
  claims: ClusterRequestClaims,
  opts: { nowMs?: number; maxSkewMs?: number; replay?: ReplayGuard } = {},
): ClusterAuthResult {
  if (!header) return { ok: false, reason: 'missing' };
  const m = HEADER_RE.exec(header);
  if (!m) return { ok: false, reason: 'malformed' };
  const t = Number(m[1]);
  const nonce = m[2]!;
  const given = Buffer.from(m[3]!, 'base64url');
  if (given.length !== MAC_BYTES) return { ok: false, reason: 'malformed' };
  const now = opts.nowMs ?? Date.now();
  if (Math.abs(now - t) > (opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS)) return { ok: false, reason: 'skew' };
  if (!timingSafeEqual(given, mac(secret, claims, t, nonce))) return { ok: false, reason: 'bad_mac' };
  if (opts.replay && !opts.replay.accept(nonce, now)) return { ok: false, reason: 'replayed' };
  return { ok: true, timestampMs: t, nonce };
}

// ---- The live-feed request (ingest → origin) ----

/** Path prefix of the origin's feed endpoint: `PUT /internal/v1/feeds/<eventId>`. */
export const FEED_PATH_PREFIX = '/internal/v1/feeds/';

/** The feed endpoint's path for `eventId`. */
export function feedPath(eventId: string): string {
  return FEED_PATH_PREFIX + encodeURIComponent(eventId);
}

/** Headers of a feed request besides CLUSTER_AUTH_HEADER. */
export const FeedHeader = {
  epoch: 'x-onair-epoch',
  session: 'x-onair-session',
  timelineZero: 'x-onair-timeline-zero',
  ingest: 'x-onair-ingest',
  origin: 'x-onair-origin',
  protocol: 'x-onair-protocol',
  publish: 'x-onair-publish',
} as const;

/** What a feed request tells the origin (all of it bound into the MAC). */
export interface FeedRequestMeta {
  eventId: string;
  /** The placement epoch the ingest forwards under. */
  epoch: number;
  /** The placement's publish session number. */
  session: number;
  /** The placement's timeline zero (wall-clock ms). */
  timelineZeroMs: number;
  /** Node id of the sending ingest. */
  ingest: string;
  /** Node id of the origin the request is for (a header captured for one origin is refused by the others). */
  origin: string;
  /** The publisher's protocol at the ingest. */
  protocol: 'rtmp' | 'whip' | 'srt';
  /** The publish session id at the ingest (for logs). */
  publish: string;
}

function feedClaims(meta: FeedRequestMeta): ClusterRequestClaims {
  return {
    method: 'PUT',
    path: feedPath(meta.eventId),
    epoch: meta.epoch,
    bound: [meta.origin, meta.ingest, String(meta.session), String(meta.timelineZeroMs), meta.protocol, meta.publish],
  };
}

/** The headers of a signed feed request (auth included). */
export function feedRequestHeaders(secret: string, meta: FeedRequestMeta, nowMs: number = Date.now()): Record<string, string> {
  return {
    [CLUSTER_AUTH_HEADER]: signClusterRequest(secret, feedClaims(meta), nowMs),
    [FeedHeader.epoch]: String(meta.epoch),
    [FeedHeader.session]: String(meta.session),
    [FeedHeader.timelineZero]: String(meta.timelineZeroMs),
    [FeedHeader.ingest]: meta.ingest,
    [FeedHeader.origin]: meta.origin,
    [FeedHeader.protocol]: meta.protocol,
    [FeedHeader.publish]: meta.publish,
  };
}

const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
const INT_RE = /^\d{1,16}$/;

/**
 * Reads and authenticates a feed request's headers for `eventId` (from its path). A failure names what is wrong
 * without echoing any header value.
 */
export function readFeedRequest(
  secret: string,
  eventId: string,
  headers: Record<string, string | string[] | undefined>,
  opts: { nowMs?: number; maxSkewMs?: number; replay?: ReplayGuard } = {},
): { ok: true; meta: FeedRequestMeta } | { ok: false; reason: ClusterAuthFailure | 'bad_headers'; message: string } {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return typeof v === 'string' ? v : undefined;
  };
  const epoch = one(FeedHeader.epoch);
  const session = one(FeedHeader.session);
  const zero = one(FeedHeader.timelineZero);
  const ingest = one(FeedHeader.ingest);
  const origin = one(FeedHeader.origin);
  const protocol = one(FeedHeader.protocol);
  const publish = one(FeedHeader.publish);
  if (!epoch || !INT_RE.test(epoch) || !session || !INT_RE.test(session) || !zero || !INT_RE.test(zero))
    return {
      ok: false,
      reason: 'bad_headers',
      message: `${FeedHeader.epoch}, ${FeedHeader.session} and ${FeedHeader.timelineZero} must be integers`,
    };
  if (!ingest || !ID_RE.test(ingest) || !origin || !ID_RE.test(origin) || !publish || !ID_RE.test(publish))
    return {
      ok: false,
      reason: 'bad_headers',
      message: `${FeedHeader.ingest}, ${FeedHeader.origin} and ${FeedHeader.publish} must be node or session ids`,
    };
  if (protocol !== 'rtmp' && protocol !== 'whip' && protocol !== 'srt')
    return { ok: false, reason: 'bad_headers', message: `${FeedHeader.protocol} must be rtmp, whip or srt` };
  const meta: FeedRequestMeta = {
    eventId,
    epoch: Number(epoch),
    session: Number(session),
    timelineZeroMs: Number(zero),
    ingest,
    origin,
    protocol,
    publish,
  };
  const auth = verifyClusterRequest(secret, one(CLUSTER_AUTH_HEADER), feedClaims(meta), opts);
  if (!auth.ok) return { ok: false, reason: auth.reason, message: authMessage[auth.reason] };
  return { ok: true, meta };
}

const authMessage: Record<ClusterAuthFailure, string> = {
  missing: `send the cluster signature in ${CLUSTER_AUTH_HEADER}`,
  malformed: `${CLUSTER_AUTH_HEADER} is malformed`,
  skew: `${CLUSTER_AUTH_HEADER} is too old or too far in the future (check the clocks)`,
  bad_mac: `${CLUSTER_AUTH_HEADER} does not match this request (wrong cluster secret?)`,
  replayed: `${CLUSTER_AUTH_HEADER} was already used`,
};
