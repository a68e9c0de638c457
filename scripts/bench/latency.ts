// Glass-to-glass latency, side by side in one invocation, same stamped source (30 fps, 2 s GOP,
// the publisher's wall clock burnt into every frame), read back in Chromium per displayed frame:
// onair LL-HLS through the edge, onair plain HLS, nginx-rtmp HLS (hls.js defaults), and onair LL-HLS
// published over WHIP from a Chromium canvas carrying the same strip (what a browser studio sends).
//   npm run bench:latency -- [--duration 60] [--size 960x540] [--setups onair_ll,onair_plain,nginx_rtmp,onair_whip]
//                            [--onair-config '{"…":…}'] [--server-log FILE (onair's log lines, written at the end)]
// The default source is 960x540 (onair's ladder: 480p + 360p) because publisher, ladder encode and
// Chromium share the machine: on two cores a 720p source's three-rung ladder plus the 720p publisher
// and Chromium's software decode need more than both cores, and the backlog then measures the CPU.
// onair setups play with the viewer page's hls.js config (player/src/live-player.ts HLS_CONFIG);
// --onair-config replaces it (JSON) to try other settings. nginx plays with hls.js defaults.
// Setups run one after the other (each alone on the machine). Last stdout line: one JSON object.
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import HLS from 'hls-parser';
import type { HlsConfig } from 'hls.js';
import { startServer, type ServerUnderTest } from '../../test/support/onair-server.ts';
import { launchChromium } from '../../test/support/chromium.ts';
import { freePort } from '../../test/support/free-port.ts';
import { waitFor } from '../../test/support/wait-for.ts';
import { publishTestStream } from '../publish-test-stream.ts';
import { HLS_CONFIG } from '../../player/src/live-player.ts';
import { createLatencyPageServer } from './latency/page-server.ts';
import { createNginxRtmp, type NginxRtmp } from './latency/nginx-rtmp.ts';
import { machineMeter } from './proc.ts';
import { histogram, meanMs } from './prom.ts';
import { measureLatency, summarize, LATENCY_CHROMIUM_ARGS, type LatencySummary } from './latency/measure.ts';
import type { WhipPublisherState } from './latency/whip-page.ts';

const SETUPS = ['onair_ll', 'onair_plain', 'nginx_rtmp', 'onair_whip'] as const;
type Setup = (typeof SETUPS)[number];
type Created = { id: string; streamKey: string; hlsUrl: string; whipUrl: string; latencyMode?: string };
/** A running publisher of the stamped source. */
type Publisher = { stop(): Promise<void> };

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    size: { type: 'string', default: '960x540' },
    setups: { type: 'string', default: SETUPS.join(',') },
    'onair-config': { type: 'string' },
    'server-log': { type: 'string' },
  },
  strict: true,
});
const durationSec = Number(values.duration);
if (!Number.isFinite(durationSec) || durationSec < 5 || durationSec > 600) {
  console.error('bench:latency: --duration must be 5–600 seconds');
  process.exit(2);
}
const size = /^(\d{3,4})x(\d{3,4})$/.exec(values.size);
if (!size) {
  console.error('bench:latency: --size takes WIDTHxHEIGHT, e.g. 960x540');
  process.exit(2);
}
const [width, height] = [Number(size[1]), Number(size[2])];
const chosen = values.setups
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean) as Setup[];
const unknown = chosen.filter((s) => !SETUPS.includes(s));
if (unknown.length || chosen.length === 0) {
  console.error(`bench:latency: --setups takes a comma list of ${SETUPS.join(', ')}`);
  process.exit(2);
}
let onairConfig: Partial<HlsConfig> = HLS_CONFIG;
let onairConfigName = 'onair player HLS_CONFIG';
if (values['onair-config']) {
  try {
    onairConfig = JSON.parse(values['onair-config']) as Partial<HlsConfig>;
    onairConfigName = values['onair-config'];
  } catch (err) {
    console.error(`bench:latency: --onair-config is not JSON: ${(err as Error).message}`);
    process.exit(2);
  }
}
HLS.setOptions({ silent: true });
const log = (msg: string) => process.stderr.write(`bench:latency: ${msg}\n`);

