// Ingest health per live event: each ingest report (every few seconds) is merged with the origin's transcode
// stats into a sample with warnings, kept for an hour and pushed to live subscribers (the console's SSE stream).
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import { Counter, type Registry } from '../lib/metrics.ts';

/** What ingest reports (ingest/flv-stats.ts IngestStats satisfies it). */
export interface IngestReport {
  protocol: string;
  bitrateKbps: number;
  fps: number;
  keyframeIntervalSec: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  lateFrames: number;
  /** When the publish session started (ms since epoch); a new value resets the bitrate baseline. */
  publishStartedAt?: number;
}

/** What the origin reports about its ffmpeg run (origin/ffmpeg-progress.ts TranscodeStats satisfies it). */
export interface TranscodeReport {
  speed: number | null;
  fps: number | null;
  dropFrames: number;
  dupFrames: number;
  outTimeSec: number;
  at: number;
}

/** Why a sample is flagged. */
export type HealthWarningCode = 'keyframe_interval' | 'bitrate_collapse' | 'transcode_slow' | 'late_frames';

/** A warning shown on the console. */
export interface HealthWarning {
  code: HealthWarningCode;
  message: string;
}

/** One health sample of a live event. */
export interface HealthSample {
  /** ms since epoch. */
  at: number;
  protocol: string;
  bitrateKbps: number;
  fps: number;
  keyframeIntervalSec: number | null;
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  lateFrames: number;
  /** ffmpeg speed (1 = realtime); null before ffmpeg reports. */
  transcodeSpeed: number | null;
  transcodeFps: number | null;
  /** Frames ffmpeg dropped / duplicated since the previous sample. */
  droppedFrames: number;
  duplicatedFrames: number;
  warnings: HealthWarning[];
}

