// A node's ingests, wired together: one publisher per event whichever protocol it came by (one registry,
// ingest/publishers.ts), and wrong stream keys counted across all of them. All-in-one mode and `--role origin`
// compose the same set.
import type { Config } from '../config/schema.ts';
import type { IngestDeps } from './feed.ts';
import type { FeedTaps } from './feed-taps.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { createPublisherRegistry, type PublisherSlots } from './publishers.ts';
import { createRtmpIngest, type RtmpIngest } from './rtmp-ingest.ts';
import { createSrtIngest, type SrtIngest } from './srt-ingest.ts';
import { createWhipIngest, type WhipIngest } from './whip-ingest.ts';

/** Creates the RTMP ingest (call its start()), the WHIP ingest (mount its router at `/whip`) and the SRT ingest (start()). */
export function createIngests(
  deps: Omit<IngestDeps, 'publishers' | 'keyGuesses'> & {
    config: Config;
    /** Taps the feeds (for WHEP playback on this node, ingest/feed-taps.ts); default: feeds go on untapped. */
    taps?: FeedTaps;
  },
): {
  rtmp: RtmpIngest;
  whip: WhipIngest;
  srt: SrtIngest;
  /** The node's publisher registry (read-only use: who holds an event, e.g. ingest/command-receiver.ts). */
  publishers: PublisherSlots;
  /** Closes the event's publisher of `protocol` (`rtmp`, `whip` or `srt`); false if none. */
  disconnect(eventId: string, protocol: string): boolean;
} {
  const { taps, ...rest } = deps;
  deps = { ...rest, feeds: taps ? taps.wrap(deps.feeds) : deps.feeds };
  const keyGuesses = createKeyGuessLimiter();
  const publishers = createPublisherRegistry();
  const rtmp = createRtmpIngest({ ...deps, keyGuesses, publishers });
  const whip = createWhipIngest({ ...deps, keyGuesses, publishers });
  const srt = createSrtIngest({ ...deps, keyGuesses, publishers });
  const byProtocol = new Map<string, { disconnect(eventId: string): boolean }>([
    ['rtmp', rtmp],
    ['whip', whip],
    ['srt', srt],
  ]);
  const disconnect = (eventId: string, protocol: string): boolean => byProtocol.get(protocol)?.disconnect(eventId) ?? false;
  return { rtmp, whip, srt, publishers, disconnect };
}
