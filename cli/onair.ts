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
import { OperatorService, operatorRoles } from '../control/operators.ts';
import type { OperatorRole } from '../lib/store/schema.ts';
import { readPassword } from './read-password.ts';
import { startEdgeRole, startOriginRole, RoleConfigError } from './roles.ts';

const usage = `usage:
  onair start [--role all]              run the server (all roles in one process)
  onair start --role origin             ingest + origin (HLS for edges on ONAIR_ORIGIN_PORT)
  onair start --role edge --origin URL [--origin URL…]
                                        caching HLS edge in front of origins (one worker per core)
  onair event create --title T [--description D] [--latency low|standard] [--json]
                                        create an event; prints its stream key once
                                        (--latency standard: plain HLS, no LL parts)
  onair event list [--json]             list events
  onair operator create --email E --role admin|moderator
                                        create a console operator; the password is
                                        prompted for (or read from stdin's first line)
  onair operator list [--json]          list operators

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
  const db = await openStore(config);
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
    const { values } = parseArgs({
      args: argv.slice(1),
      options: { role: { type: 'string' }, origin: { type: 'string', multiple: true } },
      strict: true,
    });
    const role = (values.role ?? undefined) as Role | undefined;
    if (role && !roles.includes(role)) throw new UsageError(`--role must be one of ${roles.join(', ')}`);
    const config = loadConfig(process.env, { role, originUrls: values.origin });
    const logger = createLogger(config.logLevel);
    let server: { stop(): Promise<void> };
    try {
      if (config.role === 'edge') server = await startEdgeRole(config, logger);
      else if (config.role === 'origin') server = await startOriginRole(config, logger);
      else server = await startAllInOne(config, logger);
    } catch (err) {
      if (err instanceof RoleConfigError) throw new UsageError(err.message);
      throw err;
    }
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
      options: { title: { type: 'string' }, description: { type: 'string' }, latency: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    });
    if (!values.title?.trim()) throw new UsageError('--title is required');
    if (values.latency !== undefined && values.latency !== 'low' && values.latency !== 'standard') {
      throw new UsageError('--latency must be low or standard');
    }
    const config = loadConfig();
    const latencyMode = values.latency ?? config.defaultLatencyMode;
    const { event, streamKey } = await withEvents(config, (ev) =>
      ev.create({ title: values.title!, description: values.description, latencyMode }),
    );
    const urls = eventUrls(config, event);
    if (values.json) {
      console.log(JSON.stringify({ id: event.id, slug: event.slug, streamKey, latencyMode: event.latencyMode, ...urls }));
    } else {
      console.log(`event "${event.title}" created (id ${event.id})
  OBS server:   ${urls.rtmpUrl}
  stream key:   ${streamKey}   (shown only now: store it safely)
  WHIP:         ${urls.whipUrl}
  watch:        ${urls.watchUrl}
  HLS:          ${urls.hlsUrl}   (${event.latencyMode === 'low' ? 'low-latency' : 'standard'} HLS)`);
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
  if (cmd === 'operator' && sub === 'create') {
    const { values } = parseArgs({ args: argv.slice(2), options: { email: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
    if (!values.email?.trim()) throw new UsageError('--email is required');
    if (!operatorRoles.includes(values.role as OperatorRole)) throw new UsageError(`--role must be one of ${operatorRoles.join(', ')}`);
    const password = await readPassword(`password for ${values.email}: `);
    const config = loadConfig();
    const db = await openStore(config);
    try {
      const op = await new OperatorService(db).create({ email: values.email, role: values.role as OperatorRole, password });
      console.log(values.json ? JSON.stringify(op) : `operator ${op.email} (${op.role}) created (id ${op.id})`);
    } catch (err) {
      if ((err as Error).name === 'OperatorExistsError') throw new RangeError((err as Error).message, { cause: err });
      throw err;
    } finally {
      await db.destroy();
    }
    return;
  }
  if (cmd === 'operator' && sub === 'list') {
    const { values } = parseArgs({ args: argv.slice(2), options: { json: { type: 'boolean' } }, strict: true });
    const config = loadConfig();
    const db = await openStore(config);
    try {
      const list = await new OperatorService(db).list();
      if (values.json) console.log(JSON.stringify(list));
      else for (const o of list) console.log(`${o.id}  ${o.role.padEnd(9)}  ${o.disabled ? 'disabled' : 'active  '}  ${o.email}`);
    } finally {
      await db.destroy();
    }
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
