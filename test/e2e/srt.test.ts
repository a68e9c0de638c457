// End to end over SRT: ffmpeg publishes MPEG-TS to the libsrt listener, the event goes live and its HLS plays; a
// wrong key and a wrong mode are refused before any media is taken, and an event already live over RTMP keeps
// its RTMP publisher.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';

type Created = { id: string; streamKey: string; rtmpUrl: string; hlsUrl: string; srtUrl?: string };

let server: ServerUnderTest;
let srtPort: number;
const publishers: ReturnType<typeof publishTestStream>[] = [];

function publish(url: string, durationSec = 60) {
  const p = publishTestStream({ url, durationSec, width: 320, height: 240, fps: 25, videoKbps: 400, preset: 'ultrafast' });
  publishers.push(p);
  return p;
}

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function create(title: string): Promise<Created> {
  return JSON.parse(await server.cli(['event', 'create', '--title', title, '--json'])) as Created;
}

/** Resolves with ffmpeg's exit code, or undefined if it is still running after `ms`. */
async function exitWithin(p: ReturnType<typeof publishTestStream>, ms: number): Promise<number | null | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  const r = await Promise.race([p.done, timeout]);
  clearTimeout(timer);
  return r;
}

before(async () => {
  server = await startServer();
  srtPort = await server.srtPort();
});

after(async () => {
  for (const p of publishers) p.child.kill('SIGKILL');
  await server?.stop();
});

test('the CLI gives the SRT publish URL, stream key in its stream id', async () => {
  const ev = await create('SRT url');
  assert.equal(ev.srtUrl, `srt://127.0.0.1:${srtPort}?streamid=publish:${ev.streamKey}`);
});

test('a wrong stream key is refused before any media: ffmpeg fails, nothing goes live, the guess is counted', async () => {
  const ev = await create('SRT wrong key');
  const before = await metric('onair_ingest_rejected_total', 'protocol="srt",reason="unknown_key"');
  const p = publish(`srt://127.0.0.1:${srtPort}?streamid=publish:sk_not-a-real-key`);
  const code = await exitWithin(p, 20_000);
  assert.notEqual(code, undefined, 'ffmpeg is still publishing with a wrong key');
  assert.notEqual(code, 0);
  assert.equal(await metric('onair_ingest_rejected_total', 'protocol="srt",reason="unknown_key"'), before + 1);
  assert.equal(await metric('onair_ingest_publishes_total', 'protocol="srt"'), 0);
  assert.equal((await fetch(ev.hlsUrl)).ok, false);
  assert.doesNotMatch(server.log(), /srt publish started/);
  assert.doesNotMatch(server.log(), /sk_not-a-real-key/, 'the key must never be logged');
});

test('a stream id that does not publish is refused in the handshake', async () => {
  const ev = await create('SRT request mode');
  const before = await metric('onair_ingest_rejected_total', 'protocol="srt",reason="bad_mode"');
  const p = publish(`srt://127.0.0.1:${srtPort}?streamid=#!::r=${ev.streamKey},m=request`);
  const code = await exitWithin(p, 20_000);
  assert.notEqual(code, undefined);
  assert.notEqual(code, 0);
  assert.equal(await metric('onair_ingest_rejected_total', 'protocol="srt",reason="bad_mode"'), before + 1);
  assert.doesNotMatch(server.log(), /srt publish started/);
});

test('an SRT publish goes live and its HLS plays; when it stops the publish ends', async () => {
  const ev = await create('SRT live');
  const p = publish(`srt://127.0.0.1:${srtPort}?streamid=publish:${ev.streamKey}`, 30);
  await waitFor('the SRT publish to start', () => /srt publish started/.test(server.log()), 20_000);
  const master = await waitFor(
    'the master playlist',
    async () => {
      const r = await fetch(ev.hlsUrl);
      return r.ok ? r.text() : undefined;
    },
    40_000,
    250,
  );
  const variant = master.split('\n').find((l) => l && !l.startsWith('#'));
  assert.ok(variant, master);
  const variantUrl = new URL(variant, ev.hlsUrl).href;
  const segment = await waitFor(
    'a segment in the media playlist',
    async () => {
      const r = await fetch(variantUrl);
      if (!r.ok) return undefined;
      return (await r.text()).split('\n').find((l) => /\.m4s$/.test(l) && !l.startsWith('#'));
    },
    30_000,
    250,
  );
  const seg = await fetch(new URL(segment, variantUrl));
  assert.equal(seg.status, 200);
  assert.ok((await seg.arrayBuffer()).byteLength > 1000);
  assert.equal(await metric('onair_ingest_active_publishers', 'protocol="srt"'), 1);
  p.child.kill('SIGTERM');
  await p.done;
  await waitFor('the publish to end', () => /srt publish ended/.test(server.log()), 15_000);
  assert.equal(await metric('onair_ingest_active_publishers', 'protocol="srt"'), 0);
});

test('an SRT publisher for an event live over RTMP is refused, and the RTMP publish goes on', async () => {
  const ev = await create('SRT vs RTMP');
  const rtmp = publish(`rtmp://127.0.0.1:${server.rtmpPort}/live/${ev.streamKey}`, 40);
  await waitFor('the RTMP publish to start', () => /rtmp publish started/.test(server.log()), 20_000);
  const before = await metric('onair_ingest_rejected_total', 'protocol="srt",reason="already_live"');
  const srt = publish(`srt://127.0.0.1:${srtPort}?streamid=#!::r=live/${ev.streamKey},m=publish`);
  const code = await exitWithin(srt, 20_000);
  assert.notEqual(code, undefined, 'the SRT publisher is still publishing');
  assert.notEqual(code, 0);
  assert.equal(await metric('onair_ingest_rejected_total', 'protocol="srt",reason="already_live"'), before + 1);
  assert.equal(rtmp.child.exitCode, null, 'the RTMP publisher must keep the event');
  assert.equal(await metric('onair_ingest_active_publishers', 'protocol="rtmp"'), 1);
});
