// Ingest health from a publisher's FLV tags: input bitrate, frame rate, keyframe interval, codecs and late
// frames, accumulated between two reports.
import type { IngestProtocol } from './feed.ts';

/** One periodic ingest health report of a publisher. */
export interface IngestStats {
  protocol: IngestProtocol;
  /** Seconds this report covers. */
  intervalSec: number;
  /** When this publish session started (ms since epoch): a new value means the publisher (re)connected. */
  publishStartedAt: number;
  /** Input bitrate over the interval, kbit/s (FLV bytes). */
  bitrateKbps: number;
  /** Video frames per second over the interval. */
  fps: number;
  /** Seconds between the last two keyframes (source timestamps); null before two were seen. */
  keyframeIntervalSec: number | null;
  width: number | null;
  height: number | null;
  /** `h264`, `hevc`, … or null before the first video tag. */
  videoCodec: string | null;
  /** `aac`, `mp3`, … or null without audio. */
  audioCodec: string | null;
  /** Video frames that arrived over a second later than the publisher's timeline predicts. */
  lateFrames: number;
}

const videoCodecs: Record<number, string> = { 2: 'h263', 4: 'vp6', 7: 'h264', 12: 'hevc', 13: 'av1' };
const audioCodecs: Record<number, string> = { 2: 'mp3', 7: 'g711a', 8: 'g711u', 10: 'aac', 11: 'speex', 13: 'opus' };
/** The audio codec of an FLV audio tag, from its first body byte (`aac`, `mp3`, … or `flv-audio-N`). */
export function audioCodecName(b0: number): string {
  return audioCodecs[b0 >> 4] ?? `flv-audio-${b0 >> 4}`;
}

/** The video codec of a whole FLV video tag: legacy codec id, or enhanced RTMP's FourCC (`h264`, `hevc`, `av1`, …). */
export function videoCodecName(tag: Buffer): string {
  const b0 = tag[11]!;
  if ((b0 & 0x80) !== 0) {
    const fourcc = tag.toString('latin1', 12, 16);
    return fourcc === 'hvc1' ? 'hevc' : fourcc === 'av01' ? 'av1' : fourcc === 'vp09' ? 'vp9' : fourcc;
  }
  return videoCodecs[b0 & 0x0f] ?? `flv-video-${b0 & 0x0f}`;
}

/** A frame this much later than the best arrival-vs-timestamp offset seen is late. */
const LATE_MS = 1000;

/** Accumulates one publisher's FLV tags between reports. */
export class FlvStats {
  #bytes = 0;
  #frames = 0;
  #late = 0;
  #since: number;
  readonly #startedAt: number;
  #lastKeyTs: number | undefined;
  #keyInterval: number | null = null;
  #bestLag: number | undefined;
  #videoCodec: string | null = null;
  #audioCodec: string | null = null;

  constructor(
    private readonly protocol: IngestStats['protocol'],
    now = Date.now(),
  ) {
    this.#since = now;
    this.#startedAt = now;
  }

  /** Feeds one FLV tag (or the FLV header, which only counts as bytes). */
  observe(tag: Buffer, now = Date.now()): void {
    this.#bytes += tag.length;
    if (tag.length < 13 || tag.toString('latin1', 0, 3) === 'FLV') return;
    const type = tag[0]! & 0x1f;
    const ts = (tag.readUIntBE(4, 3) | (tag[7]! << 24)) >>> 0;
    const b0 = tag[11]!;
    if (type === 8) {
      this.#audioCodec = audioCodecName(b0);
    } else if (type === 9) {
      const enhanced = (b0 & 0x80) !== 0;
      const frameType = (b0 >> 4) & 0x07;
      this.#videoCodec = videoCodecName(tag);
      if (enhanced) {
        const packetType = b0 & 0x0f;
        if (packetType !== 1 && packetType !== 3) return; // coded frames only
      } else {
        const codecId = b0 & 0x0f;
        if ((codecId === 7 || codecId === 12) && tag[12] !== 1) return; // sequence header / end of sequence
      }
      if (frameType === 5) return; // video info/command frame
      this.#frames++;
      if (frameType === 1) {
        if (this.#lastKeyTs !== undefined && ts > this.#lastKeyTs) this.#keyInterval = (ts - this.#lastKeyTs) / 1000;
        this.#lastKeyTs = ts;
      }
      const lag = now - ts;
      if (this.#bestLag === undefined || lag < this.#bestLag) this.#bestLag = lag;
      else if (lag - this.#bestLag > LATE_MS) this.#late++;
    }
  }

  /** The report since the previous take(), and resets the interval counters. */
  take(resolution: { width?: number; height?: number } = {}, now = Date.now()): IngestStats {
    const intervalSec = Math.max(0.001, (now - this.#since) / 1000);
    const stats: IngestStats = {
      protocol: this.protocol,
      intervalSec,
      publishStartedAt: this.#startedAt,
      bitrateKbps: Math.round((this.#bytes * 8) / intervalSec / 1000),
      fps: Math.round((this.#frames / intervalSec) * 100) / 100,
      keyframeIntervalSec: this.#keyInterval,
      width: resolution.width || null,
      height: resolution.height || null,
      videoCodec: this.#videoCodec,
      audioCodec: this.#audioCodec,
      lateFrames: this.#late,
    };
    this.#bytes = 0;
    this.#frames = 0;
    this.#late = 0;
    this.#since = now;
    return stats;
  }
}
