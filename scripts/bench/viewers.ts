// bench:viewers — simulated LL-HLS viewers (blocking playlist reload for the next part, then the new parts, as hls.js
// does) against ONE onair edge process in front of a live origin, stepping the audience up. Per step: parts delivered
// late (more than one part target after the origin listed them), p99 delivery delay, edge CPU and RSS, origin
// requests/s. Clients run in separate processes. Prints one JSON line.
//   npm run bench:viewers [-- --steps 500,1000,2000,4000 --step-sec 20 --max-sec 170 --clients 3 --rendition 360p]
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { publishLive, startCountingProxy, startOnair } from './edge-fixtures.ts';

/** What a client process is asked to do. */
interface ClientJob {
  base: string;
  dir: string;
  viewers: number;
  durationMs: number;
}

/** What a client process reports: delivery times per part URI, errors, requests. */
interface ClientReport {
  /** When the client's viewers started (ms since epoch); parts older than this plus a warm-up are not judged. */
  startedAt: number;
  delivered: Record<string, number[]>;
  errors: number;
  requests: number;
}

/** Parts that appeared in a client's first seconds (connections opening, JIT warming) are not judged. */
const WARMUP_MS = 3_000;
const PART_RE = /#EXT-X-PART:[^\n]*URI="(part-(\d+)\.(\d+)\.m4s)"/g;
const HINT_RE = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-(\d+)\.(\d+)\.m4s"/;

/** Parts listed in a playlist, in order, as [uri, msn, index]. */
function partsOf(text: string): [string, number, number][] {
  return [...text.matchAll(PART_RE)].map((m) => [m[1]!, Number(m[2]), Number(m[3])]);
}