/** Waits until the stream's (first variant's) media playlist lists 3 segments: a viewer joins a running stream. */
async function waitLive(url: string): Promise<void> {
  await waitFor(
    `3 segments at ${url}`,
    async () => {
      const r = await fetch(url);
      if (!r.ok) return undefined;
      let p = HLS.parse(await r.text());
      if (p.isMasterPlaylist) {
        const mediaUrl = new URL((p as HLS.types.MasterPlaylist).variants[0]!.uri, url).href;
        const m = await fetch(mediaUrl);
        if (!m.ok) return undefined;
        p = HLS.parse(await m.text());
      }
      return (p as HLS.types.MediaPlaylist).segments.length >= 3 ? true : undefined;
    },
    45_000,
    250,
  );
}

const pageServer = createLatencyPageServer();
let server: ServerUnderTest | undefined;
let nginx: NginxRtmp | undefined;
let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
let publisher: Publisher | undefined;
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await publisher?.stop();
    await chromium?.close();
    await nginx?.stop().catch(() => {});
    if (server && values['server-log']) await writeFile(values['server-log'], server.log());
    await server?.stop().catch(() => {});
    await pageServer.stop();
  })();
  return cleaning;
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

/** ffmpeg publishing the stamped test source over RTMP (OBS-like settings, ultrafast so it leaves CPU to the rest). */
async function rtmpPublisher(url: string): Promise<Publisher> {
  const p = publishTestStream({ url, width, height, fps: 30, stamp: true, preset: 'ultrafast' });
  return {
    stop: async () => {
      p.child.kill('SIGKILL');
      await p.done;
    },
  };
}

/** A Chromium tab publishing the stamped canvas (and a tone) over WHIP; stopping it DELETEs the session. */
async function whipPublisher(whipUrl: string, key: string): Promise<Publisher> {
  const page = await chromium!.browser.newPage();
  await page.goto(pageServer.whipPageUrl);
  await page.waitForFunction(() => window.__whipPublisher !== undefined);
  await page.evaluate(({ whipUrl, key, width, height }) => window.__whipPublisher!.start(whipUrl, key, width, height, 30), {
    whipUrl,
    key,
    width,
    height,
  });
  return {
    stop: async () => {
      const state = await page.evaluate(() => window.__whipPublisher!.state).catch(() => undefined as WhipPublisherState | undefined);
      if (state?.location) await fetch(state.location, { method: 'DELETE' }).catch(() => {});
      await page.close();
    },
  };
}

