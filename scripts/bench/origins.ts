// The origin pool under load (issue 12): K concurrent small events published into a local cluster (3 origins,
// 2 ingests, 2 edges, 1 control behind HAProxy), each from an OBS-like 640x360 ffmpeg publisher through the balancer.
//   npm run bench:origins [-- --events 6] [--capacity 2] [--replicas 2] [--window 20]
// Defaults: every origin takes ONAIR_ORIGIN_CAPACITY=2 replicas and every event gets ONAIR_REPLICAS=2, so the pool
// (3 x 2 = 6 replica slots) holds 3 events and K=6 fills it: the last publishes are refused (pool_full). With
// --replicas 1 the same pool holds 6 events (K=7 to see a refusal). Reports:
//   placement     replicas per origin (most vs least loaded), from GET /api/v1/events/:id's placement
//   refused       publishes that were never placed, with ffmpeg's last words and the ingests' log lines saying why
//   cpu           each origin's CPU (its process and its ffmpeg children, /proc/<pid>/stat) over a steady window,
//                 per placed event and per replica
//   failover      the stall one Chromium viewer (the watch page) saw while the primary origin of its event was killed
// plus the CPU the hypervisor stole during the run. Last stdout line: one JSON object. Loopback only.
import { parseArgs } from 'node:util';
import { launchChromium } from '../../test/support/chromium.ts';
import { publishUrl, signInAdmin, type AdminApi, type ApiEventView } from '../../test/faults/api.ts';
import { descendants, killNode, processForNode, startFaultCluster, type FaultCluster } from '../../test/faults/cluster.ts';
import { startReconnectingPublisher, type ReconnectingPublisher } from '../../test/faults/publisher.ts';
import { ensurePlayerBuilt, openViewer, type Viewer } from '../../test/faults/viewer.ts';
import { cpuSeconds, machineMeter } from './proc.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '6' },
    capacity: { type: 'string', default: '2' },
    replicas: { type: 'string', default: '2' },
    window: { type: 'string', default: '20' },
  },
  strict: true,
});
const K = Number(values.events);
const capacity = Number(values.capacity);
const replicas = Number(values.replicas);
const windowSec = Number(values.window);
if (![K, capacity, replicas].every((n) => Number.isInteger(n) && n >= 1 && n <= 20) || !(windowSec >= 5 && windowSec <= 300)) {
  console.error('bench:origins: --events, --capacity and --replicas take whole numbers from 1 to 20, --window 5-300 seconds');
  process.exit(2);
}

