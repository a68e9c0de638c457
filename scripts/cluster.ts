// `npm run cluster [-- --json] [--ingests 2 --origins 3 --edges 2 --controls 1] [--log-level warn] [--dist]`: a real
// onair cluster on this machine (scripts/cluster/cluster.ts) behind HAProxy (deploy/haproxy.cfg); prints its URLs
// (with --json: one JSON line on stdout) and stops everything it started on Ctrl-C (SIGINT) or SIGTERM. The role
// processes' log lines go to stderr, prefixed with the process name (ONAIR_LOG_LEVEL from --log-level, default warn).
import { parseArgs } from 'node:util';
import { clusterLayout, defaultCounts, startCluster, type Cluster, type ClusterCounts } from './cluster/cluster.ts';

const usage = `usage: npm run cluster -- [--json] [--ingests N] [--origins N] [--edges N] [--controls N] [--log-level L] [--dist]
  --json        print one JSON line (balancer URLs, each process's role, name, pid and URL) instead of text
  --ingests …   how many processes of each role (default ${defaultCounts.ingests} ingests, ${defaultCounts.origins} origins, ${defaultCounts.edges} edges, ${defaultCounts.controls} control)
  --log-level   ONAIR_LOG_LEVEL of the role processes, whose logs go to stderr (default warn)
  --dist        run the built CLI (dist/cli/onair.js; npm run build first) instead of the sources`;

/** A count option: a whole number from `min` to 8 (deploy/haproxy.cfg's slots). */
function count(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > 8) throw new RangeError(`--${name} must be a whole number from ${min} to 8`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' },
      ingests: { type: 'string' },
      origins: { type: 'string' },
      edges: { type: 'string' },
      controls: { type: 'string' },
      'log-level': { type: 'string' },
      dist: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const counts: ClusterCounts = {
    ingests: count('ingests', values.ingests, defaultCounts.ingests, 1),
    origins: count('origins', values.origins, defaultCounts.origins, 1),
    edges: count('edges', values.edges, defaultCounts.edges, 1),
    controls: count('controls', values.controls, defaultCounts.controls, 1),
  };
  const say = (line: string) => process.stderr.write(`cluster: ${line}\n`);
  const run: { started?: Promise<Cluster> } = {};
  let stopping = false;
  let stoppingSince = 0;
  const shutdown = (signal: string) => {
    if (stopping) {
      // A terminal's Ctrl-C may reach this process twice (directly and relayed by npm/tsx): only a later one counts.
      if (Date.now() - stoppingSince < 2_000) return;
      say(`${signal} again: killing everything now`);
      process.exit(1); // the exit handler of startCluster SIGKILLs every child
    }
    stopping = true;
    stoppingSince = Date.now();
    say(`${signal}: stopping every process`);
    // While starting: once started (a failed start stops what it started itself).
    (run.started ?? Promise.reject(new Error('not started')))
      .then((c) => c.stop())
      .then(
        () => process.exit(0),
        (err: Error) => {
          say(`stop failed: ${err.message}`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  say(
    `starting Redis, PostgreSQL, ${counts.origins} origins, ${counts.ingests} ingests, ${counts.edges} edges, ${counts.controls} control, HAProxy…`,
  );
  run.started = startCluster({
    layout: clusterLayout(counts),
    logLevel: values['log-level'] ?? 'warn',
    dist: values.dist === true,
    onLog: (name, line) => process.stderr.write(`[${name}] ${line}\n`),
    onEvent: say,
  });
  const cluster = await run.started;
  if (stopping) return; // a signal came while starting: shutdown() stops what started
  const { http, rtmp, redis, database, processes } = cluster;
  if (values.json) {
    console.log(JSON.stringify({ http, rtmp, redis, database, processes }));
    return;
  }
  const rtmpPort = new URL(rtmp.replace(/^rtmp:/, 'http:')).port;
  console.log(`onair cluster up
  player, console, API:  ${http}     (/live/* and /ws → edges, /whip/* → ingests, the rest → control)
  RTMP (OBS server):     ${rtmp}
  Redis:                 ${redis}
  PostgreSQL:            ${database}
  processes:
${processes.map((p) => `    ${p.name.padEnd(10)} pid ${String(p.pid ?? '-').padEnd(8)} ${p.url}${p.originUrl ? `  (origin ${p.originUrl})` : ''}`).join('\n')}
  create an event:
    DATABASE_URL=${database} ONAIR_PUBLIC_URL=${http} ONAIR_RTMP_PORT=${rtmpPort} npx tsx cli/onair.ts event create --title demo
Ctrl-C stops everything.`);
}

main().catch((err: unknown) => {
  if (err instanceof RangeError || (err as NodeJS.ErrnoException)?.code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`cluster: ${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  console.error(`cluster: ${(err as Error)?.message ?? err}`);
  process.exit(1);
});
