// Test helper: a private PostgreSQL server (Debian's binaries) in a temp dir on a free port, TCP on 127.0.0.1
// only, no fsync; stopped by pid and removed. As root it runs as the `postgres` user (initdb refuses root).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.ts';
import { makeTempDir } from './temp-dir.ts';

/** A running test PostgreSQL server. */
export interface PostgresTestServer {
  readonly port: number;
  /** The postmaster's pid while it runs (undefined while halted or stopped). */
  readonly pid: number | undefined;
  /** Creates a fresh database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown by pid, SIGKILL after 5 s) but keeps its files, for resume(). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and data, and waits until it accepts connections. */
  resume(): Promise<void>;
  /** Stops the server (fast shutdown by pid, SIGKILL after 5 s) and removes its files. */
  stop(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory (Debian: /usr/lib/postgresql/<major>/bin), or undefined. */
function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((d) => /^\d+$/.test(d))
    .sort((a, b) => Number(b) - Number(a));
  return majors.map((m) => join(base, m, 'bin')).find((d) => existsSync(join(d, 'postgres')));
}

/**
 * initdb + postgres in a temp dir; resolves once the server accepts connections. `detached`: in its own process
 * group, so that a terminal's Ctrl-C reaches only the parent, which stops it in its own order (scripts/cluster.ts).
 */
export async function startPostgresTestServer(options: { detached?: boolean } = {}): Promise<PostgresTestServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (scripts/install-prereqs.sh installs it)');
  const tmp = makeTempDir('pg');
  const dir = tmp.path;
  const data = join(dir, 'data');
  // initdb and postgres refuse to run as root: hand the directory to the postgres user and run as it.
  let ids: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    ids = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
    };
    chownSync(dir, ids.uid, ids.gid);
  }
  const port = await freePort();
  const adminUrl = `postgres://onair@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  const running = (c: ChildProcess | undefined): c is ChildProcess => c !== undefined && c.exitCode === null && c.signalCode === null;
  const halt = async () => {
    const c = child;
    if (running(c)) {
      const exited = new Promise<void>((r) => c.once('close', () => r()));
      process.kill(c.pid!, 'SIGINT'); // fast shutdown
      const t = setTimeout(() => c.exitCode === null && process.kill(c.pid!, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
  };
  const stop = async () => {
    await halt();
    tmp.remove();
  };
  /** Starts postgres on the data dir and waits until it accepts connections. */
  const resume = async () => {
    if (running(child)) return;
    const c = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ],
      { ...ids, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: options.detached === true },
    );
    child = c;
    let log = '';
    c.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const client = new pg.Client({ connectionString: adminUrl });
      try {
        await client.connect();
        await client.end();
        break;
      } catch {
        await client.end().catch(() => {});
        if (c.exitCode !== null) throw new Error(`postgres exited (${c.exitCode}): ${log}`);
        if (Date.now() > deadline) throw new Error(`postgres did not accept connections on ${port}: ${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  try {
    execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'onair', '--auth=trust', '-E', 'UTF8', '--no-sync'], {
      ...ids,
      cwd: dir,
      stdio: 'pipe',
    });
    await resume();
    return {
      port,
      get pid() {
        return running(child) ? child.pid : undefined;
      },
      async createDatabase(name: string) {
        if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
        const client = new pg.Client({ connectionString: adminUrl });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgres://onair@127.0.0.1:${port}/${name}`;
      },
      halt,
      resume,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
