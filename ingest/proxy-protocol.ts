// The PROXY protocol (HAProxy's `send-proxy` v1 text and `send-proxy-v2` binary header), which a TCP balancer
// puts before the first byte of the client's stream to say whom it is relaying. Parsing only: whether a peer's
// header is believed is the caller's decision (lib/client-address.ts).
// Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
import { isIP } from 'node:net';

/** v1 starts "PROXY "; v2 with this 12-byte signature (chosen so it cannot start any common protocol). */
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** A v1 line is at most 107 bytes including its CRLF (spec 2.1). */
const V1_MAX_BYTES = 107;
/** v2's fixed part: signature, version/command, family/transport, 16-bit length. */
const V2_FIXED_BYTES = 16;
/** Largest v2 address block + TLVs accepted; HAProxy's own TLVs (SSL, unique id, ALPN…) fit with room to spare. */
export const V2_MAX_PAYLOAD_BYTES = 2048;

/** One end of the relayed connection. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** A parsed PROXY header. */
export interface ProxyHeader {
  version: 1 | 2;
  /** `proxy`: a relayed client; `local`: the proxy speaking for itself (health checks), use the peer's address. */
  command: 'proxy' | 'local';
  transport: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unknown';
  /** The client, when the header names one by IP address. */
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  /** v2 type-length-value extensions, in order. */
  tlvs: { type: number; value: Buffer }[];
}

/** What the first bytes of a connection are. */
export type ProxyParse =
  /** Not a PROXY header (the bytes cannot start one). */
  | { kind: 'none' }
  /** Could be, or is, a PROXY header whose end has not arrived yet. */
  | { kind: 'incomplete' }
  /** Starts like a PROXY header but is not a valid one. */
  | { kind: 'invalid'; reason: string }
  /** A header of `length` bytes; the client's own bytes follow it. */
  | { kind: 'header'; header: ProxyHeader; length: number };

/** True when `buf` and `sig` agree on their common length. */
function agrees(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

/** Parses the PROXY header at the start of `buf` (everything received so far). */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return { kind: 'incomplete' };
  if (agrees(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'incomplete' } : parseV1(buf);
  if (agrees(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'incomplete' } : parseV2(buf);
  return { kind: 'none' };
}

function port(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV1(buf: Buffer): ProxyParse {
  const end = buf.subarray(0, V1_MAX_BYTES).indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    return buf.length >= V1_MAX_BYTES ? { kind: 'invalid', reason: `v1 line longer than ${V1_MAX_BYTES} bytes` } : { kind: 'incomplete' };
  }
  const line = buf.subarray(0, end).toString('latin1');
  const length = end + 2;
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'header', length, header: { version: 1, command: 'proxy', transport: 'unknown', tlvs: [] } };
  if (parts.length !== 6) return { kind: 'invalid', reason: 'v1 line must be "PROXY TCP4|TCP6|UNKNOWN src dst sport dport"' };
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) return { kind: 'invalid', reason: `v1 protocol must be TCP4, TCP6 or UNKNOWN, not "${proto.slice(0, 16)}"` };
  if (isIP(src) !== family || isIP(dst) !== family) return { kind: 'invalid', reason: `v1 addresses are not ${proto} addresses` };
  const sp = port(sport);
  const dp = port(dport);
  if (sp === undefined || dp === undefined) return { kind: 'invalid', reason: 'v1 ports must be 0–65535' };
  return {
    kind: 'header',
    length,
    header: {
      version: 1,
      command: 'proxy',
      transport: family === 4 ? 'tcp4' : 'tcp6',
      source: { address: src, port: sp },
      destination: { address: dst, port: dp },
      tlvs: [],
    },
  };
}

/** 16 bytes → the usual IPv6 text (longest zero run as `::`); an IPv4-mapped address → its IPv4 form. */
function ipv6Text(b: Buffer): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return [...b.subarray(12, 16)].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  return best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

