// WHIP ingest (RFC 9725): a browser or OBS publishes over WebRTC. werift terminates ICE, DTLS and SRTP; the
// RTP (and the sender reports, for lip sync) goes over loopback UDP to an ffmpeg that copies the H.264 and turns
// Opus into AAC; its FLV output enters the same FeedSink as RTMP, so the origin has one input path.
//
//   POST   /whip/<eventId>              Authorization: Bearer <stream key>, SDP offer → 201, SDP answer, Location
//   DELETE /whip/<eventId>/<sessionId>  ends the session
//   PATCH  /whip/<eventId>/<sessionId>  405: no trickle ICE (the answer carries every candidate)
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { RTCPeerConnection, RtcpSrPacket, useAbsSendTime, useH264, useNACK, useOPUS, usePLI, useREMB, useSdesMid, useTWCC, useTransportWideCC } from 'werift';
import type { MediaStreamTrack, RTCRtpTransceiver } from 'werift';
import type { Config } from '../config/schema.ts';
import { sendError } from '../lib/http.ts';
import { FlvReader, TagType, isVideoKeyframe, readMetaData } from '../lib/flv.ts';
import type { IngestDeps, LiveFeed } from './feed.ts';
import { FlvStats } from './flv-stats.ts';
import { ffmpegLogCounter, logFfmpegStderr } from '../lib/ffmpeg-log.ts';
import { ingestMetrics } from './metrics.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';

/** Largest SDP offer accepted. */
const MAX_OFFER_BYTES = 64 * 1024;
/** How long ICE candidate gathering may take before the answer goes out with what was found. */
const GATHER_TIMEOUT_MS = 3_000;
/** A session whose ICE and DTLS have not connected this long after the answer is dropped. */
const CONNECT_TIMEOUT_MS = 15_000;
/** A session that stays `disconnected` (no consent from the publisher) this long is ended. */
const DISCONNECTED_GRACE_MS = 5_000;
/** A connected session that sends no media this long is ended. */
const MEDIA_TIMEOUT_MS = 10_000;
/** Keyframe requests (PLI): every second until ffmpeg passes a keyframe on, then at this period, like OBS's 2 s GOP. */
const PLI_PERIOD_MS = 2_000;
/** Bitrates Chromium is told to start at and not exceed (x-google-* in the answer); without them it starts near 300 kbit/s. */
const START_KBPS = 2_500;
const MAX_KBPS = 6_000;

/** Why a WHIP publish was refused (label of onair_ingest_rejected_total). */
export type WhipRejectReason = 'bad_content_type' | 'no_key' | 'unknown_key' | 'rate_limited' | 'auth_error' | 'bad_sdp' | 'already_live' | 'feed_error';

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
  /** True while `eventId` has a WHIP publisher (or one being negotiated). */
  isLive(eventId: string): boolean;
  /** Starts the health checks (media timeouts, health reports); building the ingest starts no timer. */
  start(): Promise<void>;
  /** Ends every session and waits for their ffmpeg to exit. */
  stop(): Promise<void>;
}

/** One WHIP publish session. */
interface Session {
  readonly id: string;
  readonly eventId: string;
  readonly remoteAddress: string;
  readonly pc: RTCPeerConnection;
  readonly udp: UdpSocket;
  readonly stats: FlvStats;
  readonly timers: Set<NodeJS.Timeout>;
  feed?: LiveFeed;
  ffmpeg?: ChildProcess;
  exited?: Promise<void>;
  resolution: { width?: number; height?: number };
  connected: boolean;
  sawKeyframe: boolean;
  lastMediaAt: number;
  bytes: number;
  ended: boolean;
}

/** A client error: the HTTP status, error code and message sent back, and the metric reason. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason: WhipRejectReason,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The payload types to keep from a negotiated offer, and the ffmpeg SDP that describes them. */
interface Forwarding {
  video: { pt: number; port: number };
  audio?: { pt: number; channels: number; port: number };
}

