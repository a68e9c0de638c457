// Taps on a node's live feeds: each publisher's FLV bytes go on to the origin (or forwarder) unchanged, and a copy is
// offered to local readers (WHEP playback, ingest/whep-playback.ts), who join at the last keyframe (ingest/gop-cache.ts).
import type { Logger } from '../lib/logger.ts';
import { FlvReader } from '../lib/flv.ts';
import { GopCache } from './gop-cache.ts';
import type { IngestFeedSink, LiveFeed } from './feed.ts';

/** A reader of one live feed. */
export interface FeedReader {
  /** The next bytes of the feed (FLV tags, or the header first). */
  data(chunk: Buffer): void;
  /** The publish ended: no more bytes come on this feed. */
  end(): void;
}

/** One event's live feed as its readers see it. */
export interface FeedTap {
  readonly eventId: string;
  /** True when the feed carries an AAC audio track (a sequence header or audio tag was seen). */
  readonly hasAudio: boolean;
  /**
   * Adds a reader: it gets the FLV header, metadata, decoder configurations and the tags since the last keyframe
   * at once (synchronously), then every new tag. Returns the function that removes it.
   */
  read(reader: FeedReader): () => void;
}

/** The taps of a node's ingests. */
export interface FeedTaps {
  /** `sink` with every opened feed tapped. */
  wrap(sink: IngestFeedSink): IngestFeedSink;
  /** The live feed of `eventId` that has started a keyframe, if any. */
  live(eventId: string): FeedTap | undefined;
}

class Tap implements FeedTap {
  readonly #reader = new FlvReader();
  readonly #gop = new GopCache();
  readonly #readers = new Set<FeedReader>();
  #broken = false;
  #keyframes = false;
  hasAudio = false;

  constructor(
    readonly eventId: string,
    private readonly log: Logger,
  ) {}

  get started(): boolean {
    return this.#keyframes && !this.#broken;
  }

  push(chunk: Buffer): void {
    if (this.#broken) return;
    try {
      const hadHeader = this.#reader.header !== undefined;
      const tags = this.#reader.push(chunk);
      const out: Buffer[] = [];
      if (!hadHeader && this.#reader.header) {
        this.#gop.header = this.#reader.header;
        out.push(this.#reader.header);
      }
      for (const tag of tags) {
        this.#gop.push(tag);
        if (tag.type === 8) this.hasAudio = true;
        if (this.#gop.gopBytes > 0) this.#keyframes = true;
        out.push(tag.raw);
      }
      for (const r of this.#readers) for (const b of out) r.data(b);
    } catch (err) {
      // The origin judges the feed itself; a tap that cannot follow it only stops offering it.
      this.#broken = true;
      this.log.warn({ eventId: this.eventId, err: (err as Error).message }, 'feed tap stopped');
      this.end();
    }
  }

  end(): void {
    const readers = [...this.#readers];
    this.#readers.clear();
    for (const r of readers) r.end();
  }

  read(reader: FeedReader): () => void {
    const snapshot = this.#gop.snapshot();
    if (!snapshot || this.#broken) {
      reader.end();
      return () => {};
    }
    for (const b of snapshot.buffers) reader.data(b);
    this.#readers.add(reader);
    return () => this.#readers.delete(reader);
  }
}

/** Creates the taps of one node (one per ingest pair, ingest/ingests.ts). */
export function createFeedTaps(logger: Logger): FeedTaps {
  const live = new Map<string, Tap>();
  return {
    wrap(sink) {
      return {
        open: async (eventId, source) => {
          const feed = await sink.open(eventId, source);
          const tap = new Tap(eventId, logger);
          // A new publish (a reconnect too) replaces the event's tap: its readers' stream ended with the old one.
          live.get(eventId)?.end();
          live.set(eventId, tap);
          let ended = false;
          const tapped: LiveFeed = {
            write(chunk) {
              feed.write(chunk);
              if (!ended) tap.push(chunk);
            },
            end() {
              if (!ended) {
                ended = true;
                if (live.get(eventId) === tap) live.delete(eventId);
                tap.end();
              }
              feed.end();
            },
          };
          return tapped;
        },
      };
    },
    live(eventId) {
      const tap = live.get(eventId);
      return tap?.started ? tap : undefined;
    },
  };
}
