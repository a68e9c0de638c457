// End to end: the server is killed (-9) mid-recording and started again on the same data dir. Every segment that was
// complete a couple of seconds before the kill is in the replay (the manifest trails the segments by about a
// second), and the recording is marked failed as interrupted, with its replay still served.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import HLS from 'hls-parser';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { makeTempDir } from '../support/temp-dir.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

const data = makeTempDir('e2e-rec-crash');
let first: ServerUnderTest | undefined;
let second: ServerUnderTest | undefined;
let publisher: ReturnType<typeof publishTestStream> | undefined;

after(async () => {
  publisher?.child.kill('SIGKILL');
  await first?.stop();
  await second?.stop();
  data.remove();
});

test('kill -9 mid-recording: after a restart the replay holds every segment stored before the kill', async () => {
  const env = { ONAIR_DATA_DIR: data.path, ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600}]' };
  first = await startServer(env);
  const event = JSON.parse(await first.cli(['event', 'create', '--title', 'Crash', '--json'])) as {
    id: string;
    streamKey: string;
    hlsUrl: string;
  };
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${first.rtmpPort}/live/${event.streamKey}`,
    durationSec: 60,
    width: 640,
    height: 360,
  });
  const playlistUrl = new URL('360p/index.m3u8', event.hlsUrl).href;
  const complete = async (url: string) => {
    const r = await fetch(url);
    if (!r.ok) return undefined;
    const p = HLS.parse(await r.text()) as HLS.types.MediaPlaylist;
    return p.segments.map((s) => s.uri).filter((u) => u !== ''); // the open segment (parts only) has no URI
  };
  await waitFor('five complete segments', async () => (((await complete(playlistUrl)) ?? []).length >= 5 ? true : undefined), 40_000, 500);
  const before = (await complete(playlistUrl))!;
  // Segments complete now have been handed to storage; give the manifest (written about once a second) time.
  await new Promise((r) => setTimeout(r, 2500));
  first.child.kill('SIGKILL');
  await new Promise((r) => first!.child.once('close', r));
  publisher.child.kill('SIGKILL');
  publisher = undefined;

  second = await startServer(env);
  const replayUrl = new URL(new URL(event.hlsUrl).pathname, second.base).href;
  const vod = await fetch(new URL('360p/index.m3u8', replayUrl));
  assert.equal(vod.status, 200);
  const p = HLS.parse(await vod.text()) as HLS.types.MediaPlaylist;
  assert.equal(p.playlistType, 'VOD');
  assert.equal(p.endlist, true);
  const replayed = new Set(p.segments.map((s) => s.uri));
  const lost = before.filter((u) => !replayed.has(u));
  assert.deepEqual(lost, [], `segments complete before the kill missing from the replay (replay has ${[...replayed].join(' ')})`);
  for (const u of before) assert.equal((await fetch(new URL(u, new URL('360p/index.m3u8', replayUrl)))).status, 200, u);
  assert.match(second.log(), /recordings cut short by the previous run marked failed/);
});
