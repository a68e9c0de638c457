// The FLV an ingest's ffmpeg (WHIP's depacketizer, SRT's remux) writes to stdout, read tag by tag on its way into
// the session's feed: the ingest sees each tag (health stats, resolution), then the bytes go on in order.
import type { Readable } from 'node:stream';
import { FlvReader, TagType, readMetaData, type FlvTag } from '../lib/flv.ts';
import type { Logger } from '../lib/logger.ts';
import type { FlvStats, IngestStats } from './flv-stats.ts';

/** What the reader feeds: a session's stats and resolution, and where its bytes go. */
export interface FlvOutputSession {
  readonly stats: FlvStats;
  resolution: { width?: number; height?: number };
}

/**
 * Reads `stdout` as FLV: each tag is observed in `s.stats` (and its onMetaData sets `s.resolution`), passed to
 * `onTag`, and every piece (the header, then each tag) handed to `write`. `active()` false: output is dropped.
 * A parse or write error goes to `fail` (the ingest ends the session).
 */
export function readFlvOutput(
  stdout: Readable,
  s: FlvOutputSession,
  opts: { active(): boolean; write(piece: Buffer): void; fail(err: unknown): void; onTag?(tag: FlvTag): void },
): void {
  const reader = new FlvReader();
  stdout.on('data', (chunk: Buffer) => {
    if (!opts.active()) return;
    try {
      const hadHeader = reader.header !== undefined;
      const tags = reader.push(chunk);
      if (!hadHeader && reader.header) opts.write(reader.header);
      for (const tag of tags) {
        s.stats.observe(tag.raw);
        if (tag.type === TagType.script) {
          const meta = readMetaData(tag);
          if (typeof meta?.width === 'number' && typeof meta.height === 'number') s.resolution = { width: meta.width, height: meta.height };
        }
        opts.onTag?.(tag);
        opts.write(tag.raw);
      }
    } catch (err) {
      opts.fail(err);
    }
  });
}

/** Sends a session's health report (the stats since the last one); a failing receiver is logged, never thrown. */
export function reportHealth(
  onHealth: ((eventId: string, stats: IngestStats) => void) | undefined,
  log: Logger,
  eventId: string,
  s: FlvOutputSession,
): void {
  try {
    onHealth?.(eventId, s.stats.take(s.resolution));
  } catch (err) {
    log.error({ err, eventId }, 'health report failed');
  }
}
