// The event's media timeline: feed timestamps rewritten to ms since the broadcast's first go-live, so that every
// origin replica numbers segments (msn = floor(t / target)) and dates them (PROGRAM-DATE-TIME = zero + t) alike, and a
// returning publisher continues later on the same timeline (the gap is the wall-clock gap).
import { FLV_HEADER_LENGTH, FlvError, TagType } from '../lib/flv.ts';
import type { FeedSink, LiveFeed } from './feed.ts';

/** The timeline a publish session's feed is on: what FeedSink.open's `source.timeline` carries. */
export interface FeedTimeline {
  /** Wall-clock ms of t = 0, fixed at the broadcast's first go-live and kept across reconnects. */
  zeroMs: number;
  /** Publish session of the broadcast: 1 for the first, +1 per reconnect. */
  session: number;
}

const TAG_HEADER = 11;
const MAX_TAG_BYTES = 8 * 1024 * 1024;

/**
 * A streaming FLV timestamp shifter for one publish session: the session's first audio or video tag gets timestamp
 * `offsetMs`, every later tag keeps its distance from that one (never below `offsetMs`; script tags before it get
 * `offsetMs`). Accepts any chunking; returns the bytes to forward (header, tags with rewritten 24+8-bit timestamps,
 * previous-tag-sizes), copying only tag headers. Throws FlvError on bytes that are not FLV.
 */
export function createFlvTimelineShift(offsetMs: number): (chunk: Buffer) => Buffer[] {
  if (!Number.isInteger(offsetMs) || offsetMs < 0 || offsetMs > 0xffffffff) throw new RangeError(`bad timeline offset ${offsetMs}`);
  let headerLeft = FLV_HEADER_LENGTH; // bytes of the file header (and its previous-tag-size 0) still to pass
  let head = Buffer.alloc(0); // a tag header being collected
  let bodyLeft = 0; // body + previous-tag-size bytes of the current tag still to pass through
  let base: number | undefined; // source timestamp of the first audio or video tag

  const rewrite = (h: Buffer): Buffer => {
    const type = h[0]! & 0x1f;
    const size = h.readUIntBE(1, 3);
    if (size > MAX_TAG_BYTES) throw new FlvError(`FLV tag of ${size} bytes exceeds the limit`);
    const ts = (h.readUIntBE(4, 3) | (h[7]! << 24)) >>> 0;
    if (base === undefined && (type === TagType.audio || type === TagType.video)) base = ts;
    const out = Math.min(offsetMs + Math.max(0, base === undefined ? 0 : ts - base), 0xffffffff);
    const copy = Buffer.from(h);
    copy.writeUIntBE(out & 0xffffff, 4, 3);
    copy[7] = out >>> 24;
    bodyLeft = size + 4;
    return copy;
  };

  return (chunk) => {
    const out: Buffer[] = [];
    let i = 0;
    if (headerLeft > 0) {
      const n = Math.min(headerLeft, chunk.length);
      const at = FLV_HEADER_LENGTH - headerLeft;
      if (at < 3 && chunk.toString('latin1', 0, Math.min(n, 3 - at)) !== 'FLV'.slice(at, at + Math.min(n, 3 - at))) {
        throw new FlvError('not an FLV stream (bad signature)');
      }
      out.push(chunk.subarray(0, n));
      headerLeft -= n;
      i = n;
    }
    while (i < chunk.length) {
      if (bodyLeft > 0) {
        const n = Math.min(bodyLeft, chunk.length - i);
        out.push(chunk.subarray(i, i + n));
        bodyLeft -= n;
        i += n;
        continue;
      }
      const need = TAG_HEADER - head.length;
      if (head.length === 0 && chunk.length - i >= TAG_HEADER) {
        out.push(rewrite(chunk.subarray(i, i + TAG_HEADER)));
        i += TAG_HEADER;
      } else {
        const n = Math.min(need, chunk.length - i);
        head = Buffer.concat([head, chunk.subarray(i, i + n)]);
        i += n;
        if (head.length === TAG_HEADER) {
          out.push(rewrite(head));
          head = Buffer.alloc(0);
        }
      }
    }
    return out;
  };
}

/** Options of withTimeline. */
export interface TimelineOptions {
  /** How long after a publisher leaves its return continues the broadcast (config.reconnectWindowSec). */
  reconnectWindowSec: number;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
}

/**
 * All-in-one mode's timeline keeper, in front of the origin's FeedSink: per event, the first publish fixes the
 * broadcast's zero (now, session 1); a publish while another is live or within the reconnect window after the last
 * one ended continues it (same zero, session + 1). Each feed is shifted onto the timeline (offset now - zero) and
 * opened with `source.timeline`, as the cluster's forwarder does, so that both number segments alike.
 */
export function withTimeline(sink: FeedSink, opts: TimelineOptions): FeedSink {
  const now = opts.now ?? Date.now;
  const windowMs = opts.reconnectWindowSec * 1000;
  const broadcasts = new Map<string, FeedTimeline & { live: number; endedAtMs: number }>();
  return {
    open(eventId, source) {
      const at = now();
      for (const [id, b] of broadcasts) if (b.live === 0 && at - b.endedAtMs > windowMs) broadcasts.delete(id);
      let b = broadcasts.get(eventId);
      if (b) b.session++;
      else broadcasts.set(eventId, (b = { zeroMs: at, session: 1, live: 0, endedAtMs: at }));
      const timeline = { zeroMs: b.zeroMs, session: b.session };
      const feed = sink.open(eventId, { ...source, timeline });
      const shift = createFlvTimelineShift(at - b.zeroMs);
      const state = b;
      state.live++;
      let ended = false;
      const shifted: LiveFeed = {
        write(chunk) {
          for (const part of shift(chunk)) feed.write(part);
        },
        end() {
          if (ended) return;
          ended = true;
          state.live--;
          state.endedAtMs = now();
          feed.end();
        },
      };
      return shifted;
    },
  };
}
