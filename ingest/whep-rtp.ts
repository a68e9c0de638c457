// WHEP's RTP rules, as pure code: which H.264 RTP packets begin a keyframe, and the cache of the current GOP's
// packets that lets a viewer joining mid-GOP start decoding at once instead of waiting for the next keyframe.

/** H.264 NAL unit types that mark a keyframe's access unit: IDR slice (5), SPS (7). */
const KEY_NALS = new Set([5, 7]);

/** RTP header length of a packet (fixed header, CSRCs, extension); undefined when the packet is too short. */
export function rtpPayloadOffset(packet: Buffer): number | undefined {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return undefined;
  let off = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (packet.length < off + 4) return undefined;
    off += 4 + packet.readUInt16BE(off + 2) * 4;
  }
  return off <= packet.length ? off : undefined;
}

/** The RTP timestamp of a packet. */
export function rtpTimestamp(packet: Buffer): number {
  return packet.readUInt32BE(4);
}

/**
 * True when an H.264 RTP payload (RFC 6184) carries an SPS or the start of an IDR slice: a single NAL unit, a
 * STAP-A holding one, or the first fragment (FU-A with the S bit) of one.
 */
export function h264PayloadIsKey(payload: Buffer): boolean {
  if (payload.length < 1) return false;
  const type = payload[0]! & 0x1f;
  if (KEY_NALS.has(type)) return true;
  if (type === 24) {
    // STAP-A: 16-bit size, NAL unit, repeated.
    let off = 1;
    while (off + 2 < payload.length) {
      const size = payload.readUInt16BE(off);
      if (size === 0 || off + 2 + size > payload.length) return false;
      if (KEY_NALS.has(payload[off + 2]! & 0x1f)) return true;
      off += 2 + size;
    }
    return false;
  }
  if (type === 28 && payload.length >= 2) return (payload[1]! & 0x80) !== 0 && KEY_NALS.has(payload[1]! & 0x1f);
  return false;
}

/**
 * The video RTP packets since the start of the last keyframe's access unit (packets are grouped into access units
 * by their RTP timestamp, so an SEI sent before the SPS stays with its frame). Bounded in bytes: a GOP that
 * outgrows the bound is dropped, and joiners wait for the next keyframe.
 */
export class RtpGopCache {
  #packets: Buffer[] = [];
  #bytes = 0;
  /** Where the current access unit starts in #packets, and its timestamp. */
  #auStart = 0;
  #auTimestamp: number | undefined;
  #auKey = false;
  #hasKey = false;

  constructor(readonly maxBytes = 8 * 1024 * 1024) {}

  /** Records the next video packet. */
  push(packet: Buffer): void {
    const off = rtpPayloadOffset(packet);
    if (off === undefined) return;
    const ts = rtpTimestamp(packet);
    if (ts !== this.#auTimestamp) {
      this.#auTimestamp = ts;
      this.#auStart = this.#packets.length;
      this.#auKey = false;
      if (!this.#hasKey) {
        // Nothing to join from yet: keep only the access unit under way.
        this.#packets = [];
        this.#bytes = 0;
        this.#auStart = 0;
      }
    }
    this.#packets.push(packet);
    this.#bytes += packet.length;
    if (!this.#auKey && h264PayloadIsKey(packet.subarray(off))) {
      this.#auKey = true;
      this.#hasKey = true;
      // The GOP restarts at this access unit's first packet.
      const kept = this.#packets.slice(this.#auStart);
      this.#packets = kept;
      this.#bytes = kept.reduce((n, p) => n + p.length, 0);
      this.#auStart = 0;
    }
    if (this.#bytes > this.maxBytes) {
      this.#packets = [];
      this.#bytes = 0;
      this.#auStart = 0;
      this.#hasKey = false;
    }
  }

  /** The packets a joiner sends first (from the last keyframe on), or undefined while no keyframe is cached. */
  gop(): readonly Buffer[] | undefined {
    return this.#hasKey ? this.#packets : undefined;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }
}
