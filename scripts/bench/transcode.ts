// bench:transcode — cost of the default ladder. Two phases on one 720p30 source:
//  1. live: the real all-in-one server ingests the source over RTMP in real time for --duration s;
//     ffmpeg and node CPU per media second and node RSS over the run are sampled from /proc.
//  2. capacity: the same ffmpeg ladder command on the same source as fast as it goes: realtime factor.
// Prints one JSON line.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Readable } from 'node:stream';
import { loadConfig } from '../../config/load.ts';
import { ffmpegArgs } from '../../origin/transcoder.ts';
import { planLadder } from '../../origin/ladder.ts';
import { startServer } from '../../test/support/onair-server.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { childrenNamed, cpuSeconds, rssBytes } from './proc.ts';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '60' } } });
const duration = Number(values.duration);
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

/** OBS-like 720p30 source (x264 CBR 3 Mb/s, 2 s GOP, AAC), encoded once so publishing costs ~nothing. */
async function makeSource(): Promise<void> {
  await run('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-f',
    'lavfi',
    '-i',
    'testsrc2=size=1280x720:rate=30',
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
    '3000k',
    '-maxrate',
    '3000k',
    '-bufsize',
    '6000k',
    '-g',
    '60',
    '-keyint_min',
    '60',
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

async function livePhase() {
  const server = await startServer({ ONAIR_LOG_LEVEL: 'warn' });
  try {
    const ev = JSON.parse(await server.cli(['event', 'create', '--title', 'bench transcode', '--json'])) as { streamKey: string };
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
    while (publishing) {
      for (const pid of childrenNamed(nodePid, 'ffmpeg')) {
        const c = cpuSeconds(pid);
        if (c !== undefined) ffmpegCpu.set(pid, c);
      }
      const r = rssBytes(nodePid);
      if (r) rss.push(r);
      await new Promise((r) => setTimeout(r, 500));
    }
    await publish;
    const wall = (Date.now() - t0) / 1000;
    const nodeCpu = cpuSeconds(nodePid)! - node0;
    // Let the last segment close before reading how much media came out.
    await waitFor('ffmpeg to finish', () => (childrenNamed(nodePid, 'ffmpeg').length === 0 ? true : undefined), 15_000, 200);
    const config = loadConfig({});
    const renditions = planLadder(config.ladder, { width: 1280, height: 720, fps: 30 }, config.gopSec).rungs.length;
    const mediaSec = (await metricSum(server.base, 'onair_origin_segment_duration_seconds_sum')) / renditions;
    const ffmpegSec = [...ffmpegCpu.values()].reduce((a, b) => a + b, 0);
    const third = Math.max(1, Math.floor(rss.length / 3));
    const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return {
      wallSec: wall,
      mediaSec,
      liveRealtime: mediaSec / wall,
      ffmpegCpuPerMediaSec: ffmpegSec / mediaSec,
      nodeCpuPerMediaSec: nodeCpu / mediaSec,
      nodeShareOfFfmpeg: nodeCpu / ffmpegSec,
      nodePeakRssMB: Math.max(...rss) / 2 ** 20,
      nodeRssFirstThirdMB: avg(rss.slice(0, third)) / 2 ** 20,
      nodeRssLastThirdMB: avg(rss.slice(-third)) / 2 ** 20,
    };
  } finally {
    await server.stop();
  }
}

async function capacityPhase() {
  const config = loadConfig({});
  const plan = planLadder(config.ladder, { width: 1280, height: 720, fps: 30 }, config.gopSec);
  const ladder = plan.rungs;
  const args = ffmpegArgs(config, plan, true).map((a) => (a === 'pipe:0' ? source : a));
  const t0 = Date.now();
  let bytes = 0;
  await run(config.ffmpegPath, args, (outs) => outs.forEach((o) => o.on('data', (c: Buffer) => (bytes += c.length))), ladder.length);
  const wall = (Date.now() - t0) / 1000;
  return { wallSec: wall, realtimeFactor: duration / wall, outputMB: bytes / 2 ** 20 };
}

try {
  await makeSource();
  const live = await livePhase();
  const capacity = await capacityPhase();
  const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
  const result = {
    bench: 'transcode',
    source: '1280x720p30 x264 3 Mb/s + AAC, ladder 720p/480p/360p veryfast',
    durationSec: duration,
    realtimeFactor: round(capacity.realtimeFactor),
    liveRealtime: round(live.liveRealtime),
    ffmpegCpuSecPerMediaSec: round(live.ffmpegCpuPerMediaSec),
    nodeCpuSecPerMediaSec: round(live.nodeCpuPerMediaSec),
    nodeShareOfFfmpeg: round(live.nodeShareOfFfmpeg),
    nodePeakRssMB: round(live.nodePeakRssMB, 1),
    nodeRssFirstThirdMB: round(live.nodeRssFirstThirdMB, 1),
    nodeRssLastThirdMB: round(live.nodeRssLastThirdMB, 1),
    targets: {
      realtimeFactorMin: 1.2,
      nodeShareMax: 0.1,
      met: capacity.realtimeFactor >= 1.2 && live.nodeShareOfFfmpeg <= 0.1,
    },
  };
  console.log(JSON.stringify(result));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
