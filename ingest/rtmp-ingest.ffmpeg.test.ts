import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry, type Registry } from '../lib/metrics.ts';
import { createRtmpIngest, type RtmpIngest } from './rtmp-ingest.ts';
import { FeedRefusal, type FeedSink, type IngestFeedSink, type LiveFeed } from './feed.ts';
import { createKeyGuessLimiter, type KeyGuessLimiter } from './key-guesses.ts';
import amf from 'node-media-server/src/protocol/amf.js';
import { waitFor } from '../test/support/wait-for.ts';

const KEYS: Record<string, string> = {
  'sk-alpha-0123456789abcdef': 'event-a',
  'sk-bravo-0123456789abcdef': 'event-b',
  'sk-charlie-0123456789abcd': 'event-c',
  'sk-delta-0123456789abcdef': 'event-d',
};
const WRONG_KEY = 'sk-wrong-ZZZZ9999zzzz';

/** One opened feed as the test sink saw it. */
interface SeenFeed {
  eventId: string;
  sessionId: string;
  chunks: Buffer[];
  bytes: number;
  ends: number;
}

/** A FeedSink that records every feed and its bytes. */
function recordingSink(): FeedSink & { feeds: SeenFeed[] } {
  const feeds: SeenFeed[] = [];
  return {
    feeds,
    open(eventId, source): LiveFeed {
      const seen: SeenFeed = { eventId, sessionId: source.sessionId, chunks: [], bytes: 0, ends: 0 };
      assert.equal(source.protocol, 'rtmp');
      assert.ok(source.remoteAddress.length > 0);
      feeds.push(seen);
      return {
        write(chunk) {
          assert.ok(seen.ends === 0, 'write after end');
          seen.chunks.push(chunk);
          seen.bytes += chunk.length;
        },
        end() {
          seen.ends += 1;
        },
      };
    },
  };
}

/** Captures pino's JSON lines. */
function logCapture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** A running ffmpeg publisher. */
interface Publisher {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

function publish(port: number, path: string, seconds: number): Publisher {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      '-re',
      '-f',
      'lavfi',
      '-t',
      String(seconds),
      '-i',
      'testsrc2=size=640x360:rate=30',
      '-re',
      '-f',
      'lavfi',
      '-t',
      String(seconds),
      '-i',
      'sine',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-g',
      '60',
      '-c:a',
      'aac',
      '-f',
      'flv',
      `rtmp://127.0.0.1:${port}${path}`,
    ],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  children.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, at: Date.now() });
    });
  });
  return { child, exited };
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const data = await m.get();
  const v = data.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

/** FLV tags (type + first payload bytes) of a feed, checking the header and tag framing. */
function flvTags(buf: Buffer): { type: number; b0: number; b1: number }[] {
  assert.equal(buf.subarray(0, 4).toString('latin1'), 'FLV\x01');
  let off = buf.readUInt32BE(5) + 4; // header size, then PreviousTagSize0
  const tags: { type: number; b0: number; b1: number }[] = [];
  while (off + 11 <= buf.length) {
    const type = buf[off]!;
    const size = buf.readUIntBE(off + 1, 3);
    if (off + 11 + size + 4 > buf.length) break;
    assert.equal(buf.readUInt32BE(off + 11 + size), size + 11, 'PreviousTagSize');
    tags.push({ type, b0: buf[off + 11] ?? 0, b1: buf[off + 12] ?? 0 });
    off += 11 + size + 4;
  }
  return tags;
}

