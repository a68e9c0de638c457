// Hostile WebSocket: bad upgrades beyond the per-address cap (no slot may leak), malformed, oversized and binary
// frames, floods, a slow consumer, and the per-address cap with and without a trusted proxy's X-Forwarded-For.
import type { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { noise, rawExchange, sleep, statuses, tcp, type Ctx } from './kit.ts';

/** Cap the suite's servers run with (ONAIR_WS_MAX_CONNECTIONS_PER_IP). */
export const WS_CAP = 5;

interface Opened {
  ws?: WebSocket;
  status: number;
  messages: { type: string; [k: string]: unknown }[];
  closed?: { code: number; reason: string };
}

/** Opens /ws?event=… from `localAddress` with `headers`; status 101 when open, else the refusal's status (0: error). */
function openWs(
  port: number,
  eventId: string,
  o: { localAddress?: string; headers?: Record<string, string>; hello?: boolean } = {},
): Promise<Opened> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?event=${eventId}`, {
      localAddress: o.localAddress,
      headers: o.headers,
      handshakeTimeout: 5_000,
    });
    const out: Opened = { status: 0, messages: [] };
    ws.on('message', (d, binary) => {
      try {
        out.messages.push(binary ? { type: '(binary)' } : (JSON.parse(d.toString()) as Opened['messages'][number]));
      } catch {
        out.messages.push({ type: '(not json)' });
      }
    });
    ws.on('close', (code, reason) => (out.closed = { code, reason: reason.toString() }));
    ws.once('open', () => {
      out.status = 101;
      out.ws = ws;
      if (o.hello !== false) ws.send(JSON.stringify({ type: 'hello', v: 1 }));
      resolve(out);
    });
    ws.once('unexpected-response', (_req, res) => {
      out.status = res.statusCode ?? 0;
      res.resume();
      ws.terminate();
      resolve(out);
    });
    ws.once('error', () => resolve(out));
  });
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return true;
    await sleep(25);
  }
  return cond();
}

/** A watcher that must get its welcome within 3 s: proof the gateway still serves. */
async function goodClient(port: number, eventId: string, localAddress: string): Promise<boolean> {
  const c = await openWs(port, eventId, { localAddress });
  if (c.status !== 101) return false;
  const ok = await until(() => c.messages.some((m) => m.type === 'welcome'), 3_000);
  c.ws?.terminate();
  return ok;
}

const upgrade = (eventId: string, extra: string) =>
  `GET /ws?event=${eventId} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n${extra}\r\n`;

/** Runs the WebSocket group on the main server, then on a second one started with ONAIR_TRUSTED_PROXIES=''. */
export async function wsGroup(ctx: Ctx): Promise<void> {
  const { server, live } = ctx;
  const port = server.httpPort;

  // Refused upgrades, 3 × the cap from one address; then a good upgrade from it must still open.
  const key = 'dGhlIHNhbXBsZSBub25jZQ==';
  const bad: [string, string][] = [
    ['no Sec-WebSocket-Key', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'],
    ['version 12', `Upgrade: websocket\r\nSec-WebSocket-Version: 12\r\nSec-WebSocket-Key: ${key}\r\n`],
    ['Upgrade: h2c', `Upgrade: h2c\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`],
    ['bad key', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n'],
  ];
  const leakFrom = '127.0.0.150';
  for (let round = 0; round < 3 * WS_CAP; round++) {
    const [name, headers] = bad[round % bad.length]!;
    const r = await rawExchange(port, [upgrade(live.id, headers)], { localAddress: leakFrom, idleMs: 1_000, maxMs: 3_000 });
    const st = statuses(r.data)[0];
    ctx.check(
      `bad upgrade (${name}) #${round}: refused with 4xx`,
      st !== undefined && st >= 400 && st < 500 && st !== 429,
      `status ${st ?? 'none'}`,
    );
  }
  ctx.check(
    `after ${3 * WS_CAP} refused upgrades a good one from the same address opens (no leaked slot)`,
    await goodClient(port, live.id, leakFrom),
  );

  // Frames: each hostile input on its own connection; the connection gets an error or is closed, the gateway lives.
  const frames: [string, (ws: WebSocket) => void, (o: Opened) => string | undefined][] = [
    ['not JSON', (ws) => ws.send('{{{{'), () => undefined],
    ['JSON array', (ws) => ws.send('[1,2,3]'), () => undefined],
    ['unknown type', (ws) => ws.send(JSON.stringify({ type: 'rm -rf', ref: 'x' })), () => undefined],
    ['binary frame', (ws) => ws.send(noise(512, 3)), () => undefined],
    ['4 KB+ message', (ws) => ws.send(JSON.stringify({ type: 'comment', text: 'x'.repeat(5_000) })), () => undefined],
    [
      'oversized frame (1 MiB)',
      (ws) => ws.send('y'.repeat(1 << 20)),
      (o) => (o.closed?.code === 1009 ? undefined : `closed ${JSON.stringify(o.closed)}`),
    ],
    ['hello twice', (ws) => ws.send(JSON.stringify({ type: 'hello', v: 1 })), () => undefined],
    ['hello v 99', (ws) => ws.send(JSON.stringify({ type: 'hello', v: 99, token: 'a.b' })), () => undefined],
    ['forged token hello', (ws) => ws.send(JSON.stringify({ type: 'hello', v: 1, token: 'eyJ2IjoxfQ.AAAA' })), () => undefined],
    ['comment without token', (ws) => ws.send(JSON.stringify({ type: 'comment', text: '<script>alert(1)</script>' })), () => undefined],
    ['deep JSON', (ws) => ws.send('['.repeat(3_000) + ']'.repeat(3_000)), () => undefined],
    ['__proto__', (ws) => ws.send('{"type":"ping","__proto__":{"x":1},"ref":"p"}'), () => undefined],
  ];
  let addr = 160;
  for (const [name, send, extra] of frames) {
    const o = await openWs(port, live.id, { localAddress: `127.0.0.${addr++}` });
    if (!ctx.check(`frame ${name}: connection opened`, o.status === 101, `status ${o.status}`)) continue;
    await until(() => o.messages.some((m) => m.type === 'welcome'), 3_000);
    const before = o.messages.length;
    send(o.ws!);
    o.ws!.send(JSON.stringify({ type: 'ping', ref: 'after' }));
    await until(() => o.closed !== undefined || o.messages.slice(before).some((m) => m.type === 'pong'), 3_000);
    const answered = o.closed !== undefined || o.messages.slice(before).some((m) => m.type === 'pong' || m.type === 'error');
    const problem = extra(o);
    ctx.check(
      `frame ${name}: answered (error, pong or close)`,
      answered && !problem,
      problem ?? `got ${JSON.stringify(o.messages.slice(before)).slice(0, 200)}`,
    );
    o.ws!.terminate();
  }
  // Raw invalid frames: bad UTF-8 text, an unmasked client frame, a reserved opcode, a 2^63 length.
  const rawFrames: [string, Buffer][] = [
    ['invalid UTF-8 text', Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0xff ^ 1, 0xfe ^ 2])],
    ['unmasked frame', Buffer.from([0x81, 0x02, 0x68, 0x69])],
    ['reserved opcode 0x3', Buffer.from([0x83, 0x80, 1, 2, 3, 4])],
    ['64-bit length 2^62', Buffer.from([0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])],
    ['RSV bits set', Buffer.from([0xf1, 0x80, 1, 2, 3, 4])],
  ];
  for (const [name, frame] of rawFrames) {
    const s = await tcp(port, `127.0.0.${addr++}`);
    s.on('error', () => undefined);
    const got: Buffer[] = [];
    let closed = false;
    s.on('data', (d: Buffer) => got.push(d));
    s.on('close', () => (closed = true));
    s.write(upgrade(live.id, `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`));
    await until(() => Buffer.concat(got).includes('\r\n\r\n'), 3_000);
    const opened = Buffer.concat(got).toString('latin1').startsWith('HTTP/1.1 101');
    s.write(frame);
    await until(() => closed, 3_000);
    ctx.check(`raw frame ${name}: connection closed by the server`, opened && closed, `opened ${opened}, closed ${closed}`);
    s.destroy();
  }

  // Flood: 5,000 pings as fast as possible on one connection; meanwhile a normal client joins.
  const flood = await openWs(port, live.id, { localAddress: `127.0.0.${addr++}` });
  if (ctx.check('ping flood: connection opened', flood.status === 101)) {
    for (let i = 0; i < 5_000 && flood.ws!.readyState === WebSocket.OPEN; i++) flood.ws!.send(`{"type":"ping","ref":"f${i}"}`);
    ctx.tried(5_000);
    ctx.check('ping flood: a normal client still joins', await goodClient(port, live.id, `127.0.0.${addr++}`));
    flood.ws!.terminate();
  }
  // Comment flood without a token and reactions flood: refused, bounded.
  const junk = await openWs(port, live.id, { localAddress: `127.0.0.${addr++}` });
  if (junk.status === 101) {
    for (let i = 0; i < 2_000 && junk.ws!.readyState === WebSocket.OPEN; i++)
      junk.ws!.send(JSON.stringify({ type: i % 2 ? 'react' : 'comment', reaction: 'fire', text: 'spam' }));
    ctx.tried(2_000);
    ctx.check('comment/react flood without token: a normal client still joins', await goodClient(port, live.id, `127.0.0.${addr++}`));
    junk.ws!.terminate();
  }
  // Slow consumer: never reads; asks for 30,000 pongs with long refs. The gateway must not stall for others.
  const slow = await openWs(port, live.id, { localAddress: `127.0.0.${addr++}` });
  if (ctx.check('slow consumer: connection opened', slow.status === 101)) {
    const sock = (slow.ws as unknown as { _socket: Socket })._socket;
    sock.pause();
    const ref = 'r'.repeat(64);
    for (let i = 0; i < 30_000 && slow.ws!.readyState === WebSocket.OPEN; i++) slow.ws!.send(`{"type":"ping","ref":"${ref}"}`);
    ctx.tried(30_000);
    const t0 = Date.now();
    ctx.check(
      'slow consumer: a normal client still joins within 3 s',
      await goodClient(port, live.id, `127.0.0.${addr}`),
      `${Date.now() - t0} ms`,
    );
    slow.ws!.terminate();
  }

  // Per-address cap behind the default trusted proxy (loopback): X-Forwarded-For gives each client its own cap.
  const proxy = '127.0.0.190';
  const held: Opened[] = [];
  for (const client of ['198.51.100.1', '198.51.100.2']) {
    for (let i = 0; i < WS_CAP; i++)
      held.push(await openWs(port, live.id, { localAddress: proxy, headers: { 'x-forwarded-for': client } }));
  }
  const opened = held.filter((o) => o.status === 101).length;
  ctx.check(
    `trusted proxy: ${WS_CAP} connections for each of two forwarded clients (${2 * WS_CAP} from one proxy address)`,
    opened === 2 * WS_CAP,
    `${opened}/${2 * WS_CAP} opened`,
  );
  const over = await openWs(port, live.id, { localAddress: proxy, headers: { 'x-forwarded-for': '198.51.100.1' } });
  ctx.check('trusted proxy: a forwarded client over its cap gets 429', over.status === 429, `status ${over.status}`);
  over.ws?.terminate();
  const spoofFrom = '127.0.0.191';
  for (const o of held) o.ws?.terminate();
  await sleep(300);

  // Same test against a server that trusts no proxy: the header is ignored, the cap is per connecting address.
  let other: ServerUnderTest | undefined;
  try {
    other = await startServer({ ONAIR_TRUSTED_PROXIES: '', ONAIR_WS_MAX_CONNECTIONS_PER_IP: String(WS_CAP), ONAIR_LOG_LEVEL: 'warn' });
    const ev = JSON.parse(await other.cli(['event', 'create', '--title', 'ws caps', '--json'])) as { id: string };
    const list: Opened[] = [];
    for (let i = 0; i < WS_CAP + 1; i++)
      list.push(await openWs(other.httpPort, ev.id, { localAddress: spoofFrom, headers: { 'x-forwarded-for': `198.51.100.${10 + i}` } }));
    const st = list.map((o) => o.status);
    ctx.check(
      `no trusted proxy: X-Forwarded-For ignored, connection ${WS_CAP + 1} from one address gets 429`,
      st.slice(0, WS_CAP).every((s) => s === 101) && st[WS_CAP] === 429,
      st.join(','),
    );
    for (const o of list) o.ws?.terminate();
    ctx.check('second server stayed up', other.child.exitCode === null);
  } catch (err) {
    ctx.check('no trusted proxy: second server started', false, (err as Error).message.slice(0, 300));
  } finally {
    await other?.stop();
  }
}
