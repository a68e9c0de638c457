// The WHEP endpoint's refusals before any peer connection is made: token, offer, liveness and the per-node cap.
// The whole path (Chromium receiving a live publish): test/e2e/whep.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import type { FeedTap } from './feed-taps.ts';
import { createWhepPlayback } from './whep-playback.ts';

const OFFER = [
  'v=0',
  'o=- 1 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=ice-ufrag:abcd',
  'a=ice-pwd:0123456789abcdefghijkl',
  'a=fingerprint:sha-256 AB:CD:EF',
  'm=video 9 UDP/TLS/RTP/SAVPF 102',
  'a=recvonly',
  'a=rtpmap:102 H264/90000',
  '',
].join('\r\n');

async function endpoint(maxViewers: number, live: string[]) {
  const tap = (eventId: string): FeedTap => ({ eventId, hasAudio: true, read: () => assert.fail('no relay may start') });
  const whep = createWhepPlayback({
    config: loadConfig({}, { whepMaxViewers: maxViewers }),
    logger: createLogger('silent'),
    registry: createMetricsRegistry(),
    taps: { live: (id) => (live.includes(id) ? tap(id) : undefined) },
    verifyViewer: (token) => token === 'good-token',
  });
  const app = express().use('/whep', whep.router);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whep`;
  const post = async (eventId: string, token: string | undefined, body = OFFER) => {
    const headers: Record<string, string> = { 'content-type': 'application/sdp' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${base}/${eventId}`, { method: 'POST', headers, body });
    return { status: r.status, headers: r.headers, code: ((await r.json()) as { error: { code: string } }).error.code };
  };
  return { post, close: () => new Promise((r) => server.close(r)) };
}

test('WHEP refusals: no or bad token 401, bad offer 400, event not live 404, in that order', async () => {
  const e = await endpoint(5, ['live-1']);
  try {
    assert.deepEqual(await e.post('live-1', undefined).then((r) => [r.status, r.code]), [401, 'unauthorized']);
    assert.deepEqual(await e.post('live-1', 'forged').then((r) => [r.status, r.code]), [401, 'unauthorized']);
    assert.deepEqual(await e.post('idle', 'forged').then((r) => [r.status, r.code]), [401, 'unauthorized'], 'no liveness for strangers');
    assert.deepEqual(await e.post('live-1', 'good-token', 'hello').then((r) => [r.status, r.code]), [400, 'bad_sdp']);
    assert.deepEqual(await e.post('idle', 'good-token').then((r) => [r.status, r.code]), [404, 'not_live']);
  } finally {
    await e.close();
  }
});

test('the cap counts before any work: at the limit a live event answers 503 whep_full with Retry-After', async () => {
  const e = await endpoint(0, ['live-1']);
  try {
    const r = await e.post('live-1', 'good-token');
    assert.equal(r.status, 503);
    assert.equal(r.code, 'whep_full');
    assert.equal(r.headers.get('retry-after'), '10');
    assert.match(r.headers.get('access-control-expose-headers') ?? '', /Retry-After/);
  } finally {
    await e.close();
  }
});
