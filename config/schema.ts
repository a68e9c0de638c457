// The one typed source of onair's configuration: every setting, its default and its meaning.
import { z } from 'zod';
import { trustedProxyEntryError } from '../lib/client-address.ts';
import { frameAncestorsError } from '../lib/page-headers.ts';
import { GOP_RANGE, PART_HOLD_BACK_PARTS, PART_TARGET_RANGE, timingIssue } from './timing.ts';

/** One rung of the adaptive ladder the origin encodes. */
export const renditionSchema = z
  .object({
    /** Name used in URLs (`/live/<event>/<name>/index.m3u8`); letters, digits, dash. */
    name: z.string().regex(/^[a-z0-9-]{1,32}$/, 'lower-case letters, digits and dashes'),
    /**
     * Output short side in pixels: the height of a landscape source, the width of a portrait one; the other side
     * follows the source aspect ratio (rounded to even). Rungs above the source's short side are dropped.
     */
    height: z.number().int().min(90).max(4320),
    /**
     * Highest output frame rate (fractions allowed: 29.97). The rung runs at the source rate divided by the smallest
     * whole number that reaches it (never duplicated frames). Omitted: the source rate, up to 60 for the top rung
     * and up to 30 for the others (59.94 → 59.94 on top, 29.97 below).
     */
    fps: z.number().min(1).max(120).optional(),
    /** Target video bitrate in kbit/s. */
    videoKbps: z.number().int().min(50).max(50_000),
  })
  .strict();

export type Rendition = z.infer<typeof renditionSchema>;

/**
 * Server roles `onair start` runs: `all` (every role in one process), or any of `ingest` (RTMP and WHIP publishers),
 * `origin` (transcode and package), `edge` (HLS cache and chat), `control` (API and console), several per process.
 */
export const roles = ['all', 'ingest', 'origin', 'edge', 'control'] as const;
export type Role = (typeof roles)[number];

/** The roles of a process, as `--role` and ONAIR_ROLE give them: `all` alone, or a list of distinct single roles. */
const roleList = z
  .array(z.enum(roles, { error: `one of ${roles.join(', ')}` }))
  .min(1)
  .refine((l) => !l.includes('all') || l.length === 1, '`all` runs every role; list it alone')
  .refine((l) => new Set(l).size === l.length, 'each role once');

const port = z.number().int().min(0).max(65535);

/** A list of address ranges: `loopback`, `linklocal`, `uniquelocal`, addresses and CIDRs. */
const addressRanges = z.array(
  z.string().superRefine((e, ctx) => {
    const err = trustedProxyEntryError(e);
    if (err) ctx.addIssue({ code: 'custom', message: err });
  }),
);

/**
 * Rules that tie several settings together: the segment, part and GOP timing (config/timing.ts timingIssue, shared
 * with each event's overrides) and distinct ports.
 */
function checkAcrossKeys(
  c: {
    role: Role[];
    segmentTargetSec: number;
    partTargetSec: number;
    gopSec: number;
    httpPort: number;
    rtmpPort: number;
    originPort: number;
  },
  ctx: z.RefinementCtx,
): void {
  const issue = timingIssue(c);
  if (issue) ctx.addIssue({ code: 'custom', path: [issue.key], message: issue.message });
  // An edge binds its HTTP port only.
  if (c.role.length === 1 && c.role[0] === 'edge') return;
  const ports: [string, number][] = [
    ['httpPort', c.httpPort],
    ['rtmpPort', c.rtmpPort],
    ['originPort', c.originPort],
  ];
  for (let i = 0; i < ports.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, pa] = ports[j]!;
      const [b, pb] = ports[i]!;
      if (pa !== 0 && pa === pb) {
        ctx.addIssue({
          code: 'custom',
          path: [b],
          message: `port ${pb} is already ${envNameOf(a)}; give each server its own port (or 0 for a free one)`,
        });
      }
    }
  }
}

/** `httpPort` → `ONAIR_HTTP_PORT` (config/load.ts has the same rule; kept here so the schema has no import cycle). */
function envNameOf(key: string): string {
  return 'ONAIR_' + key.replace(/[A-Z]/g, (ch) => '_' + ch).toUpperCase();
}

