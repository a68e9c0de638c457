// bench:transcode — cost of the default ladder (preset `standard`: the source's H.264 copied plus encoded rungs below
// it) against the ladder before presets (`custom`: every ONAIR_LADDER rung encoded), in the same run, on one OBS-like
// source (--source 720p30 or 1080p60). For each ladder:
//  1. live: the real all-in-one server ingests the source over RTMP in real time for --duration s while a Chromium
//     viewer plays the top rendition (the source rendition for `standard`); ffmpeg and node CPU per media second and
//     node RSS are sampled from /proc, the part lag (onair_origin_part_lag_seconds) read from /metrics;
//  2. capacity: the same ffmpeg command on the same source as fast as it goes: realtime factor.
// Prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';
import { loadConfig } from '../../config/load.ts';
import { ffmpegArgs } from '../../origin/transcoder.ts';
import { planForPreset, type LadderPlan, type LadderPreset } from '../../origin/ladder.ts';
import { launchChromium } from '../../test/support/chromium.ts';
import { startServer } from '../../test/support/onair-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { childrenNamed, cpuSeconds, rssBytes } from './proc.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '60' }, source: { type: 'string', default: '720p30' } } });
const duration = Number(values.duration);
const SOURCES: Record<string, { width: number; height: number; fps: number; kbps: number }> = {
  '720p30': { width: 1280, height: 720, fps: 30, kbps: 3000 },
  '1080p60': { width: 1920, height: 1080, fps: 60, kbps: 6000 },
};
const picked = SOURCES[values.source];
if (!picked) throw new Error(`--source must be one of ${Object.keys(SOURCES).join(', ')}`);
const src = picked;
const tmp = mkdtempSync(join(tmpdir(), 'onair-bench-transcode-'));
const source = join(tmp, 'source.flv');

