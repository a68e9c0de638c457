// One WHIP publish session: its peer connection (werift: ICE, DTLS, SRTP), the negotiation of its offer, the
// forwarding of its RTP and sender reports over loopback UDP, and the ffmpeg that turns them into FLV for the
// session's feed. The ingest (whip-ingest.ts) decides when a session starts and ends.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { RtcpSrPacket } from 'werift';
import type { MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver } from 'werift';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { Counter } from '../lib/metrics.ts';
import { isVideoKeyframe } from '../lib/flv.ts';
import { readFlvOutput } from './flv-output.ts';
import type { FfmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { startFfmpegProcess, type FfmpegProcess } from '../lib/ffmpeg-process.ts';
import type { LiveFeed } from './feed.ts';
import { FlvStats } from './flv-stats.ts';
import type { PublisherClaim } from './publishers.ts';
import { answerVideoParameters, chooseCodec, ffmpegArgs, ffmpegSdp, type Forwarding } from './whip-sdp.ts';
import { ApiError } from '../lib/http.ts';
import { answerWithCandidates, h264OpusPeer } from './webrtc-http.ts';

/** Keyframe requests (PLI): every second until ffmpeg passes a keyframe on, then at this period, like OBS's 2 s GOP. */
const PLI_PERIOD_MS = 2_000;
/** How long a session's ffmpeg may take to exit after SIGTERM before SIGKILL. */
const FFMPEG_KILL_AFTER_MS = 2_000;

/** Why a WHIP publish was refused (label of onair_ingest_rejected_total). */
export type WhipRejectReason =
  'bad_content_type' | 'no_key' | 'unknown_key' | 'rate_limited' | 'auth_error' | 'bad_sdp' | 'already_live' | 'feed_error';

/** A client error: the HTTP status, error code and message sent back, and the metric reason. */
export class Refusal extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    readonly reason: WhipRejectReason,
    headers: Record<string, string> = {},
  ) {
    super(status, code, message, headers);
  }
}

/** One WHIP publish session. */
export interface Session {
  readonly id: string;
  readonly eventId: string;
  readonly remoteAddress: string;
  readonly pc: RTCPeerConnection;
  readonly udp: UdpSocket;
  readonly stats: FlvStats;
  readonly timers: Set<NodeJS.Timeout>;
  /** This session's hold on its event (ingest/publishers.ts). */
  readonly claim: PublisherClaim;
  feed?: LiveFeed;
  ffmpeg?: FfmpegProcess;
  exited?: Promise<void>;
  resolution: { width?: number; height?: number };
  connected: boolean;
  sawKeyframe: boolean;
  lastMediaAt: number;
  bytes: number;
  ended: boolean;
}

/** What a session needs from its ingest. */
export interface SessionEnv {
  config: Pick<Config, 'ffmpegPath' | 'audioKbps' | 'whipIceAddresses' | 'whipIcePorts'>;
  log: Logger;
  ffmpegLogLines: FfmpegLogCounter;
  /** onair_ingest_bytes_total. */
  bytesTotal: Counter;
  /** Ends a session (the ingest's bookkeeping, then closeSession()). */
  finish(s: Session, why: string): void;
}

/** A new session for `eventId` held by `claim`: its peer connection and forwarding socket, nothing negotiated yet. */
export function openSession(env: SessionEnv, init: { eventId: string; remoteAddress: string; claim: PublisherClaim }): Session {
  const { config } = env;
  const udp = createSocket('udp4');
  udp.on('error', (err) => env.log.warn({ err: err.message, eventId: init.eventId }, 'whip forwarding socket error'));
  return {
    id: randomBytes(16).toString('base64url'),
    eventId: init.eventId,
    remoteAddress: init.remoteAddress,
    pc: h264OpusPeer(config, true),
    udp,
    stats: new FlvStats('whip'),
    timers: new Set(),
    claim: init.claim,
    resolution: {},
    connected: false,
    sawKeyframe: false,
    lastMediaAt: Date.now(),
    bytes: 0,
    ended: false,
  };
}

