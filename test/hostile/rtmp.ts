// Hostile RTMP: random bytes, truncated and malformed handshakes, garbage after the handshake, oversized chunk
// headers, a 5 KB key, a wrong key (no Publish.Start before the key check), a connect flood, and a corrupt H.264
// publish to another event. The real stream must keep going; the corrupt publisher's log lines stay bounded.
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { noise, rawExchange, sleep, tcp, type Created, type Ctx } from './kit.ts';

const HANDSHAKE = 1536;

/** C0 + C1 of a plain (digest-less) handshake. */
function c0c1(): Buffer {
  const b = Buffer.alloc(1 + HANDSHAKE);
  b[0] = 3;
  noise(HANDSHAKE - 8, 7).copy(b, 9);
  return b;
}

/** Reads exactly `n` bytes (or whatever came before close/timeout). */
function readBytes(s: Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    const finish = () => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', finish);
      const all = Buffer.concat(parts);
      if (all.length > n) s.unshift(all.subarray(n));
      resolve(all.subarray(0, n));
    };
    const onData = (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= n) finish();
    };
    const t = setTimeout(finish, timeoutMs);
    s.on('data', onData);
    s.once('close', finish);
  });
}

/** Completes the handshake on a new connection; undefined if the server did not answer it. */
async function handshaken(port: number, localAddress: string): Promise<Socket | undefined> {
  const s = await tcp(port, localAddress);
  s.on('error', () => undefined);
  s.write(c0c1());
  const s0s1s2 = await readBytes(s, 1 + 2 * HANDSHAKE);
  if (s0s1s2.length < 1 + 2 * HANDSHAKE) {
    s.destroy();
    return undefined;
  }
  s.write(s0s1s2.subarray(1, 1 + HANDSHAKE)); // C2 echoes S1
  return s;
}

// AMF0
const amfNum = (n: number) => {
  const b = Buffer.alloc(9);
  b[0] = 0;
  b.writeDoubleBE(n, 1);
  return b;
};
const amfStr = (s: string) => {
  const v = Buffer.from(s);
  const h = Buffer.alloc(3);
  h[0] = 2;
  h.writeUInt16BE(v.length, 1);
  return Buffer.concat([h, v]);
};
const amfNull = Buffer.from([5]);
const amfObj = (o: Record<string, string>) => {
  const parts: Buffer[] = [Buffer.from([3])];
  for (const [k, v] of Object.entries(o)) {
    const key = Buffer.alloc(2);
    key.writeUInt16BE(k.length);
    parts.push(key, Buffer.from(k), amfStr(v));
  }
  parts.push(Buffer.from([0, 0, 9]));
  return Buffer.concat(parts);
};

/** One whole message in a single type-0 chunk (the chunk size is raised first, so nothing is split). */
function message(csid: number, type: number, streamId: number, payload: Buffer, declaredLength = payload.length): Buffer {
  const h = Buffer.alloc(12);
  h[0] = csid & 0x3f;
  h.writeUIntBE(0, 1, 3);
  h.writeUIntBE(declaredLength, 4, 3);
  h[7] = type;
  h.writeUInt32LE(streamId, 8);
  return Buffer.concat([h, payload]);
}
const setChunkSize = (n: number) => {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(n);
  return message(2, 1, 0, p);
};

/** connect → createStream → publish(key) as a raw client; returns what the server sent and whether it closed. */
async function rawPublish(port: number, localAddress: string, key: string): Promise<{ text: string; closed: boolean } | undefined> {
  const s = await handshaken(port, localAddress);
  if (!s) return undefined;
  const got: Buffer[] = [];
  let closed = false;
  s.on('data', (d: Buffer) => got.push(d));
  const closedP = new Promise<void>((r) => s.once('close', () => r()));
  void closedP.then(() => (closed = true));
  s.write(setChunkSize(65_536));
  s.write(
    message(
      3,
      20,
      0,
      Buffer.concat([
        amfStr('connect'),
        amfNum(1),
        amfObj({ app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: `rtmp://127.0.0.1:${port}/live` }),
      ]),
    ),
  );
  await sleep(200);
  s.write(message(3, 20, 0, Buffer.concat([amfStr('createStream'), amfNum(2), amfNull])));
  await sleep(200);
  s.write(message(4, 20, 1, Buffer.concat([amfStr('publish'), amfNum(3), amfNull, amfStr(key), amfStr('live')])));
  await Promise.race([closedP, sleep(4_000)]);
  s.destroy();
  return { text: Buffer.concat(got).toString('latin1'), closed };
}

