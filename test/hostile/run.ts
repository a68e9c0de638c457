// The hostile-input suite (`npm run test:hostile`): a real all-in-one server on loopback with a real stream playing,
// attacked group by group (HTTP, RTMP, WebSocket, auth matrix, API fuzzing, SRT, WHEP, WHIP). After each group the stream must
// still advance, a viewer still gets HLS and /healthz, and the server process must be the same one.
// The last line printed is one JSON object: inputs, checks, failures, serverRestarts, streamParts.
//   tsx test/hostile/run.ts [group…]      groups: http rtmp ws auth fuzz srt whep whip (default: all)
import { runCli, startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { publishTestStream } from '../../scripts/publish-test-stream.ts';
import { get, StreamWatcher, type Created, type Credentials, type Ctx, type Failure } from './kit.ts';
import { httpGroup } from './http.ts';
import { rtmpGroup } from './rtmp.ts';
import { wsGroup, WS_CAP } from './ws.ts';
import { authMatrix, fuzz, loginBurst, webhookTargets } from './api.ts';
import { whipGroup } from './whip.ts';
import { whepGroup, WHEP_CAP } from './whep.ts';
import { srtGroup } from './srt.ts';

const LOGIN_MAX_FAILURES = 5;
const FUZZ_BUDGET_SEC = Number(process.env.HOSTILE_FUZZ_SEC ?? 75);
const started = Date.now();
const failures: Failure[] = [];
let inputs = 0;
let checks = 0;
let restarts = 0;
const perGroup: Record<string, { checks: number; failures: number; sec: number }> = {};
const log = (msg: string) => process.stdout.write(`${msg}\n`);

/** Everything a run needs: the server, its events, credentials, the publisher and the watcher. */
interface World {
  server: ServerUnderTest;
  live: Created;
  spare: Created;
  whipTarget: Created;
  creds: Credentials;
  publisher: ReturnType<typeof publishTestStream>;
  watcher: StreamWatcher;
  startTime: number;
}

async function startTime(server: ServerUnderTest): Promise<number> {
  const r = await get(`${server.base}/metrics`);
  return Number(/^process_start_time_seconds (\S+)/m.exec(r.body)?.[1] ?? NaN);
}

async function setUp(): Promise<World> {
  const server = await startServer({
    ONAIR_WS_MAX_CONNECTIONS_PER_IP: String(WS_CAP),
    ONAIR_LOGIN_MAX_FAILURES: String(LOGIN_MAX_FAILURES),
    ONAIR_WEBHOOK_MAX_ATTEMPTS: '1',
    ONAIR_WHEP_MAX_VIEWERS: String(WHEP_CAP),
  });
  try {
    const make = async (title: string) => JSON.parse(await server.cli(['event', 'create', '--title', title, '--json'])) as Created;
    const live = await make('Hostile: the stream that must keep playing');
    const spare = await make('Hostile: corrupt publisher');
    const whipTarget = await make('Hostile: WHIP target');
    const adminEmail = 'hostile-admin@example.com';
    const adminPassword = 'hostile admin password 1';
    if ((await runCli(server, ['operator', 'create', '--email', adminEmail, '--role', 'admin'], `${adminPassword}\n`)).code !== 0)
      throw new Error('operator create failed');
    if (
      (
        await runCli(
          server,
          ['operator', 'create', '--email', 'hostile-mod@example.com', '--role', 'moderator'],
          'hostile mod password 1\n',
        )
      ).code !== 0
    )
      throw new Error('operator create failed');
    const login = async (email: string, password: string) => {
      const r = await fetch(`${server.base}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      if (r.status !== 200) throw new Error(`login ${email}: ${r.status}`);
      return { cookie: r.headers.get('set-cookie')!.split(';')[0]!, csrf: ((await r.json()) as { csrfToken: string }).csrfToken };
    };
    const token = async (s: { cookie: string; csrf: string }, name: string) => {
      const r = await fetch(`${server.base}/api/v1/auth/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: s.cookie, 'x-csrf-token': s.csrf },
        body: JSON.stringify({ name }),
      });
      if (r.status !== 201) throw new Error(`token: ${r.status}`);
      return ((await r.json()) as { token: string }).token;
    };
    const adminSession = await login(adminEmail, adminPassword);
    const modSession = await login('hostile-mod@example.com', 'hostile mod password 1');
    const v = await fetch(`${server.base}/api/v1/viewers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ displayName: 'Hostile viewer' }),
    });
    const creds: Credentials = {
      admin: await token(adminSession, 'hostile'),
      fuzzAdmin: await token(adminSession, 'hostile-fuzzer'),
      moderator: await token(modSession, 'hostile'),
      viewer: ((await v.json()) as { token: string }).token,
      cookie: adminSession.cookie,
      csrf: adminSession.csrf,
      adminEmail,
      adminPassword,
    };
    // A small 360p source: the default ladder keeps only its 360p rung.
    const publisher = publishTestStream({
      url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${live.streamKey}`,
      width: 640,
      height: 360,
      fps: 30,
      videoKbps: 800,
      durationSec: 1800,
    });
    const watcher = new StreamWatcher(server.base, live.hlsUrl);
    await watcher.ready(60_000);
    watcher.start();
    return { server, live, spare, whipTarget, creds, publisher, watcher, startTime: await startTime(server) };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

