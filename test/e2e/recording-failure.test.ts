// End to end: recording storage that cannot be written (here a path through a regular file). Live playback goes on
// undisturbed; the recording is marked failed with the reason, in the API and in /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import HLS from 'hls-parser';
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';

let server: ServerUnderTest;
let publisher: ReturnType<typeof publishTestStream> | undefined;
let tmp: string;
let token: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'onair-e2e-recfail-'));
  writeFileSync(join(tmp, 'not-a-dir'), 'a regular file');
  server = await startServer({
    ONAIR_STORAGE_URL: pathToFileURL(join(tmp, 'not-a-dir', 'recordings')).href,
    ONAIR_LADDER: '[{"name":"360p","height":360,"videoKbps":600}]',
  });
  const made = await runCli(server, ['operator', 'create', '--email', 'rec@example.com', '--role', 'admin'], 'correct horse battery\n');
  assert.equal(made.code, 0, made.out);
  const login = await fetch(`${server.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'rec@example.com', password: 'correct horse battery' }),
  });
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
  const tok = await fetch(`${server.base}/api/v1/auth/tokens`, {
    method: 'POST',
    headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'rec' }),
  });
  token = ((await tok.json()) as { token: string }).token;
});

after(async () => {
  publisher?.child.kill('SIGKILL');
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('unwritable storage: live keeps playing, the recording is marked failed with the reason', async () => {
  const event = JSON.parse(await server.cli(['event', 'create', '--title', 'Storage broken', '--json'])) as {
    id: string;
    streamKey: string;
    hlsUrl: string;
  };
  publisher = publishTestStream({
    url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${event.streamKey}`,
    durationSec: 60,
    width: 640,
    height: 360,
  });
  const playlistUrl = new URL('360p/index.m3u8', event.hlsUrl).href;
  const lastMsn = async () => {
    const r = await fetch(playlistUrl);
    if (!r.ok) return undefined;
    const p = HLS.parse(await r.text()) as HLS.types.MediaPlaylist;
    return p.mediaSequenceBase! + p.segments.length - 1;
  };
  const first = await waitFor('live', lastMsn, 30_000, 300);
  const failed = await waitFor(
    'recording failed',
    async () => {
      const r = await fetch(`${server.base}/api/v1/recordings?eventId=${event.id}`, { headers: { authorization: `Bearer ${token}` } });
      const rec = ((await r.json()) as { recordings: { status: string; failure: string | null }[] }).recordings[0];
      return rec?.status === 'failed' ? rec : undefined;
    },
    30_000,
    500,
  );
  assert.match(failed.failure ?? '', /ENOTDIR|EEXIST/);
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  assert.match(metrics, /^onair_origin_recording_failures_total 1$/m);
  // Live goes on after the failure: new segments keep coming, and the newest part is served.
  const atFailure = (await lastMsn())!;
  assert.ok(atFailure >= first);
  await waitFor('three more segments', async () => (((await lastMsn()) ?? 0) >= atFailure + 3 ? true : undefined), 20_000, 500);
  const lagLine = metrics.match(/^onair_origin_part_lag_seconds_count (\d+)$/m);
  assert.ok(lagLine && Number(lagLine[1]) > 0, 'parts were produced');
  assert.equal(publisher.child.exitCode, null, 'the publisher was never cut off');
});
