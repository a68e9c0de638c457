// Records one broadcast (a LiveStream's life: every publish session of it, reconnects included): every rendition's
// init and complete segments go to storage through a bounded, retried WriteQueue, and a manifest listing what is
// stored is rewritten (at most one write in flight, at most about once a second) so that a VOD playlist can be
// rebuilt at any time, even after a crash. Live serving never waits for any of it: packager events only enqueue.
import type { Logger } from '../../lib/logger.ts';
import type { ObjectReader, Storage } from '../../lib/storage/storage.ts';
import { initUri, segmentUri } from '../../lib/hls-path.ts';
import type { Variant } from '../playlist.ts';
import { WriteQueue, type WriteQueueOptions } from './write-queue.ts';
import {
  latestKey,
  manifestKey,
  manifestSummary,
  objectKey,
  posterKey,
  spriteKey,
  recordingId,
  recordingPrefix,
  type RecordingManifest,
  type StoredSegment,
} from './manifest.ts';

/** A recording as the recorder reports it. */
export interface RecordingInfo {
  id: string;
  eventId: string;
  zeroMs: number;
  storagePrefix: string;
  startedAtMs: number;
}

/** What the recorder tells the rest of the system (the store, webhooks, metrics). */
export interface RecordingHooks {
  /** Whether to record this broadcast (the event's switch); when true, registers it. A rejection means: do not record. */
  begin(r: RecordingInfo): Promise<boolean>;
  /** Storage failed: the recording stops here, with `reason`. */
  failed(r: RecordingInfo, reason: string): void;
  /** The broadcast ended and everything is stored. */
  ready(r: RecordingInfo, summary: { durationSec: number; bytes: number; segments: number; endedAtMs: number }): void;
}

/** The packager events the recorder needs (a RenditionPackager satisfies it). */
export interface RecordedRendition {
  readonly name: string;
  on(event: 'init', listener: (run: number, bytes: Buffer) => void): unknown;
  on(
    event: 'segment',
    listener: (s: {
      msn: number;
      run: number;
      durationSec: number;
      programDateTimeMs: number;
      discontinuitySequence: number;
      bytes(): Buffer;
    }) => void,
  ): unknown;
}

const MANIFEST_INTERVAL_MS = 1000;

/** Records one broadcast of an event. */
export class Recorder {
  readonly info: RecordingInfo;
  readonly #storage: Storage;
  readonly #queue: WriteQueue;
  readonly #hooks: RecordingHooks;
  readonly #log: Logger;
  readonly #segmentTargetSec: number;
  readonly #variants: () => Variant[];
  /** Rendition name → stored inits (run numbers) and stored segments. */
  readonly #renditions = new Map<
    string,
    { inits: Set<number>; segments: StoredSegment[]; sorted?: StoredSegment[] | undefined; sortedCount?: number }
  >();
  #state: 'pending' | 'recording' | 'off' | 'failed' | 'ended' = 'pending';
  #manifestTimer: NodeJS.Timeout | undefined;
  #manifestWriting = false;
  #manifestDirty = false;
  #endedAtMs: number | undefined;
  #thumbnails: RecordingManifest['thumbnails'];
  #poster = false;
  /** Settles once begin() answered. */
  readonly #decision: Promise<void>;