/** Reasons an offer cannot be used, checked before werift sees it (werift's own errors are less helpful). */
export function offerProblem(sdp: string): string | undefined {
  if (!sdp.trim()) return 'the request body is empty: send the SDP offer';
  if (!sdp.startsWith('v=0')) return 'not an SDP offer (must start with v=0)';
  const media = sdp.split(/\r?\n/).filter((l) => l.startsWith('m='));
  const video = media.filter((l) => l.startsWith('m=video'));
  const audio = media.filter((l) => l.startsWith('m=audio'));
  if (video.length !== 1) return `the offer needs exactly one video track (found ${video.length})`;
  if (audio.length > 1) return `the offer has ${audio.length} audio tracks; at most one is taken`;
  if (media.length !== video.length + audio.length) return 'only audio and video m-lines are accepted';
  if (!/^a=rtpmap:\d+ H264\/90000/im.test(sdp)) return 'the video must offer H.264 (OBS: x264 or NVENC; browsers: H.264)';
  if (audio.length === 1 && !/^a=rtpmap:\d+ opus\/48000/im.test(sdp)) return 'the audio must offer Opus';
  return undefined;
}

/** The SDP ffmpeg reads (on stdin) to receive the forwarded RTP on loopback. */
export function ffmpegSdp(f: Forwarding): string {
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=onair WHIP', 'c=IN IP4 127.0.0.1', 't=0 0'];
  lines.push(`m=video ${f.video.port} RTP/AVP ${f.video.pt}`, `a=rtpmap:${f.video.pt} H264/90000`, `a=fmtp:${f.video.pt} packetization-mode=1`);
  if (f.audio) lines.push(`m=audio ${f.audio.port} RTP/AVP ${f.audio.pt}`, `a=rtpmap:${f.audio.pt} opus/48000/${f.audio.channels}`);
  return lines.join('\n') + '\n';
}

/** ffmpeg arguments: RTP described by the SDP on stdin → FLV (H.264 copied, Opus → AAC) on stdout. */
export function ffmpegArgs(hasAudio: boolean, audioKbps: number): string[] {
  return [
    '-hide_banner', '-loglevel', 'warning', '-nostdin',
    '-protocol_whitelist', 'pipe,udp,rtp',
    // No frame-rate probing: it held the first ~0.7 s back and let it out in one burst, so the origin anchored
    // the stream's program date-time that much late.
    '-fpsprobesize', '0', '-f', 'sdp', '-i', 'pipe:0',
    '-map', '0:v:0', '-c:v', 'copy',
    ...(hasAudio ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', `${audioKbps}k`, '-ar', '48000', '-ac', '2'] : []),
    '-f', 'flv', '-flvflags', 'no_duration_filesize', 'pipe:1',
  ];
}

/** Two consecutive free UDP ports on 127.0.0.1 (ffmpeg takes RTP on the even one and RTCP on the next). */
async function freeUdpPair(): Promise<number> {
  const bind = (port: number) =>
    new Promise<UdpSocket | undefined>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => {
        s.close();
        resolve(undefined);
      });
      s.bind(port, '127.0.0.1', () => resolve(s));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + 2 * Math.floor(Math.random() * 20_000);
    const a = await bind(port);
    const b = a && (await bind(port + 1));
    a?.close();
    b?.close();
    if (a && b) return port;
  }
  throw new Error('no free UDP port pair on 127.0.0.1');
}

