// One rendition's CMAF packager: turns ffmpeg's fragmented-MP4 pipe output into LL-HLS parts
// (one moof+mdat each) and segments (cut at keyframe parts), kept in a bounded sliding window.
//
// Numbers come from the event's media timeline (ingest/timeline.ts), so that replicas fed the same feed agree:
// ffmpeg keeps the feed's timestamps (-copyts), so a fragment's tfdt is `t`, seconds since the timeline's zero;
// the segment starting at t has msn = floor(zeroMs / target) + floor(t / target) (the base keeps numbers, and so
// URLs, unique across broadcasts of one event), its PROGRAM-DATE-TIME is zeroMs + t, its discontinuity sequence
// is session - 1, and a run's init is named after the msn of the run's first segment. A run's first keyframe
// (forced by ffmpeg on its first frame) is off the grid unless it falls on the grid instant: that lead segment
// is dropped, as is any segment whose msn is not past the last one, so every published msn means the same media.
import { EventEmitter } from 'node:events';
import { Mp4BoxSplitter, Mp4Error, parseInit, parseMoof } from './mp4.ts';
import type { InitInfo, TrackInfo } from './mp4.ts';
import type { DateRange } from './playlist.ts';

/** A partial segment: one moof+mdat fragment. */
export interface Part {
  msn: number;
  index: number;
  durationSec: number;
  /** Starts with a video sync sample. */
  independent: boolean;
  bytes: Buffer;
}

/** A media segment: the parts from one keyframe part to the next. */
export class Segment {
  /** Parts so far (all of them once complete). */
  readonly parts: Part[] = [];
  /** Sum of the parts' durations. */
  durationSec = 0;
  /** No more parts will be added. */
  complete = false;
  #bytes: Buffer | undefined;

  constructor(
    /** Media sequence number. */
    readonly msn: number,
    /** The ffmpeg run (and so the init segment) it belongs to. */
    readonly run: number,
    /** Media time of its first sample: seconds since the timeline's zero. */
    readonly startMediaSec: number,
    /** Wall-clock time of its first sample (EXT-X-PROGRAM-DATE-TIME). */
    readonly programDateTimeMs: number,
    /** First segment of a new publish session: preceded by EXT-X-DISCONTINUITY. */
    readonly discontinuity: boolean,
    /** Discontinuity sequence number of this segment. */
    readonly discontinuitySequence: number,
  ) {}

  /** The whole segment (the concatenation of its parts). */
  bytes(): Buffer {
    return this.#bytes ?? Buffer.concat(this.parts.map((p) => p.bytes));
  }

  /** Bytes held by its parts. */
  get byteLength(): number {
    return this.#bytes?.length ?? this.parts.reduce((n, p) => n + p.bytes.length, 0);
  }

  /** Marks it complete; its parts then share one buffer with bytes(). */
  close(): void {
    if (this.complete) return;
    this.complete = true;
    const all = this.bytes();
    let offset = 0;
    for (const part of this.parts) {
      part.bytes = all.subarray(offset, offset + part.bytes.length);
      offset += part.bytes.length;
    }
    this.#bytes = all;
  }
}

/** Events of a RenditionPackager. */
export interface PackagerEvents {
  /** A run's init segment (ftyp+moov) arrived. */
  init: [run: number, bytes: Buffer];
  /** A part was appended to a segment (possibly a new one). */
  part: [part: Part, segment: Segment];
  /** A segment is complete. */
  segment: [segment: Segment];
}

/** Options of a RenditionPackager. */
export interface PackagerOptions {
  segmentTargetSec: number;
  partTargetSec: number;
  /** Complete segments listed in the playlist. */
  windowSegments: number;
  /**
   * The source rendition (video copied from the publisher): a segment starts at the source's first keyframe in each
   * new target slot (floor(t / target) grows), wherever it falls, so segments last what the source's keyframe
   * interval makes them (EXTINF and TARGETDURATION say so). Numbers count up by one per segment from the run's first
   * (msn base + its slot, and past the last published): off-grid keyframes have no slot number of their own.
   */
  sourceKeyframes?: boolean;
}

