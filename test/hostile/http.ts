// Hostile HTTP: path traversal (encoded too), overlong URLs and headers, request-smuggling shapes, 50 MB bodies,
// malformed JSON (always a JSON error, never HTML or a stack), security headers, and slowloris.
import type { Socket } from 'node:net';
import { get, leak, rawExchange, sleep, statuses, tcp, type Ctx } from './kit.ts';

const SECRET_FILES = [/root:x?:0:0/, /"devDependencies"/, /"name": ?"onair"/, /BEGIN [A-Z ]*PRIVATE KEY/];

/** Runs the HTTP group. */
export async function httpGroup(ctx: Ctx): Promise<void> {
  const { server, live, creds } = ctx;
  const port = server.httpPort;
  const at = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;

  // Traversal, sent raw (fetch would normalise the dots away).
  const prefixes = [
    '/',
    '/live/',
    `/live/${live.id}/`,
    `/live/${live.id}/360p/`,
    '/assets/',
    '/watch/',
    '/console/',
    '/whip/',
    '/api/v1/events/',
    '/ws/',
  ];
  const payloads = [
    '..%2f..%2f..%2f..%2fetc%2fpasswd',
    '..%2f..%2fetc/passwd',
    '%2e%2e/%2e%2e/%2e%2e/etc/passwd',
    '%2e%2e%2f%2e%2e%2fpackage.json',
    '../../../../etc/passwd',
    '..%5c..%5c..%5cetc%5cpasswd',
    '%252e%252e%252fpackage.json',
    '..%2f..%2f..%2fpackage.json',
    '....//....//etc/passwd',
    '%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
    '..%00/etc/passwd',
    '%2e%2e%2f%2e%2e%2f.env',
    '..%2f..%2fdata%2fonair.db',
    '..%2f..%2f..%2fcli%2fonair.ts',
  ];
  for (const p of prefixes) {
    for (const q of payloads) {
      const path = p + q;
      const r = await rawExchange(port, [at(path)], { idleMs: 2_000, maxMs: 6_000 });
      const text = r.data.toString('latin1');
      const secret = SECRET_FILES.find((re) => re.test(text));
      const st = statuses(text)[0];
      const body = text.slice(text.indexOf('\r\n\r\n') + 4);
      const isError = st !== undefined && st >= 400;
      const l = isError ? leak(body) : undefined;
      ctx.check(
        `traversal ${path}`,
        st !== undefined && st < 500 && !secret && !l,
        `status ${st}${secret ? `, served ${secret}` : ''}${l ? `, error body has ${l}` : ''}`,
      );
    }
  }

  // Overlong URL and headers: 414/431, never 5xx or a hang.
  for (const [name, req] of [
    ['URL 100 KB', `GET /live/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['URL 20 KB on the API', `GET /api/v1/events?status=${'b'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
    ['header 64 KB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'c'.repeat(65_536)}\r\n\r\n`],
    ['3000 headers', `GET /healthz HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`],
    ['cookie 40 KB', `GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nCookie: onair_session=${'d'.repeat(40_000)}\r\n\r\n`],
  ] as const) {
    const r = await rawExchange(port, [req], { idleMs: 2_000, maxMs: 6_000 });
    const st = statuses(r.data)[0];
    ctx.check(`overlong ${name}: 414 or 431`, st === 414 || st === 431, `status ${st ?? 'none'}, closed ${r.closed}`);
  }

  // Request smuggling: refused with 400, and the request hidden behind is never answered.
  const smuggled = `GET /api/v1/nope-smuggled HTTP/1.1\r\nHost: x\r\n\r\n`;
  for (const [name, req] of [
    [
      'CL + TE',
      `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    ['TE + CL', `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n${smuggled}`],
    [
      'duplicate CL',
      `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}${smuggled}`,
    ],
    ['CL with a comma', `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 40\r\n\r\n{}${smuggled}`],
    [
      'obs-fold header',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    ['TE: xchunked', `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${smuggled}`],
    [
      'TE: chunked, identity',
      `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'space before colon',
      `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    ['bad chunk size', `POST /api/v1/viewers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n${smuggled}`],
    ['bare LF line ends', `GET /healthz HTTP/1.1\nHost: x\nContent-Length: 0\nTransfer-Encoding: chunked\n\n0\n\n${smuggled}`],
  ] as const) {
    const r = await rawExchange(port, [req], { idleMs: 1_500, maxMs: 5_000 });
    const all = statuses(r.data);
    ctx.check(`smuggling ${name}: 400`, all[0] === 400, `statuses ${all.join(',') || 'none'}`);
    ctx.check(`smuggling ${name}: no desync (one answer, the hidden request not served)`, all.length <= 1, `statuses ${all.join(',')}`);
  }
  // Control: two honest pipelined requests both get answers (the check above would not pass vacuously).
  const piped = await rawExchange(port, [
    `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
  ]);
  ctx.check('pipelined honest requests are both answered', statuses(piped.data).join(',') === '200,200', statuses(piped.data).join(','));

  // 50 MB bodies: refused fast with 413, without reading it all.
  for (const [name, path, type] of [
    ['API JSON', '/api/v1/events', 'application/json'],
    ['login', '/api/v1/auth/login', 'application/json'],
    ['WHIP offer', `/whip/${live.id}`, 'application/sdp'],
  ] as const) {
    const r = await bigBody(port, path, type, creds.admin, 50 * 1024 * 1024);
    ctx.check(
      `50 MB body to ${name}: 413 within 3 s`,
      r.status === 413 && r.ms < 3_000,
      `status ${r.status}, ${r.ms} ms, ${(r.sent / 2 ** 20).toFixed(1)} MiB sent`,
    );
    if (r.body) {
      ctx.check(`50 MB body to ${name}: JSON error, no HTML/stack`, isJsonError(r.body) && !leak(r.body), r.body.slice(0, 200));
      if (path.startsWith('/api/'))
        ctx.check(`50 MB body to ${name}: code too_large`, /"code":"(too_large|payload_too_large)"/.test(r.body), r.body.slice(0, 200));
    }
  }

  // Malformed JSON: 400 invalid_json as JSON, never an HTML page or a stack.
  const bodies: [string, string | Buffer][] = [
    ['truncated', '{"title":'],
    ['bare brace', '{'],
    ['trailing comma', '{"title":"x",}'],
    ['single quotes', "{'title':'x'}"],
    ['NaN', '{"title":NaN}'],
    ['bad escape', '{"title":"\\x"}'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['deep nesting', '['.repeat(20_000) + ']'.repeat(20_000)],
    ['number', '42'],
    ['string', '"str"'],
    ['null', 'null'],
    ['BOM + garbage', '\ufeff{]'],
    ['__proto__', '{"__proto__":{"admin":true},"title":"x"}'],
    ['huge number', '{"title":1e999999}'],
  ];
  for (const [route, auth] of [
    ['/api/v1/events', creds.admin],
    ['/api/v1/auth/login', undefined],
    ['/api/v1/viewers', undefined],
    [`/api/v1/events/${live.id}/moderation`, creds.admin],
  ] as const) {
    for (const [name, body] of bodies) {
      const r = await get(`${server.base}${route}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(auth ? { authorization: `Bearer ${auth}` } : {}),
          'x-forwarded-for': '198.51.100.200',
        },
        body: typeof body === 'string' ? body : new Uint8Array(body),
      });
      const l = leak(r.body);
      ctx.check(
        `malformed JSON (${name}) to ${route}: 4xx JSON error`,
        r.status >= 400 && r.status < 500 && isJsonError(r.body) && !l,
        `status ${r.status}${l ? `, ${l}` : ''}: ${r.body.slice(0, 120)}`,
      );
      if (['truncated', 'bare brace', 'trailing comma', 'single quotes', 'NaN', 'bad escape'].includes(name)) {
        ctx.check(
          `malformed JSON (${name}) to ${route}: 400 invalid_json`,
          r.status === 400 && r.body.includes('"invalid_json"'),
          `status ${r.status}`,
        );
      }
    }
  }
  // Error bodies elsewhere: unknown routes and methods, bad methods, bad content types.
  for (const [method, path, type] of [
    ['GET', '/api/v1/does-not-exist', undefined],
    ['PATCH', '/healthz', undefined],
    ['POST', `/whip/${live.id}`, 'text/plain'],
    ['DELETE', '/api/v1/events', undefined],
    ['GET', '/live/nope/master.m3u8', undefined],
    ['PUT', '/', 'application/json'],
    ['POST', '/api/v1/events', 'application/x-www-form-urlencoded'],
    ['GET', '/api/v1/events?status=%ZZ', undefined],
  ] as const) {
    const r = await get(`${server.base}${path}`, {
      method,
      headers: type ? { 'content-type': type, authorization: `Bearer ${creds.admin}` } : {},
      body: type ? 'a=b' : undefined,
    });
    const l = leak(r.body);
    ctx.check(
      `${method} ${path}${type ? ` (${type})` : ''}: clean error`,
      r.status >= 400 && r.status < 500 && !l,
      `status ${r.status}${l ? `, ${l}` : ''}`,
    );
  }

  // A live media playlist's query: bad LL-HLS directives and a bad `join` are a 400 with a JSON error; `join=now` plays.
  const media = `${server.base}/live/${live.id}/360p/index.m3u8`;
  for (const q of ['?join=later', '?join', '?join=now&join=x', '?_HLS_msn=-1', '?_HLS_part=1', '?_HLS_skip=maybe']) {
    const r = await get(media + q);
    const l = leak(r.body);
    ctx.check(
      `playlist ${q}: 400 with a JSON error`,
      r.status === 400 && r.body.startsWith('{') && !l,
      `status ${r.status}${l ? `, ${l}` : ''}`,
    );
  }
  const now = await get(`${media}?join=now`);
  ctx.check('playlist ?join=now: 200', now.status === 200 && now.body.startsWith('#EXTM3U'), `status ${now.status}`);

  // Security headers on pages and API answers.
  for (const path of ['/', `/watch/${live.slug}`, '/console']) {
    const r = await get(`${server.base}${path}`);
    ctx.check(`${path}: Content-Security-Policy`, r.status === 200 && r.headers.has('content-security-policy'), `status ${r.status}`);
    ctx.check(`${path}: X-Content-Type-Options nosniff`, r.headers.get('x-content-type-options') === 'nosniff');
  }
  // (HLS through /live/ is left out: the edge serves its own header lists with exact media types.)
  for (const path of ['/api/v1/events', '/api/v1/nope', '/healthz']) {
    const r = await get(`${server.base}${path}`);
    ctx.check(`${path}: X-Content-Type-Options nosniff`, r.headers.get('x-content-type-options') === 'nosniff', `status ${r.status}`);
  }

  // Slowloris: 60 connections trickling headers for 8 s; a normal client is still served quickly meanwhile.
  const slow: Socket[] = [];
  for (let i = 0; i < 60; i++) {
    try {
      const s = await tcp(port, `127.0.0.${100 + (i % 10)}`);
      s.on('error', () => undefined);
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      slow.push(s);
    } catch {
      break;
    }
  }
  ctx.tried(slow.length);
  let worst = 0;
  for (let t = 0; t < 8; t++) {
    for (const s of slow) if (!s.destroyed) s.write(`X-Slow-${t}: ${'z'.repeat(10)}\r\n`);
    const [h, p] = await Promise.all([get(`${server.base}/healthz`, { timeoutMs: 5_000 }), get(live.hlsUrl, { timeoutMs: 5_000 })]);
    worst = Math.max(worst, h.ms, p.ms);
    if (h.status !== 200 || p.status !== 200)
      ctx.check(`slowloris: normal client served (second ${t})`, false, `healthz ${h.status}, master ${p.status}`);
    await sleep(1_000);
  }
  ctx.check('slowloris (60 slow connections): normal clients answered within 2 s', worst < 2_000, `worst ${worst} ms`);
  for (const s of slow) s.destroy();
}

function isJsonError(body: string): boolean {
  try {
    const j = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    return typeof j.error?.code === 'string' && typeof j.error.message === 'string';
  } catch {
    return false;
  }
}

/** Streams a `size`-byte body (declared up front) until the server answers; never sends more than it must. */
async function bigBody(
  port: number,
  path: string,
  type: string,
  token: string,
  size: number,
): Promise<{ status: number; body: string; ms: number; sent: number }> {
  const started = Date.now();
  const s = await tcp(port);
  let raw = '';
  let answered = false;
  let sent = 0;
  s.on('error', () => undefined);
  const done = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      answered = true;
      const head = raw.indexOf('\r\n\r\n');
      const len = Number(/content-length: (\d+)/i.exec(raw)?.[1] ?? -1);
      if (head >= 0 && len >= 0 && raw.length >= head + 4 + len) resolve();
    });
    s.on('close', () => resolve());
    setTimeout(resolve, 10_000);
  });
  s.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nAuthorization: Bearer ${token}\r\nContent-Length: ${size}\r\n\r\n`);
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  while (sent < size && !answered && !s.destroyed && Date.now() - started < 8_000) {
    const ok = s.write(chunk);
    sent += chunk.length;
    if (!ok) await Promise.race([new Promise((r) => s.once('drain', r)), sleep(200)]);
  }
  await done;
  s.destroy();
  const st = statuses(raw)[0] ?? 0;
  const head = raw.indexOf('\r\n\r\n');
  return { status: st, body: head >= 0 ? raw.slice(head + 4) : '', ms: Date.now() - started, sent };
}
