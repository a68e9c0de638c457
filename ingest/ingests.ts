// A node's two ingests, wired together: one publisher per event whichever protocol it came by (one registry,
// ingest/publishers.ts), and wrong stream keys counted across both. All-in-one mode and `--role origin` compose
// the same pair.
import type { Config } from '../config/schema.ts';
import type { IngestDeps } from './feed.ts';
import { createKeyGuessLimiter } from './key-guesses.ts';
import { createPublisherRegistry } from './publishers.ts';
import { createRtmpIngest, type RtmpIngest } from './rtmp-ingest.ts';
import { createWhipIngest, type WhipIngest } from './whip-ingest.ts';

/** Creates the RTMP ingest (call its start()) and the WHIP ingest (mount its router at `/whip`). */
export function createIngests(deps: Omit<IngestDeps, 'publishers' | 'keyGuesses'> & { config: Config }): {
  rtmp: RtmpIngest;
  whip: WhipIngest;
} {
  const keyGuesses = createKeyGuessLimiter();
  const publishers = createPublisherRegistry();
  const rtmp = createRtmpIngest({ ...deps, keyGuesses, publishers });
  const whip = createWhipIngest({ ...deps, keyGuesses, publishers });
  return { rtmp, whip };
}