/** Does an RTMP handshake, then sends a "connect" command whose AMF is broken; resolves when the server closes. */
function sendMalformedRtmp(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536)])));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('server did not close the malformed connection'));
    }, 5_000);
    let received = 0;
    socket.on('data', (d: Buffer) => {
      const before = received;
      received += d.length;
      if (before < 3073 && received >= 3073) {
        const payload = Buffer.from([0x02, 0x00, 0x07, ...Buffer.from('connect'), 0xff]); // 0xff: no such AMF0 type
        const header = Buffer.alloc(12);
        header[0] = 0x03; // fmt 0, chunk stream 3
        header.writeUIntBE(payload.length, 4, 3);
        header[7] = 20; // AMF0 command
        socket.write(Buffer.concat([Buffer.alloc(1536), header, payload])); // C2, then the command
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** A message the server sent; AMF0 commands (type 20) decoded. */
interface ServerMessage {
  type: number;
  streamId: number;
  payload: Buffer;
  command?: unknown[];
}

/**
 * A hand-driven RTMP client on a raw socket: handshake, commands and arbitrary chunks out; every message the
 * server sends back parsed (chunk reassembly, Set Chunk Size) and AMF0 commands decoded.
 */
class RawRtmp {
  readonly socket: Socket;
  readonly messages: ServerMessage[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  #received: Buffer = Buffer.alloc(0);
  #handshaken = false;
  #inChunkSize = 128;
  #partial = new Map<number, { length: number; type: number; streamId: number; parts: Buffer[]; got: number }>();
  #changed: (() => void)[] = [];

  /** Connects and sends `prefix` (e.g. a PROXY header), then C0+C1. */
  constructor(port: number, prefix: Buffer = Buffer.alloc(0)) {
    this.socket = connect(port, '127.0.0.1', () => this.socket.write(Buffer.concat([prefix, Buffer.from([3]), Buffer.alloc(1536)])));
    this.socket.on('error', () => {});
    this.socket.on('data', (d: Buffer) => {
      this.#received = Buffer.concat([this.#received, d]);
      if (!this.#handshaken && this.#received.length >= 3073) {
        this.#handshaken = true;
        this.#received = this.#received.subarray(3073);
        this.socket.write(Buffer.alloc(1536)); // C2
      }
      if (this.#handshaken) this.#parse();
      this.#notify();
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', () => {
        this.isClosed = true;
        this.#notify();
        resolve();
      });
    });
  }

  #notify(): void {
    for (const f of this.#changed.splice(0)) f();
  }

  /** Reassembles the server's chunks (it only sends 1-byte basic headers and no extended timestamps). */
  #parse(): void {
    const headerSize = [11, 7, 3, 0];
    for (;;) {
      const b0 = this.#received[0];
      if (b0 === undefined) return;
      const fmt = b0 >> 6;
      const cid = b0 & 0x3f;
      const h = 1 + headerSize[fmt]!;
      if (this.#received.length < h) return;
      let m = this.#partial.get(cid);
      if (fmt <= 1) {
        const length = this.#received.readUIntBE(4, 3);
        const streamId = fmt === 0 ? this.#received.readUInt32LE(8) : (m?.streamId ?? 0);
        m = { length, type: this.#received[7]!, streamId, parts: [], got: 0 };
      } else if (!m) {
        throw new Error(`server chunk fmt ${fmt} on unknown chunk stream ${cid}`);
      } else if (m.got === m.length) {
        m = { ...m, parts: [], got: 0 };
      }
      const n = Math.min(this.#inChunkSize, m.length - m.got);
      if (this.#received.length < h + n) return;
      m.parts.push(this.#received.subarray(h, h + n));
      m.got += n;
      this.#partial.set(cid, m);
      this.#received = this.#received.subarray(h + n);
      if (m.got < m.length) continue;
      const payload = Buffer.concat(m.parts);
      if (m.type === 1) this.#inChunkSize = payload.readUInt32BE(0);
      this.messages.push({ type: m.type, streamId: m.streamId, payload, command: m.type === 20 ? amf.amf0Decode(payload) : undefined });
    }
  }

  /** Resolves once the server has answered the handshake; rejects if it closes first. */
  async handshake(): Promise<void> {
    await this.#until('the handshake', () => this.#handshaken);
  }

  /** The first message matching `pred`, waiting for it; rejects on close or after `timeoutMs`. */
  async waitFor(what: string, pred: (m: ServerMessage) => boolean, timeoutMs = 5_000): Promise<ServerMessage> {
    await this.#until(what, () => this.messages.some(pred), timeoutMs);
    return this.messages.find(pred)!;
  }

  async #until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.isClosed) throw new Error(`connection closed before ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#changed.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Resolves true if the server closes the connection within `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const r = await Promise.race([this.closed.then(() => true), timedOut]);
    clearTimeout(timer);
    return r;
  }

  /** Sends one message as 128-byte chunks (fmt 0, then fmt 3) on chunk stream `cid`. */
  send(cid: number, type: number, streamId: number, payload: Buffer): void {
    const header = Buffer.alloc(12);
    header[0] = cid;
    header.writeUIntBE(payload.length, 4, 3);
    header[7] = type;
    header.writeUInt32LE(streamId, 8);
    const out: Buffer[] = [header];
    for (let off = 0; off < payload.length; off += 128) {
      if (off > 0) out.push(Buffer.from([0xc0 | cid]));
      out.push(payload.subarray(off, off + 128));
    }
    this.socket.write(Buffer.concat(out));
  }

  /** Sends an AMF0 command on chunk stream 3. */
  command(streamId: number, ...values: unknown[]): void {
    this.send(3, 20, streamId, amf.amf0Encode(values));
  }

  /** The `info.code` of every onStatus the server sent. */
  statusCodes(): string[] {
    return this.messages
      .filter((m) => m.command?.[0] === 'onStatus')
      .map((m) => String((m.command?.[3] as { code?: unknown } | undefined)?.code));
  }

  /** connect, createStream, publish(key) — the commands every encoder sends. */
  async publish(key: string): Promise<void> {
    await this.handshake();
    this.command(0, 'connect', 1, { app: 'live', type: 'nonprivate', tcUrl: `rtmp://127.0.0.1/live` });
    await this.waitFor('connect result', (m) => m.command?.[0] === '_result' && m.command[1] === 1);
    this.command(0, 'createStream', 2, null);
    const created = await this.waitFor('createStream result', (m) => m.command?.[0] === '_result' && m.command[1] === 2);
    this.command(Number(created.command?.[3]), 'publish', 3, null, key, 'live');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A PROXY protocol v1 line naming `client` as the source. */
const proxyV1 = (client: string) => Buffer.from(`PROXY TCP4 ${client} 127.0.0.1 40000 1935\r\n`);

/** A PROXY protocol v2 header naming IPv4 `client` as the source. */
function proxyV2(client: string): Buffer {
  const h = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(h);
  h[12] = 0x21; // v2, PROXY
  h[13] = 0x11; // TCP over IPv4
  h.writeUInt16BE(12, 14);
  Buffer.from(client.split('.').map(Number)).copy(h, 16);
  Buffer.from([127, 0, 0, 1]).copy(h, 20);
  h.writeUInt16BE(40000, 24);
  h.writeUInt16BE(1935, 26);
  return h;
}

/** What ffprobe sees in an FLV byte stream: "codec,width,height" per stream. */
async function probeStreams(flv: Buffer): Promise<string> {
  const child = spawn('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', '-i', 'pipe:0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stdin!.on('error', () => {}); // ffprobe may stop reading early
  child.stdin!.end(flv);
  await new Promise((resolve) => child.once('close', resolve));
  children.delete(child);
  return out.trim();
}

function setup(
  port = 0,
  authDelayMs = 30,
  keyGuesses?: KeyGuessLimiter,
  trustedProxies?: string[],
  feeds?: IngestFeedSink,
): {
  ingest: RtmpIngest;
  sink: ReturnType<typeof recordingSink>;
  registry: Registry;
  lines: string[];
  /** onSourceRefused calls: [eventId, reason]. */
  refusals: [string, string][];
} {
  const sink = recordingSink();
  const refusals: [string, string][] = [];
  const registry = createMetricsRegistry();
  const { stream, lines } = logCapture();
  const ingest = createRtmpIngest({
    config: loadConfig({}, { host: '127.0.0.1', rtmpPort: port, ...(trustedProxies ? { trustedProxies } : {}) }),
    logger: createLogger('debug', stream),
    registry,
    authorize: async (key) => {
      await new Promise((r) => setTimeout(r, authDelayMs)); // a real lookup is async
      return KEYS[key];
    },
    feeds: feeds ?? sink,
    keyGuesses,
    onSourceRefused: (eventId, reason) => refusals.push([eventId, reason]),
  });
  return { ingest, sink, registry, lines, refusals };
}

function assertNoKeys(lines: string[]): void {
  for (const line of lines) {
    for (const key of [...Object.keys(KEYS), WRONG_KEY]) assert.ok(!line.includes(key), `key logged: ${line}`);
  }
}

test('an accepted publish delivers an FLV stream and ends once when the publisher exits', async () => {
  // A slow key check: metadata, sequence headers and the first frames arrive before it completes.
  const { ingest, sink, registry, lines } = setup(0, 1_500);
  await ingest.start();
  try {
    assert.ok(ingest.port > 0);
    const p = publish(ingest.port, '/live/sk-alpha-0123456789abcdef', 3);
    const exit = await p.exited;
    assert.equal(exit.code, 0);
    await waitFor('feed end', () => sink.feeds[0]?.ends === 1);
    assert.equal(sink.feeds.length, 1);
    const feed = sink.feeds[0]!;
    assert.equal(feed.eventId, 'event-a');
    assert.ok(feed.bytes > 50_000, `only ${feed.bytes} bytes`);
    const tags = flvTags(Buffer.concat(feed.chunks));
    assert.ok(
      tags.some((t) => t.type === 18),
      'metadata tag',
    );
    assert.equal(tags[0]?.type, 18, 'metadata first');
    assert.ok(
      tags.some((t) => t.type === 9 && t.b0 === 0x17 && t.b1 === 0),
      'AVC sequence header',
    );
    assert.ok(
      tags.some((t) => t.type === 9 && t.b0 === 0x17 && t.b1 === 1),
      'H.264 keyframe',
    );
    assert.ok(
      tags.some((t) => t.type === 8 && t.b0 >> 4 === 10 && t.b1 === 0),
      'AAC sequence header',
    );
    assert.equal(await probeStreams(Buffer.concat(feed.chunks)), 'h264,640,360\naac');
    assert.equal(await metricValue(registry, 'onair_ingest_publishes_total', { protocol: 'rtmp' }), 1);
    assert.equal(await metricValue(registry, 'onair_ingest_active_publishers', { protocol: 'rtmp' }), 0);
    assert.equal(await metricValue(registry, 'onair_ingest_bytes_total', { protocol: 'rtmp' }), feed.bytes);
    assert.ok(lines.some((l) => l.includes('rtmp publish started') && l.includes('event-a')));
    assert.ok(
      lines.some((l) => l.includes('"component":"node-media-server"')),
      'NMS logs go to pino',
    );
    assertNoKeys(lines);
  } finally {
    await ingest.stop();
  }
});

test('a feed sink that opens asynchronously: media waits for it, and its refusal rejects the publisher with the reason', async () => {
  const recorder = recordingSink();
  let refuse = true;
  const slowSink: IngestFeedSink = {
    async open(eventId, source) {
      await new Promise((r) => setTimeout(r, 1_000)); // e.g. placing the event on origins
      if (refuse) throw new FeedRefusal('pool_full', 'every origin is at capacity (pool_full)');
      return recorder.open(eventId, source);
    },
  };
  const { ingest, registry, lines } = setup(0, 30, undefined, undefined, slowSink);
  await ingest.start();
  try {
    const refused = publish(ingest.port, '/live/sk-alpha-0123456789abcdef', 10);
    assert.notEqual((await refused.exited).code, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'feed_error' }), 1);
    const line = lines.find((l) => l.includes('feed refused'));
    assert.ok(line, 'refusal logged');
    assert.match(line, /"reason":"pool_full"/);
    assert.equal(recorder.feeds.length, 0);

    refuse = false;
    const p = publish(ingest.port, '/live/sk-alpha-0123456789abcdef', 3);
    assert.equal((await p.exited).code, 0);
    await waitFor('feed end', () => recorder.feeds[0]?.ends === 1);
    const bytes = Buffer.concat(recorder.feeds[0]!.chunks);
    assert.ok(bytes.length > 50_000, `only ${bytes.length} bytes`);
    // What arrived during the second of opening was kept: the stream is whole from its metadata on.
    assert.equal(flvTags(bytes)[0]?.type, 18, 'metadata first');
    assert.equal(await probeStreams(bytes), 'h264,640,360\naac');
    assertNoKeys(lines);
  } finally {
    await ingest.stop();
  }
});

test('a wrong key or app is rejected fast, logged without the key, and a good key right after works', async () => {
  const { ingest, sink, registry, lines } = setup();
  await ingest.start();
  try {
    const started = Date.now();
    const bad = publish(ingest.port, `/live/${WRONG_KEY}`, 10);
    const exit = await bad.exited;
    assert.notEqual(exit.code, 0);
    assert.ok(exit.at - started < 3_000, `ffmpeg took ${exit.at - started} ms to give up`);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'unknown_key' }), 1);
    const line = lines.find((l) => l.includes('rtmp publish rejected'));
    assert.ok(line, 'rejection logged');
    assert.match(line, /"reason":"unknown_key"/);
    assert.match(line, /"remoteAddress":"[^"]*127\.0\.0\.1"/);

    const otherApp = publish(ingest.port, '/other/sk-bravo-0123456789abcdef', 10);
    assert.notEqual((await otherApp.exited).code, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'bad_app' }), 1);
    // Playing is not offered (and would expose the stream by its key).
    const play = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-nostdin',
        '-i',
        `rtmp://127.0.0.1:${ingest.port}/live/sk-bravo-0123456789abcdef`,
        '-t',
        '1',
        '-f',
        'null',
        '-',
      ],
      {
        stdio: 'ignore',
      },
    );
    children.add(play);
    const playCode = await new Promise((resolve) => play.once('exit', resolve));
    children.delete(play);
    assert.notEqual(playCode, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'play_not_allowed' }), 1);
    assert.equal(sink.feeds.length, 0);

    // Same loopback address, good key, immediately after: must be a fresh, working publish.
    const good = publish(ingest.port, '/live/sk-bravo-0123456789abcdef', 2);
    assert.equal((await good.exited).code, 0);
    await waitFor('feed end', () => sink.feeds[0]?.ends === 1);
    assert.equal(sink.feeds.length, 1);
    assert.equal(sink.feeds[0]!.eventId, 'event-b');
    assert.ok(sink.feeds[0]!.bytes > 20_000);
    flvTags(Buffer.concat(sink.feeds[0]!.chunks));
    assertNoKeys(lines);
  } finally {
    await ingest.stop();
  }
});