/** Where a run's media sits: the event's timeline (ms of wall clock at t = 0) and the publish session. */
export interface RunTimeline {
  zeroMs: number;
  /** Publish session (1, 2, ... per reconnect): its segments have discontinuity sequence session - 1. */
  session: number;
  /**
   * Keyframe grid step (LadderPlan.keyframeStep, seconds; default the segment target): segment k's keyframe is at
   * ceil(k × target / step) × step, the instant every rung's frame grid shares.
   */
  keyframeStepSec?: number;
  /**
   * Drop the run's first segment even when its keyframe is on the grid: some other rendition's first frame is not
   * (each rung's fps filter rounds the first frame onto its own frame grid), and every rendition must list the same msns.
   */
  dropLead?: boolean;
  /** What the fragments' tfdt adds to timeline time (ffmpeg's -itsoffset; default 0). */
  tfdtOffsetSec?: number;
}

/** Tolerance when comparing a fragment's time with the grid (tfdt is exact to well under this). */
const EPS_SEC = 0.001;

interface Run {
  /** Run id (init URI): msn of the run's first published segment; undefined until then. */
  n?: number;
  timeline: RunTimeline;
  msnBase: number;
  init?: { bytes: Buffer; info: InitInfo };
  /** msn of the dropped segment the run is in (the unaligned lead, or one not past the last published msn). */
  skipMsn?: number;
  splitter: Mp4BoxSplitter;
  offset: number; // stream offset of the next box
  ftyp?: Buffer;
  info?: InitInfo;
  video?: TrackInfo;
  moof?: Buffer;
  open?: Segment; // this run's segment still receiving parts
  parts: number; // parts accepted in this run
  slot?: number; // sourceKeyframes: target slot (floor(t / target)) of the open segment's keyframe
  state: 'active' | 'failed';
}

/** Packages one rendition's fragmented-MP4 stream into LL-HLS parts and segments. */
export class RenditionPackager extends EventEmitter<PackagerEvents> {
  /** Segment target duration (seconds). */
  readonly segmentTargetSec: number;
  /** Part target duration (seconds). */
  readonly partTargetSec: number;
  readonly #windowSegments: number;
  readonly #sourceKeyframes: boolean;
  readonly #inits = new Map<number, { bytes: Buffer; info: InitInfo }>();
  #window: Segment[] = []; // listed in the playlist, oldest first; the last may be open
  #retired: { segment: Segment; atClockSec: number }[] = []; // left the playlist, still downloadable
  #run: Run | undefined;
  #latestRun: number | undefined;
  #clockSec = 0; // media seconds packaged since construction, across runs
  #lastMsn: number | undefined;
  #last: { session: number; dsn: number } | undefined; // of the newest published segment
  #longestSegmentSec = 0;
  #longestPartSec = 0;
  #frameRate: number | undefined;
  readonly #dateRanges = new Map<string, DateRange>();

  constructor(
    /** Rendition name (e.g. "720p"). */
    readonly name: string,
    opts: PackagerOptions,
  ) {
    super();
    this.segmentTargetSec = opts.segmentTargetSec;
    this.partTargetSec = opts.partTargetSec;
    this.#windowSegments = opts.windowSegments;
    this.#sourceKeyframes = opts.sourceKeyframes ?? false;
  }