function run(cmd: string, args: string[], onSpawn?: (outputs: Readable[]) => void, extraPipes = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...Array<'pipe'>(extraPipes).fill('pipe')] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    onSpawn?.(child.stdio.slice(3) as Readable[]);
    child.on('close', (code) => (code === 0 ? resolve(code) : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

/** OBS-like source (x264 veryfast CBR, 2 s GOP, AAC 48 kHz), encoded once so publishing costs ~nothing. */
async function makeSource(): Promise<void> {
  await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${src.width}x${src.height}:rate=${src.fps}`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=48000',
    '-t',
    String(duration),
    '-c:v',
    'libx264',
    '-preset',
    'veryfast',
    '-profile:v',
    'high',
    '-pix_fmt',
    'yuv420p',
    '-b:v',
    `${src.kbps}k`,
    '-maxrate',
    `${src.kbps}k`,
    '-bufsize',
    `${src.kbps * 2}k`,
    '-g',
    String(src.fps * 2),
    '-keyint_min',
    String(src.fps * 2),
    '-sc_threshold',
    '0',
    '-c:a',
    'aac',
    '-b:a',
    '160k',
    '-ar',
    '48000',
    '-f',
    'flv',
    source,
  ]);
}

async function metricSum(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.split(' ').pop());
  return sum;
}

/** The plan the origin makes for this source under `preset` (the ladder of ONAIR_LADDER, default settings). */
function planFor(preset: LadderPreset): LadderPlan {
  const config = loadConfig({});
  const codecs = { h264: true, aacCopyable: true, videoKbps: src.kbps };
  return planForPreset(preset, config.ladder, { width: src.width, height: src.height, fps: src.fps }, codecs, config.gopSec);
}

/** A histogram's buckets (cumulative counts by upper bound) from the text exposition. */
function buckets(text: string, name: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** The q-quantile of the observations between two bucket readings, interpolated linearly within its bucket. */
function quantile(before: Map<number, number>, after: Map<number, number>, q: number): number | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total <= 0) return undefined;
  let prevBound = 0;
  let prevCount = 0;
  for (const b of bounds) {
    const c = (after.get(b) ?? 0) - (before.get(b) ?? 0);
    if (c >= q * total) {
      if (b === Infinity) return prevBound;
      return prevBound + ((q * total - prevCount) / Math.max(1, c - prevCount)) * (b - prevBound);
    }
    prevBound = b;
    prevCount = c;
  }
  return undefined;
}

/** Share of the observations between two readings at or under `bound` (a bucket bound). */
function shareUnder(before: Map<number, number>, after: Map<number, number>, bound: number): number {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  return total > 0 ? ((after.get(bound) ?? 0) - (before.get(bound) ?? 0)) / total : NaN;
}

const LAG = 'onair_origin_part_lag_seconds';

async function livePhase(preset: LadderPreset) {
  const server = await startServer({ ONAIR_LOG_LEVEL: 'warn', ONAIR_DEFAULT_LADDER_PRESET: preset });
  const chromium = await launchChromium();
  try {
    const ev = JSON.parse(await server.cli(['event', 'create', '--title', 'bench transcode', '--json'])) as {
      streamKey: string;
      watchUrl: string;
    };
    const nodePid = server.child.pid!;
    const publish = run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-re',
      '-i',
      source,
      '-c',
      'copy',
      '-f',
      'flv',
      `rtmp://127.0.0.1:${server.rtmpPort}/live/${ev.streamKey}`,
    ]);
    const ffmpegCpu = new Map<number, number>();
    const rss: number[] = [];
    const node0 = cpuSeconds(nodePid)!;
    const t0 = Date.now();
    let publishing = true;
    void publish.finally(() => (publishing = false));
    // The viewer: the watch page, held on the top rendition (the source rendition under `standard`).
    const page = await chromium.browser.newPage();
    let viewer: { level: string; stalls: number; playedSec: number } | { error: string } = { error: 'did not start' };
    const viewing = (async () => {
      await page.goto(ev.watchUrl);
      await page.waitForFunction(() => window.__onair?.state === 'playing', undefined, { timeout: 30_000 });
      const level = await page.evaluate(() => {
        const hls = window.__onair!.hls!;
        const top = hls.levels.reduce((best, l, i) => (l.bitrate > hls.levels[best]!.bitrate ? i : best), 0);
        hls.currentLevel = top;
        const w = window as unknown as { stalls: number };
        w.stalls = 0;
        document.querySelector('video')!.addEventListener('waiting', () => w.stalls++);
        return hls.levels[top]!.url[0]!.split('/').at(-2)!;
      });
      return { level, t0: await page.evaluate(() => document.querySelector('video')!.currentTime) };
    })().catch((err: Error) => ({ error: err.message.split('\n')[0]! }));
    let lag0: Map<number, number> | undefined;
    while (publishing) {
      for (const pid of childrenNamed(nodePid, 'ffmpeg')) {
        const c = cpuSeconds(pid);
        if (c !== undefined) ffmpegCpu.set(pid, c);
      }
      const r = rssBytes(nodePid);
      if (r) rss.push(r);
      // Part lag from 10 s in (the ladder's start-up is not its steady state).
      if (!lag0 && Date.now() - t0 > 10_000) lag0 = buckets(await (await fetch(`${server.base}/metrics`)).text(), LAG);
      await new Promise((r) => setTimeout(r, 500));
    }
    await publish;
    const wall = (Date.now() - t0) / 1000;
    const nodeCpu = cpuSeconds(nodePid)! - node0;
    const lag1 = buckets(await (await fetch(`${server.base}/metrics`)).text(), LAG);
    const v = await viewing;
    if ('t0' in v) {
      const now = await page.evaluate(() => ({
        t: document.querySelector('video')!.currentTime,
        stalls: (window as unknown as { stalls: number }).stalls,
      }));
      viewer = { level: v.level, stalls: now.stalls, playedSec: now.t - v.t0 };
    } else viewer = v;
    // Let the last segment close before reading how much media came out.
    await waitFor('ffmpeg to finish', () => (childrenNamed(nodePid, 'ffmpeg').length === 0 ? true : undefined), 15_000, 200);
    const renditions = planFor(preset).rungs.length;
    const mediaSec = (await metricSum(server.base, 'onair_origin_segment_duration_seconds_sum')) / renditions;
    const ffmpegSec = [...ffmpegCpu.values()].reduce((a, b) => a + b, 0);
    const from = lag0 ?? new Map<number, number>();
    return {
      wallSec: wall,
      mediaSec,
      liveRealtime: mediaSec / wall,
      ffmpegCpuPerMediaSec: ffmpegSec / mediaSec,
      nodeCpuPerMediaSec: nodeCpu / mediaSec,
      nodeShareOfFfmpeg: nodeCpu / ffmpegSec,
      nodePeakRssMB: Math.max(...rss) / 2 ** 20,
      partLagP50Ms: (quantile(from, lag1, 0.5) ?? NaN) * 1000,
      partLagP95Ms: (quantile(from, lag1, 0.95) ?? NaN) * 1000,
      partsUnder200Ms: shareUnder(from, lag1, 0.2),
      partsUnder300Ms: shareUnder(from, lag1, 0.3),
      viewer,
    };
  } finally {
    await chromium.close();
    await server.stop();
  }
}