test('an address that keeps sending wrong keys is refused for a while, even with a right key', async () => {
  const { ingest, sink, registry } = setup(0, 30, createKeyGuessLimiter({ maxFailures: 2, windowSec: 60 }));
  await ingest.start();
  try {
    for (let i = 0; i < 2; i++) assert.notEqual((await publish(ingest.port, `/live/${WRONG_KEY}${i}`, 10).exited).code, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'unknown_key' }), 2);
    const good = publish(ingest.port, '/live/sk-alpha-0123456789abcdef', 10);
    assert.notEqual((await good.exited).code, 0, 'the right key is refused during the lock-out');
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'rate_limited' }), 1);
    assert.equal(sink.feeds.length, 0, 'no feed was opened');
  } finally {
    await ingest.stop();
  }
});

test('a second publisher, or malformed RTMP, is rejected while the first publisher keeps flowing', async () => {
  const { ingest, sink, registry, lines } = setup();
  await ingest.start();
  try {
    const first = publish(ingest.port, '/live/sk-charlie-0123456789abcd', 30);
    await waitFor('first bytes', () => (sink.feeds[0]?.bytes ?? 0) > 10_000);
    const second = publish(ingest.port, '/live/sk-charlie-0123456789abcd', 10);
    assert.notEqual((await second.exited).code, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'already_live' }), 1);
    assert.ok(lines.some((l) => l.includes('"reason":"already_live"') && l.includes('event-c')));
    // Malformed RTMP from another client closes that connection only.
    await sendMalformedRtmp(ingest.port);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'malformed' }), 1);
    const before = sink.feeds[0]!.bytes;
    await waitFor('first keeps flowing', () => sink.feeds[0]!.bytes > before + 20_000);
    assert.equal(sink.feeds.length, 1);
    assert.equal(sink.feeds[0]!.ends, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_active_publishers', { protocol: 'rtmp' }), 1);

    // disconnect() closes the live publisher and ends its feed at once.
    assert.equal(ingest.disconnect('event-c'), true);
    assert.equal(sink.feeds[0]!.ends, 1);
    assert.equal(ingest.disconnect('event-c'), false);
    assert.notEqual((await first.exited).code, 0);
    assert.equal(await metricValue(registry, 'onair_ingest_active_publishers', { protocol: 'rtmp' }), 0);
    assertNoKeys(lines);
  } finally {
    await ingest.stop();
  }
});

