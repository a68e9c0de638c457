// bench:recording — what recording costs while live, and how fast one edge process serves recorded segments. One
// all-in-one server, two events fed the same test stream in alternating phases: one recorded, one not
// (`recording: false`), so both see the same machine at about the same time. Per phase: the server process's CPU
// (node: the recorder and its write queue live there; ffmpeg's ladder is the same either way and is not counted),
// the bytes it wrote to disk (/proc/<pid>/io write_bytes) and the bytes that landed in the recording storage, and the part lag
// histogram (onair_origin_part_lag_seconds) read before and after: its mean, and its p95 interpolated within the
// histogram's buckets (0.05/0.1/0.2/0.3/0.5 s…, so the p95 is only as fine as its bucket). Then the recorded event is
// offline and replays: concurrent GETs (undici, --connections) of its recorded segments through the server's edge
// for --vod-sec, first a cold pass (every segment read from storage once), then the load. Prints one JSON line.
//   npm run bench:recording [-- --phase-sec 20 --rounds 2 --vod-sec 10 --connections 32]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { runCli, startServer, type ServerUnderTest } from '../../test/support/onair-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { publishTestStream } from '../publish-test-stream.ts';
import { cpuSeconds, machineMeter } from './proc.ts';
import { measureDvrPlaylistBytes } from './recording-dvr.ts';

const { values: flags } = parseArgs({
  options: {
    'phase-sec': { type: 'string', default: '20' },
    rounds: { type: 'string', default: '2' },
    'vod-sec': { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'no-dvr': { type: 'boolean' },
  },
});
const phaseSec = Number(flags['phase-sec']);
const rounds = Number(flags.rounds);
const vodSec = Number(flags['vod-sec']);
const connections = Number(flags.connections);
/** Publishing settles (ffmpeg started, first segments) before a phase is measured. */
const WARMUP_SEC = 4;
const LADDER = '[{"name":"480p","height":480,"videoKbps":1200},{"name":"240p","height":240,"videoKbps":300}]';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const r1 = (n: number) => Math.round(n * 10) / 10;
const r3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * Bytes the process caused to be written to storage devices (/proc/<pid>/io write_bytes: the block layer, so not its
 * pipe to ffmpeg or its sockets, which `wchar` would count; the store's fsync makes the recording's writes show at once).
 */
function writeBytes(pid: number): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
}

/** Total size of the files under `dir` (0 when it does not exist). */
function treeBytes(dir: string): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += treeBytes(p);
    else if (e.isFile()) n += statSync(p, { throwIfNoEntry: false })?.size ?? 0;
  }
  return n;
}