async function tearDown(w: World): Promise<void> {
  w.watcher.stop();
  w.publisher.child.kill('SIGKILL');
  await w.publisher.done;
  await w.server.stop();
}

/** Runs one group with a time limit, then the after-checks every group gets. */
async function runGroup(w: World, name: string, limitSec: number, body: (ctx: Ctx) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  const stats = (perGroup[name] = { checks: 0, failures: 0, sec: 0 });
  const ctx: Ctx = {
    server: w.server,
    live: w.live,
    creds: w.creds,
    watcher: w.watcher,
    check(check, ok, detail = '') {
      checks++;
      inputs++;
      stats.checks++;
      if (!ok) {
        detail = detail.replace(/\s+/g, ' ').slice(0, 240);
        stats.failures++;
        failures.push({ group: name, check, detail });
        log(`  FAIL [${name}] ${check}${detail ? ` — ${detail}` : ''}`);
      }
      return ok;
    },
    tried(n) {
      inputs += n;
    },
    note(msg) {
      log(`  [${name}] ${msg}`);
    },
  };
  log(`# group ${name}`);
  w.watcher.reset();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      body(ctx),
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error(`group did not finish within ${limitSec} s`)), limitSec * 1000)),
      ),
    ]);
  } catch (err) {
    ctx.check('group ran to completion', false, (err as Error).stack?.split('\n').slice(0, 4).join(' ') ?? String(err));
  } finally {
    clearTimeout(timer);
  }
  // After every group: same process, stream advancing, a viewer served, /healthz fine, no long stall meanwhile.
  const alive = w.server.child.exitCode === null && w.server.child.signalCode === null;
  ctx.check('server process still running', alive, `exit ${w.server.child.exitCode} ${w.server.child.signalCode}`);
  if (alive) {
    ctx.check('server not restarted (process start time unchanged)', (await startTime(w.server)) === w.startTime);
    ctx.check('stream still advancing after the group', await w.watcher.advances(15_000));
    const win = w.watcher.window();
    ctx.check('stream never stalled > 10 s during the group', win.longestStallMs <= 10_000, `longest stall ${win.longestStallMs} ms`);
    ctx.check('viewer HLS and /healthz answered throughout', win.healthFailures.length === 0, win.healthFailures.slice(0, 5).join('; '));
    const master = await get(w.live.hlsUrl);
    const health = await get(`${w.server.base}/healthz`);
    ctx.check(
      'a viewer still gets the master playlist and /healthz',
      master.status === 200 && health.status === 200,
      `master ${master.status}, healthz ${health.status}`,
    );
    ctx.check('live publisher still connected', w.publisher.child.exitCode === null);
  }
  stats.sec = Math.round((Date.now() - t0) / 1000);
  log(`  ${name}: ${stats.checks} checks, ${stats.failures} failed, ${stats.sec} s`);
}