/** One client process: `viewers` LL-HLS viewers sharing one keep-alive pool to the edge. */
async function runClient(job: ClientJob): Promise<ClientReport> {
  const pool = new Pool(job.base, { connections: job.viewers * 2, headersTimeout: 20_000, bodyTimeout: 20_000 });
  const delivered: Record<string, number[]> = {};
  let errors = 0;
  let requests = 0;
  const startedAt = Date.now();
  const deadline = startedAt + job.durationMs;
  const get = async (path: string): Promise<{ status: number; body: Buffer }> => {
    requests++;
    const r = await pool.request({ path, method: 'GET' });
    const body = Buffer.from(await r.body.arrayBuffer());
    if (r.statusCode !== 200) errors++;
    return { status: r.statusCode, body };
  };
  const viewer = async (i: number): Promise<void> => {
    // Joining viewers spread over one part target, like an audience arriving.
    await new Promise((r) => setTimeout(r, (i * 500) / job.viewers));
    let last: [number, number] = [-1, -1];
    let next: [number, number] | undefined;
    let skip = false;
    while (Date.now() < deadline) {
      try {
        // Like hls.js: blocking reloads ask for a delta update (_HLS_skip) once the playlist offers one.
        const path = next
          ? `${job.dir}index.m3u8?_HLS_msn=${next[0]}&_HLS_part=${next[1]}${skip ? '&_HLS_skip=YES' : ''}`
          : `${job.dir}index.m3u8`;
        const pl = await get(path);
        if (pl.status !== 200) {
          await new Promise((r) => setTimeout(r, 200));
          next = undefined;
          continue;
        }
        const text = pl.body.toString();
        skip = text.includes('CAN-SKIP-UNTIL=');
        const parts = partsOf(text);
        if (last[0] < 0 && parts.length > 0) {
          const tail = parts[parts.length - 1]!;
          last = [tail[1], tail[2]];
        }
        for (const [uri, msn, idx] of parts) {
          if (msn < last[0] || (msn === last[0] && idx <= last[1])) continue;
          const r = await get(job.dir + uri);
          if (r.status === 200) (delivered[uri] ??= []).push(Date.now());
          last = [msn, idx];
        }
        const h = HINT_RE.exec(text);
        next = h ? [Number(h[1]), Number(h[2])] : undefined;
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  await Promise.all(Array.from({ length: job.viewers }, (_, i) => viewer(i)));
  await pool.close();
  return { startedAt, delivered, errors, requests };
}

if (process.argv[2] === '--client') {
  const job = JSON.parse(process.argv[3]!) as ClientJob;
  const report = await runClient(job);
  process.send!(report, () => process.exit(0));
} else {
  await main();
}

function cpuSec(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The PART-TARGET of a live media playlist, in ms. */
async function livePartTargetMs(url: string): Promise<number> {
  const text = await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  const m = /#EXT-X-PART-INF:PART-TARGET=([\d.]+)/.exec(text);
  if (!m) throw new Error(`no EXT-X-PART-INF in ${url}`);
  return Number(m[1]) * 1000;
}

/** Records when each part first appears at the origin, by blocking reloads straight to it. */
function watchOrigin(originBase: string, dir: string): { seen: Map<string, number>; stop(): void } {
  const seen = new Map<string, number>();
  let running = true;
  void (async () => {
    let next: string | undefined;
    while (running) {
      try {
        const r = await fetch(originBase + dir + 'index.m3u8' + (next ?? ''), { signal: AbortSignal.timeout(10_000) });
        const text = await r.text();
        const now = Date.now();
        for (const [uri] of partsOf(text)) if (!seen.has(uri)) seen.set(uri, now);
        const h = HINT_RE.exec(text);
        next = h ? `?_HLS_msn=${h[1]}&_HLS_part=${h[2]}` : undefined;
        if (!h) await new Promise((res) => setTimeout(res, 100));
      } catch {
        next = undefined;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  })();
  return { seen, stop: () => (running = false) };
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      steps: { type: 'string', default: '500,1000,2000,4000,8000' },
      'step-sec': { type: 'string', default: '20' },
      'max-sec': { type: 'string', default: '170' },
      clients: { type: 'string', default: '3' },
      rendition: { type: 'string', default: '360p' },
    },
  });
  const steps = flags.steps.split(',').map(Number);
  const stepMs = Number(flags['step-sec']) * 1000;
  const budgetMs = Number(flags['max-sec']) * 1000;
  const clientProcs = Number(flags.clients);
  const rendition = flags.rendition;
  const started = Date.now();
  const cleanup: (() => Promise<void> | void)[] = [];
  const hardStop = setTimeout(() => {
    console.error('bench:viewers: time limit reached');
    process.exit(1);
  }, budgetMs + 180_000);
  hardStop.unref();
  try {
    const origin = await startOnair({ ONAIR_ROLE: 'ingest,origin' });
    cleanup.push(() => origin.stop());
    const originBase = `http://127.0.0.1:${origin.originPort}`;
    // 640x360 source: the ladder keeps only its 360p rung, leaving the machine's CPU to the edge and the viewers.
    const live = await publishLive(origin, originBase, { width: 640, height: 360, fps: 30, videoKbps: 900, rendition });
    cleanup.push(() => live.stop());
    const proxy = await startCountingProxy(originBase);
    cleanup.push(() => proxy.stop());
    const edge = await startOnair({ ONAIR_ROLE: 'edge', ONAIR_EDGE_WORKERS: '1', ONAIR_ORIGIN_URLS: proxy.url });
    cleanup.push(() => edge.stop());
    const dir = `/live/${live.id}/${rendition}/`;
    const watcher = watchOrigin(originBase, dir);
    // Late = delivered more than one part target after the origin listed the part: the live playlist's PART-TARGET.
    const partTargetMs = await livePartTargetMs(originBase + dir + 'index.m3u8');
    cleanup.push(() => watcher.stop());

    const results: Record<string, unknown>[] = [];
    let best = 0;
    for (const viewers of steps) {
      if (Date.now() - started + stepMs + 10_000 > budgetMs) break;
      const per = Math.ceil(viewers / clientProcs);
      const cpu0 = cpuSec(edge.child.pid!);
      const up0 = proxy.total();
      const t0 = Date.now();
      let rssPeak = 0;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(edge.child.pid!))), 1_000);
      const reports = await Promise.all(
        Array.from({ length: clientProcs }, () => {
          const job: ClientJob = { base: edge.base, dir, viewers: per, durationMs: stepMs };
          const child = fork(import.meta.filename, ['--client', JSON.stringify(job)], { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
          return new Promise<ClientReport>((resolve, reject) => {
            child.once('message', (m) => resolve(m as ClientReport));
            child.once('exit', (code) => reject(new Error(`client exited ${code}`)));
            setTimeout(() => child.kill('SIGKILL'), stepMs + 60_000).unref();
          });
        }),
      );
      clearInterval(sampler);
      const elapsedSec = (Date.now() - t0) / 1000;
      const cpuCores = (cpuSec(edge.child.pid!) - cpu0) / elapsedSec;
      const originRps = (proxy.total() - up0) / elapsedSec;
      const delays: number[] = [];
      let errors = 0;
      let requests = 0;
      for (const r of reports) {
        errors += r.errors;
        requests += r.requests;
        for (const [uri, times] of Object.entries(r.delivered)) {
          const at = watcher.seen.get(uri);
          if (at === undefined || at < r.startedAt + WARMUP_MS) continue;
          for (const t of times) delays.push(t - at);
        }
      }
      delays.sort((a, b) => a - b);
      const late = delays.filter((d) => d > partTargetMs).length;
      const latePct = delays.length ? Math.round((late / delays.length) * 10_000) / 100 : 100;
      const step = {
        viewers: per * clientProcs,
        partsDelivered: delays.length,
        latePct,
        p50DelayMs: Math.round(percentile(delays, 50)),
        p99DelayMs: Math.round(percentile(delays, 99)),
        errors,
        edgeRps: Math.round(requests / elapsedSec),
        edgeCpuCores: Math.round(cpuCores * 100) / 100,
        edgeRssMb: rssPeak,
        originRps: Math.round(originRps * 10) / 10,
      };
      results.push(step);
      console.error(`bench:viewers: ${JSON.stringify(step)}`);
      if (latePct < 1 && delays.length > 0) best = step.viewers;
      if (latePct > 20) break;
    }
    console.log(
      JSON.stringify({
        bench: 'viewers',
        note: 'rough: 2 shared cores; client processes, the origin, its ffmpeg and the edge share them',
        rendition,
        partTargetMs,
        stepSec: stepMs / 1000,
        steps: results,
        maxViewersUnder1PctLate: best,
      }),
    );
  } finally {
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
    clearTimeout(hardStop);
  }
}
