// Shared pieces of the hostile-input suite: the run context (checks, counters), raw TCP/HTTP clients that can
// choose their loopback source address, and the live-stream watcher that proves a real stream keeps advancing.
import { connect, type Socket } from 'node:net';
import type { ServerUnderTest } from '../support/onair-server.ts';

/** An event made with `onair event create --json`. */
export interface Created {
  id: string;
  slug: string;
  streamKey: string;
  hlsUrl: string;
  watchUrl: string;
}

/** Credentials the groups use (made once at start-up). */
export interface Credentials {
  admin: string;
  /** A second admin token, given to the fuzzer only (it may revoke it). */
  fuzzAdmin: string;
  moderator: string;
  /** A chat viewer token (not an operator credential). */
  viewer: string;
  /** An admin console session: `onair_session=…` cookie and its CSRF token. */
  cookie: string;
  csrf: string;
  adminEmail: string;
  adminPassword: string;
}

/** One failed check. */
export interface Failure {
  group: string;
  check: string;
  detail: string;
}

/** What every group gets. */
export interface Ctx {
  server: ServerUnderTest;
  /** The event with the real stream playing. */
  live: Created;
  creds: Credentials;
  watcher: StreamWatcher;
  /** Records one check (an input tried and its verdict); never throws. */
  check(name: string, ok: boolean, detail?: string): boolean;
  /** Counts inputs sent without a check of their own (floods). */
  tried(n: number): void;
  /** Appends a line to the suite's log. */
  note(msg: string): void;
}

/** Bytes of `n` pseudo-random values (not crypto: just noise). */
export function noise(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Opens a TCP connection from `localAddress` (any 127.x address: per-address limits then see a fresh client). */
export function tcp(port: number, localAddress = '127.0.0.1', timeoutMs = 5_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error('connect timeout'));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(t);
      reject(err);
    });
  });
}

/** What a raw exchange gave back. */
export interface RawResult {
  data: Buffer;
  /** The peer closed (or reset) the connection before the wait ended. */
  closed: boolean;
  ms: number;
}

/**
 * Sends `chunks` on a new connection (with `gapMs` between them), then reads until the peer closes or nothing
 * arrives for `idleMs` (at most `maxMs` in all).
 */
export async function rawExchange(
  port: number,
  chunks: (string | Buffer)[],
  o: { localAddress?: string; gapMs?: number; idleMs?: number; maxMs?: number; keepOpen?: boolean } = {},
): Promise<RawResult> {
  const started = Date.now();
  const s = await tcp(port, o.localAddress);
  const parts: Buffer[] = [];
  let closed = false;
  const done = new Promise<void>((resolve) => {
    let idle: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(idle);
      idle = setTimeout(resolve, o.idleMs ?? 1_500);
    };
    const hard = setTimeout(resolve, o.maxMs ?? 10_000);
    s.on('data', (d: Buffer) => {
      parts.push(d);
      arm();
    });
    s.on('close', () => {
      closed = true;
      clearTimeout(idle);
      clearTimeout(hard);
      resolve();
    });
    s.on('error', () => undefined);
    arm();
  });
  for (const [i, c] of chunks.entries()) {
    if (s.destroyed) break;
    s.write(c);
    if (o.gapMs && i < chunks.length - 1) await sleep(o.gapMs);
  }
  await done;
  if (!o.keepOpen) s.destroy();
  return { data: Buffer.concat(parts), closed, ms: Date.now() - started };
}

/** The status codes of every HTTP/1.x response in `raw`, in order. */
export function statuses(raw: Buffer | string): number[] {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Why an error body is not the project's plain JSON error (HTML, a stack, a path), or undefined when it is fine. */
export function leak(body: string): string | undefined {
  const lower = body.toLowerCase();
  if (lower.includes('<html') || lower.includes('<!doctype')) return 'HTML page';
  if (/\n\s+at |\bat [\w.<>]+ \(/.test(body) || body.includes('    at ')) return 'stack trace';
  if (body.includes('/work') || body.includes('node_modules') || body.includes('/home/') || body.includes('/root/')) return 'server path';
  return undefined;
}

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fetch that never throws: status 0 and the error text on a network failure; `ms` is the time taken. */
export async function get(
  url: string,
  init: RequestInit & { timeoutMs?: number } = {},
): Promise<{ status: number; body: string; headers: Headers; ms: number }> {
  const started = Date.now();
  try {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 10_000) });
    const body = await r.text();
    return { status: r.status, body, headers: r.headers, ms: Date.now() - started };
  } catch (err) {
    return { status: 0, body: String(err), headers: new Headers(), ms: Date.now() - started };
  }
}

