// SRT ingest: broadcasters publish MPEG-TS to `srt://host:<srtPort>?streamid=publish:<streamKey>` (or the
// access-control form `#!::r=<streamKey>,m=publish`). One libsrt listener (Debian's libsrt through koffi,
// ingest/libsrt.ts) takes every publisher; per session, an ffmpeg remuxes the TS into the FLV feed that RTMP and
// WHIP hand the origin (H.264 copied, audio made AAC), so the origin keeps its single input path.
//
// No libsrt call blocks the event loop: sockets are non-blocking, and one srt_epoll_uwait at a time runs on a
// worker thread (koffi's async call) and wakes the loop when a socket has data or broke.
//
// Before any media is taken:
//  - in the handshake (libsrt's accept hook, run on the JS thread), a stream id that is not a publish with a key,
//    and an address locked out for guessing keys, are rejected: the publisher gets an SRT rejection code;
//  - after the handshake, the key is checked (the store is asynchronous, the hook cannot wait for it) and the event
//    claimed under the node's one-publisher rule (ingest/publishers.ts); until both are done the socket is not read
//    (libsrt holds what arrives), and a refused publisher is closed without a byte of its media read.
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import { normalizeAddress } from '../lib/client-address.ts';
import { ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import { startFfmpegProcess, type FfmpegProcess } from '../lib/ffmpeg-process.ts';
import type { Service } from '../lib/lifecycle.ts';
import { FeedRefusal, type IngestDeps, type LiveFeed } from './feed.ts';
import { readFlvOutput, reportHealth } from './flv-output.ts';
import { FlvStats } from './flv-stats.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { SRTO, SRTS, SRT_E, SRT_EPOLL, SRT_REJX, hookPeer, intOpt, libsrt, readSockaddr, sockaddr, type LibSrt } from './libsrt.ts';
import { ingestMetrics } from './metrics.ts';
import { createPublisherRegistry, type PublisherClaim } from './publishers.ts';
import { parseStreamId, type StreamIdProblem } from './srt-streamid.ts';

/** How long one srt_epoll_uwait may wait: also how long stop() may wait for the poller to come back. */
const POLL_MS = 200;
/** Sockets reported per poll. */
const MAX_EVENTS = 64;
/** Connection requests libsrt queues before we accept them. */
const BACKLOG = 64;
/** How long the stream-key check may take before the publisher is refused. */
const AUTH_TIMEOUT_MS = 5_000;
/** A live publisher that sends nothing this long is ended (libsrt's own peer-idle timeout is 5 s). */
const MEDIA_TIMEOUT_MS = 10_000;
/**
 * A live publisher whose remux has produced no media this long is ended: what it sends is not MPEG-TS with H.264
 * (ffmpeg's demuxer would resync through noise forever). Long enough for a 10 s keyframe interval: copying H.264
 * needs its parameter sets, which come with a keyframe.
 */
const FIRST_MEDIA_TIMEOUT_MS = 20_000;
/** TS bytes the remux may fall behind by before the publish is ended (ffmpeg stuck). */
const MAX_REMUX_BACKLOG_BYTES = 32 * 1024 * 1024;
/** How long a session's ffmpeg may take to exit after SIGTERM before SIGKILL. */
const FFMPEG_KILL_AFTER_MS = 2_000;
/** Largest SRT live payload (1456; 1316 = 7 TS packets is usual). */
const MAX_PAYLOAD = 1500;

/** Why a publish attempt was refused (label of onair_ingest_rejected_total). */
export type SrtRejectReason =
  StreamIdProblem | 'unknown_key' | 'rate_limited' | 'already_live' | 'auth_error' | 'auth_timeout' | 'feed_error' | 'stopping';

/** What the SRT ingest needs from its parent. */
export interface SrtIngestDeps extends IngestDeps {
  config: Pick<
    Config,
    'host' | 'srtIngest' | 'srtPort' | 'srtLatencyMs' | 'srtPassphrase' | 'ffmpegPath' | 'audioKbps' | 'healthIntervalSec'
  >;
}

/** A running SRT ingest. */
export interface SrtIngest extends Service {
  /** The bound UDP port once started; undefined while stopped or when SRT is off. */
  readonly port: number | undefined;
  /** Ends the current SRT publisher of `eventId` (its feed ends now); false if none is live. */
  disconnect(eventId: string): boolean;
  /** True while `eventId` has an SRT publisher. */
  isLive(eventId: string): boolean;
}

/** One accepted SRT connection. */
interface Session {
  readonly id: string;
  readonly sock: number;
  readonly remoteAddress: string;
  state: 'checking' | 'live' | 'ended';
  eventId?: string;
  claim?: PublisherClaim;
  feed?: LiveFeed;
  ffmpeg?: FfmpegProcess;
  exited?: Promise<void>;
  readonly stats: FlvStats;
  resolution: { width?: number; height?: number };
  lastMediaAt: number;
  /** TS bytes read from the publisher. */
  tsBytes: number;
  /** FLV bytes handed to the feed. */
  bytes: number;
}

/** Creates the SRT ingest; start() binds the listener (a no-op when config.srtIngest is `off`). */
export function createSrtIngest(deps: SrtIngestDeps): SrtIngest {
  const { config } = deps;
  const log = deps.logger.child({ component: 'srt-ingest' });
  const { publishes, rejected, active, bytes: bytesTotal } = ingestMetrics(deps.registry);
  const ffmpegLogLines = ffmpegLogCounter(deps.registry);
  const keyGuesses = deps.keyGuesses ?? createKeyGuessLimiter();
  const publishers = deps.publishers ?? createPublisherRegistry();
  /** Addresses locked out for wrong keys, and until when: the handshake hook cannot ask the (async) limiter. */
  const lockedOut = new Map<string, number>();
  const sessions = new Map<number, Session>(); // by SRT socket
  let srt: LibSrt | undefined;
  let listener: number | undefined;
  let eid: number | undefined;
  let hook: unknown;
  let boundPort: number | undefined;
  let stopped = true;
  let poller: Promise<void> | undefined;
  let healthTimer: NodeJS.Timeout | undefined;

  function lastError(): string {
    return srt?.getlasterror_str() ?? 'libsrt not loaded';
  }

  function closeSocket(sock: number): void {
    // On a worker thread: srt_close can wait for libsrt's own threads, which may be waiting for ours (the hook).
    srt?.close.async(sock, () => {});
  }

  function countRefusal(reason: SrtRejectReason, remoteAddress: string, eventId?: string, why?: string): void {
    rejected.inc({ protocol: 'srt', reason });
    log.warn({ eventId, remoteAddress, reason, why }, 'srt publish rejected');
  }

  /** Remembers a lock-out the limiter reported, for the handshake hook. */
  async function checkLockout(address: string): Promise<number | undefined> {
    const retry = await keyGuesses.blockedFor(address);
    if (retry === undefined) lockedOut.delete(address);
    else lockedOut.set(address, Date.now() + retry * 1000);
    return retry;
  }

  async function wrongKey(address: string): Promise<void> {
    await keyGuesses.failed(address);
    await checkLockout(address);
  }

  /** libsrt's accept hook: refuses in the handshake what needs no store lookup. Runs on the JS thread. */
  function onHandshake(_opaque: unknown, ns: number, _hsVersion: number, peer: unknown, streamId: string | null): number {
    try {
      const remoteAddress = normalizeAddress(hookPeer(peer).address);
      const refuse = (code: number, reason: SrtRejectReason, why: string): number => {
        srt!.setrejectreason(ns, code);
        countRefusal(reason, remoteAddress, undefined, why);
        return -1;
      };
      if (stopped) return refuse(SRT_REJX.DOWN, 'stopping', 'ingest is stopping');
      const until = lockedOut.get(remoteAddress);
      if (until !== undefined && until > Date.now()) {
        return refuse(
          SRT_REJX.OVERLOAD,
          'rate_limited',
          `too many wrong stream keys; try again in ${Math.ceil((until - Date.now()) / 1000)} s`,
        );
      }
      const parsed = parseStreamId(streamId);
      if (!parsed.ok) {
        if (parsed.reason !== 'bad_mode') void wrongKey(remoteAddress).catch((err: Error) => log.error({ err }, 'key guess count failed'));
        return refuse(parsed.reason === 'bad_mode' ? SRT_REJX.BAD_MODE : SRT_REJX.BAD_REQUEST, parsed.reason, parsed.message);
      }
      return 0;
    } catch (err) {
      log.error({ err }, 'srt handshake check failed');
      srt?.setrejectreason(ns, SRT_REJX.ISE);
      return -1;
    }
  }

  /** Refuses an accepted session before any of its media was read. */
  function refuse(s: Session, reason: SrtRejectReason, why?: string): void {
    if (s.state === 'ended') return;
    s.state = 'ended';
    sessions.delete(s.sock);
    s.claim?.release();
    closeSocket(s.sock);
    countRefusal(reason, s.remoteAddress, s.eventId, why);
  }

  /** Ends a session exactly once: socket, remux, claim, feed. */
  function finish(s: Session, why: string): void {
    if (s.state === 'ended') return;
    const wasLive = s.state === 'live';
    s.state = 'ended';
    sessions.delete(s.sock);
    if (srt && eid !== undefined) srt.epoll_remove_usock(eid, s.sock);
    closeSocket(s.sock);
    s.claim?.release();
    if (s.ffmpeg) {
      s.ffmpeg.child.stdin?.end();
      s.ffmpeg.stop();
    }
    if (wasLive) active.dec({ protocol: 'srt' });
    if (s.feed) {
      try {
        s.feed.end();
      } catch (err) {
        log.error({ err, eventId: s.eventId }, 'feed end failed');
      }
    }
    log.info(
      { eventId: s.eventId, sessionId: s.id, remoteAddress: s.remoteAddress, tsBytes: s.tsBytes, bytes: s.bytes, reason: why },
      'srt publish ended',
    );
  }

  /** Whether `s` ended (read through a call: it may change across an await). */
  function ended(s: Session): boolean {
    return s.state === 'ended';
  }

  function connected(s: Session): boolean {
    return s.state !== 'ended' && srt!.getsockstate(s.sock) === SRTS.CONNECTED;
  }

  /** Checks an accepted session's key and claims its event; then starts its remux and reads its media. */
  async function admit(s: Session): Promise<void> {
    const idBuf = Buffer.alloc(513);
    const idLen = intOpt(idBuf.length);
    const streamId = srt!.getsockflag(s.sock, SRTO.STREAMID, idBuf, idLen) < 0 ? '' : idBuf.subarray(0, idLen.readInt32LE(0)).toString();
    const parsed = parseStreamId(streamId);
    if (!parsed.ok) return refuse(s, parsed.reason, parsed.message);
    const retry = await checkLockout(s.remoteAddress);
    if (retry !== undefined) return refuse(s, 'rate_limited', `too many wrong stream keys; try again in ${retry} s`);
    let eventId: string | undefined;
    try {
      let timer: NodeJS.Timeout | undefined;
      eventId = await Promise.race([
        deps.authorize(parsed.key),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), AUTH_TIMEOUT_MS);
          timer.unref();
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      const timedOut = (err as Error).message === 'timeout';
      if (!timedOut) log.error({ err, sessionId: s.id, remoteAddress: s.remoteAddress }, 'stream key check failed');
      return refuse(s, timedOut ? 'auth_timeout' : 'auth_error');
    }
    if (ended(s)) return;
    if (!eventId) {
      await wrongKey(s.remoteAddress);
      return refuse(s, 'unknown_key');
    }
    s.eventId = eventId;
    if (!connected(s)) return refuse(s, stopped ? 'stopping' : 'feed_error', 'publisher left during the key check');
    const claimed = await publishers.claim(
      eventId,
      {
        protocol: 'srt',
        // Until it is live, a session cannot be taken over: a publisher arriving meanwhile is refused at once.
        lastActiveAt: () => (s.state === 'live' ? s.lastMediaAt : Number.POSITIVE_INFINITY),
        evict: (silentMs) => {
          log.warn({ eventId, sessionId: s.id, remoteAddress: s.remoteAddress, silentMs }, 'replacing a stalled publisher');
          finish(s, 'stalled, replaced by a new publisher');
        },
      },
      () => !stopped && connected(s),
    );
    if (!claimed.ok) return refuse(s, claimed.reason === 'already_live' ? 'already_live' : stopped ? 'stopping' : 'feed_error');
    s.claim = claimed.claim;
    let feed: LiveFeed;
    try {
      feed = await deps.feeds.open(eventId, { protocol: 'srt', sessionId: s.id, remoteAddress: s.remoteAddress });
    } catch (err) {
      if (err instanceof FeedRefusal) log.warn({ eventId, reason: err.code, why: err.message }, 'feed refused');
      else log.error({ err, eventId }, 'feed open failed');
      return refuse(s, 'feed_error');
    }
    if (ended(s) || !s.claim.held || stopped) {
      // Left, or was taken over, while the feed opened.
      try {
        feed.end();
      } catch (err) {
        log.error({ err, eventId }, 'feed end failed');
      }
      if (!ended(s)) refuse(s, stopped ? 'stopping' : 'feed_error', 'the event was taken while its feed opened');
      return;
    }
    s.feed = feed;
    s.state = 'live';
    s.lastMediaAt = Date.now();
    publishes.inc({ protocol: 'srt' });
    active.inc({ protocol: 'srt' });
    startRemux(s);
    if (srt!.epoll_add_usock(eid!, s.sock, intOpt(SRT_EPOLL.IN | SRT_EPOLL.ERR)) < 0) {
      finish(s, `cannot poll the socket: ${lastError()}`);
      return;
    }
    log.info({ eventId, sessionId: s.id, remoteAddress: s.remoteAddress }, 'srt publish started');
  }

  /** The session's ffmpeg: MPEG-TS in, FLV out (video copied, audio AAC) into its feed. */
  function startRemux(s: Session): void {
    const ff = startFfmpegProcess({
      path: config.ffmpegPath,
      args: remuxArgs(config.audioKbps),
      stdio: ['pipe', 'pipe'],
      log: { logger: log, msg: 'srt ffmpeg', fields: { eventId: s.eventId }, source: 'srt', counter: ffmpegLogLines },
      killAfterMs: FFMPEG_KILL_AFTER_MS,
    });
    s.ffmpeg = ff;
    s.exited = ff.closed.then(() => {});
    readFlvOutput(ff.child.stdout!, s, {
      active: () => s.state === 'live' && s.feed !== undefined,
      write: (b) => {
        s.bytes += b.length;
        bytesTotal.inc({ protocol: 'srt' }, b.length);
        s.feed!.write(b);
      },
      fail: (err) => {
        log.error({ err, eventId: s.eventId }, 'srt feed failed; disconnecting publisher');
        finish(s, 'feed_error');
      },
    });
    void ff.closed.then(({ code, signal }) => {
      if (s.state !== 'ended') finish(s, `ffmpeg exited (${signal ?? code}): the stream is not MPEG-TS with H.264 video`);
    });
    setTimeout(() => {
      if (s.state === 'live' && s.bytes === 0)
        finish(s, `no usable media in ${FIRST_MEDIA_TIMEOUT_MS / 1000} s: the stream is not MPEG-TS with H.264 video`);
    }, FIRST_MEDIA_TIMEOUT_MS).unref();
  }

  const payload = Buffer.alloc(MAX_PAYLOAD);

  /** Reads what a live session's socket holds (non-blocking) into its remux; ends the session when the socket broke. */
  function drain(s: Session, events: number): void {
    const chunks: Buffer[] = [];
    let broken = (events & SRT_EPOLL.ERR) !== 0;
    for (;;) {
      const n = srt!.recvmsg(s.sock, payload, payload.length);
      if (n > 0) {
        chunks.push(Buffer.from(payload.subarray(0, n)));
        continue;
      }
      if (n < 0 && srt!.getlasterror(null) !== SRT_E.ASYNCRCV) broken = true;
      break;
    }
    if (chunks.length > 0) {
      const data = Buffer.concat(chunks);
      s.tsBytes += data.length;
      s.lastMediaAt = Date.now();
      const stdin = s.ffmpeg?.child.stdin;
      if (stdin && !stdin.destroyed) {
        if (stdin.writableLength > MAX_REMUX_BACKLOG_BYTES) return finish(s, 'remux fell behind');
        stdin.write(data);
      }
    }
    if (broken) finish(s, 'publisher disconnected');
  }

  function acceptAll(): void {
    for (;;) {
      const addr = Buffer.alloc(28);
      const addrLen = intOpt(addr.length);
      const sock = srt!.accept(listener!, addr, addrLen);
      if (sock < 0) return;
      const s: Session = {
        id: randomBytes(12).toString('base64url'),
        sock,
        remoteAddress: normalizeAddress(readSockaddr(addr.subarray(0, addrLen.readInt32LE(0))).address),
        state: 'checking',
        stats: new FlvStats('srt'),
        resolution: {},
        lastMediaAt: Date.now(),
        tsBytes: 0,
        bytes: 0,
      };
      sessions.set(sock, s);
      admit(s).catch((err: unknown) => {
        log.error({ err, sessionId: s.id }, 'srt session setup failed');
        if (s.state === 'checking') refuse(s, 'feed_error');
        else finish(s, 'setup failed');
      });
    }
  }

  /** Waits for socket events on a worker thread, handles them on ours, and again until stopped. */
  function poll(): Promise<void> {
    const events = Buffer.alloc(8 * MAX_EVENTS);
    return new Promise<void>((resolve) => {
      const wait = () => {
        const calledAt = Date.now();
        srt!.epoll_uwait.async(eid!, events, MAX_EVENTS, POLL_MS, (err, n) => {
          if (stopped) return resolve();
          if (err || n < 0) {
            // A failing wait that returns at once must not spin (libsrt's error is the worker thread's: not readable here).
            if (err) log.error({ err }, 'srt poll failed');
            if (Date.now() - calledAt < POLL_MS / 2) {
              setTimeout(wait, POLL_MS).unref();
              return;
            }
          }
          for (let i = 0; i < (n > 0 ? n : 0); i++) {
            const fd = events.readInt32LE(i * 8);
            const ev = events.readInt32LE(i * 8 + 4);
            try {
              if (fd === listener) acceptAll();
              else {
                const s = sessions.get(fd);
                if (s?.state === 'live') drain(s, ev);
                else srt!.epoll_remove_usock(eid!, fd);
              }
            } catch (e) {
              log.error({ err: e }, 'srt socket handling failed');
            }
          }
          wait();
        });
      };
      wait();
    });
  }

  function checkHealth(): void {
    for (const s of [...sessions.values()]) {
      if (s.state !== 'live' || !s.eventId) continue;
      if (Date.now() - s.lastMediaAt > MEDIA_TIMEOUT_MS) {
        finish(s, 'no media');
        continue;
      }
      reportHealth(deps.onHealth, log, s.eventId, s);
    }
  }

  function setFlag(sock: number, opt: number, value: Buffer, what: string): void {
    if (srt!.setsockflag(sock, opt, value, value.length) < 0) throw new Error(`SRT ingest cannot set ${what}: ${lastError()}`);
  }

  return {
    get port() {
      return boundPort;
    },

    async start() {
      if (config.srtIngest === 'off') {
        log.info('srt ingest off (ONAIR_SRT_INGEST=off)');
        return;
      }
      if (listener !== undefined) throw new Error('SRT ingest already started');
      const lib = libsrt();
      srt = lib;
      const sock = lib.create_socket();
      if (sock < 0) throw new Error(`SRT ingest cannot create a socket: ${lastError()}`);
      try {
        // Set on the listener, inherited by every accepted socket.
        setFlag(sock, SRTO.RCVSYN, intOpt(0), 'non-blocking receive');
        setFlag(sock, SRTO.SNDSYN, intOpt(0), 'non-blocking send');
        setFlag(sock, SRTO.RCVLATENCY, intOpt(config.srtLatencyMs), 'the latency');
        if (config.srtPassphrase) setFlag(sock, SRTO.PASSPHRASE, Buffer.from(config.srtPassphrase), 'the passphrase');
        const addr = sockaddr(config.host, config.srtPort);
        if (lib.bind(sock, addr, addr.length) < 0) {
          throw new Error(`SRT ingest cannot listen on ${config.host}:${config.srtPort} (UDP): ${lastError()}`);
        }
        const bound = Buffer.alloc(28);
        const boundLen = intOpt(bound.length);
        lib.getsockname(sock, bound, boundLen);
        hook = lib.registerHook(onHandshake);
        if (lib.listen_callback(sock, hook, null) < 0) throw new Error(`SRT ingest cannot install its handshake check: ${lastError()}`);
        if (lib.listen(sock, BACKLOG) < 0) throw new Error(`SRT ingest cannot listen: ${lastError()}`);
        eid = lib.epoll_create();
        if (eid < 0) throw new Error(`SRT ingest cannot create its poller: ${lastError()}`);
        if (lib.epoll_add_usock(eid, sock, intOpt(SRT_EPOLL.IN | SRT_EPOLL.ERR)) < 0) {
          throw new Error(`SRT ingest cannot poll its listener: ${lastError()}`);
        }
        boundPort = readSockaddr(bound.subarray(0, boundLen.readInt32LE(0))).port;
      } catch (err) {
        await new Promise((resolve) => lib.close.async(sock, resolve));
        if (eid !== undefined && eid >= 0) lib.epoll_release(eid);
        eid = undefined;
        if (hook) lib.unregisterHook(hook);
        hook = undefined;
        throw err;
      }
      listener = sock;
      stopped = false;
      poller = poll();
      healthTimer = setInterval(checkHealth, config.healthIntervalSec * 1000);
      healthTimer.unref();
      log.info(
        { host: config.host, port: boundPort, latencyMs: config.srtLatencyMs, encrypted: Boolean(config.srtPassphrase) },
        'srt ingest listening',
      );
    },

    async stop() {
      if (listener === undefined || !srt) return;
      const lib = srt;
      stopped = true;
      clearInterval(healthTimer);
      healthTimer = undefined;
      const exits = [...sessions.values()].map((s) => s.exited);
      for (const s of [...sessions.values()]) {
        if (s.state === 'live') finish(s, 'ingest stopping');
        else refuse(s, 'stopping');
      }
      await poller;
      poller = undefined;
      const sock = listener;
      listener = undefined;
      await new Promise((resolve) => lib.close.async(sock, resolve));
      if (eid !== undefined) lib.epoll_release(eid);
      eid = undefined;
      // Once the listener is closed libsrt calls the hook no more.
      if (hook) lib.unregisterHook(hook);
      hook = undefined;
      await Promise.all(exits);
      log.info({ port: boundPort }, 'srt ingest stopped');
      boundPort = undefined;
    },

    disconnect(eventId) {
      const s = [...sessions.values()].find((x) => x.eventId === eventId && x.state === 'live');
      if (!s) return false;
      finish(s, 'disconnected');
      return true;
    },

    isLive: (eventId) => [...sessions.values()].some((s) => s.eventId === eventId && s.state === 'live'),
  };
}

/** ffmpeg arguments of a session's remux: MPEG-TS on stdin, FLV on stdout; H.264 copied, audio (if any) made AAC. */
export function remuxArgs(audioKbps: number): string[] {
  return [
    '-hide_banner',
    '-loglevel',
    'warning',
    '-nostdin',
    '-analyzeduration',
    '2000000',
    '-f',
    'mpegts',
    '-i',
    'pipe:0',
    '-map',
    '0:v:0',
    '-map',
    '0:a:0?',
    '-c:v',
    'copy',
    // Hardware encoders often send MP2 or AC-3 in TS; the feed carries AAC.
    '-c:a',
    'aac',
    '-b:a',
    `${audioKbps}k`,
    '-ar',
    '48000',
    '-ac',
    '2',
    '-f',
    'flv',
    '-flvflags',
    'no_duration_filesize',
    'pipe:1',
  ];
}
