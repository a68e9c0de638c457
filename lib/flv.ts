// Incremental FLV reader: splits a live FLV byte stream into tags and reads onMetaData.

/** FLV tag types. */
export const TagType = { audio: 8, video: 9, script: 18 } as const;

/** One FLV tag with the bytes that re-create it (tag header, body, previous-tag-size). */
export interface FlvTag {
  type: number;
  /** Timestamp in milliseconds (with the extended byte). */
  timestamp: number;
  /** Tag body. */
  body: Buffer;
  /** The whole tag as it appeared in the stream, ready to be written again. */
  raw: Buffer;
}

/** Raised for bytes that are not a well-formed FLV stream. */
export class FlvError extends Error {
  override name = 'FlvError';
}

/** The 9-byte FLV file header plus the first (zero) previous-tag-size. */
export const FLV_HEADER_LENGTH = 13;
const MAX_TAG_BYTES = 8 * 1024 * 1024;

/** Splits an FLV byte stream into its header and tags; bounded to one tag of buffering. */
export class FlvReader {
  private buf: Buffer = Buffer.alloc(0);
  /** The stream's header (13 bytes) once seen. */
  header: Buffer | undefined;

  /** Feeds bytes; returns every tag they complete. */
  push(chunk: Buffer): FlvTag[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const tags: FlvTag[] = [];
    let off = 0;
    if (!this.header) {
      if (this.buf.length < FLV_HEADER_LENGTH) return tags;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV') throw new FlvError('not an FLV stream (bad signature)');
      const dataOffset = this.buf.readUInt32BE(5);
      if (dataOffset !== 9) throw new FlvError(`unsupported FLV header size ${dataOffset}`);
      this.header = Buffer.from(this.buf.subarray(0, FLV_HEADER_LENGTH));
      off = FLV_HEADER_LENGTH;
    }
    while (this.buf.length - off >= 11) {
      const size = this.buf.readUIntBE(off + 1, 3);
      if (size > MAX_TAG_BYTES) throw new FlvError(`FLV tag of ${size} bytes exceeds the limit`);
      const total = 11 + size + 4;
      if (this.buf.length - off < total) break;
      const raw = this.buf.subarray(off, off + total);
      const type = raw[0]! & 0x1f;
      const timestamp = (raw.readUIntBE(4, 3) | (raw[7]! << 24)) >>> 0;
      tags.push({ type, timestamp, body: raw.subarray(11, 11 + size), raw });
      off += total;
    }
    this.buf = off === this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(off));
    return tags;
  }

  /** Bytes held waiting for the rest of a tag. */
  get bufferedBytes(): number {
    return this.buf.length;
  }
}

/** True for a video tag holding a keyframe (not a sequence header). */
export function isVideoKeyframe(tag: FlvTag): boolean {
  return tag.type === TagType.video && tag.body.length > 1 && tag.body[0]! >> 4 === 1 && !isSequenceHeader(tag);
}

/** True for an AVC decoder configuration or AAC AudioSpecificConfig tag. */
export function isSequenceHeader(tag: FlvTag): boolean {
  if (tag.type === TagType.video) return (tag.body[0]! & 0x0f) === 7 && tag.body[1] === 0;
  if (tag.type === TagType.audio) return tag.body[0]! >> 4 === 10 && tag.body[1] === 0;
  return false;
}

/** Reads the AMF0 `onMetaData` of a script tag into a flat record of numbers, strings and booleans. */
export function readMetaData(tag: FlvTag): Record<string, number | string | boolean> | undefined {
  if (tag.type !== TagType.script) return undefined;
  const b = tag.body;
  let p = 0;
  const need = (n: number) => {
    if (p + n > b.length) throw new FlvError('truncated AMF0 data');
  };
  const str = (): string => {
    need(2);
    const n = b.readUInt16BE(p);
    p += 2;
    need(n);
    const s = b.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  const out: Record<string, number | string | boolean> = {};
  const value = (depth: number, key?: string): void => {
    if (depth > 8) throw new FlvError('AMF0 nesting too deep');
    need(1);
    const marker = b[p++]!;
    switch (marker) {
      case 0x00:
        need(8);
        if (key !== undefined) out[key] = b.readDoubleBE(p);
        p += 8;
        return;
      case 0x01:
        need(1);
        if (key !== undefined) out[key] = b[p] !== 0;
        p += 1;
        return;
      case 0x02: {
        const s = str();
        if (key !== undefined) out[key] = s;
        return;
      }
      case 0x03:
      case 0x08:
        if (marker === 0x08) {
          need(4);
          p += 4;
        }
        for (;;) {
          const k = str();
          need(1);
          if (k === '' && b[p] === 0x09) {
            p += 1;
            return;
          }
          value(depth + 1, depth === 0 ? k : undefined);
        }
      case 0x05:
      case 0x06:
        return;
      case 0x0a: {
        need(4);
        const n = b.readUInt32BE(p);
        p += 4;
        for (let i = 0; i < n; i++) value(depth + 1);
        return;
      }
      case 0x0b:
        need(10);
        p += 10;
        return;
      default:
        throw new FlvError(`unsupported AMF0 marker 0x${marker.toString(16)}`);
    }
  };
  try {
    need(1);
    if (b[p++] !== 0x02 || str() !== 'onMetaData') return undefined;
    value(0);
  } catch (err) {
    if (!(err instanceof FlvError)) throw err;
    if (Object.keys(out).length === 0) return undefined;
  }
  return out;
}
