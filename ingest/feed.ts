// The live-feed contract between ingest (RTMP, WHIP) and the origin: one FLV byte stream per publish session.
import type { Logger } from '../lib/logger.ts';
import type { Registry } from '../lib/metrics.ts';
import type { IngestStats } from './flv-stats.ts';
import type { KeyGuessLimiter } from './key-guesses.ts';
import type { PublisherSlots } from './publishers.ts';

/** Where a publisher's live feed goes: one FLV byte stream (H.264 + AAC) per publish session. */
export interface FeedSink {
  /** A publisher for `eventId` started; returns where to write its FLV bytes. */
  open(eventId: string, source: { protocol: 'rtmp' | 'whip'; sessionId: string; remoteAddress: string }): LiveFeed;
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
