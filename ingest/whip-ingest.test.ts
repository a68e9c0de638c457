// The WHIP endpoint's refusals before any session starts. The SDP rules: whip-sdp.test.ts; the whole path: test/e2e/whip.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { loadConfig } from '../config/load.ts';
import { createLogger } from '../lib/logger.ts';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { createWhipIngest } from './whip-ingest.ts';

test('the WHIP endpoint: an empty offer is a bad SDP (400), a wrong content type is 415', async () => {
  const registry = createMetricsRegistry();
  const whip = createWhipIngest({
    config: loadConfig({}),
    logger: createLogger('silent'),
    registry,
    authorize: async (key) => (key === 'sk-good' ? 'event-1' : undefined),
    feeds: { open: () => assert.fail('no feed may open') },
  });
  const app = express();
  app.use('/whip', whip.router);
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/whip/event-1`;
  const post = async (type: string | undefined, body?: string) => {
    const headers: Record<string, string> = { authorization: 'Bearer sk-good' };
    if (type) headers['content-type'] = type;
    const r = await fetch(url, { method: 'POST', headers, body });
    return { status: r.status, body: (await r.json()) as { error: { code: string; message: string } } };
  };
  try {
    for (const [what, r] of [
      ['empty body', await post('application/sdp')],
      ['empty string', await post('application/sdp', '')],
      ['with parameters', await post('application/sdp; charset=utf-8', '')],
    ] as const) {
      assert.equal(r.status, 400, what);
      assert.equal(r.body.error.code, 'bad_sdp', what);
      assert.match(r.body.error.message, /empty/, what);
    }
    const wrongType = await post('text/plain', 'v=0');
    assert.equal(wrongType.status, 415);
    assert.equal(wrongType.body.error.code, 'unsupported_media_type');
    const noType = await post(undefined);
    assert.equal(noType.status, 415);
    const rejected = await registry.getSingleMetric('onair_ingest_rejected_total')!.get();
    assert.equal(rejected.values.find((v) => v.labels.reason === 'bad_sdp')?.value, 3);
  } finally {
    server.close();
    await whip.stop();
  }
});
