// The one typed source of onair's configuration: every setting, its default and its meaning.
import { z } from 'zod';

/** One rung of the adaptive ladder the origin encodes. */
export const renditionSchema = z
  .object({
    /** Name used in URLs (`/live/<event>/<name>/index.m3u8`); letters, digits, dash. */
    name: z.string().regex(/^[a-z0-9-]{1,32}$/, 'lower-case letters, digits and dashes'),
    /** Output height in pixels; width follows the source aspect ratio (rounded to even). */
    height: z.number().int().min(90).max(4320),
    /** Output frame rate. */
    fps: z.number().int().min(1).max(120),
    /** Target video bitrate in kbit/s. */
    videoKbps: z.number().int().min(50).max(50_000),
  })
  .strict();

export type Rendition = z.infer<typeof renditionSchema>;

/** Server roles; `all` runs every role in one process. */
export const roles = ['all', 'ingest', 'origin', 'edge', 'control'] as const;
export type Role = (typeof roles)[number];

const port = z.number().int().min(0).max(65535);

export const configSchema = z
  .object({
    /** Which role(s) this process runs. */
    role: z.enum(roles).default('all'),
    /** Public HTTP port: player, console, API, HLS, WebSocket, WHIP, /metrics, /healthz. 0 picks a free port. */
    httpPort: port.default(8080),
    /** Address the public HTTP and RTMP servers bind to. */
    host: z.string().min(1).default('0.0.0.0'),
    /** RTMP ingest port. */
    rtmpPort: port.default(1935),
    /** Origin's HTTP port (serves HLS to edges). 0 picks a free port; in all-in-one mode it binds 127.0.0.1 only. */
    originPort: port.default(0),
    /** Origin base URLs an edge pulls from, tried in order (cluster mode). Empty: the local origin. */
    originUrls: z.array(z.string().url()).default([]),
    /** Base URL viewers use to reach this server, for the URLs the CLI prints. Default http://<hostname>:<httpPort>. */
    publicUrl: z.string().url().optional(),
    /** Directory holding the SQLite database and other state. */
    dataDir: z.string().min(1).default('./data'),
    /** Log level (pino). */
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** ffmpeg executable. */
    ffmpegPath: z.string().min(1).default('ffmpeg'),
    /** x264 preset for the ladder. */
    x264Preset: z
      .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium'])
      .default('veryfast'),
    /** Segment target duration in seconds; every segment starts on a forced keyframe. */
    segmentTargetSec: z.number().min(1).max(10).default(2),
    /** LL-HLS part target duration in seconds (one fMP4 fragment per part). */
    partTargetSec: z.number().min(0.1).max(2).default(0.5),
    /** Segments kept in the live playlist window (at least 6). */
    windowSegments: z.number().int().min(6).max(100).default(6),
    /** A publisher that returns within this many seconds continues the same event. */
    reconnectWindowSec: z.number().min(0).max(300).default(10),
    /** Audio bitrate per rendition in kbit/s (AAC-LC, stereo, 48 kHz). */
    audioKbps: z.number().int().min(32).max(512).default(128),
    /** The adaptive ladder; rungs above the source height are dropped, never upscaled. */
    ladder: z
      .array(renditionSchema)
      .min(1)
      .default([
        { name: '720p', height: 720, fps: 30, videoKbps: 2800 },
        { name: '480p', height: 480, fps: 30, videoKbps: 1200 },
        { name: '360p', height: 360, fps: 30, videoKbps: 700 },
      ])
      .refine((l) => new Set(l.map((r) => r.name)).size === l.length, 'rendition names must be unique'),
    /** Edge cache budget in bytes. */
    edgeCacheBytes: z.number().int().min(1 << 20).default(256 * 1024 * 1024),
    /** Edge upstream request timeout in milliseconds. */
    edgeUpstreamTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
