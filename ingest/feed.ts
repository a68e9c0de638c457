// The live-feed contract between ingest (RTMP, WHIP) and the origin: one FLV byte stream per publish session.

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
