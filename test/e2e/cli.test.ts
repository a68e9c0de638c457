// The onair CLI: help for every command, and the running server's card (`<dataDir>/server.json`) telling the CLI
// which store and URLs are real, so that it warns instead of printing wrong URLs or writing to another store.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, type ServerUnderTest } from '../support/onair-server.ts';
import { waitFor } from '../support/wait-for.ts';

const cliPath = join(import.meta.dirname, '..', '..', 'cli', 'onair.ts');

/** Runs the CLI; resolves with its exit code and its two output streams, kept apart. */
function onair(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', cliPath, ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** The environment without any ONAIR_ setting, plus `extra`. */
function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ONAIR_')) env[k] = v;
  return { ...env, ...extra };
}

let server: ServerUnderTest;
const tmp = mkdtempSync(join(tmpdir(), 'onair-cli-'));

before(async () => {
  server = await startServer();
  // /healthz answers a moment before the server has opened RTMP and written its card.
  await waitFor('server.json', () => (existsSync(join(server.dataDir, 'server.json')) ? true : undefined), 10_000);
});

after(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

test('every command and subcommand answers --help with its usage, exit 0', async () => {
  const env = envWith({ ONAIR_DATA_DIR: join(tmp, 'help') });
  for (const [args, shows] of [
    [['--help'], /onair start[\s\S]*onair event create[\s\S]*onair operator list/],
    [['event', '--help'], /onair event create[\s\S]*onair event list/],
    [['event', 'create', '--help'], /onair event create --title T/],
    [['event', 'list', '-h'], /onair event list \[--json\]/],
    [['operator', '--help'], /onair operator create[\s\S]*onair operator list/],
    [['operator', 'create', '--help'], /onair operator create --email E/],
    [['start', '--help'], /onair start --role edge/],
  ] as const) {
    const r = await onair([...args], env);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^usage:/, args.join(' '));
    assert.match(r.stdout, shows, args.join(' '));
  }
  assert.doesNotMatch((await onair(['event', 'create', '--help'], env)).stdout, /onair event list|onair operator/);
  assert.ok(!existsSync(join(tmp, 'help')), '--help touches no store');
  const bad = await onair(['event', 'bogus'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command: event bogus[\s\S]*onair event create/);
});

test("with the server's data dir but none of its other settings, the CLI prints the server's real URLs", async () => {
  const card = JSON.parse(readFileSync(join(server.dataDir, 'server.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(card.httpPort, server.httpPort);
  assert.equal(card.rtmpPort, server.rtmpPort);
  assert.equal(card.publicUrl, server.base);
  assert.equal(typeof card.pid, 'number');

  const r = await onair(['event', 'create', '--title', 'Card show', '--json'], envWith({ ONAIR_DATA_DIR: server.dataDir }));
  assert.equal(r.code, 0, r.stderr);
  const made = JSON.parse(r.stdout) as { id: string; rtmpUrl: string; watchUrl: string };
  assert.equal(made.rtmpUrl, `rtmp://127.0.0.1:${server.rtmpPort}/live`);
  assert.equal(made.watchUrl, `${server.base}/watch/card-show`);
  assert.match(r.stderr, /store: SQLite .*onair\.sqlite, used by the running server \(pid \d+\); public URL http:\/\/127\.0\.0\.1:\d+/);
  assert.doesNotMatch(r.stderr, /warning/);
  // …and the server knows the event.
  assert.equal((await fetch(`${server.base}/api/v1/events/${made.id}`)).status, 200);
});

test('on a data dir no server uses, the CLI warns on stderr and says which settings it assumed; stdout stays one JSON value', async () => {
  const dataDir = join(tmp, 'elsewhere');
  const r = await onair(['event', 'create', '--title', 'Lost show', '--json'], envWith({ ONAIR_DATA_DIR: dataDir }));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(typeof JSON.parse(r.stdout), 'object');
  assert.match(r.stderr, /store: SQLite .*elsewhere\/onair\.sqlite/);
  assert.match(r.stderr, /warning: no onair server is running on data dir .*elsewhere.*public URL http:\/\/localhost:8080, RTMP port 1935/);

  // A card left by a server that died counts as no server.
  writeFileSync(
    join(dataDir, 'server.json'),
    JSON.stringify({ ...JSON.parse(readFileSync(join(server.dataDir, 'server.json'), 'utf8')), pid: 2 ** 22 + 7 }),
  );
  const list = await onair(['event', 'list', '--json'], envWith({ ONAIR_DATA_DIR: dataDir }));
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stderr, /warning: no onair server is running/);
  assert.equal((JSON.parse(list.stdout) as { rtmpUrl: string }[])[0]?.rtmpUrl, 'rtmp://localhost:1935/live');
});

test('a server on the same data dir with another store is named in a warning', async () => {
  const r = await onair(
    ['operator', 'list'],
    envWith({ ONAIR_DATA_DIR: server.dataDir, ONAIR_DATABASE_URL: 'postgres://u:secret@127.0.0.1:1/onair' }),
  );
  // No such database: the command fails, but only after saying which store it tried and that the server uses another.
  assert.match(r.stderr, /store: PostgreSQL 127\.0\.0\.1:1\/onair/);
  assert.match(r.stderr, /warning: the server running on data dir .* uses SQLite .*onair\.sqlite, not this store/);
  assert.doesNotMatch(r.stderr, /secret/);
});

test('the card goes away when the server stops', async () => {
  const card = join(server.dataDir, 'server.json');
  assert.ok(existsSync(card));
  const exited = new Promise((resolve) => server.child.once('close', resolve));
  server.child.kill('SIGTERM');
  await exited;
  assert.ok(!existsSync(card));
});
