// Debian's libsrt (libsrt-gnutls.so.1.5, the one ffmpeg links) called through koffi: no native build of our own.
// Only what the SRT ingest needs: a non-blocking listener, its accept hook, srt_epoll and non-blocking reads.
// Values below are libsrt 1.5's (srt.h); the library is loaded on first use, so a process without SRT never maps it.
import koffi from 'koffi';

/** The shared object name of Debian's libsrt 1.5 (package libsrt1.5-gnutls). */
export const LIBSRT = 'libsrt-gnutls.so.1.5';

/** Socket options (SRT_SOCKOPT). */
export const SRTO = {
  SNDSYN: 1,
  RCVSYN: 2,
  LATENCY: 23,
  PASSPHRASE: 26,
  RCVLATENCY: 43,
  STREAMID: 46,
  PAYLOADSIZE: 49,
  TRANSTYPE: 50,
  PEERIDLETIMEO: 55,
} as const;

/** Socket states (SRT_SOCKSTATUS). */
export const SRTS = { LISTENING: 3, CONNECTED: 5, BROKEN: 6, CLOSING: 7, CLOSED: 8, NONEXIST: 9 } as const;

/** Epoll flags (SRT_EPOLL_OPT). */
export const SRT_EPOLL = { IN: 0x1, OUT: 0x4, ERR: 0x8 } as const;

/** Error codes (SRT_ERRNO) we act on. */
export const SRT_E = { ASYNCRCV: 6002, TIMEOUT: 6003, CONNLOST: 2001, NOCONN: 2002, INVSOCK: 5004 } as const;

/**
 * Rejection reasons a listener's accept hook may set (SRT_REJX_*, srt.h's access-control codes: 1000 + an HTTP
 * status). The caller sees them (ffmpeg logs "Connection setup failure: ... rejected").
 */
export const SRT_REJX = {
  BAD_REQUEST: 1400,
  UNAUTHORIZED: 1401,
  OVERLOAD: 1402,
  FORBIDDEN: 1403,
  NOTFOUND: 1404,
  BAD_MODE: 1405,
  CONFLICT: 1409,
  NOTSUP_MEDIA: 1415,
  ISE: 1500,
  DOWN: 1503,
} as const;

/** The accept hook libsrt calls (on its receiver thread; koffi runs it on the JS thread) for each connection request. */
export type ListenHook = (opaque: unknown, socket: number, hsVersion: number, peer: unknown, streamId: string | null) => number;

/** The libsrt functions the ingest uses, loaded once per process. */
export interface LibSrt {
  startup(): number;
  create_socket(): number;
  setsockflag(u: number, opt: number, value: Buffer, len: number): number;
  getsockflag(u: number, opt: number, value: Buffer, len: Buffer): number;
  bind(u: number, addr: Buffer, len: number): number;
  listen(u: number, backlog: number): number;
  accept(u: number, addr: Buffer, len: Buffer): number;
  close: AsyncFn<[u: number], number>;
  recvmsg(u: number, buf: Buffer, len: number): number;
  getsockstate(u: number): number;
  getsockname(u: number, addr: Buffer, len: Buffer): number;
  getlasterror(errnoLoc: null): number;
  getlasterror_str(): string;
  setrejectreason(u: number, reason: number): number;
  epoll_create(): number;
  epoll_add_usock(eid: number, u: number, events: Buffer): number;
  epoll_remove_usock(eid: number, u: number): number;
  epoll_uwait: AsyncFn<[eid: number, events: Buffer, size: number, timeoutMs: number], number>;
  epoll_release(eid: number): number;
  listen_callback(u: number, hook: unknown, opaque: null): number;
  setloglevel(level: number): void;
  /** Registers `fn` as a libsrt accept hook; unregister it once its listener is closed. */
  registerHook(fn: ListenHook): unknown;
  unregisterHook(hook: unknown): void;
}

/** A koffi function, callable directly or on a worker thread (`async`, node-style callback). */
type AsyncFn<A extends unknown[], R> = ((...args: A) => R) & { async(...args: [...A, (err: unknown, res: R) => void]): void };

let loaded: LibSrt | undefined;

