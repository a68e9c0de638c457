// The live-feed contract between ingest (RTMP, WHIP) and the origin: one FLV byte stream per publish session.
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

/** Who is publishing, and (when the feed's timestamps were shifted onto it) the event's media timeline. */
export interface FeedSource {
  protocol: 'rtmp' | 'whip';
  sessionId: string;
  remoteAddress: string;
  /** Timestamps are ms since `zeroMs` (wall clock); `session` is the broadcast's publish session (1, 2, ...). */
  timeline?: { zeroMs: number; session: number };
}
/** One publish session's FLV byte stream. */
export interface LiveFeed {
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
  feeds: FeedSink;
  /** Called every config.healthIntervalSec for each live publisher with its ingest health. */
  onHealth?(eventId: string, stats: IngestStats): void;
  /** The node's one-publisher-per-event registry, shared by its ingests; default: this ingest's own. */
  publishers?: PublisherSlots;
  /** Wrong-key counter per address (share one between the ingests of a node); default: 10 per minute, this ingest's own. */
  keyGuesses?: KeyGuessLimiter;
}
