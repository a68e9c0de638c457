// Whether the origin can use a publisher's media, judged from its FLV tags as they arrive: codecs that Debian's
// ffmpeg 5.1 (the origin's decoder) reads from FLV, and some audio or video at all.
import { audioCodecName, videoCodecName } from './flv-stats.ts';

/** How long a publisher may send no audio and no video before it is refused. */
export const NO_MEDIA_SEC = 10;

/** Legacy FLV video codec ids the origin decodes: Sorenson H.263, screen video, VP6, VP6 alpha, screen video 2, H.264. */
const VIDEO_OK = new Set([2, 3, 4, 5, 6, 7]);
/** FLV audio formats the origin decodes (all but the reserved 9, Opus' unofficial 13 and device-specific 15). */
const AUDIO_OK = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 14]);

/** Judges one publish session's tags; `observe` and `overdue` give the reason to refuse it, once. */
export class SourceCheck {
  #media = false;
  #refused = false;
  readonly #since: number;

  constructor(now = Date.now()) {
    this.#since = now;
  }

  /** Feeds one FLV tag as the ingest forwards it (or the FLV header, which is skipped); a reason when the source is unusable. */
  observe(tag: Buffer): string | undefined {
    if (this.#refused || tag.length < 12 || tag.toString('latin1', 0, 3) === 'FLV') return undefined;
    const type = tag[0]! & 0x1f;
    const b0 = tag[11]!;
    let reason: string | undefined;
    if (type === 9) {
      this.#media = true;
      // Enhanced RTMP (HEVC, AV1, VP9 by FourCC) or the unofficial HEVC/AV1 ids: ffmpeg 5.1 reads neither from FLV.
      const enhanced = (b0 & 0x80) !== 0;
      if (enhanced || !VIDEO_OK.has(b0 & 0x0f)) {
        reason = `video codec ${videoCodecName(tag)} is not supported: send H.264 (OBS: Settings → Output → Encoder x264 or a hardware H.264 encoder)`;
      }
    } else if (type === 8) {
      this.#media = true;
      if (!AUDIO_OK.has(b0 >> 4)) reason = `audio codec ${audioCodecName(b0)} is not supported: send AAC (OBS: Settings → Audio, 48 kHz)`;
    }
    if (reason) this.#refused = true;
    return reason;
  }

  /** A reason when no audio or video came within NO_MEDIA_SEC of the session's start. */
  overdue(now = Date.now()): string | undefined {
    if (this.#refused || this.#media || now - this.#since < NO_MEDIA_SEC * 1000) return undefined;
    this.#refused = true;
    return `no audio or video received in the first ${NO_MEDIA_SEC} s`;
  }
}