const V2_TRANSPORTS: Record<number, ProxyHeader['transport']> = {
  0x11: 'tcp4',
  0x12: 'udp4',
  0x21: 'tcp6',
  0x22: 'udp6',
  0x31: 'unix',
  0x32: 'unix',
};

function parseV2(buf: Buffer): ProxyParse {
  if (buf.length < V2_FIXED_BYTES) return { kind: 'incomplete' };
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: `v2 version nibble is ${verCmd >> 4}, not 2` };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { kind: 'invalid', reason: `v2 command ${cmd} is neither LOCAL nor PROXY` };
  const fam = buf[13]!;
  const payloadLength = buf.readUInt16BE(14);
  if (payloadLength > V2_MAX_PAYLOAD_BYTES)
    return { kind: 'invalid', reason: `v2 header of ${payloadLength} bytes exceeds ${V2_MAX_PAYLOAD_BYTES}` };
  const length = V2_FIXED_BYTES + payloadLength;
  if (buf.length < length) return { kind: 'incomplete' };
  const payload = buf.subarray(V2_FIXED_BYTES, length);
  const transport = V2_TRANSPORTS[fam] ?? 'unknown';
  const header: ProxyHeader = { version: 2, command: cmd === 0 ? 'local' : 'proxy', transport, tlvs: [] };
  // LOCAL and UNSPEC carry no address the receiver may use (spec 2.2): skip the whole block.
  if (header.command === 'local' || transport === 'unknown') return { kind: 'header', header, length };
  const addrBytes = transport === 'tcp4' || transport === 'udp4' ? 12 : transport === 'unix' ? 216 : 36;
  if (payload.length < addrBytes)
    return { kind: 'invalid', reason: `v2 ${transport} address block needs ${addrBytes} bytes, has ${payload.length}` };
  if (transport === 'tcp4' || transport === 'udp4') {
    header.source = { address: [...payload.subarray(0, 4)].join('.'), port: payload.readUInt16BE(8) };
    header.destination = { address: [...payload.subarray(4, 8)].join('.'), port: payload.readUInt16BE(10) };
  } else if (transport === 'tcp6' || transport === 'udp6') {
    header.source = { address: ipv6Text(payload.subarray(0, 16)), port: payload.readUInt16BE(32) };
    header.destination = { address: ipv6Text(payload.subarray(16, 32)), port: payload.readUInt16BE(34) };
  }
  for (let off = addrBytes; off < payload.length;) {
    if (off + 3 > payload.length) return { kind: 'invalid', reason: 'v2 TLV header truncated' };
    const type = payload[off]!;
    const len = payload.readUInt16BE(off + 1);
    if (off + 3 + len > payload.length) return { kind: 'invalid', reason: `v2 TLV 0x${type.toString(16)} overruns the header` };
    header.tlvs.push({ type, value: Buffer.from(payload.subarray(off + 3, off + 3 + len)) });
    off += 3 + len;
  }
  return { kind: 'header', header, length };
}

/** Accumulates a connection's first bytes until they are known to be a PROXY header or not. */
export class ProxyHeaderReader {
  #buf: Buffer = Buffer.alloc(0);

  /**
   * Adds `chunk`. `none`/`header` carry `rest`, the connection's own bytes to pass on (all bytes so far for
   * `none`, those after the header for `header`); after either, the reader is done and must not be fed again.
   */
  push(
    chunk: Buffer,
  ):
    | { kind: 'incomplete' }
    | { kind: 'invalid'; reason: string }
    | { kind: 'none'; rest: Buffer }
    | { kind: 'header'; header: ProxyHeader; rest: Buffer } {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const r = parseProxyHeader(this.#buf);
    if (r.kind === 'none') return { kind: 'none', rest: this.#buf };
    if (r.kind === 'header') return { kind: 'header', header: r.header, rest: this.#buf.subarray(r.length) };
    return r;
  }
}
