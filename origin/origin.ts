// The origin role: turns live feeds into LL-HLS and serves it to edges over HTTP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Histogram, Gauge, type Registry } from '../lib/metrics.ts';
import { closeServer, listen } from '../lib/http.ts';
import { ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import type { FeedSink } from '../ingest/feed.ts';
import type { LadderPreset, LatencyMode } from '../lib/store/schema.ts';
import { LiveStream } from './live-stream.ts';
import { createOriginHlsHandler } from './hls-server.ts';
import type { Storage } from '../lib/storage/storage.ts';
import { Recorder, type RecordingHooks } from './recording/recorder.ts';
import { DEFAULT_WRITE_QUEUE, type WriteQueueOptions } from './recording/write-queue.ts';
import { createReplay } from './recording/replay.ts';
import { variantFor } from './playlist.ts';
import { Thumbnailer } from './thumbnails/thumbnailer.ts';
import { resolveTiming, timingOf } from '../config/timing.ts';

/** A recording's poster is the live thumbnail taken at about this many media seconds (past a black or title opening). */
const POSTER_AT_SEC = 30;

/** What the origin tells its parent about an event's lifecycle. */
export interface OriginParent {
  /** A publisher started (`live`) or the reconnect window ran out (`offline`). */
  onStatus(eventId: string, status: 'live' | 'offline'): void;
  /** The event's latency mode (`low`: LL-HLS, `standard`: plain HLS), looked up when its stream starts. */
  latencyMode(eventId: string): Promise<LatencyMode>;
  /** The event's DVR window in seconds (0: off), looked up when its stream starts; absent: the config's. */
  dvrWindowSec?(eventId: string): Promise<number>;
  /** The event's ladder preset (null or absent: the config's default), looked up when its stream starts. */
  ladderPreset?(eventId: string): Promise<LadderPreset | null>;
  /**
   * The event's part target and GOP in seconds (null each, or absent: the config's ONAIR_PART_TARGET_SEC /
   * ONAIR_GOP_SEC), looked up when its stream starts; they hold for the whole stream.
   */
  timing?(eventId: string): Promise<{ partTargetSec: number | null; gopSec: number | null }>;
}

/** The running origin. */
export interface Origin {
  /** Where ingest writes live feeds. */
  readonly feeds: FeedSink;
  /** Base URL edges pull from (valid after start). */
  readonly url: string;
  /** The live stream of an event, if any. */
  stream(eventId: string): LiveStream | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the origin from config; `bindHost` is 127.0.0.1 in all-in-one mode. */
export function createOrigin(deps: {
  config: Config;
  logger: Logger;
  registry: Registry;
  parent: OriginParent;
  bindHost: string;
  /** Other routes of the origin's port, tried first (cluster: the feed receiver); true when one took the request. */
  routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /**
   * Recording: every broadcast is written to `storage` (when `hooks.begin` says so), and an event that is not live
   * is served from its newest recording as VOD. Absent: nothing is recorded or replayed.
   */
  recording?: { storage: Storage; hooks: RecordingHooks; queue?: Partial<WriteQueueOptions>; replay?: boolean };
}): Origin {
  const { config, parent, registry } = deps;
  const logger = deps.logger.child({ role: 'origin' });
  const streams = new Map<string, LiveStream>();
  const ffmpegRuns = new Counter({
    name: 'onair_origin_ffmpeg_runs_total',
    help: 'ffmpeg ladder processes started',
    registers: [registry],
  });
  const ffmpegRestarts = new Counter({
    name: 'onair_origin_ffmpeg_restarts_total',
    help: 'ffmpeg processes that died while the publisher was still sending',
    registers: [registry],
  });
  const parts = new Counter({
    name: 'onair_origin_parts_total',
    help: 'LL-HLS parts produced',
    labelNames: ['rendition'],
    registers: [registry],
  });
  const partLag = new Histogram({
    name: 'onair_origin_part_lag_seconds',
    help: "from the ingest of a part's last frame to the part being ready (decode, ladder encode, packaging; grows when ffmpeg falls behind)",
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
    registers: [registry],
  });
  const segments = new Counter({
    name: 'onair_origin_segments_total',
    help: 'HLS segments produced',
    labelNames: ['rendition'],
    registers: [registry],
  });
  const segmentBytes = new Counter({
    name: 'onair_origin_segment_bytes_total',
    help: 'bytes of HLS segments produced',
    labelNames: ['rendition'],
    registers: [registry],
  });
  const segmentDuration = new Histogram({
    name: 'onair_origin_segment_duration_seconds',
    help: 'duration of produced segments',
    buckets: [0.5, 1, 1.5, 1.9, 2.1, 2.5, 3, 4, 6],
    registers: [registry],
  });
  new Gauge({
    name: 'onair_origin_live_streams',
    help: 'events with a live stream at this origin',
    registers: [registry],
    collect() {
      this.set(streams.size);
    },
  });

  /** By stream: a new broadcast of an event may start while the previous one's recording is still closing. */
  const recorders = new Map<LiveStream, Recorder>();
  const recordingFailures = new Counter({
    name: 'onair_origin_recording_failures_total',
    help: 'recordings that failed (storage failing or too slow); live went on',
    registers: [registry],
  });
  new Gauge({
    name: 'onair_origin_recording_queue_bytes',
    help: 'recording bytes waiting for storage',
    registers: [registry],
    collect() {
      let n = 0;
      for (const r of recorders.values()) n += r.pendingBytes;
      this.set(n);
    },
  });
  new Gauge({
    name: 'onair_origin_recordings_active',
    help: 'broadcasts being recorded at this origin',
    registers: [registry],
    collect() {
      let n = 0;
      for (const r of recorders.values()) if (r.state === 'recording') n++;
      this.set(n);
    },
  });
  const recording = deps.recording && {
    ...deps.recording,
    hooks: {
      ...deps.recording.hooks,
      failed: (r, reason) => {
        recordingFailures.inc();
        deps.recording!.hooks.failed(r, reason);
      },
    } satisfies RecordingHooks,
  };
  /** By stream, like recorders: the live thumbnails of each broadcast (none when off). */
  const thumbnailers = new Map<LiveStream, Thumbnailer>();
  const thumbnailCpu = new Counter({
    name: 'onair_origin_thumbnail_cpu_seconds_total',
    help: 'CPU seconds the thumbnail ffmpeg jobs used (live thumbnails, seek-preview tiles and sprite sheets)',
    registers: [registry],
  });
  const startThumbnailer = (s: LiveStream) => {
    if (config.thumbnailIntervalSec <= 0) return;
    let posterFinal = false;
    const t = new Thumbnailer({
      ffmpegPath: config.ffmpegPath,
      intervalSec: config.thumbnailIntervalSec,
      logger: logger.child({ eventId: s.eventId }),
      cpu: (sec) => thumbnailCpu.inc(sec),
      hooks: {
        thumbnail(jpeg, mediaSec) {
          // Replaced until the broadcast is POSTER_AT_SEC old, then kept.
          if (posterFinal) return;
          posterFinal = mediaSec >= POSTER_AT_SEC;
          recorders.get(s)?.storePoster(jpeg);
        },
        sheet(n, jpeg, tileMsns) {
          if (t.tileSize) recorders.get(s)?.storeSheet(n, jpeg, tileMsns, t.tileSize);
        },
      },
    });
    thumbnailers.set(s, t);
    // The lowest video rung (the ladder is planned before its packagers exist).
    let attached = false;
    s.on('packager', (p) => {
      const video = s.renditions.filter((r) => r.audioOnly !== true && r.width > 0 && r.height > 0);
      const lowest = video.reduce<(typeof video)[number] | undefined>(
        (a, r) => (a === undefined || r.height < a.height ? r : a),
        undefined,
      );
      if (attached || lowest?.name !== p.name) return;
      attached = true;
      t.attach(p, { width: lowest.width, height: lowest.height });
    });
  };
  const startRecorder = (s: LiveStream) => {
    if (!recording) return;
    const r = new Recorder({
      eventId: s.eventId,
      zeroMs: s.feedTimeline.zeroMs,
      storage: recording.storage,
      queue: { ...DEFAULT_WRITE_QUEUE, maxBytes: config.recordingQueueBytes, ...recording.queue },
      hooks: recording.hooks,
      logger: logger.child({ eventId: s.eventId }),
      segmentTargetSec: config.segmentTargetSec,
      variants: () =>
        s.renditions.flatMap((rung) => {
          const p = s.packagers.get(rung.name);
          return p ? [variantFor(rung, p, config.audioKbps)] : [];
        }),
    });
    for (const p of s.packagers.values()) r.attach(p);
    s.on('packager', (p) => r.attach(p));
    recorders.set(s, r);
    return r;
  };
  const endRecorder = async (s: LiveStream) => {
    // The last sprite sheet goes to the recording before it closes.
    await thumbnailers.get(s)?.finish();
    thumbnailers.delete(s);
    const r = recorders.get(s);
    if (!r) return;
    await r.end();
    recorders.delete(s);
  };

  const metrics = {
    ffmpegLogLines: ffmpegLogCounter(registry),
    ffmpegStarted: () => ffmpegRuns.inc(),
    ffmpegRestarted: () => ffmpegRestarts.inc(),
    part: (r: string, lagSec: number) => {
      parts.inc({ rendition: r });
      partLag.observe(lagSec);
    },
    segment: (r: string, sec: number, bytes: number) => {
      segments.inc({ rendition: r });
      segmentBytes.inc({ rendition: r }, bytes);
      segmentDuration.observe(sec);
    },
  };

  const feeds: FeedSink = {
    open(eventId, source) {
      let s = streams.get(eventId);
      if (!s) {
        s = new LiveStream(eventId, config, logger.child({ eventId }), metrics);
        streams.set(eventId, s);
        const created = s;
        // Settles before any playlist is served (the handler awaits it); the config default if the lookup fails.
        s.latencyMode = parent.latencyMode(eventId).catch((err: Error) => {
          logger.error({ eventId, err: err.message }, 'latency mode lookup failed; using the default');
          return config.defaultLatencyMode;
        });
        if (parent.dvrWindowSec) {
          s.dvrWindowSec = parent.dvrWindowSec(eventId).catch((err: Error) => {
            logger.error({ eventId, err: err.message }, 'DVR window lookup failed; using the default');
            return config.dvrWindowSec;
          });
        }
        if (parent.ladderPreset)
          s.setLadderPreset(
            parent
              .ladderPreset(eventId)
              .then((p) => p ?? config.defaultLadderPreset)
              .catch((err: Error) => {
                logger.error({ eventId, err: err.message }, 'ladder preset lookup failed; using the default');
                return config.defaultLadderPreset;
              }),
          );
        if (parent.timing)
          s.setTiming(
            parent
              .timing(eventId)
              .then((t) => {
                const { timing, issue } = resolveTiming(timingOf(config), t);
                if (issue)
                  logger.warn(
                    { eventId, [issue.key]: t[issue.key], reason: issue.message },
                    'event timing does not fit this node; using its settings',
                  );
                return timing;
              })
              .catch((err: Error) => {
                logger.error({ eventId, err: err.message }, 'event timing lookup failed; using the settings');
                return timingOf(config);
              }),
          );
        s.on('offline', () => {
          if (streams.get(eventId) === created) streams.delete(eventId);
          logger.info({ eventId }, 'event offline');
          parent.onStatus(eventId, 'offline');
          void endRecorder(created);
        });
        logger.info({ eventId, protocol: source.protocol, session: source.sessionId, timeline: source.timeline }, 'feed attached');
        parent.onStatus(eventId, 'live');
        startThumbnailer(s);
        const feed = s.attach(source.timeline);
        startRecorder(s);
        return feed;
      }
      logger.info({ eventId, protocol: source.protocol, session: source.sessionId, timeline: source.timeline }, 'feed attached');
      parent.onStatus(eventId, 'live');
      return s.attach(source.timeline);
    },
  };

  const replay = recording && recording.replay !== false ? createReplay({ storage: recording.storage, logger }) : undefined;
  const handler = createOriginHlsHandler({
    config,
    streams: (id) => streams.get(id),
    thumbnails: (id) => {
      const s = streams.get(id);
      return s && thumbnailers.get(s);
    },
    ...(replay ? { replay: replay.handle } : {}),
    // DVR lists what the stream's recording stored (nothing when the event is not recorded).
    dvr: (s) => recorders.get(s),
  });
  const server: Server = createServer(deps.routes ? (req, res) => void (deps.routes!(req, res) || handler(req, res)) : handler);
  server.keepAliveTimeout = 65_000;
  let url = '';

  return {
    feeds,
    get url() {
      return url;
    },
    stream: (id) => streams.get(id),
    async start() {
      const port = await listen(server, config.originPort, deps.bindHost);
      url = `http://${deps.bindHost === '0.0.0.0' ? '127.0.0.1' : deps.bindHost}:${port}`;
      logger.info({ url }, 'origin listening');
    },
    async stop() {
      for (const s of streams.values()) s.stop();
      await Promise.all([...streams.values()].map((s) => s.closed()));
      // What ffmpeg flushed is stored before the recordings are closed (each waits a bounded time).
      await Promise.all([...streams.values()].map((s) => endRecorder(s)));
      streams.clear();
      await closeServer(server, 500);
    },
  };
}
