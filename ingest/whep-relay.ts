// One live event's WHEP relay: a single ffmpeg reads the event's FLV feed (from its last keyframe, through a feed
// tap) and sends RTP over loopback UDP, the H.264 copied and the AAC turned into Opus once for every viewer; each
// packet is then written to every connected viewer's werift track. A viewer that connects mid-GOP first gets the
// cached packets since the last keyframe (ingest/whep-rtp.ts), so it shows a picture at once.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { MediaStreamTrack } from 'werift';
import type { Logger } from '../lib/logger.ts';
import type { FfmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { startFfmpegProcess, type FfmpegProcess } from '../lib/ffmpeg-process.ts';
import type { FeedTap } from './feed-taps.ts';
import { RtpGopCache } from './whep-rtp.ts';

/** How long the relay's ffmpeg may take to exit after SIGTERM before SIGKILL. */
const FFMPEG_KILL_AFTER_MS = 2_000;
/** RTP packet size ffmpeg makes: room for SRTP and werift's header extensions within a 1,500-byte MTU. */
const RTP_PACKET_BYTES = 1_200;

/** One viewer's side of the relay: its sending tracks, and whether its peer connection is up. */
export interface RelayViewer {
  readonly video: MediaStreamTrack;
  readonly audio: MediaStreamTrack | undefined;
  /** Set by the relay: the viewer's video has started at a keyframe. */
  videoStarted: boolean;
  /** Set by the session: DTLS is connected, packets can be written. */
  connected: boolean;
}

/** What a relay needs from its parent. */
export interface RelayEnv {
  ffmpegPath: string;
  audioKbps: number;
  log: Logger;
  ffmpegLogLines: FfmpegLogCounter;
  /** The relay ended by itself (the feed ended, or ffmpeg exited): its viewers' sessions end. */
  ended(relay: WhepRelay, why: string): void;
}

/** The ffmpeg arguments: FLV on stdin → H.264 (copied) as RTP to `videoPort`, and Opus as RTP to `audioPort`. */
export function relayFfmpegArgs(videoPort: number, audio: { port: number; kbps: number } | undefined): string[] {
  const rtp = (port: number) => ['-f', 'rtp', '-rtpflags', 'skip_rtcp', '-pkt_size', String(RTP_PACKET_BYTES), `rtp://127.0.0.1:${port}`];
  return [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    // The GOP that starts the input arrives in one burst: nothing to wait for beyond it.
    '-fflags',
    'nobuffer',
    '-probesize',
    '65536',
    '-analyzeduration',
    '500000',
    '-f',
    'flv',
    '-i',
    'pipe:0',
    '-map',
    '0:v:0',
    '-c:v',
    'copy',
    '-bsf:v',
    'h264_mp4toannexb',
    ...rtp(videoPort),
    ...(audio
      ? [
          '-map',
          '0:a:0',
          '-c:a',
          'libopus',
          '-b:a',
          `${audio.kbps}k`,
          '-ar',
          '48000',
          '-ac',
          '2',
          '-application',
          'lowdelay',
          ...rtp(audio.port),
        ]
      : []),
  ];
}

function bindLoopback(log: Logger, eventId: string): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      s.on('error', (err) => log.warn({ eventId, err: err.message }, 'whep relay socket error'));
      resolve(s);
    });
  });
}

/** The relay of one event; start() it, add viewers, stop() it after the last. */
export class WhepRelay {
  readonly viewers = new Set<RelayViewer>();
  readonly #gop = new RtpGopCache();
  #sockets: UdpSocket[] = [];
  #ffmpeg: FfmpegProcess | undefined;
  #unread: (() => void) | undefined;
  #stopped = false;
  /** Resolves once ffmpeg has exited (or at once if it never started). */
  exited: Promise<void> = Promise.resolve();

  constructor(
    readonly tap: FeedTap,
    private readonly env: RelayEnv,
  ) {}

  /** Binds the RTP sockets, starts ffmpeg and feeds it the event's feed from its last keyframe. */
  async start(): Promise<void> {
    const { log } = this.env;
    const eventId = this.tap.eventId;
    const video = await bindLoopback(log, eventId);
    this.#sockets.push(video);
    const audio = this.tap.hasAudio ? await bindLoopback(log, eventId) : undefined;
    if (audio) this.#sockets.push(audio);
    if (this.#stopped) return this.#close();
    video.on('message', (packet: Buffer) => this.#video(packet));
    audio?.on('message', (packet: Buffer) => {
      for (const v of this.viewers) if (v.connected && v.videoStarted) v.audio?.writeRtp(packet);
    });
    const ff = startFfmpegProcess({
      path: this.env.ffmpegPath,
      args: relayFfmpegArgs(
        (video.address() as AddressInfo).port,
        audio ? { port: (audio.address() as AddressInfo).port, kbps: this.env.audioKbps } : undefined,
      ),
      stdio: ['pipe', 'ignore'],
      log: { logger: log, msg: 'whep ffmpeg', fields: { eventId }, source: 'whep', counter: this.env.ffmpegLogLines },
      killAfterMs: FFMPEG_KILL_AFTER_MS,
    });
    this.#ffmpeg = ff;
    this.exited = ff.closed.then(() => {});
    void ff.closed.then(({ code, signal }) => {
      if (!this.#stopped) this.env.ended(this, `ffmpeg exited (${signal ?? code})`);
    });
    const stdin = ff.child.stdin!;
    this.#unread = this.tap.read({
      data: (chunk) => {
        // A viewer too slow for the live feed is not waited for: beyond ~4 MB queued, the relay ends.
        if (stdin.writableLength > 4 * 1024 * 1024) {
          if (!this.#stopped) this.env.ended(this, 'ffmpeg fell behind the live feed');
          return;
        }
        if (!stdin.destroyed) stdin.write(chunk);
      },
      end: () => {
        if (!this.#stopped) this.env.ended(this, 'the live feed ended');
      },
    });
  }

  #video(packet: Buffer): void {
    this.#gop.push(packet);
    for (const v of this.viewers) {
      if (!v.connected) continue;
      if (v.videoStarted) v.video.writeRtp(packet);
      else this.#startVideo(v);
    }
  }

  /** Starts a connected viewer's video at the cached keyframe, if there is one (else at the next). */
  #startVideo(v: RelayViewer): void {
    const gop = this.#gop.gop();
    if (!gop) return;
    for (const p of gop) v.video.writeRtp(p);
    v.videoStarted = true;
  }

  /** A viewer's peer connection is up: its video starts now from the last keyframe. */
  connected(v: RelayViewer): void {
    v.connected = true;
    if (this.viewers.has(v)) this.#startVideo(v);
  }

  /** Ends the relay: no more reading, ffmpeg stopped, sockets closed. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#close();
  }

  #close(): void {
    this.#unread?.();
    this.#ffmpeg?.child.stdin?.end();
    this.#ffmpeg?.stop();
    for (const s of this.#sockets) s.close();
    this.#sockets = [];
  }
}
