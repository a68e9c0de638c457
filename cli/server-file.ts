// The running server's card, `<dataDir>/server.json`: written once the server is up, removed when it stops. The CLI
// writes to the store directly; this card tells it whether a server uses the same store and which URLs it really
// serves, so that it never prints wrong URLs or creates events in a database no server reads without saying so.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { publicBase } from '../control/public-urls.ts';

/** What a running server writes about itself. */
export interface ServerCard {
  pid: number;
  role: string;
  httpPort: number;
  rtmpPort: number;
  /** The SRT ingest's bound UDP port; absent when SRT is off. */
  srtPort?: number;
  /** Base URL viewers use (no trailing slash). */
  publicUrl: string;
  /** The store, as `storeLabel` names it (never with credentials). */
  store: string;
  startedAt: number;
}

/** File name of the card inside the data dir. */
export const SERVER_CARD = 'server.json';

/** The store a configuration opens, named for people: SQLite file path, or PostgreSQL host/database without credentials. */
export function storeLabel(config: Pick<Config, 'dataDir' | 'databaseUrl'>): string {
  if (config.databaseUrl === undefined) return `SQLite ${resolve(config.dataDir, 'onair.sqlite')}`;
  try {
    const u = new URL(config.databaseUrl);
    return `PostgreSQL ${u.host}${u.pathname}`;
  } catch {
    return 'PostgreSQL (unparsable URL)';
  }
}

/**
 * Writes the card of this process's server; returns a function that removes it (only if it is still ours). A card
 * that cannot be written (read-only data dir) costs the CLI its hints, not the server its start: `onError` hears of it.
 */
export function writeServerCard(
  config: Config,
  ports: { httpPort: number; rtmpPort: number; srtPort: number | undefined },
  onError: (err: Error) => void,
): () => void {
  const file = join(config.dataDir, SERVER_CARD);
  const card: ServerCard = {
    pid: process.pid,
    role: config.role.join(','),
    httpPort: ports.httpPort,
    rtmpPort: ports.rtmpPort,
    ...(ports.srtPort !== undefined ? { srtPort: ports.srtPort } : {}),
    publicUrl: publicBase(config, ports.httpPort),
    store: storeLabel(config),
    startedAt: Date.now(),
  };
  // Written whole then renamed, so a reader never sees half a card.
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(tmp, JSON.stringify(card, null, 2) + '\n', { mode: 0o644 });
    renameSync(tmp, file);
  } catch (err) {
    onError(err as Error);
    return () => undefined;
  }
  return () => {
    try {
      if (readCard(file)?.pid === process.pid) rmSync(file, { force: true });
    } catch (err) {
      onError(err as Error);
    }
  };
}

function readCard(file: string): ServerCard | undefined {
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as Partial<ServerCard>;
    if (typeof c.pid !== 'number' || typeof c.httpPort !== 'number' || typeof c.rtmpPort !== 'number') return undefined;
    if (typeof c.publicUrl !== 'string' || typeof c.store !== 'string') return undefined;
    return c as ServerCard;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The card of a server running on `dataDir`, or undefined when there is none or its process is gone. */
export function runningServer(dataDir: string): ServerCard | undefined {
  const card = readCard(join(dataDir, SERVER_CARD));
  return card !== undefined && alive(card.pid) ? card : undefined;
}
