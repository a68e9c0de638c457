// The origin role: turns live feeds into LL-HLS and serves it to edges over HTTP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, Histogram, Gauge, type Registry } from '../lib/metrics.ts';
import { closeServer, listen } from '../lib/http.ts';
import { ffmpegLogCounter } from '../lib/ffmpeg-log.ts';
import type { FeedSink } from '../ingest/feed.ts';
import type { LatencyMode } from '../lib/store/schema.ts';
import { LiveStream } from './live-stream.ts';
import { createOriginHlsHandler } from './hls-server.ts';

/** What the origin tells its parent about an event's lifecycle. */
export interface OriginParent {
  /** A publisher started (`live`) or the reconnect window ran out (`offline`). */
  onStatus(eventId: string, status: 'live' | 'offline'): void;
  /** The event's latency mode (`low`: LL-HLS, `standard`: plain HLS), looked up when its stream starts. */
  latencyMode(eventId: string): Promise<LatencyMode>;
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
        s.on('offline', () => {
          if (streams.get(eventId) === created) streams.delete(eventId);
          logger.info({ eventId }, 'event offline');
          parent.onStatus(eventId, 'offline');
        });
      }
      logger.info({ eventId, protocol: source.protocol, session: source.sessionId, timeline: source.timeline }, 'feed attached');
      parent.onStatus(eventId, 'live');
      return s.attach(source.timeline);
    },
  };

  const handler = createOriginHlsHandler({ config, streams: (id) => streams.get(id) });
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
      streams.clear();
      await closeServer(server, 500);
    },
  };
}
