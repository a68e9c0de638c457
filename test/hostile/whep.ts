// Hostile WHEP playback: bad offers and tokens, unknown sessions and paths, a 6 KB bearer, and a race of more offers
// than the node's viewer cap (exactly the cap is served, the rest get 503 whep_full, and every slot comes back when
// the sessions are deleted).
import { leak, type Created, type Ctx } from './kit.ts';
import { httpFrom } from './whip.ts';
import { h264Offer } from '../support/sdp-offer.ts';

/** The cap the hostile server runs with (ONAIR_WHEP_MAX_VIEWERS). */
export const WHEP_CAP = 6;

const OFFER = h264Offer('recvonly');

/** Runs the WHEP group against the live event (`ctx.live`) and an idle one. */
export async function whepGroup(ctx: Ctx, idle: Created): Promise<void> {
  const port = ctx.server.httpPort;
  const token = ctx.creds.viewer;
  const post = (path: string, body: string, bearer: string | undefined, type: string | null = 'application/sdp') =>
    httpFrom(port, {
      method: 'POST',
      path,
      headers: {
        ...(type ? { 'content-type': type } : {}),
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
  const live = `/whep/${ctx.live.id}`;
  const cases: [string, () => ReturnType<typeof post>, number, string][] = [
    ['no token', () => post(live, OFFER, undefined), 401, 'unauthorized'],
    ['wrong token', () => post(live, OFFER, token.slice(0, -3) + 'xyz'), 401, 'unauthorized'],
    ['a stream key as token', () => post(live, OFFER, ctx.live.streamKey), 401, 'unauthorized'],
    ['an operator token as viewer token', () => post(live, OFFER, `${ctx.creds.admin}x`), 401, 'unauthorized'],
    ['empty body', () => post(live, '', token), 400, 'bad_sdp'],
    ['not SDP', () => post(live, 'hello, world', token), 400, 'bad_sdp'],
    ['binary noise', () => post(live, '\u0000\u0001\u00ff'.repeat(300), token), 400, 'bad_sdp'],
    ['sendonly offer', () => post(live, OFFER.replace('a=recvonly', 'a=sendonly'), token), 400, 'bad_sdp'],
    ['VP8 only', () => post(live, OFFER.replace(/H264/g, 'VP8').replace(/a=fmtp.*\r\n/, ''), token), 400, 'bad_sdp'],
    ['no ICE credentials', () => post(live, OFFER.replace(/a=ice-(ufrag|pwd):.*\r\n/g, ''), token), 400, 'bad_sdp'],
    ['oversized (100 KB)', () => post(live, `v=0\r\n${'a=x\r\n'.repeat(25_000)}`, token), 413, 'too_large'],
    ['text/plain', () => post(live, OFFER, token, 'text/plain'), 415, 'unsupported_media_type'],
    ['an idle event', () => post(`/whep/${idle.id}`, OFFER, token), 404, 'not_live'],
    ['an unknown event', () => post('/whep/no-such-event', OFFER, token), 404, 'not_live'],
  ];
  for (const [name, send, status, code] of cases) {
    const r = await send();
    const l = leak(r.body);
    ctx.check(
      `WHEP ${name}: ${status} ${code}`,
      r.status === status && r.body.includes(`"${code}"`) && !l,
      `got ${r.status} ${r.body.slice(0, 160)}${l ? ` (${l})` : ''}`,
    );
  }
  const huge = await post(live, OFFER, 'v'.repeat(6_000));
  ctx.check('WHEP 6 KB bearer: 401, not logged', huge.status === 401 && !ctx.server.log().includes('v'.repeat(200)), `got ${huge.status}`);
  for (const [name, method, path, status] of [
    ['DELETE an unknown session', 'DELETE', `${live}/no-such-session`, 404],
    ['DELETE a traversal path', 'DELETE', `${live}/..%2f..%2fapi%2fv1%2fevents`, 404],
    ['GET the endpoint', 'GET', live, 405],
  ] as const) {
    const r = await httpFrom(port, { method, path });
    ctx.check(`WHEP ${name}: ${status}`, r.status === status && !leak(r.body), `got ${r.status} ${r.body.slice(0, 160)}`);
  }
  ctx.check('WHEP viewer token never logged', !ctx.server.log().includes(token));

  // More offers than the cap, all at once: exactly the cap is served, the rest are told to use HLS.
  const race = await Promise.all(Array.from({ length: WHEP_CAP * 3 }, () => post(live, OFFER, token)));
  const served = race.filter((r) => r.status === 201);
  const full = race.filter((r) => r.status === 503 && r.body.includes('"whep_full"') && r.headers['retry-after'] !== undefined);
  ctx.check(
    `WHEP race of ${race.length} offers against a cap of ${WHEP_CAP}: exactly ${WHEP_CAP} served, the rest 503 whep_full`,
    served.length === WHEP_CAP && full.length === race.length - WHEP_CAP,
    `statuses ${race.map((r) => r.status).join(',')}`,
  );
  const locations = served.map((r) => String(r.headers.location ?? ''));
  const deleted = await Promise.all(locations.map((l) => httpFrom(port, { method: 'DELETE', path: new URL(l, 'http://x').pathname })));
  ctx.check(
    'WHEP every served session can be deleted',
    deleted.length === WHEP_CAP && deleted.every((r) => r.status === 200),
    deleted.map((r) => r.status).join(','),
  );
  const again = await post(live, OFFER, token);
  ctx.check('WHEP a slot is free again after the deletes', again.status === 201, `got ${again.status} ${again.body.slice(0, 160)}`);
  const loc = again.headers.location;
  if (typeof loc === 'string') await httpFrom(port, { method: 'DELETE', path: new URL(loc, 'http://x').pathname });
}