async function capacityPhase(preset: LadderPreset) {
  const config = loadConfig({});
  const plan = planFor(preset);
  const args = ffmpegArgs(config, plan, true).map((a) => (a === 'pipe:0' ? source : a));
  const t0 = Date.now();
  let bytes = 0;
  // ffmpeg's CPU time, sampled until it exits (the last 200 ms are missed: a slight undercount).
  let cpu = 0;
  const self = process.pid;
  const sampler = setInterval(() => {
    for (const pid of childrenNamed(self, 'ffmpeg')) cpu = Math.max(cpu, cpuSeconds(pid) ?? 0);
  }, 200);
  try {
    await run(config.ffmpegPath, args, (outs) => outs.forEach((o) => o.on('data', (c: Buffer) => (bytes += c.length))), plan.rungs.length);
  } finally {
    clearInterval(sampler);
  }
  const wall = (Date.now() - t0) / 1000;
  return { wallSec: wall, realtimeFactor: duration / wall, ffmpegCpuPerMediaSec: cpu / duration, outputMB: bytes / 2 ** 20 };
}

try {
  await makeSource();
  const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
  const ladders: Record<string, unknown> = {};
  let met = true;
  for (const preset of ['standard', 'custom'] as const) {
    const live = await livePhase(preset);
    const capacity = await capacityPhase(preset);
    const plan = planFor(preset);
    const isDefault = preset === 'standard';
    if (isDefault) met = capacity.realtimeFactor >= 1.2 && live.partLagP95Ms <= 250 && live.nodeShareOfFfmpeg <= 0.1;
    ladders[isDefault ? 'standard (new default)' : 'custom (before presets)'] = {
      renditions: plan.rungs.map((r) =>
        r.copy ? `source ${r.width}x${r.height}@${r.fps.num / r.fps.den} copied` : `${r.name}@${round(r.fps.num / r.fps.den, 2)}`,
      ),
      realtimeFactor: round(capacity.realtimeFactor),
      capacityFfmpegCpuSecPerMediaSec: round(capacity.ffmpegCpuPerMediaSec),
      loadAvg1m: round(loadavg()[0]!, 1),
      liveRealtime: round(live.liveRealtime),
      ffmpegCpuSecPerMediaSec: round(live.ffmpegCpuPerMediaSec),
      nodeCpuSecPerMediaSec: round(live.nodeCpuPerMediaSec),
      nodeShareOfFfmpeg: round(live.nodeShareOfFfmpeg),
      nodePeakRssMB: round(live.nodePeakRssMB, 1),
      partLagP50Ms: Math.round(live.partLagP50Ms),
      partLagP95Ms: Math.round(live.partLagP95Ms),
      partsUnder200Ms: round(live.partsUnder200Ms),
      partsUnder300Ms: round(live.partsUnder300Ms),
      viewer: 'playedSec' in live.viewer ? { ...live.viewer, playedSec: round(live.viewer.playedSec, 1) } : live.viewer,
    };
  }
  const result = {
    bench: 'transcode',
    source: `${src.width}x${src.height}p${src.fps} x264 veryfast ${src.kbps / 1000} Mb/s + AAC 48 kHz, 2 s GOP; ONAIR_LADDER default, x264 ${loadConfig({}).x264Preset}`,
    durationSec: duration,
    ladders,
    targets: { realtimeFactorMin: 1.2, partLagP95MaxMs: 250, nodeShareMax: 0.1, met },
  };
  console.log(JSON.stringify(result));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
