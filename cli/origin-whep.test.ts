// A cluster origin's WHEP routes: off (404, so that edges ask the next origin) without the shared viewer-token secret
// or with ONAIR_WHEP_MAX_VIEWERS=0; on, viewer tokens are checked with that secret before the feed is looked up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { sendError } from '../lib/http.ts';
import { ViewerTokens } from '../chat/viewer-tokens.ts';
import { h264Offer } from '../test/support/sdp-offer.ts';
import { createOriginWhep, type OriginWhep } from './origin-whep.ts';

const SECRET = 'a-cluster-viewer-token-secret-of-32+chars';
const base = { ffmpegPath: 'ffmpeg', audioKbps: 128, whipIceAddresses: [], whipIcePorts: undefined, viewerTokenTtlSec: 3600 };

function build(config: { whepMaxViewers: number; viewerTokenSecret?: string }): OriginWhep {
  return createOriginWhep({
    config: { ...base, ...config },
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    taps: { live: () => undefined },
    trustedProxies: { trusts: () => false },
  });
}

/** Serves `whep.route`, other paths answering 418 (the origin's HLS handler in the real port). */
async function serve(whep: OriginWhep, fn: (url: string) => Promise<void>): Promise<void> {
  const server: Server = createServer((req, res) => {
    if (!whep.route(req, res)) sendError(res, 418, 'other', 'not WHEP');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    await new Promise((r) => server.close(r));
  }
}

const post = (url: string, token?: string) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/sdp', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: h264Offer('recvonly'),
  });

const codeOf = async (r: Response) => ((await r.json()) as { error: { code: string; message: string } }).error;

test('no WHEP on an origin with ONAIR_WHEP_MAX_VIEWERS=0 or without the shared secret: 404, other paths untouched', async () => {
  for (const [config, why] of [
    [{ whepMaxViewers: 0, viewerTokenSecret: SECRET }, /ONAIR_WHEP_MAX_VIEWERS=0/],
    [{ whepMaxViewers: 50 }, /ONAIR_VIEWER_TOKEN_SECRET/],
  ] as const) {
    const whep = build(config);
    assert.equal(whep.playback, undefined);
    await serve(whep, async (url) => {
      const r = await post(`${url}/whep/ev1`, 'x');
      assert.equal(r.status, 404);
      const err = await codeOf(r);
      assert.equal(err.code, 'not_found');
      assert.match(err.message, why);
      assert.equal((await fetch(`${url}/whep/ev1`, { method: 'OPTIONS' })).status, 404);
      assert.equal((await fetch(`${url}/live/ev1/master.m3u8`)).status, 418);
      assert.equal((await fetch(`${url}/whepx`)).status, 418);
    });
  }
});

test('WHEP on: tokens signed with the shared secret pass, others are 401; no feed here is 404 not_live', async () => {
  const whep = build({ whepMaxViewers: 50, viewerTokenSecret: SECRET });
  assert.ok(whep.playback);
  await whep.playback.start();
  try {
    await serve(whep, async (url) => {
      const good = new ViewerTokens(Buffer.from(SECRET, 'utf8'), 60).issue({ displayName: 'Viewer' }).token;
      const forged = new ViewerTokens(Buffer.from(SECRET.replace('a', 'b'), 'utf8'), 60).issue({ displayName: 'Viewer' }).token;
      assert.equal((await post(`${url}/whep/ev1`)).status, 401);
      const r = await post(`${url}/whep/ev1`, forged);
      assert.equal(r.status, 401);
      assert.equal((await codeOf(r)).code, 'unauthorized');
      const live = await post(`${url}/whep/ev1`, good);
      assert.equal(live.status, 404);
      assert.equal((await codeOf(live)).code, 'not_live');
      const options = await fetch(`${url}/whep/ev1`, { method: 'OPTIONS' });
      assert.equal(options.status, 204);
      assert.equal(options.headers.get('accept-post'), 'application/sdp');
      assert.equal((await fetch(`${url}/live/ev1/master.m3u8`)).status, 418);
    });
  } finally {
    await whep.playback.stop();
  }
});