test('a publisher that drops and returns gets a new feed; a stalled one is replaced', async () => {
  const { ingest, sink, lines } = setup();
  await ingest.start();
  try {
    const first = publish(ingest.port, '/live/sk-delta-0123456789abcdef', 30);
    await waitFor('first bytes', () => (sink.feeds[0]?.bytes ?? 0) > 10_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await waitFor('first feed end', () => sink.feeds[0]!.ends === 1);

    const second = publish(ingest.port, '/live/sk-delta-0123456789abcdef', 30);
    await waitFor('second feed', () => (sink.feeds[1]?.bytes ?? 0) > 10_000);
    assert.equal(sink.feeds[1]!.eventId, 'event-d');
    assert.equal(Buffer.concat(sink.feeds[1]!.chunks).subarray(0, 4).toString('latin1'), 'FLV\x01');
    assert.notEqual(sink.feeds[1]!.sessionId, sink.feeds[0]!.sessionId);

    // A publisher whose process hangs keeps its TCP connection open: it must not block its event.
    second.child.kill('SIGSTOP');
    const third = publish(ingest.port, '/live/sk-delta-0123456789abcdef', 30);
    await waitFor('third feed', () => (sink.feeds[2]?.bytes ?? 0) > 10_000, 20_000);
    assert.equal(sink.feeds[1]!.ends, 1);
    assert.equal(sink.feeds[2]!.ends, 0);
    second.child.kill('SIGKILL');
    third.child.kill('SIGKILL');
    await Promise.all([second.exited, third.exited]);
    await waitFor('third feed end', () => sink.feeds[2]!.ends === 1);
    for (const f of sink.feeds) assert.equal(f.ends, 1);
    assertNoKeys(lines);
  } finally {
    await ingest.stop();
  }
});

test('stop() closes everything and start() works again; one ingest per process; a busy port rejects', async () => {
  const a = setup();
  await a.ingest.start();
  const b = setup();
  await assert.rejects(b.ingest.start(), /another RTMP ingest/);
  const p = publish(a.ingest.port, '/live/sk-alpha-0123456789abcdef', 30);
  await waitFor('bytes', () => (a.sink.feeds[0]?.bytes ?? 0) > 10_000);
  await a.ingest.stop();
  assert.equal(a.sink.feeds[0]!.ends, 1);
  await p.exited;

  // The port is held by someone else: start() rejects, the process keeps running.
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const busyPort = (blocker.address() as { port: number }).port;
  const c = setup(busyPort);
  await assert.rejects(c.ingest.start(), /cannot listen on 127\.0\.0\.1:\d+: port already in use/);
  await new Promise<void>((resolve) => blocker.close(() => resolve()));

  // A new ingest in the same process works.
  await b.ingest.start();
  try {
    const q = publish(b.ingest.port, '/live/sk-alpha-0123456789abcdef', 2);
    assert.equal((await q.exited).code, 0);
    await waitFor('feed end', () => b.sink.feeds[0]?.ends === 1);
    assert.ok(b.sink.feeds[0]!.bytes > 20_000);
  } finally {
    await b.ingest.stop();
  }
  // And the first one can be started again.
  await a.ingest.start();
  await a.ingest.stop();
});

test('a wrong key never hears NetStream.Publish.Start; a right key hears it once it is on air', async () => {
  const { ingest, sink, registry } = setup(0, 200);
  await ingest.start();
  const clients: RawRtmp[] = [];
  try {
    const wrong = new RawRtmp(ingest.port);
    clients.push(wrong);
    await wrong.publish(WRONG_KEY);
    await wrong.closed;
    assert.deepEqual(wrong.statusCodes(), ['NetStream.Publish.Denied']);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'unknown_key' }), 1);

    const right = new RawRtmp(ingest.port);
    clients.push(right);
    await right.publish('sk-alpha-0123456789abcdef');
    await right.waitFor('Publish.Start', (m) => m.command?.[0] === 'onStatus');
    assert.deepEqual(right.statusCodes(), ['NetStream.Publish.Start']);
    assert.ok(ingest.isLive('event-a'), 'on air when told so');
    assert.equal(sink.feeds.length, 1);
  } finally {
    for (const c of clients) c.close();
    await ingest.stop();
  }
});