  constructor(deps: {
    eventId: string;
    zeroMs: number;
    storage: Storage;
    queue: WriteQueueOptions;
    hooks: RecordingHooks;
    logger: Logger;
    segmentTargetSec: number;
    /** The ladder's variants as the multivariant playlist lists them (measured where known). */
    variants: () => Variant[];
  }) {
    this.info = {
      id: recordingId(deps.eventId, deps.zeroMs),
      eventId: deps.eventId,
      zeroMs: deps.zeroMs,
      storagePrefix: recordingPrefix(deps.eventId, deps.zeroMs),
      startedAtMs: Date.now(),
    };
    this.#storage = deps.storage;
    this.#hooks = deps.hooks;
    this.#log = deps.logger.child({ recording: this.info.id });
    this.#segmentTargetSec = deps.segmentTargetSec;
    this.#variants = deps.variants;
    // Paused until begin() says whether to record: what the packagers produce meanwhile waits in the queue.
    this.#queue = new WriteQueue(deps.storage, deps.queue, (reason) => this.#fail(reason), true);
    this.#decision = deps.hooks.begin(this.info).then(
      (record) => this.#decided(record),
      (err: Error) => {
        this.#log.error({ err: err.message }, 'recording not started: could not register it');
        this.#decided(false);
      },
    );
  }

  /** `pending` (asking whether to record), `recording`, `off` (the event is not recorded), `failed`, `ended`. */
  get state(): string {
    return this.#state;
  }

  /** Why the recording failed. */
  get failure(): string | undefined {
    return this.#queue.failed;
  }

  /** Bytes waiting for storage. */
  get pendingBytes(): number {
    return this.#queue.pendingBytes;
  }

  /**
   * A rendition's stored segments (their init stored too), in msn order: what a DVR window can list. The array is
   * rebuilt only when a write completed since the last call.
   */
  storedSegments(rendition: string): readonly StoredSegment[] {
    const r = this.#renditions.get(rendition);
    if (!r) return [];
    if (r.sorted === undefined || r.sortedCount !== r.segments.length + r.inits.size) {
      r.sorted = r.segments.filter((s) => r.inits.has(s.run)).sort((a, b) => a.msn - b.msn);
      r.sortedCount = r.segments.length + r.inits.size;
    }
    return r.sorted;
  }

  /** Reads a stored object of a rendition back (`init-<run>.mp4` or `seg-<msn>.m4s`); undefined when it is not stored. */
  async read(rendition: string, name: { kind: 'init'; run: number } | { kind: 'segment'; msn: number }): Promise<ObjectReader | undefined> {
    const r = this.#renditions.get(rendition);
    if (!r) return undefined;
    if (name.kind === 'init' ? !r.inits.has(name.run) : !this.storedSegments(rendition).some((s) => s.msn === name.msn)) return undefined;
    const file = name.kind === 'init' ? initUri(name.run) : segmentUri(name.msn);
    return this.#storage.get(objectKey(this.info.eventId, this.info.zeroMs, rendition, file));
  }

  /** Records a rendition's inits and segments from now on. */
  attach(p: RecordedRendition): void {
    const r: { inits: Set<number>; segments: StoredSegment[]; sorted?: StoredSegment[]; sortedCount?: number } = {
      inits: new Set<number>(),
      segments: [],
    };
    this.#renditions.set(p.name, r);
    p.on('init', (run, bytes) => {
      if (!this.#accepting()) return;
      this.#queue.enqueue(objectKey(this.info.eventId, this.info.zeroMs, p.name, initUri(run)), bytes, () => {
        r.inits.add(run);
        this.#manifestChanged();
      });
    });
    p.on('segment', (s) => {
      if (!this.#accepting() || s.durationSec <= 0) return;
      const bytes = s.bytes();
      const stored: StoredSegment = {
        msn: s.msn,
        run: s.run,
        durationSec: s.durationSec,
        programDateTimeMs: s.programDateTimeMs,
        discontinuitySequence: s.discontinuitySequence,
        bytes: bytes.length,
      };
      this.#queue.enqueue(objectKey(this.info.eventId, this.info.zeroMs, p.name, segmentUri(s.msn)), bytes, () => {
        r.segments.push(stored);
        this.#manifestChanged();
      });
    });
  }

  /** Stores the recording's poster (a JPEG; replaces the previous one). */
  storePoster(jpeg: Buffer): void {
    if (!this.#accepting()) return;
    this.#queue.enqueue(posterKey(this.info.eventId, this.info.zeroMs), jpeg, () => {
      this.#poster = true;
      this.#manifestChanged();
    });
  }

  /** Stores seek-preview sprite sheet `n`; once stored, the manifest lists `tileMsns` (every tile up to this sheet's last). */
  storeSheet(n: number, jpeg: Buffer, tileMsns: readonly number[], tile: { width: number; height: number }): void {
    if (!this.#accepting()) return;
    this.#thumbnails ??= { tileWidth: tile.width, tileHeight: tile.height, tiles: [] };
    this.#queue.enqueue(spriteKey(this.info.eventId, this.info.zeroMs, n), jpeg, () => {
      const t = this.#thumbnails!;
      if (tileMsns.length > t.tiles.length) t.tiles = [...tileMsns];
      this.#manifestChanged();
    });
  }

  /** The broadcast is over: writes what is queued and the final manifest (waiting at most `timeoutMs`), then reports it ready. */
  async end(timeoutMs = 15_000): Promise<void> {
    if (this.#state === 'ended') return;
    this.#endedAtMs = Date.now();
    await this.#decision;
    if (this.#state !== 'recording') return;
    clearTimeout(this.#manifestTimer);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    const settled = await Promise.race([this.#queue.idle().then(() => this.#flushManifest()), timedOut]);
    clearTimeout(timer);
    if (settled === 'timeout') this.#queue.fail(`storage did not finish the recording within ${timeoutMs} ms of the end`);
    if (this.#queue.failed !== undefined) return;
    this.#state = 'ended';
    const summary = manifestSummary(this.#manifest());
    this.#log.info(summary, 'recording ready');
    this.#hooks.ready(this.info, { ...summary, endedAtMs: this.#endedAtMs });
  }

  #accepting(): boolean {
    return this.#state === 'pending' || this.#state === 'recording';
  }

  #decided(record: boolean): void {
    if (this.#state !== 'pending') return;
    if (!record) {
      this.#state = 'off';
      this.#queue.fail('recording is off for this event');
      return;
    }
    this.#state = 'recording';
    // The queue overflowed while begin() was answering: the recording failed before it started.
    if (this.#queue.failed !== undefined) return this.#fail(this.#queue.failed);
    this.#log.info({ storage: this.#storage.where, prefix: this.info.storagePrefix }, 'recording');
    this.#queue.enqueue(latestKey(this.info.eventId), Buffer.from(JSON.stringify({ zeroMs: this.info.zeroMs })));
    this.#queue.resume();
  }

  #fail(reason: string): void {
    if (this.#state === 'off' || this.#state === 'pending') return;
    this.#state = 'failed';
    clearTimeout(this.#manifestTimer);
    this.#log.error({ reason }, 'recording failed; live goes on');
    this.#hooks.failed(this.info, reason);
  }

  #manifestChanged(): void {
    this.#manifestDirty = true;
    if (this.#manifestTimer || this.#manifestWriting || this.#state !== 'recording') return;
    this.#manifestTimer = setTimeout(() => {
      this.#manifestTimer = undefined;
      this.#writeManifest();
    }, MANIFEST_INTERVAL_MS);
  }

  #manifest(): RecordingManifest {
    const variants = new Map(this.#variants().map((v) => [v.uri.split('/')[0]!, v]));
    const renditions: RecordingManifest['renditions'] = [];
    for (const [name, r] of this.#renditions) {
      const variant = variants.get(name);
      if (!variant) continue;
      const segments = r.segments.filter((s) => r.inits.has(s.run)).sort((a, b) => a.msn - b.msn);
      renditions.push({ name, variant, segments });
    }
    return {
      version: 1,
      eventId: this.info.eventId,
      zeroMs: this.info.zeroMs,
      startedAtMs: this.info.startedAtMs,
      ...(this.#endedAtMs !== undefined ? { endedAtMs: this.#endedAtMs } : {}),
      segmentTargetSec: this.#segmentTargetSec,
      renditions,
      ...(this.#poster ? { poster: true } : {}),
      ...(this.#thumbnails && this.#thumbnails.tiles.length > 0 ? { thumbnails: this.#thumbnails } : {}),
    };
  }

  /** Queues a manifest write of what is stored now; one at a time, again afterwards if something changed meanwhile. */
  #writeManifest(): void {
    if (this.#manifestWriting) return;
    this.#manifestDirty = false;
    this.#manifestWriting = true;
    const body = Buffer.from(JSON.stringify(this.#manifest()));
    const queued = this.#queue.enqueue(manifestKey(this.info.eventId, this.info.zeroMs), body, () => {
      this.#manifestWriting = false;
      if (this.#manifestDirty) this.#manifestChanged();
    });
    if (!queued) this.#manifestWriting = false;
  }

  /** Writes the final manifest; resolves once stored (or the queue failed). */
  async #flushManifest(): Promise<void> {
    while (this.#manifestWriting && this.#queue.failed === undefined) await this.#queue.idle();
    if (this.#queue.failed !== undefined) return;
    this.#writeManifest();
    await this.#queue.idle();
  }
}
