#!/usr/bin/env node
// The `onair` command: start the server, manage events.
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { roles, type Role } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { openStore } from '../lib/store/db.ts';
import { EventService, type EventRecord } from '../control/events.ts';
import { startAllInOne } from './all-in-one.ts';

const usage = `usage:
  onair start [--role all]              run the server (all roles in one process)
  onair event create --title T [--description D] [--json]
                                        create an event; prints its stream key once
  onair event list [--json]             list events

Configuration comes from ONAIR_* environment variables and an optional
JSON file named by ONAIR_CONFIG (see README.md).`;

class UsageError extends Error {}

/** URLs an operator needs for an event; derived from publicUrl (default http://localhost:<httpPort>). */
function eventUrls(config: Config, e: EventRecord) {
  const base = (config.publicUrl ?? `http://localhost:${config.httpPort}`).replace(/\/+$/, '');
  const host = new URL(base).hostname;
  return {
    rtmpUrl: `rtmp://${host}:${config.rtmpPort}/live`,
    whipUrl: `${base}/whip/${e.id}`,
    watchUrl: `${base}/watch/${e.slug}`,
    hlsUrl: `${base}/live/${e.id}/master.m3u8`,
  };
}

async function withEvents<T>(config: Config, fn: (events: EventService) => Promise<T>): Promise<T> {
  const db = await openStore(config.dataDir);
  try {
    return await fn(new EventService(db));
  } finally {
    await db.destroy();
  }
}

async function main(argv: string[]): Promise<void> {
  const [cmd, sub] = argv;
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(usage);
    return;
  }
  if (cmd === 'start') {
    const { values } = parseArgs({ args: argv.slice(1), options: { role: { type: 'string' } }, strict: true });
    const role = (values.role ?? undefined) as Role | undefined;
    if (role && !roles.includes(role)) throw new UsageError(`--role must be one of ${roles.join(', ')}`);
    const config = loadConfig(process.env, { role });
    if (config.role !== 'all') throw new UsageError(`role "${config.role}" on its own is not available yet; use --role all`);
    const logger = createLogger(config.logLevel);
    const server = await startAllInOne(config, logger);
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      server.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    return;
  }
  if (cmd === 'event' && sub === 'create') {
    const { values } = parseArgs({
      args: argv.slice(2),
      options: { title: { type: 'string' }, description: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    });
    if (!values.title?.trim()) throw new UsageError('--title is required');
    const config = loadConfig();
    const { event, streamKey } = await withEvents(config, (ev) =>
      ev.create({ title: values.title!, description: values.description }),
    );
    const urls = eventUrls(config, event);
    if (values.json) {
      console.log(JSON.stringify({ id: event.id, slug: event.slug, streamKey, ...urls }));
    } else {
      console.log(`event "${event.title}" created (id ${event.id})
  OBS server:   ${urls.rtmpUrl}
  stream key:   ${streamKey}   (shown only now: store it safely)
  WHIP:         ${urls.whipUrl}
  watch:        ${urls.watchUrl}
  HLS:          ${urls.hlsUrl}`);
    }
    return;
  }
  if (cmd === 'event' && sub === 'list') {
    const { values } = parseArgs({ args: argv.slice(2), options: { json: { type: 'boolean' } }, strict: true });
    const config = loadConfig();
    const list = await withEvents(config, (ev) => ev.list());
    if (values.json) console.log(JSON.stringify(list.map((e) => ({ ...e, ...eventUrls(config, e) }))));
    else if (list.length === 0) console.log('no events yet: onair event create --title "…"');
    else for (const e of list) console.log(`${e.id}  ${e.status.padEnd(7)}  ${e.slug}  ${e.title}`);
    return;
  }
  throw new UsageError(`unknown command: ${argv.join(' ')}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`onair: ${err.message}\n\n${usage}`);
    process.exit(2);
  }
  if (err instanceof ConfigError || (err as NodeJS.ErrnoException)?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    console.error(`onair: ${(err as Error).message}`);
    process.exit(2);
  }
  if (err instanceof RangeError) {
    console.error(`onair: ${err.message}`);
    process.exit(2);
  }
  console.error(`onair: ${(err as Error)?.message ?? err}`);
  process.exit(1);
});
