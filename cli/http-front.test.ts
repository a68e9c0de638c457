// The single roles' HTTP front: /metrics is open by default and, with ONAIR_METRICS_TOKEN, needs the bearer token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createMetricsRegistry } from '../lib/metrics.ts';
import { closeServer, listen } from '../lib/http.ts';
import { createHttpFront } from './roles.ts';

async function front(metricsToken?: string): Promise<{ base: string; close(): Promise<void> }> {
  const server = createServer(createHttpFront({ role: 'edge', registry: createMetricsRegistry(), metricsToken }));
  const port = await listen(server, 0, '127.0.0.1');
  return { base: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

test('/metrics is open without a token setting', async () => {
  const f = await front();
  try {
    const res = await fetch(`${f.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /process_cpu/);
  } finally {
    await f.close();
  }
});

test('/metrics with a token setting: 401 JSON without or with a wrong token, 200 with the right one', async () => {
  const token = 'metrics-token-0123456789';
  const f = await front(token);
  try {
    for (const authorization of [undefined, 'Bearer wrong', `Bearer ${token}x`, token, `Basic ${token}`]) {
      const res = await fetch(`${f.base}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401, String(authorization));
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthenticated');
    }
    const ok = await fetch(`${f.base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /process_cpu/);
    assert.equal((await fetch(`${f.base}/healthz`)).status, 200, '/healthz stays open');
  } finally {
    await f.close();
  }
});