  /** Starts a new ffmpeg run whose fragments are timed on `timeline`. Ends the current run, if any. */
  beginRun(timeline: RunTimeline): void {
    this.endRun();
    this.#run = {
      timeline: { ...timeline },
      msnBase: Math.floor(timeline.zeroMs / (this.segmentTargetSec * 1000) + 1e-9),
      splitter: new Mp4BoxSplitter(),
      offset: 0,
      parts: 0,
      state: 'active',
    };
  }

  /** Feeds raw pipe bytes of the current run. Throws Mp4Error on corrupt input, after which the run's further bytes are ignored. */
  push(chunk: Buffer): void {
    const run = this.#run;
    if (!run) throw new Error(`packager ${this.name}: push() outside a run`);
    if (run.state === 'failed') return;
    try {
      for (const box of run.splitter.push(chunk)) {
        this.#onBox(run, box.type, box.bytes);
        run.offset += box.bytes.length;
      }
    } catch (err) {
      if (!(err instanceof Mp4Error)) throw err;
      run.state = 'failed';
      run.splitter = new Mp4BoxSplitter(); // drop buffered bytes
      this.#closeOpen(run);
      throw err;
    }
  }

  /** The current run's ffmpeg ended: closes its open segment and drops any incomplete box. */
  endRun(): void {
    const run = this.#run;
    if (!run) return;
    this.#closeOpen(run);
    this.#run = undefined;
  }

  #onBox(run: Run, type: string, bytes: Buffer): void {
    const at = `at byte offset ${run.offset} of run ${run.n ?? '(unnamed)'}`;
    if (type === 'ftyp') {
      run.ftyp = bytes;
    } else if (type === 'moov') {
      const init = Buffer.concat(run.ftyp ? [run.ftyp, bytes] : [bytes]); // a copy: bytes may view a larger pipe chunk
      const info = parseInit(init);
      if (info.tracks.length === 0) throw new Mp4Error(`moov without audio or video track ${at}`);
      run.info = info;
      run.video = info.tracks.find((t) => t.kind === 'video');
      run.init = { bytes: init, info }; // published with the run's first segment, named after its msn
    } else if (type === 'moof') {
      if (!run.info) throw new Mp4Error(`moof before moov ${at}`);
      if (run.moof) throw new Mp4Error(`moof without mdat ${at}`);
      run.moof = bytes;
    } else if (type === 'mdat') {
      if (!run.moof) throw new Mp4Error(`mdat without moof ${at}`);
      const moof = run.moof;
      run.moof = undefined;
      this.#onFragment(run, moof, bytes, at);
    }
    // Other top-level boxes (styp, sidx, free, mfra, ...) are skipped.
  }

  #onFragment(run: Run, moof: Buffer, mdat: Buffer, at: string): void {
    const info = run.info!;
    const { trafs } = parseMoof(moof, info);
    const videoTraf = run.video && trafs.find((t) => t.trackId === run.video!.id);
    const timing = videoTraf ?? trafs[0];
    const track = timing && info.tracks.find((t) => t.id === timing.trackId);
    if (!timing || !track) throw new Mp4Error(`moof without a known track ${at}`);
    const independent = run.video ? (videoTraf?.firstSampleSync ?? false) : true;
    const durationSec = timing.duration / track.timescale;
    const startSec = timing.baseMediaDecodeTime / track.timescale - (run.timeline.tfdtOffsetSec ?? 0);
    if (videoTraf && videoTraf.duration > 0 && (run.parts > 0 || this.#frameRate === undefined)) {
      this.#frameRate = (videoTraf.sampleCount * track.timescale) / videoTraf.duration;
    }
    run.parts++;
    const current = run.open?.msn ?? run.skipMsn;
    if (independent && this.#sourceKeyframes && run.video) {
      const k = Math.floor((startSec + EPS_SEC) / this.segmentTargetSec);
      if (run.slot === undefined || k > run.slot) {
        const prev = run.open?.msn;
        this.#closeOpen(run);
        run.slot = k;
        const msn = prev !== undefined ? prev + 1 : Math.max(run.msnBase + k, (this.#lastMsn ?? -Infinity) + 1);
        this.#openSegment(run, msn, startSec);
      }
    } else if (independent) {
      const k = Math.floor((startSec + EPS_SEC) / this.segmentTargetSec);
      const msn = run.msnBase + k;
      // A keyframe within the segment it is in (audio-only fragments, a stray keyframe) stays a part of it.
      if (current === undefined || msn > current) {
        this.#closeOpen(run);
        run.skipMsn = undefined;
        // The run's first keyframe is ffmpeg's first frame: it starts segment k only if it is k's grid instant.
        const aligned = current !== undefined || !run.video || (!run.timeline.dropLead && this.#onGrid(run, startSec, k));
        if (aligned && msn > (this.#lastMsn ?? -Infinity)) this.#openSegment(run, msn, startSec);
        else run.skipMsn = msn;
      }
    }
    if (!run.open) return; // before the run's first keyframe, or in a dropped segment
    this.#clockSec += durationSec;
    const segment = run.open;
    const part: Part = {
      msn: segment.msn,
      index: segment.parts.length,
      durationSec,
      independent,
      bytes: Buffer.concat([moof, mdat]),
    };
    segment.parts.push(part);
    segment.durationSec += durationSec;
    this.#longestPartSec = Math.max(this.#longestPartSec, durationSec);
    this.#trim();
    this.emit('part', part, segment);
  }

  /** True when a keyframe at `startSec` is segment k's grid instant. */
  #onGrid(run: Run, startSec: number, k: number): boolean {
    const step = run.timeline.keyframeStepSec ?? this.segmentTargetSec;
    const instant = Math.ceil((k * this.segmentTargetSec) / step - 1e-6) * step;
    return Math.abs(startSec - instant) < EPS_SEC;
  }

  #openSegment(run: Run, msn: number, startSec: number): void {
    if (run.n === undefined) {
      run.n = msn;
      this.#inits.set(msn, run.init!);
      this.#latestRun = msn;
      this.emit('init', msn, run.init!.bytes);
    }
    const { session, zeroMs } = run.timeline;
    // session - 1, never going back (a replica that missed a session keeps counting up).
    const last = this.#last;
    const dsn = last ? Math.max(session - 1, last.dsn + (session !== last.session ? 1 : 0)) : session - 1;
    const discontinuity = last !== undefined && dsn > last.dsn;
    this.#last = { session, dsn };
    run.open = new Segment(msn, run.n, startSec, zeroMs + startSec * 1000, discontinuity, dsn);
    this.#lastMsn = msn;
    this.#window.push(run.open);
  }

  #closeOpen(run: Run): void {
    const segment = run.open;
    if (!segment) return;
    run.open = undefined;
    segment.close();
    this.#longestSegmentSec = Math.max(this.#longestSegmentSec, segment.durationSec);
    this.#trim();
    this.emit('segment', segment);
  }

  /** Retires segments beyond the window (by msn: a gap counts), drops retired ones older than 3 target durations, and unused inits. */
  #trim(): void {
    // The window ends at the newest complete msn, or the one before the open segment (it may follow a gap).
    const last = this.#window.at(-1);
    const end = last && (last.complete ? last.msn : last.msn - 1);
    while (end !== undefined && this.#window[0]?.complete && end - this.#window[0].msn >= this.#windowSegments) {
      this.#retired.push({ segment: this.#window.shift()!, atClockSec: this.#clockSec });
    }
    const keepSec = 3 * this.segmentTargetSec;
    while (this.#retired[0] && this.#clockSec - this.#retired[0].atClockSec >= keepSec) this.#retired.shift();
    const oldestRun = this.#retired[0]?.segment.run ?? this.#window[0]?.run ?? this.#latestRun;
    for (const run of this.#inits.keys()) {
      if (oldestRun !== undefined && run < oldestRun && run !== this.#latestRun) this.#inits.delete(run);
    }
  }

  /** A run's init segment, while some retained segment (or the latest run) uses it. */
  init(run: number): Buffer | undefined {
    return this.#inits.get(run)?.bytes;
  }

  /** Id of the newest run that published a segment (its init's number), undefined before. */
  get latestRun(): number | undefined {
    return this.#latestRun;
  }

  /** A retained segment (listed or recently retired; check `complete` before serving it whole). */
  segment(msn: number): Segment | undefined {
    return this.#window.find((s) => s.msn === msn) ?? this.#retired.find((r) => r.segment.msn === msn)?.segment;
  }

  /** A retained part. */
  part(msn: number, index: number): Part | undefined {
    return this.segment(msn)?.parts[index];
  }

  /** Media sequence number of the newest segment (open or complete). */
  get lastMsn(): number | undefined {
    return this.#window.at(-1)?.msn;
  }

  /** Index of the newest segment's last part. */
  get lastPartIndex(): number | undefined {
    const last = this.#window.at(-1);
    return last && last.parts.length > 0 ? last.parts.length - 1 : undefined;
  }

  /** Segments listed in the playlist, oldest first: the last windowSegments complete ones, then the open one if any. */
  /** Adds or replaces (same id) an EXT-X-DATERANGE listed in this rendition's playlist. */
  setDateRange(range: DateRange): void {
    this.#dateRanges.set(range.id, range);
  }

  /** DATERANGEs that still overlap the playlist window (ones that ended before its first segment are dropped). */
  get dateRanges(): readonly DateRange[] {
    const windowStart = this.#window[0]?.programDateTimeMs;
    if (windowStart !== undefined) {
      for (const [id, d] of this.#dateRanges) {
        const end = d.startDateMs + (d.durationSec ?? d.plannedDurationSec ?? 0) * 1000;
        if (d.durationSec !== undefined && end < windowStart) this.#dateRanges.delete(id);
      }
    }
    return [...this.#dateRanges.values()];
  }

  get playlistSegments(): readonly Segment[] {
    return this.#window;
  }

  /** Discontinuity sequence number of the first listed segment's predecessor tags (EXT-X-DISCONTINUITY-SEQUENCE). */
  get discontinuitySequence(): number {
    const first = this.#window[0];
    if (!first) return this.#last?.dsn ?? 0;
    return first.discontinuitySequence - (first.discontinuity ? 1 : 0);
  }

  /** Longest complete segment so far (never decreases). */
  get longestSegmentSec(): number {
    return this.#longestSegmentSec;
  }

  /** Longest part so far (never decreases). */
  get longestPartSec(): number {
    return this.#longestPartSec;
  }

  /** The part expected next (EXT-X-PRELOAD-HINT): the open segment's next part, or the next segment's first part when a keyframe is due. */
  get nextPart(): { msn: number; index: number } {
    const last = this.#window.at(-1);
    if (!last) return { msn: this.#lastMsn === undefined ? 0 : this.#lastMsn + 1, index: 0 };
    const lastPart = last.parts.at(-1);
    // The source rendition's next keyframe comes when the publisher sends it: hint the open segment's next part.
    const keyframeDue =
      !this.#sourceKeyframes && last.durationSec + (lastPart?.durationSec ?? this.partTargetSec) / 2 > this.segmentTargetSec;
    return last.complete || keyframeDue ? { msn: last.msn + 1, index: 0 } : { msn: last.msn, index: last.parts.length };
  }

  /** RFC 6381 codecs of the latest init, video first (e.g. "avc1.64001f,mp4a.40.2"). */
  get codecs(): string | undefined {
    const tracks = this.#latestInfo()?.tracks;
    if (!tracks) return undefined;
    return [...tracks]
      .sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'video' ? -1 : 1))
      .map((t) => t.codec)
      .join(',');
  }

  /** Video width of the latest init. */
  get width(): number | undefined {
    return this.#latestInfo()?.tracks.find((t) => t.kind === 'video')?.width;
  }

  /** Video height of the latest init. */
  get height(): number | undefined {
    return this.#latestInfo()?.tracks.find((t) => t.kind === 'video')?.height;
  }

  /** Video frames per second, from the latest fragment's sample durations. */
  get frameRate(): number | undefined {
    return this.#frameRate;
  }

  /** Peak bits per second over the listed complete segments; undefined until one exists. */
  get bandwidth(): number | undefined {
    const rates = this.#completeListed().map((s) => (s.byteLength * 8) / s.durationSec);
    return rates.length > 0 ? Math.round(Math.max(...rates)) : undefined;
  }

  /** Average bits per second over the listed complete segments; undefined until one exists. */
  get averageBandwidth(): number | undefined {
    const segments = this.#completeListed();
    if (segments.length === 0) return undefined;
    const bits = segments.reduce((n, s) => n + s.byteLength * 8, 0);
    return Math.round(bits / segments.reduce((n, s) => n + s.durationSec, 0));
  }

  /** Bytes held in memory: retained segments and parts, inits, and the box being buffered. */
  get retainedBytes(): number {
    let n = (this.#run?.splitter.bufferedBytes ?? 0) + (this.#run?.moof?.length ?? 0);
    for (const s of this.#window) n += s.byteLength;
    for (const r of this.#retired) n += r.segment.byteLength;
    for (const i of this.#inits.values()) n += i.bytes.length;
    return n;
  }

  /** Complete listed segments; before the first is complete, the open one (a source rendition's first segment may last 10 s). */
  #completeListed(): Segment[] {
    const complete = this.#window.filter((s) => s.complete && s.durationSec > 0);
    return complete.length > 0 ? complete : this.#window.filter((s) => s.durationSec > 0);
  }

  #latestInfo(): InitInfo | undefined {
    let latest: number | undefined;
    for (const run of this.#inits.keys()) if (latest === undefined || run > latest) latest = run;
    return latest === undefined ? undefined : this.#inits.get(latest)?.info;
  }
}
