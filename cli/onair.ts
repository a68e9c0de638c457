#!/usr/bin/env node
// The `onair` command: start the server, manage events.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, ConfigError } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { roles, type Role } from '../config/schema.ts';
import { createLogger } from '../lib/logger.ts';
import { openStore } from '../lib/store/db.ts';
import { EventService, LADDER_PRESETS } from '../control/events.ts';
import type { LadderPreset } from '../lib/store/schema.ts';
import { timingOf } from '../config/timing.ts';
import { composeNode } from './compose.ts';
import { OperatorService, operatorRoles } from '../control/operators.ts';
import type { OperatorRole } from '../lib/store/schema.ts';
import { readPassword } from './read-password.ts';
import { RoleConfigError } from './roles.ts';
import { runningServer, storeLabel, writeServerCard } from './server-file.ts';
import { configuredSrtPort, eventUrls, publicBase, srtPublishUrl } from '../control/public-urls.ts';

/** Usage of each command, by `command subcommand`. */
const commandUsage: Record<string, string> = {
  start: `  onair start [--role all]              run the server (all roles in one process)
  onair start --role R[,R…]             cluster roles (REDIS_URL, DATABASE_URL, ONAIR_CLUSTER_SECRET):
                                        ingest (RTMP, WHIP), origin (transcode), edge (HLS, chat),
                                        control (API, console); several may share a process
  onair start --role ingest,origin      without ONAIR_CLUSTER_SECRET: one standalone transcoding node
  onair start --role edge --origin URL [--origin URL…]
                                        caching HLS edge in front of fixed origins (one worker per core)`,
  'event create': `  onair event create --title T [--description D] [--latency low|standard]
                    [--preset standard|passthrough|audio|custom] [--part-target SEC] [--gop SEC] [--json]
                                        create an event; prints its stream key once
                                        (--latency standard: plain HLS, no LL parts;
                                        --preset: its ladder instead of ONAIR_DEFAULT_LADDER_PRESET;
                                        --part-target, --gop: its own part duration and
                                        keyframe interval instead of ONAIR_PART_TARGET_SEC, ONAIR_GOP_SEC)`,
  'event list': `  onair event list [--json]             list events`,
  'operator create': `  onair operator create --email E --role admin|moderator [--json]
                                        create a console operator; the password is
                                        prompted for (or read from stdin's first line)`,
  'operator list': `  onair operator list [--json]          list operators`,
};

const footer = `Configuration comes from ONAIR_* environment variables and an optional
JSON file named by ONAIR_CONFIG (see README.md). The event and operator
commands write to the store the settings name (ONAIR_DATA_DIR or
ONAIR_DATABASE_URL): give them the server's settings. They say on stderr
which store and public URL they use, and warn when no server runs on it.`;

/** Usage of `words`: a command and its subcommand, every subcommand of a command, or everything. */
function usageOf(words: string[] = []): string {
  const all = Object.keys(commandUsage);
  const exact = all.filter((k) => k === words.join(' '));
  const family = all.filter((k) => k === words[0] || k.startsWith(`${words[0]} `));
  const keys = exact.length ? exact : family.length ? family : all;
  return ['usage:', ...keys.map((k) => commandUsage[k]), '', footer].join('\n');
}

/** Whether `cmd` is a command this CLI has. */
const isCommand = (cmd: string): boolean => Object.keys(commandUsage).some((k) => k === cmd || k.startsWith(`${cmd} `));

class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose usage to show. */
    readonly words: string[] = [],
  ) {
    super(message);
  }
}

/** Where the CLI's URLs point: the running server's, when one runs on this store, else this command's settings. */
interface Target {
  publicUrl: string;
  rtmpPort: number;
  srtPort: number | undefined;
}

/**
 * Says on stderr which store this command uses and where its URLs point, and warns when no server runs on this
 * data dir or the one that runs uses another store (then what this command writes is not what that server reads).
 */