export const configSchema = z
  .object({
    /** Which role(s) this process runs (comma-separated). */
    role: roleList.default(['all']),
    /** Public HTTP port: player, console, API, HLS, WebSocket, WHIP, /metrics, /healthz. 0 picks a free port. */
    httpPort: port.default(8080),
    /** Address the public HTTP, RTMP and SRT servers bind to (an IP address for SRT). */
    host: z.string().min(1).default('0.0.0.0'),
    /** RTMP ingest port. */
    rtmpPort: port.default(1935),
    /** SRT ingest (UDP port `srtPort`): `on`, or `off` for no SRT listener. */
    srtIngest: z.enum(['on', 'off']).default('on'),
    /** SRT ingest UDP port (`srt://host:<port>?streamid=publish:<stream key>`). 0 picks a free port. */
    srtPort: port.default(8890),
    /**
     * SRT receive latency in ms: how long the listener waits for a lost packet's retransmission before playing on
     * without it. The connection uses the larger of this and the publisher's own latency; about 4 × the round trip.
     */
    srtLatencyMs: z.number().int().min(20).max(10_000).default(200),
    /** SRT passphrase (AES encryption, 10–79 characters, libsrt's limits); publishers must give the same. Unset: none. Never logged. */
    srtPassphrase: z.string().min(10).max(79).optional(),
    /**
     * Extra addresses WHIP ingest offers as ICE host candidates besides the machine's own interfaces: the
     * public IP of a server behind 1:1 NAT, or 127.0.0.1 for a publisher on the same machine.
     */
    whipIceAddresses: z.array(z.union([z.ipv4(), z.ipv6()])).default([]),
    /** UDP port range (`min-max`) for WHIP's ICE, to open in a firewall. Unset: any free port. */
    whipIcePorts: z
      .string()
      .regex(/^\d{1,5}-\d{1,5}$/, 'min-max, e.g. 40000-40999')
      .refine((r) => {
        const [min, max] = r.split('-').map(Number) as [number, number];
        return min >= 1024 && max <= 65535 && min < max;
      }, 'ports 1024–65535, min below max')
      .optional(),
    /**
     * Most WHEP (real-time WebRTC) viewers this node serves at once, over every event; beyond it a viewer is
     * refused (503 `whep_full`) and the watch page plays LL-HLS. 0 turns WHEP playback off.
     */
    whepMaxViewers: z.number().int().min(0).max(10_000).default(50),
    /**
     * Peers trusted to report their client's address (X-Forwarded-For on HTTP, WebSocket and WHIP; the PROXY
     * protocol on RTMP): `loopback`, `linklocal`, `uniquelocal`, addresses and CIDRs. Every per-address limit,
     * log line and metric uses the client address this rule gives; from any other peer, headers are ignored.
     */
    trustedProxies: addressRanges.default(['loopback']),
    /** Bearer token `/metrics` asks for (`Authorization: Bearer <token>`), on every role. Unset: `/metrics` is open. */
    metricsToken: z.string().min(16).optional(),
    /** Origin's HTTP port (serves HLS to edges). 0 picks a free port; in all-in-one mode it binds 127.0.0.1 only. */
    originPort: port.default(0),
    /** Origin base URLs an edge pulls from, tried in order (cluster mode). Empty: the local origin. */
    originUrls: z.array(z.string().url()).default([]),
    /**
     * Shared secret (≥ 32 characters, the same on every node) that authenticates the cluster's internal traffic:
     * ingests pushing live feeds to origins. Required by the ingest and origin roles in cluster mode. Never logged.
     */
    clusterSecret: z.string().min(32).optional(),
    /** This node's id in the cluster (origin registry, event placement, logs). Default `<hostname>-<pid>`. */
    nodeId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, dot, dash and underscore, at most 64')
      .optional(),
    /** Origins that carry each live event in cluster mode (replicas transcoding the same feed). Unset: 2 when the pool has 2 or more, else 1. */
    replicas: z.number().int().min(1).max(5).optional(),
    /** Most live events this origin accepts; a publish finding every origin full is refused. 0: one per CPU core. */
    originCapacity: z.number().int().min(0).max(1000).default(0),
    /** Base URL ingests and edges reach this origin on (cluster mode). Default `http://<host>:<originPort>` (127.0.0.1 for 0.0.0.0). */
    originAdvertiseUrl: z.string().url().optional(),
    /** Base URL viewers use to reach this server, for the URLs the CLI prints. Default http://<hostname>:<httpPort>. */
    publicUrl: z.string().url().optional(),
    /** Directory holding the SQLite database and other state. */
    dataDir: z.string().min(1).default('./data'),
    /** `on`: record every event unless the event says otherwise (its `recording` field); `off`: only events that ask. */
    recording: z.enum(['on', 'off']).default('on'),
    /**
     * Where recordings are stored. Unset: `<dataDir>/recordings` on local disk. `s3://bucket/prefix?endpoint=URL&region=R`
     * (`forcePathStyle` is used; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) for S3-compatible storage,
     * required in a cluster so that every node reads the same recordings.
     */
    storageUrl: z
      .string()
      .regex(
        /^(s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/[^?]*)?(\?.*)?|file:\/\/.+)$/,
        'an s3://bucket[/prefix][?endpoint=...&region=...] or file:///dir URL',
      )
      .optional(),
    /** Recordings that ended more than this many days ago are deleted (checked hourly by control nodes); 0 keeps them. */
    recordingRetentionDays: z.number().min(0).max(36_500).default(0),
    /**
     * DVR window in seconds: while an event is live, its playlists also list the recorded segments of this many
     * seconds back (read from recording storage), so viewers can seek back; 0 turns DVR off. Each event may set its
     * own (`dvrWindowSec`). Needs recording on for the event: without a recording only the live window is offered.
     */
    dvrWindowSec: z.number().int().min(0).max(86_400).default(7200),
    /** Bytes of recording writes an origin queues before the recording is marked failed (the store is too slow). */
    recordingQueueBytes: z.number().int().min(1_048_576).max(4_294_967_296).default(268_435_456),
    /** Media seconds between two live thumbnails (and seek-preview tiles) of the lowest rung; 0 turns thumbnails off. */
    thumbnailIntervalSec: z.number().min(0).max(600).default(10),
    /** Log level (pino). */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** ffmpeg executable. */
    ffmpegPath: z.string().min(1).default('ffmpeg'),
    /** x264 preset for the ladder. */
    x264Preset: z.enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium']).default('veryfast'),
    /** Segment target duration in seconds; every segment starts on a forced keyframe. */
    segmentTargetSec: z.number().min(1).max(10).default(2),
    /**
     * LL-HLS part target duration in seconds (one fMP4 fragment per part). 0.2 s: PART-HOLD-BACK (2.5 parts) is 0.5 s,
     * and 0.2 s is a whole number of frames at 25, 30, 50 and 60 fps.
     */
    partTargetSec: z.number().min(PART_TARGET_RANGE.min).max(PART_TARGET_RANGE.max).default(0.2),
    /**
     * Keyframe interval of the ladder in seconds: a whole number of parts that splits the segment target into whole
     * GOPs. Every keyframe starts an independent part (INDEPENDENT=YES), where a player may join; 1 s cost 2–8 % more
     * bitrate than 2 s at equal quality on a 540p source (README, GOP).
     */
    gopSec: z.number().min(GOP_RANGE.min).max(GOP_RANGE.max).default(1),
    /**
     * PART-HOLD-BACK, the distance from the live edge an LL-HLS player keeps, in parts (PART_HOLD_BACK_PARTS): 2.5
     * (0.5 s at 0.2 s parts); the RFC's floor is 2 (MUST) and its SHOULD 3. Lower plays closer to live and leaves
     * less room for a late part.
     */
    partHoldBackParts: z.number().min(PART_HOLD_BACK_PARTS.min).max(PART_HOLD_BACK_PARTS.max).default(PART_HOLD_BACK_PARTS.default),
    /**
     * Complete segments kept in the live playlist window (at least 6). The default 12 (24 s at 2 s segments)
     * reaches well past the LL-HLS skip boundary (CAN-SKIP-UNTIL = 6 target durations = 12 s), so a delta
     * update (`_HLS_skip=YES`) really replaces ~6 segments with EXT-X-SKIP; with 6, nothing would be skipped.
     */
    windowSegments: z.number().int().min(6).max(100).default(12),
    /**
     * Latency mode of events created without one: `low` serves LL-HLS (parts, preload hints, blocking
     * reload, delta updates); `standard` plain HLS (whole segments only), for comparison and for CDNs
     * that cannot hold requests. Each event stores its own mode (`onair event create --latency`).
     */
    defaultLatencyMode: z.enum(['low', 'standard']).default('low'),
    /** A publisher that returns within this many seconds continues the same event. */
    reconnectWindowSec: z.number().min(0).max(300).default(10),
    /** Audio bitrate per rendition in kbit/s (AAC-LC, stereo, 48 kHz). */
    audioKbps: z.number().int().min(32).max(512).default(128),
    /** The adaptive ladder, cut by the source's short side; rungs above it are dropped, never upscaled. */
    ladder: z
      .array(renditionSchema)
      .min(1)
      .default([
        { name: '720p', height: 720, videoKbps: 2800 },
        { name: '480p', height: 480, videoKbps: 1200 },
        { name: '360p', height: 360, videoKbps: 700 },
      ])
      .refine((l) => new Set(l.map((r) => r.name)).size === l.length, 'rendition names must be unique')
      .refine((l) => l.every((r) => r.name !== 'source'), '"source" names the passthrough rendition; pick another rung name'),
    /**
     * Ladder preset of events created without one: `standard` (the source's H.264 copied as the "source" rendition,
     * plus the ladder's rungs below it), `passthrough` (the source rendition only), `audio` (one AAC rendition),
     * `custom` (the ladder's encoded rungs only). Each event stores its own.
     */
    defaultLadderPreset: z.enum(['standard', 'passthrough', 'audio', 'custom']).default('standard'),
    /** Edge cache budget in bytes. */
    edgeCacheBytes: z
      .number()
      .int()
      .min(1 << 20)
      .default(256 * 1024 * 1024),
    /** Edge upstream request timeout in milliseconds. */
    edgeUpstreamTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Edge worker processes (`--role edge`), each a complete edge on the shared port. 0: one per CPU core. */
    edgeWorkers: z.number().int().min(0).max(256).default(0),
    /**
     * Stale-if-error bound for live playlists, in ms: when no origin answers, the edge serves the last good
     * media playlist while it is at most this old (default one 2 s segment target), then 502/504.
     * A blocking reload gets a stale playlist only if it already holds the requested segment/part.
     */
    edgeStaleIfErrorMs: z.number().int().min(0).max(60_000).default(2_000),
    /** A client that takes no response bytes for this long is disconnected (slow-client guard), in ms. */
    edgeClientStallMs: z.number().int().min(1_000).max(600_000).default(15_000),
    /** Most bytes the edge queues for one client beyond the object being sent before cutting it off. */
    edgeClientBufferBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(4 * 1024 * 1024),
    /** Operator console session lifetime in hours (httpOnly SameSite=Strict cookie). */
    sessionTtlHours: z
      .number()
      .min(0.1)
      .max(24 * 30)
      .default(12),
    /** Failed logins allowed per e-mail and address within `loginWindowSec` before logins are refused (HTTP 429). */
    loginMaxFailures: z.number().int().min(1).max(1000).default(5),
    /** Window (and lock-out) of the login failure limit, in seconds. */
    loginWindowSec: z.number().int().min(1).max(86_400).default(900),
    /** How often ingest reports health per live event, in seconds (kept for an hour, streamed to the console). */
    healthIntervalSec: z.number().min(0.5).max(60).default(2),
    /** Webhook delivery attempts before a delivery is marked failed. */
    webhookMaxAttempts: z.number().int().min(1).max(20).default(6),
    /** First webhook retry delay in ms; each further retry doubles it (with jitter), capped at 10 minutes. */
    webhookRetryBaseMs: z.number().int().min(10).max(600_000).default(2_000),
    /** Webhook request timeout in ms. */
    webhookTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /**
     * Destinations webhooks may reach although refused by default (loopback, private, link-local, CGNAT, multicast,
     * reserved): addresses, CIDRs, or `loopback`, `linklocal`, `uniquelocal`. Checked on the resolved address at send time.
     */
    webhookAllowCidrs: addressRanges.default([]),
    /**
     * Where the watch page may be embedded: a CSP `frame-ancestors` source list. `*` (anywhere) by default, as embedding
     * the player is what a live-streaming page is for; `'self'` or a list of origins restricts it, `'none'` forbids it.
     * The console is never embeddable.
     */
    watchFrameAncestors: z
      .string()
      .superRefine((v, ctx) => {
        const err = frameAncestorsError(v);
        if (err) ctx.addIssue({ code: 'custom', message: err });
      })
      .default('*'),
    /** Ad creative the player shows during ad breaks (image or video URL); unset: a slate. */
    adCreativeUrl: z.string().url().optional(),
    /** Redis URL for the chat bus, presence and rate limits (cluster mode); comma-separated seed URLs mean Redis Cluster. Falls back to `REDIS_URL`; unset: in-process. */
    redisUrl: z.string().min(1).optional(),
    /**
     * PostgreSQL URL (`postgres://user:password@host:5432/db`) for the store (cluster mode: every node shares it).
     * Falls back to `DATABASE_URL`; unset: SQLite under `dataDir`. Never logged.
     */
    databaseUrl: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')
      .optional(),
    /** Bus channels on Redis: `pubsub` (PUBLISH/SUBSCRIBE) or `sharded` (Redis 7 SPUBLISH/SSUBSCRIBE, for Redis Cluster). */
    busChannelMode: z.enum(['pubsub', 'sharded']).default('pubsub'),
    /** HMAC secret for viewer tokens (≥ 32 characters, the same on every node). Unset: generated once into the data dir. */
    viewerTokenSecret: z.string().min(32).optional(),
    /** Viewer token lifetime in seconds. */
    viewerTokenTtlSec: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(86_400),
    /** Viewer tokens (`POST /api/v1/viewers`) one client address may get per second, sustained (token bucket). */
    viewerTokensPerSec: z.number().positive().default(0.2),
    /** Viewer tokens one client address may get at once (the bucket's burst). */
    viewerTokenBurst: z.number().int().min(1).default(10),
    /** WebSocket flush window in ms: each client gets at most one batch frame per window; reactions are counted per window. */
    wsFlushMs: z.number().int().min(20).max(5_000).default(200),
    /** Period in ms at which each edge reports its viewer counts and refreshes totals. */
    wsViewerCountMs: z.number().int().min(200).max(60_000).default(2_000),
    /** Most WebSocket connections from one IP address per edge. */
    wsMaxConnectionsPerIp: z.number().int().min(1).default(50),
    /** Bytes queued for one client beyond which it is closed as a slow consumer (close code 4409). */
    wsMaxBufferedBytes: z
      .number()
      .int()
      .min(16 * 1024)
      .default(1024 * 1024),
    /** Largest client message in bytes answered with an error; frames over 16× this close the connection (1009). */
    wsMaxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(4096),
    /** Per-viewer comment bucket: sustained comments per second and burst. Per IP: × `chatIpFactor`. */
    chatCommentsPerSec: z.number().positive().default(1),
    /** Per-viewer comment burst. */
    chatCommentBurst: z.number().int().min(1).default(5),
    /** Per-viewer reactions per second. */
    chatReactionsPerSec: z.number().positive().default(10),
    /** Per-viewer reaction burst. */
    chatReactionBurst: z.number().int().min(1).default(30),
    /** Per-viewer like/dislike changes per second. */
    chatLikesPerSec: z.number().positive().default(1),
    /** Per-viewer like/dislike burst. */
    chatLikeBurst: z.number().int().min(1).default(5),
    /** Per-IP buckets are this many times the per-viewer ones (several viewers share an address). */
    chatIpFactor: z.number().min(1).default(20),
  })
  .strict()
  .superRefine(checkAcrossKeys);

export type Config = z.infer<typeof configSchema>;
