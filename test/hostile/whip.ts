// Hostile WHIP: bad offers (empty, not SDP, no H.264, oversized, wrong content type, wrong key) and the wrong-key
// lock-out (429 after 10 wrong keys). Sent from their own loopback addresses: the lock-out never hits 127.0.0.1.
import { request } from 'node:http';
import { leak, rawExchange, statuses, type Created, type Ctx } from './kit.ts';
import { h264Offer } from '../support/sdp-offer.ts';

/** One HTTP request from `localAddress`; status 0 on a network error. */
export function httpFrom(
  port: number,
  o: { method: string; path: string; headers?: Record<string, string>; body?: string | Buffer; localAddress?: string },
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, method: o.method, path: o.path, headers: o.headers, localAddress: o.localAddress, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: String(err), headers: {} }));
    req.end(o.body);
  });
}

/** Without ICE credentials or a fingerprint: the checks before ICE read its text only. */
const H264_OFFER = h264Offer('sendonly', false);

/** Runs the WHIP group against `target` (an idle event whose key we have). */
export async function whipGroup(ctx: Ctx, target: Created): Promise<void> {
  const port = ctx.server.httpPort;
  const path = `/whip/${target.id}`;
  const post = (localAddress: string, body: string, key: string | undefined, type: string | null = 'application/sdp') =>
    httpFrom(port, {
      method: 'POST',
      path,
      localAddress,
      headers: {
        ...(type ? { 'content-type': type } : {}),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
  /** A POST with no body framing at all (neither Content-Length nor Transfer-Encoding), as some WHIP clients send. */
  const bare = async (localAddress: string, key: string) => {
    const r = await rawExchange(
      port,
      [
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/sdp\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`,
      ],
      { localAddress, idleMs: 2_000, maxMs: 5_000 },
    );
    const text = r.data.toString('utf8');
    return {
      status: statuses(text)[0] ?? 0,
      body: text.slice(text.indexOf('\r\n\r\n') + 4),
      headers: {} as Record<string, string | undefined>,
    };
  };
  const good = '127.0.0.210';
  const cases: [string, () => Promise<{ status: number; body: string }>, number, string][] = [
    ['empty body', () => post(good, '', target.streamKey), 400, 'bad_sdp'],
    ['no body (no Content-Length)', () => bare(good, target.streamKey), 400, 'bad_sdp'],
    ['not SDP', () => post(good, 'hello, world', target.streamKey), 400, 'bad_sdp'],
    ['binary noise', () => post(good, '\u0000\u0001\u00ff'.repeat(300), target.streamKey), 400, 'bad_sdp'],
    ['VP8 only', () => post(good, H264_OFFER.replace(/H264/g, 'VP8').replace(/a=fmtp.*\r\n/, ''), target.streamKey), 400, 'bad_sdp'],
    [
      'audio only',
      () =>
        post(
          good,
          'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n',
          target.streamKey,
        ),
      400,
      'bad_sdp',
    ],
    [
      'three video tracks',
      () =>
        post(good, H264_OFFER + H264_OFFER.slice(H264_OFFER.indexOf('m=')) + H264_OFFER.slice(H264_OFFER.indexOf('m=')), target.streamKey),
      400,
      'bad_sdp',
    ],
    ['oversized (100 KB)', () => post(good, `v=0\r\n${'a=x\r\n'.repeat(25_000)}`, target.streamKey), 413, 'too_large'],
    ['text/plain', () => post(good, H264_OFFER, target.streamKey, 'text/plain'), 415, 'unsupported_media_type'],
    ['no content type', () => post(good, H264_OFFER, target.streamKey, null), 415, 'unsupported_media_type'],
  ];
  for (const [name, send, status, code] of cases) {
    const r = await send();
    const l = leak(r.body);
    ctx.check(
      `WHIP ${name}: ${status} ${code}`,
      r.status === status && r.body.includes(`"${code}"`) && !l,
      `got ${r.status} ${r.body.slice(0, 160)}${l ? ` (${l})` : ''}`,
    );
  }
  // H.264 offer without ICE credentials or a DTLS fingerprint: it could never connect, so it is refused before any
  // session holds the event.
  const broken = await post('127.0.0.211', H264_OFFER, target.streamKey);
  ctx.check(
    'WHIP H.264 offer without ICE/DTLS: 400 bad_sdp',
    broken.status === 400 && broken.body.includes('"bad_sdp"') && !leak(broken.body),
    `got ${broken.status} ${broken.body.slice(0, 160)}`,
  );

  // Wrong keys: 10 are answered 401, then the address is locked out (429 + Retry-After), even with the right key.
  const guesser = '127.0.0.212';
  const answers: number[] = [];
  for (let i = 0; i < 10; i++) answers.push((await post(guesser, H264_OFFER, `sk_wrong${'x'.repeat(20)}${i}`)).status);
  ctx.check(
    'WHIP 10 wrong keys: each 401',
    answers.every((s) => s === 401),
    answers.join(','),
  );
  const locked = await post(guesser, H264_OFFER, `sk_wrong${'y'.repeat(22)}`);
  ctx.check(
    'WHIP 11th wrong key: 429 with Retry-After',
    locked.status === 429 && locked.headers['retry-after'] !== undefined,
    `got ${locked.status}`,
  );
  const lockedRight = await post(guesser, '', target.streamKey);
  ctx.check('WHIP right key from a locked address: 429', lockedRight.status === 429, `got ${lockedRight.status}`);
  const huge = await post('127.0.0.213', H264_OFFER, 'k'.repeat(6_000));
  ctx.check('WHIP 6 KB bearer: 401, not logged', huge.status === 401 && !ctx.server.log().includes('k'.repeat(200)), `got ${huge.status}`);
  const other = await post('127.0.0.214', 'hello', target.streamKey);
  ctx.check('WHIP lock-out is per address: another address is still heard', other.status === 400, `got ${other.status}`);
}
