// Outbound requests (webhooks) must not reach the server's own network: loopback, link-local, private, shared,
// multicast and reserved addresses are refused unless a setting allows them. The check runs on the resolved address
// at connect time, and the socket connects to exactly the addresses checked, so DNS rebinding cannot slip past it.
import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import { Agent } from 'undici';
import { TrustedProxies } from './client-address.ts';

/** A resolved address. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** Ranges refused by default, by the name a refusal gives (checked in this order). */
const FORBIDDEN: [string, [string, number][]][] = [
  [
    'loopback',
    [
      ['127.0.0.0', 8],
      ['::1', 128],
    ],
  ],
  [
    'unspecified',
    [
      ['0.0.0.0', 8],
      ['::', 128],
    ],
  ],
  [
    'link-local',
    [
      ['169.254.0.0', 16],
      ['fe80::', 10],
    ],
  ],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
      ['fc00::', 7],
      ['fec0::', 10],
    ],
  ],
  ['shared (CGNAT)', [['100.64.0.0', 10]]],
  [
    'multicast',
    [
      ['224.0.0.0', 4],
      ['ff00::', 8],
    ],
  ],
  [
    'reserved',
    [
      ['240.0.0.0', 4],
      ['192.0.0.0', 24],
      ['192.0.2.0', 24],
      ['192.88.99.0', 24],
      ['198.18.0.0', 15],
      ['198.51.100.0', 24],
      ['203.0.113.0', 24],
      // IPv4-compatible, NAT64 and 6to4/Teredo forms embed an IPv4 address that could be an internal one.
      ['::', 96],
      ['64:ff9b::', 96],
      ['64:ff9b:1::', 48],
      ['100::', 64],
      ['2001::', 23],
      ['2001:db8::', 32],
      ['2002::', 16],
    ],
  ],
];

const forbidden = FORBIDDEN.map(([name, ranges]) => {
  const list = new BlockList();
  for (const [net, prefix] of ranges) list.addSubnet(net, prefix, isIP(net) === 4 ? 'ipv4' : 'ipv6');
  return { name, list };
});

/** Thrown (as the cause of a failed request) when a destination is refused. */
export class BlockedDestinationError extends Error {
  override name = 'BlockedDestinationError';
  readonly code = 'ERR_BLOCKED_DESTINATION';
}

/** Which destinations outbound requests may reach. */
export class OutboundGuard {
  readonly #allow: TrustedProxies;
  readonly #resolve: Resolver;

  /**
   * `allow`: addresses and CIDRs (and `loopback`, `linklocal`, `uniquelocal`) let through even though forbidden by
   * default (setting `webhookAllowCidrs`); `resolve`: name resolution, replaceable in tests.
   */
  constructor(allow: readonly string[] = [], resolve: Resolver = defaultResolve) {
    this.#allow = new TrustedProxies(allow);
    this.#resolve = resolve;
  }

  /** Why `address` (an IP) may not be reached, or undefined when it may. IPv4-mapped IPv6 counts as its IPv4. */
  addressError(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return `${address} is not an IP address`;
    if (this.#allow.trusts(address)) return undefined;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const hit = forbidden.find((f) => f.list.check(address, type));
    return hit ? `${address} is a ${hit.name} address (allow it with ONAIR_WEBHOOK_ALLOW_CIDRS)` : undefined;
  }

  /**
   * Why a URL may not even be stored: its host is `localhost` (or a name under it) or a forbidden IP literal.
   * Other names are checked when a request is sent, on the addresses they resolve to then.
   */
  urlError(url: string): string | undefined {
    let host: string;
    try {
      host = new URL(url).hostname.toLowerCase();
    } catch {
      return 'not a valid URL';
    }
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host.replace(/\.$/, '');
    if (isIP(bare) !== 0) return this.addressError(bare);
    if (bare === 'localhost' || bare.endsWith('.localhost')) {
      return this.#allow.trusts('127.0.0.1') ? undefined : `${host} is a loopback name (allow 127.0.0.0/8 with ONAIR_WEBHOOK_ALLOW_CIDRS)`;
    }
    return undefined;
  }

  /** Resolves `hostname` and checks every address; rejects with BlockedDestinationError if any is forbidden. */
  async resolveChecked(hostname: string): Promise<ResolvedAddress[]> {
    const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    const family = isIP(bare);
    const addresses: ResolvedAddress[] = family !== 0 ? [{ address: bare, family: family as 4 | 6 }] : await this.#resolve(bare);
    if (addresses.length === 0) throw new BlockedDestinationError(`${hostname} resolves to no address`);
    for (const a of addresses) {
      const err = this.addressError(a.address);
      if (err) throw new BlockedDestinationError(family !== 0 ? `blocked: ${err}` : `blocked: ${hostname} resolves to ${err}`);
    }
    return addresses;
  }

  /**
   * An undici dispatcher whose sockets connect only to checked addresses: its `lookup` resolves, checks every
   * address and hands exactly those to the socket. IP literals skip lookup in Node, so check them with
   * {@link resolveChecked} before the request as well.
   */
  dispatcher(options: { connectTimeoutMs?: number } = {}): Agent {
    const lookup = (
      hostname: string,
      opts: LookupOptions,
      cb: (err: Error | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      this.resolveChecked(hostname).then(
        (list) => {
          const wanted = opts.family === 4 || opts.family === 6 ? list.filter((a) => a.family === opts.family) : list;
          if (wanted.length === 0)
            return cb(Object.assign(new Error(`${hostname}: no IPv${opts.family} address`), { code: 'ENOTFOUND' }), []);
          if (opts.all) return cb(null, wanted);
          cb(null, wanted[0]!.address, wanted[0]!.family);
        },
        (err: Error) => cb(err, []),
      );
    };
    return new Agent({ connect: { lookup: lookup as never, ...(options.connectTimeoutMs ? { timeout: options.connectTimeoutMs } : {}) } });
  }
}

const defaultResolve: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
