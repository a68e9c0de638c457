// The client's address, one rule for every protocol: the peer of the socket, unless that peer is a trusted proxy,
// in which case the address the proxy reports for its client (X-Forwarded-For for HTTP and WebSocket, the PROXY
// protocol header for TCP ingest). Untrusted peers cannot choose the address they are counted under.
import { BlockList, isIP } from 'node:net';

/** Named ranges accepted in `trustedProxies`, as Express names them. */
const NAMED: Record<string, readonly [string, number, 'ipv4' | 'ipv6'][]> = {
  loopback: [
    ['127.0.0.0', 8, 'ipv4'],
    ['::1', 128, 'ipv6'],
  ],
  linklocal: [
    ['169.254.0.0', 16, 'ipv4'],
    ['fe80::', 10, 'ipv6'],
  ],
  uniquelocal: [
    ['10.0.0.0', 8, 'ipv4'],
    ['172.16.0.0', 12, 'ipv4'],
    ['192.168.0.0', 16, 'ipv4'],
    ['fc00::', 7, 'ipv6'],
  ],
};

/** Why `entry` is not a valid trusted-proxy entry, or undefined when it is (a name, an address or a CIDR). */
export function trustedProxyEntryError(entry: string): string | undefined {
  if (entry in NAMED) return undefined;
  const [addr, bits, ...rest] = entry.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || rest.length > 0) {
    return `"${entry}" is not loopback, linklocal, uniquelocal, an IP address or a CIDR like 10.0.0.0/8`;
  }
  if (bits === undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  const n = Number(bits);
  if (!/^\d{1,3}$/.test(bits) || n > max) return `"${entry}": the prefix length must be 0–${max}`;
  return undefined;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged (trimmed). */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  return a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

/** The set of peers whose word about their client's address is believed. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** `entries`: names (`loopback`, `linklocal`, `uniquelocal`), addresses and CIDRs; throws on an invalid one. */
  constructor(entries: readonly string[]) {
    this.#empty = entries.length === 0;
    for (const entry of entries) {
      const err = trustedProxyEntryError(entry);
      if (err) throw new Error(`trusted proxies: ${err}`);
      const named = NAMED[entry];
      if (named) {
        for (const [net, prefix, type] of named) this.#list.addSubnet(net, prefix, type);
        continue;
      }
      const [addr, bits] = entry.split('/') as [string, string | undefined];
      const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(bits), type);
    }
  }

  /** True when `address` (as a socket reports it) is a trusted proxy. */
  trusts(address: string | undefined): boolean {
    if (this.#empty || !address) return false;
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && this.#list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }

  /**
   * The client's address for a request from `peer` carrying `forwardedFor` (X-Forwarded-For, any number of
   * headers): walking the hops from the nearest, the first one that is not a trusted proxy. A malformed hop
   * stops the walk at the last trusted one, so a trusted proxy's peer is never replaced by garbage.
   */
  clientAddress(peer: string | undefined, forwardedFor?: string | readonly string[]): string {
    let client = normalizeAddress(peer ?? '');
    if (!this.trusts(client) || forwardedFor === undefined) return client || 'unknown';
    const hops = (typeof forwardedFor === 'string' ? [forwardedFor] : forwardedFor)
      .flatMap((h) => h.split(','))
      .map(normalizeAddress)
      .reverse();
    for (const hop of hops) {
      if (isIP(hop) === 0) break;
      client = hop;
      if (!this.trusts(hop)) break;
    }
    return client;
  }
}