/** Closes what a session holds: its timers, peer connection, forwarding socket and ffmpeg (not its feed). */
export function closeSession(s: Session): void {
  for (const t of s.timers) clearTimeout(t);
  void s.pc.close().catch(() => {});
  s.udp.close();
  s.ffmpeg?.stop();
}

/** Runs `fn` after `ms` (or every `ms`) until the session closes. */
export function later(s: Session, ms: number, fn: () => void, every = false): void {
  const t = every ? setInterval(fn, ms) : setTimeout(fn, ms);
  t.unref();
  s.timers.add(t);
}

/** Two consecutive free UDP ports on 127.0.0.1 (ffmpeg takes RTP on the even one and RTCP on the next). */
export async function freeUdpPair(): Promise<number> {
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

/** Negotiates the offer: one H.264 payload type (packetization-mode 1) and Opus kept, every candidate gathered. */
export async function negotiate(
  s: Session,
  offer: string,
): Promise<{ answer: string; videoPt: number; audio?: { pt: number; channels: number } }> {
  try {
    await s.pc.setRemoteDescription({ type: 'offer', sdp: offer });
  } catch (err) {
    throw new Refusal(400, 'bad_sdp', `the SDP offer cannot be used: ${(err as Error).message}`, 'bad_sdp');
  }
  let videoPt: number | undefined;
  let audio: { pt: number; channels: number } | undefined;
  for (const t of s.pc.getTransceivers()) {
    const codec = chooseCodec(t.kind, t.codecs);
    if (typeof codec === 'string') throw new Refusal(400, 'bad_sdp', codec, 'bad_sdp');
    if (!codec) continue;
    t.codecs = [codec];
    if (t.kind === 'video') {
      codec.parameters = answerVideoParameters(codec.parameters);
      videoPt = codec.payloadType;
    } else {
      audio = { pt: codec.payloadType, channels: codec.channels ?? 2 };
    }
  }
  if (videoPt === undefined) throw new Refusal(400, 'bad_sdp', 'the offer has no video track', 'bad_sdp');
  const answer = await answerWithCandidates(s.pc);
  return { answer, videoPt, audio };
}

/** Forwards every received track (those werift announced while it took the offer, and any later one). */
export function forwardTracks(s: Session, f: Forwarding): void {
  const forwarded = new Set<MediaStreamTrack>();
  const take = (track: MediaStreamTrack) => {
    if (forwarded.has(track)) return;
    forwarded.add(track);
    forward(
      s,
      f,
      track,
      s.pc.getTransceivers().find((t) => t.receiver.tracks.includes(track)),
    );
  };
  for (const t of s.pc.getTransceivers()) t.receiver.tracks.forEach(take);
  s.pc.onTrack.subscribe(take);
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

/** Starts ffmpeg for the negotiated tracks and pipes its FLV into the session's feed. */
export function startFfmpeg(env: SessionEnv, s: Session, f: Forwarding): void {
  const { config, log } = env;
  const ff = startFfmpegProcess({
    path: config.ffmpegPath,
    args: ffmpegArgs(f.audio !== undefined, config.audioKbps),
    stdio: ['pipe', 'pipe'],
    log: { logger: log, msg: 'whip ffmpeg', fields: { eventId: s.eventId }, source: 'whip', counter: env.ffmpegLogLines },
    killAfterMs: FFMPEG_KILL_AFTER_MS,
  });
  s.ffmpeg = ff;
  s.exited = ff.closed.then(() => {});
  ff.child.stdin!.end(ffmpegSdp(f));
  readFlvOutput(ff.child.stdout!, s, {
    active: () => !s.ended && s.feed !== undefined,
    onTag: (tag) => {
      if (!s.sawKeyframe && isVideoKeyframe(tag)) s.sawKeyframe = true;
    },
    write: (b) => {
      s.bytes += b.length;
      env.bytesTotal.inc({ protocol: 'whip' }, b.length);
      s.feed!.write(b);
    },
    fail: (err) => {
      log.error({ err, eventId: s.eventId }, 'whip feed failed');
      env.finish(s, 'feed_error');
    },
  });
  void ff.closed.then(({ code, signal }) => {
    if (!s.ended) env.finish(s, `ffmpeg exited (${signal ?? code})`);
  });
}