const groups: [string, number, (ctx: Ctx, w: World) => Promise<void>][] = [
  ['http', 150, (ctx) => httpGroup(ctx)],
  ['rtmp', 150, (ctx, w) => rtmpGroup(ctx, w.spare)],
  ['ws', 120, (ctx) => wsGroup(ctx)],
  [
    'auth',
    120,
    async (ctx) => {
      await authMatrix(ctx);
      await loginBurst(ctx, LOGIN_MAX_FAILURES);
      await webhookTargets(ctx);
    },
  ],
  ['fuzz', FUZZ_BUDGET_SEC + 90, (ctx) => fuzz(ctx, FUZZ_BUDGET_SEC)],
  ['srt', 150, (ctx) => srtGroup(ctx)],
  ['whep', 60, (ctx, w) => whepGroup(ctx, w.whipTarget)],
  // Last: wrong keys lock an address out (its own loopback address here, but keep it away from the others).
  ['whip', 60, (ctx, w) => whipGroup(ctx, w.whipTarget)],
];

// Hard limit for the whole run: whatever hangs, the processes we started are ended and the summary is printed.
const HARD_LIMIT_SEC = Number(process.env.HOSTILE_LIMIT_SEC ?? 600);
setTimeout(() => {
  failures.push({ group: 'suite', check: `whole run within ${HARD_LIMIT_SEC} s`, detail: 'hard time limit reached' });
  world?.publisher.child.kill('SIGKILL');
  world?.server.child.kill('SIGKILL');
  log(`FAIL suite: hard time limit of ${HARD_LIMIT_SEC} s reached`);
  log(
    JSON.stringify({
      suite: 'hostile',
      inputs,
      checks,
      failures: failures.length,
      serverRestarts: restarts,
      streamParts: world?.watcher.seen.size ?? 0,
      durationSec: HARD_LIMIT_SEC,
      groups: perGroup,
    }),
  );
  process.exit(1);
}, HARD_LIMIT_SEC * 1000).unref();

const only = process.argv.slice(2);
let world: World | undefined;
let partsBefore = 0;
let code = 0;
try {
  world = await setUp();
  log(`hostile: server on ${world.server.base} (rtmp ${world.server.rtmpPort}), stream live`);
  for (const [name, limit, body] of groups) {
    if (only.length && !only.includes(name)) continue;
    await runGroup(world, name, limit, (ctx) => body(ctx, world!));
    const w: World = world;
    if (w.server.child.exitCode !== null || w.server.child.signalCode !== null) {
      // The server died: count it, and give the next groups a fresh one so each still reports on its own.
      restarts++;
      partsBefore += w.watcher.seen.size;
      log(`  server died during ${name}: starting a fresh one`);
      await tearDown(w).catch(() => undefined);
      world = await setUp();
    }
  }
} catch (err) {
  failures.push({ group: 'setup', check: 'suite set-up', detail: (err as Error).stack ?? String(err) });
  log(`FAIL setup: ${(err as Error).stack ?? String(err)}`);
} finally {
  if (world) await tearDown(world).catch(() => undefined);
}
if (failures.length) {
  log(`\n${failures.length} failed checks:`);
  for (const f of failures) log(`  [${f.group}] ${f.check}${f.detail ? ` — ${f.detail}` : ''}`);
  code = 1;
}
log(`${checks - failures.length} passed, ${failures.length} failed`);
log(
  JSON.stringify({
    suite: 'hostile',
    inputs,
    checks,
    failures: failures.length,
    serverRestarts: restarts,
    streamParts: partsBefore + (world?.watcher.seen.size ?? 0),
    durationSec: Math.round((Date.now() - started) / 1000),
    groups: perGroup,
  }),
);
process.exit(code);
