// One live event at the origin: takes publish sessions' FLV, runs ffmpeg, feeds the packagers.
import { EventEmitter } from 'node:events';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../lib/logger.ts';
import type { FeedSource, LiveFeed } from '../ingest/feed.ts';
import { createFlvTimelineShift, type FeedTimeline } from '../ingest/timeline.ts';
import type { LatencyMode } from '../lib/store/schema.ts';
import { FlvReader, TagType, isSequenceHeader, isVideoKeyframe, readMetaData, type FlvTag } from '../lib/flv.ts';
import { RenditionPackager } from './packager.ts';
import { SOURCE_RENDITION } from './ladder.ts';
import { FFMPEG_TS_OFFSET_SEC, startTranscode, type Transcode } from './transcoder.ts';
import {
  audioOnlyPlan,
  fraction,
  leadOnGrid,
  planForPreset,
  value,
  type LadderPlan,
  type LadderPreset,
  type Rung,
  type SourceCodecs,
  type SourceVideo,
} from './ladder.ts';
import { readProgress, type TranscodeStats } from './ffmpeg-progress.ts';
import { timingOf, type StreamTiming } from '../config/timing.ts';
import type { FfmpegLogCounter } from '../lib/ffmpeg-log.ts';

/** Counters a live stream reports to the origin's metrics. */
export interface LiveStreamMetrics {
  ffmpegStarted(): void;
  ffmpegRestarted(): void;
  /** A part is ready, `lagSec` after its last frame reached ingest (the ladder's delay behind the publisher). */
  part(rendition: string, lagSec: number): void;
  segment(rendition: string, durationSec: number, bytes: number): void;
  /** Counts ffmpeg's stderr lines (logged or left out by the rate limit). */
  ffmpegLogLines?: FfmpegLogCounter;
}

/** Events a LiveStream emits. */
export interface LiveStreamEvents {
  /** The reconnect window ran out with no publisher: the stream is over. */
  offline: [];
  /** A rendition's packager was created (once per rung, when the first publisher's ladder is chosen). */
  packager: [packager: RenditionPackager];
}

const MAX_PENDING_INPUT = 32 * 1024 * 1024;
const MAX_PRE_KEYFRAME_BYTES = 8 * 1024 * 1024;
/**
 * Audio with no video for this long (source timestamps) makes a stream audio-only when the metadata did not say so
 * already. Short: a video source's first keyframe follows its first audio by well under a second (x264 start-up).
 */
export const AUDIO_ONLY_AFTER_MS = 1500;
/** FLV header flags (byte 4): the stream has audio / video tags (ffmpeg's flv demuxer probes until each announced track appeared). */
const FLV_HAS_AUDIO = 0x04;
const FLV_HAS_VIDEO = 0x01;

/** The live state of one event at the origin: its publisher feed, ffmpeg run and rendition packagers. */
export class LiveStream extends EventEmitter<LiveStreamEvents> {
  /** Ladder chosen when the first publisher arrived: its rungs stay for the life of the stream, their size and rate follow each publisher. */
  renditions: Rung[] = [];
  private plan: LadderPlan | undefined;
  /** Packagers by rendition name, in ladder order. */
  readonly packagers = new Map<string, RenditionPackager>();
  /** How the stream is served, `low` (LL-HLS) or `standard` (plain HLS); set by the origin when the stream is created. */
  latencyMode: Promise<LatencyMode>;
  /** DVR window in seconds (0: off); set by the origin when the stream is created. */
  dvrWindowSec: Promise<number>;
  /** The event's ladder preset, as known when the first publisher's ladder is chosen (the config default until the lookup answers). */
  private preset: LadderPreset;
  /** This stream's timing (see `timing`). */
  #timing: StreamTiming;
  /** Set once the ladder is chosen: later timing lookups change nothing. */
  private timingFixed = false;
  /** Video bitrate the publisher states (onMetaData videodatarate, kbit/s). */
  private statedVideoKbps: number | undefined;
  private feedSeq = 0;
  private activeFeed = 0;
  /** The active session's place on the event's timeline. */
  private timeline: FeedTimeline = { zeroMs: 0, session: 0 };
  /** Without a timeline from the ingest: this stream's own (zero at its first publisher, sessions counted here). */
  private ownTimeline: FeedTimeline | undefined;
  private reader = new FlvReader();
  private header: Buffer | undefined;
  private metaTag: FlvTag | undefined;
  private sequenceHeaders = new Map<number, FlvTag>();
  private hasAudio = false;
  private hasVideo = false;
  /** What the publisher's onMetaData announced (audiocodecid / videocodecid); undefined without metadata. */
  private announced: { audio: boolean; video: boolean } | undefined;
  /** Timestamp of the session's first audio frame, for telling an audio-only source from a late picture. */
  private firstAudioMs: number | undefined;
  /** This session was told (in the log) that it sends no video to a stream with video renditions. */
  private warnedNoVideo = false;
  private source: SourceVideo = {};
  private transcode: Transcode | undefined;
  /** A run whose input was closed and that is still flushing; the next run waits for it. */
  private draining: Transcode | undefined;
  private waitingForKeyframe = true;
  private preKeyframeBytes = 0;
  private restartDelayMs = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private runStartedAt = 0;
  /** The current ffmpeg run's latest `-progress` report (speed, fps, dropped frames); undefined between runs. */
  transcodeStats: TranscodeStats | undefined;
  private stopped = false;

