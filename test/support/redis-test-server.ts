// Test helper: a real redis-server on a free port, no persistence, stopped (and restartable) by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort } from './free-port.ts';

/** A redis-server child process that tests can stop and start again on the same port. */
export interface RedisTestServer {
  readonly port: number;
  readonly url: string;
  /** The server's pid while it runs (undefined before start and after it exited). */
  readonly pid: number | undefined;
  /** Starts (or restarts) the server and waits until it answers PING. */
  start(): Promise<void>;
  /** Stops the server (SIGTERM by pid, SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let data = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      data += d.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

/**
 * Creates (without starting) a redis-server on a free port. `detached`: in its own process group, so that a
 * terminal's Ctrl-C reaches only the parent, which stops it in its own order (scripts/cluster.ts).
 */
export async function createRedisTestServer(binary = 'redis-server', options: { detached?: boolean } = {}): Promise<RedisTestServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    async start() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'];
      const c = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true });
      child = c;
      c.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      c.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      exited = new Promise((resolve) => c.once('close', () => resolve()));
      const deadline = Date.now() + 10_000;
      while (!(await ping(port))) {
        if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}): ${log}`);
        if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      process.kill(c.pid!, 'SIGTERM');
      const t = setTimeout(() => c.pid && c.exitCode === null && process.kill(c.pid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