/** nodejs_external_memory_bytes + process RSS from /metrics. */
async function memory(base: string): Promise<{ external: number; rss: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const num = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { external: num('nodejs_external_memory_bytes'), rss: num('process_resident_memory_bytes') };
}

/** Publishes a small stream with its H.264 corrupted on the way (ffmpeg's noise bitstream filter). */
function corruptPublish(port: number, key: string, seconds: number): Promise<number | null> {
  const child = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'quiet',
      '-nostdin',
      '-re',
      '-t',
      String(seconds),
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=15[out0];sine=frequency=300:sample_rate=48000[out1]',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-g',
      '30',
      '-b:v',
      '300k',
      '-bsf:v',
      'noise=amount=200',
      '-c:a',
      'aac',
      '-b:a',
      '64k',
      '-f',
      'flv',
      `rtmp://127.0.0.1:${port}/live/${key}`,
    ],
    { stdio: 'ignore' },
  );
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve(code);
    });
  });
}

/** Runs the RTMP group. `spare` is an idle event that receives the corrupt publish. */
export async function rtmpGroup(ctx: Ctx, spare: Created): Promise<void> {
  const { server } = ctx;
  const port = server.rtmpPort;
  // Each kind of input comes from its own loopback address, so the wrong-key limit never locks 127.0.0.1 out.
  let host = 60;
  const from = () => `127.0.0.${host++}`;

  // Corrupt H.264 to another event first (a good key, from 127.0.0.1).
  const logBefore = server.log().length;
  const linesBefore = server.log().split('\n').length;
  const code = await corruptPublish(port, spare.streamKey, 12);
  ctx.check('corrupt H.264 publish ran (ffmpeg connected and sent)', code !== null, `ffmpeg exit ${code}`);
  await sleep(2_000);
  const newLines = server.log().slice(logBefore).split('\n').filter(Boolean);
  const spareLines = newLines.filter((l) => l.includes(spare.id));
  const kinds = new Map<string, number>();
  for (const l of spareLines) {
    const msg = (/"msg":"([^"]{0,60})/.exec(l)?.[1] ?? l.slice(0, 60)).replace(/\d+/g, 'N');
    kinds.set(msg, (kinds.get(msg) ?? 0) + 1);
  }
  const top = [...kinds]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([k, n]) => `${n}× "${k}"`)
    .join(', ');
  ctx.check(
    'corrupt publisher: log lines bounded (≤ 200 for 12 s)',
    spareLines.length <= 200 && newLines.length <= 400,
    `${spareLines.length} lines mention the event, ${server.log().split('\n').length - linesBefore} new lines in all; most: ${top}`,
  );
  ctx.check('corrupt publisher: its stream key is never logged', !server.log().includes(spare.streamKey));

  // Random bytes instead of a handshake.
  const randoms = await Promise.all(
    Array.from({ length: 10 }, (_, i) => rawExchange(port, [noise(4096, 100 + i)], { localAddress: from(), idleMs: 2_000, maxMs: 5_000 })),
  );
  for (const [i, r] of randoms.entries()) {
    ctx.check(`random bytes #${i}: answered at most with a handshake`, r.data.length <= 1 + 2 * HANDSHAKE, `${r.data.length} bytes back`);
  }
  // Truncated handshakes: C0 only, C0 + half C1, C0C1 and no C2 then garbage.
  const shapes: [string, Promise<Awaited<ReturnType<typeof rawExchange>>>][] = [];
  for (const [name, chunks] of [
    ['C0 only', [Buffer.from([3])]],
    ['C0 + half C1', [c0c1().subarray(0, 700)]],
    ['version 0xff', [Buffer.concat([Buffer.from([0xff]), noise(HANDSHAKE, 9)])]],
    ['version 6 (encrypted)', [Buffer.concat([Buffer.from([6]), noise(HANDSHAKE, 10)])]],
    ['C0C1 then garbage as C2', [c0c1(), noise(HANDSHAKE + 500, 11)]],
    ['3 bytes', [Buffer.from([3, 0, 0])]],
  ] as [string, Buffer[]][]) {
    shapes.push([name, rawExchange(port, chunks, { localAddress: from(), idleMs: 1_500, maxMs: 4_000, gapMs: 100 })]);
  }
  for (const [name, p] of shapes) {
    const r = await p;
    ctx.check(`handshake ${name}: handled`, r.data.length <= 1 + 2 * HANDSHAKE, `${r.data.length} bytes back`);
  }
  // Garbage after a good handshake: the server closes the connection (or ignores it) and lives on.
  await Promise.all(
    Array.from({ length: 5 }, async (_, i) => {
      const s = await handshaken(port, from());
      if (!ctx.check(`garbage after handshake #${i}: handshake answered`, s !== undefined)) return;
      s!.write(noise(8192, 200 + i));
      await Promise.race([new Promise((r) => s!.once('close', r)), sleep(2_000)]);
      s!.destroy();
    }),
  );
  // A message header declaring 16 MiB, on many chunk streams of several connections: memory must not follow.
  const m0 = await memory(server.base);
  const held: Socket[] = [];
  let closedByServer = 0;
  for (let c = 0; c < 8; c++) {
    const s = await handshaken(port, from());
    if (!s) continue;
    held.push(s);
    s.once('close', () => closedByServer++);
    const heads = [];
    // Each header is followed by one full chunk (128 bytes, the default chunk size), so the next header lines up.
    for (let csid = 3; csid < 3 + 16; csid++) heads.push(message(csid, 9, 1, noise(128, csid), 0xffffff));
    s.write(Buffer.concat(heads));
  }
  ctx.tried(8 * 16);
  await sleep(2_500);
  const m1 = await memory(server.base);
  const grewMiB = Math.max(m1.external - m0.external, m1.rss - m0.rss) / 2 ** 20;
  ctx.check(
    '16 MiB chunk headers (8 connections × 16 chunk streams): no allocation of the declared size',
    grewMiB < 128,
    `external +${((m1.external - m0.external) / 2 ** 20).toFixed(0)} MiB, rss +${((m1.rss - m0.rss) / 2 ** 20).toFixed(0)} MiB; ${closedByServer}/${held.length} closed by the server`,
  );
  ctx.check(
    '16 MiB chunk headers: the server drops such connections',
    closedByServer === held.length,
    `${closedByServer}/${held.length} closed by the server within 2.5 s`,
  );
  for (const s of held) s.destroy();

  // A 5 KB key and a wrong key: refused, never logged, and no Publish.Start before the key was checked.
  const bigKey = 'sk_' + 'K'.repeat(5 * 1024);
  const big = await rawPublish(port, from(), bigKey);
  if (ctx.check('5 KB key: handshake answered', big !== undefined)) {
    ctx.check('5 KB key: refused (connection closed)', big!.closed);
    ctx.check('5 KB key: no NetStream.Publish.Start', !big!.text.includes('NetStream.Publish.Start'));
  }
  const wrongKey = 'sk_' + 'W'.repeat(24);
  const wrong = await rawPublish(port, from(), wrongKey);
  if (ctx.check('wrong key: handshake answered', wrong !== undefined)) {
    ctx.check('wrong key: refused (connection closed)', wrong!.closed);
    ctx.check(
      'wrong key: no NetStream.Publish.Start before the key check',
      !wrong!.text.includes('NetStream.Publish.Start'),
      'the server said Publish.Start',
    );
  }
  ctx.check('5 KB / wrong keys are not in the log', !server.log().includes('K'.repeat(100)) && !server.log().includes(wrongKey));

  // Connect flood: 200 connections at once (from 4 addresses), each completing a handshake, held 1 s, dropped.
  const flood = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => handshaken(port, `127.0.0.${40 + (i % 4)}`)));
  ctx.tried(200);
  const ok = flood.filter((r) => r.status === 'fulfilled' && r.value).length;
  await sleep(1_000);
  for (const r of flood) if (r.status === 'fulfilled') r.value?.destroy();
  ctx.note(`rtmp connect flood: ${ok}/200 handshakes answered`);
  const after = await handshaken(port, from());
  ctx.check('after the flood a new RTMP client still gets a handshake', after !== undefined);
  after?.destroy();
}