/**
 * Polls the live event's media playlist once a second like a viewer would (through the edge), and /healthz.
 * Records the distinct parts (or segments) seen and the longest time the playlist did not advance.
 */
export class StreamWatcher {
  #timer: NodeJS.Timeout | undefined;
  #base: string;
  #master: string;
  #media: string | undefined;
  readonly seen = new Set<string>();
  lastAdvanceAt = Date.now();
  longestStallMs = 0;
  lastPosition = -1;
  healthFailures: string[] = [];
  #windowStart = Date.now();
  #polling = false;

  constructor(base: string, hlsUrl: string) {
    this.#base = base;
    this.#master = hlsUrl;
  }

  /** Position of the newest part: media sequence × 1000 + parts of the last, partial segment. */
  static position(playlist: string): { pos: number; uris: string[] } {
    const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1] ?? -1);
    const lines = playlist.split('\n');
    let segments = 0;
    let partsSinceSegment = 0;
    const uris: string[] = [];
    for (const l of lines) {
      const part = /^#EXT-X-PART:.*URI="([^"]+)"/.exec(l);
      if (part) {
        partsSinceSegment++;
        uris.push(part[1]!);
      } else if (l && !l.startsWith('#')) {
        segments++;
        partsSinceSegment = 0;
        uris.push(l.trim());
      }
    }
    return { pos: seq < 0 ? -1 : (seq + segments) * 1000 + partsSinceSegment, uris };
  }

  /** Waits for the stream to be playable (master + media playlist with a segment). */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const m = await get(this.#master);
      if (m.status === 200) {
        const uri = m.body.split('\n').find((l) => l && !l.startsWith('#'));
        if (uri) {
          this.#media = new URL(uri.trim(), this.#master).href;
          const p = await get(this.#media);
          if (p.status === 200 && StreamWatcher.position(p.body).pos > 0) return;
        }
      }
      await sleep(500);
    }
    throw new Error('the live stream did not start');
  }

  async #poll(): Promise<void> {
    if (this.#polling || !this.#media) return;
    this.#polling = true;
    try {
      const [p, h] = await Promise.all([get(this.#media, { timeoutMs: 5_000 }), get(`${this.#base}/healthz`, { timeoutMs: 5_000 })]);
      if (h.status !== 200) this.healthFailures.push(`/healthz ${h.status} at ${new Date().toISOString()}`);
      const now = Date.now();
      if (p.status === 200) {
        const { pos, uris } = StreamWatcher.position(p.body);
        for (const u of uris) this.seen.add(u);
        if (pos > this.lastPosition) {
          this.lastPosition = pos;
          this.lastAdvanceAt = now;
        }
      } else this.healthFailures.push(`media playlist ${p.status} at ${new Date().toISOString()}`);
      this.longestStallMs = Math.max(this.longestStallMs, now - this.lastAdvanceAt);
    } finally {
      this.#polling = false;
    }
  }

  start(): void {
    this.lastAdvanceAt = Date.now();
    this.#timer = setInterval(() => void this.#poll(), 1_000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Starts a new window for `window()` (per group). */
  reset(): void {
    this.#windowStart = Date.now();
    this.longestStallMs = 0;
    this.healthFailures = [];
  }

  /** Waits (up to `ms`) for the stream to advance past where it is now. */
  async advances(ms = 15_000): Promise<boolean> {
    const from = this.lastPosition;
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      await this.#poll();
      if (this.lastPosition > from) return true;
      await sleep(500);
    }
    return false;
  }

  /** The window since reset(): longest stall and health failures. */
  window(): { sinceMs: number; longestStallMs: number; healthFailures: string[] } {
    return { sinceMs: Date.now() - this.#windowStart, longestStallMs: this.longestStallMs, healthFailures: [...this.healthFailures] };
  }
}
