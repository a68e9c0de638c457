// WHEP playback in a cluster: Redis, PostgreSQL, one ingest, two origins (each live event on both), one edge, one
// control node and HAProxy (deploy/haproxy.cfg). An RTMP publish (ffmpeg) goes live; Chromium, on a page of the
// balancer, POSTs a WHEP offer to /whep/<eventId> there: HAProxy sends it to the edge, the edge to the event's
// primary origin, which serves the media from the feed it receives. Frames decode; a wrong token is refused (401);
// the watch page's Real-time toggle plays through the same path;
// DELETE through the edge ends the session on the origin that holds it; with that origin killed, a new session is
// served by the other replica.
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { clusterLayout, startCluster, type Cluster } from '../../scripts/cluster/cluster.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { parseWhepPath } from '../../edge/whep-router.ts';
import { runCli } from '../faults/api.ts';
import { launchChromium } from '../support/chromium.ts';
import { waitFor } from '../support/wait-for.ts';
import { h264Offer } from '../support/sdp-offer.ts';
import { playWhep } from '../support/whep-page.ts';

/** Video frames the page's peer connection has decoded. */
const FRAMES_SCRIPT = `async () => {
  let frames = 0;
  for (const s of (await window.whepPc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded ?? 0;
  return frames;
}`;

/** A gauge's value in a node's /metrics (0 when absent). */
async function gauge(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

/** The origin that holds a session, from the session URL the edge handed out. */
function originOf(sessionUrl: string): string {
  const p = parseWhepPath(new URL(sessionUrl).pathname);
  assert.ok(p && 'eventId' in p && p.session, `a session URL naming its origin: ${sessionUrl}`);
  return p.session.originId;
}

test(
  'cluster: WHEP through the balancer and the edge is served by the event’s origins, DELETE reaches the right one, a replica takes over',
  { skip: !existsSync('/usr/sbin/haproxy') && 'haproxy is not installed (scripts/install-prereqs.sh installs it)', timeout: 150_000 },
  async () => {
    let cluster: Cluster | undefined;
    let publisher: ReturnType<typeof publishTestStream> | undefined;
    let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
    try {
      cluster = await startCluster({
        layout: clusterLayout({ ingests: 1, origins: 2, edges: 1, controls: 1 }),
        logLevel: 'warn',
        env: {
          ONAIR_REPLICAS: '2',
          // One cheap rung: two origins transcode at once on a shared machine.
          ONAIR_LADDER: JSON.stringify([{ name: '240p', height: 240, fps: 15, videoKbps: 300 }]),
          ONAIR_X264_PRESET: 'ultrafast',
        },
      });
      const c = cluster;
      const url = (name: string) => c.processes.find((p) => p.name === name)!.url;
      const made = JSON.parse(await runCli(['event', 'create', '--title', 'Cluster WHEP', '--json'], c.envOf('control-1'))) as {
        id: string;
        streamKey: string;
        watchUrl: string;
      };
      const v = await fetch(`${c.http}/api/v1/viewers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ displayName: 'Realtime' }),
      });
      assert.equal(v.status, 201);
      const viewer = (await v.json()) as { token: string };
      const token = viewer.token;
      const whep = `${c.http}/whep/${made.id}`;
      /** WHEP sessions open on both origins. */
      const viewers = async () =>
        (await gauge(url('origin-1'), 'onair_whep_viewers')) + (await gauge(url('origin-2'), 'onair_whep_viewers'));

      // Not live yet: the edge says so.
      const early = await fetch(whep, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token}` },
        body: h264Offer('recvonly'),
      });
      assert.equal(early.status, 404);
      assert.equal(((await early.json()) as { error: { code: string } }).error.code, 'not_live');

      publisher = publishTestStream({
        url: `${c.rtmp}/${made.streamKey}`,
        durationSec: 150,
        width: 640,
        height: 360,
        fps: 30,
        videoKbps: 800,
        preset: 'ultrafast',
      });
      chromium = await launchChromium(['--allow-loopback-in-peer-connection']);
      const play = async (): Promise<{ page: Page; session: string }> => {
        const page = await chromium!.browser.newPage();
        await page.goto(`${c.http}/healthz`);
        // Retried until an origin has the feed from a keyframe (404 not_live before).
        const session = await waitFor(
          'a WHEP session through the edge',
          () => playWhep(page, whep, token).catch(() => undefined),
          45_000,
          500,
        );
        await waitFor(
          'frames decoded',
          async () => ((await page.evaluate(`(${FRAMES_SCRIPT})()`)) as number) >= 15 || undefined,
          20_000,
          250,
        );
        return { page, session };
      };

      const first = await play();
      const servedBy = originOf(first.session);
      const other = servedBy === 'origin-1' ? 'origin-2' : 'origin-1';
      assert.ok(['origin-1', 'origin-2'].includes(servedBy), servedBy);
      assert.equal(await gauge(url(servedBy), 'onair_whep_viewers'), 1, 'the session is on the origin its URL names');
      assert.equal(await gauge(url(other), 'onair_whep_viewers'), 0);

      // A wrong token: refused by the origin, passed on by the edge.
      const bad = await fetch(whep, {
        method: 'POST',
        headers: { 'content-type': 'application/sdp', authorization: `Bearer ${token.slice(0, -2)}xx` },
        body: h264Offer('recvonly'),
      });
      assert.equal(bad.status, 401);
      assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal(bad.headers.get('access-control-allow-origin'), '*');

      // PATCH is refused (no trickle ICE), DELETE ends the session on its origin, a second DELETE finds none.
      assert.equal((await fetch(first.session, { method: 'PATCH', body: 'a=candidate' })).status, 405);
      assert.equal((await fetch(first.session, { method: 'DELETE' })).status, 200);
      await waitFor(
        'the session ended on its origin',
        async () => (await gauge(url(servedBy), 'onair_whep_viewers')) === 0 || undefined,
        5_000,
      );
      assert.equal((await fetch(first.session, { method: 'DELETE' })).status, 404);
      await first.page.close();

      // The watch page (from the control node) offers the Real-time toggle and plays over WHEP through the edge.
      const watch = await chromium.browser.newPage();
      await watch.addInitScript(`localStorage.setItem('onair.viewer', ${JSON.stringify(JSON.stringify(viewer))})`);
      await watch.goto(`${made.watchUrl}?realtime=1`);
      await watch.waitForFunction(() => window.__onair?.state === 'playing' && window.__onair.mode === 'whep', undefined, {
        timeout: 30_000,
      });
      assert.equal(await watch.locator('#realtime').isVisible(), true, 'the Real-time toggle is offered in a cluster');
      assert.equal(await viewers(), 1, 'the watch page’s session is on an origin');
      // The toggle back to LL-HLS ends the session (DELETE through the balancer and the edge).
      await watch.locator('#realtime').click();
      await watch.waitForFunction(() => window.__onair?.state === 'playing' && window.__onair.mode === 'hls', undefined, {
        timeout: 60_000,
      });
      await waitFor('the watch page’s session ended', async () => (await viewers()) === 0 || undefined, 10_000, 200);
      await watch.close();

      // The origin that served it dies: the next session is the other replica's.
      await c.kill(servedBy);
      const second = await play();
      assert.equal(originOf(second.session), other);
      assert.equal(await gauge(url(other), 'onair_whep_viewers'), 1);
      assert.equal((await fetch(second.session, { method: 'DELETE' })).status, 200);
      await second.page.close();
    } finally {
      await chromium?.close();
      publisher?.child.kill('SIGTERM');
      await publisher?.done;
      await cluster?.stop();
    }
  },
);