test('an unauthenticated connection cannot make the server reserve big buffers; a live one is capped too', async () => {
  const { ingest, sink, registry, lines } = setup();
  await ingest.start();
  const clients: RawRtmp[] = [];
  try {
    // Declared 16 MiB messages on 16 chunk streams, a few payload bytes each: NMS reserved 16 MiB per stream.
    const c = new RawRtmp(ingest.port);
    clients.push(c);
    await c.handshake();
    const before = process.memoryUsage();
    const chunks: Buffer[] = [];
    for (let cid = 3; cid < 19; cid++) {
      const header = Buffer.alloc(12);
      header[0] = cid;
      header.writeUIntBE(0xffffff, 4, 3);
      header[7] = 9;
      chunks.push(header, Buffer.alloc(100, 0x17));
    }
    c.socket.write(Buffer.concat(chunks));
    const closed = await c.closedWithin(3_000);
    const after = process.memoryUsage();
    const grewMb = (after.arrayBuffers - before.arrayBuffers) / 2 ** 20;
    const rssMb = (after.rss - before.rss) / 2 ** 20;
    assert.ok(grewMb < 4, `buffers grew by ${grewMb.toFixed(1)} MB`);
    assert.ok(rssMb < 8, `RSS grew by ${rssMb.toFixed(1)} MB`);
    assert.ok(closed, 'the connection was closed');
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'too_large' }), 1);
    assert.ok(lines.some((l) => l.includes('"reason":"too_large"') && l.includes('before the publish is accepted')));

    // Many chunk streams of small messages are refused as well.
    const many = new RawRtmp(ingest.port);
    clients.push(many);
    await many.handshake();
    for (let cid = 3; cid < 63; cid++) many.send(cid, 4, 0, Buffer.from([0, 0, 0, 0, 0, 0]));
    assert.ok(await many.closedWithin(3_000), 'closed after too many chunk streams');
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'malformed' }), 1);
    // A chunk size of 0 would leave NMS's parser stuck on this connection until the idle timeout.
    const zero = new RawRtmp(ingest.port);
    clients.push(zero);
    await zero.handshake();
    zero.send(2, 1, 0, Buffer.alloc(4));
    zero.send(3, 20, 0, amf.amf0Encode(['connect', 1, { app: 'live' }]));
    assert.ok(await zero.closedWithin(3_000), 'closed after chunk size 0');
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'malformed' }), 2);

    // Once live, a frame is allowed to be big, but not 16 MiB.
    const pub = new RawRtmp(ingest.port);
    clients.push(pub);
    await pub.publish('sk-bravo-0123456789abcdef');
    await pub.waitFor('Publish.Start', (m) => m.command?.[0] === 'onStatus');
    pub.send(6, 9, 1, Buffer.concat([Buffer.from([0x17, 0x01, 0, 0, 0]), Buffer.alloc(200_000)]));
    const huge = Buffer.alloc(12);
    huge[0] = 6;
    huge.writeUIntBE(0xffffff, 4, 3);
    huge[7] = 9;
    huge.writeUInt32LE(1, 8);
    pub.socket.write(Buffer.concat([huge, Buffer.alloc(100, 0x17)]));
    assert.ok(await pub.closedWithin(3_000), 'live publisher closed');
    await waitFor('feed end', () => sink.feeds[0]?.ends === 1);
    assert.ok(lines.some((l) => l.includes('"reason":"too_large"') && l.includes('event-b')));
    assertNoKeys(lines);
  } finally {
    for (const c of clients) c.close();
    await ingest.stop();
  }
});

