// Every error the real server gives an API client is the documented JSON: malformed, oversized or mis-encoded bodies
// on any /api/v1 route, with no login, never reach Express's HTML error page (stack, absolute paths), whatever
// NODE_ENV is. /metrics asks for its bearer token when ONAIR_METRICS_TOKEN is set.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';

// "Unset" must really be unset in the server's environment (the harness passes ours on).
delete process.env.NODE_ENV;

const servers: ServerUnderTest[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

const cases: { name: string; path: string; headers: Record<string, string>; body: string; status: number; code: string }[] = [
  {
    name: 'malformed JSON',
    path: '/api/v1/auth/login',
    headers: { 'content-type': 'application/json' },
    body: '{bad',
    status: 400,
    code: 'invalid_json',
  },
  {
    name: 'malformed JSON, guarded route',
    path: '/api/v1/events',
    headers: { 'content-type': 'application/json' },
    body: '{bad',
    status: 400,
    code: 'invalid_json',
  },
  {
    name: 'malformed JSON, unknown route',
    path: '/api/v1/nope',
    headers: { 'content-type': 'application/json' },
    body: '{bad',
    status: 400,
    code: 'invalid_json',
  },
  {
    name: '100 KB body',
    path: '/api/v1/auth/login',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'a@b.c', password: 'x'.repeat(100 * 1024) }),
    status: 413,
    code: 'too_large',
  },
  {
    name: 'wrong charset',
    path: '/api/v1/auth/login',
    headers: { 'content-type': 'application/json; charset=latin1' },
    body: '{}',
    status: 415,
    code: 'unsupported_charset',
  },
  {
    name: 'unknown content-encoding',
    path: '/api/v1/auth/login',
    headers: { 'content-type': 'application/json', 'content-encoding': 'compress' },
    body: '{}',
    status: 415,
    code: 'unsupported_encoding',
  },
];

for (const nodeEnv of [undefined, 'production']) {
  test(`API errors are JSON without stack or paths (NODE_ENV ${nodeEnv ?? 'unset'})`, async () => {
    const metricsToken = nodeEnv ? 'metrics-token-0123456789' : undefined;
    const server = await startServer({
      ...(nodeEnv ? { NODE_ENV: nodeEnv } : {}),
      ...(metricsToken ? { ONAIR_METRICS_TOKEN: metricsToken } : {}),
    });
    servers.push(server);
    for (const c of cases) {
      const res = await fetch(server.base + c.path, { method: 'POST', headers: c.headers, body: c.body });
      const text = await res.text();
      assert.equal(res.status, c.status, `${c.name}: ${text.slice(0, 300)}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/, c.name);
      const json = JSON.parse(text) as { error: { code: string; message: string } };
      assert.equal(json.error.code, c.code, c.name);
      assert.equal(typeof json.error.message, 'string');
      for (const leak of ['at ', '/work', 'node_modules', '<html', '<pre'])
        assert.ok(!text.includes(leak), `${c.name}: body leaks "${leak}": ${text}`);
    }
    // Outside /api/v1 too: a path parameter that does not decode is a JSON 400.
    const odd = await fetch(server.base + '/watch/%E0%A4%A');
    const oddText = await odd.text();
    assert.equal(odd.status, 400, oddText.slice(0, 300));
    assert.equal((JSON.parse(oddText) as { error: { code: string } }).error.code, 'bad_request');
    assert.ok(!oddText.includes('/work') && !oddText.includes('at '), oddText);

    // /metrics: open by default; with ONAIR_METRICS_TOKEN, a JSON 401 unless the bearer token is right.
    if (!metricsToken) {
      assert.equal((await fetch(`${server.base}/metrics`)).status, 200);
    } else {
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789']) {
        const res = await fetch(`${server.base}/metrics`, { headers: authorization ? { authorization } : {} });
        assert.equal(res.status, 401, String(authorization));
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'unauthenticated');
      }
      const ok = await fetch(`${server.base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } });
      assert.equal(ok.status, 200);
      const text = await ok.text();
      assert.match(text, /onair_/);
      assert.ok(!/upstream="http/.test(text), 'no origin URL as a label');
    }
  });
}