function resolveTarget(config: Config, withUrls: boolean): Target {
  const store = storeLabel(config);
  const own: Target = { publicUrl: publicBase(config, config.httpPort), rtmpPort: config.rtmpPort, srtPort: configuredSrtPort(config) };
  const server = runningServer(config.dataDir);
  const say = (line: string) => process.stderr.write(`onair: ${line}\n`);
  if (server === undefined) {
    say(`store: ${store}`);
    say(
      `warning: no onair server is running on data dir ${resolve(config.dataDir)}; this command uses the settings it was given` +
        (withUrls ? ` (public URL ${own.publicUrl}, RTMP port ${own.rtmpPort}): start the server with the same ONAIR_* settings` : ''),
    );
    return own;
  }
  if (server.store !== store) {
    say(`store: ${store}`);
    say(
      `warning: the server running on data dir ${resolve(config.dataDir)} (pid ${server.pid}) uses ${server.store}, not this store: ` +
        "it will not see what this command writes; give this command the server's ONAIR_DATABASE_URL / ONAIR_DATA_DIR",
    );
    return own;
  }
  say(`store: ${store}, used by the running server (pid ${server.pid})${withUrls ? `; public URL ${server.publicUrl}` : ''}`);
  return {
    publicUrl: server.publicUrl,
    rtmpPort: server.rtmpPort,
    srtPort: typeof server.srtPort === 'number' ? server.srtPort : undefined,
  };
}

async function withEvents<T>(config: Config, fn: (events: EventService) => Promise<T>): Promise<T> {
  const db = await openStore(config);
  try {
    return await fn(new EventService(db, { timing: timingOf(config) }));
  } finally {
    await db.destroy();
  }
}

const isHelp = (a: string | undefined) => a === '--help' || a === '-h';