test('a source the origin cannot use (HEVC over enhanced RTMP) is refused with the reason, to the publisher and the parent', async () => {
  const { ingest, sink, registry, refusals, lines } = setup();
  await ingest.start();
  const pub = new RawRtmp(ingest.port);
  try {
    await pub.publish('sk-charlie-0123456789abcd');
    await pub.waitFor('Publish.Start', (m) => m.command?.[0] === 'onStatus');
    // ExVideoTagHeader: IsExHeader | keyframe | PacketTypeSequenceStart, FourCC hvc1, then a bit of HEVC config.
    pub.send(6, 9, 1, Buffer.concat([Buffer.from([0x90]), Buffer.from('hvc1'), Buffer.alloc(30, 1)]));
    const rejected = await pub.waitFor('Publish.Rejected', (m) => m.command?.[0] === 'onStatus' && pub.statusCodes().length > 1);
    assert.ok(rejected);
    assert.deepEqual(pub.statusCodes(), ['NetStream.Publish.Start', 'NetStream.Publish.Rejected']);
    const info = pub.messages.filter((m) => m.command?.[0] === 'onStatus').at(-1)!.command![3] as { description: string };
    assert.match(info.description, /^source refused: video codec hevc is not supported: send H\.264/);
    assert.ok(await pub.closedWithin(3_000), 'publisher disconnected');
    await waitFor('feed end', () => sink.feeds[0]?.ends === 1);
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]![0], 'event-c');
    assert.match(refusals[0]![1], /^video codec hevc is not supported/);
    assert.equal(ingest.isLive('event-c'), false);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'unusable_source' }), 1);
    assert.ok(lines.some((l) => l.includes('rtmp source refused') && l.includes('video codec hevc')));
  } finally {
    pub.close();
    await ingest.stop();
  }
});

