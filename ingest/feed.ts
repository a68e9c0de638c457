// The live-feed contract between ingest (RTMP, WHIP, SRT) and the origin: one FLV byte stream per publish session.
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { IngestStats } from './flv-stats.ts';
import type { KeyGuessLimiter } from './key-guesses.ts';
import type { PublisherSlots } from './publishers.ts';

/** Where a publisher's live feed goes: one FLV byte stream (H.264 + AAC) per publish session. */
export interface FeedSink {
  /**
   * A publisher for `eventId` started; returns where to write its FLV bytes. With `timeline`, the bytes' timestamps
   * are already on the event's media timeline (ingest/timeline.ts); without, the origin puts them on its own.
   */
  open(eventId: string, source: FeedSource): LiveFeed;
}

/** The protocols publishers come by. */
export type IngestProtocol = 'rtmp' | 'whip' | 'srt';

/** Who is publishing, and (when the feed's timestamps were shifted onto it) the event's media timeline. */
export interface FeedSource {
  protocol: IngestProtocol;
  sessionId: string;
  remoteAddress: string;
  /** Timestamps are ms since `zeroMs` (wall clock); `session` is the broadcast's publish session (1, 2, ...). */
  timeline?: { zeroMs: number; session: number };
}
/**
 * Where an ingest hands its publishers' feeds: an origin in this process (a FeedSink), or one whose open waits, e.g.
 * to place the event on origins (ingest/feed-forwarder.ts). A rejected open refuses the publisher: a FeedRefusal's
 * message says why, for the publisher and the log.
 */
export interface IngestFeedSink {
  /** As FeedSink.open, possibly asynchronous. */
  open(eventId: string, source: FeedSource): LiveFeed | Promise<LiveFeed>;
}
/** A publish the feed sink will not take (e.g. `pool_full`: every origin is at capacity). */
export class FeedRefusal extends Error {
  override name = 'FeedRefusal';
  constructor(
    /** Machine-readable reason, e.g. `pool_full`, `no_origins`, `unavailable`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
/** One publish session's FLV byte stream. */
export interface LiveFeed {
  /** Takes the next bytes; throws when the feed can go no further (the ingest then ends the publish). */
  write(chunk: Buffer): void;
  /** The publisher went away (or was disconnected). */
  end(): void;
}

/** What an ingest (RTMP or WHIP) needs from its parent, besides its configuration. */
export interface IngestDeps {
  logger: Logger;
  registry: Registry;
  /** Maps a stream key to its event id; undefined for an unknown key. */
  authorize(streamKey: string): Promise<string | undefined>;
  feeds: IngestFeedSink;
  /** Called every config.healthIntervalSec for each live publisher with its ingest health. */
  onHealth?(eventId: string, stats: IngestStats): void;
  /** A publisher was disconnected because the origin cannot use its media (`reason` is for the broadcaster). */
  onSourceRefused?(eventId: string, reason: string): void;
  /** The node's one-publisher-per-event registry, shared by its ingests; default: this ingest's own. */
  publishers?: PublisherSlots;
  /** Wrong-key counter per address (share one between the ingests of a node); default: 10 per minute, this ingest's own. */
  keyGuesses?: KeyGuessLimiter;
}