function bearer(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** Creates the WHIP ingest; mount `router` at `/whip`. */
export function createWhipIngest(deps: WhipIngestDeps): WhipIngest {
  const { config } = deps;
  const log = deps.logger.child({ component: 'whip-ingest' });
  const { publishes, rejected, active, bytes: bytesTotal } = ingestMetrics(deps.registry);
  const ffmpegLogLines = ffmpegLogCounter(deps.registry);
  const sessions = new Map<string, Session>(); // by session id
  const claimed = new Map<string, Session | 'negotiating'>(); // by event id
  const icePortRange = config.whipIcePorts?.split('-').map(Number) as [number, number] | undefined;
  const keyGuesses = deps.keyGuesses ?? createKeyGuessLimiter();
  let stopped = false;

  let healthTimer: ReturnType<typeof setInterval> | undefined;
  const checkHealth = () => {
    for (const s of sessions.values()) {
      if (!s.connected) continue;
      if (Date.now() - s.lastMediaAt > MEDIA_TIMEOUT_MS) {
        finish(s, 'no media');
        continue;
      }
      try {
        deps.onHealth?.(s.eventId, s.stats.take(s.resolution));
      } catch (err) {
        log.error({ err, eventId: s.eventId }, 'health report failed');
      }
    }
  };

  function later(s: Session, ms: number, fn: () => void, every = false): void {
    const t = every ? setInterval(fn, ms) : setTimeout(fn, ms);
    t.unref();
    s.timers.add(t);
  }

  /** Ends a session exactly once: timers, peer connection, ffmpeg, feed. */
  function finish(s: Session, why: string): void {
    if (s.ended) return;
    s.ended = true;
    for (const t of s.timers) clearTimeout(t);
    sessions.delete(s.id);
    if (claimed.get(s.eventId) === s) claimed.delete(s.eventId);
    void s.pc.close().catch(() => {});
    s.udp.close();
    const ff = s.ffmpeg;
    if (ff && ff.exitCode === null && ff.signalCode === null) {
      ff.kill('SIGTERM');
      const kill = setTimeout(() => ff.kill('SIGKILL'), 2_000);
      kill.unref();
      ff.once('close', () => clearTimeout(kill));
    }
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

  /** Starts ffmpeg for the negotiated tracks and pipes its FLV into the feed. */
  function startFfmpeg(s: Session, f: Forwarding): void {
    const ff = spawn(config.ffmpegPath, ffmpegArgs(f.audio !== undefined, config.audioKbps), { stdio: ['pipe', 'pipe', 'pipe'] });
    s.ffmpeg = ff;
    s.exited = new Promise((resolve) => ff.once('close', () => resolve()));
    ff.once('error', (err) => log.error({ err: err.message, eventId: s.eventId }, 'whip ffmpeg failed to start'));
    ff.stdin.on('error', () => {});
    ff.stdin.end(ffmpegSdp(f));
    logFfmpegStderr(ff.stderr, { logger: log, msg: 'whip ffmpeg', fields: { eventId: s.eventId }, source: 'whip', counter: ffmpegLogLines });
    const reader = new FlvReader();
    ff.stdout.on('data', (chunk: Buffer) => {
      if (s.ended || !s.feed) return;
      try {
        const hadHeader = reader.header !== undefined;
        const tags = reader.push(chunk);
        const out = !hadHeader && reader.header ? [reader.header] : [];
        for (const tag of tags) {
          s.stats.observe(tag.raw);
          if (tag.type === TagType.script) {
            const meta = readMetaData(tag);
            if (typeof meta?.width === 'number' && typeof meta.height === 'number') s.resolution = { width: meta.width, height: meta.height };
          } else if (!s.sawKeyframe && isVideoKeyframe(tag)) {
            s.sawKeyframe = true;
          }
          out.push(tag.raw);
        }
        for (const b of out) {
          s.bytes += b.length;
          bytesTotal.inc({ protocol: 'whip' }, b.length);
          s.feed.write(b);
        }
      } catch (err) {
        log.error({ err, eventId: s.eventId }, 'whip feed failed');
        finish(s, 'feed_error');
      }
    });
    ff.once('close', (code, signal) => {
      if (!s.ended) finish(s, `ffmpeg exited (${signal ?? code})`);
    });
  }

  /** Forwards a received track's RTP and sender reports to ffmpeg; asks for keyframes on video. */
  function forward(s: Session, f: Forwarding, track: MediaStreamTrack, transceiver: RTCRtpTransceiver | undefined): void {
    const port = track.kind === 'video' ? f.video.port : f.audio?.port;
    if (port === undefined) return;
    track.onReceiveRtp.subscribe((rtp) => {
      if (s.ended || rtp.payload.length === 0) return; // padding-only probes (bandwidth estimation)
      s.lastMediaAt = Date.now();
      s.udp.send(rtp.serialize(), port, '127.0.0.1');
    });
    // Sender reports map each track's RTP clock to the publisher's wall clock: ffmpeg lines audio and video up by them.
    track.onReceiveRtcp.subscribe((rtcp) => {
      if (!s.ended && rtcp instanceof RtcpSrPacket) s.udp.send(rtcp.serialize(), port + 1, '127.0.0.1');
    });
    if (track.kind !== 'video' || !transceiver) return;
    let lastPli = 0;
    const pli = () => {
      if (s.ended || track.ssrc === undefined) return;
      if (s.sawKeyframe && Date.now() - lastPli < PLI_PERIOD_MS - 100) return;
      lastPli = Date.now();
      void transceiver.receiver.sendRtcpPLI(track.ssrc).catch(() => {});
    };
    pli();
    later(s, 1_000, pli, true);
  }

  /** Negotiates the offer: one H.264 payload type (packetization-mode 1) and Opus kept, every candidate gathered. */
  async function negotiate(s: Session, offer: string): Promise<{ answer: string; videoPt: number; audio?: { pt: number; channels: number } }> {
    try {
      await s.pc.setRemoteDescription({ type: 'offer', sdp: offer });
    } catch (err) {
      throw new Refusal(400, 'bad_sdp', `the SDP offer cannot be used: ${(err as Error).message}`, 'bad_sdp');
    }
    let videoPt: number | undefined;
    let audio: { pt: number; channels: number } | undefined;
    for (const t of s.pc.getTransceivers()) {
      if (t.kind === 'video') {
        const h264 = t.codecs.find((c) => c.mimeType.toLowerCase() === 'video/h264' && /packetization-mode=1/.test(c.parameters ?? ''));
        if (!h264) throw new Refusal(400, 'bad_sdp', 'the video must offer H.264 with packetization-mode=1', 'bad_sdp');
        h264.parameters = `${h264.parameters};x-google-start-bitrate=${START_KBPS};x-google-max-bitrate=${MAX_KBPS}`;
        t.codecs = [h264];
        videoPt = h264.payloadType;
      } else if (t.kind === 'audio') {
        const opus = t.codecs.find((c) => c.mimeType.toLowerCase() === 'audio/opus');
        if (!opus) throw new Refusal(400, 'bad_sdp', 'the audio must offer Opus', 'bad_sdp');
        t.codecs = [opus];
        audio = { pt: opus.payloadType, channels: opus.channels ?? 2 };
      }
    }
    if (videoPt === undefined) throw new Refusal(400, 'bad_sdp', 'the offer has no video track', 'bad_sdp');
    const gathered = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
      s.pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await s.pc.setLocalDescription(await s.pc.createAnswer());
    if (s.pc.iceGatheringState !== 'complete') await gathered;
    const answer = s.pc.localDescription?.sdp;
    if (!answer) throw new Error('werift produced no answer');
    return { answer, videoPt, audio };
  }

  async function publish(req: Request, res: Response): Promise<void> {
    const eventId = String(req.params.eventId);
    // Not req.is(): it answers null for an empty body, which then looked like a wrong content type.
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/sdp') {
      throw new Refusal(415, 'unsupported_media_type', 'send the SDP offer with Content-Type: application/sdp', 'bad_content_type');
    }
    // The client's address under the trusted-proxy rule (express's `trust proxy`, set where the router is mounted).
    const address = req.ip ?? req.socket.remoteAddress ?? 'unknown';
    const retry = await keyGuesses.blockedFor(address);
    if (retry !== undefined) {
      throw new Refusal(429, 'rate_limited', `too many wrong stream keys from this address; try again in ${retry} s`, 'rate_limited', { 'retry-after': String(retry) });
    }
    const key = bearer(req.headers.authorization);
    if (!key || key.length > 512) {
      await keyGuesses.failed(address);
      throw new Refusal(401, 'unauthorized', 'send the stream key as Authorization: Bearer <stream key>', 'no_key', { 'www-authenticate': 'Bearer' });
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
      throw new Refusal(401, 'unauthorized', 'unknown stream key for this event', 'unknown_key', { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    const offer = typeof req.body === 'string' ? req.body : '';
    const problem = offerProblem(offer);
    if (problem) throw new Refusal(400, 'bad_sdp', problem, 'bad_sdp');
    if (stopped) throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    if (claimed.has(eventId) || deps.liveElsewhere?.(eventId)) {
      throw new Refusal(409, 'already_live', 'the event already has a publisher', 'already_live');
    }
    claimed.set(eventId, 'negotiating');
    const udp = createSocket('udp4');
    udp.on('error', (err) => log.warn({ err: err.message, eventId }, 'whip forwarding socket error'));
    const s: Session = {
      id: randomBytes(16).toString('base64url'),
      eventId,
      remoteAddress: address,
      pc: new RTCPeerConnection({
        codecs: {
          video: [useH264({ rtcpFeedback: [useNACK(), usePLI(), useREMB(), useTWCC()] })],
          audio: [useOPUS()],
        },
        headerExtensions: {
          video: [useSdesMid(), useAbsSendTime(), useTransportWideCC()],
          audio: [useSdesMid(), useAbsSendTime()],
        },
        iceAdditionalHostAddresses: config.whipIceAddresses,
        icePortRange,
      }),
      udp,
      stats: new FlvStats('whip'),
      timers: new Set(),
      resolution: {},
      connected: false,
      sawKeyframe: false,
      lastMediaAt: Date.now(),
      bytes: 0,
      ended: false,
    };
    let negotiated: Awaited<ReturnType<typeof negotiate>>;
    let ports: [number, number | undefined];
    try {
      negotiated = await negotiate(s, offer);
      ports = [await freeUdpPair(), negotiated.audio ? await freeUdpPair() : undefined];
    } catch (err) {
      if (claimed.get(eventId) === 'negotiating') claimed.delete(eventId);
      s.ended = true;
      void s.pc.close().catch(() => {});
      udp.close();
      throw err;
    }
    const { videoPt, audio } = negotiated;
    const forwarding: Forwarding = {
      video: { pt: videoPt, port: ports[0] },
      audio: audio && ports[1] !== undefined ? { ...audio, port: ports[1] } : undefined,
    };
    if (stopped || claimed.get(eventId) !== 'negotiating') {
      finish(s, 'ingest stopping');
      throw new Refusal(503, 'unavailable', 'ingest is stopping', 'feed_error');
    }
    claimed.set(eventId, s);
    sessions.set(s.id, s);
    try {
      s.feed = deps.feeds.open(eventId, { protocol: 'whip', sessionId: s.id, remoteAddress: s.remoteAddress });
    } catch (err) {
      log.error({ err, eventId }, 'feed open failed');
      finish(s, 'feed_error');
      throw new Refusal(503, 'unavailable', 'the origin cannot take the stream now', 'feed_error');
    }
    publishes.inc({ protocol: 'whip' });
    active.inc({ protocol: 'whip' });
    // werift announced the tracks while it took the offer; ones that come later (none, for a WHIP publisher) too.
    const forwarded = new Set<MediaStreamTrack>();
    const take = (track: MediaStreamTrack) => {
      if (forwarded.has(track)) return;
      forwarded.add(track);
      forward(s, forwarding, track, s.pc.getTransceivers().find((t) => t.receiver.tracks.includes(track)));
    };
    for (const t of s.pc.getTransceivers()) t.receiver.tracks.forEach(take);
    s.pc.onTrack.subscribe(take);
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
    startFfmpeg(s, forwarding);
    log.info({ eventId, sessionId: s.id, remoteAddress: s.remoteAddress, audio: audio !== undefined }, 'whip publish started');
    const location = `${req.baseUrl}/${encodeURIComponent(eventId)}/${s.id}`;
    res.status(201).set({ 'content-type': 'application/sdp', location, 'cache-control': 'no-store' }).send(negotiated.answer);
  }

  function sessionFor(req: Request): Session | undefined {
    const s = sessions.get(String(req.params.sessionId));
    return s && s.eventId === req.params.eventId ? s : undefined;
  }

  const router = express.Router();
  router.use((_req, res, next) => {
    // Browsers publish from other origins (a studio page); the key in Authorization is what protects the endpoint.
    res.set({ 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Location, Accept-Post' });
    next();
  });
  router.options('/:eventId', (_req, res) => {
    res
      .status(204)
      .set({ 'access-control-allow-methods': 'POST, OPTIONS', 'access-control-allow-headers': 'Authorization, Content-Type', 'accept-post': 'application/sdp', allow: 'POST, OPTIONS' })
      .end();
  });
  router.post('/:eventId', express.text({ type: 'application/sdp', limit: MAX_OFFER_BYTES }), (req, res, next) => {
    publish(req, res).catch(next);
  });
  router.options('/:eventId/:sessionId', (_req, res) => {
    res.status(204).set({ 'access-control-allow-methods': 'DELETE, OPTIONS', 'access-control-allow-headers': 'Authorization, Content-Type', allow: 'DELETE, OPTIONS' }).end();
  });
  router.delete('/:eventId/:sessionId', (req, res) => {
    const s = sessionFor(req);
    if (!s) return sendError(res, 404, 'not_found', 'no such WHIP session (it may have ended already)');
    finish(s, 'publisher ended the session');
    res.status(200).set('cache-control', 'no-store').end();
  });
  router.patch('/:eventId/:sessionId', (req, res) => {
    if (!sessionFor(req)) return sendError(res, 404, 'not_found', 'no such WHIP session');
    sendError(res, 405, 'method_not_allowed', 'trickle ICE and ICE restarts are not supported: the answer lists every candidate', { allow: 'DELETE, OPTIONS' });
  });
  router.all(['/:eventId', '/:eventId/:sessionId'], (_req, res) => {
    sendError(res, 405, 'method_not_allowed', 'WHIP: POST an offer to /whip/<eventId>, DELETE the session URL to stop');
  });
  router.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof Refusal) {
      rejected.inc({ protocol: 'whip', reason: err.reason });
      log.warn({ eventId: req.params.eventId, remoteAddress: req.ip ?? req.socket.remoteAddress, reason: err.reason }, 'whip publish rejected');
      return sendError(res, err.status, err.code, err.message, err.headers);
    }
    const status = (err as { status?: number }).status;
    if (status === 413) return sendError(res, 413, 'too_large', `the SDP offer exceeds ${MAX_OFFER_BYTES} bytes`);
    if (status !== undefined && status >= 400 && status < 500) return sendError(res, status, 'bad_request', (err as Error).message);
    log.error({ err }, 'whip request failed');
    sendError(res, 500, 'internal', 'the WHIP session could not be set up');
  });

  return {
    router,
    disconnect(eventId) {
      const s = claimed.get(eventId);
      if (!s || s === 'negotiating') return false;
      finish(s, 'disconnected');
      return true;
    },
    isLive: (eventId) => claimed.has(eventId),
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