/** Health history and live updates. */
export interface HealthMonitor {
  /** Takes one ingest report for a live event (wire to the ingest's onHealth). */
  ingest(eventId: string, report: IngestReport): HealthSample;
  /** Samples of the last hour (or since `sinceMs`), oldest first. */
  history(eventId: string, sinceMs?: number): HealthSample[];
  /** The newest sample, if any. */
  latest(eventId: string): HealthSample | undefined;
  /** Calls `fn` for each new sample of `eventId`; returns the unsubscribe function. */
  subscribe(eventId: string, fn: (s: HealthSample) => void): () => void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** How long samples are kept. */
export const HEALTH_RETENTION_MS = 3600_000;
/** Bitrate below this fraction of the recent median is a collapse. */
const COLLAPSE_FRACTION = 0.3;
/** ffmpeg slower than this is below realtime. */
const SLOW_SPEED = 0.95;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Builds the health monitor; `transcodeStats` reads the origin's latest ffmpeg report of an event. */
export function createHealthMonitor(deps: {
  config: Pick<Config, 'segmentTargetSec' | 'healthIntervalSec'>;
  logger: Logger;
  registry: Registry;
  transcodeStats(eventId: string): TranscodeReport | undefined;
  now?: () => number;
}): HealthMonitor {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'health' });
  const samples = new Map<string, HealthSample[]>();
  const lastTranscode = new Map<string, { dropFrames: number; dupFrames: number; at: number }>();
  /** The current publish session of each event and the time of its first sample: the bitrate baseline starts there. */
  const publishes = new Map<string, { startedAt: number; since: number }>();
  const subscribers = new Map<string, Set<(s: HealthSample) => void>>();
  const warningsTotal = new Counter({
    name: 'onair_control_health_warnings_total',
    help: 'Ingest health warnings raised, by code.',
    labelNames: ['code'],
    registers: [deps.registry],
  });
  let pruner: NodeJS.Timeout | undefined;

  function prune(): void {
    const cutoff = now() - HEALTH_RETENTION_MS;
    for (const [id, list] of samples) {
      let i = 0;
      while (i < list.length && list[i]!.at < cutoff) i++;
      if (i) list.splice(0, i);
      if (list.length === 0) {
        samples.delete(id);
        lastTranscode.delete(id);
        publishes.delete(id);
      }
    }
  }

  return {
    ingest(eventId, r) {
      const at = now();
      const staleMs = 3 * deps.config.healthIntervalSec * 1000;
      const t = deps.transcodeStats(eventId);
      const tr = t && at - t.at <= staleMs ? t : undefined;
      const prevT = lastTranscode.get(eventId);
      // Counters restart with each ffmpeg run: a drop means a new run.
      const dropped = tr ? (prevT && tr.dropFrames >= prevT.dropFrames ? tr.dropFrames - prevT.dropFrames : tr.dropFrames) : 0;
      const duplicated = tr ? (prevT && tr.dupFrames >= prevT.dupFrames ? tr.dupFrames - prevT.dupFrames : tr.dupFrames) : 0;
      if (tr) lastTranscode.set(eventId, { dropFrames: tr.dropFrames, dupFrames: tr.dupFrames, at: tr.at });

      const list = samples.get(eventId) ?? [];
      const prev = list.at(-1);
      const warnings: HealthWarning[] = [];
      const target = deps.config.segmentTargetSec;
      if (r.keyframeIntervalSec !== null && Math.abs(r.keyframeIntervalSec - target) > Math.max(0.1, target * 0.1)) {
        warnings.push({
          code: 'keyframe_interval',
          message: `source keyframe interval is ${r.keyframeIntervalSec.toFixed(2)} s; set the encoder's keyframe interval to ${target} s (the segment target)`,
        });
      }
      // A republish starts from nothing (handshake, encoder start-up): compare it with itself, not with the last session.
      if (r.publishStartedAt !== undefined && publishes.get(eventId)?.startedAt !== r.publishStartedAt) {
        publishes.set(eventId, { startedAt: r.publishStartedAt, since: at });
      }
      const baselineFrom = Math.max(at - 30_000, publishes.get(eventId)?.since ?? 0);
      const recent = list.filter((s) => s.at >= baselineFrom).map((s) => s.bitrateKbps);
      if (recent.length >= 3) {
        const base = median(recent);
        if (base >= 100 && r.bitrateKbps < base * COLLAPSE_FRACTION) {
          warnings.push({
            code: 'bitrate_collapse',
            message: `input bitrate fell to ${r.bitrateKbps} kbit/s from about ${Math.round(base)} kbit/s`,
          });
        }
      }
      // ffmpeg's speed is an average since its start: ignore its first seconds, and flag only a sustained shortfall.
      const slow = tr?.speed != null && tr.outTimeSec >= 10 && tr.speed < SLOW_SPEED;
      if (slow && prev && prev.transcodeSpeed !== null && prev.transcodeSpeed < SLOW_SPEED) {
        warnings.push({
          code: 'transcode_slow',
          message: `transcoding runs at ${tr.speed!.toFixed(2)}× realtime: viewers will stall; lower the ladder or the preset`,
        });
      }
      if (r.lateFrames > 0)
        warnings.push({
          code: 'late_frames',
          message: `${r.lateFrames} video frames arrived more than a second late (publisher network or encoder overload)`,
        });

      const sample: HealthSample = {
        at,
        protocol: r.protocol,
        bitrateKbps: r.bitrateKbps,
        fps: r.fps,
        keyframeIntervalSec: r.keyframeIntervalSec,
        width: r.width,
        height: r.height,
        videoCodec: r.videoCodec,
        audioCodec: r.audioCodec,
        lateFrames: r.lateFrames,
        transcodeSpeed: tr?.speed ?? null,
        transcodeFps: tr?.fps ?? null,
        droppedFrames: dropped,
        duplicatedFrames: duplicated,
        warnings,
      };
      list.push(sample);
      samples.set(eventId, list);
      for (const w of warnings) {
        warningsTotal.inc({ code: w.code });
        if (!prev?.warnings.some((p) => p.code === w.code)) log.warn({ eventId, code: w.code }, w.message);
      }
      for (const fn of subscribers.get(eventId) ?? []) {
        try {
          fn(sample);
        } catch (err) {
          log.error({ eventId, err: (err as Error).message }, 'health subscriber failed');
        }
      }
      return sample;
    },

    history(eventId, sinceMs) {
      const cutoff = Math.max(sinceMs ?? 0, now() - HEALTH_RETENTION_MS);
      return (samples.get(eventId) ?? []).filter((s) => s.at > cutoff);
    },

    latest(eventId) {
      return samples.get(eventId)?.at(-1);
    },

    subscribe(eventId, fn) {
      let set = subscribers.get(eventId);
      if (!set) subscribers.set(eventId, (set = new Set()));
      set.add(fn);
      return () => {
        set.delete(fn);
        if (set.size === 0 && subscribers.get(eventId) === set) subscribers.delete(eventId);
      };
    },

    async start() {
      pruner = setInterval(prune, 60_000);
      pruner.unref();
    },

    async stop() {
      clearInterval(pruner);
      pruner = undefined;
      subscribers.clear();
    },
  };
}