/** The part-lag histogram's cumulative buckets (le → count), sum and count. */
async function lagHistogram(base: string): Promise<{ buckets: [number, number][]; sum: number; count: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const buckets: [number, number][] = [];
  for (const m of text.matchAll(/^onair_origin_part_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm)) {
    buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  const value = (s: string) => Number(new RegExp(`^onair_origin_part_lag_seconds_${s} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { buckets, sum: value('sum'), count: value('count') };
}

type Lag = Awaited<ReturnType<typeof lagHistogram>>;

/** Adds the observations between two readings to `acc` (bucket by bucket). */
function addLag(acc: Lag, before: Lag, after: Lag): void {
  after.buckets.forEach(([le, n], i) => {
    const prev = before.buckets[i]?.[1] ?? 0;
    const slot = acc.buckets[i];
    if (slot) slot[1] += n - prev;
    else acc.buckets.push([le, n - prev]);
  });
  acc.sum += after.sum - before.sum;
  acc.count += after.count - before.count;
}

/** p-quantile (ms) of cumulative buckets, linear within the bucket it falls in. */
function quantileMs(h: Lag, p: number): number | null {
  if (h.count <= 0) return null;
  const rank = p * h.count;
  let lo = 0;
  let below = 0;
  for (const [le, n] of h.buckets) {
    if (n >= rank) {
      if (!Number.isFinite(le)) return r1(lo * 1000);
      return r1((lo + ((le - lo) * (rank - below)) / Math.max(1, n - below)) * 1000);
    }
    lo = le;
    below = n;
  }
  return null;
}

interface PhaseTotals {
  mediaSec: number;
  cpuSec: number;
  diskBytes: number;
  storageBytes: number;
  lag: Lag;
}

const newTotals = (): PhaseTotals => ({ mediaSec: 0, cpuSec: 0, diskBytes: 0, storageBytes: 0, lag: { buckets: [], sum: 0, count: 0 } });

async function main(): Promise<void> {
  const machine = machineMeter();
  const server: ServerUnderTest = await startServer({ ONAIR_LADDER: LADDER, ONAIR_RECONNECT_WINDOW_SEC: '1' });
  let result: Record<string, unknown> | undefined;
  try {
    const pid = server.child.pid!;
    const email = 'bench@example.com';
    const password = 'correct horse battery staple';
    const made = await runCli(server, ['operator', 'create', '--email', email, '--role', 'admin'], `${password}\n`);
    if (made.code !== 0) throw new Error(made.out);
    const login = await fetch(`${server.base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
    const api = async (method: string, path: string, body?: unknown, auth: Record<string, string> = {}) => {
      const res = await fetch(`${server.base}/api/v1${path}`, {
        method,
        headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    const token = (await api('POST', '/auth/tokens', { name: 'bench' }, { cookie, 'x-csrf-token': csrf })).token as string;
    const auth = { authorization: `Bearer ${token}` };
    const make = async (title: string, recording: boolean) => {
      const ev = (await api('POST', '/events', { title, recording }, auth)).event as { id: string; hlsUrl: string };
      const key = (await api('POST', `/events/${ev.id}/stream-key/reveal`, undefined, auth)).streamKey as string;
      return { ...ev, key, recording };
    };
    const recorded = await make('Recorded', true);
    const plain = await make('Unrecorded', false);
    const totals = { on: newTotals(), off: newTotals() };
    const storageDir = join(server.dataDir, 'recordings');

    for (let round = 0; round < rounds; round++) {
      // Alternate which goes first, so that neither always runs on a warmer (or busier) machine.
      const order = round % 2 === 0 ? [recorded, plain] : [plain, recorded];
      for (const ev of order) {
        const publisher = publishTestStream({
          url: `rtmp://127.0.0.1:${server.rtmpPort}/live/${ev.key}`,
          durationSec: WARMUP_SEC + phaseSec + 2,
          width: 854,
          height: 480,
          videoKbps: 1500,
        });
        const master = new URL(ev.hlsUrl, server.base).href;
        await waitFor('live', async () => ((await fetch(master)).status === 200 ? true : undefined), 30_000, 200);
        await sleep(WARMUP_SEC * 1000);
        const cpu0 = cpuSeconds(pid)!;
        const w0 = writeBytes(pid);
        const s0 = treeBytes(storageDir);
        const l0 = await lagHistogram(server.base);
        const t0 = performance.now();
        await sleep(phaseSec * 1000);
        const t = totals[ev.recording ? 'on' : 'off'];
        t.mediaSec += (performance.now() - t0) / 1000;
        t.cpuSec += cpuSeconds(pid)! - cpu0;
        t.diskBytes += writeBytes(pid) - w0;
        t.storageBytes += treeBytes(storageDir) - s0;
        addLag(t.lag, l0, await lagHistogram(server.base));
        const code = await publisher.done;
        if (code !== 0) throw new Error(`publisher exited ${code}`);
        // Offline (the reconnect window is 1 s) before the next phase starts.
        await waitFor(
          'offline',
          async () => {
            const s = (await api('GET', `/events/${ev.id}/status`, undefined, auth)) as { status?: string };
            return s.status !== 'live' ? true : undefined;
          },
          20_000,
          250,
        );
      }
    }

    const live = (t: PhaseTotals) => ({
      mediaSec: r1(t.mediaSec),
      nodeCpuPct: r1((100 * t.cpuSec) / t.mediaSec),
      diskWriteBytesPerSec: Math.round(t.diskBytes / t.mediaSec),
      storageBytesPerSec: Math.round(t.storageBytes / t.mediaSec),
      partLagMeanMs: t.lag.count > 0 ? r1((t.lag.sum / t.lag.count) * 1000) : null,
      partLagP95Ms: quantileMs(t.lag, 0.95),
      parts: t.lag.count,
    });
    const on = live(totals.on);
    const off = live(totals.off);

    // The recorded event is offline: its newest recording replays through the edge. All its segments, every rendition.
    await waitFor(
      'recording ready',
      async () => {
        const r = ((await api('GET', `/recordings?eventId=${recorded.id}`, undefined, auth)).recordings as { status: string }[])[0];
        return r?.status === 'ready' ? true : undefined;
      },
      30_000,
      500,
    );
    const master = new URL(recorded.hlsUrl, server.base);
    const variants = (await (await fetch(master)).text()).split('\n').filter((l) => l.endsWith('.m3u8'));
    const urls: string[] = [];
    for (const v of variants) {
      const pl = new URL(v, master);
      for (const line of (await (await fetch(pl)).text()).split('\n')) if (line.startsWith('seg-')) urls.push(new URL(line, pl).href);
    }
    if (urls.length === 0) throw new Error('the recording has no segments');
    const agent = new Agent({ connections, pipelining: 1 });
    const get = async (url: string): Promise<number> => {
      const r = await request(url, { dispatcher: agent });
      let n = 0;
      for await (const c of r.body) n += (c as Buffer).length;
      if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode}`);
      return n;
    };
    // Cold: every segment once, read from storage by the edge's replay (then cached by the edge).
    const coldStart = performance.now();
    let coldBytes = 0;
    for (const u of urls) coldBytes += await get(u);
    const coldSec = (performance.now() - coldStart) / 1000;
    // Load: `connections` concurrent loops over the segments for vodSec.
    const latencies: number[] = [];
    let bytes = 0;
    const cpu0 = cpuSeconds(pid)!;
    const client0 = process.cpuUsage();
    const loadStart = performance.now();
    const until = loadStart + vodSec * 1000;
    await Promise.all(
      Array.from({ length: connections }, async (_, i) => {
        for (let k = i; performance.now() < until; k++) {
          const t = performance.now();
          const n = await get(urls[k % urls.length]!);
          bytes += n;
          latencies.push(performance.now() - t);
        }
      }),
    );
    const loadSec = (performance.now() - loadStart) / 1000;
    const serverCpu = cpuSeconds(pid)! - cpu0;
    const client = process.cpuUsage(client0);
    await agent.close();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => r1(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!);
    const vod = {
      segments: urls.length,
      meanSegmentBytes: Math.round(coldBytes / urls.length),
      coldPassSegmentsPerSec: r1(urls.length / coldSec),
      connections,
      seconds: r1(loadSec),
      requestsPerSec: Math.round(latencies.length / loadSec),
      megabytesPerSec: r1(bytes / loadSec / 1e6),
      p50Ms: pct(0.5),
      p99Ms: pct(0.99),
      serverCpuPct: r1((100 * serverCpu) / loadSec),
      clientCpuPct: r1((100 * (client.user + client.system)) / 1e6 / loadSec),
    };

    const { stealPct, idlePct } = machine.read();
    result = {
      bench: 'recording',
      ladder: JSON.parse(LADDER) as unknown,
      source: '854x480 30 fps 1500 kb/s',
      phaseSec,
      rounds,
      live: {
        recorded: on,
        unrecorded: off,
        recordingAdds: {
          nodeCpuPct: r1(on.nodeCpuPct - off.nodeCpuPct),
          diskWriteBytesPerSec: on.diskWriteBytesPerSec - off.diskWriteBytesPerSec,
          storageBytesPerSec: on.storageBytesPerSec - off.storageBytesPerSec,
          partLagMeanMs: on.partLagMeanMs !== null && off.partLagMeanMs !== null ? r1(on.partLagMeanMs - off.partLagMeanMs) : null,
          partLagP95Ms: on.partLagP95Ms !== null && off.partLagP95Ms !== null ? r1(on.partLagP95Ms - off.partLagP95Ms) : null,
        },
        partLagP95WithinBudget: on.partLagP95Ms !== null && off.partLagP95Ms !== null ? on.partLagP95Ms - off.partLagP95Ms <= 20 : null,
      },
      vodThroughEdge: vod,
      // Over the live phases and the edge load, all cores: stolen by the hypervisor, and left idle (0: saturated).
      machine: { stealPct, idlePct },
    };
  } finally {
    await server.stop();
  }
  // DVR playlist bytes per reload, with and without delta updates (its own server, after this one stopped).
  const dvr = flags['no-dvr'] ? null : await measureDvrPlaylistBytes();
  console.log(JSON.stringify({ ...result, dvr, seconds: r3(performance.now() / 1000) }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
