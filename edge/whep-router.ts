// WHEP playback through an edge (cluster mode): the edge keeps no session. It forwards the signalling to the origins
// of the event's placement, which serve WHEP from the feed they receive (ingest/whep-playback.ts on each origin's
// port), and the media then flows between the viewer and that origin directly (ICE on the origin's addresses).
//
//   OPTIONS|POST /whep/<eventId>       → the event's origins in placement order (those that failed lately last): the
//                                        first answer is passed on, except 404 (no feed or no WHEP there; 405 from an
//                                        origin without WHEP routes), 503 (full, stopping) and no answer, after which
//                                        the next origin is asked.
//   *            /whep/<eventId>/<sid> → the origin named in <sid>, which is `<base64url(origin id)>.<origin's id>`:
//                                        the Location the edge hands out carries its origin, so any edge brings the
//                                        DELETE (and the 405 PATCH) to the origin holding the session, with no state.
//
// The origin checks the viewer token and the offer; the edge caps the body (MAX_OFFER_BYTES, as WHIP/WHEP do) and
// answers with the same CORS headers as the all-in-one endpoint. Errors are JSON `{error: {code, message}}`.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../lib/logger.ts';
import { Counter, sharedMetric, type Registry } from '../lib/metrics.ts';
import type { Placement, PlacementSource } from '../lib/placement/types.ts';
import { MAX_OFFER_BYTES } from '../lib/http.ts';
import { errorBody, JSON_TYPE } from './edge-errors.ts';

/** How long one origin may take to answer (its answer waits for ICE gathering, up to 3 s, and the relay's start). */
const ORIGIN_TIMEOUT_MS = 10_000;
/** An origin that could not be reached is asked last for this long. */
const FAILED_ORIGIN_LAST_MS = 10_000;
/** Headers of an origin's answer that the viewer gets. */
const PASSED_HEADERS = [
  'content-type',
  'cache-control',
  'retry-after',
  'www-authenticate',
  'allow',
  'accept-post',
  'access-control-allow-methods',
  'access-control-allow-headers',
];
/** The CORS headers every answer carries (as ingest/webrtc-http.ts sets them for the all-in-one endpoint). */
const CORS = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Location, Accept-Post, Retry-After' };

/** A WHEP path: the endpoint of an event, or one of its sessions (the edge's session id, origin included). */
export type WhepPath = { eventId: string; session?: { originId: string; sessionId: string } } | { invalid: true };

/** Parses `/whep/<eventId>` or `/whep/<eventId>/<edge session id>` (query ignored); undefined for another path. */
export function parseWhepPath(url: string): WhepPath | undefined {
  const path = url.split('?', 1)[0]!;
  const m = /^\/whep\/([^/]+)(?:\/([^/]+))?\/?$/.exec(path);
  if (!m) return path === '/whep' || path.startsWith('/whep/') ? { invalid: true } : undefined;
  let eventId: string;
  try {
    eventId = decodeURIComponent(m[1]!);
  } catch {
    return { invalid: true };
  }
  if (m[2] === undefined) return { eventId };
  const session = parseEdgeSessionId(m[2]);
  return session ? { eventId, session } : { invalid: true };
}

/** The session id the edge hands out: the origin's id (base64url) and the origin's session id, joined by a dot. */
export function edgeSessionId(originId: string, sessionId: string): string {
  return `${Buffer.from(originId, 'utf8').toString('base64url')}.${sessionId}`;
}

/** The parts of an edge session id; undefined when it is not one. */
export function parseEdgeSessionId(id: string): { originId: string; sessionId: string } | undefined {
  const m = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(id);
  if (!m) return undefined;
  const originId = Buffer.from(m[1]!, 'base64url').toString('utf8');
  return originId ? { originId, sessionId: m[2]! } : undefined;
}

/** The event's origins in the order to ask them: placement order, those that failed lately (`failed`) last. */
export function originOrder(placement: Pick<Placement, 'origins'>, failed: (url: string) => boolean): { id: string; url: string }[] {
  const origins = placement.origins;
  return [...origins.filter((o) => !failed(o.url)), ...origins.filter((o) => failed(o.url))];
}

/** The Location the viewer gets for a session an origin answered with (its own `/whep/<eventId>/<sid>`). */
export function rewriteLocation(location: string | null, eventId: string, originId: string): string | undefined {
  const sid = location ? /\/([A-Za-z0-9_-]+)\/?$/.exec(location.split('?', 1)[0]!)?.[1] : undefined;
  return sid ? `/whep/${encodeURIComponent(eventId)}/${edgeSessionId(originId, sid)}` : undefined;
}