  constructor(
    readonly eventId: string,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly metrics: LiveStreamMetrics,
  ) {
    super();
    this.latencyMode = Promise.resolve(config.defaultLatencyMode);
    this.dvrWindowSec = Promise.resolve(config.dvrWindowSec);
    this.preset = config.defaultLadderPreset;
    this.#timing = timingOf(config);
  }

  /**
   * Segment target, part target and GOP of this stream (the event's, else the config's), fixed when the first
   * publisher's ladder is chosen: packagers, ffmpeg's fragments and keyframes and the HLS server's limits follow it.
   */
  get timing(): StreamTiming {
    return { ...this.#timing };
  }

  /**
   * Sets the event's part target and GOP once `lookup` answers (before the first publisher's keyframe, in practice,
   * like the ladder preset); an answer after the ladder was chosen is logged and left out.
   */
  setTiming(lookup: Promise<StreamTiming>): void {
    void lookup.then((t) => {
      if (!this.timingFixed) this.#timing = timingOf(t);
      else if (t.partTargetSec !== this.#timing.partTargetSec || t.gopSec !== this.#timing.gopSec)
        this.logger.warn(
          { timing: timingOf(t), using: this.#timing },
          'event timing known after the stream started; it applies from the next go-live',
        );
    });
  }

  /** Sets the event's ladder preset once `lookup` answers (before the first publisher's keyframe, in practice). */
  setLadderPreset(lookup: Promise<LadderPreset>): void {
    void lookup.then((p) => {
      this.preset = p;
    });
  }

  /** What the sequence headers say of the source's codecs: H.264 video can be copied, AAC at 44.1/48 kHz too. */
  private sourceCodecs(): SourceCodecs {
    const v = this.sequenceHeaders.get(TagType.video);
    const a = this.sequenceHeaders.get(TagType.audio);
    // FLV VideoTagHeader: CodecID 7 is AVC. AudioTagHeader: SoundFormat 10 is AAC, then the AudioSpecificConfig
    // (ISO 14496-3 §1.6.2.1): 5 bits object type, 4 bits sampling frequency index (3 = 48 kHz, 4 = 44.1 kHz).
    const h264 = v !== undefined && v.body.length > 0 && (v.body[0]! & 0x0f) === 7;
    const freqIndex = a && a.body.length >= 4 && a.body[0]! >> 4 === 10 ? (a.body.readUInt16BE(2) >> 7) & 0x0f : undefined;
    return { h264, aacCopyable: freqIndex === 3 || freqIndex === 4, videoKbps: this.statedVideoKbps };
  }

  /** The latest publish session's place on the event's timeline (session 0 before the first). */
  get feedTimeline(): FeedTimeline {
    return { ...this.timeline };
  }

  /** True while a publisher is attached. */
  get publishing(): boolean {
    return this.activeFeed !== 0;
  }

  /**
   * Attaches a new publish session; a previous one still attached is replaced. `timeline`: where the feed's
   * timestamps already are (FeedSource.timeline); without it the stream shifts them onto its own timeline.
   */
  attach(timeline?: FeedSource['timeline']): LiveFeed {
    clearTimeout(this.reconnectTimer);
    const id = ++this.feedSeq;
    let shift: ((chunk: Buffer) => Buffer[]) | undefined;
    if (timeline) {
      this.timeline = { ...timeline };
    } else {
      const now = Date.now();
      this.ownTimeline = this.ownTimeline ? { ...this.ownTimeline, session: this.ownTimeline.session + 1 } : { zeroMs: now, session: 1 };
      this.timeline = this.ownTimeline;
      shift = createFlvTimelineShift(now - this.ownTimeline.zeroMs);
    }
    this.activeFeed = id;
    this.reader = new FlvReader();
    this.metaTag = undefined;
    this.announced = undefined;
    this.hasAudio = false;
    this.hasVideo = false;
    this.firstAudioMs = undefined;
    this.warnedNoVideo = false;
    this.sequenceHeaders.clear();
    this.preKeyframeBytes = 0;
    this.endTranscode();
    this.waitingForKeyframe = true;
    return {
      write: (chunk) => {
        if (this.activeFeed === id) this.onBytes(chunk, shift);
      },
      end: () => {
        if (this.activeFeed !== id) return;
        this.activeFeed = 0;
        this.endTranscode();
        this.logger.info({ window: this.config.reconnectWindowSec }, 'publisher gone; waiting for it to return');
        this.reconnectTimer = setTimeout(() => {
          this.stop();
          this.emit('offline');
        }, this.config.reconnectWindowSec * 1000);
      },
    };
  }

  /** Ends ffmpeg and timers; the stream serves nothing new afterwards. */
  stop(): void {
    this.stopped = true;
    this.activeFeed = 0;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.restartTimer);
    this.transcode?.kill();
    this.draining?.kill();
  }

  /** Resolves when ffmpeg (if any) has exited. */
  async closed(): Promise<void> {
    await Promise.all([this.transcode?.closed, this.draining?.closed]);
  }

  private onBytes(chunk: Buffer, shift?: (chunk: Buffer) => Buffer[]): void {
    let tags: FlvTag[];
    try {
      tags = shift ? shift(chunk).flatMap((b) => this.reader.push(b)) : this.reader.push(chunk);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'bad FLV from publisher; dropping the session');
      this.activeFeed = 0;
      this.endTranscode();
      return;
    }
    this.header ??= this.reader.header;
    for (const tag of tags) this.onTag(tag);
  }

  private onTag(tag: FlvTag): void {
    if (tag.type === TagType.script) {
      const meta = readMetaData(tag);
      if (meta) {
        this.metaTag = tag;
        const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
        // OBS and ffmpeg state `framerate`; some encoders `videoframerate`.
        this.source = { width: num(meta.width), height: num(meta.height), fps: num(meta.framerate) ?? num(meta.videoframerate) };
        this.statedVideoKbps = num(meta.videodatarate);
        this.announced = { audio: meta.audiocodecid !== undefined, video: meta.videocodecid !== undefined };
      }
      return;
    }
    if (tag.type === TagType.audio) this.hasAudio = true;
    if (tag.type === TagType.video) this.hasVideo = true;
    if (isSequenceHeader(tag)) {
      this.sequenceHeaders.set(tag.type, tag);
      return;
    }
    const audioOnly = this.plan?.rungs[0]?.audioOnly === true;
    if (audioOnly && tag.type === TagType.video) return; // the stream's one rendition has no picture
    if (this.waitingForKeyframe) {
      if (!this.canStartOn(tag)) {
        this.preKeyframeBytes += tag.raw.length;
        if (this.preKeyframeBytes > MAX_PRE_KEYFRAME_BYTES) {
          this.logger.warn('no video keyframe in the first 8 MiB from the publisher; dropping the session');
          this.activeFeed = 0;
        }
        return;
      }
      if (!this.transcode && !this.draining && !this.restartTimer) this.beginRun(tag);
      if (!this.transcode) return;
      this.waitingForKeyframe = false;
    }
    const input = this.transcode?.input;
    if (!input) return;
    if (input.writableLength > MAX_PENDING_INPUT) {
      this.logger.error('ffmpeg is not keeping up with its input; restarting it');
      this.transcode!.kill();
      return;
    }
    input.write(tag.raw);
  }

  /**
   * True when a run may start on `tag`: a video keyframe, or for a source without video (announced so by its
   * metadata, or no video for AUDIO_ONLY_AFTER_MS of audio) an audio frame.
   */
  private canStartOn(tag: FlvTag): boolean {
    if (this.plan && !this.plan.rungs[0]?.audioOnly) {
      if (tag.type === TagType.audio && !this.hasVideo && !this.warnedNoVideo) {
        this.firstAudioMs ??= tag.timestamp;
        if (tag.timestamp - this.firstAudioMs >= AUDIO_ONLY_AFTER_MS) {
          // The stream's renditions were chosen for a picture when it started: say why nothing plays.
          this.warnedNoVideo = true;
          this.logger.warn('the publisher sends no video, but this stream started with video renditions: nothing plays until video comes');
        }
      }
      return isVideoKeyframe(tag);
    }
    if (this.plan) return tag.type === TagType.audio;
    if (isVideoKeyframe(tag)) return true;
    if (tag.type !== TagType.audio || this.hasVideo) return false;
    this.firstAudioMs ??= tag.timestamp;
    return (this.announced?.audio === true && !this.announced.video) || tag.timestamp - this.firstAudioMs >= AUDIO_ONLY_AFTER_MS;
  }

  /** Starts ffmpeg on `keyframe`: writes the FLV header, metadata and sequence headers first. */
  private beginRun(keyframe: FlvTag): void {
    if (this.stopped || !this.header) return;
    const describe = () => this.renditions.map((r) => `${r.name} ${r.width}x${r.height}@${fraction(r.fps)}`);
    if (this.plan) {
      // A returning publisher may send another size or frame rate: the same rungs, re-planned for it (each run
      // has its own init segment after a discontinuity), so that nothing is duplicated or stretched.
      const names = new Set(this.renditions.map((r) => r.name));
      const before = describe().join();
      const codecs = this.sourceCodecs();
      if (names.has(SOURCE_RENDITION) && !codecs.h264)
        this.logger.warn('the returning publisher does not send H.264: its video cannot be copied into the source rendition');
      const audioOnlyStream = this.plan.rungs[0]?.audioOnly === true;
      this.plan = audioOnlyStream
        ? audioOnlyPlan()
        : planForPreset('standard', this.config.ladder, this.source, { ...codecs, h264: true }, this.#timing.gopSec, names);
      this.renditions = this.plan.rungs;
      if (describe().join() !== before)
        this.logger.info({ source: this.source, ladder: describe() }, 'ladder re-planned for the returning publisher');
    } else {
      this.timingFixed = true;
      const codecs = this.sourceCodecs();
      this.plan =
        keyframe.type === TagType.audio
          ? audioOnlyPlan()
          : planForPreset(this.preset, this.config.ladder, this.source, codecs, this.#timing.gopSec);
      this.renditions = this.plan.rungs;
      const source = this.renditions.find((r) => r.copy);
      if (this.renditions[0]?.audioOnly)
        this.logger.info(
          { ladder: [this.renditions[0].name], preset: this.preset },
          keyframe.type === TagType.audio ? 'audio-only source: one audio rendition' : 'audio preset: one audio rendition',
        );
      else
        this.logger.info(
          { source: this.source, preset: this.preset, ladder: describe(), audioCopied: source?.copyAudio, timing: this.#timing },
          'ladder chosen',
        );
      if (!codecs.h264 && (this.preset === 'standard' || this.preset === 'passthrough'))
        this.logger.warn({ preset: this.preset }, 'the source is not H.264: it cannot be copied, so the ladder is encoded');
      for (const r of this.renditions) {
        this.packagers.set(
          r.name,
          new RenditionPackager(r.name, {
            segmentTargetSec: this.#timing.segmentTargetSec,
            partTargetSec: this.#timing.partTargetSec,
            windowSegments: this.config.windowSegments,
            sourceKeyframes: r.copy === true,
          }),
        );
        const p = this.packagers.get(r.name)!;
        // The segment's PDT is the ingest wall clock of its first frame (timeline zero + t); the part ends where the segment now ends.
        p.on('part', (_part, segment) => this.metrics.part(r.name, (Date.now() - segment.programDateTimeMs) / 1000 - segment.durationSec));
        p.on('segment', (s) => this.metrics.segment(r.name, s.durationSec, s.bytes().length));
        this.emit('packager', p);
      }
    }
    // The first frame ffmpeg decodes is this keyframe: its presentation time (dts + AVC composition offset) anchors
    // ffmpeg's keyframe expression on the timeline.
    const audioOnly = this.plan.rungs[0]?.audioOnly === true;
    const cts = !audioOnly && keyframe.body.length >= 5 ? keyframe.body.readIntBE(2, 3) : 0;
    const firstFrameMs = keyframe.timestamp + cts;
    // Audio the publisher sends or announced; ingest's FLV header claims both tracks whatever the source has.
    const withAudio = audioOnly || this.hasAudio || this.announced?.audio === true;
    const t = startTranscode(
      { ...this.config, ...this.#timing },
      this.plan,
      withAudio,
      this.logger,
      this.metrics.ffmpegLogLines,
      firstFrameMs,
    );
    this.transcodeStats = undefined;
    readProgress(t.progress, (stats) => {
      if (this.transcode === t) this.transcodeStats = stats;
    });
    this.transcode = t;
    this.runStartedAt = Date.now();
    this.metrics.ffmpegStarted();
    const run = {
      ...this.timeline,
      keyframeStepSec: value(this.plan.keyframeStep),
      // Audio segments start on any part (every AAC frame is a sync sample): no lead to drop.
      dropLead: !audioOnly && !leadOnGrid(this.plan, this.config.segmentTargetSec, firstFrameMs),
      tfdtOffsetSec: FFMPEG_TS_OFFSET_SEC,
    };
    for (const p of this.packagers.values()) p.beginRun(run);
    t.outputs.forEach((out, i) => {
      const p = this.packagers.get(this.renditions[i]!.name)!;
      out.on('data', (chunk: Buffer) => {
        try {
          p.push(chunk);
        } catch (err) {
          this.logger.error({ rendition: p.name, err: (err as Error).message }, 'packager rejected ffmpeg output; restarting ffmpeg');
          t.kill();
        }
      });
    });
    // The header names the tracks ffmpeg gets: one it announces but never sees keeps ffmpeg probing for seconds
    // (a video-only source took 11-27 s to go live behind ingest's audio+video header).
    const header = Buffer.from(this.header);
    header[4] = (audioOnly ? 0 : FLV_HAS_VIDEO) | (withAudio ? FLV_HAS_AUDIO : 0);
    t.input.write(header);
    if (this.metaTag) t.input.write(this.metaTag.raw);
    for (const tag of this.sequenceHeaders.values()) if (!(audioOnly && tag.type === TagType.video)) t.input.write(tag.raw);
    void t.closed.then(({ code, signal }) => this.onTranscodeClosed(t, code, signal));
  }

  private onTranscodeClosed(t: Transcode, code: number | null, signal: NodeJS.Signals | null): void {
    for (const p of this.packagers.values()) p.endRun();
    if (this.draining === t) this.draining = undefined;
    if (this.transcode !== t) return;
    this.transcode = undefined;
    this.waitingForKeyframe = true;
    if (this.stopped || !this.activeFeed) return;
    // ffmpeg died while the publisher is still sending: restart with backoff.
    const ranMs = Date.now() - this.runStartedAt;
    this.restartDelayMs = ranMs > 30_000 ? 500 : Math.min(Math.max(this.restartDelayMs * 2, 500), 10_000);
    this.logger.error({ code, signal, restartInMs: this.restartDelayMs }, 'ffmpeg exited unexpectedly');
    this.metrics.ffmpegRestarted();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
    }, this.restartDelayMs);
  }

  /** Closes ffmpeg's input so that it flushes its last fragments and exits. */
  private endTranscode(): void {
    const t = this.transcode;
    if (!t) return;
    t.input.end();
    this.transcode = undefined;
    this.draining = t;
    // ffmpeg normally exits within a second of EOF; do not let a stuck one linger.
    setTimeout(() => t.kill(), 5000).unref();
  }
}
