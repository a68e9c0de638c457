// Test helper: a synthetic FLV stream (header, onMetaData, AVC and AAC sequence headers, then video frames with a
// keyframe every `gopFrames` and audio between them), tag by tag, with payloads that name their tag, so a test can
// tell which tags arrived where without ffmpeg.
import { FLV_HEADER_LENGTH, FlvReader, isSequenceHeader, isVideoKeyframe, readMetaData, TagType, type FlvTag } from '../../lib/flv.ts';

/** The 13-byte FLV header (audio + video) with the first previous-tag-size. */
export function flvHeader(): Buffer {
  return Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);
}

/** One FLV tag (header, body, previous-tag-size). */
export function flvTag(type: number, timestamp: number, body: Buffer): Buffer {
  const out = Buffer.alloc(11 + body.length + 4);
  out[0] = type;
  out.writeUIntBE(body.length, 1, 3);
  out.writeUIntBE(timestamp & 0xffffff, 4, 3);
  out[7] = (timestamp >>> 24) & 0xff;
  body.copy(out, 11);
  out.writeUInt32BE(11 + body.length, 11 + body.length);
  return out;
}

/** An onMetaData script tag with width and height. */
export function metaTag(width = 640, height = 360): Buffer {
  const str = (s: string) => {
    const b = Buffer.alloc(2 + s.length);
    b.writeUInt16BE(s.length);
    b.write(s, 2, 'latin1');
    return b;
  };
  const num = (n: number) => {
    const b = Buffer.alloc(9);
    b[0] = 0;
    b.writeDoubleBE(n, 1);
    return b;
  };
  const count = Buffer.alloc(5);
  count[0] = 0x08;
  count.writeUInt32BE(2, 1);
  const body = Buffer.concat([
    Buffer.from([0x02]),
    str('onMetaData'),
    count,
    str('width'),
    num(width),
    str('height'),
    num(height),
    Buffer.from([0, 0, 9]),
  ]);
  return flvTag(TagType.script, 0, body);
}

function payload(label: string, size: number): Buffer {
  const b = Buffer.alloc(Math.max(size, label.length));
  b.write(label, 'latin1');
  return b;
}

/** The AVC decoder configuration tag. */
export const avcConfig = (): Buffer => flvTag(TagType.video, 0, Buffer.concat([Buffer.from([0x17, 0x00, 0, 0, 0]), payload('avcC', 16)]));
/** The AAC AudioSpecificConfig tag. */
export const aacConfig = (): Buffer => flvTag(TagType.audio, 0, Buffer.from([0xaf, 0x00, 0x11, 0x90]));
/** A video frame whose payload starts with `v<ts>`. */
export const videoFrame = (ts: number, key: boolean, size = 2000): Buffer =>
  flvTag(TagType.video, ts, Buffer.concat([Buffer.from([key ? 0x17 : 0x27, 0x01, 0, 0, 0]), payload(`v${ts}`, size)]));
/** An AAC frame whose payload starts with `a<ts>`. */
export const audioFrame = (ts: number, size = 200): Buffer =>
  flvTag(TagType.audio, ts, Buffer.concat([Buffer.from([0xaf, 0x01]), payload(`a${ts}`, size)]));

/** Options of a synthetic stream. */
export interface SynthOptions {
  /** Video frames (30 per second). */
  frames: number;
  /** A keyframe every this many frames (default 30). */
  gopFrames?: number;
  /** Bytes of each video frame's payload (default 2000). */
  frameBytes?: number;
  /** First timestamp (default 0). */
  startMs?: number;
}

/** A stream as a list of pieces: the header, the metadata and configs, then one video frame and one audio frame per step. */
export function synthStream(o: SynthOptions): Buffer[] {
  const gop = o.gopFrames ?? 30;
  const start = o.startMs ?? 0;
  const out = [flvHeader(), metaTag(), avcConfig(), aacConfig()];
  for (let i = 0; i < o.frames; i++) {
    const ts = start + Math.round((i * 1000) / 30);
    out.push(videoFrame(ts, i % gop === 0, o.frameBytes));
    out.push(audioFrame(ts));
  }
  return out;
}

/** Parses a complete FLV byte stream into its header and tags (throws on a torn tail). */
export function parseFlv(bytes: Buffer): { header: Buffer; tags: FlvTag[] } {
  const r = new FlvReader();
  const tags = r.push(bytes);
  if (!r.header) throw new Error(`no FLV header in ${bytes.length} bytes`);
  if (r.bufferedBytes !== 0) throw new Error(`${r.bufferedBytes} bytes of a torn tag at the end`);
  return { header: r.header, tags };
}

/** A short name for each tag: `meta`, `avc-config`, `aac-config`, `key@<ts>`, `v@<ts>`, `a@<ts>`. */
export function describeTags(tags: FlvTag[]): string[] {
  return tags.map((t) => {
    if (t.type === TagType.script) return readMetaData(t) ? 'meta' : 'script';
    if (isSequenceHeader(t)) return t.type === TagType.video ? 'avc-config' : 'aac-config';
    if (isVideoKeyframe(t)) return `key@${t.timestamp}`;
    return `${t.type === TagType.video ? 'v' : 'a'}@${t.timestamp}`;
  });
}

export { FLV_HEADER_LENGTH };