test("a trusted proxy's PROXY header names the client: its wrong keys are counted against that address", async () => {
  const { ingest, sink, registry, lines } = setup(0, 30, createKeyGuessLimiter({ maxFailures: 2, windowSec: 60 }), ['loopback']);
  await ingest.start();
  const clients: RawRtmp[] = [];
  const via = async (prefix: Buffer, key: string) => {
    const c = new RawRtmp(ingest.port, prefix);
    clients.push(c);
    await c.publish(key);
    return c;
  };
  try {
    // Two wrong keys from 203.0.113.7 (one v1 header, one v2 header): that address is locked out...
    await (
      await via(proxyV1('203.0.113.7'), WRONG_KEY)
    ).closed;
    await (
      await via(proxyV2('203.0.113.7'), `${WRONG_KEY}2`)
    ).closed;
    const locked = await via(proxyV1('203.0.113.7'), 'sk-alpha-0123456789abcdef');
    await locked.closed;
    assert.deepEqual(locked.statusCodes(), ['NetStream.Publish.Denied']);
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'rate_limited' }), 1);
    assert.ok(lines.some((l) => l.includes('"reason":"rate_limited"') && l.includes('"remoteAddress":"203.0.113.7"')));
    // ...but not the proxy itself, nor another client behind it.
    const other = await via(proxyV2('198.51.100.20'), 'sk-alpha-0123456789abcdef');
    await other.waitFor('Publish.Start', (m) => m.command?.[0] === 'onStatus');
    assert.equal(sink.feeds[0]?.eventId, 'event-a');
    const direct = await via(Buffer.alloc(0), 'sk-bravo-0123456789abcdef');
    await direct.waitFor('Publish.Start', (m) => m.command?.[0] === 'onStatus');
    assert.ok(lines.some((l) => l.includes('rtmp publish started') && l.includes('"remoteAddress":"198.51.100.20"')));
  } finally {
    for (const c of clients) c.close();
    await ingest.stop();
  }
});

test('a PROXY header from a peer that is not a trusted proxy is a malformed handshake', async () => {
  const { ingest, registry, lines } = setup(0, 30, undefined, []);
  await ingest.start();
  try {
    const c = new RawRtmp(ingest.port, proxyV1('203.0.113.7'));
    assert.ok(await c.closedWithin(3_000), 'closed');
    c.close();
    assert.equal(await metricValue(registry, 'onair_ingest_rejected_total', { protocol: 'rtmp', reason: 'malformed' }), 1);
    assert.ok(lines.some((l) => l.includes('not a trusted proxy') && !l.includes('203.0.113.7')));
  } finally {
    await ingest.stop();
  }
});
