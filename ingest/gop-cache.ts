// What a receiver joining a live FLV stream mid-way needs to start decoding at once: the FLV header, the metadata
// and decoder configurations (AVC, AAC sequence headers), and the tags since the last video keyframe.
import { isSequenceHeader, isVideoKeyframe, readMetaData, TagType, type FlvTag } from '../lib/flv.ts';

/** Default bound on the cached GOP; a longer one is dropped and joiners wait for the next keyframe. */
export const DEFAULT_MAX_GOP_BYTES = 32 * 1024 * 1024;

/** Where a joining receiver starts: the bytes to send first, and whether it must then skip media until a keyframe. */
export interface GopSnapshot {
  buffers: Buffer[];
  /** True when the cache holds no GOP although keyframes were seen (dropped as too long): skip media up to the next keyframe. */
  awaitKeyframe: boolean;
}

/** Keeps the latest GOP of one FLV stream (fed tag by tag) and the headers that precede it. */
export class GopCache {
  /** The 13-byte FLV header, once known. */
  header: Buffer | undefined;
  #meta: FlvTag | undefined;
  #videoConfig: FlvTag | undefined;
  #audioConfig: FlvTag | undefined;
  /** Metadata and configs as they were when the cached GOP began. */
  #prefix: FlvTag[] = [];
  #gop: FlvTag[] = [];
  #gopBytes = 0;
  #keyframeSeen = false;

  constructor(private readonly maxGopBytes: number = DEFAULT_MAX_GOP_BYTES) {}

  /** Records the next tag of the stream. */
  push(tag: FlvTag): void {
    if (tag.type === TagType.script && readMetaData(tag)) this.#meta = tag;
    else if (isSequenceHeader(tag)) {
      if (tag.type === TagType.video) this.#videoConfig = tag;
      else this.#audioConfig = tag;
    }
    if (isVideoKeyframe(tag)) {
      this.#keyframeSeen = true;
      this.#prefix = [this.#meta, this.#videoConfig, this.#audioConfig].filter((t): t is FlvTag => t !== undefined);
      this.#gop = [tag];
      this.#gopBytes = tag.raw.length;
      return;
    }
    if (this.#gop.length === 0) return; // before the first keyframe, or after a dropped GOP
    this.#gop.push(tag);
    this.#gopBytes += tag.raw.length;
    if (this.#gopBytes > this.maxGopBytes) {
      this.#gop = [];
      this.#gopBytes = 0;
    }
  }

  /** Bytes of the cached GOP. */
  get gopBytes(): number {
    return this.#gopBytes;
  }

  /** What a receiver joining now gets first; undefined before the FLV header arrived. */
  snapshot(): GopSnapshot | undefined {
    if (!this.header) return undefined;
    if (this.#gop.length > 0) {
      return { buffers: [this.header, ...this.#prefix.map((t) => t.raw), ...this.#gop.map((t) => t.raw)], awaitKeyframe: false };
    }
    const configs = [this.#meta, this.#videoConfig, this.#audioConfig].filter((t): t is FlvTag => t !== undefined);
    return { buffers: [this.header, ...configs.map((t) => t.raw)], awaitKeyframe: this.#keyframeSeen };
  }
}
