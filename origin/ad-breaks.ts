// Ad-break markers at the origin: SCTE-35 splice_insert messages (ANSI/SCTE 35 §9.6/§9.7) carried in
// EXT-X-DATERANGE tags (RFC 8216bis §4.4.5.1, §4.4.5.1.4), written into every rendition of a live stream at once.
import type { DateRange } from './playlist.ts';

/** DATERANGE CLASS of ad breaks. */
export const AD_BREAK_CLASS = 'com.onair.ad-break';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, not reflected, no final xor): the CRC of MPEG-2 sections. */
export function crc32Mpeg2(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of buf) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ b) & 0xff]!) >>> 0;
  return crc >>> 0;
}

/** A splice_insert to encode. */
export interface SpliceInsertOptions {
  /** splice_event_id (32 bits). */
  spliceEventId: number;
  /** true: cue-out (the break starts); false: cue-in (back to the programme). */
  outOfNetwork: boolean;
  /** break_duration with auto_return (cue-out only), seconds. */
  durationSec?: number;
}

/** Encodes a splice_info_section holding one immediate splice_insert (program splice, no descriptors). */
export function encodeSpliceInsert(o: SpliceInsertOptions): Buffer {
  const withDuration = o.outOfNetwork && o.durationSec !== undefined;
  const cmd = Buffer.alloc(withDuration ? 15 : 10);
  let i = 0;
  cmd.writeUInt32BE(o.spliceEventId >>> 0, i);
  i += 4;
  cmd[i++] = 0x7f; // splice_event_cancel_indicator=0, reserved
  // out_of_network_indicator, program_splice_flag=1, duration_flag, splice_immediate_flag=1, event_id_compliance_flag=1, reserved
  cmd[i++] = ((o.outOfNetwork ? 1 : 0) << 7) | (1 << 6) | ((withDuration ? 1 : 0) << 5) | (1 << 4) | 0x0f;
  if (withDuration) {
    const ticks = BigInt(Math.round(o.durationSec! * 90_000)) & 0x1ffffffffn; // 90 kHz, 33 bits
    // auto_return=1, reserved (6 bits) = 1s, duration (33 bits)
    const v = (1n << 39n) | (0x3fn << 33n) | ticks;
    for (let k = 4; k >= 0; k--) cmd[i++] = Number((v >> BigInt(k * 8)) & 0xffn);
  }
  cmd.writeUInt16BE(1, i); // unique_program_id
  i += 2;
  cmd[i] = 0; // avail_num
  cmd[i + 1] = 0; // avails_expected

  const headerLen = 14; // table_id … splice_command_type
  const total = headerLen + cmd.length + 2 + 4; // + descriptor_loop_length + CRC_32
  const out = Buffer.alloc(total);
  out[0] = 0xfc; // table_id
  const sectionLength = total - 3;
  // section_syntax_indicator=0, private_indicator=0, sap_type=3 (unspecified), section_length (12 bits)
  out.writeUInt16BE((0x3 << 12) | sectionLength, 1);
  out[3] = 0; // protocol_version
  // encrypted_packet=0, encryption_algorithm=0, pts_adjustment=0 (33 bits): bytes 4..8 stay 0
  out[9] = 0xff; // cw_index
  // tier=0xFFF (12 bits), splice_command_length (12 bits)
  out[10] = 0xff;
  out[11] = 0xf0 | ((cmd.length >> 8) & 0x0f);
  out[12] = cmd.length & 0xff;
  out[13] = 0x05; // splice_insert
  cmd.copy(out, headerLen);
  out.writeUInt16BE(0, headerLen + cmd.length); // descriptor_loop_length
  out.writeUInt32BE(crc32Mpeg2(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** An ad break as the origin marks it. */
export interface AdBreakMark {
  /** Numeric id: SCTE-35 splice_event_id and part of the DATERANGE ID. */
  seq: number;
  /** Wall-clock start (the instant every rendition's DATERANGE names). */
  startMs: number;
  plannedDurationSec: number;
  /** Set once the break is over: adds DURATION and SCTE35-IN. */
  endMs?: number;
}

/** The DATERANGE of an ad break: cue-out with PLANNED-DURATION, plus DURATION and SCTE35-IN once it ended. */
export function adBreakDateRange(b: AdBreakMark): DateRange {
  const out = encodeSpliceInsert({ spliceEventId: b.seq, outOfNetwork: true, durationSec: b.plannedDurationSec });
  const range: DateRange = {
    id: `ad-${b.seq}`,
    class: AD_BREAK_CLASS,
    startDateMs: b.startMs,
    plannedDurationSec: b.plannedDurationSec,
    scte35Out: out,
  };
  if (b.endMs !== undefined) {
    range.durationSec = Math.max(0, (b.endMs - b.startMs) / 1000);
    range.scte35In = encodeSpliceInsert({ spliceEventId: b.seq, outOfNetwork: false });
  }
  return range;
}

/** What markAdBreak writes to: a live stream's rendition packagers. */
export interface DateRangeTarget {
  setDateRange(range: DateRange): void;
}

/** Writes the same ad-break DATERANGE into every rendition at once (same START-DATE everywhere). */
export function markAdBreak(renditions: Iterable<DateRangeTarget>, b: AdBreakMark): number {
  const range = adBreakDateRange(b);
  let n = 0;
  for (const r of renditions) {
    r.setDateRange(range);
    n++;
  }
  return n;
}