/** Loads libsrt (once) and calls srt_startup(); throws with a clear message when the library is not installed. */
export function libsrt(): LibSrt {
  if (loaded) return loaded;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(LIBSRT);
  } catch (err) {
    throw new Error(`SRT ingest needs ${LIBSRT} (Debian package libsrt1.5-gnutls): ${(err as Error).message}`, { cause: err });
  }
  const hookProto = koffi.proto('int srt_listen_hook(void *opaq, int ns, int hsversion, const void *peeraddr, const char *streamid)');
  const f = (decl: string) => lib.func(decl);
  const srt: LibSrt = {
    startup: f('int srt_startup()'),
    create_socket: f('int srt_create_socket()'),
    setsockflag: f('int srt_setsockflag(int u, int opt, const void *optval, int optlen)'),
    getsockflag: f('int srt_getsockflag(int u, int opt, _Inout_ void *optval, _Inout_ int *optlen)'),
    bind: f('int srt_bind(int u, const void *name, int namelen)'),
    listen: f('int srt_listen(int u, int backlog)'),
    accept: f('int srt_accept(int u, _Inout_ void *addr, _Inout_ int *addrlen)'),
    close: f('int srt_close(int u)') as LibSrt['close'],
    recvmsg: f('int srt_recvmsg(int u, _Inout_ void *buf, int len)'),
    getsockstate: f('int srt_getsockstate(int u)'),
    getsockname: f('int srt_getsockname(int u, _Inout_ void *name, _Inout_ int *namelen)'),
    getlasterror: f('int srt_getlasterror(int *errno_loc)'),
    getlasterror_str: f('const char *srt_getlasterror_str()'),
    setrejectreason: f('int srt_setrejectreason(int sock, int value)'),
    epoll_create: f('int srt_epoll_create()'),
    epoll_add_usock: f('int srt_epoll_add_usock(int eid, int u, const int *events)'),
    epoll_remove_usock: f('int srt_epoll_remove_usock(int eid, int u)'),
    epoll_uwait: f('int srt_epoll_uwait(int eid, _Inout_ void *fdsSet, int fdsSize, int64_t msTimeOut)') as LibSrt['epoll_uwait'],
    epoll_release: f('int srt_epoll_release(int eid)'),
    listen_callback: f('int srt_listen_callback(int lsn, srt_listen_hook *hook_fn, void *hook_opaque)'),
    setloglevel: f('void srt_setloglevel(int ll)'),
    registerHook: (fn) => koffi.register(fn, koffi.pointer(hookProto)),
    unregisterHook: (hook) => koffi.unregister(hook as Parameters<typeof koffi.unregister>[0]),
  };
  if (srt.startup() < 0) throw new Error(`srt_startup failed: ${srt.getlasterror_str()}`);
  // libsrt logs to stderr; keep it to critical lines (LOG_CRIT): our own log says what happened to each session.
  srt.setloglevel(2);
  loaded = srt;
  return srt;
}

/** A sockaddr for `host:port` (IPv4 or IPv6 literal), as srt_bind takes it. */
export function sockaddr(host: string, port: number): Buffer {
  if (host === 'localhost') host = '127.0.0.1';
  if (host.includes(':')) {
    const b = Buffer.alloc(28);
    b.writeUInt16LE(10, 0); // AF_INET6
    b.writeUInt16BE(port, 2);
    ipv6Bytes(host).copy(b, 8);
    return b;
  }
  const parts = host.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`SRT ingest binds an IP address; "${host}" is not one (use 0.0.0.0, 127.0.0.1, :: or another literal)`);
  }
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0); // AF_INET
  b.writeUInt16BE(port, 2);
  Buffer.from(parts).copy(b, 4);
  return b;
}

function ipv6Bytes(host: string): Buffer {
  const [head = '', tail] = host.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  if (h.length + t.length > 8 || (tail === undefined && h.length !== 8)) throw new Error(`"${host}" is not an IPv6 address`);
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) throw new Error(`"${host}" is not an IPv6 address`);
    b.writeUInt16BE(parseInt(g, 16), i * 2);
  });
  return b;
}

/** The address and port of a sockaddr (sockaddr_in or sockaddr_in6 bytes). */
export function readSockaddr(b: Buffer): { address: string; port: number } {
  const family = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (family === 2) return { address: [...b.subarray(4, 8)].join('.'), port };
  if (family === 10 && b.length >= 24) {
    const bytes = b.subarray(8, 24);
    // An IPv4-mapped IPv6 address is the IPv4 client it carries.
    if (bytes.subarray(0, 10).every((x) => x === 0) && bytes.readUInt16BE(10) === 0xffff) {
      return { address: [...bytes.subarray(12, 16)].join('.'), port };
    }
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return {
      address: groups
        .join(':')
        .replace(/(^|:)0(:0)+(:|$)/, '::')
        .replace(/:{3,}/, '::'),
      port,
    };
  }
  return { address: 'unknown', port: 0 };
}

/** Decodes the peer sockaddr pointer libsrt hands the accept hook. */
export function hookPeer(peer: unknown): { address: string; port: number } {
  if (!peer) return { address: 'unknown', port: 0 };
  const head = Buffer.from(koffi.decode(peer, koffi.array('uint8_t', 2)) as number[]);
  const len = head.readUInt16LE(0) === 10 ? 28 : 16;
  return readSockaddr(Buffer.from(koffi.decode(peer, koffi.array('uint8_t', len)) as number[]));
}

/** An int as the 4 bytes srt_setsockflag takes. */
export function intOpt(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v, 0);
  return b;
}
