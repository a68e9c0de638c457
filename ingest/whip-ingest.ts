// WHIP ingest (RFC 9725): a browser or OBS publishes over WebRTC. werift terminates ICE, DTLS and SRTP; the
// RTP (and the sender reports, for lip sync) goes over loopback UDP to an ffmpeg that copies the H.264 and turns
// Opus into AAC; its FLV output enters the same FeedSink as RTMP, so the origin has one input path.
//
//   POST   /whip/<eventId>              Authorization: Bearer <stream key>, SDP offer → 201, SDP answer, Location
//   DELETE /whip/<eventId>/<sessionId>  ends the session
//   PATCH  /whip/<eventId>/<sessionId>  405: no trickle ICE (the answer carries every candidate)
//
// This file: the endpoint (routes, key checks, the event's claim, session bookkeeping). One session's peer
// connection, forwarding and ffmpeg: whip-session.ts. The SDP rules: whip-sdp.ts.
import type { Request, Response, Router } from 'express';
import type { Config } from '../config/schema.ts';
import { ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { FeedRefusal, type IngestDeps, type LiveFeed } from './feed.ts';
import { reportHealth } from './flv-output.ts';
import { ingestMetrics } from './metrics.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { createPublisherRegistry } from './publishers.ts';
import { offerProblem, type Forwarding } from './whip-sdp.ts';
import { bearer, endpointRouter, isSdpRequest } from './webrtc-http.ts';
import {
  Refusal,
  closeSession,
  forwardTracks,
  freeUdpPair,
  later,
  negotiate,
  openSession,
  startFfmpeg,
  type Session,
  type SessionEnv,
} from './whip-session.ts';

export type { WhipRejectReason } from './whip-session.ts';

/** A session whose ICE and DTLS have not connected this long after the answer is dropped. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A session that stays `disconnected` (no consent from the publisher) this long is ended. */
const DISCONNECTED_GRACE_MS = 5_000;
/** A connected session that sends no media this long is ended. */
const MEDIA_TIMEOUT_MS = 10_000;

/** What the WHIP ingest needs from its parent. */
export interface WhipIngestDeps extends IngestDeps {
  config: Pick<Config, 'ffmpegPath' | 'audioKbps' | 'healthIntervalSec' | 'whipIceAddresses' | 'whipIcePorts'>;
}

/** A running WHIP ingest. */
export interface WhipIngest {
  /** The WHIP endpoint and session resources; mount at `/whip`. */
  readonly router: Router;
  /** Ends the current WHIP publisher of `eventId` (its feed ends now); false if none is live. */
  disconnect(eventId: string): boolean;
  /** Starts the health checks (media timeouts, health reports); building the ingest starts no timer. */
  start(): Promise<void>;
  /** Ends every session and waits for their ffmpeg to exit. */
  stop(): Promise<void>;
}

/** Creates the WHIP ingest; mount `router` at `/whip`. */
export function createWhipIngest(deps: WhipIngestDeps): WhipIngest {
  const { config } = deps;
  const log = deps.logger.child({ component: 'whip-ingest' });
  const { publishes, rejected, active, bytes: bytesTotal } = ingestMetrics(deps.registry);
  const ffmpegLogLines = ffmpegLogCounter(deps.registry);
  const sessions = new Map<string, Session>(); // by session id
  const keyGuesses = deps.keyGuesses ?? createKeyGuessLimiter();
  const publishers = deps.publishers ?? createPublisherRegistry();
  let stopped = false;
  const env: SessionEnv = { config, log, ffmpegLogLines, bytesTotal, finish: (s, why) => finish(s, why) };

  let healthTimer: ReturnType<typeof setInterval> | undefined;
  const checkHealth = () => {
    for (const s of sessions.values()) {
      if (!s.connected) continue;
      if (Date.now() - s.lastMediaAt > MEDIA_TIMEOUT_MS) {
        finish(s, 'no media');
        continue;
      }
      reportHealth(deps.onHealth, log, s.eventId, s);
    }
  };

  /** Ends a session exactly once: timers, peer connection, ffmpeg, feed. */
  function finish(s: Session, why: string): void {
    if (s.ended) return;
    s.ended = true;
    sessions.delete(s.id);
    s.claim.release();
    closeSession(s);
    if (s.feed) {
      active.dec({ protocol: 'whip' });
      try {
        s.feed.end();
      } catch (err) {
        log.error({ err, eventId: s.eventId }, 'feed end failed');
      }
    }
    log.info({ eventId: s.eventId, sessionId: s.id, remoteAddress: s.remoteAddress, bytes: s.bytes, reason: why }, 'whip publish ended');
  }

  async function publish(req: Request, res: Response): Promise<void> {
    const eventId = String(req.params.eventId);
    if (!isSdpRequest(req)) {
      throw new Refusal(415, 'unsupported_media_type', 'send the SDP offer with Content-Type: application/sdp', 'bad_content_type');
    }
    // The client's address under the trusted-proxy rule (express's `trust proxy`, set where the router is mounted).
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const retry = await keyGuesses.blockedFor(address);
    if (retry !== undefined) {
      throw new Refusal(429, 'rate_limited', `too many wrong stream keys from this address; try again in ${retry} s`, 'rate_limited', {
        'retry-after': String(retry),
      });
    }
    const key = bearer(req.headers.authorization);
    if (!key || key.length > 512) {
      await keyGuesses.failed(address);
      throw new Refusal(401, 'unauthorized', 'send the stream key as Authorization: Bearer <stream key>', 'no_key', {
        'www-authenticate': 'Bearer',
      });
    }
    let authorized: string | undefined;
    try {
      authorized = await deps.authorize(key);
    } catch (err) {
      log.error({ err }, 'stream key check failed');
      throw new Refusal(503, 'unavailable', 'the stream key cannot be checked now; try again', 'auth_error');
    }
    // One answer for an unknown key and a key of another event: nothing to learn about which events exist.
    if (authorized !== eventId) {
      await keyGuesses.failed(address);
      throw new Refusal(401, 'unauthorized', 'unknown stream key for this event', 'unknown_key', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    }
    const offer = typeof req.body === 'string' ? req.body : '';
    const problem = offerProblem(offer);
    if (problem) throw new Refusal(400, 'bad_sdp', problem, 'bad_sdp');
    if (stopped) throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    // Until it connects, a session cannot be taken over: a publisher arriving meanwhile is refused at once.
    let session: Session | undefined = undefined;
    const claimed = await publishers.claim(
      eventId,
      {
        protocol: 'whip',
        lastActiveAt: () => (session?.connected ? session.lastMediaAt : Number.POSITIVE_INFINITY),
        evict: (silentMs) => {
          if (!session) return;
          log.warn({ eventId, sessionId: session.id, remoteAddress: session.remoteAddress, silentMs }, 'replacing a stalled publisher');
          finish(session, 'stalled, replaced by a new publisher');
        },
      },
      () => !stopped,
    );
    if (!claimed.ok && claimed.reason === 'gone') throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    if (!claimed.ok) throw new Refusal(409, 'already_live', 'the event already has a publisher', 'already_live');
    let s: Session;
    try {
      s = openSession(env, { eventId, remoteAddress: address, claim: claimed.claim });
    } catch (err) {
      claimed.claim.release();
      throw err;
    }
    session = s;
    let negotiated: Awaited<ReturnType<typeof negotiate>>;
    let ports: [number, number | undefined];
    try {
      negotiated = await negotiate(s, offer);
      ports = [await freeUdpPair(), negotiated.audio ? await freeUdpPair() : undefined];
    } catch (err) {
      s.claim.release();
      s.ended = true;
      closeSession(s);
      throw err;
    }
    const { videoPt, audio } = negotiated;
    const forwarding: Forwarding = {
      video: { pt: videoPt, port: ports[0] },
      audio: audio && ports[1] !== undefined ? { ...audio, port: ports[1] } : undefined,
    };
    if (stopped || !s.claim.held) {
      finish(s, 'ingest stopping');
      throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    }
    sessions.set(s.id, s);
    let feed: LiveFeed;
    try {
      feed = await deps.feeds.open(eventId, { protocol: 'whip', sessionId: s.id, remoteAddress: s.remoteAddress });
    } catch (err) {
      finish(s, 'feed_error');
      if (err instanceof FeedRefusal) {
        log.warn({ eventId, reason: err.code, why: err.message }, 'feed refused');
        throw new Refusal(503, err.code, err.message, 'feed_error');
      }
      log.error({ err, eventId }, 'feed open failed');
      throw new Refusal(503, 'unavailable', 'the origin cannot take the stream now', 'feed_error');
    }
    if (s.ended) {
      // Finished (ingest stopping, or taken over) while the feed opened.
      feed.end();
      throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    }
    s.feed = feed;
    publishes.inc({ protocol: 'whip' });
    active.inc({ protocol: 'whip' });
    forwardTracks(s, forwarding);
    s.pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') {
        if (!s.connected) log.info({ eventId, sessionId: s.id }, 'whip publisher connected');
        s.connected = true;
        s.lastMediaAt = Math.max(s.lastMediaAt, Date.now());
      } else if (state === 'failed' || state === 'closed') {
        finish(s, `connection ${state}`);
      } else if (state === 'disconnected') {
        later(s, DISCONNECTED_GRACE_MS, () => {
          if (s.pc.connectionState !== 'connected') finish(s, 'connection lost');
        });
      }
    });
    later(s, CONNECT_TIMEOUT_MS, () => {
      if (!s.connected) finish(s, 'ICE/DTLS never connected');
    });
    startFfmpeg(env, s, forwarding);
    log.info({ eventId, sessionId: s.id, remoteAddress: s.remoteAddress, audio: audio !== undefined }, 'whip publish started');
    const location = `${req.baseUrl}/${encodeURIComponent(eventId)}/${s.id}`;
    res.status(201).set({ 'content-type': 'application/sdp', location, 'cache-control': 'no-store' }).send(negotiated.answer);
  }

  function sessionFor(eventId: string, sessionId: string): Session | undefined {
    const s = sessions.get(sessionId);
    return s && s.eventId === eventId ? s : undefined;
  }

  const router = endpointRouter({
    name: 'WHIP',
    path: '/whip',
    post: publish,
    has: (eventId, sessionId) => sessionFor(eventId, sessionId) !== undefined,
    end: (eventId, sessionId) => {
      const s = sessionFor(eventId, sessionId);
      if (s) finish(s, 'publisher ended the session');
      return s !== undefined;
    },
    refused: (err, req) => {
      const reason = err instanceof Refusal ? err.reason : 'bad_sdp';
      rejected.inc({ protocol: 'whip', reason });
      log.warn({ eventId: req.params.eventId, remoteAddress: req.ip ?? req.socket.remoteAddress, reason }, 'whip publish rejected');
    },
    log,
  });

  return {
    router,
    disconnect(eventId) {
      const s = [...sessions.values()].find((x) => x.eventId === eventId && x.claim.held);
      if (!s) return false;
      finish(s, 'disconnected');
      return true;
    },
    async start() {
      stopped = false;
      healthTimer ??= setInterval(checkHealth, config.healthIntervalSec * 1000);
      healthTimer.unref();
    },
    async stop() {
      stopped = true;
      clearInterval(healthTimer);
      healthTimer = undefined;
      const exits = [...sessions.values()].map((s) => s.exited);
      for (const s of [...sessions.values()]) finish(s, 'server stopping');
      await Promise.all(exits);
    },
  };
}