/** What the router needs. */
export interface WhepRouterDeps {
  /** Each live event's origins (the edge's placement cache). */
  placements: PlacementSource;
  logger: Logger;
  /** Where `onair_edge_whep_requests_total{kind, status}` is counted. */
  registry?: Registry;
  /** Per-origin answer timeout (default 10 s). */
  timeoutMs?: number;
  /** Wall clock (ms), injectable for tests. */
  now?: () => number;
}

/** The edge's WHEP routes. */
export interface WhepRouter {
  /** Handles a request whose path starts with `/whep/`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/** One origin's answer, read whole (SDP answers and JSON errors are small). */
interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** Why an origin was passed over, best first when the viewer is told: a full origin says more than a missing one. */
type Refusal = { kind: 'full' | 'unavailable' | 'absent'; answer: Answer } | { kind: 'unreachable' };
const refusalRank = { full: 0, unavailable: 1, absent: 2, unreachable: 3 } as const;

/** Creates the edge's WHEP router. */
export function createWhepRouter(deps: WhepRouterDeps): WhepRouter {
  const log = deps.logger.child({ component: 'whep-router' });
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.timeoutMs ?? ORIGIN_TIMEOUT_MS;
  /** Origin URL → until when it is asked last (it could not be reached). */
  const failedUntil = new Map<string, number>();
  const failed = (url: string) => (failedUntil.get(url) ?? 0) > now();
  const requests = deps.registry
    ? sharedMetric(
        deps.registry,
        Counter,
        'onair_edge_whep_requests_total',
        'WHEP requests routed by this edge, by kind and answer status.',
        ['kind', 'status'],
      )
    : undefined;

  function fail(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
    const body = errorBody(code, message);
    res.writeHead(status, {
      ...CORS,
      'content-type': JSON_TYPE,
      'content-length': String(body.length),
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(body);
  }

  function pass(res: ServerResponse, a: Answer, location?: string): void {
    const headers: Record<string, string> = { ...CORS };
    for (const h of PASSED_HEADERS) {
      const v = a.headers.get(h);
      if (v !== null) headers[h] = v;
    }
    if (location !== undefined) headers.location = location;
    if (a.status !== 204 && a.status !== 304) headers['content-length'] = String(a.body.length);
    res.writeHead(a.status, headers);
    res.end(a.status === 204 ? undefined : a.body);
  }

  /** Asks one origin; undefined when it gave no answer in time (marked failed). */
  async function ask(origin: { url: string }, path: string, req: IncomingMessage, body: Buffer | undefined): Promise<Answer | undefined> {
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'authorization']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const peer = req.socket.remoteAddress;
    const xff = req.headers['x-forwarded-for'];
    if (peer) headers['x-forwarded-for'] = xff ? `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}` : peer;
    try {
      const r = await fetch(origin.url + path, {
        method: req.method ?? 'GET',
        headers,
        ...(body !== undefined ? { body: new Uint8Array(body) } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      const answer = { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
      failedUntil.delete(origin.url);
      return answer;
    } catch (err) {
      failedUntil.set(origin.url, now() + FAILED_ORIGIN_LAST_MS);
      log.warn({ origin: origin.url, err: (err as Error).message }, 'whep: origin did not answer');
      return undefined;
    }
  }

  /** The offer (or nothing), at most MAX_OFFER_BYTES; undefined once a 413 was sent. */
  function readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      const tooLarge = () => {
        fail(res, 413, 'too_large', `the SDP offer exceeds ${MAX_OFFER_BYTES} bytes`, { connection: 'close' });
        req.resume();
        resolve(undefined);
      };
      if (Number(req.headers['content-length'] ?? 0) > MAX_OFFER_BYTES) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on('data', (c: Buffer) => {
        if (done) return;
        size += c.length;
        if (size > MAX_OFFER_BYTES) {
          done = true;
          return tooLarge();
        }
        chunks.push(c);
      });
      req.on('end', () => {
        if (!done) resolve(Buffer.concat(chunks));
      });
      req.on('error', reject);
    });
  }

  /** The event's placement (undefined: not live); null once a 503 was sent because it could not be read. */
  async function placementOf(res: ServerResponse, eventId: string): Promise<Placement | undefined | null> {
    try {
      return await deps.placements.get(eventId);
    } catch (err) {
      log.warn({ eventId, err: (err as Error).message }, 'whep: placement unavailable');
      fail(res, 503, 'unavailable', 'where the event runs cannot be read now: try again, or play it over HLS', { 'retry-after': '5' });
      return null;
    }
  }

  /** OPTIONS or POST to an event's endpoint: the first origin that serves it answers. */
  async function endpoint(req: IncomingMessage, res: ServerResponse, eventId: string): Promise<void> {
    const isPost = req.method === 'POST';
    const body = isPost ? await readBody(req, res) : undefined;
    if (isPost && body === undefined) return;
    const placement = await placementOf(res, eventId);
    if (placement === null) return;
    if (!placement || placement.origins.length === 0) {
      return fail(res, 404, 'not_live', 'the event is not live: play it over HLS when it is');
    }
    const path = `/whep/${encodeURIComponent(eventId)}`;
    let best: Refusal | undefined;
    for (const origin of originOrder(placement, failed)) {
      const a = await ask(origin, path, req, body);
      let refusal: Refusal | undefined;
      if (a === undefined) refusal = { kind: 'unreachable' };
      // 405: an origin whose port has no WHEP routes at all (a version without them) answers POST so.
      else if (a.status === 404 || a.status === 405) refusal = { kind: 'absent', answer: a };
      else if (a.status === 503) refusal = { kind: errorCode(a) === 'whep_full' ? 'full' : 'unavailable', answer: a };
      if (refusal === undefined) {
        const location = a!.status === 201 ? rewriteLocation(a!.headers.get('location'), eventId, origin.id) : undefined;
        if (a!.status === 201 && location === undefined) {
          log.error({ origin: origin.url, eventId }, 'whep: origin answered 201 without a session Location');
          return fail(res, 502, 'bad_gateway', 'the origin answered without a session URL');
        }
        return pass(res, a!, location);
      }
      if (best === undefined || refusalRank[refusal.kind] < refusalRank[best.kind]) best = refusal;
    }
    if (best?.kind === 'full') return pass(res, best.answer);
    if (best?.kind === 'unavailable') return pass(res, best.answer);
    if (best?.kind === 'absent') {
      return fail(res, 404, 'not_live', 'no origin of the event offers real-time playback now: play it over HLS');
    }
    fail(res, 503, 'unavailable', 'the event’s origins cannot be reached: play it over HLS', { 'retry-after': '5' });
  }

  /** Any request to a session: forwarded to the origin its id names, as long as the event's placement lists it. */
  async function session(
    req: IncomingMessage,
    res: ServerResponse,
    eventId: string,
    s: { originId: string; sessionId: string },
  ): Promise<void> {
    req.resume(); // no session request has a body the origin reads
    const gone = () => fail(res, 404, 'not_found', 'no such WHEP session (it may have ended already)');
    const placement = await placementOf(res, eventId);
    if (placement === null) return;
    const origin = placement?.origins.find((o) => o.id === s.originId);
    if (!origin) return gone();
    const a = await ask(origin, `/whep/${encodeURIComponent(eventId)}/${s.sessionId}`, req, undefined);
    if (!a) return gone();
    pass(res, a);
  }

  return {
    handle(req, res) {
      const parsed = parseWhepPath(req.url ?? '/');
      if (requests) {
        const kind =
          parsed === undefined || 'invalid' in parsed ? 'invalid' : parsed.session ? 'session' : req.method === 'POST' ? 'offer' : 'other';
        res.once('finish', () => requests.inc({ kind, status: String(res.statusCode) }));
      }
      const run = (p: Promise<void>) =>
        p.catch((err: unknown) => {
          log.error({ err }, 'whep routing failed');
          if (!res.headersSent) fail(res, 500, 'internal', 'the WHEP request could not be routed');
          else res.destroy();
        });
      if (parsed === undefined || 'invalid' in parsed) {
        return fail(res, 404, 'not_found', 'WHEP: POST an offer to /whep/<eventId>, DELETE the session URL to stop');
      }
      if (parsed.session) return void run(session(req, res, parsed.eventId, parsed.session));
      if (req.method !== 'POST' && req.method !== 'OPTIONS') {
        return fail(res, 405, 'method_not_allowed', 'WHEP: POST an offer to /whep/<eventId>, DELETE the session URL to stop', {
          allow: 'POST, OPTIONS',
        });
      }
      void run(endpoint(req, res, parsed.eventId));
    },
  };
}

/** The `error.code` of a JSON error answer, if any. */
function errorCode(a: Answer): string | undefined {
  try {
    return (JSON.parse(a.body.toString('utf8')) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}