async function main(argv: string[]): Promise<void> {
  const [cmd, sub] = argv;
  if (!cmd || cmd === 'help' || isHelp(cmd)) {
    console.log(usageOf(cmd === 'help' ? argv.slice(1, 3) : []));
    return;
  }
  if (argv.some(isHelp)) {
    // `onair event --help`, `onair event create --help`, …: the command's own usage.
    if (!isCommand(cmd)) throw new UsageError(`unknown command: ${cmd}`);
    console.log(usageOf(sub !== undefined && !sub.startsWith('-') ? [cmd, sub] : [cmd]));
    return;
  }
  if (cmd === 'start') {
    const { values } = parseArgs({
      args: argv.slice(1),
      options: { role: { type: 'string' }, origin: { type: 'string', multiple: true } },
      strict: true,
    });
    const role = values.role?.split(',').map((r) => r.trim()) as Role[] | undefined;
    if (role?.some((r) => !roles.includes(r)))
      throw new UsageError(`--role takes a comma-separated list of ${roles.join(', ')}`, ['start']);
    const config = loadConfig(process.env, { role, originUrls: values.origin });
    const logger = createLogger(config.logLevel);
    // The roles that hold the store tell the CLI where they are (cli/server-file.ts).
    let removeCard = (): void => undefined;
    const cardError = (err: Error) =>
      logger.warn({ err: err.message }, 'cannot write or remove server.json in the data dir; the CLI will not find this server');
    let server: ReturnType<typeof composeNode>;
    try {
      server = composeNode(config, logger);
    } catch (err) {
      if (err instanceof RoleConfigError) throw new UsageError(err.message, ['start']);
      throw err;
    }
    await server.start();
    if (server.role === 'ingest,origin')
      removeCard = writeServerCard(config, { httpPort: server.httpPort, rtmpPort: config.rtmpPort, srtPort: server.srtPort }, cardError);
    else if (server.role === 'all')
      removeCard = writeServerCard(
        config,
        { httpPort: server.httpPort, rtmpPort: server.rtmpPort ?? config.rtmpPort, srtPort: server.srtPort },
        cardError,
      );
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      removeCard();
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
      options: {
        title: { type: 'string' },
        description: { type: 'string' },
        latency: { type: 'string' },
        preset: { type: 'string' },
        'part-target': { type: 'string' },
        gop: { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
    });
    if (!values.title?.trim()) throw new UsageError('--title is required', ['event', 'create']);
    if (values.latency !== undefined && values.latency !== 'low' && values.latency !== 'standard') {
      throw new UsageError('--latency must be low or standard', ['event', 'create']);
    }
    const ladderPreset = values.preset as LadderPreset | undefined;
    if (ladderPreset !== undefined && !LADDER_PRESETS.includes(ladderPreset)) {
      throw new UsageError(`--preset must be one of ${LADDER_PRESETS.join(', ')}`, ['event', 'create']);
    }
    const seconds = (flag: string, v: string | undefined): number | undefined => {
      if (v === undefined) return undefined;
      if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`--${flag} takes seconds, e.g. 0.5`, ['event', 'create']);
      return Number(v);
    };
    const partTargetSec = seconds('part-target', values['part-target']);
    const gopSec = seconds('gop', values.gop);
    const config = loadConfig();
    const target = resolveTarget(config, true);
    const latencyMode = values.latency ?? config.defaultLatencyMode;
    // EventService checks the timing against this node's settings (a RangeError names the rule).
    const { event, streamKey } = await withEvents(config, (ev) =>
      ev.create({ title: values.title!, description: values.description, latencyMode, ladderPreset, partTargetSec, gopSec }),
    );
    const urls = eventUrls(target, event);
    const srtUrl = srtPublishUrl(target, streamKey);
    if (values.json) {
      console.log(
        JSON.stringify({
          id: event.id,
          slug: event.slug,
          streamKey,
          latencyMode: event.latencyMode,
          ladderPreset: event.ladderPreset,
          partTargetSec: event.partTargetSec,
          gopSec: event.gopSec,
          ...urls,
          ...(srtUrl ? { srtUrl } : {}),
        }),
      );
    } else {
      const timingNote =
        (event.partTargetSec === null ? '' : `, ${event.partTargetSec} s parts`) + (event.gopSec === null ? '' : `, ${event.gopSec} s GOP`);
      console.log(`event "${event.title}" created (id ${event.id})
  OBS server:   ${urls.rtmpUrl}
  stream key:   ${streamKey}   (shown only now: store it safely)
  WHIP:         ${urls.whipUrl}${srtUrl ? `\n  SRT:          ${srtUrl}   (carries the stream key)` : ''}
  watch:        ${urls.watchUrl}
  HLS:          ${urls.hlsUrl}   (${event.latencyMode === 'low' ? 'low-latency' : 'standard'} HLS${timingNote})`);
    }
    return;
  }
  if (cmd === 'event' && sub === 'list') {
    const { values } = parseArgs({ args: argv.slice(2), options: { json: { type: 'boolean' } }, strict: true });
    const config = loadConfig();
    const target = resolveTarget(config, values.json === true);
    const list = await withEvents(config, (ev) => ev.list());
    if (values.json) console.log(JSON.stringify(list.map((e) => ({ ...e, ...eventUrls(target, e) }))));
    else if (list.length === 0) console.log('no events yet: onair event create --title "…"');
    else
      for (const e of list) {
        const refused = e.sourceRefusal ? `  (publisher refused: ${e.sourceRefusal.reason})` : '';
        console.log(`${e.id}  ${e.status.padEnd(7)}  ${e.slug}  ${e.title}${refused}`);
      }
    return;
  }
  if (cmd === 'operator' && sub === 'create') {
    const { values } = parseArgs({
      args: argv.slice(2),
      options: { email: { type: 'string' }, role: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
    });
    if (!values.email?.trim()) throw new UsageError('--email is required', ['operator', 'create']);
    if (!operatorRoles.includes(values.role as OperatorRole))
      throw new UsageError(`--role must be one of ${operatorRoles.join(', ')}`, ['operator', 'create']);
    const config = loadConfig();
    resolveTarget(config, false);
    const password = await readPassword(`password for ${values.email}: `);
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
    resolveTarget(config, false);
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
  const known = isCommand(cmd);
  throw new UsageError(sub === undefined && known ? `${cmd} needs a subcommand` : `unknown command: ${argv.join(' ')}`, known ? [cmd] : []);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`onair: ${err.message}\n\n${usageOf(err.words)}`);
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
