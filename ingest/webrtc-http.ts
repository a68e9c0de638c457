// What WHIP (ingest/whip-ingest.ts) and WHEP (ingest/whep-playback.ts) share over HTTP: the bearer token, a
// refusal with its JSON error, the answer carrying every ICE candidate, and the routes of an endpoint and its
// session resources (CORS, OPTIONS, DELETE to end, PATCH answered 405 since no trickle ICE, JSON errors).
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import {
  RTCPeerConnection,
  useAbsSendTime,
  useH264,
  useNACK,
  useOPUS,
  usePLI,
  useREMB,
  useSdesMid,
  useTWCC,
  useTransportWideCC,
} from 'werift';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { ApiError, MAX_OFFER_BYTES, sendError } from '../lib/http.ts';

export { MAX_OFFER_BYTES };
/** How long ICE candidate gathering may take before the answer goes out with what was found. */
const GATHER_TIMEOUT_MS = 3_000;

/** The token of an `Authorization: Bearer <token>` header. */
export function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

/** True when the request says its body is an SDP offer (not req.is(): it answers null for an empty body). */
export function isSdpRequest(req: Request): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() === 'application/sdp';
}

/**
 * A peer connection for H.264 + Opus with explicit feedback and header extensions (without them there is no
 * bandwidth estimation), ICE on the configured extra addresses and port range. `receiving`: the publisher's side
 * (WHIP), which also asks for REMB and transport-wide congestion feedback.
 */
export function h264OpusPeer(config: Pick<Config, 'whipIceAddresses' | 'whipIcePorts'>, receiving: boolean): RTCPeerConnection {
  return new RTCPeerConnection({
    codecs: {
      video: [useH264({ rtcpFeedback: [useNACK(), usePLI(), ...(receiving ? [useREMB(), useTWCC()] : [])] })],
      audio: [useOPUS()],
    },
    headerExtensions: {
      video: [useSdesMid(), useAbsSendTime(), useTransportWideCC()],
      audio: [useSdesMid(), useAbsSendTime()],
    },
    iceAdditionalHostAddresses: config.whipIceAddresses,
    icePortRange: config.whipIcePorts?.split('-').map(Number) as [number, number] | undefined,
  });
}

/** Creates the answer to the remote offer already set, once ICE gathering completes (or times out): no trickle ICE. */
export async function answerWithCandidates(pc: RTCPeerConnection): Promise<string> {
  const gathered = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== 'complete') await gathered;
  const answer = pc.localDescription?.sdp;
  if (!answer) throw new Error('werift produced no answer');
  return answer;
}

/** What an endpoint's routes need. */
export interface EndpointRoutes {
  /** `WHIP` or `WHEP`, in messages. */
  name: string;
  /** Where the endpoint is mounted, in messages (`/whip`). */
  path: string;
  /** Headers exposed to scripts of other origins besides Location and Accept-Post. */
  exposeHeaders?: string[];
  /** Handles an offer POSTed to `/:eventId`. */
  post(req: Request, res: Response): Promise<void>;
  /** True if the session exists (for PATCH). */
  has(eventId: string, sessionId: string): boolean;
  /** Ends the session; false if there is none. */
  end(eventId: string, sessionId: string): boolean;
  /** Called for each refusal before it is answered (metrics, log). */
  refused(err: ApiError, req: Request): void;
  log: Logger;
}

/** The router of a WHIP or WHEP endpoint; mount it at `path`. */
export function endpointRouter(e: EndpointRoutes): Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    // Pages of other origins publish and play; the bearer token in Authorization is what protects the endpoint.
    res.set({
      'access-control-allow-origin': '*',
      'access-control-expose-headers': ['Location', 'Accept-Post', ...(e.exposeHeaders ?? [])].join(', '),
    });
    next();
  });
  const options = (methods: string, extra: Record<string, string> = {}) => ({
    'access-control-allow-methods': methods,
    'access-control-allow-headers': 'Authorization, Content-Type',
    allow: methods,
    ...extra,
  });
  router.options('/:eventId', (_req, res) => {
    res
      .status(204)
      .set(options('POST, OPTIONS', { 'accept-post': 'application/sdp' }))
      .end();
  });
  router.post('/:eventId', express.text({ type: 'application/sdp', limit: MAX_OFFER_BYTES }), (req, res, next) => {
    e.post(req, res).catch(next);
  });
  router.options('/:eventId/:sessionId', (_req, res) => {
    res.status(204).set(options('DELETE, OPTIONS')).end();
  });
  router.delete('/:eventId/:sessionId', (req, res) => {
    if (!e.end(String(req.params.eventId), String(req.params.sessionId))) {
      return sendError(res, 404, 'not_found', `no such ${e.name} session (it may have ended already)`);
    }
    res.status(200).set('cache-control', 'no-store').end();
  });
  router.patch('/:eventId/:sessionId', (req, res) => {
    if (!e.has(String(req.params.eventId), String(req.params.sessionId))) {
      return sendError(res, 404, 'not_found', `no such ${e.name} session`);
    }
    sendError(res, 405, 'method_not_allowed', 'trickle ICE and ICE restarts are not supported: the answer lists every candidate', {
      allow: 'DELETE, OPTIONS',
    });
  });
  router.all(['/:eventId', '/:eventId/:sessionId'], (_req, res) => {
    sendError(res, 405, 'method_not_allowed', `${e.name}: POST an offer to ${e.path}/<eventId>, DELETE the session URL to stop`);
  });
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof ApiError) {
      e.refused(err, req);
      return sendError(res, err.status, err.code, err.message, err.headers);
    }
    const status = (err as { status?: number }).status;
    if (status === 413) return sendError(res, 413, 'too_large', `the SDP offer exceeds ${MAX_OFFER_BYTES} bytes`);
    if (status !== undefined && status >= 400 && status < 500) return sendError(res, status, 'bad_request', (err as Error).message);
    e.log.error({ err }, `${e.name.toLowerCase()} request failed`);
    sendError(res, 500, 'internal', `the ${e.name} session could not be set up`);
  });
  return router;
}
