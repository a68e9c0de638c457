// Hostile SRT: UDP noise and SRT-shaped junk at the listener, a flood of handshake inductions from many sockets,
// bad stream ids (refused in the handshake or before any media), and a right key whose "media" is not MPEG-TS.
// Afterwards a good SRT publish must still go live: the listener outlived all of it.
// Wrong keys are sent from 127.0.0.1 (ffmpeg cannot choose its source address), so this group tries at most two,
// far below the lock-out.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { get, noise, sleep, type Created, type Ctx } from './kit.ts';

/** An SRT caller's induction handshake (SRT RFC draft §3.2.1 / §4.3.1.1): control type 0, version 4, type 1. */
function induction(socketId: number): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x80000000, 0); // control packet, HANDSHAKE
  b.writeUInt32BE(4, 16); // HS version 4 (the caller's first packet)
  b.writeUInt16BE(2, 22); // extension field: 2 for an induction
  b.writeUInt32BE(0x1234, 24); // initial sequence number
  b.writeUInt32BE(1500, 28); // MTU
  b.writeUInt32BE(8192, 32); // flow window
  b.writeUInt32BE(1, 36); // handshake type: INDUCTION
  b.writeUInt32BE(socketId, 40);
  b.writeUInt32BE(0x0100007f, 48); // peer address 127.0.0.1
  return b;
}

function udp(): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

/** Runs ffmpeg sending `args`' output to `url`; resolves to its exit code, or 'running' if still going after `ms`. */
function ffmpegTo(inputAndCodec: string[], url: string, ms: number): Promise<number | 'running'> {
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...inputAndCodec, url], { stdio: 'ignore' });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('running');
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

const TINY_TS = [
  '-re',
  '-f',
  'lavfi',
  '-i',
  'color=size=64x64:rate=5',
  '-t',
  '20',
  '-c:v',
  'libx264',
  '-preset',
  'ultrafast',
  '-f',
  'mpegts',
];

export async function srtGroup(ctx: Ctx): Promise<void> {
  const port = await ctx.server.srtPort();
  const url = (streamId: string) => `srt://127.0.0.1:${port}?streamid=${streamId}&connect_timeout=4000`;
  const target = JSON.parse(await ctx.server.cli(['event', 'create', '--title', 'Hostile: SRT target', '--json'])) as Created;

  // 1. UDP noise, and junk that looks like SRT control and data packets.
  const sender = await udp();
  let sent = 0;
  for (let i = 0; i < 2000; i++) {
    const n = 1 + ((i * 7919) % 1500);
    const junk = noise(n, 1000 + i);
    if (i % 3 === 0 && n >= 16) junk.writeUInt32BE((0x80000000 | ((i % 8) << 16)) >>> 0, 0); // control types 0–7
    sender.send(junk, port, '127.0.0.1');
    sent++;
    if (i % 100 === 0) await sleep(5);
  }
  sender.close();
  ctx.tried(sent);

  // 2. 300 inductions from 300 sockets at once: the listener answers them (cookies, no state kept per caller).
  const sockets = await Promise.all(Array.from({ length: 300 }, () => udp()));
  let answered = 0;
  for (const [i, s] of sockets.entries()) {
    s.once('message', () => answered++);
    s.send(induction(0x10000 + i), port, '127.0.0.1');
  }
  await sleep(1500);
  for (const s of sockets) s.close();
  ctx.tried(sockets.length);
  ctx.check('SRT induction flood: the listener answered the handshakes', answered >= 290, `${answered} of ${sockets.length} answered`);

  // 3. Stream ids that must not publish: refused, nothing goes live, and nothing of them is logged raw.
  const badIds: [string, string][] = [
    ['no stream id', ''],
    ['publish with an empty key', 'publish:'],
    ['a 500-character stream id', 'z'.repeat(500)],
    ['a path as key', '#!::r=../../etc/passwd,m=publish'],
    ['access control without a resource', '#!::m=publish'],
    ['the right key in request (play) mode', `#!::r=${target.streamKey},m=request`],
    ['the right key as a non-publish verb', `play:${target.streamKey}`],
  ];
  const codes = await Promise.all(badIds.map(([, id]) => ffmpegTo(TINY_TS, url(id), 25_000)));
  for (const [i, [name]] of badIds.entries()) {
    const code = codes[i];
    ctx.check(`SRT ${name}: refused (ffmpeg ends with an error)`, code !== 'running' && code !== 0, `ffmpeg ${code}`);
  }
  ctx.check('SRT bad stream ids: nothing went live', !/srt publish started/.test(ctx.server.log()));
  ctx.check('SRT bad stream ids: the long id is not logged', !ctx.server.log().includes('z'.repeat(200)));

  // 4. The right key, then noise instead of MPEG-TS: the session is ended with a logged reason well before the
  // publisher would stop, and nothing is served for the event meanwhile.
  const t0 = Date.now();
  const garbage = await ffmpegTo(
    ['-re', '-f', 'lavfi', '-i', 'anoisesrc=r=48000', '-t', '60', '-f', 's16le', '-c:a', 'pcm_s16le'],
    url(`publish:${target.streamKey}`),
    45_000,
  );
  ctx.check(
    'SRT noise with the right key: the publisher is disconnected, not kept',
    garbage !== 'running',
    `ffmpeg ${garbage} after ${Date.now() - t0} ms`,
  );
  ctx.check(
    'SRT noise with the right key: the end is logged with its reason',
    /no usable media in \d+ s: the stream is not MPEG-TS/.test(ctx.server.log()),
  );
  const master = await get(target.hlsUrl);
  ctx.check('SRT noise with the right key: no HLS is served for it', master.status !== 200, `master ${master.status}`);

  // 5. After all of it, a real SRT publish to the same event goes live and its HLS plays.
  const good = publishTestStream({
    url: url(`publish:${target.streamKey}`),
    durationSec: 40,
    width: 320,
    height: 180,
    fps: 15,
    videoKbps: 300,
    preset: 'ultrafast',
  });
  try {
    let playing = false;
    for (const t0 = Date.now(); Date.now() - t0 < 30_000 && !playing; await sleep(1000)) {
      playing = (await get(target.hlsUrl)).status === 200;
    }
    ctx.check('SRT a good publish still goes live afterwards (master playlist 200)', playing);
  } finally {
    good.child.kill('SIGKILL');
    await good.done;
  }
}