const started = Date.now();
const meter = machineMeter();
const log = (msg: string) => process.stderr.write(`bench:origins ${((Date.now() - started) / 1000).toFixed(1)}s: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Ingest log lines about placement and refusals, by process. */
const refusalLines: string[] = [];

let cluster: FaultCluster | undefined;
let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
let viewer: Viewer | undefined;
const publishers: ReconnectingPublisher[] = [];
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await viewer?.close();
    await chromium?.close();
    for (const p of publishers) await p.stop().catch(() => undefined);
    await cluster?.stop().catch((err: Error) => log(`cluster stop: ${err.message}`));
  })();
  return cleaning;
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

/** CPU seconds of an origin process and its descendants (ffmpeg transcoders), by pid. */
function treeCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of [pid, ...descendants(pid)]) {
    const s = cpuSeconds(p);
    if (s !== undefined) out.set(p, s);
  }
  return out;
}

async function placementOf(admin: AdminApi, id: string): Promise<ApiEventView['placement']> {
  return (await admin.getEvent(id).catch(() => undefined))?.placement ?? undefined;
}

try {
  ensurePlayerBuilt();
  log(`starting the cluster (3 origins, capacity ${capacity}, R=${replicas})`);
  cluster = await startFaultCluster({
    logLevel: 'info',
    env: { ONAIR_ORIGIN_CAPACITY: String(capacity), ONAIR_REPLICAS: String(replicas) },
    onLog: (name, line) => {
      if (name.startsWith('ingest') && /pool_full|no_origins|refus|capacity|full/i.test(line))
        refusalLines.push(`[${name}] ${line.slice(0, 400)}`);
    },
    onEvent: (m) => log(`cluster: ${m}`),
  });
  const c = cluster;
  const controlName = c.processes.find((p) => p.role === 'control' || p.name.startsWith('control-'))!.name;
  const admin = await signInAdmin(c.http, c.envOf(controlName));

  // K events, published one after the other (2 s apart, as a real schedule would not start them all at once).
  const events: { id: string; slug: string; publisher: ReconnectingPublisher }[] = [];
  for (let i = 1; i <= K; i++) {
    const made = await admin.createEvent(`bench origins ${i}`);
    const publisher = startReconnectingPublisher({ url: publishUrl(c.rtmp, made.streamKey) });
    publishers.push(publisher);
    events.push({ id: made.event.id, slug: made.event.slug, publisher });
    await sleep(2000);
  }
  // Settle: every publish either placed or refused (a refused one keeps retrying, as OBS does).
  await sleep(10_000);
  const placements = await Promise.all(events.map((e) => placementOf(admin, e.id)));
  const placed = events.filter((_, i) => placements[i]);
  const refused = events
    .map((e, i) => ({ e, p: placements[i] }))
    .filter(({ p }) => !p)
    .map(({ e }) => ({
      event: e.id,
      attempts: e.publisher.attempts.length,
      ffmpeg: e.publisher.attempts[e.publisher.attempts.length - 1]?.stderr.trim().split('\n').slice(-2).join(' | ') ?? '',
    }));
  // Refused publishers stop retrying now: their reconnect loop would only add load to the CPU window.
  for (const [i, e] of events.entries()) if (!placements[i]) await e.publisher.stop();

  const perOrigin: Record<string, number> = {};
  for (const p of c.processes.filter((x) => x.role === 'origin')) perOrigin[p.name] = 0;
  for (const o of placements.flatMap((p) => p?.origins ?? [])) {
    const name = processForNode(c, o)?.name ?? o.id;
    perOrigin[name] = (perOrigin[name] ?? 0) + 1;
  }
  const loads = Object.values(perOrigin);
  log(`placed ${placed.length}/${K}: ${JSON.stringify(perOrigin)}`);

  // Origin CPU over a steady window.
  const origins = c.processes.filter((p) => p.role === 'origin' && p.pid !== undefined);
  const before = origins.map((o) => treeCpu(o.pid!));
  const t0 = Date.now();
  await sleep(windowSec * 1000);
  const elapsed = (Date.now() - t0) / 1000;
  const cpuByOrigin: Record<string, number> = {};
  origins.forEach((o, i) => {
    const after = treeCpu(o.pid!);
    let used = 0;
    for (const [pid, s] of after) used += s - (before[i]!.get(pid) ?? 0);
    cpuByOrigin[o.name] = Math.round((used / elapsed) * 100) / 100;
  });
  const totalCores = Object.values(cpuByOrigin).reduce((a, b) => a + b, 0);
  const replicaCount = placements.reduce((n, p) => n + (p?.origins.length ?? 0), 0);

  // A viewer on the first placed event; its primary origin killed mid-run.
  let failover: Record<string, unknown> = { skipped: 'no event was placed' };
  const target = placed[0];
  if (target) {
    chromium = await launchChromium();
    viewer = await openViewer(chromium.browser, `${c.http}/watch/${target.slug}`);
    await viewer.waitPlaying(60_000);
    await sleep(3000);
    const p = await placementOf(admin, target.id);
    const primary = p?.origins[0];
    const proc = primary ? processForNode(c, primary) : undefined;
    if (!proc) failover = { skipped: `no process for the primary origin ${JSON.stringify(primary)}` };
    else {
      const from = viewer.mark('kill');
      await killNode(c, proc.name);
      await sleep(15_000);
      const s = await viewer.snapshot(from);
      failover = {
        killed: proc.name,
        replicas: p!.origins.length,
        stalls: s.stalls,
        longestStallSec: s.longestStallSec,
        totalStallSec: s.totalStallSec,
        stallList: s.stallList,
        fatalErrors: s.fatalErrors,
        discontinuities: s.discontinuities,
        stalledAtEnd: s.stalledAtEnd,
        placementAfter: await placementOf(admin, target.id),
      };
    }
  }

  const { stealPct, idlePct } = meter.read();
  console.log(
    JSON.stringify({
      events: K,
      capacity,
      replicas,
      placedEvents: placed.length,
      placement: { perOrigin, mostLoaded: Math.max(...loads), leastLoaded: Math.min(...loads) },
      refused: { count: refused.length, publishes: refused, ingestLog: refusalLines.slice(-10) },
      cpu: {
        windowSec: Math.round(elapsed),
        coresByOrigin: cpuByOrigin,
        coresPerEvent: placed.length ? Math.round((totalCores / placed.length) * 100) / 100 : null,
        coresPerReplica: replicaCount ? Math.round((totalCores / replicaCount) * 100) / 100 : null,
      },
      failover,
      stealPct,
      idlePct,
      durationSec: Math.round((Date.now() - started) / 1000),
    }),
  );
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  await cleanup();
  process.exit(1);
}
await cleanup();
