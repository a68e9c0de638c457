// ISO-BMFF (fragmented MP4) parsing: top-level box splitting for a byte stream, and the few
// fields the packager needs from an init segment (moov) and a fragment header (moof).

/** A malformed or unsupported MP4 byte stream. */
export class Mp4Error extends Error {
  override name = 'Mp4Error';
}

/** One complete top-level box, header included. */
export interface Mp4Box {
  type: string;
  bytes: Buffer;
}

/** Options of an Mp4BoxSplitter. */
export interface Mp4BoxSplitterOptions {
  /** Largest accepted box, header included (default 32 MiB). */
  maxBoxBytes?: number;
}

const DEFAULT_MAX_BOX_BYTES = 32 * 1024 * 1024;

/** Splits a byte stream arriving in arbitrary chunks into complete top-level boxes, buffering at most one box. */
export class Mp4BoxSplitter {
  readonly #maxBoxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #offset = 0; // stream offset of the first buffered byte
  #need = 0; // size of the box being buffered, 0 while its header is incomplete

  constructor(opts: Mp4BoxSplitterOptions = {}) {
    this.#maxBoxBytes = opts.maxBoxBytes ?? DEFAULT_MAX_BOX_BYTES;
  }

  /** Bytes held while waiting for the rest of a box. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Feeds bytes; returns the boxes they complete. Throws Mp4Error on a corrupt header. */
  push(chunk: Buffer): Mp4Box[] {
    const boxes: Mp4Box[] = [];
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    for (;;) {
      if (this.#need === 0) {
        if (this.#buffered < 8) break;
        const head = this.#peek(Math.min(16, this.#buffered));
        const size = this.#boxSize(head);
        if (size === undefined) break; // largesize header not complete yet
        this.#need = size;
      }
      if (this.#buffered < this.#need) break;
      const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
      const bytes = all.subarray(0, this.#need);
      boxes.push({ type: bytes.toString('latin1', 4, 8), bytes });
      const rest = all.subarray(this.#need);
      this.#offset += this.#need;
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#buffered = rest.length;
      this.#need = 0;
    }
    return boxes;
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    return first.length >= n ? first.subarray(0, n) : Buffer.concat(this.#chunks, this.#buffered).subarray(0, n);
  }

  #boxSize(head: Buffer): number | undefined {
    const type = head.subarray(4, 8);
    if (!type.every((c) => c >= 0x20 && c <= 0x7e)) {
      throw new Mp4Error(`invalid box type 0x${type.toString('hex')} at byte offset ${this.#offset}`);
    }
    let size = head.readUInt32BE(0);
    if (size === 1) {
      if (head.length < 16) return undefined;
      const large = head.readBigUInt64BE(8);
      size = large > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(large);
      if (size < 16) throw new Mp4Error(`box '${type.toString('latin1')}' has largesize ${large} < 16 at byte offset ${this.#offset}`);
    } else if (size < 8) {
      throw new Mp4Error(`box '${type.toString('latin1')}' has size ${size} < 8 at byte offset ${this.#offset}`);
    }
    if (size > this.#maxBoxBytes) {
      throw new Mp4Error(
        `box '${type.toString('latin1')}' of ${size} bytes exceeds the ${this.#maxBoxBytes}-byte limit at byte offset ${this.#offset}`,
      );
    }
    return size;
  }
}

/** One media track of an init segment. */
export interface TrackInfo {
  id: number;
  kind: 'video' | 'audio';
  timescale: number;
  /** RFC 6381 codec string, e.g. avc1.64001f or mp4a.40.2 (the sample entry type for other codecs). */
  codec: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  /** trex default-sample-duration, if the init carries one. */
  defaultSampleDuration?: number;
  /** trex default-sample-flags, if the init carries one. */
  defaultSampleFlags?: number;
}

/** What parseInit learns from an init segment. */
export interface InitInfo {
  tracks: TrackInfo[];
}

/** Timing of one track fragment (traf) of a moof. */
export interface TrafInfo {
  trackId: number;
  baseMediaDecodeTime: number;
  sampleCount: number;
  /** Sum of sample durations, in the track's timescale. */
  duration: number;
  firstSampleSync: boolean;
  /** tfhd default-base-is-moof flag. */
  defaultBaseIsMoof: boolean;
}

/** What parseMoof learns from a moof. */
export interface FragmentInfo {
  trafs: TrafInfo[];
}

interface Child {
  type: string;
  /** Box payload (after the header). */
  body: Buffer;
}

/** Child boxes of a payload, starting at `start`. */
function children(body: Buffer, start = 0): Child[] {
  const out: Child[] = [];
  let pos = start;
  while (pos + 8 <= body.length) {
    let size = body.readUInt32BE(pos);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > body.length) break;
      size = Number(body.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) {
      size = body.length - pos;
    }
    if (size < header || pos + size > body.length) {
      throw new Mp4Error(`child box at byte ${pos} overruns its parent (${size} bytes, ${body.length - pos} left)`);
    }
    out.push({ type: body.toString('latin1', pos + 4, pos + 8), body: body.subarray(pos + header, pos + size) });
    pos += size;
  }
  return out;
}

function child(body: Buffer | undefined, type: string, start = 0): Buffer | undefined {
  return body && children(body, start).find((c) => c.type === type)?.body;
}

function need(body: Buffer | undefined, what: string, bytes: number): Buffer {
  if (!body) throw new Mp4Error(`missing ${what} box`);
  if (body.length < bytes) throw new Mp4Error(`${what} box too short (${body.length} < ${bytes} bytes)`);
  return body;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Reads an MPEG-4 descriptor header (tag + variable-length size) at pos. */
function descriptor(b: Buffer, pos: number): { tag: number; start: number; end: number } {
  const tag = b.readUInt8(pos);
  let size = 0;
  let p = pos + 1;
  for (let i = 0; i < 4; i++) {
    const byte = b.readUInt8(p++);
    size = (size << 7) | (byte & 0x7f);
    if ((byte & 0x80) === 0) break;
  }
  return { tag, start: p, end: Math.min(p + size, b.length) };
}

/** mp4a.<objectTypeIndication>.<audioObjectType> from an esds payload. */
function mp4aCodec(esds: Buffer): string {
  try {
    const es = descriptor(esds, 4);
    if (es.tag !== 0x03) throw new Mp4Error('esds without ES_Descriptor');
    const flags = esds.readUInt8(es.start + 2);
    let p = es.start + 3;
    if (flags & 0x80) p += 2;
    if (flags & 0x40) p += 1 + esds.readUInt8(p);
    if (flags & 0x20) p += 2;
    const dc = descriptor(esds, p);
    if (dc.tag !== 0x04) throw new Mp4Error('esds without DecoderConfigDescriptor');
    const oti = esds.readUInt8(dc.start);
    const dsi = descriptor(esds, dc.start + 13);
    if (dsi.tag !== 0x05 || dsi.end <= dsi.start) return `mp4a.${hex2(oti)}`;
    let aot = esds.readUInt8(dsi.start) >> 3;
    if (aot === 31) aot = 32 + ((esds.readUInt16BE(dsi.start) >> 5) & 0x3f);
    return `mp4a.${hex2(oti)}.${aot}`;
  } catch (err) {
    if (err instanceof RangeError) throw new Mp4Error('truncated esds box');
    throw err;
  }
}

function parseTrak(trak: Buffer, trex: Map<number, Buffer>): TrackInfo | undefined {
  const tkhd = need(child(trak, 'tkhd'), 'tkhd', 4);
  const tkhdV1 = tkhd.readUInt8(0) === 1;
  const id = need(tkhd, 'tkhd', tkhdV1 ? 24 : 16).readUInt32BE(tkhdV1 ? 20 : 12);
  const mdia = child(trak, 'mdia');
  const mdhd = need(child(mdia, 'mdhd'), 'mdhd', 24);
  const timescale = mdhd.readUInt32BE(mdhd.readUInt8(0) === 1 ? 20 : 12);
  const handler = need(child(mdia, 'hdlr'), 'hdlr', 12).toString('latin1', 8, 12);
  if (handler !== 'vide' && handler !== 'soun') return undefined;
  const stsd = need(child(child(child(mdia, 'minf'), 'stbl'), 'stsd'), 'stsd', 8);
  const entry = children(stsd, 8)[0];
  if (!entry) throw new Mp4Error(`track ${id} has no sample entry`);
  const defaults = trex.get(id);
  const track: TrackInfo = { id, kind: handler === 'vide' ? 'video' : 'audio', timescale, codec: entry.type };
  if (defaults) {
    track.defaultSampleDuration = defaults.readUInt32BE(12);
    track.defaultSampleFlags = defaults.readUInt32BE(20);
  }
  if (track.kind === 'video') {
    const e = need(entry.body, `${entry.type} sample entry`, 78);
    track.width = e.readUInt16BE(24);
    track.height = e.readUInt16BE(26);
    const avcC = child(e, 'avcC', 78);
    if (avcC && avcC.length >= 4) track.codec = `${entry.type}.${hex2(avcC[1]!)}${hex2(avcC[2]!)}${hex2(avcC[3]!)}`;
    if (!track.width || !track.height) {
      const wh = tkhd.length - 8;
      track.width = tkhd.readUInt32BE(wh) >>> 16;
      track.height = tkhd.readUInt32BE(wh + 4) >>> 16;
    }
  } else {
    const e = need(entry.body, `${entry.type} sample entry`, 28);
    track.channels = e.readUInt16BE(16);
    track.sampleRate = e.readUInt32BE(24) >>> 16;
    const version = e.readUInt16BE(8);
    const esds = child(e, 'esds', 28 + (version === 1 ? 16 : version === 2 ? 36 : 0));
    if (entry.type === 'mp4a' && esds) track.codec = mp4aCodec(esds);
  }
  return track;
}

/** Tracks of an init segment (ftyp+moov, or a bare moov). Throws Mp4Error if malformed. */
export function parseInit(init: Buffer): InitInfo {
  try {
    const top = children(init);
    const moov = top.find((b) => b.type === 'moov')?.body;
    if (!moov) throw new Mp4Error('init segment has no moov box');
    const boxes = children(moov);
    const trex = new Map<number, Buffer>();
    for (const mvex of boxes.filter((b) => b.type === 'mvex')) {
      for (const t of children(mvex.body).filter((b) => b.type === 'trex' && b.body.length >= 24)) {
        trex.set(t.body.readUInt32BE(4), t.body);
      }
    }
    const tracks: TrackInfo[] = [];
    for (const trak of boxes.filter((b) => b.type === 'trak')) {
      const track = parseTrak(trak.body, trex);
      if (track) tracks.push(track);
    }
    return { tracks };
  } catch (err) {
    if (err instanceof RangeError) throw new Mp4Error(`truncated init segment: ${err.message}`);
    throw err;
  }
}

/** True if ISO-BMFF sample flags mark a sync sample (not non-sync, not depending on others). */
export function isSyncSample(flags: number): boolean {
  return (flags & 0x00010000) === 0 && ((flags >>> 24) & 0x3) !== 1;
}

function parseTraf(traf: Buffer, init: InitInfo | undefined): TrafInfo {
  const tfhd = need(child(traf, 'tfhd'), 'tfhd', 8);
  const tfhdFlags = tfhd.readUInt32BE(0) & 0xffffff;
  const trackId = tfhd.readUInt32BE(4);
  const track = init?.tracks.find((t) => t.id === trackId);
  let p = 8;
  if (tfhdFlags & 0x01) p += 8;
  if (tfhdFlags & 0x02) p += 4;
  let defaultDuration = track?.defaultSampleDuration ?? 0;
  let defaultFlags = track?.defaultSampleFlags;
  if (tfhdFlags & 0x08) {
    defaultDuration = tfhd.readUInt32BE(p);
    p += 4;
  }
  if (tfhdFlags & 0x10) p += 4;
  if (tfhdFlags & 0x20) defaultFlags = tfhd.readUInt32BE(p);
  const tfdt = child(traf, 'tfdt');
  let baseMediaDecodeTime = 0;
  if (tfdt) baseMediaDecodeTime = tfdt.readUInt8(0) === 1 ? Number(tfdt.readBigUInt64BE(4)) : tfdt.readUInt32BE(4);
  let sampleCount = 0;
  let duration = 0;
  let firstFlags: number | undefined;
  let first = true;
  for (const trun of children(traf).filter((b) => b.type === 'trun')) {
    const t = trun.body;
    const flags = t.readUInt32BE(0) & 0xffffff;
    const count = t.readUInt32BE(4);
    let q = 8;
    if (flags & 0x01) q += 4;
    if (flags & 0x04) {
      if (first) firstFlags = t.readUInt32BE(q);
      q += 4;
    }
    const perSample = ((flags >> 8) & 1) + ((flags >> 9) & 1) + ((flags >> 10) & 1) + ((flags >> 11) & 1);
    if (t.length < q + count * perSample * 4) throw new Mp4Error(`trun of track ${trackId} too short for ${count} samples`);
    for (let i = 0; i < count; i++) {
      let d = defaultDuration;
      if (flags & 0x100) {
        d = t.readUInt32BE(q);
        q += 4;
      }
      if (flags & 0x200) q += 4;
      if (flags & 0x400) {
        if (first && firstFlags === undefined) firstFlags = t.readUInt32BE(q);
        q += 4;
      }
      if (flags & 0x800) q += 4;
      duration += d;
      first = false;
    }
    sampleCount += count;
  }
  firstFlags ??= defaultFlags;
  // Without any flags at all, only audio can be assumed to start on a sync sample.
  const firstSampleSync = firstFlags === undefined ? track?.kind !== 'video' : isSyncSample(firstFlags);
  return { trackId, baseMediaDecodeTime, sampleCount, duration, firstSampleSync, defaultBaseIsMoof: (tfhdFlags & 0x20000) !== 0 };
}

/** Per-track timing of a moof (whole box or payload-less header). `init` supplies trex defaults. Throws Mp4Error if malformed. */
export function parseMoof(moof: Buffer, init?: InitInfo): FragmentInfo {
  try {
    const top = children(moof);
    const body = top.length === 1 && top[0]!.type === 'moof' ? top[0]!.body : undefined;
    if (!body) throw new Mp4Error('not a moof box');
    return {
      trafs: children(body)
        .filter((b) => b.type === 'traf')
        .map((b) => parseTraf(b.body, init)),
    };
  } catch (err) {
    if (err instanceof RangeError) throw new Mp4Error(`truncated moof: ${err.message}`);
    throw err;
  }
}
