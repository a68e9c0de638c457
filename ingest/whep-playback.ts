// WHEP playback (the playback sibling of RFC 9725): a viewer receives a live event over WebRTC, the source's H.264
// as it was published and its audio as Opus, from the node whose ingest holds the event's feed. werift terminates
// ICE, DTLS and SRTP, as for WHIP (ingest/whip-ingest.ts, whose routes, errors and limits this file mirrors).
//
//   POST   /whep/<eventId>              Authorization: Bearer <viewer token>, SDP offer → 201, SDP answer, Location
//   DELETE /whep/<eventId>/<sessionId>  ends the session
//   PATCH  /whep/<eventId>/<sessionId>  405: no trickle ICE (the answer carries every candidate)
//
// One ffmpeg per event with viewers (ingest/whep-relay.ts) feeds them all; it starts with the first viewer and
// stops after the last. The number of sessions per node is capped (config.whepMaxViewers): beyond it, 503 whep_full.
import type { Request, Response, Router } from 'express';
import { randomBytes } from 'node:crypto';
import { MediaStreamTrack, type RTCPeerConnection } from 'werift';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Gauge, sharedMetric, type Registry } from '../lib/metrics.ts';
import { ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import type { FeedTaps } from './feed-taps.ts';
import { WhepRelay, type RelayViewer } from './whep-relay.ts';
import { chooseCodec } from './whip-sdp.ts';
import { whepOfferProblem } from './whep-sdp.ts';
import { ApiError } from '../lib/http.ts';
import { answerWithCandidates, bearer, h264OpusPeer, endpointRouter, isSdpRequest } from './webrtc-http.ts';

/** A session whose ICE and DTLS have not connected this long after the answer is dropped. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A session that stays `disconnected` (no consent from the viewer) this long is ended. */
const DISCONNECTED_GRACE_MS = 5_000;
/** What a refused viewer is told to wait before trying again (Retry-After) when the node is full. */
const FULL_RETRY_AFTER_SEC = 10;

/** What WHEP playback needs from its parent. */
export interface WhepPlaybackDeps {
  config: Pick<Config, 'ffmpegPath' | 'audioKbps' | 'whipIceAddresses' | 'whipIcePorts' | 'whepMaxViewers'>;
  logger: Logger;
  registry: Registry;
  /** The node's live feeds. */
  taps: Pick<FeedTaps, 'live'>;
  /** True for a valid viewer token (chat/viewer-tokens.ts: any role). */
  verifyViewer(token: string): boolean;
}

/** A running WHEP endpoint. */
export interface WhepPlayback {
  /** Mount at `/whep`. */
  readonly router: Router;
  /** Sessions open now. */
  readonly sessions: number;
  start(): Promise<void>;
  /** Ends every session and waits for the relays' ffmpeg to exit. */
  stop(): Promise<void>;
}

interface Session {
  readonly id: string;
  readonly eventId: string;
  readonly remoteAddress: string;
  readonly pc: RTCPeerConnection;
  readonly viewer: RelayViewer;
  relay?: WhepRelay;
  readonly timers: Set<NodeJS.Timeout>;
  ended: boolean;
}

/** Creates the WHEP endpoint; mount `router` at `/whep`. */
export function createWhepPlayback(deps: WhepPlaybackDeps): WhepPlayback {
  const { config } = deps;
  const log = deps.logger.child({ component: 'whep' });
  const ffmpegLogLines = ffmpegLogCounter(deps.registry);
  const viewersGauge = sharedMetric(deps.registry, Gauge, 'onair_whep_viewers', 'WHEP playback sessions open on this node.', []);
  const refusedTotal = sharedMetric(deps.registry, Counter, 'onair_whep_refused_total', 'WHEP playback requests refused.', ['code']);
  const sessions = new Map<string, Session>();
  const relays = new Map<string, { relay: WhepRelay; started: Promise<void> }>();
  /** Sessions being set up, counted against the cap before any work (parallel offers cannot slip past it). */
  let reserved = 0;
  let stopped = false;

  const later = (s: Session, ms: number, fn: () => void) => {
    const t = setTimeout(fn, ms);
    t.unref();
    s.timers.add(t);
  };

  function finish(s: Session, why: string): void {
    if (s.ended) return;
    s.ended = true;
    sessions.delete(s.id);
    viewersGauge.set(sessions.size);
    for (const t of s.timers) clearTimeout(t);
    void s.pc.close().catch(() => {});
    s.viewer.video.stop();
    s.viewer.audio?.stop();
    const relay = s.relay;
    if (relay) {
      relay.viewers.delete(s.viewer);
      if (relay.viewers.size === 0) {
        relay.stop();
        if (relays.get(s.eventId)?.relay === relay) relays.delete(s.eventId);
      }
    }
    log.info({ eventId: s.eventId, sessionId: s.id, remoteAddress: s.remoteAddress, reason: why }, 'whep session ended');
  }

  /** The event's relay, started on its first viewer. */
  async function relayFor(eventId: string): Promise<WhepRelay> {
    const tap = deps.taps.live(eventId);
    if (!tap) throw new ApiError(404, 'not_live', 'the event is not live on this node');
    let entry = relays.get(eventId);
    if (entry && entry.relay.tap !== tap) entry = undefined; // an earlier publish's relay, ending
    if (!entry) {
      const relay = new WhepRelay(tap, {
        ffmpegPath: config.ffmpegPath,
        audioKbps: config.audioKbps,
        log,
        ffmpegLogLines,
        ended: (r, why) => {
          if (relays.get(eventId)?.relay === r) relays.delete(eventId);
          r.stop();
          for (const s of [...sessions.values()]) if (s.relay === r) finish(s, why);
        },
      });
      const started = relay.start().catch((err: unknown) => {
        if (relays.get(eventId)?.relay === relay) relays.delete(eventId);
        relay.stop();
        throw err;
      });
      entry = { relay, started };
      relays.set(eventId, entry);
      log.info({ eventId, audio: tap.hasAudio }, 'whep relay started');
    }
    await entry.started;
    return entry.relay;
  }

  async function play(req: Request, res: Response): Promise<void> {
    const eventId = String(req.params.eventId);
    if (!isSdpRequest(req)) {
      throw new ApiError(415, 'unsupported_media_type', 'send the SDP offer with Content-Type: application/sdp');
    }
    const token = bearer(req.headers.authorization);
    if (!token) {
      throw new ApiError(401, 'unauthorized', 'send a viewer token as Authorization: Bearer <token> (POST /api/v1/viewers)', {
        'www-authenticate': 'Bearer',
      });
    }
    if (!deps.verifyViewer(token)) {
      throw new ApiError(401, 'unauthorized', 'the viewer token is invalid or expired', {
        'www-authenticate': 'Bearer error="invalid_token"',
      });
    }
    const offer = typeof req.body === 'string' ? req.body : '';
    const problem = whepOfferProblem(offer);
    if (problem) throw new ApiError(400, 'bad_sdp', problem);
    if (stopped) throw new ApiError(503, 'unavailable', 'the server is stopping');
    const tap = deps.taps.live(eventId);
    if (!tap) throw new ApiError(404, 'not_live', 'the event is not live (or not on this node): play it over HLS');
    if (sessions.size + reserved >= config.whepMaxViewers) {
      throw new ApiError(503, 'whep_full', `this node serves at most ${config.whepMaxViewers} real-time viewers; play over HLS`, {
        'retry-after': String(FULL_RETRY_AFTER_SEC),
      });
    }
    reserved++;
    let s: Session | undefined;
    try {
      s = await open(req, eventId, offer, tap.hasAudio);
    } finally {
      reserved--;
    }
    const location = `${req.baseUrl}/${encodeURIComponent(eventId)}/${s.id}`;
    res.status(201).set({ 'content-type': 'application/sdp', location, 'cache-control': 'no-store' }).send(s.pc.localDescription!.sdp);
  }

  async function open(req: Request, eventId: string, offer: string, feedHasAudio: boolean): Promise<Session> {
    const pc = h264OpusPeer(config, false);
    const offersAudio = /^m=audio /m.test(offer);
    const video = new MediaStreamTrack({ kind: 'video' });
    const audio = feedHasAudio && offersAudio ? new MediaStreamTrack({ kind: 'audio' }) : undefined;
    const s: Session = {
      id: randomBytes(16).toString('base64url'),
      eventId,
      remoteAddress: req.ip ?? req.socket.remoteAddress ?? 'unknown',
      pc,
      viewer: { video, audio, videoStarted: false, connected: false },
      timers: new Set(),
      ended: false,
    };
    try {
      // Sending transceivers first: the offer's recvonly m-lines are matched to them (by kind), in its order.
      pc.addTransceiver(video, { direction: 'sendonly' });
      if (audio) pc.addTransceiver(audio, { direction: 'sendonly' });
      try {
        await pc.setRemoteDescription({ type: 'offer', sdp: offer });
      } catch (err) {
        throw new ApiError(400, 'bad_sdp', `the SDP offer cannot be used: ${(err as Error).message}`);
      }
      for (const t of pc.getTransceivers()) {
        const codec = chooseCodec(t.kind, t.codecs);
        if (typeof codec === 'string') throw new ApiError(400, 'bad_sdp', codec);
        if (codec) t.codecs = [codec];
      }
      await answerWithCandidates(pc);
      // Started while ICE connects; the viewer is fed from the moment DTLS is up.
      s.relay = await relayFor(eventId);
      if (stopped) throw new ApiError(503, 'unavailable', 'the server is stopping');
    } catch (err) {
      s.ended = true;
      void pc.close().catch(() => {});
      if (s.relay && s.relay.viewers.size === 0 && reserved <= 1) {
        s.relay.stop();
        if (relays.get(eventId)?.relay === s.relay) relays.delete(eventId);
      }
      throw err;
    }
    const relay = s.relay;
    relay.viewers.add(s.viewer);
    sessions.set(s.id, s);
    viewersGauge.set(sessions.size);
    pc.connectionStateChange.subscribe((state) => {
      if (s.ended) return;
      if (state === 'connected') {
        if (!s.viewer.connected) log.info({ eventId, sessionId: s.id }, 'whep viewer connected');
        relay.connected(s.viewer);
      } else if (state === 'failed' || state === 'closed') {
        finish(s, `connection ${state}`);
      } else if (state === 'disconnected') {
        later(s, DISCONNECTED_GRACE_MS, () => {
          if (pc.connectionState !== 'connected') finish(s, 'connection lost');
        });
      }
    });
    later(s, CONNECT_TIMEOUT_MS, () => {
      if (!s.viewer.connected) finish(s, 'ICE/DTLS never connected');
    });
    log.info({ eventId, sessionId: s.id, remoteAddress: s.remoteAddress, audio: audio !== undefined }, 'whep session started');
    return s;
  }

  function sessionFor(eventId: string, sessionId: string): Session | undefined {
    const s = sessions.get(sessionId);
    return s && s.eventId === eventId ? s : undefined;
  }

  const router = endpointRouter({
    name: 'WHEP',
    path: '/whep',
    exposeHeaders: ['Retry-After'],
    post: play,
    has: (eventId, sessionId) => sessionFor(eventId, sessionId) !== undefined,
    end: (eventId, sessionId) => {
      const s = sessionFor(eventId, sessionId);
      if (s) finish(s, 'viewer ended the session');
      return s !== undefined;
    },
    refused: (err, req) => {
      refusedTotal.inc({ code: err.code });
      log.info({ eventId: req.params.eventId, remoteAddress: req.ip ?? req.socket.remoteAddress, code: err.code }, 'whep request refused');
    },
    log,
  });

  return {
    router,
    get sessions() {
      return sessions.size;
    },
    async start() {
      stopped = false;
    },
    async stop() {
      stopped = true;
      const exits = [...relays.values()].map((r) => r.relay.exited);
      for (const s of [...sessions.values()]) finish(s, 'server stopping');
      for (const r of relays.values()) r.relay.stop();
      relays.clear();
      await Promise.all(exits);
    },
  };
}