/** What one setup measured, with the context to read it by. */
type SetupResult = LatencySummary & {
  hlsConfig: string;
  mode?: string;
  stealPct: number;
  idlePct: number;
  /** onair only: mean time from a part's last frame reaching ingest to the part being ready (the ladder's lag). */
  originPartLagMs?: number;
};
const results: Partial<Record<Setup, SetupResult>> = {};
try {
  await pageServer.start();
  // Loopback WebRTC for the WHIP publisher tab, which must keep drawing while another tab plays.
  chromium = await launchChromium([
    ...LATENCY_CHROMIUM_ARGS,
    '--allow-loopback-in-peer-connection',
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
  ]);

  // Where each setup publishes and plays, and with which hls.js config.
  const plan: Partial<
    Record<Setup, { publish: () => Promise<Publisher>; hlsUrl: string; hlsConfig: Partial<HlsConfig>; configName: string; mode?: string }>
  > = {};
  if (chosen.some((s) => s.startsWith('onair_'))) {
    server = await startServer({ ONAIR_LOG_LEVEL: 'warn', ONAIR_WHIP_ICE_ADDRESSES: '127.0.0.1' });
    const rtmp = (key: string) => () => rtmpPublisher(`rtmp://127.0.0.1:${server!.rtmpPort}/live/${key}`);
    if (chosen.includes('onair_ll')) {
      const ev = JSON.parse(await server.cli(['event', 'create', '--title', 'latency bench LL', '--json'])) as Created;
      plan.onair_ll = {
        publish: rtmp(ev.streamKey),
        hlsUrl: ev.hlsUrl,
        hlsConfig: onairConfig,
        configName: onairConfigName,
        mode: ev.latencyMode ?? 'low',
      };
    }
    if (chosen.includes('onair_plain')) {
      let ev: Created;
      let mode = 'standard';
      let hlsConfig = onairConfig;
      let configName = onairConfigName;
      try {
        ev = JSON.parse(
          await server.cli(['event', 'create', '--title', 'latency bench plain', '--latency', 'standard', '--json']),
        ) as Created;
      } catch (err) {
        // No per-event switch in this build: play an LL event's playlists as plain HLS (parts ignored).
        log(`--latency standard not available (${String(err).split('\n')[0]}); falling back to lowLatencyMode off`);
        ev = JSON.parse(await server.cli(['event', 'create', '--title', 'latency bench plain', '--json'])) as Created;
        mode = 'fallback: LL playlists, hls.js lowLatencyMode off';
        hlsConfig = { ...onairConfig, lowLatencyMode: false };
        configName = `${onairConfigName} + lowLatencyMode false`;
      }
      plan.onair_plain = { publish: rtmp(ev.streamKey), hlsUrl: ev.hlsUrl, hlsConfig, configName, mode: ev.latencyMode ?? mode };
    }
  }
  if (chosen.includes('onair_whip')) {
    const ev = JSON.parse(await server!.cli(['event', 'create', '--title', 'latency bench WHIP', '--json'])) as Created;
    plan.onair_whip = {
      publish: () => whipPublisher(ev.whipUrl, ev.streamKey),
      hlsUrl: ev.hlsUrl,
      hlsConfig: onairConfig,
      configName: onairConfigName,
      mode: ev.latencyMode ?? 'low',
    };
  }
  if (chosen.includes('nginx_rtmp')) {
    nginx = createNginxRtmp({ rtmpPort: await freePort(), httpPort: await freePort() });
    await nginx.start();
    plan.nginx_rtmp = {
      publish: () => rtmpPublisher(`${nginx!.rtmpBase}/bench`),
      hlsUrl: nginx.hlsUrl('bench'),
      hlsConfig: {},
      configName: 'hls.js defaults',
    };
  }

  for (const setup of chosen) {
    const p = plan[setup]!;
    log(`${setup}: publishing`);
    publisher = await p.publish();
    const machine = machineMeter();
    await waitLive(p.hlsUrl);
    log(`${setup}: live, measuring ${durationSec} s`);
    const metricsUrl = setup === 'nginx_rtmp' ? undefined : `${server!.base}/metrics`;
    const lagBefore = metricsUrl ? await histogram(metricsUrl, 'onair_origin_part_lag_seconds') : undefined;
    const state = await measureLatency(chromium.browser, {
      pageUrl: pageServer.pageUrl,
      hlsUrl: p.hlsUrl,
      hlsConfig: p.hlsConfig,
      durationMs: durationSec * 1000,
    });
    await publisher.stop();
    publisher = undefined;
    const originPartLagMs =
      metricsUrl && lagBefore ? meanMs(lagBefore, await histogram(metricsUrl, 'onair_origin_part_lag_seconds')) : undefined;
    results[setup] = {
      ...summarize(state),
      hlsConfig: p.configName,
      ...(p.mode ? { mode: p.mode } : {}),
      ...machine.read(),
      ...(originPartLagMs !== undefined ? { originPartLagMs } : {}),
    };
    log(`${setup}: ${JSON.stringify(results[setup])}`);
  }
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}

const ll = results.onair_ll;
const targets = { p50Ms: 2000, p95Ms: 3000, ttffMs: 1500 };
const met = ll
  ? {
      p50: ll.p50 !== null && ll.p50 <= targets.p50Ms,
      p95: ll.p95 !== null && ll.p95 <= targets.p95Ms,
      ttff: ll.ttffMs !== null && ll.ttffMs <= targets.ttffMs,
    }
  : null;
console.log(
  JSON.stringify({
    bench: 'latency',
    durationSec,
    source: `${width}x${height} 30fps 2s GOP, wall-clock strip; latency = Date.now() at displayed frame - stamp`,
    results,
    targets: { onair_ll: targets },
    met: met ? { ...met, all: met.p50 && met.p95 && met.ttff } : null,
  }),
);
